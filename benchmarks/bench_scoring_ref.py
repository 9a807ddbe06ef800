"""Scoring speed of the ``ref`` (and ``vg``) plugins: scoring must never be the bottleneck.

Run: ``python -m pytest benchmarks/bench_scoring_ref.py --benchmark-only``

``test_score_ref_10k_masks_896``: 10,000 referring expressions, RRSIS-D-like 800x800 ground
truth (COCO RLE), predictions as RLE at 896x896 (network size) and 800x800 (original size);
scoring decodes, resizes the GT to 896 (PIL nearest), computes I/U at 896 and at the original
size (on the RLEs). 50 distinct masks are cycled so that no two consecutive samples share a
target (no decode caching helps).
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from remotesam.bench.api import Sample
from remotesam.bench.kit import mask_to_rle, resize_nearest
from remotesam_plugins.ref import ReferringSegmentationTask
from remotesam_plugins.vg import VisualGroundingTask

N_REF = 10_000
N_VG = 10_000


def _blob(rng: np.random.Generator, size: int) -> np.ndarray:
    yy, xx = np.mgrid[:size, :size]
    cy, cx = rng.uniform(0.2, 0.8, 2) * size
    ry, rx = rng.uniform(0.03, 0.25, 2) * size
    return (((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1).astype(np.uint8)


@pytest.fixture(scope="module")
def ref_data() -> tuple[list[Sample], list[dict]]:
    rng = np.random.default_rng(0)
    gts, preds = [], []
    for _ in range(50):
        g = _blob(rng, 800)
        p = np.roll(g, int(rng.integers(-30, 30)), axis=1)
        gts.append(mask_to_rle(g))
        preds.append({"mask": mask_to_rle(p), "mask_net": mask_to_rle(resize_nearest(p, 896))})
    samples = [
        Sample(
            f"{i}:{i}",
            f"{i:05d}.jpg",
            {"mask_rle": dict(gts[i % 50]), "size": [800, 800]},
            {"sentence": "x"},
        )
        for i in range(N_REF)
    ]
    return samples, [dict(preds[i % 50]) for i in range(N_REF)]


def test_score_ref_10k_masks_896(benchmark, ref_data) -> None:
    samples, preds = ref_data
    task = ReferringSegmentationTask()
    benchmark.extra_info.update(
        {"task": "ref", "expressions": N_REF, "eval_size": 896, "gt_size": 800, "net_size": 896}
    )
    cpu0 = time.process_time()
    scores = benchmark.pedantic(task.score, args=(samples, preds), rounds=1, iterations=1)
    # CPU seconds of this process: the cost without other load on a shared machine
    benchmark.extra_info["cpu_s"] = round(time.process_time() - cpu0, 2)
    assert 0 < scores.metrics["oIoU"] < 100


def test_score_vg_10k_boxes(benchmark) -> None:
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 700, (N_VG, 2))
    wh = rng.uniform(5, 100, (N_VG, 2))
    gt = np.concatenate([xy, xy + wh], axis=1)
    pred = gt + rng.normal(0, 5, gt.shape)
    samples = [Sample(str(i), "x.jpg", {"bbox_xyxy": gt[i].tolist()}) for i in range(N_VG)]
    preds = [{"box": pred[i].tolist() if i % 10 else None, "score": 0.9} for i in range(N_VG)]
    benchmark.extra_info.update({"task": "vg", "expressions": N_VG})
    scores = benchmark.pedantic(
        VisualGroundingTask().score, args=(samples, preds), rounds=3, iterations=1
    )
    assert scores.metrics["no_box_rate"] == pytest.approx(10.0)
