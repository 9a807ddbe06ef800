"""Typed predictions: one type per prediction kind, each with one encoder and one decoder.

A plugin's :meth:`~remotesam.bench.api.TaskPlugin.reduce` (or ``predict``) builds one of these
types and returns its :meth:`encode` (the JSON-serialisable ``dict`` the store keeps); whoever
reads a stored prediction (the plugin's ``score``, the export, the HTML report's data and
painters) goes through the type's :meth:`decode`. The encoded form is the stored format:
changing it changes every cached prediction, so it stays exactly as written here.

=========================  ===============================================================
type                       stored JSON
=========================  ===============================================================
:class:`MaskPrediction`    ``{"mask": RLE, "mask_net": RLE}`` (binary masks at the image and
                           the network size; RLE = COCO ``{"size": [h, w], "counts": str}``)
:class:`ClassMasks`        ``{"classes": [str], "net_size": [h, w], "masks_net": [RLE]}``
                           (one mask per class at the network size)
:class:`BoxesPrediction`   ``{"size": [h, w], "hbb": Detections, "obb": Detections}`` (either
                           part or both; Detections = ``{"boxes": [[x1, y1, x2, y2]] or
                           [[x0, y0, ..., x3, y3]], "scores": [float], "labels": [str]}``)
:class:`BoxPrediction`     ``{"box": [x1, y1, x2, y2] | null, "score": float | null}``
:class:`SceneLabel`        ``{"classes": [str], "scores": [float], "label": str}``
:class:`MultiLabels`       ``{"classnames": [str], "scores": [float], "labels": [str]}``
:class:`CountPrediction`   ``{"count": int, "class": str}``
:class:`CaptionPrediction` ``{"caption": str, "seed": int}``
=========================  ===============================================================

Boxes are absolute pixels, ``x`` right and ``y`` down; horizontal boxes ``[x1, y1, x2, y2]``
(right/bottom exclusive), oriented ones the four corners of a polygon.

Every ``decode`` raises :class:`PredictionFormatError` (a ``ValueError``) naming the field and
what was expected; :func:`decode_prediction` guesses the kind from the keys (reports), returning
None for a prediction of no known kind. This module imports nothing from the harness.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

__all__ = [
    "BoxPrediction",
    "BoxesPrediction",
    "CaptionPrediction",
    "ClassMasks",
    "CountPrediction",
    "Detections",
    "MaskPrediction",
    "MultiLabels",
    "PredictionFormatError",
    "SceneLabel",
    "TypedPrediction",
    "decode_prediction",
    "polygon_envelopes",
    "prediction_kind",
]

RLE = dict[str, Any]


class PredictionFormatError(ValueError):
    """A stored prediction does not have the fields of its kind (stale cache or a plugin bug)."""


T = TypeVar("T", bound="TypedPrediction")


class TypedPrediction:
    """Base of the prediction types: ``encode`` to the stored dict, ``decode`` from it."""

    def encode(self) -> dict[str, Any]:
        """The stored JSON form (a dict of plain Python values)."""
        raise NotImplementedError

    @classmethod
    def decode(cls: type[T], pred: Mapping[str, Any]) -> T:
        """The typed prediction of a stored dict.

        Raises:
            PredictionFormatError: a field is missing or malformed.
        """
        if not isinstance(pred, Mapping):
            raise PredictionFormatError(
                f"a {cls.__name__} must be a JSON object, got {type(pred).__name__}")
        try:
            return cls._decode(pred)
        except PredictionFormatError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as e:
            what = f"field {e.args[0]!r} missing" if isinstance(e, KeyError) else str(e)
            raise PredictionFormatError(
                f"malformed {cls.__name__} ({what}); expected {cls._expected()}; "
                "re-run predict if the cache is stale") from None

    @classmethod
    def _decode(cls: type[T], pred: Mapping[str, Any]) -> T:
        raise NotImplementedError

    @classmethod
    def _expected(cls) -> str:
        return (cls.__doc__ or cls.__name__).strip().splitlines()[0]


def _rle(value: Any, field: str) -> RLE:
    """A compressed COCO RLE as stored: ``{"size": [h, w], "counts": str}``."""
    if not isinstance(value, Mapping) or "size" not in value or "counts" not in value:
        raise PredictionFormatError(
            f"field {field!r} is not a COCO RLE {{'size': [h, w], 'counts': str}}; re-run "
            "predict if the cache is stale")
    size = [int(v) for v in value["size"]]
    if len(size) != 2:
        raise PredictionFormatError(f"field {field!r}: size {value['size']!r} is not [h, w]")
    return {"size": size, "counts": value["counts"]}


def _floats(values: Any) -> list[float]:
    return [float(x) for x in np.asarray(values, dtype=np.float64).reshape(-1)]


@dataclass(frozen=True)
class MaskPrediction(TypedPrediction):
    """``{"mask": RLE, "mask_net": RLE}``: one binary mask at the image and the network size."""

    mask: RLE
    mask_net: RLE

    def encode(self) -> dict[str, Any]:
        return {"mask": self.mask, "mask_net": self.mask_net}

    @classmethod
    def _decode(cls, pred: Mapping[str, Any]) -> MaskPrediction:
        return cls(_rle(pred.get("mask"), "mask"), _rle(pred.get("mask_net"), "mask_net"))


@dataclass(frozen=True)
class ClassMasks(TypedPrediction):
    """``{"classes": [str], "net_size": [h, w], "masks_net": [RLE]}``: one mask per class."""

    classes: tuple[str, ...]
    net_size: tuple[int, int]
    masks_net: tuple[RLE, ...]

    def encode(self) -> dict[str, Any]:
        return {"classes": list(self.classes), "net_size": [int(v) for v in self.net_size],
                "masks_net": list(self.masks_net)}

    @classmethod
    def _decode(cls, pred: Mapping[str, Any]) -> ClassMasks:
        classes = tuple(str(c) for c in pred.get("classes", []))
        masks = pred.get("masks_net")
        if not isinstance(masks, list) or len(masks) != len(classes):
            raise PredictionFormatError(
                f"'masks_net' must hold {len(classes)} RLEs (one per class)")
        h, w = (int(v) for v in pred.get("net_size", (0, 0)))
        return cls(classes, (h, w), tuple(_rle(m, f"masks_net[{k}]") for k, m in enumerate(masks)))


@dataclass(frozen=True)
class Detections:
    """Boxes of one type: ``boxes`` float64 ``(n, 4)`` xyxy or ``(n, 8)`` polygons, ``scores``
    float64 ``(n,)``, ``labels`` ``n`` class names."""

    boxes: np.ndarray
    scores: np.ndarray
    labels: tuple[str, ...]

    @classmethod
    def from_arrays(cls, boxes: Any, scores: Any, label_indices: Any,
                    classnames: Sequence[str]) -> Detections:
        """From the model's arrays: ``label_indices`` index ``classnames``."""
        b = np.asarray(boxes, dtype=np.float64)
        return cls(b, np.asarray(scores, dtype=np.float64).reshape(-1),
                   tuple(classnames[int(k)] for k in np.asarray(label_indices).reshape(-1)))

    def encode(self) -> dict[str, Any]:
        return {"boxes": [_floats(r) for r in self.boxes], "scores": _floats(self.scores),
                "labels": list(self.labels)}

    @classmethod
    def decode(cls, part: Any, width: int) -> Detections:
        """``width``: 4 (horizontal boxes) or 8 (polygons).

        Raises:
            PredictionFormatError: a field is missing, or the lengths differ.
        """
        try:
            b = np.asarray(part["boxes"], dtype=np.float64).reshape(-1, width)
            sc = np.asarray(part["scores"], dtype=np.float64).reshape(-1)
            lb = tuple(str(c) for c in part["labels"])
        except (KeyError, TypeError, ValueError) as e:
            raise PredictionFormatError(
                f"malformed boxes ({e!r}); expected boxes (n, {width}), scores (n,), labels (n,); "
                "re-run predict") from None
        if not len(b) == len(sc) == len(lb):
            raise PredictionFormatError("boxes/scores/labels lengths differ")
        return cls(b, sc, lb)


