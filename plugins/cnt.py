"""Object counting (``cnt``): Falcon-style counting questions on DIOR / DOTA-v2 images.

Protocol reproduced (official ``tasks/code/eval/CNT.py``, ``data/datasets/CNT.py``, ``CNT.sh``):

* Data: ``Counting/test/DIOR/Annotation/test_IMG_CT.json``, a JSON **list** of
  ``{"conversations": [{"content": "<image>\\n[IMG_CT]\\nCount the number of ship."},
  {"content": "7"}], "images": ["DIOR/.../x.png"], ...}``; one sample per entry. The class is
  ``content0.split("the number of")[-1].split(".")[0].strip()`` mapped to the dataset's class
  name (``"storage tank"`` -> ``storagetank``, ``"railway station"`` -> ``trainstation`` ...);
  the ground truth is ``int(content1)``; the image is ``Images/<basename(images[0])>``.
* ``model.counting(image, [class], prior_areas={class: prior}, area_factor=0.8)``: detection
  with EPOC (boundary threshold **0.15**), boxes kept when ``w*h > 0.8 * prior_area[class]``
  (hard-coded DIOR / DOTA priors, see ``_detection_common``), count = boxes kept.
* **accuracy** (official, primary) = share of samples whose count equals the answer exactly.

Added beside it: ``mae`` and ``rmse`` of the count (lower is better).

Deviations, deliberate:

* The official ``convert_name`` table is only partly documented; class wording is mapped by:
  exact class name, explicit aliases (:data:`~._detection_common.COUNTING_NAME_ALIASES`), spaces
  removed, spaces -> hyphens, a trailing plural ``s`` dropped. An unmappable class is a
  :class:`DatasetError` naming the file and entry (the official code would fail on the prior
  lookup). DOTA wording follows the official DOTA mapping: ``crane`` -> ``container-crane``;
  ``large vehicle`` / ``small vehicle`` -> the single counting class ``vehicle`` (the DOTA
  priors have only ``vehicle``).
* Counts must be non-negative integers (``"nan"``, ``"inf"``, ``"7.5"`` are errors naming the
  entry). Falcon's optional ``crop`` box is not used (as officially), but a NaN, infinite or
  inverted one is a :class:`DatasetError` naming the entry: it marks a corrupted file.
* EPOC: ``epoc=auto`` (default) uses EPOC when the predictor was built with an EPOC model
  (official: always on); ``epoc=false`` turns it off.
* The DOTA counting json is not public and ``CNT.sh`` only runs DIOR; the ``dotav2`` adapter reads
  the same format with the official DOTA priors (17 classes, ``vehicle`` merging large and
  small vehicles).

Task options: ``epoc`` (``auto``/``true``/``false``), ``area_factor`` (default 0.8).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from remotesam.bench.api import (
    DatasetAdapter,
    DatasetError,
    MetricSpec,
    Prediction,
    Sample,
    Scores,
    TaskPlugin,
)
from remotesam.bench.api.datainfo import DatasetInfo
from remotesam.bench.api.predictions import CountPrediction, PredictionFormatError
from remotesam.bench.kit import (
    check_images_exist,
    check_options,
    check_score_lengths,
    option_path,
    parse_bool_option,
    read_json,
    require_dir,
    require_file,
)

from ._datasets import DATASET_INFO
from ._detection_common import (
    COUNTING_NAME_ALIASES,
    DIOR_CLASSES,
    DIOR_PRIOR_AREAS,
    DOTA_COUNT_CLASSES,
    DOTA_PRIOR_AREAS,
)
from .metrics.counting import counting_metrics

__all__ = ["CountingTask", "DIORCountingAdapter", "DOTACountingAdapter", "parse_count_question"]

_MARKER = "the number of"

#: Official EPOC boundary threshold of the counting evaluation (detection uses 0.25).
EPOC_THRESHOLD_COUNTING = 0.15


def map_class_name(text: str, classes: Sequence[str]) -> str | None:
    """Map the question's class wording to a class of ``classes`` (None when impossible)."""
    t = " ".join(text.strip().lower().split())
    allowed = set(classes)
    cands = [t, COUNTING_NAME_ALIASES.get(t, ""), t.replace(" ", ""), t.replace(" ", "-")]
    if t.endswith("s"):
        s = t[:-1]
        cands += [s, COUNTING_NAME_ALIASES.get(s, ""), s.replace(" ", ""), s.replace(" ", "-")]
    for c in cands:
        if c in allowed:
            return c
    return None


