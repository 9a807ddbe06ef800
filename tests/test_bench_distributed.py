"""Data-parallel runs under torchrun (gloo, CPU): 2 processes score exactly like 1, and a run
resumed with another number of processes reuses every stored prediction."""

from __future__ import annotations

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
