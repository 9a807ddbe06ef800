"""Scoring speed of the ``det``, ``mlc``, ``cnt`` and ``cap`` plugins (never the bottleneck).

Run: ``python -m pytest benchmarks/bench_scoring_det.py --benchmark-only``

* ``test_score_det_10k_hbb[pycocotools|faster-coco-eval]``: 1,000 DIOR-like images, 20 classes,
  ~5 GT boxes and 10 predictions per image (10,000 predictions): COCO bbox AP per class.
* ``test_score_det_10k_obb``: the same with 4-point rotated polygons (hbb COCO AP + polygon AP50).
* ``test_score_mlc_10k`` / ``test_score_cnt_10k``: 10,000 images / questions.
* ``test_score_cap_2k[nometeor|meteor]``: 2,000 captions against 5 references each (PTB
  tokenizer, official CIDEr, CIDEr-D, BLEU, ROUGE-L; METEOR starts Java). Needs Java.
"""

from __future__ import annotations

import math
import shutil

import numpy as np
import pytest
import sklearn.metrics  # noqa: F401  (imported here so the mlc timing excludes the import)

from remotesam.bench.api import Sample
from remotesam_plugins._detection_common import DIOR_CLASSES, DOTA_CLASSES
from remotesam_plugins.cap import CaptioningTask
from remotesam_plugins.cnt import CountingTask
from remotesam_plugins.det import DetectionTask
from remotesam_plugins.metrics.detection import xyxy_to_polygon
from remotesam_plugins.mlc import MultiLabelClassificationTask

N_IMG = 1_000
DETS_PER_IMG = 10


def _det_data(classes: tuple[str, ...], obb: bool) -> tuple[list[Sample], list[dict]]:
    rng = np.random.default_rng(0)
    samples, preds = [], []
    for i in range(N_IMG):
        n = 5
        xy = rng.uniform(0, 700, (n, 2))
        gt = np.concatenate([xy, xy + rng.uniform(8, 100, (n, 2))], 1)
        lab = [classes[int(k)] for k in rng.integers(0, len(classes), n)]
        target = {"bbox_xyxy": gt.tolist(), "labels": lab, "difficult": [0] * n}
        if obb:
            target["polygons"] = xyxy_to_polygon(gt).tolist()
        samples.append(
            Sample(f"{i:05d}", f"{i:05d}.jpg", target, {"dataset": "dotav2" if obb else "dior"})
        )
        boxes, labels = [], []
        for j in range(DETS_PER_IMG):
            if j < n:
                b = gt[j] + rng.normal(0, 5, 4)
                labels.append(lab[j])
            else:
                c = rng.uniform(0, 700, 2)
                b = np.r_[c, c + rng.uniform(8, 100, 2)]
                labels.append(classes[int(rng.integers(0, len(classes)))])
            boxes.append([min(b[0], b[2]), min(b[1], b[3]), max(b[0], b[2]), max(b[1], b[3])])
        part = {"boxes": boxes, "scores": rng.random(DETS_PER_IMG).tolist(), "labels": labels}
        pred = {"size": [800, 800], "hbb": part}
        if obb:
            pred["obb"] = {**part, "boxes": xyxy_to_polygon(np.array(boxes)).tolist()}
        preds.append(pred)
    return samples, preds


@pytest.mark.parametrize("backend", ["pycocotools", "faster-coco-eval"])
def test_score_det_10k_hbb(benchmark, backend: str) -> None:
    samples, preds = _det_data(DIOR_CLASSES, obb=False)
    task = DetectionTask({"coco_backend": backend})
    benchmark.extra_info.update(
        {
            "task": "det",
            "images": N_IMG,
            "predictions": N_IMG * DETS_PER_IMG,
            "classes": len(DIOR_CLASSES),
            "backend": backend,
        }
    )
    scores = benchmark.pedantic(task.score, args=(samples, preds), rounds=1, iterations=1)
    assert 0 < scores.metrics["mAP50"] <= 100


def test_score_det_10k_obb(benchmark) -> None:
    samples, preds = _det_data(DOTA_CLASSES, obb=True)
    task = DetectionTask({"box_type": "both"})
    benchmark.extra_info.update(
        {
            "task": "det",
            "images": N_IMG,
            "predictions": N_IMG * DETS_PER_IMG,
            "classes": len(DOTA_CLASSES),
            "box_type": "both",
        }
    )
    scores = benchmark.pedantic(task.score, args=(samples, preds), rounds=1, iterations=1)
    assert scores.metrics["mAP50_obb"] == pytest.approx(scores.metrics["mAP50"], abs=5.0)


def test_score_mlc_10k(benchmark) -> None:
    rng = np.random.default_rng(0)
    samples, preds = [], []
    for i in range(10_000):
        present = [c for c in DIOR_CLASSES if rng.random() < 0.15]
        samples.append(Sample(str(i), f"{i}.jpg", {"labels": present}, {"dataset": "dior"}))
        sc = rng.random(len(DIOR_CLASSES))
        preds.append({"classnames": list(DIOR_CLASSES), "scores": sc.tolist(),
                      "labels": [c for c, s in zip(DIOR_CLASSES, sc) if s > 0.5]})
    task = MultiLabelClassificationTask()
    benchmark.extra_info.update({"task": "mlc", "images": 10_000})
    scores = benchmark.pedantic(task.score, args=(samples, preds), rounds=1, iterations=1)
    assert 0 < scores.metrics["accuracy"] < 100


def test_score_cnt_10k(benchmark) -> None:
    rng = np.random.default_rng(0)
    gt = rng.integers(0, 20, 10_000)
    samples = [Sample(str(i), f"{i}.png", {"count": int(g), "class": "ship"}, {"prior_area": 14.0})
               for i, g in enumerate(gt)]
    preds = [{"count": int(g + rng.integers(-1, 2)), "class": "ship"} for g in gt]
    task = CountingTask()
    benchmark.extra_info.update({"task": "cnt", "questions": 10_000})
    scores = benchmark.pedantic(task.score, args=(samples, preds), rounds=1, iterations=1)
    assert 0 < scores.metrics["accuracy"] < 100


WORDS = [
    "there",
    "are",
    "many",
    "buildings",
    "trees",
    "roads",
    "cars",
    "a",
    "the",
    "in",
    "of",
    "with",
    "some",
    "green",
    "large",
    "small",
    "white",
    "parking",
    "lot",
    "residential",
    "area",
    "river",
    "bridge",
    "airplane",
    "runway",
    "beach",
    "sea",
    "farmland",
]


@pytest.mark.skipif(shutil.which("java") is None, reason="needs Java (PTB tokenizer, METEOR)")
@pytest.mark.parametrize("meteor", [False, True], ids=["nometeor", "meteor"])
def test_score_cap_2k(benchmark, meteor: bool) -> None:
    rng = np.random.default_rng(0)

    def sent() -> str:
        return (
            " ".join(WORDS[int(k)] for k in rng.integers(0, len(WORDS), int(rng.integers(5, 14))))
            + " ."
        )

    samples = [
        Sample(str(i), f"{i}.tif", {"references": [sent() for _ in range(5)]}) for i in range(2_000)
    ]
    preds = [{"caption": sent(), "seed": 0} for _ in samples]
    task = CaptioningTask({"meteor": meteor})
    benchmark.extra_info.update(
        {"task": "cap", "captions": 2_000, "references": 10_000, "meteor": meteor}
    )
    scores = benchmark.pedantic(task.score, args=(samples, preds), rounds=1, iterations=1)
    assert scores.metrics["CIDEr"] > 0 and math.isnan(scores.metrics["SPICE"])