def parse_count_question(entry: Any, where: str, classes: Sequence[str]) -> tuple[str, int, str]:
    """``(class name, ground-truth count, image path as written)`` of one counting entry.

    Raises:
        DatasetError: naming ``where`` (file and entry index) and the field at fault.
    """
    if not isinstance(entry, dict):
        raise DatasetError(
            f"{where}: expected an object with 'conversations' and 'images', found "
            f"{type(entry).__name__}"
        )
    conv = entry.get("conversations")
    if (
        not isinstance(conv, list)
        or len(conv) < 2
        or not all(isinstance(c, dict) for c in conv[:2])
    ):
        raise DatasetError(
            f"{where}.conversations: expected a list of at least 2 objects (question, answer)"
        )
    q, a = conv[0].get("content"), conv[1].get("content")
    if not isinstance(q, str) or _MARKER not in q:
        raise DatasetError(f"{where}.conversations[0].content: expected a question containing "
                           f"'{_MARKER} <class>.', found {q!r}")  # fmt: skip
    raw = q.split(_MARKER)[-1].split(".")[0].strip()
    cls = map_class_name(raw, classes)
    if cls is None:
        raise DatasetError(
            f"{where}.conversations[0].content: class {raw!r} is not one of {list(classes)}"
        )
    try:
        count = int(str(a).strip())
    except ValueError:
        raise DatasetError(
            f"{where}.conversations[1].content: expected an integer count, found {a!r}"
        ) from None
    if count < 0:
        raise DatasetError(f"{where}.conversations[1].content: negative count {count}")
    imgs = entry.get("images")
    if not isinstance(imgs, list) or not imgs or not isinstance(imgs[0], str) or not imgs[0]:
        raise DatasetError(
            f"{where}.images: expected a non-empty list of image paths, found {imgs!r}"
        )
    _check_crop(entry.get("crop"), where)
    return cls, count, imgs[0]


def _check_crop(crop: Any, where: str) -> None:
    """Falcon's optional ``crop`` box ``[x0, y0, x1, y1]`` (unused, as officially) must be sane."""
    if crop is None or crop == []:
        return
    ok = (
        isinstance(crop, list)
        and len(crop) == 4
        and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
            for v in crop
        )
    )
    if not ok or crop[2] < crop[0] or crop[3] < crop[1]:
        raise DatasetError(
            f"{where}.crop = {crop!r}: expected [] or [x0, y0, x1, y1] of finite numbers with "
            "x0 <= x1, y0 <= y1 (NaN, infinite or inverted boxes mark a corrupted entry)"
        )


