"""Multi-label classification metrics (official label-wise accuracy and standard ones).

Functional cores on ``(n, K)`` arrays: ``y_true`` / ``y_pred`` are 0/1 (bool or int), ``y_score``
float scores (higher = more likely). Class ``k`` is column ``k``.

The official RemoteSAM number (``MLC.py`` + ``MultiLabelRunningScore.accuracy()``) is the
**label-wise** (Hamming) accuracy ``(TP + TN) / (TP + TN + FP + FN)`` summed over every
(image, class) pair; it is dominated by true negatives. Exact-match (subset) accuracy, micro /
macro F1 and mAP are reported beside it under their own names.

Libraries: the per-class confusion matrices are counted in numpy (the ``[[tn, fp], [fn, tp]]``
layout of the official ignite ``MultiLabelConfusionMatrix``; golden parity in
``tests/test_plugin_mlc.py``; equal to torchmetrics' ``multilabel_confusion_matrix`` and
scikit-learn's, ``tests/test_plugin_metrics_confusion.py``: importing torchmetrics at run time
would cost 2-5 s of every run, see :mod:`.classification`). Accuracy, precision, recall and F1
are derived from those counts in float64 (torchmetrics' own ``multilabel_f1_score`` & co. return
float32, which would move the last digits). Average precision is computed here in numpy with
scikit-learn's definition (``average_precision_score``: step-wise sum over distinct score
thresholds, equal to it bit for bit, checked in the tests): torchmetrics'
``multilabel_average_precision`` works in float32 (differs at ~1e-7) and scikit-learn is not a
run-time dependency.
"""

from __future__ import annotations

import numpy as np

from ._stats import nanmean

__all__ = [
    "average_precision_per_class",
    "binary_average_precision",
    "labelwise_accuracy",
    "multilabel_confusion",
    "multilabel_metrics",
    "per_sample_multilabel",
]


