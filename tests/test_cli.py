"""The ``remotesam-bench`` CLI in subprocesses, with third-party plugin distributions installed
by pip: discovery, a broken plugin, SIGKILL mid-run and resume, ``score``, bad input."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "fixtures"))

import bench_support as bs
from rsb_toy.data import write_dataset

from remotesam.bench.records.results import RunDocument, latest_run, list_runs
from remotesam.bench.records.store import ResultsStore

#: runs with --limit here evaluate a subset on purpose; the subset note is tested elsewhere
#: (tests/test_run_runner.py::test_limit_task_options_and_cache_key)
pytestmark = pytest.mark.filterwarnings("ignore:evaluated .* a subset:UserWarning")

N = 24


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The fixture distributions, installed with pip into a private target directory."""
    return bs.installed_site(tmp_path_factory)


@pytest.fixture
def work(tmp_path, site):
    write_dataset(tmp_path / "data" / "toy_blobs", n=N, seed=2)
    bs.write_checkpoint(tmp_path / "ck.json", gain=1.0, bias=0.3)
    return tmp_path


def _run_args(*extra):
    return ["run", "--tasks", "toy", "--ckpt", "ck.json", "--data-root", "data", "--device",
            "cpu", "--batch-size", "4", "--model-factory", bs.FACTORY, "--no-progress", *extra]


def _check_clean_error(proc, *needles):
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    assert "error:" in proc.stderr
    for n in needles:
        assert n in proc.stderr, proc.stderr


def test_list_discovers_installed_plugins_and_reports_broken_ones(work, site):
    proc = bs.bench(["list"], bs.cli_env(site), work)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "toy" in out and "count white squares" in out and "mae↓" in out
    assert "BROKEN" in out and "broken_import" in out and "broken_contract" in out
    assert "remotesam-bench-broken 0.0.1" in out
    assert "remotesam_bench_dependency_that_does_not_exist" in out
    assert "exactly one metric must have primary=True" in out
    proc = bs.bench(["list", "--json"], bs.cli_env(site), work)
    import json

    rows = {r["name"]: r for r in json.loads(proc.stdout)}
    assert rows["toy"]["ok"] and rows["toy"]["version"] == 2
    # a third-party metric is not "official" unless its plugin says so
    assert rows["toy"]["metrics"][0] == {"name": "mae", "higher_is_better": False,
                                         "primary": True, "unit": "", "official": False}
    assert not rows["broken_import"]["ok"]


def test_run_third_party_plugin_and_broken_one_alongside(work, site):
    proc = bs.bench(_run_args(), bs.cli_env(site), work)
    assert proc.returncode == 0, proc.stderr
    assert "toy" in proc.stdout and "mae=0.3" in proc.stdout and "run document:" in proc.stdout
    doc = latest_run(work / "results")
    assert doc.results[0].n_evaluated == N
    proc = bs.bench(_run_args("--tasks", "broken_import", "--results-dir", "r2"),
                    bs.cli_env(site), work)
    _check_clean_error(proc, "broken_import", "failed to import", "remotesam-bench-broken")
    (res,) = latest_run(work / "r2").results  # the good task still ran
    assert res.task == "toy" and res.n_evaluated == N


def test_sigkill_mid_run_then_rerun_recomputes_nothing(work, site):
    ref = bs.bench(_run_args("--results-dir", "ref"), bs.cli_env(site), work)
    assert ref.returncode == 0, ref.stderr
    killed = bs.bench(_run_args(), bs.cli_env(site, TOY_KILL_AT_CALL=4), work)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    with ResultsStore(work / "results") as store:
        assert store.count_predictions() == 12  # the batches before the kill, all of them
    assert not (work / "results" / "runs").exists() or not list_runs(work / "results")
    log = work / "calls.log"
    proc = bs.bench(_run_args(), bs.cli_env(site, TOY_CALL_LOG=log), work)
    assert proc.returncode == 0, proc.stderr
    recomputed = log.read_text().split()
    assert len(recomputed) == N - 12 and len(set(recomputed)) == N - 12
    assert bs.metrics_of(latest_run(work / "results")) == bs.metrics_of(latest_run(work / "ref"))
    log.unlink()
    proc = bs.bench(_run_args(), bs.cli_env(site, TOY_CALL_LOG=log), work)
    assert proc.returncode == 0 and not log.exists(), "a complete rerun must not call the model"