class _CountingAdapter(DatasetAdapter):
    splits: ClassVar[tuple[str, ...]] = ("test",)
    default_split: ClassVar[str] = "test"
    priors: ClassVar[Mapping[str, float]] = {}
    _OPTIONS: ClassVar[frozenset[str]] = frozenset({"ann_file", "image_dir"})

    def __init__(self, root: str | Path, split: str | None = None, **options: Any) -> None:
        super().__init__(root, split, **options)
        check_options(type(self).__name__, self.options, self._OPTIONS)
        self.ann_file = option_path(
            self.options, "ann_file", self.root / "Annotation" / f"{self.split}_IMG_CT.json"
        )
        self.image_dir = option_path(self.options, "image_dir", self.root / "Images")
        require_file(self.ann_file, f"{self.name} counting questions", self.layout)
        require_dir(self.image_dir, f"{self.name} image folder", self.layout)

    def samples(self) -> list[Sample]:
        """One sample per json entry, in file order (``sample_id`` = ``"<index>:<image stem>"``).

        ``target``: ``count`` (int), ``class`` (name). ``meta``: ``dataset``, ``prior_area``,
        ``question``, ``index``.

        Raises:
            DatasetError: malformed json or entry (file + entry index + field), absent images.
        """
        data = read_json(self.ann_file, f"{self.name} counting questions")
        if not isinstance(data, list):
            raise DatasetError(
                f"{self.ann_file}: top level must be a JSON list of question entries, found "
                f"{type(data).__name__}"
            )
        out: list[Sample] = []
        for i, entry in enumerate(data):
            where = f"{self.ann_file}: entry [{i}]"
            cls, count, img = parse_count_question(entry, where, self.classes)
            name = img.replace("\\", "/").rsplit("/", 1)[-1]
            out.append(
                Sample(
                    sample_id=f"{i}:{Path(name).stem}",
                    image=self.image_dir / name,
                    target={"count": count, "class": cls},
                    meta={"dataset": self.name, "prior_area": float(self.priors[cls]),
                          "question": entry["conversations"][0]["content"], "index": i},
                )
            )
        if not out:
            raise DatasetError(f"{self.ann_file}: the list is empty; nothing to evaluate")
        check_images_exist(
            (Path(s.image) for s in out), f"{self.name} ({self.image_dir})", self.layout
        )
        return out


class DIORCountingAdapter(_CountingAdapter):
    """DIOR counting questions (Falcon IMG_CT format); DIOR prior areas."""

    name: ClassVar[str] = "dior"
    info: ClassVar[DatasetInfo | None] = DATASET_INFO["count_dior"]
    title: ClassVar[str] = "DIOR"
    default_subdir: ClassVar[str] = "Counting/test/DIOR"
    classes: ClassVar[tuple[str, ...]] = DIOR_CLASSES
    priors: ClassVar[Mapping[str, float]] = DIOR_PRIOR_AREAS
    layout: ClassVar[str] = (
        "<root>/                               (e.g. refer/data/Counting/test/DIOR)\n"
        "  Annotation/test_IMG_CT.json         (list of {conversations: [question, answer], "
        "images: [...]})\n"
        "  Images/<basename of images[0]> ...\n"
    )


class DOTACountingAdapter(_CountingAdapter):
    """DOTA-v2 counting questions (same format); DOTA prior areas, 17 classes."""

    name: ClassVar[str] = "dotav2"
    info: ClassVar[DatasetInfo | None] = DATASET_INFO["count_dotav2"]
    title: ClassVar[str] = "DOTA-v2"
    default_subdir: ClassVar[str] = "Counting/test/DOTAv2"
    classes: ClassVar[tuple[str, ...]] = DOTA_COUNT_CLASSES
    priors: ClassVar[Mapping[str, float]] = DOTA_PRIOR_AREAS
    layout: ClassVar[str] = (
        "<root>/                               (e.g. refer/data/Counting/test/DOTAv2)\n"
        "  Annotation/test_IMG_CT.json\n"
        "  Images/<basename of images[0]> ...\n"
    )


