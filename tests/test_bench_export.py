"""Per-sample export: JSONL per task/dataset and COCO results; re-scoring the export gives the
run's metrics (round trip), for the test-only `toy` plugin and for the built-in plugins."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "fixtures"))

import bench_support as bs
from rsb_toy.data import write_dataset
from rsb_toy.fakemodel import load

from remotesam.bench.api.registry import Registry
from remotesam.bench.errors import InputError
from remotesam.bench.reports.export import export_runs, load_result, read_jsonl, rescore_jsonl
from remotesam.bench.run import RunConfig, run


def _assert_same_metrics(scores, result):
    for name, mv in result.metrics.items():
        got = float(scores.metrics[name])
        if math.isnan(mv.value):
            assert math.isnan(got), name
        else:
            assert got == pytest.approx(mv.value, rel=1e-9, abs=1e-9), name


@pytest.fixture
def toy_run(tmp_path):
    write_dataset(tmp_path / "data" / "toy_blobs", n=10, seed=1)
    ckpt = bs.write_checkpoint(tmp_path / "ckpts" / "step_100.json", gain=1.0, bias=0.4)
    registry = Registry(bs.toy_entry_points())
    cfg = RunConfig(tasks=["toy"], checkpoints=[str(ckpt)], data_root=tmp_path / "data",
                    results_dir=tmp_path / "results", limit=8, device="cpu", progress=False)
    out = run(cfg, registry=registry, model_factory=lambda p, **kw: load(p))
    assert out.errors == []
    return tmp_path, out.document, registry


def test_export_round_trips_and_keeps_the_subset(toy_run):
    tmp, doc, registry = toy_run
    files = export_runs([doc], tmp / "results", tmp / "export", registry=registry)
    jsonl = next(p for p in files if p.suffix == ".jsonl")
    assert jsonl.parent.name.startswith("step_100-") and jsonl.name == "toy.blobs.test.jsonl"
    recs = read_jsonl(jsonl)
    res = doc.results[0]
    assert len(recs) == 8 and res.n_total == 10  # the run's --limit selection, not more
    assert all(r["prediction"] is not None and r["failed"] is None for r in recs)
    assert set(recs[0]) == {"sample_id", "image", "target", "meta", "prediction", "failed",
                            "metrics"}
    assert Path(recs[0]["image"]).is_file() and "count" in recs[0]["target"]
    # per-sample metrics from the run document
    name = next(iter(res.per_sample))
    ps = dict(zip(res.per_sample[name]["sample_ids"], res.per_sample[name]["values"]))
    assert recs[0]["metrics"][name] == pytest.approx(ps[recs[0]["sample_id"]])
    # round trip: the plugin's score() on the exported file gives the run's numbers
    plugin = registry.get("toy")()
    _assert_same_metrics(rescore_jsonl(jsonl, plugin), res)
    manifest = json.loads((tmp / "export" / "manifest.json").read_text())
    entry = manifest["runs"][0]["results"][0]
    assert entry["context"] == {"synthetic": False, "subset": True, "n_total": 10,
                                "n_evaluated": 8, "n_failed": 0}
    assert entry["files"]["jsonl"] == str(jsonl.relative_to(tmp / "export"))


def test_export_records_failed_samples(toy_run):
    tmp, doc, registry = toy_run
    res = doc.results[0]
    victim = res.per_sample[next(iter(res.per_sample))]["sample_ids"][0]
    res.failures = [{"sample_id": victim, "error": "OSError: unreadable"}]
    import sqlite3

    con = sqlite3.connect(tmp / "results" / "store.sqlite")
    con.execute("DELETE FROM predictions WHERE sample_id=?", (victim,))
    con.commit()
    con.close()
    loaded = load_result(doc, res, tmp / "results", registry=registry)
    rec = next(r for r in loaded.records if r.sample.sample_id == victim)
    assert rec.prediction is None and "unreadable" in rec.error


def test_export_errors_are_clear(toy_run, tmp_path):
    tmp, doc, registry = toy_run
    with pytest.raises(InputError, match="no results store"):
        export_runs([doc], tmp_path / "nowhere", tmp_path / "x", registry=registry)
    with pytest.raises(InputError, match="does not exist"):
        export_runs([doc], tmp / "results", tmp_path / "x", registry=registry,
                    data_root=tmp_path / "missing")


def test_cli_export(toy_run, monkeypatch, capsys):
    from remotesam.bench.cli import main
    from remotesam.bench.cli import reports as reports_cli

    tmp, _, registry = toy_run
    monkeypatch.setattr(reports_cli, "_registry", lambda: registry)
    assert main(["export", "--results-dir", str(tmp / "results"), "--out",
                 str(tmp / "exp")]) == 0
    assert (tmp / "exp" / "manifest.json").is_file()
    assert main(["export", "--results-dir", str(tmp / "nowhere"), "--out",
                 str(tmp / "exp")]) == 2
    assert "error:" in capsys.readouterr().err


@pytest.mark.slow
def test_export_round_trips_every_builtin_plugin(tmp_path):
    """The bundled checkpoint on 3 samples of every task of the embedded benchmark."""
    from remotesam.bench.run.embedded import ensure_embedded_benchmark

    data = ensure_embedded_benchmark(tmp_path)
    tasks = ["ref", "seg", "det", "vg", "mlc", "mcc", "cnt"]  # cap needs java for scoring
    out = run(RunConfig(tasks=tasks, data_root=data, limit=3, results_dir=tmp_path,
                        device="cpu", progress=False))
    assert not out.errors
    registry = Registry()
    files = export_runs([out.document], tmp_path, tmp_path / "export")
    for res in out.document.results:
        jsonl = next(p for p in files if p.name == f"{res.task}.{res.dataset}.{res.split}.jsonl")
        plugin = registry.get(res.task)()
        _assert_same_metrics(rescore_jsonl(jsonl, plugin), res)
    coco = next(p for p in files if p.name.startswith("det.") and "coco_results" in p.name)
    dets = json.loads(coco.read_text())
    assert dets and set(dets[0]) == {"image_id", "category_id", "bbox", "score"}
    assert all(d["bbox"][2] >= 0 and d["bbox"][3] >= 0 for d in dets)


def test_run_log_samples_writes_the_export(tmp_path, tmp_path_factory):
    site = bs.installed_site(tmp_path_factory)
    write_dataset(tmp_path / "data" / "toy_blobs", n=6, seed=2)
    bs.write_checkpoint(tmp_path / "ck.json", gain=1.0, bias=0.3)
    proc = bs.bench(["run", "--tasks", "toy", "--ckpt", "ck.json", "--data-root", "data",
                     "--device", "cpu", "--model-factory", bs.FACTORY, "--no-progress",
                     "--no-report", "--log-samples", "--run-id", "r1"], bs.cli_env(site),
                    tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    files = sorted((tmp_path / "results" / "samples" / "r1").rglob("*.jsonl"))
    assert [p.name for p in files] == ["toy.blobs.test.jsonl"]
    assert len(read_jsonl(files[0])) == 6
    assert (tmp_path / "results" / "samples" / "manifest.json").is_file()
    assert "per-sample files" in proc.stdout