def test_score_subcommand_and_python_m_equals_console_script(work, site):
    proc = bs.bench(_run_args(), bs.cli_env(site), work)
    assert proc.returncode == 0, proc.stderr
    first = latest_run(work / "results")
    proc = bs.bench(["score", "--run-id", "rescored"], bs.cli_env(site), work)
    assert proc.returncode == 0, proc.stderr
    again = RunDocument.load(work / "results" / "runs" / "rescored.json")
    assert bs.metrics_of(again) == bs.metrics_of(first)
    exe = Path(sys.executable).with_name("remotesam-bench")
    if not exe.exists():
        pytest.skip("console script not installed next to the interpreter")
    a = subprocess.run([str(exe), "run", "--help"], capture_output=True, text=True,
                       env=bs.cli_env(site), cwd=work, check=False)
    b = bs.bench(["run", "--help"], bs.cli_env(site), work)
    assert a.returncode == b.returncode == 0 and a.stdout == b.stdout


@pytest.mark.parametrize(("args", "needles"), [
    (["--ckpt", "missing.pth"], ["'missing.pth': no such file"]),
    (["--ckpt", "runs/*/nothing*.pth"], ["matches no file"]),
    (["--tasks", "toyy"], ["unknown task 'toyy'", "Did you mean 'toy'"]),
    (["--data-root", "nowhere"], ["toy.blobs", "does not exist", "Expected layout",
                                  "counts.json"]),
    (["--data-root", "."], ["Expected layout", "counts.json"]),
    (["--dataset-root", "toy.blobs"], ["expected KEY=VALUE"]),
    (["--task-opt", "offset=1"], ["expected TASK.KEY=VALUE"]),
    (["--dataset-opt", "toy.index=x"], ["expected TASK.DATASET.KEY=VALUE"]),
    (["--dataset-opt", "toy.blobs.indx=x"], ["toy.blobs", "unknown option(s) ['indx']", "index"]),
    (["--results-dir", "ck.json/sub"], ["cannot write", "--results-dir"]),
    (["--model-factory", "nomodule_xyz:load"], ["cannot import 'nomodule_xyz'"]),
])
def test_bad_input_exit_2_without_traceback(work, site, args, needles):
    proc = bs.bench(_run_args(*args), bs.cli_env(site), work)
    _check_clean_error(proc, *needles)


def test_wrong_layout_and_corrupt_image(work, site):
    (work / "data" / "toy_blobs" / "counts.json").rename(work / "data" / "toy_blobs" / "c.json")
    _check_clean_error(bs.bench(_run_args(), bs.cli_env(site), work), "counts.json not found")
    (work / "data" / "toy_blobs" / "c.json").rename(work / "data" / "toy_blobs" / "counts.json")
    (work / "data" / "toy_blobs" / "images" / "0007.png").write_bytes(b"not an image")
    proc = bs.bench(_run_args(), bs.cli_env(site), work)
    assert proc.returncode == 0, proc.stderr
    assert "1 sample(s) failed" in proc.stdout and "0007.png" in proc.stdout
    res = latest_run(work / "results").results[0]
    assert res.n_failed == 1 and res.n_evaluated == N - 1


def test_limit_warns_at_run_time_and_hostile_run_ids_and_stores_exit_2(work, site):
    proc = bs.bench(_run_args("--limit", "5", "--no-report"), bs.cli_env(site), work)
    assert proc.returncode == 0, proc.stderr
    assert (f"warning: evaluated 5 of {N} samples of toy.blobs/test: a subset; its numbers are "
            "not comparable with full runs") in " ".join(proc.stderr.split())
    res = latest_run(work / "results").results[0]
    assert (res.n_total, res.n_evaluated, res.n_failed, res.subset) == (N, 5, 0, True)
    for bad in ("../x", "pr/123"):
        _check_clean_error(bs.bench(_run_args("--run-id", bad), bs.cli_env(site), work),
                           "--run-id", "letters, digits")
    assert not (work / "x.json").exists() and not (work / "results" / "runs" / "pr").exists()
    import sqlite3

    with sqlite3.connect(work / "results" / "store.sqlite") as c:
        c.execute("UPDATE meta SET value='7' WHERE key='schema_version'")
    c.close()
    _check_clean_error(bs.bench(_run_args(), bs.cli_env(site), work),
                       "schema version 7", "Upgrade remotesam-bench")