def polygon_envelopes(polys: np.ndarray) -> np.ndarray:
    """``(n, 8)`` polygons -> ``(n, 4)`` horizontal envelopes xyxy (float64)."""
    p = np.asarray(polys, dtype=np.float64).reshape(-1, 8)
    return np.stack([p[:, 0::2].min(1), p[:, 1::2].min(1), p[:, 0::2].max(1),
                     p[:, 1::2].max(1)], 1)


@dataclass(frozen=True)
class BoxesPrediction(TypedPrediction):
    """``{"size": [h, w], "hbb": Detections, "obb": Detections}`` (one part or both)."""

    size: tuple[int, int]
    hbb: Detections | None = None
    obb: Detections | None = None

    def encode(self) -> dict[str, Any]:
        out: dict[str, Any] = {"size": [int(self.size[0]), int(self.size[1])]}
        if self.hbb is not None:
            out["hbb"] = self.hbb.encode()
        if self.obb is not None:
            out["obb"] = self.obb.encode()
        return out

    @classmethod
    def _decode(cls, pred: Mapping[str, Any]) -> BoxesPrediction:
        hbb = Detections.decode(pred["hbb"], 4) if "hbb" in pred else None
        obb = Detections.decode(pred["obb"], 8) if "obb" in pred else None
        if hbb is None and obb is None:
            raise PredictionFormatError("no 'hbb' or 'obb' field; re-run predict (stale cache?)")
        size = pred.get("size")
        h, w = (int(v) for v in size) if size is not None else (0, 0)
        return cls((h, w), hbb, obb)

    def horizontal(self) -> Detections:
        """The horizontal boxes: ``hbb``, else the envelopes of the ``obb`` polygons."""
        if self.hbb is not None:
            return self.hbb
        assert self.obb is not None  # decode and the constructor's users guarantee one part
        return Detections(polygon_envelopes(self.obb.boxes), self.obb.scores, self.obb.labels)


