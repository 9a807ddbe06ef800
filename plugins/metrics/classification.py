"""Classification metrics.

Scene (multi-class) classification, official ``eval/MCC.py`` + ``MultiClassRunningScore``:
the predicted class is ``argmax`` of the score vector (ties -> lowest index, so the predictor's
0.5 "no class" floor plays no part), the confusion matrix has rows = true class and
columns = predicted class, and the reported accuracy is ``trace / sum`` (top-1 accuracy).
Per-class accuracy = recall = ``diag / row``; the official code adds ``1e-15`` to denominators,
which changes results only in the last bits (not reproduced).

The confusion matrix is one ``numpy.bincount`` (integer counts, rows = target, columns =
prediction, exactly the official definition; the golden parity test in
``tests/test_plugin_mcc.py`` proves it, and ``tests/test_plugin_metrics_confusion.py`` checks it
equals ``torchmetrics``' ``multiclass_confusion_matrix``). torchmetrics is not called at run
time: importing it imports ``torch._dynamo`` and torchvision, 2-5 s of every run, for one
bincount. Accuracy, recall and F1 are derived from the matrix in float64 here, as the official
``MultiClassRunningScore`` derives them from its matrix (torchmetrics' own
``multiclass_accuracy``/``f1_score`` return float32, which would move the last digits).

Multi-label metrics (``mlc`` plugin) live in :mod:`.multilabel`.
"""

from __future__ import annotations

import numpy as np

from ._stats import f1_per_class, nanmean

__all__ = [
    "confusion_matrix",
    "multiclass_metrics",
    "per_class_accuracy",
    "scores_to_labels",
]


# ============================================================================================
# Multi-class (scene) classification
# ============================================================================================


def scores_to_labels(scores: np.ndarray) -> np.ndarray:
    """``argmax`` over the last axis of ``(n, K)`` scores (ties -> first index), int64 ``(n,)``."""
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim != 2:
        raise ValueError(f"scores_to_labels expects (n, K) scores, got shape {s.shape}")
    return np.argmax(s, axis=1).astype(np.int64)


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """``(K, K)`` int64 confusion matrix, rows = true class, columns = predicted class (equal to
    ``torchmetrics.functional.classification.multiclass_confusion_matrix``).

    Raises:
        ValueError: labels outside ``[0, K)`` or unequal lengths.
    """
    t = np.asarray(y_true, dtype=np.int64).ravel()
    p = np.asarray(y_pred, dtype=np.int64).ravel()
    if t.shape != p.shape:
        raise ValueError(f"confusion_matrix: {t.shape[0]} true labels vs {p.shape[0]} predictions")
    for name, v in (("y_true", t), ("y_pred", p)):
        if v.size and (v.min() < 0 or v.max() >= num_classes):
            raise ValueError(f"confusion_matrix: {name} has labels outside [0, {num_classes})")
    counts = np.bincount(t * num_classes + p, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes).astype(np.int64)


def per_class_accuracy(cm: np.ndarray) -> np.ndarray:
    """Recall per true class ``diag / row``; NaN for classes without samples."""
    c = np.asarray(cm, dtype=np.float64)
    row = c.sum(1)
    return np.divide(np.diag(c), row, out=np.full(row.shape, np.nan), where=row > 0)


def multiclass_metrics(cm: np.ndarray) -> dict[str, float]:
    """Fractions from a confusion matrix (rows = true).

    * ``accuracy`` (official top-1): ``trace / sum``;
    * ``mean_class_accuracy``: mean recall over classes that have samples (balanced accuracy);
    * ``macro_f1``: mean F1 over classes present in truth or prediction (F1 = 0 when a present
      class is never predicted correctly).
    """
    c = np.asarray(cm, dtype=np.float64)
    total = c.sum()
    d = np.diag(c)
    return {
        "accuracy": float(d.sum() / total) if total > 0 else float("nan"),
        "mean_class_accuracy": nanmean(per_class_accuracy(c)),
        "macro_f1": nanmean(f1_per_class(c)),
    }
