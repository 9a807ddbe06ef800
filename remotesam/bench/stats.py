"""Bootstrap statistics for reports and the gate.

Two kinds of metric decompose over samples (see :class:`remotesam.bench.api.Scores`):

* *mean* metrics: the metric is the mean of one value per sample (per-expression IoU for mIoU,
  a 0/1 hit for Acc@0.5, ...);
* *ratio* metrics: the metric is ``sum(num) / sum(den)`` over samples (oIoU = sum I / sum U).

Both are resampled the same way: draw ``n`` sample indices with replacement, recompute the metric,
repeat ``n_boot`` times. Everything is vectorised with numpy and driven by
``numpy.random.default_rng(seed)``, so the same inputs and seed always give the same numbers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from remotesam.bench.results import TaskResult

__all__ = ["bootstrap_ci", "metric_ci", "paired_bootstrap_pvalue", "per_sample_scale"]

# Upper bound on the number of resampled indices held in memory at once (int64: 8 bytes each).
_CHUNK_ELEMS = 4_000_000

Ratio = tuple[Sequence[float] | np.ndarray, Sequence[float] | np.ndarray]


def _as_1d(x: Sequence[float] | np.ndarray, what: str) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{what}: expected a 1-D sequence of numbers, got shape {arr.shape}")
    return arr


def _check_inputs(per_sample: Sequence[float] | np.ndarray | None, ratio: Ratio | None,
                  ) -> tuple[np.ndarray, np.ndarray | None]:
    """Return ``(values_or_num, den_or_None)`` after validating exactly one input kind."""
    if (per_sample is None) == (ratio is None):
        raise ValueError("pass exactly one of per_sample= (mean metric) or ratio=(num, den)")
    if per_sample is not None:
        return _as_1d(per_sample, "per_sample"), None
    if not isinstance(ratio, (tuple, list)) or len(ratio) != 2:
        raise ValueError("ratio: expected a pair (numerators, denominators) of 1-D sequences")
    num = _as_1d(ratio[0], "ratio numerators")
    den = _as_1d(ratio[1], "ratio denominators")
    if num.shape != den.shape:
        raise ValueError(
            f"ratio: numerators have {num.shape[0]} values but denominators {den.shape[0]}; "
            "they must be aligned per sample"
        )
    return num, den


def _resampled_stats(columns: Sequence[np.ndarray], n_boot: int, seed: int,
                     ) -> list[np.ndarray]:
    """Bootstrap sums of each column: ``(n_boot,)`` arrays, the same indices for every column.

    Drawing the indices once and summing every column with them is what makes a bootstrap
    *paired* (baseline and current resampled on the same samples) and a ratio correct (numerator
    and denominator resampled together).
    """
    n = columns[0].shape[0]
    rng = np.random.default_rng(seed)
    sums = [np.empty(n_boot, dtype=np.float64) for _ in columns]
    rows_per_chunk = max(1, _CHUNK_ELEMS // max(n, 1))
    for start in range(0, n_boot, rows_per_chunk):
        stop = min(n_boot, start + rows_per_chunk)
        idx = rng.integers(0, n, size=(stop - start, n))
        for col, out in zip(columns, sums):
            out[start:stop] = col[idx].sum(axis=1)
    return sums


def bootstrap_ci(
    per_sample: Sequence[float] | np.ndarray | None = None,
    ratio: Ratio | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of a mean or ratio metric.

    Args:
        per_sample: ``(n,)`` per-sample values whose mean is the metric.
        ratio: ``(num, den)``, two aligned ``(n,)`` arrays; the metric is ``sum(num)/sum(den)``.
        n_boot: number of bootstrap resamples (>= 1).
        seed: seed of ``numpy.random.default_rng``; same inputs + seed -> same interval.
        alpha: 0.05 gives the 95% interval (the ``alpha/2`` and ``1-alpha/2`` percentiles).

    Returns:
        ``(lo, hi)`` as floats, in the unit of the values given. ``(nan, nan)`` when there are no
        samples or any value is NaN; ``(v, v)`` when all resamples agree (e.g. one sample).
        Resamples whose ratio denominator sums to 0 are left out of the percentiles.

    Raises:
        ValueError: both or neither of ``per_sample``/``ratio`` given, misaligned arrays, or
            ``n_boot``/``alpha`` out of range.
    """
    a, den = _check_inputs(per_sample, ratio)
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    n = a.shape[0]
    if n == 0 or np.isnan(a).any() or (den is not None and np.isnan(den).any()):
        return (float("nan"), float("nan"))
    if den is None:
        (sums,) = _resampled_stats([a], n_boot, seed)
        stats = sums / n
    else:
        num_s, den_s = _resampled_stats([a, den], n_boot, seed)
        with np.errstate(divide="ignore", invalid="ignore"):
            stats = num_s / den_s
        stats = stats[np.isfinite(stats)]
        if stats.size == 0:
            return (float("nan"), float("nan"))
    lo, hi = np.quantile(stats, [alpha / 2.0, 1.0 - alpha / 2.0])
    return (float(lo), float(hi))


