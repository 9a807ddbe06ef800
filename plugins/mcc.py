"""Scene (multi-class) classification (``mcc``): UC Merced LandUse class folders.

Protocol reproduced (official ``tasks/code/eval/MCC.py`` + ``UCM_MCC`` loader):

* **every image in every class folder** of ``UCMerced_LandUse/Images`` (no split: all 2,100);
* the 21 official class names, prompted as ``"{class} in the image"`` through
  ``model.multi_class_cls`` (max-pooled probability, the code's ``MCC_balance_factor = 1.0``);
  three names differ from their folders: baseballfield -> ``baseballdiamond``,
  golffield -> ``golfcourse``, storagetank -> ``storagetanks``;
* prediction = ``argmax`` of the 21 scores (ties -> first class; the predictor's 0.5 "no class"
  floor plays no part), confusion matrix rows = true class; ``accuracy`` = top-1 (official).

Beside it (not official): ``mean_class_accuracy`` (balanced accuracy), ``macro_f1`` and
``accuracy_floor`` (the predictor's own answer, where "no class above 0.5" counts as wrong);
tables: per-class accuracy and the confusion matrix.

Deviations from the official code, all deliberate:

* Only image files are taken (``.tif/.tiff/.png/.jpg/.jpeg/.bmp``, hidden files skipped); the
  official loader lists every file, so a stray ``Thumbs.db`` would crash it.
* Folders outside the 21 official ones are ignored (as the official class list does); a missing
  official folder raises :class:`DatasetError`.
* The split is called ``all`` (UC Merced has no official split; the official ``--split`` flag is
  ignored by its loader); ``test`` is accepted as an alias so that a run-wide ``--split test``
  works, and yields the same 2,100 images.
* The official ``RunningScore`` adds ``1e-15`` to denominators (last-bit differences only; not
  reproduced). The paper's Eq. 3 calls this setting lambda = 1 = *mean* pooling, the code uses
  *max* pooling; the predictor follows the code.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from remotesam.bench.api import (
    DatasetAdapter,
    DatasetError,
    DatasetInfo,
    MetricSpec,
    Prediction,
    Sample,
    Scores,
    TaskPlugin,
)
from remotesam.bench.api.predictions import PredictionFormatError, SceneLabel
from remotesam.bench.kit import check_options, check_score_lengths, image_files
from remotesam.classes import UCM_CLASSES, UCM_FOLDERS

from ._datasets import DATASET_INFO
from .metrics.classification import (
    confusion_matrix,
    multiclass_metrics,
    per_class_accuracy,
    scores_to_labels,
)

__all__ = ["UCM_CLASSES", "UCM_FOLDERS", "SceneClassificationTask", "UCMercedAdapter"]


class UCMercedAdapter(DatasetAdapter):
    """UC Merced LandUse: ``Images/<folder>/<folder>NN.tif``, 21 x 100 images.

    ``root`` may be ``UCMerced_LandUse`` (holding ``Images/``) or the ``Images`` folder itself.
    """

    name: ClassVar[str] = "ucmerced"
    info: ClassVar[DatasetInfo | None] = DATASET_INFO["ucmerced"]
    title: ClassVar[str] = "UCM"
    splits: ClassVar[tuple[str, ...]] = ("all", "test")
    default_split: ClassVar[str] = "all"
    default_subdir: ClassVar[str] = "UCMerced_LandUse"
    classes: ClassVar[tuple[str, ...]] = UCM_CLASSES
    layout: ClassVar[str] = (
        "<root>/                          (e.g. refer/data/UCMerced_LandUse)\n"
        "  Images/agricultural/agricultural00.tif ...\n"
        "  Images/baseballdiamond/...  Images/golfcourse/...  Images/storagetanks/...\n"
        "  (21 class folders)\n"
    )

    def __init__(self, root: str | Path, split: str | None = None, **options: Any) -> None:
        super().__init__(root, split, **options)
        check_options("ucmerced", self.options)
        self.image_root = self.root / "Images" if (self.root / "Images").is_dir() else self.root
        missing = [f for f in UCM_FOLDERS.values() if not (self.image_root / f).is_dir()]
        if missing:
            raise DatasetError(
                f"ucmerced: {len(missing)} class folder(s) missing under {self.image_root}: "
                f"{', '.join(missing[:6])}{' ...' if len(missing) > 6 else ''}\nExpected "
                f"layout:\n{self.layout}"
            )

    def samples(self) -> list[Sample]:
        """All images, class by class in official order, files sorted by name.

        ``sample_id`` = ``"<folder>/<file name>"``; ``target``: ``label`` (official class name),
        ``label_index``.
        """
        out: list[Sample] = []
        for idx, cls in enumerate(UCM_CLASSES):
            folder = self.image_root / UCM_FOLDERS[cls]
            files = image_files(folder)
            if not files:
                raise DatasetError(
                    f"ucmerced: class folder {folder} holds no image\nExpected "
                    f"layout:\n{self.layout}"
                )
            out.extend(
                Sample(
                    sample_id=f"{folder.name}/{f.name}",
                    image=f,
                    target={"label": cls, "label_index": idx},
                    meta={"folder": folder.name},
                )
                for f in files
            )
        return out


class SceneClassificationTask(TaskPlugin):
    """Scene classification: top-1 accuracy of the argmax over class scores (official)."""

    name: ClassVar[str] = "mcc"
    title: ClassVar[str] = "Scene cls."
    version: ClassVar[int] = 1
    description: ClassVar[str] = "scene (multi-class) classification (UC Merced LandUse)"
    metrics: ClassVar[tuple[MetricSpec, ...]] = (
        MetricSpec(
            "accuracy",
            primary=True,
            official=True,
            description="top-1 accuracy of argmax(scores) (official)",
        ),
        MetricSpec(
            "mean_class_accuracy",
            official=False,
            description="mean per-class accuracy (balanced accuracy)",
        ),
        MetricSpec("macro_f1", official=False, description="macro-averaged F1"),
        MetricSpec(
            "accuracy_floor",
            official=False,
            description="top-1 accuracy where 'no class >= 0.5' counts as wrong",
        ),
    )
    datasets: ClassVar[Mapping[str, type[DatasetAdapter]]] = {"ucmerced": UCMercedAdapter}
    default_dataset: ClassVar[str] = "ucmerced"

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        super().__init__(options)
        check_options("mcc task", self.options, error=ValueError, kind="task")

    def requests(self, sample: Sample) -> list[Any]:
        """One request: the 21 UC Merced class prompts, pooled scores only."""
        from remotesam.engine import Request
        from remotesam.text import prompt

        return [Request(sample.image, tuple(prompt(c) for c in UCM_CLASSES), frozenset({"pooled"}))]

    def reduce(self, sample: Sample, answers: Sequence[Any]) -> Prediction:
        """Argmax of the GMP scores (:func:`remotesam.reduce.multi_class`), as :meth:`predict`."""
        from remotesam import reduce as rd
        from remotesam.predictor import DEFAULTS

        (ans,) = answers
        res = rd.multi_class(ans, tuple(UCM_CLASSES), DEFAULTS["mcc_factor"], DEFAULTS["mcc_floor"])
        scores = np.asarray(res.scores, dtype=np.float64).reshape(-1)
        return SceneLabel(tuple(UCM_CLASSES), tuple(scores.tolist()), res.label).encode()

    def score(self, samples: Sequence[Sample], predictions: Sequence[Prediction]) -> Scores:
        """Metrics in percent; per-sample 0/100 hits for ``accuracy`` and ``accuracy_floor``."""
        check_score_lengths(samples, predictions)
        k = len(UCM_CLASSES)
        y_true = np.asarray([int(s.target["label_index"]) for s in samples], dtype=np.int64)
        scores = np.zeros((len(samples), k))
        floor_hit = np.zeros(len(samples))
        for i, (s, p) in enumerate(zip(samples, predictions)):
            try:
                pred = SceneLabel.decode(p)
            except PredictionFormatError as e:
                raise ValueError(f"prediction for sample {s.sample_id}: {e}") from None
            if len(pred.scores) != k:
                raise ValueError(f"prediction for sample {s.sample_id}: 'scores' must be a list "
                                 f"of {k} numbers")
            scores[i] = np.asarray(pred.scores, dtype=np.float64)
            floor_hit[i] = float(pred.label == s.target["label"])
        y_pred = scores_to_labels(scores) if len(samples) else np.zeros(0, np.int64)
        cm = confusion_matrix(y_true, y_pred, k)
        m = multiclass_metrics(cm)
        hits = (y_true == y_pred).astype(np.float64)
        metrics = {name: 100.0 * v for name, v in m.items()}
        metrics["accuracy_floor"] = (
            100.0 * float(floor_hit.mean()) if len(samples) else float("nan")
        )
        pca = per_class_accuracy(cm)
        return Scores(
            metrics=metrics,
            per_sample={"accuracy": 100.0 * hits, "accuracy_floor": 100.0 * floor_hit},
            tables={
                "per_class": [
                    {
                        "class": c,
                        "folder": UCM_FOLDERS[c],
                        "accuracy": None if np.isnan(a) else 100.0 * float(a),
                        "samples": int(cm[j].sum()),
                    }
                    for j, (c, a) in enumerate(zip(UCM_CLASSES, pca))
                ],
                "confusion_matrix": {
                    "classes": list(UCM_CLASSES),
                    "rows_are": "true",
                    "matrix": cm.tolist(),
                },
            },
            sample_ids=[s.sample_id for s in samples],
        )
