"""Speed of the reports: bootstrap intervals, the gate's paired test, leaderboard and radar.

Run::

    python -m pytest benchmarks/bench_reports.py --benchmark-columns=min,median,rounds

Cases (sizes recorded in ``extra_info``):

* ``bootstrap_ci`` of a mean metric and of a ratio metric over 10,000 samples, 1,000
  resamples (what the runner does for every metric with per-sample values);
* ``paired_bootstrap_pvalue`` over 10,000 paired samples, 1,000 resamples (the gate, per metric);
* a leaderboard of 20 checkpoints x 8 tasks x 5 metrics with CIs computed from per-sample values
  (1,000 samples each) and published rows, rendered in every format;
* a radar chart of 20 checkpoints x 8 axes written as PNG + SVG.

No timing is asserted; these show that reports never dominate a run.
"""

from __future__ import annotations

import numpy as np
import pytest

from remotesam.bench.leaderboard import build_leaderboard
from remotesam.bench.radar import build_radar, save_radar
from remotesam.bench.results import CheckpointRef, MetricValue, RunDocument, TaskResult
from remotesam.bench.stats import bootstrap_ci, paired_bootstrap_pvalue

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


def test_paired_bootstrap_10k(benchmark):
    rng = np.random.default_rng(0)
    b = rng.random(N)
    a = b - 0.001 + rng.normal(0, 0.05, N)
    benchmark.extra_info.update(n_samples=N, n_boot=1000)
    p = benchmark(paired_bootstrap_pvalue, a, b)
    assert 0.0 < p <= 1.0


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