class CountingTask(TaskPlugin):
    """Object counting by detection: official exact-match accuracy, plus MAE and RMSE."""

    name: ClassVar[str] = "cnt"
    title: ClassVar[str] = "Counting"
    version: ClassVar[int] = 1
    description: ClassVar[str] = (
        "object counting (Falcon-style questions on DIOR / DOTA): exact-match accuracy"
    )
    metrics: ClassVar[tuple[MetricSpec, ...]] = (
        MetricSpec(
            "accuracy",
            primary=True,
            official=True,
            description="share of questions answered with the exact count (official, Table 7)",
        ),
        MetricSpec(
            "mae",
            higher_is_better=False,
            unit="",
            official=False,
            lower=0.0,
            description="mean absolute count error",
        ),
        MetricSpec(
            "rmse",
            higher_is_better=False,
            unit="",
            official=False,
            lower=0.0,
            description="root mean squared count error",
        ),
    )
    datasets: ClassVar[Mapping[str, type[DatasetAdapter]]] = {
        "dior": DIORCountingAdapter,
        "dotav2": DOTACountingAdapter,
    }
    default_dataset: ClassVar[str] = "dior"
    _OPTIONS: ClassVar[frozenset[str]] = frozenset({"epoc", "area_factor"})

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        super().__init__(options)
        check_options("cnt task", self.options, self._OPTIONS, error=ValueError)
        self.epoc = parse_bool_option(
            "cnt", "epoc", self.options.get("epoc", "auto"), allow_auto=True
        )
        try:
            self.area_factor = float(self.options.get("area_factor", 0.8))
        except (TypeError, ValueError):
            raise ValueError(
                f"cnt task: option area_factor={self.options['area_factor']!r} is not a number"
            ) from None
        if not self.area_factor >= 0:
            raise ValueError(f"cnt task: option area_factor must be >= 0, got {self.area_factor}")

    def settings(self) -> dict[str, Any]:
        """Prediction settings: ``epoc`` and ``area_factor``."""
        return {"area_factor": self.area_factor, "epoc": "auto" if self.epoc is None else self.epoc}

    def requests(self, s: Sample) -> list[Any]:
        """One request: the question's class prompt, mask and probability at the original size
        (and the EPOC boundary map when EPOC is on)."""
        from remotesam.engine import Request
        from remotesam.text import prompt

        return [
            Request(
                s.image,
                (prompt(str(s.target["class"])),),
                frozenset({"mask", "prob"}),
                boundary=self.epoc,
            )
        ]

    def reduce(self, s: Sample, answers: Sequence[Any]) -> Prediction:
        """Boxes of the class (EPOC threshold 0.15) with ``area > prior * area_factor``, counted
        (:func:`remotesam.reduce.counts`), as :meth:`predict`."""
        from remotesam import reduce as rd
        from remotesam.predictor import DEFAULTS

        (ans,) = answers
        cls = str(s.target["class"])
        prior = float(s.meta["prior_area"])
        if not prior >= 0:
            raise ValueError(f"prior_areas[{cls!r}] must be a non-negative number, got {prior!r}")
        dets = rd.detections(
            ans,
            (cls,),
            "hbb",
            use_boundary=ans.boundary is not None,
            epoc_threshold=EPOC_THRESHOLD_COUNTING,
            epoc_area_ratio=DEFAULTS["epoc_area_ratio"],
            conf_threshold=DEFAULTS["conf_threshold"],
            nms_iou=DEFAULTS["nms_iou"],
            remove_inner=True,
        )
        res = rd.counts(dets, (cls,), {cls: prior}, self.area_factor)
        return CountPrediction(int(res.counts.get(cls, 0)), cls).encode()

    def score(self, samples: Sequence[Sample], predictions: Sequence[Prediction]) -> Scores:
        """``accuracy`` in percent, ``mae`` / ``rmse`` in objects. ``per_sample``: accuracy
        (0/100 hits) and mae (absolute errors). ``tables``: per-class accuracy / MAE / n."""
        check_score_lengths(samples, predictions)
        try:
            pred = np.array([CountPrediction.decode(p).count for p in predictions], dtype=np.int64)
        except PredictionFormatError as e:
            raise ValueError(
                f"a prediction has no integer 'count' ({e!r}); re-run predict"
            ) from None
        gt = np.array([int(s.target["count"]) for s in samples], dtype=np.int64)
        m = counting_metrics(pred, gt)
        per_class: dict[str, dict[str, float | int]] = {}
        classes = [str(s.target["class"]) for s in samples]
        for c in dict.fromkeys(classes):
            sel = np.array([x == c for x in classes])
            mc = counting_metrics(pred[sel], gt[sel])
            per_class[c] = {
                "n": int(sel.sum()),
                "accuracy": 100.0 * mc["accuracy"],
                "mae": mc["mae"],
            }
        return Scores(
            metrics={"accuracy": 100.0 * m["accuracy"], "mae": m["mae"], "rmse": m["rmse"]},
            per_sample={
                "accuracy": 100.0 * (pred == gt).astype(np.float64),
                "mae": np.abs(pred - gt).astype(np.float64),
            },
            tables={"per_class": per_class, "bias": m["bias"]},
            sample_ids=[s.sample_id for s in samples],
        )
