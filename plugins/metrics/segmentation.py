"""Segmentation metrics: referring segmentation (REF) and semantic segmentation (SEG).

Referring segmentation, official ``eval/REF.py``:

* per expression ``I = sum(pred & gt)``, ``U = sum(pred | gt)``, ``IoU = I / U`` or **0 when
  U = 0** (empty prediction and empty target count as a miss, not as a perfect score);
* ``mIoU`` = mean of the per-expression IoU, ``oIoU`` = ``sum(I) / sum(U)``,
  ``Pr@t`` = share of expressions with ``IoU >= t``.

Semantic segmentation, official ``eval/SEG.py``:

* ``fast_hist(label, pred, n)``: ``n x n`` confusion matrix, rows = label, columns = pred;
* ``per_class_iu = diag / max(row + col - diag, 1)``, ``per_class_PA = diag / max(row, 1)``;
  because of the ``max(., 1)`` an absent class scores **0** (not NaN) and is averaged in;
* ``mIoU = nanmean(per_class_iu)`` over all ``n`` classes **including background (0)**.

Standard variants computed beside them (not official): IoU/F1 with NaN for classes absent from
both label and prediction (mmsegmentation convention), averaged without background.

Libraries: ``fast_hist`` is the official function reproduced as is (``np.bincount`` over the
pixels whose label lies in ``[0, n)``, so any out-of-range label, e.g. 255, is skipped);
torchmetrics' ``multiclass_confusion_matrix`` skips only one ``ignore_index`` and its
``multiclass_jaccard_index`` returns float32, so neither reproduces the official numbers to the
last digit. The REF metrics work on COCO RLE without decoding (:mod:`remotesam.bench.kit.masks`),
which torchmetrics has no counterpart for.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ._stats import f1_per_class, nanmean

__all__ = [
    "REF_THRESHOLDS",
    "fast_hist",
    "inter_union",
    "per_class_f1_std",
    "per_class_iou_official",
    "per_class_iou_std",
    "per_class_pa_official",
    "referring_metrics",
    "semantic_metrics",
]

#: Precision thresholds of the official REF evaluation.
REF_THRESHOLDS: tuple[float, ...] = (0.5, 0.6, 0.7, 0.8, 0.9)


def inter_union(pred: np.ndarray, gt: np.ndarray) -> tuple[int, int]:
    """Intersection and union pixel counts of two binary masks (official ``computeIoU``).

    Args:
        pred, gt: same-shape arrays; non-zero = foreground.

    Returns:
        ``(I, U)`` as Python ints.
    """
    p = np.asarray(pred) != 0
    g = np.asarray(gt) != 0
    if p.shape != g.shape:
        raise ValueError(f"inter_union: shapes differ, pred {p.shape} vs gt {g.shape}")
    i = int(np.count_nonzero(p & g))
    return i, int(np.count_nonzero(p) + np.count_nonzero(g) - i)


def referring_metrics(
    inter: Sequence[float] | np.ndarray,
    union: Sequence[float] | np.ndarray,
    thresholds: Sequence[float] = REF_THRESHOLDS,
) -> dict[str, float]:
    """Official REF aggregation from per-expression ``I`` and ``U``.

    Returns fractions in [0, 1] (multiply by 100 for the printed percentages):
    ``{"mIoU", "oIoU", "Pr@0.5", ...}``; NaN when there are no expressions (``oIoU`` NaN when
    every union is 0).
    """
    i = np.asarray(inter, dtype=np.float64)
    u = np.asarray(union, dtype=np.float64)
    if i.shape != u.shape or i.ndim != 1:
        raise ValueError(
            f"referring_metrics: I and U must be equal-length 1-D, got {i.shape}, {u.shape}"
        )
    iou = per_expression_iou(i, u)
    out: dict[str, float] = {
        "mIoU": float(iou.mean()) if iou.size else float("nan"),
        "oIoU": float(i.sum() / u.sum()) if u.sum() > 0 else float("nan"),
    }
    for t in thresholds:
        out[f"Pr@{t:g}"] = float((iou >= t).mean()) if iou.size else float("nan")
    return out


def per_expression_iou(inter: np.ndarray, union: np.ndarray) -> np.ndarray:
    """``I / U`` per expression, 0 where ``U == 0`` (official)."""
    i = np.asarray(inter, dtype=np.float64)
    u = np.asarray(union, dtype=np.float64)
    return np.divide(i, u, out=np.zeros_like(i), where=u > 0)


def fast_hist(label: np.ndarray, pred: np.ndarray, n: int) -> np.ndarray:
    """Official ``fast_hist``: ``(n, n)`` int64 confusion matrix, rows = label, cols = pred.

    Pixels whose label is outside ``[0, n)`` are ignored (the official ``k = (a >= 0) & (a < n)``);
    use that to drop an ignore index (e.g. 255). Predictions must lie in ``[0, n)``.
    """
    a = np.asarray(label).ravel().astype(np.int64)
    b = np.asarray(pred).ravel().astype(np.int64)
    if a.shape != b.shape:
        raise ValueError(f"fast_hist: label and pred sizes differ: {a.shape} vs {b.shape}")
    k = (a >= 0) & (a < n)
    if b[k].size and (b[k].min() < 0 or b[k].max() >= n):
        raise ValueError(f"fast_hist: prediction values outside [0, {n})")
    return np.bincount(n * a[k] + b[k], minlength=n * n).reshape(n, n)


def per_class_iou_official(hist: np.ndarray) -> np.ndarray:
    """Official ``per_class_iu``: ``diag / max(row + col - diag, 1)`` (absent class -> 0)."""
    h = np.asarray(hist, dtype=np.float64)
    d = np.diag(h)
    return d / np.maximum(h.sum(1) + h.sum(0) - d, 1)


def per_class_pa_official(hist: np.ndarray) -> np.ndarray:
    """Official ``per_class_PA``: ``diag / max(row, 1)`` (class absent from labels -> 0)."""
    h = np.asarray(hist, dtype=np.float64)
    return np.diag(h) / np.maximum(h.sum(1), 1)


def per_class_iou_std(hist: np.ndarray) -> np.ndarray:
    """Standard IoU per class: NaN where the class is absent from both label and prediction."""
    h = np.asarray(hist, dtype=np.float64)
    d = np.diag(h)
    u = h.sum(1) + h.sum(0) - d
    return np.divide(d, u, out=np.full_like(d, np.nan), where=u > 0)


def per_class_f1_std(hist: np.ndarray) -> np.ndarray:
    """F1 (Dice) per class ``2TP / (2TP + FP + FN)``; NaN where the class is absent from both."""
    return f1_per_class(hist)


def semantic_metrics(hist: np.ndarray) -> dict[str, float]:
    """All SEG metrics from a confusion matrix whose class 0 is background.

    Returns fractions in [0, 1]:

    * ``mIoU`` (official): nanmean of :func:`per_class_iou_official` over all classes incl. 0;
    * ``mPA`` (official): nanmean of :func:`per_class_pa_official`;
    * ``mIoU_fg``: mean standard IoU over classes ``1..n-1`` present in label or prediction;
    * ``mF1``: mean standard F1 over the same classes;
    * ``aAcc``: overall pixel accuracy ``trace / sum``.
    """
    h = np.asarray(hist, dtype=np.float64)
    total = h.sum()
    return {
        "mIoU": nanmean(per_class_iou_official(h)),
        "mPA": nanmean(per_class_pa_official(h)),
        "mIoU_fg": nanmean(per_class_iou_std(h)[1:]),
        "mF1": nanmean(per_class_f1_std(h)[1:]),
        "aAcc": float(np.trace(h) / total) if total > 0 else float("nan"),
    }
