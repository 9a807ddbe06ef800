"""Runner and results store, in process: caching, resume, failure isolation, sweeps, bad input."""

from __future__ import annotations

import json
import sqlite3
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "fixtures"))

import bench_support as bs
from rsb_toy.data import write_dataset
from rsb_toy.fakemodel import load
from rsb_toy.toy import ToyCountTask

from remotesam.bench.api.registry import Registry
from remotesam.bench.errors import InputError, StoreError, UnknownTaskError
from remotesam.bench.records.identity import sha256_file
from remotesam.bench.records.results import RunDocument, latest_run
from remotesam.bench.records.store import PredictionKey, ResultsStore
from remotesam.bench.run import RunConfig, resolve_checkpoints, run, score_run
from remotesam.bench.run.runner import PrecisionWarning

#: runs with --limit here evaluate a subset on purpose; the subset note is tested elsewhere
#: (tests/test_run_runner.py::test_limit_task_options_and_cache_key)
pytestmark = pytest.mark.filterwarnings("ignore:evaluated .* a subset:UserWarning")

N = 20


class Factory:
    """Counts model loads and forward calls across a run."""

    def __init__(self, stop_after_calls: int | None = None) -> None:
        self.models = []
        self.stop_after_calls = stop_after_calls

    def __call__(self, path, *, device, precision, batch_size):
        model = load(path)
        if self.stop_after_calls is not None:
            limit, count = self.stop_after_calls, model.count

            def interrupted(images, ids=None):
                if model.calls >= limit:
                    raise KeyboardInterrupt("simulated Ctrl-C")
                return count(images, ids)

            model.count = interrupted
        self.models.append(model)
        return model

    @property
    def images(self) -> int:
        return sum(m.images_seen for m in self.models)


@pytest.fixture
def env(tmp_path):
    data = tmp_path / "data"
    write_dataset(data / "toy_blobs", n=N, seed=1)
    ckpt = bs.write_checkpoint(tmp_path / "ckpts" / "a.json", gain=1.0, bias=0.25)
    return {
        "tmp": tmp_path,
        "data": data,
        "ckpt": ckpt,
        "registry": Registry(bs.toy_entry_points()),
    }


def _cfg(env, **kw):
    base = dict(tasks=["toy"], checkpoints=[str(env["ckpt"])], data_root=env["data"],
                results_dir=env["tmp"] / "results", batch_size=4, device="cpu", progress=False)
    base.update(kw)
    return RunConfig(**base)


def _run(env, factory=None, **kw):
    return run(_cfg(env, **kw), registry=env["registry"], model_factory=factory or Factory())


def test_run_scores_and_writes_document_with_provenance(env):
    out = _run(env)
    assert out.errors == [] and out.n_predicted == N
    (res,) = out.document.results
    assert (res.task, res.dataset, res.split, res.task_version) == ("toy", "blobs", "test", 2)
    assert (res.n_total, res.n_evaluated, res.n_failed) == (N, N, 0)
    assert res.checkpoint.sha256 == sha256_file(env["ckpt"])
    # gain 1, bias 0.25: every prediction is the true count + 0.25
    assert res.metrics["mae"].value == pytest.approx(0.25)
    assert res.metrics["acc"].value == 100.0
    assert res.metrics["mae"].primary and not res.metrics["mae"].higher_is_better
    assert len(res.per_sample["mae"]["values"]) == N
    saved = RunDocument.load(out.path)
    assert saved.run_id == out.document.run_id and out.path.parent.name == "runs"
    prov = saved.provenance
    for key in ("package_version", "git_revision", "torch", "cuda", "device", "config",
                "task_versions", "n_total", "n_evaluated", "wall_time_s", "samples_per_s"):
        assert key in prov, key
    assert prov["task_versions"] == {"toy": 2} and prov["device"] == "cpu"
    assert prov["config"]["data_root"] == str(env["data"].resolve())


def test_rerun_recomputes_nothing_and_never_loads_the_model(env):
    first = _run(env)
    again = Factory()
    second = _run(env, again)
    assert again.models == [], "a fully cached rerun must not even load the model"
    assert (second.n_predicted, second.n_cached) == (0, N)
    assert bs.metrics_of(first.document) == bs.metrics_of(second.document)


