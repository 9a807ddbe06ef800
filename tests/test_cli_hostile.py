"""Hostile files in the harness's own folders: each test builds the file and checks the answer.

A newer store, run ids that leave the results dir, stray files in ``runs/``, checkpoint side-car
JSON, two first-time runs racing for the embedded benchmark, a read-only results dir and a store
locked by another process.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "fixtures"))

import bench_support as bs
from rsb_toy.data import write_dataset
from rsb_toy.fakemodel import load

from remotesam.bench.api.registry import Registry
from remotesam.bench.errors import InputError, StoreError
from remotesam.bench.records.results import RunDocument, RunsDirWarning, latest_run, list_runs
from remotesam.bench.records.store import ResultsStore
from remotesam.bench.run import RunConfig, resolve_checkpoints, run, score_run
from remotesam.bench.run import embedded as embedded_mod

N = 6


def _factory(path, *, device, precision, batch_size):
    return load(path)


@pytest.fixture
def env(tmp_path):
    data = tmp_path / "data"
    write_dataset(data / "toy_blobs", n=N, seed=2)
    ckpt = bs.write_checkpoint(tmp_path / "ckpts" / "a.json", gain=1.0, bias=0.25)
    return {"tmp": tmp_path, "data": data, "ckpt": ckpt, "results": tmp_path / "results",
            "registry": Registry(bs.toy_entry_points())}


def _run(env, **kw):
    cfg = dict(tasks=["toy"], checkpoints=[str(env["ckpt"])], data_root=env["data"],
               results_dir=env["results"], batch_size=4, device="cpu", progress=False)
    cfg.update(kw)
    return run(RunConfig(**cfg), registry=env["registry"], model_factory=_factory)


# -- a store written by a newer version ----------------------------------------------------------


def test_newer_store_schema_is_refused_untouched(env):
    _run(env)
    db = env["results"] / "store.sqlite"
    with sqlite3.connect(db) as c:
        c.execute("UPDATE meta SET value='99' WHERE key='schema_version'")
        c.execute("CREATE TABLE from_the_future (x INTEGER)")
    c.close()
    before = db.read_bytes()
    for readonly in (False, True):
        with pytest.raises(StoreError, match=r"schema version 99.*left untouched.*Upgrade "
                                             r"remotesam-bench"):
            ResultsStore(env["results"], readonly=readonly)
    with pytest.raises(StoreError, match="Upgrade remotesam-bench"):
        _run(env)
    assert db.read_bytes() == before
    with sqlite3.connect(db) as c:
        assert c.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone() == ("99",)
        assert c.execute("SELECT COUNT(*) FROM from_the_future").fetchone() == (0,)


# -- run ids ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("run_id", ["../x", "../../etc/evil", "pr/123", "/abs", ".hidden", "a b",
                                    "x" * 129, "..", "a/../b"])
def test_run_id_that_could_leave_runs_dir_is_refused_before_any_work(env, run_id):
    with pytest.raises(InputError, match="--run-id") as e:
        _run(env, run_id=run_id)
    assert not (env["results"] / "store.sqlite").exists(), "refused before any work"
    assert not (env["tmp"] / "x.json").exists()
    if run_id == "pr/123":
        assert "e.g. --run-id pr-123" in str(e.value)


def test_run_id_with_dots_dashes_is_written_where_latest_run_finds_it(env):
    out = _run(env, run_id="pr-123.v2_final")
    assert out.path == env["results"] / "runs" / "pr-123.v2_final.json"
    assert latest_run(env["results"]).run_id == "pr-123.v2_final"


def test_score_refuses_an_escaping_run_id(env):
    src = _run(env).document
    with pytest.raises(InputError, match="--run-id"):
        score_run(src, results_dir=env["results"], registry=env["registry"], run_id="../up")


# -- stray files in runs/ -------------------------------------------------------------------------


def test_stray_and_malformed_files_in_runs_are_skipped_with_a_warning(env):
    good = _run(env, run_id="good").document
    runs = env["results"] / "runs"
    (runs / "notes.json").write_text("[1, 2, 3]")                        # another JSON file
    (runs / "broken.json").write_text('{"schema": "remotesam-bench/run/1"')  # truncated
    (runs / "keyless.json").write_text(json.dumps({"schema": "remotesam-bench/run/1"}))
    (runs / "badresult.json").write_text(json.dumps(
        {"schema": "remotesam-bench/run/1", "run_id": "x", "created": "2030", "results": [{}]}))
    (runs / "dir.json").mkdir()
    os.mkfifo(runs / "fifo.json")  # reading it would block forever
    with pytest.warns(RunsDirWarning) as rec:
        docs = list_runs(env["results"])
    assert [d.run_id for d in docs] == ["good"]
    skipped = " ".join(str(w.message) for w in rec)
    for name in ("notes.json", "broken.json", "keyless.json", "badresult.json", "dir.json",
                 "fifo.json"):
        assert name in skipped
    assert "'run_id'" in skipped  # the missing field is named
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RunsDirWarning)
        assert latest_run(env["results"]).run_id == good.run_id


def test_cli_names_a_skipped_runs_file_in_one_line_not_a_python_warning(env, capsys):
    from remotesam.bench.cli import main

    _run(env, run_id="good")
    (env["results"] / "runs" / "stray.json").write_text('{"not": "a run"}')
    assert main(["leaderboard", "--results-dir", str(env["results"]), "--format", "md"]) == 0
    err = capsys.readouterr().err
    assert "remotesam-bench: warning: skipped " in err and "stray.json" in err
    assert "RunsDirWarning" not in err and "warnings.warn" not in err and ".py:" not in err


def test_old_run_document_reads_back_with_context_defaults(env):
    doc = _run(env).document
    d = json.loads(doc.to_json())
    for r in d["results"]:
        del r["synthetic"], r["subset"]
        r["n_total"] = r["n_evaluated"] + 5  # a --limit run written before the flags existed
    back = RunDocument.from_json(json.dumps(d))
    assert back.results[0].synthetic is False and back.results[0].subset is True


# -- checkpoint side-car files --------------------------------------------------------------------


def test_ckpt_dir_and_star_glob_ignore_side_car_json(tmp_path):
    d = tmp_path / "ckpts"
    d.mkdir()
    for name in ("model.safetensors", "model.safetensors.json", "config.json", "b.pth",
                 "b.pth.json", "README.md"):
        (d / name).write_bytes(b"x")
    os.mkfifo(d / "pipe.pth")
    want = [d / "b.pth", d / "model.safetensors"]
    assert sorted(resolve_checkpoints([str(d)])) == want
    assert sorted(resolve_checkpoints([str(d / "*")])) == want
    assert sorted(resolve_checkpoints([str(d / "mod*")])) == [d / "model.safetensors"]
    # a pattern that names the suffix itself is the user's explicit choice
    assert resolve_checkpoints([str(d / "*.json")]) == sorted(
        [d / "b.pth.json", d / "config.json", d / "model.safetensors.json"])
    with pytest.raises(InputError, match="matches no checkpoint file"):
        resolve_checkpoints([str(d / "READ*")])


# -- two first-time runs sharing a results dir ----------------------------------------------------


def _leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if ".tmp-" in p.name or ".stale-" in p.name)


def test_racing_first_runs_keep_the_winners_embedded_benchmark(tmp_path, monkeypatch):
    import remotesam.synth as synth

    real_generate = synth.generate
    calls = []

    def generate_while_another_process_wins(out, **kw):
        calls.append(out)
        if len(calls) == 1:
            # the other process generates and renames its copy into place first
            won = embedded_mod.ensure_embedded_benchmark(tmp_path)
            calls.append(("winner", (won / "manifest.json").stat().st_ino))
        return real_generate(out, **kw)

    monkeypatch.setattr(synth, "generate", generate_while_another_process_wins)
    root = embedded_mod.ensure_embedded_benchmark(tmp_path)
    winner_inode = calls[2][1]
    assert (root / "manifest.json").stat().st_ino == winner_inode, "the winner's copy is kept"
    assert json.loads((root / "manifest.json").read_text())["generator"] == "remotesam.synth"
    assert _leftovers(root.parent) == []


def test_failed_generation_leaves_no_temporary_folder(tmp_path, monkeypatch):
    import remotesam.synth as synth

    def boom(out, **kw):
        (Path(out) / "half.txt").write_text("partial")
        raise RuntimeError("generator bug")

    monkeypatch.setattr(synth, "generate", boom)
    with pytest.raises(RuntimeError, match="generator bug"):
        embedded_mod.ensure_embedded_benchmark(tmp_path)
    parent = tmp_path / "embedded"
    assert _leftovers(parent) == [] and not any(parent.iterdir())


# -- a read-only results dir -----------------------------------------------------------------------


def _can_bind_mount_read_only(tmp: Path) -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = tmp / "probe"
    probe.mkdir()
    r = subprocess.run(["unshare", "-rm", "sh", "-c",
                        'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" && '
                        '! touch "$0/x" 2>/dev/null', str(probe)],
                       capture_output=True, timeout=30, check=False)
    return r.returncode == 0


def test_score_works_on_a_read_only_copy_of_a_results_dir(env, tmp_path):
    """The copy is made really read-only: as a normal user by removing write permission, as
    root (which ignores permissions) by a read-only bind mount in a private mount namespace
    (``unshare -rm``). Where neither is possible the test is skipped."""
    src = _run(env, run_id="orig").document
    copy = tmp_path / "ro-copy"
    shutil.copytree(env["results"], copy)
    out_file = tmp_path / "rescored.json"
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(Path(__file__).resolve().parent / "fixtures")!r})
        import bench_support as bs
        from remotesam.bench.api.registry import Registry
        from remotesam.bench.records.results import RunDocument
        from remotesam.bench.run import score_run
        src = RunDocument.load({str(copy / "runs" / "orig.json")!r})
        reg = Registry(bs.toy_entry_points())
        a = score_run(src, results_dir={str(copy)!r}, registry=reg, data_root={str(env["data"])!r})
        assert a.path is None and "read-only" in a.warnings[0], a
        b = score_run(src, results_dir={str(copy)!r}, registry=reg,
                      data_root={str(env["data"])!r}, out={str(out_file)!r})
        print(b.path, a.document.results[0].metrics["mae"].value)
    """)
    if os.geteuid() != 0:
        for p in [copy, *copy.rglob("*")]:
            p.chmod(p.stat().st_mode & ~0o222)
        cmd = [sys.executable, "-c", script]
    elif _can_bind_mount_read_only(tmp_path):
        cmd = ["unshare", "-rm", "sh", "-c",
               'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" && exec "$@"',
               str(copy), sys.executable, "-c", script]
    else:
        pytest.skip("cannot make a read-only copy here: running as root (permissions are "
                    "ignored) and no read-only bind mount is allowed (unshare -rm)")
    before = {p: p.read_bytes() for p in copy.rglob("*") if p.is_file()}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    path, mae = proc.stdout.split()
    assert Path(path) == out_file
    assert float(mae) == pytest.approx(src.results[0].metrics["mae"].value)
    assert RunDocument.load(out_file).provenance["rescored_from"] == "orig"
    after = {p: p.read_bytes() for p in copy.rglob("*") if p.is_file()}
    assert after == before


