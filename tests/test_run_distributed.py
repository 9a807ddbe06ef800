"""Data-parallel runs under torchrun (gloo, CPU): 2 processes score exactly like 1, and a run
resumed with another number of processes reuses every stored prediction."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "fixtures"))

import bench_support as bs
from rsb_toy.data import write_dataset

from remotesam.bench.records.results import RunDocument
from remotesam.bench.records.store import ResultsStore
from remotesam.bench.run.distributed import shard_indices

N = 23  # odd on purpose: the shards differ in size


def test_shards_cover_every_index_once():
    for n in (0, 1, 7, 23):
        for world in (1, 2, 3, 5):
            got = sorted(i for r in range(world) for i in shard_indices(n, r, world))
            assert got == list(range(n))
    with pytest.raises(ValueError):
        shard_indices(5, 2, 2)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    return bs.installed_site(tmp_path_factory)


def _args(results, run_id):
    return ["run", "--tasks", "toy.*", "--ckpt", "ck.json", "--data-root", "data",
            "--device", "cpu", "--batch-size", "3", "--model-factory", bs.FACTORY,
            "--no-progress", "--results-dir", results, "--run-id", run_id]


def _torchrun(args, env, cwd, nproc):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
           f"--nproc_per_node={nproc}", "-m", "remotesam.bench", *args]
    return subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=600,
                          check=False)


@pytest.mark.slow
@pytest.mark.distributed
def test_two_gloo_processes_equal_one_process(tmp_path, site):
    write_dataset(tmp_path / "data" / "toy_blobs", n=N, seed=4)
    write_dataset(tmp_path / "data" / "toy_other", n=9, seed=5, corrupt=["0002.png"])
    bs.write_checkpoint(tmp_path / "ck.json", gain=0.9, bias=0.2)

    one = bs.bench(_args("one", "single"), bs.cli_env(site), tmp_path)
    assert one.returncode == 0, one.stderr

    log = tmp_path / "calls.log"
    two = _torchrun(_args("two", "pair"), bs.cli_env(site, TOY_CALL_LOG=log), tmp_path, 2)
    assert two.returncode == 0, two.stdout + two.stderr
    doc1 = RunDocument.load(tmp_path / "one" / "runs" / "single.json")
    doc2 = RunDocument.load(tmp_path / "two" / "runs" / "pair.json")
    assert doc2.provenance["world_size"] == 2 and doc2.provenance["backend"] == "gloo"
    assert bs.metrics_of(doc2) == bs.metrics_of(doc1)
    for r1, r2 in zip(doc1.results, doc2.results):
        assert r1.per_sample == r2.per_sample and r1.failures == r2.failures
        assert (r1.n_evaluated, r1.n_failed) == (r2.n_evaluated, r2.n_failed)
    # every sample predicted exactly once across the two ranks
    ids = log.read_text().split()
    assert len(ids) == N + 9 - 1  # (sample ids repeat across the two datasets)
    # the run document is written once, by rank 0
    assert [p.name for p in (tmp_path / "two" / "runs").glob("*.json")] == ["pair.json"]

    # resume the 2-process store with 1 process: nothing is recomputed
    log.unlink()
    again = bs.bench(_args("two", "resumed"), bs.cli_env(site, TOY_CALL_LOG=log), tmp_path)
    assert again.returncode == 0, again.stderr
    assert not log.exists()
    assert bs.metrics_of(RunDocument.load(tmp_path / "two" / "runs" / "resumed.json")) == \
        bs.metrics_of(doc1)
    with ResultsStore(tmp_path / "two") as store:
        assert store.count_predictions() == N + 9 - 1


# ---------------------------------------------------------------------------------------------
# two "nodes" on this machine, each with its own (node-local) results directory


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _nodes(tmp_path, site, nprocs, run_id, logs, kill=None):
    """Start one torchrun per node (static rendezvous on 127.0.0.1, gloo); node k writes
    ``n<k>/`` and logs the sample ids its model predicts to ``logs[k]``. Returns the
    CompletedProcess-like ``(returncode, output)`` of each node."""
    port = _free_port()
    procs = []
    for k, nproc in enumerate(nprocs):
        env = bs.cli_env(site, TOY_CALL_LOG=logs[k], TOY_SLEEP=0.05)
        if kill is not None and k == kill[0]:
            env["TOY_KILL_AT_CALL"] = str(kill[1])
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes", str(len(nprocs)),
               "--node-rank", str(k), "--nproc-per-node", str(nproc), "--master-addr",
               "127.0.0.1", "--master-port", str(port), "-m", "remotesam.bench",
               *_args(f"n{k}", run_id)]
        procs.append(subprocess.Popen(cmd, env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, text=True))
    out = []
    for p in procs:
        try:
            text, _ = p.communicate(timeout=300)
        except subprocess.TimeoutExpired:
            p.kill()
            text, _ = p.communicate()
        out.append((p.returncode, text))
    return out


def _lines(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


@pytest.fixture()
def two_datasets(tmp_path):
    write_dataset(tmp_path / "data" / "toy_blobs", n=N, seed=4)
    write_dataset(tmp_path / "data" / "toy_other", n=9, seed=5, corrupt=["0002.png"])
    bs.write_checkpoint(tmp_path / "ck.json", gain=0.9, bias=0.2)
    return tmp_path


@pytest.mark.slow
@pytest.mark.distributed
def test_two_nodes_with_their_own_results_dirs_equal_one_process(two_datasets, site):
    tmp_path = two_datasets
    one = bs.bench(_args("one", "single"), bs.cli_env(site), tmp_path)
    assert one.returncode == 0, one.stderr
    logs = [tmp_path / "node0.log", tmp_path / "node1.log"]
    res = _nodes(tmp_path, site, [1, 1], "pair", logs)
    assert [r[0] for r in res] == [0, 0], res
    doc1 = RunDocument.load(tmp_path / "one" / "runs" / "single.json")
    doc2 = RunDocument.load(tmp_path / "n0" / "runs" / "pair.json")
    assert doc2.provenance["world_size"] == 2
    assert doc2.provenance["n_predicted_now"] == N + 9 - 1  # the job's count, both nodes
    assert bs.metrics_of(doc2) == bs.metrics_of(doc1)
    for r1, r2 in zip(doc1.results, doc2.results):
        assert r1.per_sample == r2.per_sample and r1.failures == r2.failures
    # each node predicted its share, each sample once
    assert _lines(logs[0]) and _lines(logs[1])
    assert len(_lines(logs[0])) + len(_lines(logs[1])) == N + 9 - 1
    # rank 0's store holds everything; node 1 kept no prediction and wrote no run document
    with ResultsStore(tmp_path / "n0") as store:
        assert store.count_predictions() == N + 9 - 1
    with ResultsStore(tmp_path / "n1" / "shards", filename="rank-1.sqlite") as shard:
        assert shard.count_predictions() == 0
    assert not (tmp_path / "n1" / "store.sqlite").exists()
    assert not (tmp_path / "n1" / "runs").exists()


@pytest.mark.slow
@pytest.mark.distributed
def test_node_killed_mid_run_then_resumed_with_another_world_size_predicts_nothing_twice(
        two_datasets, site):
    tmp_path = two_datasets
    one = bs.bench(_args("one", "single"), bs.cli_env(site), tmp_path)
    assert one.returncode == 0, one.stderr
    first = [tmp_path / "a0.log", tmp_path / "a1.log"]
    res = _nodes(tmp_path, site, [1, 1], "killed", first, kill=(1, 3))
    assert res[1][0] != 0, res[1][1]  # node 1's process was killed at its 3rd model call
    assert res[0][0] != 0, res[0][1]  # and the job stopped
    assert not (tmp_path / "n0" / "runs" / "killed.json").exists()
    with ResultsStore(tmp_path / "n1" / "shards", filename="rank-1.sqlite") as shard:
        left = shard.count_predictions()
    assert left == len(_lines(first[1])) > 0  # its finished batches wait in its shard store
    done_before = len(_lines(first[0])) + len(_lines(first[1]))
    assert done_before < N + 9 - 1

    # resumed with 3 processes (2 on node 0, 1 on node 1): the new rank 2 on node 1 sends the
    # shard store that rank 1 left there, before rank 0 decides what is left to predict
    second = [tmp_path / "b0.log", tmp_path / "b1.log"]
    res = _nodes(tmp_path, site, [2, 1], "resumed", second)
    assert [r[0] for r in res] == [0, 0], res
    again = len(_lines(second[0])) + len(_lines(second[1]))
    assert done_before + again == N + 9 - 1  # every sample predicted exactly once in all
    doc = RunDocument.load(tmp_path / "n0" / "runs" / "resumed.json")
    assert doc.provenance["world_size"] == 3
    assert doc.provenance["n_predicted_now"] == again
    assert doc.provenance["n_cached"] == done_before
    assert bs.metrics_of(doc) == bs.metrics_of(RunDocument.load(
        tmp_path / "one" / "runs" / "single.json"))
    assert not (tmp_path / "n1" / "shards" / "rank-1.sqlite").exists()  # merged, removed
    with ResultsStore(tmp_path / "n0") as store:
        assert store.count_predictions() == N + 9 - 1