def test_interrupted_run_resumes_without_recomputing_and_scores_identically(env):
    reference = _run(env, results_dir=env["tmp"] / "ref")
    broken = Factory(stop_after_calls=3)
    with pytest.raises(KeyboardInterrupt):
        _run(env, broken)
    with ResultsStore(env["tmp"] / "results") as store:
        assert store.count_predictions() == 12  # three whole batches of 4 were committed
    resumed = Factory()
    out = _run(env, resumed)
    assert resumed.images == N - 12
    assert bs.metrics_of(out.document) == bs.metrics_of(reference.document)
    assert out.document.results[0].per_sample == reference.document.results[0].per_sample


def test_corrupt_image_is_a_failed_sample_and_the_run_goes_on(env):
    (env["data"] / "toy_blobs" / "images" / "0005.png").write_bytes(b"\x89PNG garbage")
    factory = Factory()
    out = _run(env, factory)
    (res,) = out.document.results
    assert (res.n_evaluated, res.n_failed) == (N - 1, 1)
    assert res.failures[0]["sample_id"] == "0005.png"
    assert "UnidentifiedImageError" in res.failures[0]["error"]
    assert "0005.png" not in res.per_sample["mae"]["sample_ids"]
    # batch of 4 failed once, then 4 single retries; the other 3 samples of that batch survive
    assert factory.images == N - 1 + 0
    again = _run(env, Factory())
    assert again.document.results[0].failures == res.failures  # recorded, not retried
    retry = Factory()
    _run(env, retry, retry_failed=True)
    assert len(retry.models) == 1


@pytest.mark.parametrize("error", [
    RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB"),
    MemoryError(),
    OSError(110, "Connection timed out"),
])
def test_transient_failure_is_retried_by_the_next_run_permanent_one_is_not(env, error):
    (env["data"] / "toy_blobs" / "images" / "0005.png").write_bytes(b"\x89PNG garbage")

    class Flaky(Factory):
        def __call__(self, path, **kw):
            model = super().__call__(path, **kw)
            count = model.count

            def flaky(images, ids=None):
                if "0003.png" in (ids or []):
                    raise error
                return count(images, ids)

            model.count = flaky
            return model

    out = _run(env, Flaky())
    (res,) = out.document.results
    kinds = {f["sample_id"]: f["kind"] for f in res.failures}
    assert kinds == {"0003.png": "transient", "0005.png": "permanent"}
    again = Factory()
    res2 = _run(env, again).document.results[0]
    assert len(again.models) == 1, "the transient failure is predicted again"
    assert [f["sample_id"] for f in res2.failures] == ["0005.png"]
    assert res2.n_evaluated == N - 1
    third = Factory()
    _run(env, third)
    assert third.models == [], "a permanent failure stays until --retry-failed"


def test_keyboard_interrupt_is_never_stored_as_a_failure(env):
    class Interrupted(Factory):
        def __call__(self, path, **kw):
            model = super().__call__(path, **kw)

            def stop(images, ids=None):
                raise KeyboardInterrupt

            model.count = stop
            return model

    with pytest.raises(KeyboardInterrupt):
        _run(env, Interrupted())
    with ResultsStore(env["tmp"] / "results") as store:
        n = store._conn.execute("SELECT COUNT(*) FROM failures").fetchone()[0]
    assert n == 0


def test_dataset_changed_in_place_is_predicted_again_never_scored_stale(env):
    """Same sample ids, other content: the cache must not hand back the old predictions."""
    _run(env)
    write_dataset(env["data"] / "toy_blobs", n=N, seed=2)  # regenerated in place, same names
    fresh = _run(env, results_dir=env["tmp"] / "fresh")
    f = Factory()
    again = _run(env, f)
    assert (again.n_predicted, again.n_cached) == (N, 0) and f.images == N
    assert bs.metrics_of(again.document) == bs.metrics_of(fresh.document)
    # re-scoring the old run now finds no prediction for the changed samples
    with ResultsStore(env["tmp"] / "results") as store:
        assert store.count_predictions() == N  # replaced, not duplicated