@dataclass(frozen=True)
class BoxPrediction(TypedPrediction):
    """``{"box": [x1, y1, x2, y2] | null, "score": float | null}``: one box or none."""

    box: tuple[float, float, float, float] | None
    score: float | None = None

    @classmethod
    def from_array(cls, box: Any, score: float | None) -> BoxPrediction:
        """From the model's box (any array of 4 numbers, or None) and score (NaN -> None)."""
        if box is None:
            return cls(None, None)
        b = _floats(box)
        if len(b) != 4:
            raise ValueError(f"a box has 4 numbers, got {len(b)}")
        s = None if score is None or math.isnan(float(score)) else float(score)
        return cls((b[0], b[1], b[2], b[3]), s)

    def encode(self) -> dict[str, Any]:
        return {"box": None if self.box is None else [float(v) for v in self.box],
                "score": self.score}

    @classmethod
    def _decode(cls, pred: Mapping[str, Any]) -> BoxPrediction:
        box = pred.get("box")
        if box is None:
            return cls(None, None)
        if not isinstance(box, list | tuple) or len(box) != 4:
            raise PredictionFormatError("'box' must be [x1, y1, x2, y2] or null")
        score = pred.get("score")
        x1, y1, x2, y2 = (float(v) for v in box)
        return cls((x1, y1, x2, y2), None if score is None else float(score))


