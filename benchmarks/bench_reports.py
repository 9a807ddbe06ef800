"""Speed of the reports: bootstrap intervals, the gate's paired test, leaderboard and radar.

Run::

    python -m pytest benchmarks/bench_reports.py --benchmark-columns=min,median,rounds

Cases (sizes recorded in ``extra_info``):

* ``bootstrap_ci`` of a mean metric and of a ratio metric over 10,000 samples, 1,000
  resamples (what the runner does for every metric with per-sample values);
* ``paired_test`` over 10,000 paired samples: the gate's test per metric (exact McNemar for
  0/1 values, a 10,000-permutation test for continuous ones);
* a leaderboard of 20 checkpoints x 8 tasks x 5 metrics with CIs computed from per-sample values
  (1,000 samples each) and published rows, rendered in every format;
* a radar chart of 20 checkpoints x 8 axes written as PNG + SVG + PDF;
* ``remotesam-bench report`` of a 2,000-sample detection run (cold thumbnail cache, then warm):
  the run is built in the benchmark -- a DIOR-format COCO dataset of 2,000 64x64 PNG images
  and a stand-in detector that finds the drawn objects (plus a false alarm per image) -- and
  goes through the real runner, store and ``det`` plugin. ``extra_info`` records the report's
  size in bytes and the number of thumbnails. The issue's budget is 30 s on the project machine.

No timing is asserted; these show that reports never dominate a run.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from remotesam.bench.records.results import CheckpointRef, MetricValue, RunDocument, TaskResult
from remotesam.bench.records.stats import bootstrap_ci, paired_test
from remotesam.bench.reports.leaderboard import build_leaderboard
from remotesam.bench.reports.radar import build_radar, save_radar

N = 10_000
TASKS = [("ref", "rrsisd"), ("seg", "isaid"), ("det", "dior"), ("vg", "dior_rsvg"),
         ("mlc", "dior"), ("mcc", "ucmerced"), ("cap", "ucm_captions"), ("cnt", "dior")]


def _runs(n_ckpt: int = 20, n_samples: int = 1000) -> list[RunDocument]:
    rng = np.random.default_rng(0)
    ids = [f"s{i}" for i in range(n_samples)]
    results = []
    for c in range(n_ckpt):
        ck = CheckpointRef(f"ckpts/epoch{c:02d}.pth", "", f"{c:064x}")
        for task, ds in TASKS:
            vals = 100.0 * rng.random(n_samples)
            metrics = {f"m{k}": MetricValue(float(vals.mean()) + k, primary=k == 0)
                       for k in range(5)}
            metrics["m0"] = MetricValue(float(vals.mean()), primary=True)
            results.append(TaskResult(ck, task, 1, ds, "test", metrics=metrics,
                                      per_sample={"m0": {"sample_ids": ids,
                                                         "values": vals.tolist()}}))
    return [RunDocument(run_id="bench", created="2026-01-01T00:00:00", results=results)]


def test_bootstrap_ci_mean_10k(benchmark):
    x = np.random.default_rng(0).random(N)
    benchmark.extra_info.update(n_samples=N, n_boot=1000)
    lo, hi = benchmark(bootstrap_ci, x)
    assert lo < x.mean() < hi


def test_bootstrap_ci_ratio_10k(benchmark):
    rng = np.random.default_rng(0)
    den = rng.uniform(1, 100, N)
    num = den * rng.random(N)
    benchmark.extra_info.update(n_samples=N, n_boot=1000)
    lo, hi = benchmark(bootstrap_ci, ratio=(num, den))
    assert lo < num.sum() / den.sum() < hi


def test_gate_paired_test_10k_continuous(benchmark):
    rng = np.random.default_rng(0)
    b = rng.random(N)
    a = b - 0.001 + rng.normal(0, 0.05, N)
    benchmark.extra_info.update(n_samples=N, n_perm=10000, values="continuous")
    p, method = benchmark(paired_test, a, b)
    assert 0.0 < p <= 1.0 and "permutation" in method


def test_gate_paired_test_10k_hits(benchmark):
    rng = np.random.default_rng(0)
    b = (rng.random(N) < 0.6).astype(float)
    a = np.where(rng.random(N) < 0.05, 1.0 - b, b)
    benchmark.extra_info.update(n_samples=N, values="0/1")
    p, method = benchmark(paired_test, a, b)
    assert 0.0 < p <= 1.0 and "McNemar" in method


def test_leaderboard_20_checkpoints_all_formats(benchmark):
    runs = _runs()
    benchmark.extra_info.update(checkpoints=20, tasks=8, metrics_per_task=5,
                                per_sample=1000, ci=True, published=True)

    def build_and_render():
        board = build_leaderboard(runs, ci=True, published=True)
        return [board.render(f) for f in ("md", "csv", "html", "latex")]

    out = benchmark.pedantic(build_and_render, rounds=3, iterations=1)
    assert all("epoch19.pth" in text for text in out)


@pytest.mark.slow
def test_radar_20_checkpoints_png_svg(benchmark, tmp_path):
    runs = _runs(n_samples=10)
    benchmark.extra_info.update(checkpoints=20, axes=8)

    def draw():
        return save_radar(build_radar(runs), tmp_path / "radar.png")

    paths = benchmark.pedantic(draw, rounds=2, iterations=1)
    assert all(p.stat().st_size > 0 for p in paths)


# ----------------------------------------------------------------------------- HTML report

N_REPORT = 2000
_SIZE = 64


def _write_dior(root: Path, n: int) -> None:
    """A DIOR-format dataset (COCO json + PNG images): 1-3 filled rectangles per image, the
    red channel tells objects apart, the green channel carries the class index."""
    from remotesam.classes import DIOR_CLASSES

    rng = np.random.default_rng(0)
    (root / "JPEGImages").mkdir(parents=True)
    (root / "Annotations").mkdir(parents=True)
    images, anns = [], []
    for i in range(n):
        arr = np.zeros((_SIZE, _SIZE, 3), np.uint8)
        arr[..., 2] = rng.integers(0, 60, (_SIZE, _SIZE))
        for k in range(int(rng.integers(1, 4))):
            x, y = (int(v) for v in rng.integers(0, _SIZE - 20, 2))
            w, h = (int(v) for v in rng.integers(6, 20, 2))
            cls = int(rng.integers(0, len(DIOR_CLASSES)))
            arr[y:y + h, x:x + w, 0] = 60 + 60 * k
            arr[y:y + h, x:x + w, 1] = 10 * cls
            anns.append({"id": len(anns) + 1, "image_id": i + 1, "category_id": cls + 1,
                         "bbox": [x, y, w, h], "area": w * h, "iscrowd": 0})
        name = f"{i:05d}.png"
        Image.fromarray(arr).save(root / "JPEGImages" / name)
        images.append({"id": i + 1, "file_name": name, "width": _SIZE, "height": _SIZE})
    cats = [{"id": k + 1, "name": c} for k, c in enumerate(DIOR_CLASSES)]
    (root / "Annotations" / "DIOR_test.json").write_text(
        json.dumps({"images": images, "annotations": anns, "categories": cats}))


class _StandInDetector:
    """Finds the rectangles `_write_dior` drew (with a pixel of jitter), plus one false alarm."""

    def detection(self, image, classes, box_type="hbb", epoc=None):
        from remotesam.types import Detections

        boxes, scores, labels = [], [], []
        for k in range(3):
            ys, xs = np.nonzero(image[..., 0] == 60 + 60 * k)
            if len(xs):
                cls = int(image[ys[0], xs[0], 1]) // 10
                boxes.append([xs.min() + 1.0, ys.min(), xs.max() + 1.0, ys.max() + 1.0])
                scores.append(0.9 - 0.2 * k)
                labels.append(cls)
        boxes.append([0.0, 0.0, 12.0, 12.0])
        scores.append(0.5)
        labels.append(int(image[..., 2].sum()) % len(classes))
        return Detections(tuple(classes), "hbb", np.asarray(boxes, np.float64),
                          np.asarray(scores, np.float64), np.asarray(labels, np.int64))


@pytest.fixture(scope="module")
def det_run_2000(tmp_path_factory):
    from remotesam.bench.run import RunConfig, run

    tmp = tmp_path_factory.mktemp("report2000")
    _write_dior(tmp / "data" / "DIORcoco", N_REPORT)
    ckpt = tmp / "standin.bin"
    ckpt.write_bytes(b"stand-in detector")
    out = run(RunConfig(tasks=["det.dior"], checkpoints=[str(ckpt)], data_root=tmp / "data",
                        results_dir=tmp / "results", batch_size=64, device="cpu",
                        progress=False),
              model_factory=lambda path, **kw: _StandInDetector())
    assert not out.errors and out.document.results[0].n_evaluated == N_REPORT
    return tmp, out.document


@pytest.mark.parametrize("cache", ["cold", "warm"])
def test_html_report_2000_samples(benchmark, det_run_2000, cache):
    from remotesam.bench.reports.html import write_report

    tmp, doc = det_run_2000
    thumbs = tmp / "results" / "report_cache"

    def setup():
        if cache == "cold":
            shutil.rmtree(thumbs, ignore_errors=True)

    if cache == "warm":
        write_report([doc], tmp / "results", tmp / "warmup.html", gallery_k=8)
    out = tmp / f"report_{cache}.html"
    path, stats = benchmark.pedantic(
        lambda: write_report([doc], tmp / "results", out, gallery_k=8), setup=setup,
        rounds=2, iterations=1)
    size = path.stat().st_size
    benchmark.extra_info.update(samples=N_REPORT, gallery_k=8, cache=cache, bytes=size,
                                thumbnails=stats.thumbnails, drawn=stats.drawn)
    assert stats.thumbnails == 16 and size < 8_000_000
    assert (stats.drawn == 0) == (cache == "warm")