def test_one_changed_image_is_the_only_recomputation_and_a_moved_dataset_keeps_its_cache(env):
    first = _run(env)
    img = sorted((env["data"] / "toy_blobs").rglob("*.png"))[0]
    data = bytearray(img.read_bytes())
    moved = env["tmp"] / "elsewhere"
    (env["data"]).rename(moved)
    f = Factory()
    out = _run(env, f, data_root=moved)
    assert (out.n_predicted, out.n_cached) == (0, N) and f.models == []
    assert bs.metrics_of(out.document) == bs.metrics_of(first.document)
    changed = moved / img.relative_to(env["data"])
    from PIL import Image

    Image.new("L", Image.open(changed).size, 0).save(changed)
    assert changed.read_bytes() != bytes(data)
    f = Factory()
    out = _run(env, f, data_root=moved)
    assert (out.n_predicted, out.n_cached) == (1, N - 1)


def test_store_of_schema_1_is_migrated_and_its_unfingerprinted_rows_recomputed(env):
    res = env["tmp"] / "results"
    res.mkdir()
    conn = sqlite3.connect(res / "store.sqlite")
    from remotesam.bench.records.store import _DDL

    schema_1 = _DDL.replace(" input_hash TEXT,", "")  # the tables as version 1 wrote them
    assert "input_hash" not in schema_1
    conn.executescript(schema_1 + "INSERT INTO predictions VALUES "
                       "('x', 'toy', 2, 'blobs', 'test', 'h', 'old', '{}', 0);")
    conn.close()
    out = _run(env)
    assert out.n_predicted == N and out.errors == []
    with ResultsStore(res) as store:
        key = PredictionKey("x", "toy", 2, "blobs", "test", "h")
        assert store.get_predictions(key) == {"old": {}}  # kept, just never matched
        assert store.get_predictions(key, fingerprints={"old": "abc"}) == {}