def test_read_only_store_on_an_unwritable_dir_uses_immutable_mode(env, monkeypatch):
    """The same path in process: ``os.access`` reports the folder unwritable (as on a read-only
    mount), so the store must open without creating its ``-shm`` and lock files."""
    _run(env)
    import remotesam.bench.records.store as store_mod

    monkeypatch.setattr(store_mod.os, "access", lambda p, mode: mode != os.W_OK)
    opened = []
    real_connect = store_mod.sqlite3.connect

    def spy(database, *a, **kw):
        opened.append(str(database))
        return real_connect(database, *a, **kw)

    monkeypatch.setattr(store_mod.sqlite3, "connect", spy)
    with ResultsStore(env["results"], readonly=True) as s:
        assert s.count_predictions() == N
    assert opened and "immutable=1" in opened[-1]


# -- a store locked by another process -------------------------------------------------------------


def test_lock_held_by_another_process_is_named(env):
    _run(env)
    db = env["results"] / "store.sqlite"
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import sqlite3, sys, time
            c = sqlite3.connect({str(db)!r}, isolation_level=None)
            c.execute("BEGIN EXCLUSIVE")
            print("locked", flush=True)
            sys.stdin.read()
        """)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(StoreError) as e:
            ResultsStore(env["results"], timeout_s=0.3)
        msg = str(e.value)
        assert "another remotesam-bench process is writing" in msg
        assert str(db) in msg and "--results-dir" in msg
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)


# -- a stored prediction that is not valid JSON (issue 19 item 15) -------------------------------


def _corrupt_one_prediction(results: Path) -> str:
    with sqlite3.connect(results / "store.sqlite") as c:
        (sid,) = c.execute("SELECT sample_id FROM predictions ORDER BY sample_id LIMIT 1"
                           ).fetchone()
        c.execute("UPDATE predictions SET prediction=? WHERE sample_id=?",
                  ('{"count": 3,', sid))
    c.close()
    return sid


# issue 19 item 15
def test_unreadable_stored_prediction_is_predicted_again_by_run(env):
    from remotesam.bench.records.store import StoreWarning

    first = _run(env)
    sid = _corrupt_one_prediction(env["results"])
    with pytest.warns(StoreWarning, match=r"1 stored prediction\(s\) of toy\..*not valid JSON"):
        again = _run(env)
    assert again.document.provenance["n_predicted_now"] == 1
    assert not again.errors
    assert bs.metrics_of(again.document) == bs.metrics_of(first.document)
    with warnings.catch_warnings():
        warnings.simplefilter("error", StoreWarning)  # repaired: nothing to report any more
        third = _run(env)
    assert third.document.provenance["n_predicted_now"] == 0
    with ResultsStore(env["results"], readonly=True) as store:
        assert sid in store.get_predictions(_key(third.document.results[0]))


def _key(r):
    from remotesam.bench.records.store import PredictionKey

    return PredictionKey(r.checkpoint.sha256, r.task, r.task_version, r.dataset, r.split,
                         r.settings_hash)


# issue 19 item 15
def test_unreadable_stored_prediction_is_a_failed_sample_in_score(env):
    from remotesam.bench.records.store import StoreWarning

    src = _run(env).document
    sid = _corrupt_one_prediction(env["results"])
    with pytest.warns(StoreWarning, match="not valid JSON"):
        out = score_run(src, results_dir=env["results"], registry=env["registry"])
    (res,) = out.document.results
    assert res.n_failed == 1 and res.n_evaluated == N - 1
    (failure,) = res.failures
    assert failure["sample_id"] == sid and "not valid JSON" in failure["error"]
