"""Small numeric helpers shared by the metric modules (private)."""

from __future__ import annotations

import numpy as np

__all__ = ["f1_per_class", "nanmean"]


def nanmean(x: np.ndarray) -> float:
    """Mean of the non-NaN entries of ``x`` (float64); NaN, without a warning, when there is
    none."""
    v = np.asarray(x, dtype=np.float64)
    v = v[~np.isnan(v)]
    return float(v.mean()) if v.size else float("nan")


def f1_per_class(cm: np.ndarray) -> np.ndarray:
    """F1 (Dice) per class of a square confusion matrix: ``2 diag / (row + column)``.

    Returns:
        ``(K,)`` float64; NaN for classes absent from both truth and prediction (either axis
        orientation gives the same values).
    """
    c = np.asarray(cm, dtype=np.float64)
    d = np.diag(c)
    den = c.sum(1) + c.sum(0)
    return np.divide(2 * d, den, out=np.full(d.shape, np.nan), where=den > 0)