_SCHEMA_2 = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE predictions (
    ckpt_sha256 TEXT NOT NULL, task TEXT NOT NULL, task_version INTEGER NOT NULL,
    dataset TEXT NOT NULL, split TEXT NOT NULL, settings_hash TEXT NOT NULL,
    sample_id TEXT NOT NULL, prediction TEXT NOT NULL, created REAL NOT NULL, input_hash TEXT,
    PRIMARY KEY (ckpt_sha256, task, task_version, dataset, split, settings_hash, sample_id)
) WITHOUT ROWID;
CREATE TABLE failures (
    ckpt_sha256 TEXT NOT NULL, task TEXT NOT NULL, task_version INTEGER NOT NULL,
    dataset TEXT NOT NULL, split TEXT NOT NULL, settings_hash TEXT NOT NULL,
    sample_id TEXT NOT NULL, error TEXT NOT NULL, created REAL NOT NULL, input_hash TEXT,
    PRIMARY KEY (ckpt_sha256, task, task_version, dataset, split, settings_hash, sample_id)
) WITHOUT ROWID;
CREATE TABLE settings (settings_hash TEXT PRIMARY KEY, settings TEXT NOT NULL);
CREATE TABLE checkpoint_hashes (
    path TEXT NOT NULL, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, sha256 TEXT NOT NULL,
    PRIMARY KEY (path, size, mtime_ns)
) WITHOUT ROWID;
INSERT INTO meta VALUES ('schema_version', '2');
INSERT INTO failures VALUES ('x', 'toy', 2, 'blobs', 'test', 'h', 's1', 'bad image', 0, 'fp');
"""


def test_store_of_schema_2_is_migrated_old_failures_permanent_stale_hashes_dropped(env):
    res = env["tmp"] / "results"
    res.mkdir()
    conn = sqlite3.connect(res / "store.sqlite")
    st = env["ckpt"].stat()
    conn.executescript(_SCHEMA_2 + "INSERT INTO checkpoint_hashes VALUES "
                       f"('{env['ckpt'].resolve()}', {st.st_size}, {st.st_mtime_ns}, 'stale');")
    conn.close()
    with ResultsStore(res) as store:
        key = PredictionKey("x", "toy", 2, "blobs", "test", "h")
        assert store.get_failures(key, transient=False) == {"s1": "bad image"}
        assert store.get_failures(key, transient=True) == {}
        assert store.cached_sha256(env["ckpt"]) is None  # (path, size, mtime) is not trusted
        v = store._conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        assert v == ("3",)


def test_sample_fingerprints_cover_image_bytes_target_and_meta(tmp_path):
    from remotesam.bench.api import Sample
    from remotesam.bench.records.identity import sample_fingerprints

    a = tmp_path / "a" / "x.png"
    a.parent.mkdir()
    a.write_bytes(b"one")
    b = tmp_path / "b" / "x.png"
    b.parent.mkdir()
    b.write_bytes(b"one")

    def fp(image, target=None, meta=None):
        return sample_fingerprints([Sample("s", image, target or {}, meta or {})])["s"]

    base = fp(a, {"box": [1, 2]}, {"src": str(a)})
    assert base == fp(b, {"box": [1, 2]}, {"src": str(b)})  # same bytes, paths by name
    assert base != fp(a, {"box": [1, 3]}, {"src": str(a)})
    assert base != fp(a, {"box": [1, 2]}, {"src": str(a), "sentence": "x"})
    assert fp(a, {"m": np.zeros((2, 2), np.uint8)}) != fp(a, {"m": np.ones((2, 2), np.uint8)})
    b.write_bytes(b"two")
    assert fp(a) != fp(b)
    assert len(fp(tmp_path / "missing.png")) == 32  # unreadable: still fingerprinted, by name
    with ResultsStore(tmp_path / "r") as store:
        first = sample_fingerprints([Sample("s", a)], store)
        assert store.cached_sha256_many([str(a)]) == {str(a): sha256_file(a)}
        assert sample_fingerprints([Sample("s", a)], store) == first


@pytest.mark.filterwarnings("ignore::remotesam.bench.run.runner.PrecisionWarning")
def test_limit_task_options_and_cache_key(env):
    out = _run(env, limit=5)
    res = out.document.results[0]
    assert (res.n_total, res.n_evaluated) == (N, 5)
    f = Factory()
    out2 = _run(env, f, task_options={"toy": {"offset": 1.0}})
    assert f.images == N, "changed settings must not reuse predictions"
    assert out2.document.results[0].metrics["mae"].value == pytest.approx(1.25)
    assert out2.document.results[0].settings_hash != res.settings_hash
    f3 = Factory()
    _run(env, f3, precision="bf16")
    assert f3.images == N, "precision is part of the cache key"


def test_subset_and_synthetic_context_is_recorded_and_warned(env):
    from remotesam.bench.run import SubsetWarning

    with pytest.warns(SubsetWarning, match=r"evaluated 5 of 20 samples of toy\.blobs/test: a "
                                           r"subset; its numbers are not comparable"):
        out = _run(env, limit=5)
    res = out.document.results[0]
    assert (res.n_total, res.n_evaluated, res.n_failed) == (N, 5, 0)
    assert res.subset and not res.synthetic
    assert out.warnings and out.document.provenance["warnings"] == out.warnings
    back = RunDocument.load(out.path).results[0]
    assert back.subset and back.synthetic is False
    # data written by remotesam.synth (the embedded benchmark) is marked synthetic
    (env["data"] / "manifest.json").write_text(json.dumps({"generator": "remotesam.synth"}))
    seen = []
    full = run(
        _cfg(env), registry=env["registry"], model_factory=Factory(), on_warning=seen.append)
    r = full.document.results[0]
    assert r.synthetic and not r.subset and seen == [] and full.warnings == []
    assert RunDocument.load(full.path).results[0].synthetic is True


def test_dataset_options_reach_the_adapter_and_bad_ones_are_clear(env):
    root = env["data"] / "toy_blobs"
    counts = json.loads((root / "counts.json").read_text())
    few = {"test": dict(sorted(counts["test"].items())[:5])}
    (root / "few.json").write_text(json.dumps(few))
    out = _run(env, dataset_options={"toy.blobs": {"index": "few.json"}})
    res = out.document.results[0]
    assert (res.n_total, res.n_evaluated) == (5, 5)
    assert out.document.provenance["config"]["dataset_options"] == {
        "toy.blobs": {"index": "few.json"}
    }
    with pytest.raises(InputError, match=r"toy\.blobs: blobs: unknown option\(s\) \['indx'\]"):
        _run(env, dataset_options={"toy.blobs": {"indx": "few.json"}})
    with pytest.raises(InputError, match=r"--dataset-opt 'toy\.nope': task 'toy' has no dataset"):
        _run(env, dataset_options={"toy.nope": {"index": "x"}})
    with pytest.raises(InputError, match=r"dataset toy\.other is not in this run"):
        _run(env, dataset_options={"toy.other": {"index": "x"}})


def test_sweep_of_checkpoints_from_directory_glob_and_duplicates(env):
    bs.write_checkpoint(env["tmp"] / "ckpts" / "b.json", gain=1.0, bias=0.5)
    (env["tmp"] / "ckpts" / "b.pth").write_text(json.dumps({"gain": 1.0, "bias": -0.4}))
    f = Factory()
    out = _run(env, f, checkpoints=[str(env["tmp"] / "ckpts" / "*.json"),
                                    str(env["tmp"] / "ckpts"), str(env["ckpt"])])
    assert len(f.models) == 3, "each checkpoint is loaded exactly once"
    maes = sorted(r.metrics["mae"].value for r in out.document.results)
    assert maes == pytest.approx([0.25, 0.4, 0.5])
    assert len({r.checkpoint.sha256 for r in out.document.results}) == 3


def test_all_datasets_of_a_task_and_per_dataset_root(env):
    other = write_dataset(env["tmp"] / "elsewhere", n=7, seed=3)
    out = _run(env, tasks=["toy.*"], dataset_roots={"toy.other": other})
    got = {(r.dataset, r.n_total) for r in out.document.results}
    assert got == {("blobs", N), ("other", 7)}


def test_score_rescores_stored_predictions_without_a_model(env, monkeypatch):
    first = _run(env)
    out = score_run(latest_run(env["tmp"] / "results"), results_dir=env["tmp"] / "results",
                    registry=env["registry"])
    assert bs.metrics_of(out.document) == bs.metrics_of(first.document)
    assert out.document.provenance["rescored_from"] == first.document.run_id

    original = ToyCountTask.score

    def fixed_score(self, samples, predictions):  # "a metric fix"
        s = original(self, samples, predictions)
        s.metrics["mae"] = 42.0
        return s

    monkeypatch.setattr(ToyCountTask, "score", fixed_score)
    out = score_run(first.document, results_dir=env["tmp"] / "results", registry=env["registry"])
    assert out.errors == []
    assert out.document.results[0].metrics["mae"].value == 42.0


def test_model_load_failure_is_recorded_and_other_checkpoints_run(env):
    bad = env["tmp"] / "ckpts" / "bad.json"
    bad.write_text("{not json")
    out = _run(env, checkpoints=[str(bad), str(env["ckpt"])])
    assert any("bad.json" in e and "loading the model failed" in e for e in out.errors)
    by_name = {Path(r.checkpoint.name).name: r for r in out.document.results}
    assert by_name["a.json"].n_evaluated == N
    assert by_name["bad.json"].n_failed == N
    assert "loading the model failed" in by_name["bad.json"].failures[0]["error"]


# -- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("kw", "expected"), [
    ({"checkpoints": ["/nonexistent/ckpt.pth"]}, "no such file or directory"),
    ({"checkpoints": ["/nonexistent/*.pth"]}, "the glob matches no file"),
    ({"tasks": ["tyo"]}, "Did you mean 'toy'"),
    ({"tasks": ["toy.blob"]}, "has no dataset 'blob'. Did you mean 'blobs'"),
    ({"data_root": None}, "no dataset location"),
    ({"data_root": "/nonexistent/root"}, "does not exist"),
    ({"precision": "fp16"}, "'fp16' needs a CUDA device"),
    ({"task_options": {"det": {"x": 1}}}, "not in this run"),
    ({"dataset_roots": {"toy.nope": "/x"}}, "has no dataset 'nope'"),
])
def test_bad_input_raises_clear_error(env, kw, expected):
    with pytest.raises(InputError) as e:
        _run(env, **kw)
    assert expected in str(e.value)
    if kw.get("tasks") == ["tyo"]:
        assert isinstance(e.value, UnknownTaskError)


@pytest.mark.filterwarnings("ignore::remotesam.bench.run.runner.PrecisionWarning")
def test_precision_rule_is_one_function_used_by_runner_and_predictor(env):
    import torch

    from remotesam.precision import PrecisionError, resolve_precision
    from remotesam.predictor import RemoteSAM

    assert resolve_precision("fp16", "cuda:1") == "fp16"
    assert resolve_precision("float16", torch.device("cuda")) == "fp16"
    assert resolve_precision("bfloat16", "cpu") == "bf16"
    with pytest.raises(PrecisionError, match="needs a CUDA device"):
        resolve_precision("fp16", "cpu")
    net = torch.nn.Conv2d(3, 2, 1)
    # the predictor refuses exactly what the runner refuses, with the same words
    with pytest.raises(ValueError) as pred_err:
        RemoteSAM(net, image_size=32, precision="fp16", device="cpu")
    with pytest.raises(InputError) as run_err:
        _run(env, precision="fp16")
    assert str(pred_err.value) in str(run_err.value)
    f = Factory()
    out = _run(env, f, precision="bfloat16")  # an alias is resolved once, before the run
    assert out.document.provenance["precision"] == "bf16" and f.images == N


@pytest.mark.skipif(not __import__("torch").cuda.is_available(),
                    reason="needs a CUDA device: fp16 is only offered there")
def test_fp16_on_cuda_predicts_every_sample(tmp_path):
    from remotesam.bench.run.embedded import ensure_embedded_benchmark

    data = ensure_embedded_benchmark(tmp_path)
    out = run(RunConfig(tasks=["mcc"], limit=4, data_root=data, results_dir=tmp_path,
                        device="cuda", precision="fp16", progress=False))
    (res,) = out.document.results
    assert out.errors == [] and (res.n_evaluated, res.n_failed) == (4, 0)


def test_missing_or_wrong_dataset_layout_shows_expected_layout(env):
    for kw in ({"data_root": env["tmp"]}, {"data_root": None}):
        with pytest.raises(InputError) as e:
            _run(env, **kw)
        assert "Expected layout" in str(e.value) and "counts.json" in str(e.value)
    (env["data"] / "toy_blobs" / "counts.json").unlink()
    with pytest.raises(InputError) as e:
        _run(env)
    assert "counts.json not found" in str(e.value) and "images/0000.png" in str(e.value)


def test_empty_checkpoint_directory(env):
    (env["tmp"] / "empty").mkdir()
    with pytest.raises(InputError, match="without checkpoint files"):
        resolve_checkpoints([env["tmp"] / "empty"])


# -- store ---------------------------------------------------------------------------------------


def test_unwritable_results_dir_fails_before_any_work(env):
    blocker = env["tmp"] / "afile"
    blocker.write_text("x")
    f = Factory()
    with pytest.raises(StoreError) as e:
        _run(env, f, results_dir=blocker / "results")
    assert "results" in str(e.value) and f.models == []


def test_full_disk_is_a_clear_error_and_loses_nothing(env, monkeypatch):
    reference = _run(env, results_dir=env["tmp"] / "ref")
    real_connect = ResultsStore._connect
    state = {"pages": None}

    def tiny_disk(self, timeout_s):
        conn = real_connect(self, timeout_s)
        if state["pages"] is None:
            state["pages"] = conn.execute("PRAGMA page_count").fetchone()[0]
        conn.execute(f"PRAGMA max_page_count={state['pages'] + 1}")
        return conn

    monkeypatch.setattr(ResultsStore, "_connect", tiny_disk)
    with pytest.raises(StoreError, match="full"):
        _run(env)
    monkeypatch.setattr(ResultsStore, "_connect", real_connect)
    with ResultsStore(env["tmp"] / "results") as store:
        kept = store.count_predictions()
    f = Factory()
    out = _run(env)
    out = _run(env, f)
    assert f.images == 0 and kept < N
    assert bs.metrics_of(out.document) == bs.metrics_of(reference.document)


def test_two_writers_at_once(tmp_path):
    key = PredictionKey("sha", "toy", 1, "blobs", "test", "h")
    errors = []

    def writer(tag):
        try:
            with ResultsStore(tmp_path) as store:
                for b in range(40):
                    store.put_predictions(key, [(f"{tag}-{b}-{i}", {"v": i}) for i in range(5)])
        except Exception as e:  # surfaced below
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(t,)) for t in "ab"]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with ResultsStore(tmp_path) as store:
        assert store.count_predictions(key) == 2 * 40 * 5
        assert store.get_predictions(key, ["a-3-2"]) == {"a-3-2": {"v": 2}}
    conn = sqlite3.connect(tmp_path / "store.sqlite")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_checkpoint_hash_is_cached_and_invalidated(tmp_path):
    p = bs.write_checkpoint(tmp_path / "c.json")
    with ResultsStore(tmp_path / "r") as store:
        h1 = sha256_file(p, store)
        assert store.cached_sha256(p) == h1
        p.write_text(json.dumps({"gain": 2.0, "bias": 0.0, "pad": "x" * 10}))
        assert store.cached_sha256(p) is None
        assert sha256_file(p, store) != h1


def test_bootstrap_interval_brackets_the_metric(env):
    res = _run(env).document.results[0]
    ci = res.metrics["acc"].ci95
    if ci is None:
        pytest.skip("remotesam.bench.records.stats (bootstrap) not available")
    vals = np.asarray(res.per_sample["acc"]["values"])
    assert ci[0] <= vals.mean() <= ci[1]


def test_module_exports():
    import importlib

    face = importlib.import_module("remotesam.bench.run")
    assert set(face.__all__) >= {"RunConfig", "run", "score_run", "default_checkpoint",
                                 "evaluate", "evaluate_config"}


def test_progress_bars_render_when_forced(env, capsys):
    out = _run(env, progress=True)
    assert out.n_predicted == N
    err = capsys.readouterr().err
    assert "toy.blobs/test" in err and f"{N}/{N}" in err and "samples/s" in err


def test_default_checkpoint_is_resolved_or_clearly_missing(tmp_path, monkeypatch):
    import remotesam
    from remotesam.bench.run import default_checkpoint

    monkeypatch.setattr(remotesam, "__file__", str(tmp_path / "remotesam" / "__init__.py"))
    with pytest.raises(InputError, match="pass --ckpt"):
        default_checkpoint()
    ck = tmp_path / "remotesam" / "checkpoints" / "remotesam_tiny.safetensors"
    ck.parent.mkdir(parents=True)
    ck.write_bytes(b"x")
    assert default_checkpoint() == ck.resolve()


def test_a_bf16_run_warns_and_its_document_says_so(tmp_path):
    """A reduced-precision run is not an fp32 run: a PrecisionWarning at once, and the same
    line in the run document's provenance warnings (where reports read it)."""
    write_dataset(tmp_path / "data" / "toy_blobs", n=4, seed=1)
    ckpt = bs.write_checkpoint(tmp_path / "c.json", gain=1.0, bias=0.4)
    cfg = RunConfig(tasks=["toy"], checkpoints=[str(ckpt)], data_root=tmp_path / "data",
                    results_dir=tmp_path / "r", device="cpu", progress=False,
                    precision="bf16")
    with pytest.warns(PrecisionWarning, match="bf16 autocast: the numbers are not"):
        out = run(cfg, registry=Registry(bs.toy_entry_points()),
                  model_factory=lambda p, **kw: load(p))
    assert any("docs/SCALING.md" in w for w in out.document.provenance["warnings"])
    fp32 = run(RunConfig(tasks=["toy"], checkpoints=[str(ckpt)], data_root=tmp_path / "data",
                         results_dir=tmp_path / "r", device="cpu", progress=False),
               registry=Registry(bs.toy_entry_points()), model_factory=lambda p, **kw: load(p))
    assert not any("autocast" in w for w in fp32.document.provenance["warnings"])
