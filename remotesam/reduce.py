"""From :class:`~remotesam.engine.Answer` s to task results: the official post-processing.

Pure functions of an answer (no network): the predictor's eight task methods and the benchmark
plugins' ``reduce`` steps call the same ones, so a prediction does not depend on the path.
Arguments are assumed validated (the predictor's methods validate user input).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Literal, cast

import numpy as np

from remotesam.engine import Answer
from remotesam.types import (
    Caption,
    Counts,
    Detections,
    Grounding,
    MultiClassResult,
    MultiLabelResult,
    ReferringMask,
    SemanticMasks,
)

__all__ = [
    "caption",
    "counts",
    "detections",
    "grounding",
    "multi_class",
    "multi_label",
    "referring_mask",
    "semantic_masks",
]


def _need(ans: Answer, *names: str) -> tuple[np.ndarray, ...]:
    """The answer's arrays ``names``, in order; ValueError naming every one it lacks."""
    values = [getattr(ans, n) for n in names]
    missing = [n for n, v in zip(names, values) if v is None]
    if missing:
        raise ValueError(f"the answer lacks {missing}; add them to the request's outputs")
    return tuple(values)


def referring_mask(ans: Answer, k: int = 0) -> ReferringMask:
    """Prompt ``k``'s :class:`ReferringMask` (needs mask, prob, mask_net, prob_net)."""
    mask, prob, mask_net, prob_net = _need(ans, "mask", "prob", "mask_net", "prob_net")
    return ReferringMask(mask=mask[k], prob=prob[k], mask_net=mask_net[k], prob_net=prob_net[k])


def semantic_masks(ans: Answer, names: tuple[str, ...]) -> SemanticMasks:
    """Class masks merged into label maps (higher class index wins, official
    ``np.maximum.reduce``); needs mask, prob, mask_net."""
    mask, prob, mask_net = _need(ans, "mask", "prob", "mask_net")
    ids = np.arange(1, len(names) + 1, dtype=np.int64)[:, None, None]
    label_net = (mask_net.astype(np.int64) * ids).max(axis=0)
    label = (mask.astype(np.int64) * ids).max(axis=0)
    return SemanticMasks(classnames=names, masks=mask, probs=prob, label_map=label,
                         label_map_net=label_net)


def label_map_net(ans: Answer) -> np.ndarray:
    """``(S, S)`` int64 label map at network resolution from ``mask_net`` alone (0 = background,
    ``k + 1`` = prompt k; the higher index wins), as :func:`semantic_masks` computes it."""
    (mask_net,) = _need(ans, "mask_net")
    ids = np.arange(1, len(ans.prompts) + 1, dtype=np.int64)[:, None, None]
    return (mask_net.astype(np.int64) * ids).max(axis=0)


def detections(ans: Answer, names: tuple[str, ...], box_type: str = "hbb", *,
               use_boundary: bool = False, epoc_threshold: float = 0.25,
               epoc_area_ratio: float = 0.2, conf_threshold: float = 0.01, nms_iou: float = 0.5,
               remove_inner: bool = True) -> Detections:
    """Mask-to-box per prompt (EPOC-refined when ``use_boundary``), per-class NMS, rows by score.

    Needs mask and prob (and ``ans.boundary`` when ``use_boundary``). Boxes in original-image
    pixels; see :meth:`remotesam.RemoteSAM.detection`.
    """
    from remotesam.postprocess import masks_to_boxes, nms

    masks, probs = _need(ans, "mask", "prob")
    boundary = ans.boundary
    if use_boundary and boundary is None:
        raise ValueError("EPOC refinement asked for but the answer has no boundary map")
    # box_type is "hbb" or "obb": the callers validate their arguments (module docstring)
    bt = cast(Literal["hbb", "obb"], box_type)
    ncol = 4 if box_type == "hbb" else 8
    all_boxes, all_scores, all_labels = [], [], []
    for k in range(len(names)):
        mask, prob = masks[k], probs[k]
        refined = None
        if use_boundary and boundary is not None:
            from remotesam.postprocess import epoc_refine

            refined = epoc_refine(mask, boundary, epoc_threshold, area_ratio=epoc_area_ratio)
        rows = np.asarray(
            masks_to_boxes(mask, prob, box_type=bt, conf_threshold=conf_threshold,
                           remove_inner=remove_inner, new_mask=refined),
            dtype=np.float64,
        ).reshape(-1, ncol + 1)
        if rows.shape[0] == 0:
            continue
        if box_type == "hbb":
            nms_boxes = rows[:, :4]
        else:
            # The official code defines no NMS for polygons (nothing calls M2B with obb); we
            # suppress on each polygon's axis-aligned envelope.
            xs, ys = rows[:, 0:8:2], rows[:, 1:8:2]
            nms_boxes = np.stack([xs.min(1), ys.min(1), xs.max(1), ys.max(1)], axis=1)
        keep = np.asarray(nms(nms_boxes, rows[:, ncol], iou_threshold=nms_iou), dtype=np.intp)
        rows = rows[keep]
        rows = rows[np.argsort(-rows[:, ncol], kind="stable")]
        all_boxes.append(rows[:, :ncol])
        all_scores.append(rows[:, ncol])
        all_labels.append(np.full(rows.shape[0], k, dtype=np.int64))
    return Detections(
        classnames=names,
        box_type=box_type,
        boxes=np.concatenate(all_boxes) if all_boxes else np.zeros((0, ncol), np.float64),
        scores=np.concatenate(all_scores) if all_scores else np.zeros(0, np.float64),
        labels=np.concatenate(all_labels) if all_labels else np.zeros(0, np.int64),
    )