def test_bad_run_id_is_refused_before_the_embedded_benchmark_is_written(tmp_path, capsys):
    from remotesam.bench.cli import main

    results = tmp_path / "results"
    assert main(["run", "--tasks", "mcc", "--limit", "1", "--results-dir", str(results),
                 "--run-id", "../x", "--no-progress"]) == 2
    assert "--run-id '../x'" in capsys.readouterr().err
    assert not results.exists(), "refused before any work (no embedded benchmark written)"


def test_usage_errors(work, site):
    proc = bs.bench(["run", "--limit", "0"], bs.cli_env(site), work)
    assert proc.returncode == 2 and "--limit" in proc.stderr
    proc = bs.bench([], bs.cli_env(site), work)
    assert proc.returncode == 2
    proc = bs.bench(["score", "--results-dir", "empty"], bs.cli_env(site), work)
    _check_clean_error(proc, "no run documents")


@pytest.mark.skipif(os.name != "posix", reason="needs SIGKILL")
def test_kill_from_outside_at_a_random_moment(work, site):
    """An external SIGKILL while batches are being written; the rerun completes the set."""
    env = bs.cli_env(site, TOY_SLEEP=0.25)
    p = subprocess.Popen([sys.executable, "-m", "remotesam.bench", *_run_args("--batch-size", "2")],
                         env=env, cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    import time

    db = work / "results" / "store.sqlite"
    deadline = time.time() + 120
    while time.time() < deadline and p.poll() is None:
        if db.exists():
            try:
                with ResultsStore(work / "results", readonly=True) as store:
                    if store.count_predictions() >= 4:
                        break
            except Exception:  # the store may be mid-creation
                pass
        time.sleep(0.02)
    p.send_signal(signal.SIGKILL)
    p.wait()
    with ResultsStore(work / "results") as store:
        kept = store.count_predictions()
    assert 4 <= kept < N, "the kill must land mid-run"
    assert kept % 2 == 0, "a batch is stored whole or not at all"
    log = work / "calls.log"
    proc = bs.bench(_run_args(), bs.cli_env(site, TOY_CALL_LOG=log), work)
    assert proc.returncode == 0, proc.stderr
    n_new = len(log.read_text().split()) if log.exists() else 0
    assert n_new == N - kept
    assert latest_run(work / "results").results[0].n_evaluated == N


@pytest.mark.slow
def test_sigkill_and_resume_with_the_tiny_remotesam(work, site, monkeypatch):
    """The acceptance test with the real tiny network (RemoteSAM.counting) instead of the fake:
    reference and resumed runs in process, the killed one in a subprocess."""
    import torch
    from rsb_toy.fakemodel import load_tiny

    from remotesam.bench.api.registry import Registry
    from remotesam.bench.run import RunConfig, run
    from remotesam.checkpoint import save_checkpoint
    from remotesam.models import create_model

    torch.manual_seed(0)
    save_checkpoint(create_model("remotesam_tiny", img_size=64), work / "tiny.safetensors")
    monkeypatch.chdir(work)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        def in_process(results, log=None):
            if log:
                monkeypatch.setenv("TOY_CALL_LOG", str(log))
            cfg = RunConfig(tasks=["toy"], checkpoints=["tiny.safetensors"], data_root="data",
                            device="cpu", batch_size=2, limit=6, progress=False,
                            results_dir=results)
            return run(cfg, registry=Registry(bs.toy_entry_points()), model_factory=load_tiny)

        ref = in_process("ref")
        killed = bs.bench(["run", "--tasks", "toy", "--ckpt", "tiny.safetensors", "--data-root",
                           "data", "--device", "cpu", "--batch-size", "2", "--limit", "6",
                           "--no-progress", "--model-factory", "rsb_toy.fakemodel:load_tiny"],
                          bs.cli_env(site, TOY_KILL_AT_CALL=3), work)
        assert killed.returncode == -signal.SIGKILL, killed.stderr
        with ResultsStore(work / "results") as store:
            assert store.count_predictions() == 4
        log = work / "calls.log"
        out = in_process("results", log)
        assert len(log.read_text().split()) == 2 == out.n_predicted
        assert bs.metrics_of(out.document) == bs.metrics_of(ref.document)
    finally:
        torch.set_num_threads(threads)