def _as_bool(a: np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(a)
    if arr.ndim != 2:
        raise ValueError(f"{name}: expected an (n, K) array, got shape {arr.shape}")
    return arr.astype(bool)


def multilabel_confusion(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """Per-class 2x2 confusion matrices ``(K, 2, 2)`` int64 laid out ``[[tn, fp], [fn, tp]]``.

    Equal to ``torchmetrics.functional.classification.multilabel_confusion_matrix``; the
    layout of the official ignite ``MultiLabelConfusionMatrix`` and of
    ``sklearn.metrics.multilabel_confusion_matrix``.
    """
    t = _as_bool(y_true, "y_true")
    p = _as_bool(y_pred, "y_pred")
    if t.shape != p.shape:
        raise ValueError(f"y_true {t.shape} and y_pred {p.shape} differ in shape")
    tp = (t & p).sum(0)
    fp = (~t & p).sum(0)
    fn = (t & ~p).sum(0)
    tn = (~t & ~p).sum(0)
    return np.stack([np.stack([tn, fp], 1), np.stack([fn, tp], 1)], 1).astype(np.int64)


def labelwise_accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[float, np.ndarray]:
    """Official RemoteSAM "accuracy": ``(TP+TN)/(all pairs)`` overall and per class.

    Returns:
        ``(accuracy, per_class)``: a float and a ``(K,)`` float64 array, fractions in [0, 1].
    """
    cm = multilabel_confusion(y_true, y_pred)
    correct = cm[:, 0, 0] + cm[:, 1, 1]
    total = cm.sum(axis=(1, 2))
    overall = float(correct.sum() / total.sum()) if total.sum() else float("nan")
    per_class = np.where(total > 0, correct / np.maximum(total, 1), np.nan).astype(np.float64)
    return overall, per_class


def binary_average_precision(y_true: np.ndarray, y_score: np.ndarray) -> float:
    """Average precision of one class: ``sum_i (R_i - R_{i-1}) P_i`` over the distinct score
    thresholds in decreasing order (scikit-learn's ``average_precision_score``, no
    interpolation), float64.

    Args:
        y_true: ``(n,)`` 0/1 or bool, at least one positive.
        y_score: ``(n,)`` scores, higher = more likely positive; ties share one threshold.
    """
    t = np.asarray(y_true).astype(bool).ravel()
    s = np.asarray(y_score, dtype=np.float64).ravel()
    order = np.argsort(s, kind="mergesort")[::-1]
    s, t = s[order], t[order]
    last = np.r_[np.flatnonzero(np.diff(s)), s.size - 1]  # last index of each distinct score
    tps = np.cumsum(t, dtype=np.float64)[last]
    fps = 1 + last - tps
    precision = tps / (tps + fps)
    recall = tps / tps[-1]
    recall = np.hstack((recall[::-1], 0.0))
    precision = np.hstack((precision[::-1], 1.0))
    return float(-np.sum(np.diff(recall) * precision[:-1]))


def average_precision_per_class(y_true: np.ndarray, y_score: np.ndarray) -> np.ndarray:
    """``(K,)`` average precision per class (:func:`binary_average_precision`), NaN for classes
    without any positive sample (AP is undefined there)."""
    t = _as_bool(y_true, "y_true")
    s = np.asarray(y_score, dtype=np.float64)
    if s.shape != t.shape:
        raise ValueError(f"y_score {s.shape} and y_true {t.shape} differ in shape")
    out = np.full(t.shape[1], np.nan)
    for k in range(t.shape[1]):
        if t[:, k].any():
            out[k] = binary_average_precision(t[:, k], s[:, k])
    return out


def _f1(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> np.ndarray:
    den = 2 * tp + fp + fn
    return np.where(den > 0, 2 * tp / np.maximum(den, 1), 0.0)


def multilabel_metrics(
    y_true: np.ndarray, y_pred: np.ndarray, y_score: np.ndarray | None = None
) -> dict[str, float | list[float]]:
    """All multi-label metrics, fractions in [0, 1].

    Keys: ``accuracy`` (official label-wise), ``accuracy_per_class``, ``exact_match`` (subset
    accuracy), ``f1_micro``, ``f1_macro`` (per-class F1 = 2TP/(2TP+FP+FN), 0 where undefined, as
    sklearn ``zero_division=0``), ``precision_micro``, ``recall_micro``, ``mAP`` (mean AP over
    classes that have positives; NaN without scores or positives), ``ap_per_class``.
    """
    t = _as_bool(y_true, "y_true")
    p = _as_bool(y_pred, "y_pred")
    cm = multilabel_confusion(t, p)
    tp, fp, fn = cm[:, 1, 1], cm[:, 0, 1], cm[:, 1, 0]
    acc, acc_pc = labelwise_accuracy(t, p)
    TP, FP, FN = tp.sum(), fp.sum(), fn.sum()
    out: dict[str, float | list[float]] = {
        "accuracy": acc,
        "accuracy_per_class": [float(v) for v in acc_pc],
        "exact_match": float(np.mean(np.all(t == p, axis=1))) if len(t) else float("nan"),
        "f1_micro": float(_f1(np.array(TP), np.array(FP), np.array(FN))),
        "f1_macro": float(np.mean(_f1(tp, fp, fn))) if len(tp) else float("nan"),
        "precision_micro": float(TP / (TP + FP)) if TP + FP else 0.0,
        "recall_micro": float(TP / (TP + FN)) if TP + FN else 0.0,
    }
    if y_score is not None and len(t):
        ap = average_precision_per_class(t, y_score)
        out["ap_per_class"] = [float(v) for v in ap]
        out["mAP"] = nanmean(ap)
    else:
        out["ap_per_class"] = [float("nan")] * t.shape[1]
        out["mAP"] = float("nan")
    return out


def per_sample_multilabel(
    y_true: np.ndarray, y_pred: np.ndarray
) -> dict[str, np.ndarray | tuple[np.ndarray, np.ndarray]]:
    """Per-image decompositions for bootstrap CIs.

    Returns ``accuracy`` (per-image share of correct labels; its mean is the label-wise accuracy
    because every image has K labels), ``exact_match`` (0/1) and ``f1_micro`` as a
    ``(num, den) = (2TP_i, 2TP_i + FP_i + FN_i)`` pair whose ratio of sums is micro F1.
    """
    t = _as_bool(y_true, "y_true")
    p = _as_bool(y_pred, "y_pred")
    tp = np.sum(t & p, axis=1).astype(np.float64)
    fp = np.sum(~t & p, axis=1).astype(np.float64)
    fn = np.sum(t & ~p, axis=1).astype(np.float64)
    return {
        "accuracy": np.mean(t == p, axis=1).astype(np.float64),
        "exact_match": np.all(t == p, axis=1).astype(np.float64),
        "f1_micro": (2 * tp, 2 * tp + fp + fn),
    }
