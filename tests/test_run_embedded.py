"""The embedded default: the bundled tiny checkpoint on the procedural benchmark.

The committed checkpoint must load through the public loader and reproduce the committed
baseline (``results/baseline.json``, which CI's gate also checks on the full benchmark). Here a
few samples of every task are predicted again and their per-sample values compared with the
baseline's stored ones.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from remotesam.bench.cli.paper import suite_task_options, suite_tasks
from remotesam.bench.run import RunConfig, default_checkpoint, run
from remotesam.bench.run.embedded import ensure_embedded_benchmark
from remotesam.checkpoint import load_checkpoint

#: runs with --limit here evaluate a subset on purpose; the subset note is tested elsewhere
#: (tests/test_run_runner.py::test_limit_task_options_and_cache_key)
pytestmark = pytest.mark.filterwarnings("ignore:evaluated .* a subset:UserWarning")

REPO = Path(__file__).resolve().parents[1]
BASELINE = REPO / "results" / "baseline.json"


def test_bundled_checkpoint_loads_and_is_small():
    path = default_checkpoint()
    assert path.stat().st_size <= 10 * 1024 * 1024
    net = load_checkpoint(path)
    assert net.config.name.startswith("remotesam_tiny")
    assert list(net.ignored_checkpoint_keys) == []  # written by save_checkpoint: nothing to ignore


@pytest.mark.slow
def test_bundled_checkpoint_reproduces_the_baseline(tmp_path):
    baseline = json.loads(BASELINE.read_text())
    data = ensure_embedded_benchmark(tmp_path)
    # the main job's selection: the paper suite with its task options
    outcome = run(RunConfig(tasks=suite_tasks("paper"), task_options=suite_task_options("paper"),
                            data_root=data, limit=3, results_dir=tmp_path, device="cpu",
                            progress=False))
    assert not outcome.errors
    by_key = {(r.task, r.dataset): r for r in outcome.document.results}
    assert {(m["task"], m["dataset"]) for m in baseline["metrics"]} == set(by_key)
    compared = 0
    for m in baseline["metrics"]:
        ps = m.get("per_sample")
        res = by_key[(m["task"], m["dataset"])]
        if not ps or m["metric"] not in res.per_sample or m["task"] == "cap":
            continue  # captioning's per-sample CIDEr depends on the corpus (IDF): not comparable
        base = dict(zip(ps["sample_ids"], ps["values"]))
        now = res.per_sample[m["metric"]]
        for sid, v in zip(now["sample_ids"], now["values"]):
            b = base[sid]
            if isinstance(b, float) and math.isnan(b):
                continue
            # per-sample IoU/accuracy in the metric's unit; a flipped boundary pixel moves an
            # IoU by a fraction of a point, a different prediction by far more
            assert abs(float(v) - float(b)) <= 1.0, (m["task"], m["metric"], sid, v, b)
            compared += 1
    assert compared >= 10