def paired_bootstrap_pvalue(
    a: Sequence[float] | np.ndarray | Ratio,
    b: Sequence[float] | np.ndarray | Ratio,
    *,
    higher_is_better: bool = True,
    n_boot: int = 1000,
    seed: int = 0,
) -> float:
    """One-sided paired bootstrap p-value that ``a`` (current) is worse than ``b`` (baseline).

    ``a`` and ``b`` hold values of the *same samples in the same order* (align them by sample
    id first). Each is either a ``(n,)`` array of per-sample values (mean metric) or a pair
    ``(num, den)`` of ``(n,)`` arrays (ratio metric); both must be of the same kind.

    The observed worsening is ``d = b_stat - a_stat`` (``a_stat - b_stat`` when lower is
    better). The samples are resampled ``n_boot`` times with the same indices for ``a`` and ``b``
    and ``d*`` recomputed; the p-value is ``(1 + #{d* <= 0}) / (1 + n_boot)``: the share of
    resamples in which the current run is *not* worse. A small p (< 0.05) means the drop is
    consistent across samples, not the luck of a few. If ``d <= 0`` (no worsening) the result is
    1.0.

    Returns:
        p in ``(0, 1]``; NaN when there are fewer than 2 samples or NaN values.

    Raises:
        ValueError: mixed kinds, misaligned lengths or bad ``n_boot``.
    """
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    a_is_ratio = isinstance(a, (tuple, list)) and len(a) == 2 and np.ndim(a[0]) == 1
    b_is_ratio = isinstance(b, (tuple, list)) and len(b) == 2 and np.ndim(b[0]) == 1
    if a_is_ratio != b_is_ratio:
        raise ValueError("paired_bootstrap_pvalue: a and b must both be per-sample arrays or "
                         "both (num, den) pairs")
    if a_is_ratio:
        a_num, a_den = _check_inputs(None, a)  # type: ignore[arg-type]
        b_num, b_den = _check_inputs(None, b)  # type: ignore[arg-type]
        cols = [a_num, a_den, b_num, b_den]  # dens are never None for ratio inputs
    else:
        cols = [_as_1d(a, "a"), _as_1d(b, "b")]  # type: ignore[arg-type]
    n = cols[0].shape[0]
    if any(c.shape[0] != n for c in cols):
        raise ValueError(
            f"paired_bootstrap_pvalue: a and b must hold the same samples; got lengths "
            f"{[c.shape[0] for c in cols]}"
        )
    if n < 2 or any(np.isnan(c).any() for c in cols):
        return float("nan")

    def worsening(sums: Sequence[np.ndarray | float]) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            if a_is_ratio:
                a_stat = np.asarray(sums[0]) / np.asarray(sums[1])
                b_stat = np.asarray(sums[2]) / np.asarray(sums[3])
            else:
                a_stat = np.asarray(sums[0]) / n
                b_stat = np.asarray(sums[1]) / n
        return (b_stat - a_stat) if higher_is_better else (a_stat - b_stat)

    observed = worsening([float(c.sum()) for c in cols])
    if not np.isfinite(observed) or observed <= 0:
        return 1.0
    d = worsening(_resampled_stats(cols, n_boot, seed))
    d = d[np.isfinite(d)]
    not_worse = int(np.count_nonzero(d <= 0)) + (n_boot - d.size)
    return float((1 + not_worse) / (1 + n_boot))


def _full_stat(values: np.ndarray, den: np.ndarray | None) -> float:
    if den is None:
        return float(values.mean()) if values.size else float("nan")
    d = float(den.sum())
    return float(values.sum()) / d if d != 0 else float("nan")


def per_sample_scale(full_stat: float, value: float) -> float | None:
    """Factor that maps the per-sample statistic to the reported metric value.

    Plugins may store per-sample values as fractions (a 0/1 hit) while the metric is reported
    in percent. Returns 1.0 when ``full_stat`` equals ``value``, 100.0 when ``100 * full_stat``
    does (relative tolerance 1e-6, absolute 1e-9), and ``None`` when neither holds (the
    per-sample values do not describe this metric, e.g. a different sample subset).
    """
    if not (math.isfinite(full_stat) and math.isfinite(value)):
        return None
    for scale in (1.0, 100.0):
        if math.isclose(full_stat * scale, value, rel_tol=1e-6, abs_tol=1e-9):
            return scale
    return None


def metric_ci(result: TaskResult, metric: str, *, n_boot: int = 1000, seed: int = 0,
              alpha: float = 0.05) -> tuple[float, float] | None:
    """95% bootstrap interval of ``result.metrics[metric]`` from its stored per-sample values.

    Uses ``result.per_sample[metric]`` (mean metric) or ``result.per_sample_ratio[metric]``
    (ratio metric), in the metric's own unit (see :func:`per_sample_scale`). Returns ``None``
    when the result has no per-sample values for ``metric``, they are empty, or they do not
    reproduce the reported value (so a wrong interval is never shown).
    """
    mv = result.metrics.get(metric)
    if mv is None:
        return None
    if metric in result.per_sample:
        vals = np.asarray(result.per_sample[metric].get("values", []), dtype=np.float64)
        den = None
    elif metric in result.per_sample_ratio:
        entry = result.per_sample_ratio[metric]
        vals = np.asarray(entry.get("num", []), dtype=np.float64)
        den = np.asarray(entry.get("den", []), dtype=np.float64)
        if den.shape != vals.shape:
            return None
    else:
        return None
    if vals.size == 0:
        return None
    scale = per_sample_scale(_full_stat(vals, den), float(mv.value))
    if scale is None:
        return None
    lo, hi = (bootstrap_ci(per_sample=vals, n_boot=n_boot, seed=seed, alpha=alpha) if den is None
              else bootstrap_ci(ratio=(vals, den), n_boot=n_boot, seed=seed, alpha=alpha))
    return (lo * scale, hi * scale)
