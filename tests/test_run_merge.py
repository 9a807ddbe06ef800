"""``remotesam-bench merge DIR... --out DIR``: results directories of separate jobs made one;
conflicting predictions or run ids are refused with one line naming both sources, and nothing is
written then."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "fixtures"))

import bench_support as bs
from rsb_toy.data import write_dataset
from run_support import make_run

from remotesam.bench.cli import main
from remotesam.bench.records.results import RunDocument
from remotesam.bench.records.store import PredictionKey, ResultsStore
from remotesam.bench.run.merge import merge_results

KEY = PredictionKey("ab" * 32, "toy", 2, "blobs", "test", "cd" * 8)


def _store(folder: Path, items, fps=None, key=KEY, filename="store.sqlite") -> Path:
    with ResultsStore(folder, filename=filename) as s:
        s.put_predictions(key, items, fps)
    return folder


def _err_lines(capsys) -> list[str]:
    return [line for line in capsys.readouterr().err.splitlines() if line.strip()]


def test_disjoint_and_identical_predictions_merge(tmp_path, capsys):
    a = _store(tmp_path / "a", [("s1", {"count": 1.0}), ("s2", {"count": 2.0})],
               {"s1": "f1", "s2": "f2"})
    b = _store(tmp_path / "b", [("s2", {"count": 2.0}), ("s3", {"count": 3.0})],
               {"s2": "f2", "s3": "f3"})
    with ResultsStore(b) as s:  # a failure that a's prediction supersedes
        s.put_failures(KEY, [("s1", "OSError: gone", True)], {"s1": "f1"})
    make_run("ckpt_a", run_id="run-a").save(a / "runs" / "run-a.json")
    (a / "runs" / "run-a.config.yaml").write_text("tasks: [toy]\n")
    make_run("ckpt_b", run_id="run-b").save(b / "runs" / "run-b.json")
    make_run("ckpt_b", run_id="run-b").save(tmp_path / "copy" / "runs" / "run-b.json")
    out = tmp_path / "merged"
    code = main(["merge", str(a), str(b), str(tmp_path / "copy"), "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    assert "3 prediction(s) (3 new)" in capsys.readouterr().out
    with ResultsStore(out) as s:
        got = s.get_predictions(KEY, fingerprints={"s1": "f1", "s2": "f2", "s3": "f3"})
        assert got == {"s1": {"count": 1.0}, "s2": {"count": 2.0}, "s3": {"count": 3.0}}
        assert s.get_failures(KEY) == {}
    assert sorted(p.name for p in (out / "runs").iterdir()) == [
        "run-a.config.yaml", "run-a.json", "run-b.json"]
    assert RunDocument.load(out / "runs" / "run-b.json").to_json() == \
        make_run("ckpt_b", run_id="run-b").to_json()
    # merging again into the same directory adds nothing and refuses nothing
    assert merge_results([a, b], out).n_new_predictions == 0


def test_shard_stores_left_in_a_directory_are_merged(tmp_path):
    node = tmp_path / "node1"
    _store(node / "shards", [("s9", {"count": 9.0})], {"s9": "f9"}, filename="rank-1.sqlite")
    rep = merge_results([node], tmp_path / "out")
    assert rep.n_predictions == 1
    assert [p.name for p in rep.stores] == ["rank-1.sqlite"]


def test_conflicting_predictions_are_refused_naming_both_sources(tmp_path, capsys):
    a = _store(tmp_path / "a", [("s1", {"count": 1.0})], {"s1": "f1"})
    b = _store(tmp_path / "b", [("s1", {"count": 4.0})], {"s1": "f1"})
    out = tmp_path / "out"
    assert main(["merge", str(a), str(b), "--out", str(out)]) == 2
    (line,) = _err_lines(capsys)
    assert str(a / "store.sqlite") in line and str(b / "store.sqlite") in line
    assert "another prediction for the same cache key" in line and "'s1'" in line
    assert not out.exists()  # nothing written

    # the same prediction of another input (a dataset changed between the jobs)
    c = _store(tmp_path / "c", [("s1", {"count": 1.0})], {"s1": "other"})
    assert main(["merge", str(a), str(c), "--out", str(out)]) == 2
    (line,) = _err_lines(capsys)
    assert "another input fingerprint" in line and str(c / "store.sqlite") in line
    assert not out.exists()


def test_clashing_run_ids_are_refused_and_out_is_left_as_it_was(tmp_path, capsys):
    a = _store(tmp_path / "a", [("s1", {"count": 1.0})])
    b = _store(tmp_path / "b", [("s2", {"count": 2.0})])
    make_run("ckpt_a", run_id="same").save(a / "runs" / "same.json")
    make_run("ckpt_b", run_id="same").save(b / "runs" / "same.json")
    out = _store(tmp_path / "out", [("s0", {"count": 0.0})])
    assert main(["merge", str(a), str(b), "--out", str(out)]) == 2
    (line,) = _err_lines(capsys)
    assert "run id 'same'" in line
    assert str(a / "runs" / "same.json") in line and str(b / "runs" / "same.json") in line
    with ResultsStore(out) as s:
        assert s.count_predictions() == 1  # out untouched
    assert not (out / "runs").exists()


def test_bad_inputs_are_one_line_errors(tmp_path, capsys):
    assert main(["merge", str(tmp_path / "missing"), "--out", str(tmp_path / "o")]) == 2
    assert "is not a directory" in _err_lines(capsys)[0]
    (tmp_path / "empty").mkdir()
    assert main(["merge", str(tmp_path / "empty"), "--out", str(tmp_path / "o")]) == 2
    assert "holds no results" in _err_lines(capsys)[0]
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "store.sqlite").write_text("not a database")
    assert main(["merge", str(bad), "--out", str(tmp_path / "o")]) == 2
    (line,) = _err_lines(capsys)
    assert str(bad / "store.sqlite") in line
    assert not (tmp_path / "o").exists()


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    return bs.installed_site(tmp_path_factory)


def _run_args(results, tasks, run_id):
    return ["run", "--tasks", tasks, "--ckpt", "ck.json", "--data-root", "data", "--device",
            "cpu", "--batch-size", "3", "--model-factory", bs.FACTORY, "--no-progress",
            "--results-dir", results, "--run-id", run_id]


@pytest.mark.slow
def test_two_jobs_merged_then_a_full_run_predicts_nothing(tmp_path, site):
    write_dataset(tmp_path / "data" / "toy_blobs", n=7, seed=1)
    write_dataset(tmp_path / "data" / "toy_other", n=5, seed=2)
    bs.write_checkpoint(tmp_path / "ck.json")
    env = bs.cli_env(site)
    for results, tasks in (("job1", "toy.blobs"), ("job2", "toy.other")):
        p = bs.bench(_run_args(results, tasks, results), env, tmp_path)
        assert p.returncode == 0, p.stderr
    p = bs.bench(["merge", "job1", "job2", "--out", "all"], env, tmp_path)
    assert p.returncode == 0, p.stderr
    log = tmp_path / "calls.log"
    p = bs.bench(_run_args("all", "toy.*", "everything"), bs.cli_env(site, TOY_CALL_LOG=log),
                 tmp_path)
    assert p.returncode == 0, p.stderr
    assert not log.exists()  # every prediction came from the merged store
    doc = RunDocument.load(tmp_path / "all" / "runs" / "everything.json")
    assert [(r.dataset, r.n_evaluated) for r in doc.results] == [("blobs", 7), ("other", 5)]
    assert {p.name for p in (tmp_path / "all" / "runs").glob("*.json")} == {
        "job1.json", "job2.json", "everything.json"}
