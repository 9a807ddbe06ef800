"""Drawing ground truth and predictions over an image: one small painter per prediction kind.

A painter takes the image (``PIL.Image``, RGB, already downscaled by ``scale``), the sample and
the prediction, draws on it, and returns ``(image, caption lines)``: text that belongs beside
the picture (captions and references, labels, counts). Conventions everywhere: ground truth in
green outlines, predictions in warm colours (translucent fills for masks, boxes with
``label score``); coordinates are the dataset's absolute pixels (xyxy boxes, 8-value polygons,
COCO RLE masks at the original size), multiplied by ``scale``.

:func:`painter_for` picks the painter from the prediction's type
(:mod:`remotesam.bench.api.predictions`, chosen by the keys ``masks_net``, ``mask``,
``hbb``/``obb``, ``box``, ``count``, ``caption``, ``labels``, ``label``), so a third-party
plugin that stores the same types gets the same pictures.
"""

from __future__ import annotations

import importlib
import zlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from remotesam.bench.api import (
    BoxesPrediction,
    BoxPrediction,
    CaptionPrediction,
    ClassMasks,
    CountPrediction,
    MaskPrediction,
    MultiLabels,
    Sample,
    SceneLabel,
    TypedPrediction,
    decode_prediction,
)
from remotesam.bench.api.predictions import prediction_kind

__all__ = ["PAINTER_VERSION", "Painter", "painter_for"]

#: Bumped whenever a painter draws differently (part of the thumbnail cache key).
PAINTER_VERSION = 3

GT = (40, 200, 90)
PRED = (255, 40, 200)
_PALETTE = [(230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48),
            (145, 30, 180), (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212),
            (0, 128, 128), (220, 190, 255), (170, 110, 40), (255, 250, 200), (128, 0, 0),
            (170, 255, 195), (128, 128, 0), (255, 215, 180), (0, 0, 128), (128, 128, 128)]

#: ``painter(image, sample, prediction, scale, context) -> (image, caption lines)``.
Painter = Callable[[Image.Image, Sample, Mapping[str, Any], float, Mapping[str, Any]],
                   tuple[Image.Image, list[str]]]

#: Boxes drawn per image at most (highest scores first), so dense images stay readable.
MAX_BOXES = 30
#: Boxes labelled with ``label score`` at most (the highest scores); the others are outlined.
MAX_LABELS = 10
#: Predicted boxes below this score are not drawn (they still count in every metric).
MIN_SCORE = 0.3


def _colour(name: str, classes: Sequence[str]) -> tuple[int, int, int]:
    k = list(classes).index(name) if name in classes else zlib.crc32(name.encode()) % len(_PALETTE)
    return _PALETTE[k % len(_PALETTE)]


def _decode(rle: Mapping[str, Any]) -> np.ndarray:
    from remotesam.bench.kit.masks import rle_to_mask

    return np.asarray(rle_to_mask(rle), dtype=bool)