@dataclass(frozen=True)
class SceneLabel(TypedPrediction):
    """``{"classes": [str], "scores": [float], "label": str | null}``: one label (null when no
    class reaches the floor) and every score."""

    classes: tuple[str, ...]
    scores: tuple[float, ...]
    label: str | None

    def encode(self) -> dict[str, Any]:
        return {"classes": list(self.classes), "scores": list(self.scores), "label": self.label}

    @classmethod
    def _decode(cls, pred: Mapping[str, Any]) -> SceneLabel:
        classes = tuple(str(c) for c in pred["classes"])
        scores = pred["scores"]
        if not isinstance(scores, list) or len(scores) != len(classes):
            raise PredictionFormatError(
                f"'scores' must be a list of {len(classes)} numbers (one per class)")
        label = pred.get("label")
        return cls(classes, tuple(_floats(scores)), None if label is None else str(label))

    def top(self) -> str:
        """The class of the highest score (first on ties)."""
        return self.classes[int(np.argmax(np.asarray(self.scores, dtype=np.float64)))]


@dataclass(frozen=True)
class MultiLabels(TypedPrediction):
    """``{"classnames": [str], "scores": [float], "labels": [str]}``: the predicted labels and
    every class's score."""

    classnames: tuple[str, ...]
    scores: tuple[float, ...]
    labels: tuple[str, ...]

    def encode(self) -> dict[str, Any]:
        return {"classnames": list(self.classnames), "scores": list(self.scores),
                "labels": list(self.labels)}

    @classmethod
    def _decode(cls, pred: Mapping[str, Any]) -> MultiLabels:
        names = tuple(str(c) for c in pred["classnames"])
        scores = _floats(pred["scores"])
        if len(scores) != len(names):
            raise PredictionFormatError("scores and classnames differ in length")
        return cls(names, tuple(scores), tuple(str(c) for c in pred["labels"]))


@dataclass(frozen=True)
class CountPrediction(TypedPrediction):
    """``{"count": int, "class": str}``: the number of objects of one class."""

    count: int
    cls: str

    def encode(self) -> dict[str, Any]:
        return {"count": int(self.count), "class": self.cls}

    @classmethod
    def _decode(cls, pred: Mapping[str, Any]) -> CountPrediction:
        return cls(int(pred["count"]), str(pred.get("class", "")))


@dataclass(frozen=True)
class CaptionPrediction(TypedPrediction):
    """``{"caption": str, "seed": int}``: a caption and the seed of its random choices."""

    caption: str
    seed: int | None = None

    def encode(self) -> dict[str, Any]:
        return {"caption": self.caption, "seed": self.seed}

    @classmethod
    def _decode(cls, pred: Mapping[str, Any]) -> CaptionPrediction:
        cap = pred["caption"]
        if not isinstance(cap, str):
            raise PredictionFormatError("'caption' is not a string")
        seed = pred.get("seed")
        return cls(cap, None if seed is None else int(seed))


#: The kinds by the key that marks each, in the order the keys are looked for (``obb``-only
#: box predictions are :class:`BoxesPrediction` too).
KINDS: tuple[tuple[str, type[TypedPrediction]], ...] = (
    ("masks_net", ClassMasks), ("mask", MaskPrediction), ("hbb", BoxesPrediction),
    ("obb", BoxesPrediction), ("box", BoxPrediction), ("count", CountPrediction),
    ("caption", CaptionPrediction), ("labels", MultiLabels), ("label", SceneLabel),
)


def prediction_kind(pred: Any) -> tuple[str, TypedPrediction] | None:
    """``(marker key, typed prediction)`` of a stored dict of any known kind, chosen by its
    keys (see :data:`KINDS`); None when no kind matches or its fields are malformed."""
    if not isinstance(pred, Mapping):
        return None
    for key, kind in KINDS:
        if key in pred:
            try:
                return key, kind.decode(pred)
            except PredictionFormatError:
                return None
    return None


def decode_prediction(pred: Any) -> TypedPrediction | None:
    """The typed prediction of a stored dict of any known kind (:func:`prediction_kind`)."""
    found = prediction_kind(pred)
    return None if found is None else found[1]
