"""Per-sample export: JSONL per task/dataset and COCO results; re-scoring the export gives the
run's metrics (round trip), for the test-only `toy` plugin and for the built-in plugins."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "fixtures"))

import bench_support as bs
from rsb_toy.data import write_dataset
from rsb_toy.fakemodel import load

from remotesam.bench.api.registry import Registry
from remotesam.bench.errors import InputError
from remotesam.bench.reports.export import export_runs, load_result, read_jsonl, rescore_jsonl
from remotesam.bench.run import RunConfig, run

#: runs with --limit here evaluate a subset on purpose; the subset note is tested elsewhere
#: (tests/test_run_runner.py::test_limit_task_options_and_cache_key)
pytestmark = pytest.mark.filterwarnings("ignore:evaluated .* a subset:UserWarning")


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


def _cocoeval(gt_file: Path, results_file: Path, max_dets: list[int] | None) -> list[float]:
    """Plain pycocotools, as a user would run it on the exported files: the 12 stats, then
    the mean valid precision at the last maxDets (the sidecar's rule for mAP)."""
    import contextlib
    import io

    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(gt_file))
        ev = COCOeval(gt, gt.loadRes(str(results_file)), "bbox")
        if max_dets is not None:
            ev.params.maxDets = list(max_dets)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    prec = ev.eval["precision"][:, :, :, 0, -1]
    return [float(v) for v in ev.stats] + [float(prec[prec > -1].mean())]


def _check_sidecar(files: list[Path], res) -> dict:
    stem = f"{res.task}.{res.dataset}.{res.split}"
    by_name = {p.name: p for p in files}
    side = json.loads(by_name[f"{stem}.coco_eval.json"].read_text())
    assert side["iouType"] == "bbox"
    results = by_name[f"{stem}.coco_results.json"]
    dets = json.loads(results.read_text())
    assert dets and all(isinstance(v, int) for d in dets for v in d["bbox"])  # int() boxes
    stats = _cocoeval(by_name[side["ground_truth"]], results, side["params"]["maxDets"])
    assert 100 * stats[1] == pytest.approx(res.metrics["mAP50"].value, abs=1e-9)
    assert 100 * stats[-1] == pytest.approx(res.metrics["mAP"].value, abs=1e-9)
    assert side["harness_metrics"]["mAP50"] == res.metrics["mAP50"].value
    return {"side": side, "results": results, "stats": stats}


@pytest.mark.slow
def test_exported_coco_files_give_the_run_number_with_pycocotools(tmp_path):
    """DIOR layout of the procedural benchmark, the bundled checkpoint: COCOeval on the exported
    results (official int() boxes) + the exported ground truth, or + the dataset's own
    DIOR_test.json, with the sidecar's settings, gives the run's mAP50 and mAP."""
    from remotesam.bench.run.embedded import ensure_embedded_benchmark

    data = ensure_embedded_benchmark(tmp_path)
    out = run(RunConfig(tasks=["det.dior"], data_root=data, limit=6, results_dir=tmp_path,
                        device="cpu", progress=False))
    assert not out.errors
    files = export_runs([out.document], tmp_path, tmp_path / "export")
    (res,) = out.document.results
    got = _check_sidecar(files, res)
    side = got["side"]
    assert side["params"]["maxDets"] == [1, 10, 100]
    # a --limit subset: the dataset's whole json would count the other images' objects
    assert side["dataset_ground_truth"] is None
    # the dataset's own json cut to the evaluated images (its own image and category ids)
    ann = json.loads((data / "DIORcoco" / "Annotations" / "DIOR_test.json").read_text())
    assert side["category_ids"] == {c["name"]: c["id"] for c in ann["categories"]}
    ids = {im["id"] for im in json.loads(
        (got["results"].parent / side["ground_truth"]).read_text())["images"]}
    ann["images"] = [im for im in ann["images"] if im["id"] in ids]
    ann["annotations"] = [a for a in ann["annotations"] if a["image_id"] in ids]
    own = tmp_path / "DIOR_test_subset.json"
    own.write_text(json.dumps(ann))
    stats = _cocoeval(own, got["results"], side["params"]["maxDets"])
    assert 100 * stats[1] == pytest.approx(res.metrics["mAP50"].value, abs=1e-9)


@pytest.mark.realdata
def test_exported_dota_coco_files_state_the_uncapped_max_dets(real_data, tmp_path, monkeypatch):
    """DOTA keeps every detection: on a real patch with 263 small vehicles, plain COCOeval with
    its default maxDets=100 gives another number; the sidecar's maxDets gives the run's."""
    from remotesam.bench.api import BoxesPrediction
    from remotesam.bench.api import Detections as Parts
    from remotesam.types import Detections
    from remotesam_plugins.det import DetectionTask, DOTADetectionAdapter

    def echo_predict(self, model, samples):  # the fake answers per task method, not requests
        out = []
        for smp in samples:
            d = model.detection(None, list(self._classes(smp)))
            out.append(BoxesPrediction(
                (int(smp.meta.get("height", 1024)), int(smp.meta.get("width", 1024))),
                hbb=Parts.from_arrays(d.boxes, d.scores, d.labels, d.classnames)).encode())
        return out

    monkeypatch.setattr(DetectionTask, "predict", echo_predict)
    monkeypatch.setattr(DetectionTask, "uses_requests", classmethod(lambda cls: False))

    root = real_data / "dota" / "split_patch"
    (s,) = DOTADetectionAdapter(root).samples()
    classes = tuple(DOTADetectionAdapter.classes)
    rng = np.random.default_rng(0)
    labels = s.target["labels"]
    boxes = np.asarray(s.target["bbox_xyxy"], np.float64) + rng.uniform(0, 0.9, (len(labels), 4))

    class Echo:  # returns the ground truth, jittered, with random scores
        def detection(self, image, classnames, box_type="hbb", epoc=None):
            return Detections(classnames=tuple(classnames), box_type="hbb", boxes=boxes,
                              scores=rng.uniform(0.3, 1.0, len(labels)),
                              labels=np.array([classnames.index(c) for c in labels]))

    ckpt = tmp_path / "echo.ckpt"
    ckpt.write_bytes(b"echo")
    out = run(RunConfig(tasks=["det.dotav2"], checkpoints=[str(ckpt)],
                        dataset_roots={"det.dotav2": root}, results_dir=tmp_path / "r",
                        device="cpu", progress=False),
              model_factory=lambda p, **kw: Echo())
    assert not out.errors, out.errors
    files = export_runs([out.document], tmp_path / "r", tmp_path / "export")
    (res,) = out.document.results
    got = _check_sidecar(files, res)
    md = got["side"]["params"]["maxDets"][-1]
    assert md >= len(labels) > 100 and set(got["side"]["category_ids"]) == set(classes)
    capped = _cocoeval(Path(files[0]).parent / got["side"]["ground_truth"], got["results"], None)
    assert abs(100 * capped[1] - res.metrics["mAP50"].value) > 1.0
    assert got["side"]["dataset_ground_truth"] is None