def grounding(ans: Answer, *, conf_threshold: float = 0.01, remove_inner: bool = True,
              k: int = 0) -> Grounding:
    """Union of prompt ``k``'s mask-to-box boxes (no EPOC, no NMS, official VG); needs mask,
    prob."""
    from remotesam.postprocess import masks_to_boxes

    masks, probs = _need(ans, "mask", "prob")
    rows = np.asarray(
        masks_to_boxes(masks[k], probs[k], box_type="hbb", conf_threshold=conf_threshold,
                       remove_inner=bool(remove_inner)),
        dtype=np.float64,
    ).reshape(-1, 5)
    if rows.shape[0] == 0:
        return Grounding(box=None, score=math.nan)
    box = np.array([rows[:, 0].min(), rows[:, 1].min(), rows[:, 2].max(), rows[:, 3].max()],
                   dtype=np.float64)
    return Grounding(box=box, score=float(rows[:, 4].mean()))


def multi_label(ans: Answer, names: tuple[str, ...], factor: float = 0.5,
                threshold: float = 0.5) -> MultiLabelResult:
    """Labels scoring ``factor*GMP + (1-factor)*GAP > threshold``; needs pooled."""
    scores = ans.scores(factor)
    labels = tuple(n for n, s in zip(names, scores) if s > threshold)
    return MultiLabelResult(classnames=names, scores=scores, labels=labels)


def multi_class(ans: Answer, names: tuple[str, ...], factor: float = 1.0,
                floor: float = 0.5) -> MultiClassResult:
    """The best class (first on ties), ``None`` below ``floor``; needs pooled."""
    scores = ans.scores(factor)
    best = int(np.argmax(scores))
    label = None if scores[best] < floor else names[best]
    return MultiClassResult(classnames=names, scores=scores, label=label)


def counts(dets: Detections, names: tuple[str, ...], prior_areas: Mapping[str, float] | None = None,
           area_factor: float = 0.8) -> Counts:
    """Number of boxes per class, optionally only those with ``area > prior * area_factor``."""
    out: dict[str, int] = {}
    for k, name in enumerate(names):
        boxes = dets.boxes[dets.labels == k]
        if prior_areas is not None:
            area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
            boxes = boxes[area > float(prior_areas[name]) * float(area_factor)]
        out[name] = int(boxes.shape[0])
    return Counts(classnames=names, counts=out)


def caption(dets: Detections, names: Sequence[str], hw: tuple[int, int], region_split: int,
            choose: Callable[..., str]) -> Caption:
    """The rule-based caption of horizontal detections (existence + distribution sentences)."""
    from remotesam.postprocess import build_caption

    pred = {
        name: np.column_stack(
            [dets.boxes[dets.labels == k], dets.scores[dets.labels == k]]
        ).tolist()
        for k, name in enumerate(names)
    }
    text = build_caption(pred, (int(hw[0]), int(hw[1])), region_split, choose)
    return Caption(text=text, detections=dets)
