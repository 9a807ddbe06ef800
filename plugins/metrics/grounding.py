"""Visual-grounding metrics (official ``eval/VG.py``, with its stale-IoU bug fixed).

* Box IoU of ``[x1, y1, x2, y2]`` boxes with **no +1**: intersection
  ``max(0, ix2 - ix1) * max(0, iy2 - iy1)``, 0.0 when the union is 0.
* ``Acc@t`` = share of expressions with ``IoU >= t`` for t in 0.5..0.9 (the paper's "AP50" is
  ``Acc@0.5``); ``mIoU`` = mean IoU over expressions.
* An expression without a predicted box counts as **IoU 0** for every metric. The official loop
  adds 0 to its IoU sum but reuses the *previous* sample's IoU for the precision counters
  (NameError on the first sample); that defect is documented, not reproduced.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["VG_THRESHOLDS", "box_iou", "box_iou_pairs", "grounding_metrics"]

#: Accuracy thresholds of the official VG evaluation.
VG_THRESHOLDS: tuple[float, ...] = (0.5, 0.6, 0.7, 0.8, 0.9)


def box_iou(pred: Sequence[float], gt: Sequence[float]) -> float:
    """IoU of two xyxy boxes, official formula (no +1; 0.0 when the union is 0)."""
    return float(
        box_iou_pairs(np.asarray([pred], dtype=np.float64), np.asarray([gt], dtype=np.float64))[0]
    )


def box_iou_pairs(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Element-wise IoU of ``(n, 4)`` xyxy boxes; rows of ``pred`` that are NaN give IoU 0.

    Areas use ``(x2 - x1) * (y2 - y1)`` as given (the official code does not clip degenerate
    boxes); intersection widths are clipped at 0.

    Returns:
        ``(n,)`` float64.
    """
    p = np.asarray(pred, dtype=np.float64).reshape(-1, 4)
    g = np.asarray(gt, dtype=np.float64).reshape(-1, 4)
    if p.shape != g.shape:
        raise ValueError(f"box_iou_pairs: shapes differ {p.shape} vs {g.shape}")
    iw = np.maximum(0.0, np.minimum(p[:, 2], g[:, 2]) - np.maximum(p[:, 0], g[:, 0]))
    ih = np.maximum(0.0, np.minimum(p[:, 3], g[:, 3]) - np.maximum(p[:, 1], g[:, 1]))
    inter = iw * ih
    union = (
        (p[:, 2] - p[:, 0]) * (p[:, 3] - p[:, 1])
        + (g[:, 2] - g[:, 0]) * (g[:, 3] - g[:, 1])
        - inter
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)
    return np.nan_to_num(iou, nan=0.0)


def grounding_metrics(
    ious: np.ndarray, thresholds: Sequence[float] = VG_THRESHOLDS
) -> dict[str, float]:
    """``{"mIoU", "Acc@0.5", ...}`` as fractions from per-expression IoUs (no box = 0)."""
    iou = np.asarray(ious, dtype=np.float64)
    out = {"mIoU": float(iou.mean()) if iou.size else float("nan")}
    for t in thresholds:
        out[f"Acc@{t:g}"] = float((iou >= t).mean()) if iou.size else float("nan")
    return out
