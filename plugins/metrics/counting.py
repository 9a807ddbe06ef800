"""Object-counting metrics: official exact-match accuracy, plus MAE and RMSE.

Inputs are ``(n,)`` integer arrays of predicted and ground-truth counts, one entry per
(image, question) sample as in the official ``CNT.py``.
"""

from __future__ import annotations

import numpy as np

__all__ = ["counting_metrics", "filter_by_prior_area"]


def counting_metrics(pred: np.ndarray, gt: np.ndarray) -> dict[str, float]:
    """``accuracy`` (share with ``pred == gt``, official; fraction), ``mae``, ``rmse``
    (absolute counts), ``bias`` (mean ``pred - gt``). NaN for empty input.

    Raises:
        ValueError: shapes differ.
    """
    p = np.asarray(pred, dtype=np.float64).reshape(-1)
    g = np.asarray(gt, dtype=np.float64).reshape(-1)
    if p.shape != g.shape:
        raise ValueError(f"pred {p.shape} and gt {g.shape} differ in shape")
    if p.size == 0:
        nan = float("nan")
        return {"accuracy": nan, "mae": nan, "rmse": nan, "bias": nan}
    err = p - g
    return {
        "accuracy": float(np.mean(err == 0)),
        "mae": float(np.mean(np.abs(err))),
        "rmse": float(np.sqrt(np.mean(err**2))),
        "bias": float(np.mean(err)),
    }


def filter_by_prior_area(
    boxes_xyxy: np.ndarray, prior_area: float, area_factor: float = 0.8
) -> np.ndarray:
    """Boolean keep-mask of the official counting filter: ``(x2-x1)*(y2-y1) > prior*factor``.

    Args:
        boxes_xyxy: ``(n, 4)`` boxes.
        prior_area: the class's prior area in pixels.
        area_factor: official 0.8.
    """
    b = np.asarray(boxes_xyxy, dtype=np.float64).reshape(-1, 4)
    return (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]) > prior_area * area_factor