def _fit(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Nearest-resize a 2-D array to ``size`` = (width, height)."""
    if (mask.shape[1], mask.shape[0]) == size:
        return mask
    img = Image.fromarray(mask.astype(np.uint8) if mask.dtype == bool else mask.astype(np.int32))
    return np.asarray(img.resize(size, Image.Resampling.NEAREST)).astype(mask.dtype)


def _overlay(image: Image.Image, mask: np.ndarray, colour: tuple[int, int, int],
             alpha: float = 0.45) -> Image.Image:
    arr = np.asarray(image, dtype=np.float32).copy()
    m = _fit(mask, image.size)
    arr[m] = arr[m] * (1 - alpha) + np.array(colour, dtype=np.float32) * alpha
    return Image.fromarray(arr.clip(0, 255).astype(np.uint8))


def _outline(image: Image.Image, mask: np.ndarray, colour: tuple[int, int, int]) -> Image.Image:
    """A two-pixel outline of ``mask``."""
    m = _fit(mask, image.size)
    inner = m.copy()
    for _ in range(2):
        inner = inner & np.roll(inner, 1, 0) & np.roll(inner, -1, 0) & np.roll(inner, 1, 1) & \
            np.roll(inner, -1, 1)
    edge = m & ~inner
    arr = np.asarray(image).copy()
    arr[edge] = colour
    return Image.fromarray(arr)


def _label(draw: ImageDraw.ImageDraw, xy: tuple[float, float], text: str,
           colour: tuple[int, int, int]) -> None:
    x, y = xy
    box = draw.textbbox((x, y), text)
    y = max(0.0, y - (box[3] - box[1]) - 2)
    box = draw.textbbox((x, y), text)
    draw.rectangle((box[0] - 1, box[1] - 1, box[2] + 1, box[3] + 1), fill=colour)
    draw.text((x, y), text, fill=(0, 0, 0) if sum(colour) > 400 else (255, 255, 255))


def paint_mask(image: Image.Image, sample: Sample, pred: Mapping[str, Any], scale: float,
               ctx: Mapping[str, Any]) -> tuple[Image.Image, list[str]]:
    """Binary mask (referring segmentation): prediction filled, ground truth outlined."""
    image = _overlay(image, _decode(MaskPrediction.decode(pred).mask), PRED, 0.55)
    gt = sample.target.get("mask_rle")
    if isinstance(gt, Mapping):
        image = _outline(image, _decode(gt), GT)
    text = sample.meta.get("sentence") or sample.meta.get("description")
    return image, ([f"expression: {text}"] if text else []) + [
        "prediction filled magenta, ground truth outlined green"]


def paint_semantic(image: Image.Image, sample: Sample, pred: Mapping[str, Any], scale: float,
                   ctx: Mapping[str, Any]) -> tuple[Image.Image, list[str]]:
    """Semantic segmentation: two panels, ground truth | prediction, one colour per class."""
    typed = ClassMasks.decode(pred)
    classes = list(typed.classes or sample.target.get("classes") or [])
    w, h = image.size
    pred_map = np.zeros((h, w), dtype=np.int64)
    for k, rle in enumerate(typed.masks_net):
        pred_map[_fit(_decode(rle), (w, h))] = k + 1
    gt_map = None
    reader = ctx.get("read_label")
    if reader is not None and "label_path" in sample.target:
        try:
            gt_map = _fit(np.asarray(reader(sample.target)), (w, h))
        except Exception:  # an unreadable label is shown as missing, the failure is elsewhere
            gt_map = None
    panels = []
    for lab in (gt_map, pred_map):
        panel = image.copy()
        if lab is not None:
            for k in range(len(classes)):
                m = lab == k + 1
                if m.any():
                    panel = _overlay(panel, m, _PALETTE[k % len(_PALETTE)], 0.55)
        panels.append(panel)
    out = Image.new("RGB", (2 * w + 4, h), (255, 255, 255))
    out.paste(panels[0], (0, 0))
    out.paste(panels[1], (w + 4, 0))
    present = sorted(
        {int(v) for v in np.unique(pred_map) if v > 0}
        | ({int(v) for v in np.unique(gt_map) if v > 0} if gt_map is not None else set())
    )
    legend = ", ".join(classes[v - 1] for v in present if v - 1 < len(classes))
    return out, ["left: ground truth, right: prediction"] + (
        [f"classes: {legend}"] if legend else []
    )


def paint_boxes(image: Image.Image, sample: Sample, pred: Mapping[str, Any], scale: float,
                ctx: Mapping[str, Any]) -> tuple[Image.Image, list[str]]:
    """Detection: ground truth (green; polygons when the dataset has them), predicted hbb or
    obb with ``label score`` (top :data:`MAX_BOXES` with score >= :data:`MIN_SCORE`)."""
    from remotesam.bench.reports.html.data import box_prediction

    classes = ctx.get("classes", ())
    draw = ImageDraw.Draw(image)
    polys = sample.target.get("polygons")
    if polys:
        for p in polys:
            pts = [(float(x) * scale, float(y) * scale) for x, y in zip(p[0::2], p[1::2])]
            draw.polygon(pts, outline=GT)
    else:
        for b in sample.target.get("bbox_xyxy", []) or []:
            draw.rectangle([float(v) * scale for v in b], outline=GT)
    parts = box_prediction(pred)
    n_shown = 0
    if parts is not None:
        boxes, scores, labels, obb = parts
        order = [i for i in np.argsort(-scores, kind="stable") if scores[i] >= MIN_SCORE]
        for i in order[:MAX_BOXES]:
            colour = _colour(labels[i], classes)
            if obb is not None:
                p = obb[i]
                draw.polygon([(p[k] * scale, p[k + 1] * scale) for k in range(0, 8, 2)],
                             outline=colour)
            else:
                draw.rectangle([float(v) * scale for v in boxes[i]], outline=colour, width=2)
            if n_shown < MAX_LABELS:
                _label(draw, (boxes[i][0] * scale, boxes[i][1] * scale),
                       f"{labels[i]} {scores[i]:.2f}", colour)
            n_shown += 1
        n_all = len(scores)
    else:
        n_all = 0
    n_gt = len(sample.target.get("labels", []) or [])
    return image, [f"ground truth (green): {n_gt} object(s); predicted: {n_all} box(es), "
                   f"{n_shown} drawn (score >= {MIN_SCORE}), {min(n_shown, MAX_LABELS)} "
                   "labelled"]


def paint_grounding(image: Image.Image, sample: Sample, pred: Mapping[str, Any], scale: float,
                    ctx: Mapping[str, Any]) -> tuple[Image.Image, list[str]]:
    """Visual grounding: the ground-truth box (green) and the predicted box with its score."""
    draw = ImageDraw.Draw(image)
    gt = sample.target.get("bbox_xyxy")
    if gt:
        draw.rectangle([float(v) * scale for v in gt], outline=GT, width=2)
    typed = BoxPrediction.decode(pred)
    box, score = typed.box, typed.score
    lines = []
    if box:
        draw.rectangle([float(v) * scale for v in box], outline=PRED, width=2)
        _label(draw, (box[0] * scale, box[1] * scale),
               "pred" + (f" {score:.2f}" if score is not None else ""), PRED)
    else:
        lines.append("no box predicted")
    text = sample.meta.get("description") or sample.meta.get("sentence")
    return image, ([f"expression: {text}"] if text else []) + lines


def paint_count(image: Image.Image, sample: Sample, pred: Mapping[str, Any], scale: float,
                ctx: Mapping[str, Any]) -> tuple[Image.Image, list[str]]:
    """Counting: ground truth and predicted count written on the image."""
    typed = CountPrediction.decode(pred)
    gt, n = sample.target.get("count"), typed.count
    cls = typed.cls or sample.target.get("class") or ""
    draw = ImageDraw.Draw(image)
    _label(draw, (2, 14), f"{cls}: gt {gt} / pred {n}", PRED if gt != n else GT)
    return image, [f"class {cls}: ground truth {gt}, predicted {n}"]


def paint_caption(image: Image.Image, sample: Sample, pred: Mapping[str, Any], scale: float,
                  ctx: Mapping[str, Any]) -> tuple[Image.Image, list[str]]:
    """Captioning: the image as is; the caption and the references go beside it."""
    refs = [str(r) for r in sample.target.get("references", [])]
    caption = CaptionPrediction.decode(pred).caption
    return image, [f"caption: {caption}"] + [f"reference: {r}" for r in refs[:5]]


def paint_labels(image: Image.Image, sample: Sample, pred: Mapping[str, Any], scale: float,
                 ctx: Mapping[str, Any]) -> tuple[Image.Image, list[str]]:
    """Classification (multi-label or scene): labels beside the image, top scores listed."""
    from remotesam.bench.reports.html.data import predicted_label

    typed = decode_prediction(pred)
    gt = sample.target.get("labels", sample.target.get("label"))
    gt_text = ", ".join(gt) if isinstance(gt, list) else str(gt)
    pl: list[str] | str | None
    if isinstance(typed, MultiLabels):
        pl, classes, scores = list(typed.labels), typed.classnames, typed.scores
    else:
        pl = predicted_label(pred)
        classes, scores = (typed.classes, typed.scores) if isinstance(typed, SceneLabel) else (
            (), ())
    pl_text = ", ".join(pl) if isinstance(pl, list) else str(pl)
    lines = [f"ground truth: {gt_text}", f"predicted: {pl_text}"]
    if classes and scores and len(classes) == len(scores):
        top = np.argsort(-np.nan_to_num(np.asarray(scores, dtype=np.float64), nan=-np.inf),
                         kind="stable")[:3]
        lines.append("top scores: " + ", ".join(f"{classes[i]} {scores[i]:.2f}" for i in top))
    draw = ImageDraw.Draw(image)
    ok = (sorted(pl) == sorted(gt)) if isinstance(pl, list) and isinstance(gt, list) else pl == gt
    _label(draw, (2, 14), f"pred: {pl_text}"[:40], GT if ok else PRED)
    return image, lines


def paint_plain(image: Image.Image, sample: Sample, pred: Mapping[str, Any], scale: float,
                ctx: Mapping[str, Any]) -> tuple[Image.Image, list[str]]:
    """Any other prediction: the image, and the prediction's keys beside it."""
    return image, [f"prediction keys: {', '.join(sorted(pred))}"]


_BY_TYPE: dict[type[TypedPrediction], Painter] = {
    ClassMasks: paint_semantic, MaskPrediction: paint_mask, BoxesPrediction: paint_boxes,
    BoxPrediction: paint_grounding, CountPrediction: paint_count,
    CaptionPrediction: paint_caption, MultiLabels: paint_labels, SceneLabel: paint_labels,
}


def painter_for(pred: Mapping[str, Any] | None) -> tuple[str, Painter]:
    """``(kind, painter)`` for a prediction: its kind as
    :func:`~remotesam.bench.api.predictions.prediction_kind` decodes it (the key that marks
    it); ``"plain"`` for a prediction of no known kind or with malformed fields."""
    found = prediction_kind(pred)
    if found is None:
        return "plain", paint_plain
    key, typed = found
    return key, _BY_TYPE[type(typed)]


def plugin_context(plugin: Any, classes: Sequence[str]) -> dict[str, Any]:
    """What painters may use from the plugin: its class list and, when its module offers one,
    a ``read_label(target)`` function that decodes label-map ground truth."""
    ctx: dict[str, Any] = {"classes": tuple(classes)}
    try:
        module = importlib.import_module(type(plugin).__module__)
    except ImportError:
        return ctx
    reader = getattr(module, "read_label", None)
    if callable(reader):
        ctx["read_label"] = reader
    return ctx
