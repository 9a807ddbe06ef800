"""Multi-label classification (``mlc``): DIOR (COCO json) and DOTA-v2 (label files).

Protocol reproduced (official ``tasks/code/eval/MLC.py``, ``model.multi_label_cls``,
``metric/RunningScore.py``):

* DIOR test images from ``DIOR_test.json``; ground truth = the set of categories present
  (images without annotations are not evaluated, as in the official list).
* ``model.multi_label_cls(image, classes)``: prompt ``"{class} in the image"``, score
  ``0.5*max + 0.5*mean`` of the class probability map at network resolution, positive when
  ``score > 0.5`` (strict) - all inside the predictor.
* **accuracy** (official, primary) = ``MultiLabelRunningScore.accuracy()``:
  ``(TP + TN) / (TP + TN + FP + FN)`` over **every (image, class) pair** (label-wise / Hamming
  accuracy). Tested equal to the official golden values.

Reported beside it under their own names (implemented in ``RunningScore.py`` but never printed,
or standard): ``exact_match`` (subset accuracy), ``f1_micro``, ``f1_macro``, ``mAP`` (mean
average precision over classes that have positives, from the scores).

Deviations, deliberate:

* Categories of the COCO json are mapped **by name** (a public converter with other ids would
  make the official ``category_id - 1`` one-hot silently wrong, or write id 0 into windmill).
* DOTA-v2: the official ``DOTAv2_MLC`` loader skips ground truth for ``--split test``
  (all-negative labels) and ``MLC.sh`` only runs DIOR; we read the labels of the ``val`` /
  ``train`` split with the official name mapping (plane->airplane, storage-tank->storagetank,
  ...) in the DET_DOTA class order; an unknown class name is a :class:`DatasetError` (the
  official ``classes.index`` raises ``ValueError``). Header lines are allowed.
* ``mAP`` skips classes without any positive image (AP undefined) instead of letting
  scikit-learn warn and score them 0.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from remotesam.bench.api import (
    DatasetAdapter,
    MetricSpec,
    Prediction,
    Sample,
    Scores,
    TaskPlugin,
)
from remotesam.bench.api.predictions import MultiLabels
from remotesam.bench.kit import (
    check_options,
    check_score_lengths,
    sample_dataset_classes,
)

from ._satin_multilabel import (
    AIDMultiLabelAdapter,
    MLRSNetAdapter,
    MultiSceneCleanAdapter,
    UCMMultiLabelAdapter,
)
from .det import DIORDetectionAdapter, DOTADetectionAdapter
from .metrics.multilabel import multilabel_confusion, multilabel_metrics, per_sample_multilabel

__all__ = ["DIORMultiLabelAdapter", "DOTAMultiLabelAdapter", "MultiLabelClassificationTask"]


def _to_multilabel(samples: list[Sample], classes: Sequence[str]) -> list[Sample]:
    order = {c: k for k, c in enumerate(classes)}
    out = []
    for s in samples:
        present = sorted(set(s.target["labels"]), key=order.__getitem__)
        out.append(
            Sample(
                sample_id=s.sample_id, image=s.image, target={"labels": present}, meta=dict(s.meta)
            )
        )
    return out


class DIORMultiLabelAdapter(DIORDetectionAdapter):
    """DIOR multi-label: the detection COCO json read as per-image class sets.

    ``Sample.target``: ``labels`` = the classes present, in official order. Options as for
    :class:`remotesam_plugins.det.DIORDetectionAdapter` (``ann_file``, ``image_dir``).
    """

    def samples(self) -> list[Sample]:
        """One sample per annotated image (json order); see the detection adapter for errors."""
        return _to_multilabel(super().samples(), self.classes)


class DOTAMultiLabelAdapter(DOTADetectionAdapter):
    """DOTA-v2 multi-label: label files read as per-image class sets (difficult objects count).

    Images without objects are kept (all classes negative). Options: ``image_dir``, ``label_dir``.
    """

    def samples(self) -> list[Sample]:
        """One sample per image (sorted by name); see the detection adapter for errors."""
        return _to_multilabel(super().samples(), self.classes)


class MultiLabelClassificationTask(TaskPlugin):
    """Multi-label classification: official label-wise accuracy plus F1 / mAP / exact match."""

    name: ClassVar[str] = "mlc"
    title: ClassVar[str] = "Multi-label cls."
    version: ClassVar[int] = 1
    description: ClassVar[str] = (
        "multi-label classification (DIOR, DOTA-v2, SATIN sets): label-wise accuracy"
    )
    metrics: ClassVar[tuple[MetricSpec, ...]] = (
        MetricSpec("accuracy", primary=True, official=True,
                   description="(TP+TN)/all over every image-class pair (official, paper Table 6)"),
        MetricSpec("exact_match", official=False, description="share of images whose label set is "
                                                              "exactly right"),
        MetricSpec("f1_micro", official=False, description="micro F1 over all image-class pairs"),
        MetricSpec("f1_macro", official=False, description="mean of per-class F1"),
        MetricSpec("mAP", official=False, description="mean average precision over classes with "
                                                      "positives"),
    )  # fmt: skip
    datasets: ClassVar[Mapping[str, type[DatasetAdapter]]] = {
        "dior": DIORMultiLabelAdapter,
        "dotav2": DOTAMultiLabelAdapter,
        "ucm_multilabel": UCMMultiLabelAdapter,
        "aid_multilabel": AIDMultiLabelAdapter,
        "multiscene": MultiSceneCleanAdapter,
        "mlrsnet": MLRSNetAdapter,
    }
    default_dataset: ClassVar[str] = "dior"

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        super().__init__(options)
        check_options("mlc task", self.options, error=ValueError, kind="task")

    def _classes(self, s: Sample) -> tuple[str, ...]:
        return sample_dataset_classes(self, s)

    def requests(self, s: Sample) -> list[Any]:
        """One request: the dataset's class prompts, pooled scores only (GMP and GAP)."""
        from remotesam.engine import Request
        from remotesam.text import prompt

        return [Request(s.image, tuple(prompt(c) for c in self._classes(s)), frozenset({"pooled"}))]

    def reduce(self, s: Sample, answers: Sequence[Any]) -> Prediction:
        """``0.5*GMP + 0.5*GAP > 0.5`` (:func:`remotesam.reduce.multi_label`), as
        :meth:`predict`."""
        from remotesam import reduce as rd
        from remotesam.predictor import DEFAULTS

        (ans,) = answers
        res = rd.multi_label(
            ans, tuple(self._classes(s)), DEFAULTS["mlc_factor"], DEFAULTS["mlc_threshold"]
        )
        scores = np.asarray(res.scores, dtype=np.float64).reshape(-1)
        return MultiLabels(
            tuple(res.classnames), tuple(float(v) for v in scores), tuple(res.labels)
        ).encode()

    def score(self, samples: Sequence[Sample], predictions: Sequence[Prediction]) -> Scores:
        """Metrics in percent; ``per_sample`` accuracy / exact_match, ``per_sample_ratio``
        f1_micro; ``tables``: ``per_class`` (accuracy, AP, positives), ``confusion`` per class
        ``[[tn, fp], [fn, tp]]``."""
        check_score_lengths(samples, predictions)
        if not samples:
            return Scores(metrics={m.name: float("nan") for m in self.metrics})
        classes = self._classes(samples[0])
        index = {c: k for k, c in enumerate(classes)}
        n, K = len(samples), len(classes)
        y_true = np.zeros((n, K), dtype=bool)
        y_pred = np.zeros((n, K), dtype=bool)
        y_score = np.zeros((n, K), dtype=np.float64)
        for i, (s, p) in enumerate(zip(samples, predictions)):
            try:
                y_true[i, [index[c] for c in s.target["labels"]]] = True
                pred = MultiLabels.decode(p)
                for c, v in zip(pred.classnames, pred.scores):
                    y_score[i, index[c]] = v
                y_pred[i, [index[c] for c in pred.labels]] = True
            except (KeyError, TypeError, ValueError) as e:
                raise ValueError(
                    f"sample {s.sample_id}: malformed ground truth or prediction ({e!r}); classes "
                    f"must be among {list(classes)}; re-run predict if the cache is stale"
                ) from None
        m: dict[str, Any] = multilabel_metrics(y_true, y_pred, y_score)
        ps: dict[str, Any] = per_sample_multilabel(y_true, y_pred)
        num, den = ps["f1_micro"]
        positives = y_true.sum(0)
        conf = multilabel_confusion(y_true, y_pred)
        per_class = [
            {"class": c, "accuracy": 100.0 * float(m["accuracy_per_class"][k]),
             "AP": None if np.isnan(m["ap_per_class"][k]) else 100.0 * float(m["ap_per_class"][k]),
             "positives": int(positives[k])}
            for k, c in enumerate(classes)
        ]  # fmt: skip
        return Scores(
            metrics={
                "accuracy": 100.0 * float(m["accuracy"]),
                "exact_match": 100.0 * float(m["exact_match"]),
                "f1_micro": 100.0 * float(m["f1_micro"]),
                "f1_macro": 100.0 * float(m["f1_macro"]),
                "mAP": 100.0 * float(m["mAP"]),
            },
            per_sample={
                "accuracy": 100.0 * ps["accuracy"],
                "exact_match": 100.0 * ps["exact_match"],
            },
            per_sample_ratio={"f1_micro": (100.0 * num, den)},
            tables={
                "per_class": per_class,
                "confusion": {c: conf[k].tolist() for k, c in enumerate(classes)},
            },
            sample_ids=[s.sample_id for s in samples],
        )
