"""Bootstrap statistics for reports and the gate.

Two kinds of metric decompose over samples (see :class:`remotesam.bench.api.Scores`):

* *mean* metrics: the metric is the mean of one value per sample (per-expression IoU for mIoU,
  a 0/1 hit for Acc@0.5, ...);
* *ratio* metrics: the metric is ``sum(num) / sum(den)`` over samples (oIoU = sum I / sum U).

Both are resampled the same way: draw ``n`` sample indices with replacement, recompute the
metric, repeat ``n_boot`` times. Everything is vectorised with numpy and driven by
``numpy.random.default_rng(seed)``, so the same inputs and seed always give the same numbers.

Small samples (the gate and ``--limit`` runs see n = 5..20): a percentile bootstrap is too
narrow there (at n = 10 a nominal 95% interval of a mean covers about 89%) and a bootstrap
p-value is anti-conservative, so intervals and tests are chosen by the kind of values:

* 0/1 per-sample values (Acc@0.5, accuracy, Pr@0.5, ...; 0/100 when a plugin stores hits in
  percent): **Wilson score** interval for one
  proportion (:func:`wilson_interval`), **Newcombe's hybrid score** interval (method 10, with
  the continuity-corrected phi) for a paired difference, and the **exact McNemar** (sign) test
  on the discordant pairs (:func:`exact_mcnemar_pvalue`): all valid at any n, no resampling;
* continuous per-sample values and ratio metrics: **Student t** intervals with n - 1 degrees
  of freedom below ``SMALL_N`` samples (the delta method linearises a ratio), the percentile
  bootstrap from ``SMALL_N`` on; the paired test is a **permutation test** that swaps the
  baseline and current value of each sample: exact (all 2^m swaps of the m samples that
  changed) when m <= ``EXACT_MAX_M``, else ``n_perm`` seeded random swaps
  (:func:`paired_permutation_pvalue`).

Student t quantiles, the Wilson interval and the exact binomial tail come from
``scipy.stats``; the resampling methods are this module's own (see the note above
:func:`bootstrap_ci` for why).

:func:`paired_test` and :func:`paired_difference_interval` pick the right one; the gate uses
them, :func:`metric_ci` picks the interval for reports.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, cast

import numpy as np

if TYPE_CHECKING:
    from remotesam.bench.records.results import TaskResult

__all__ = [
    "EXACT_MAX_M",
    "SMALL_N",
    "binary_scale",
    "bootstrap_ci",
    "exact_mcnemar_pvalue",
    "largest_single_sample_effect",
    "mean_t_interval",
    "metric_ci",
    "newcombe_paired_interval",
    "paired_difference_interval",
    "paired_permutation_pvalue",
    "paired_test",
    "per_sample_scale",
    "ratio_t_interval",
    "sample_ci",
    "t_quantile",
    "wilson_interval",
]

#: Below this many samples, continuous intervals use Student t instead of the bootstrap.
SMALL_N = 30
#: Up to this many changed samples, the paired permutation test enumerates every swap (2^m).
EXACT_MAX_M = 20

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


# The bootstrap and the permutation test stay hand-written beside scipy.stats:
# * ``scipy.stats.bootstrap(method="percentile")`` draws its resamples in another order from
#   the same seed, so every stored and published interval would move; a ratio metric needs
#   its numerator and denominator resampled with the same indices, which this code gets from
#   one index draw for all columns.
# * ``scipy.stats.permutation_test(permutation_type="samples")`` gives the same exact p-values
#   (tested), but enumerates all 2^n swaps of every sample where only the m samples that
#   changed matter (2^m; 14x slower at m = 15 even when given only those), counts ties within
#   100 machine epsilons instead of 1e-9 relative, and its random mode draws other swaps from
#   the same seed than the stored p-values were computed with.


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


# --------------------------------------------------------------------------------------------
# small-sample intervals and exact tests


def t_quantile(q: float, df: int) -> float:
    """Quantile ``q`` in (0, 1) of Student's t with ``df >= 1`` degrees of freedom.

    ``scipy.stats.t.ppf``. Raises ValueError on bad input (scipy would return NaN).
    """
    if not 0.0 < q < 1.0 or df < 1:
        raise ValueError(f"t_quantile: need 0 < q < 1 and df >= 1, got q={q}, df={df}")
    from scipy import stats as sps  # on first use: importing scipy.stats costs ~0.5 s

    return float(sps.t.ppf(q, df))


#: The values a per-sample hit may take besides 0: a fraction (1) or a percentage (100).
_HIT_VALUES = (1.0, 100.0)


def binary_scale(*arrays: Sequence[float] | np.ndarray) -> float | None:
    """The hit value ``s`` when every value of every array is 0 or ``s`` (``s`` = 1 or 100,
    a per-sample hit/miss stored as a fraction or in percent); None otherwise or when empty.
    All-zero arrays count as fractions (``s = 1``)."""
    arrs = [np.asarray(a, dtype=np.float64).reshape(-1) for a in arrays]
    if not arrs or any(a.size == 0 for a in arrs):
        return None
    levels = set(np.unique(np.concatenate(arrs)).tolist()) - {0.0}
    if not levels:
        return 1.0
    if len(levels) == 1 and next(iter(levels)) in _HIT_VALUES:
        return float(next(iter(levels)))
    return None


def wilson_interval(k: int, n: int, alpha: float = 0.05) -> tuple[float, float]:
    """Wilson score interval of a proportion ``k / n`` (fractions in [0, 1]).

    Right at small n (coverage close to nominal from n = 5) and never outside [0, 1], unlike
    the Wald or bootstrap intervals: 0 of 5 gives ``(0, 0.434)``, not ``(0, 0)``.
    ``scipy.stats.binomtest(k, n).proportion_ci(method="wilson")`` without continuity
    correction. ``(nan, nan)`` when ``n == 0``.
    """
    if n <= 0:
        return (float("nan"), float("nan"))
    if not 0 <= k <= n:
        raise ValueError(f"wilson_interval: need 0 <= k <= n, got k={k}, n={n}")
    from scipy import stats as sps  # on first use: importing scipy.stats costs ~0.5 s

    ci = sps.binomtest(int(k), int(n)).proportion_ci(confidence_level=1.0 - alpha,
                                                    method="wilson")
    return (max(0.0, float(ci.low)), min(1.0, float(ci.high)))


def newcombe_paired_interval(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray,
                             alpha: float = 0.05) -> tuple[float, float]:
    """Interval of ``mean(a) - mean(b)`` for paired 0/1 outcomes (Newcombe 1998, method 10).

    ``a`` (current) and ``b`` (baseline) are ``(n,)`` arrays of 0/1 on the same samples. The
    hybrid score (square-and-add) interval combines the two Wilson intervals with the
    correlation of the pairs; it is valid at small n and stays within [-1, 1].
    ``(nan, nan)`` when ``n == 0``.

    The correlation is Newcombe's continuity-corrected phi, as the R references compute it
    (contingencytables ``Newcombe_square_and_add_CI_paired_2x2``, Fagerland, Lydersen and
    Laake 2017, ch. 8; biostatUZH ``confIntPairedProportion``). With the 2x2 table
    ``n11`` (both hit), ``n10`` (only ``a``), ``n01`` (only ``b``), ``n00`` and
    ``A = n11 * n00 - n10 * n01``: phi is ``(A - n/2) / sqrt(margins)`` when ``A > n/2``,
    0 when ``0 <= A <= n/2``, ``A / sqrt(margins)`` when ``A < 0``, and 0 when a margin is 0.
    The uncorrected phi (``A / sqrt(margins)``) is close to 1 when two runs agree on most
    samples, which shrinks the interval far below its nominal coverage (a run compared with
    itself on 20 samples: +-1.4 points instead of +-11.7).
    """
    x, y = _as_1d(a, "a").astype(bool), _as_1d(b, "b").astype(bool)
    n = x.size
    if n == 0 or y.size != n:
        return (float("nan"), float("nan"))
    n11 = int(np.sum(x & y))
    n10 = int(np.sum(x & ~y))
    n01 = int(np.sum(~x & y))
    n00 = n - n11 - n10 - n01
    p1, p2 = (n11 + n10) / n, (n11 + n01) / n
    l1, u1 = wilson_interval(n11 + n10, n, alpha)
    l2, u2 = wilson_interval(n11 + n01, n, alpha)
    margins = (n11 + n10) * (n01 + n00) * (n11 + n01) * (n10 + n00)  # 0 when a margin is 0
    cross = n11 * n00 - n10 * n01
    if margins == 0 or 0 <= cross <= n / 2:
        phi = 0.0
    elif cross > n / 2:
        phi = (cross - n / 2) / math.sqrt(margins)
    else:
        phi = cross / math.sqrt(margins)
    theta = p1 - p2
    d = math.sqrt(max(0.0, (p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2))
    e = math.sqrt(max(0.0, (u1 - p1) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2) + (p2 - l2) ** 2))
    return (max(-1.0, theta - d), min(1.0, theta + e))


def mean_t_interval(values: Sequence[float] | np.ndarray, alpha: float = 0.05,
                    ) -> tuple[float, float]:
    """Student t interval of a mean: ``mean +- t(1 - alpha/2, n - 1) * sd / sqrt(n)``.

    ``(nan, nan)`` for fewer than 2 values or NaN values; ``(m, m)`` when all values agree.
    """
    x = _as_1d(values, "values")
    n = x.size
    if n < 2 or np.isnan(x).any():
        return (float("nan"), float("nan"))
    m = float(x.mean())
    half = t_quantile(1.0 - alpha / 2.0, n - 1) * float(x.std(ddof=1)) / math.sqrt(n)
    return (m - half, m + half)


def _ratio_influence(num: np.ndarray, den: np.ndarray) -> tuple[float, np.ndarray] | None:
    d = float(den.sum())
    if d == 0 or not math.isfinite(d):
        return None
    r = float(num.sum()) / d
    return r, (num - r * den) / (d / num.size)


def ratio_t_interval(num: Sequence[float] | np.ndarray, den: Sequence[float] | np.ndarray,
                     alpha: float = 0.05) -> tuple[float, float]:
    """Interval of ``sum(num) / sum(den)`` by the delta method with a Student t quantile.

    The ratio is linearised per sample (``z_i = (num_i - r * den_i) / mean(den)``) and the
    t interval of the mean of ``z`` is centred on ``r``. ``(nan, nan)`` for fewer than 2
    samples, NaN values or a zero denominator sum.
    """
    x, y = _as_1d(num, "num"), _as_1d(den, "den")
    if x.size < 2 or x.size != y.size or np.isnan(x).any() or np.isnan(y).any():
        return (float("nan"), float("nan"))
    infl = _ratio_influence(x, y)
    if infl is None:
        return (float("nan"), float("nan"))
    r, z = infl
    half = t_quantile(1.0 - alpha / 2.0, x.size - 1) * float(z.std(ddof=1)) / math.sqrt(x.size)
    return (r - half, r + half)


def sample_ci(per_sample: Sequence[float] | np.ndarray | None = None, ratio: Ratio | None = None,
              *, alpha: float = 0.05, n_boot: int = 1000, seed: int = 0,
              zero_hit: float = 1.0) -> tuple[float, float]:
    """Confidence interval of a mean or ratio metric, chosen for the sample size and kind.

    0/1 values: Wilson score; continuous values or a ratio with fewer than :data:`SMALL_N`
    samples: Student t (:func:`mean_t_interval`, :func:`ratio_t_interval`); otherwise the
    percentile bootstrap (:func:`bootstrap_ci`). In the unit of the values given.
    ``zero_hit``: the hit value when every value is 0 (misses only: the values alone cannot
    say whether a hit would be 1 or 100); pass 100.0 for hits stored in percent, so that
    0 of 4 gives ``(0, 48.99)`` and not ``(0, 0.49)``.
    """
    a, den = _check_inputs(per_sample, ratio)
    n = a.shape[0]
    if n == 0 or np.isnan(a).any() or (den is not None and np.isnan(den).any()):
        return (float("nan"), float("nan"))
    hit = binary_scale(a) if den is None else None
    if hit is not None:
        if not np.any(a):
            hit = float(zero_hit)
        lo, hi = wilson_interval(int(np.count_nonzero(a)), n, alpha)
        return (lo * hit, hi * hit)
    if n < SMALL_N:
        return mean_t_interval(a, alpha) if den is None else ratio_t_interval(a, den, alpha)
    return (bootstrap_ci(per_sample=a, n_boot=n_boot, seed=seed, alpha=alpha) if den is None
            else bootstrap_ci(ratio=(a, den), n_boot=n_boot, seed=seed, alpha=alpha))


def exact_mcnemar_pvalue(n_worse: int, n_better: int) -> float:
    """One-sided exact McNemar (sign) test on the discordant pairs of paired 0/1 outcomes.

    ``n_worse``: samples right in the baseline and wrong now; ``n_better``: the reverse.
    Under "no change" each discordant pair is worse with probability 1/2, so
    ``p = P(X >= n_worse)`` for ``X ~ Binomial(n_worse + n_better, 1/2)``
    (``scipy.stats.binomtest``, one-sided ``"greater"``).
    1.0 when there is no discordant pair. Valid at any n (no large-sample approximation).
    """
    if n_worse < 0 or n_better < 0:
        raise ValueError(f"exact_mcnemar_pvalue: counts must be >= 0, got {n_worse}, {n_better}")
    m = n_worse + n_better
    if m == 0:
        return 1.0
    from scipy import stats as sps  # on first use: importing scipy.stats costs ~0.5 s

    res = sps.binomtest(int(n_worse), int(m), 0.5, alternative="greater")
    return min(1.0, float(res.pvalue))


def _paired_columns(a: Sequence[float] | np.ndarray | Ratio,
                    b: Sequence[float] | np.ndarray | Ratio,
                    what: str) -> tuple[bool, list[np.ndarray], list[np.ndarray]]:
    """``(is_ratio, a_columns, b_columns)``: ``[values]`` or ``[num, den]`` per side."""
    a_is_ratio = isinstance(a, (tuple, list)) and len(a) == 2 and np.ndim(a[0]) == 1
    b_is_ratio = isinstance(b, (tuple, list)) and len(b) == 2 and np.ndim(b[0]) == 1
    if a_is_ratio != b_is_ratio:
        raise ValueError(f"{what}: a and b must both be per-sample arrays or both (num, den) "
                         "pairs")
    acols: list[np.ndarray]
    bcols: list[np.ndarray]
    if a_is_ratio:  # a ratio input always gives both columns
        acols = [c for c in _check_inputs(None, a) if c is not None]  # type: ignore[arg-type]
        bcols = [c for c in _check_inputs(None, b) if c is not None]  # type: ignore[arg-type]
    else:
        acols = [_as_1d(cast("Sequence[float] | np.ndarray", a), "a")]
        bcols = [_as_1d(cast("Sequence[float] | np.ndarray", b), "b")]
    n = acols[0].shape[0]
    if any(c.shape[0] != n for c in acols + bcols):
        raise ValueError(f"{what}: a and b must hold the same samples; got lengths "
                         f"{[c.shape[0] for c in acols + bcols]}")
    return a_is_ratio, acols, bcols


def _stat(sums: Sequence[np.ndarray | float], is_ratio: bool, n: int) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        if is_ratio:
            return np.asarray(sums[0], dtype=np.float64) / np.asarray(sums[1], dtype=np.float64)
        return np.asarray(sums[0], dtype=np.float64) / n


def paired_permutation_pvalue(
    a: Sequence[float] | np.ndarray | Ratio,
    b: Sequence[float] | np.ndarray | Ratio,
    *,
    higher_is_better: bool = True,
    n_perm: int = 10000,
    seed: int = 0,
) -> float:
    """One-sided paired permutation p-value that ``a`` (current) is worse than ``b`` (baseline).

    ``a`` and ``b``: the same samples in the same order, each a ``(n,)`` array (mean metric)
    or a ``(num, den)`` pair of ``(n,)`` arrays (ratio metric). Under "no change" the labels
    current/baseline of each sample are exchangeable, so every way of swapping them is equally
    likely. The statistic is the worsening (``stat(b) - stat(a)``, reversed when lower is
    better); the p-value is the share of swap patterns whose worsening is at least the
    observed one. Only the m samples whose values differ matter: with ``m <=`` :data:`EXACT_MAX_M`
    all ``2^m`` patterns are enumerated (exact, no randomness, right at any n), otherwise
    ``n_perm`` random patterns are drawn with ``default_rng(seed)`` and
    ``p = (1 + #{>= observed}) / (1 + n_perm)``.

    Returns:
        p in ``(0, 1]``; 1.0 when there is no worsening; NaN for fewer than 2 samples or NaN
        values.

    Raises:
        ValueError: mixed kinds, misaligned lengths or ``n_perm < 1``.
    """
    if n_perm < 1:
        raise ValueError(f"n_perm must be >= 1, got {n_perm}")
    is_ratio, acols, bcols = _paired_columns(a, b, "paired_permutation_pvalue")
    n = acols[0].shape[0]
    if n < 2 or any(np.isnan(c).any() for c in acols + bcols):
        return float("nan")
    sign = 1.0 if higher_is_better else -1.0
    a_sums = [float(c.sum()) for c in acols]
    b_sums = [float(c.sum()) for c in bcols]
    observed = float(sign * (_stat(b_sums, is_ratio, n) - _stat(a_sums, is_ratio, n)))
    if not math.isfinite(observed) or observed <= 0:
        return 1.0
    changed = np.zeros(n, dtype=bool)
    for ca, cb in zip(acols, bcols):
        changed |= ca != cb
    deltas = [(cb - ca)[changed] for ca, cb in zip(acols, bcols)]  # swapping moves a by +delta
    m = int(changed.sum())
    tol = 1e-9 * abs(observed)

    def count(swaps: np.ndarray) -> int:
        moved = [swaps @ d for d in deltas]
        a_stat = _stat([s + mv for s, mv in zip(a_sums, moved)], is_ratio, n)
        b_stat = _stat([s - mv for s, mv in zip(b_sums, moved)], is_ratio, n)
        w = sign * (b_stat - a_stat)
        return int(np.count_nonzero(np.isfinite(w) & (w >= observed - tol)))

    rows = max(1, _CHUNK_ELEMS // max(m, 1))
    if m <= EXACT_MAX_M:
        total = 1 << m
        bits = np.arange(m, dtype=np.int64)
        hits = 0
        for start in range(0, total, rows):
            codes = np.arange(start, min(total, start + rows), dtype=np.int64)
            hits += count(((codes[:, None] >> bits) & 1).astype(np.float64))
        return hits / total
    rng = np.random.default_rng(seed)
    hits = 0
    for start in range(0, n_perm, rows):
        k = min(n_perm, start + rows) - start
        raw = np.frombuffer(rng.bytes(k * ((m + 7) // 8)), dtype=np.uint8).reshape(k, -1)
        hits += count(np.unpackbits(raw, axis=1, count=m).astype(np.float64))  # fair coin bits
    return (1 + hits) / (1 + n_perm)


def paired_test(
    a: Sequence[float] | np.ndarray | Ratio,
    b: Sequence[float] | np.ndarray | Ratio,
    *,
    higher_is_better: bool = True,
    n_perm: int = 10000,
    seed: int = 0,
) -> tuple[float, str]:
    """One-sided paired test that ``a`` (current) is worse than ``b`` (baseline).

    0/1 per-sample values: :func:`exact_mcnemar_pvalue`; anything else (continuous values,
    ratio metrics): :func:`paired_permutation_pvalue`. Returns ``(p, method)`` where
    ``method`` names the test for reports (``"exact McNemar"``, ``"exact permutation"``,
    ``"permutation (10000 draws)"``); ``(nan, "")`` with fewer than 2 samples or NaN values.
    """
    is_ratio, acols, bcols = _paired_columns(a, b, "paired_test")
    n = acols[0].shape[0]
    if n < 2 or any(np.isnan(c).any() for c in acols + bcols):
        return (float("nan"), "")
    if not is_ratio and binary_scale(acols[0], bcols[0]) is not None:
        x, y = acols[0] != 0, bcols[0] != 0
        lost, won = int(np.sum(~x & y)), int(np.sum(x & ~y))
        if not higher_is_better:
            lost, won = won, lost
        return (exact_mcnemar_pvalue(lost, won), "exact McNemar")
    m = int(sum((ca != cb) for ca, cb in zip(acols, bcols)).astype(bool).sum())
    p = paired_permutation_pvalue(a, b, higher_is_better=higher_is_better, n_perm=n_perm,
                                  seed=seed)
    return (p, "exact permutation" if m <= EXACT_MAX_M else f"permutation ({n_perm} draws)")


def paired_difference_interval(
    a: Sequence[float] | np.ndarray | Ratio,
    b: Sequence[float] | np.ndarray | Ratio,
    alpha: float = 0.05,
) -> tuple[float, float]:
    """Interval of ``stat(a) - stat(b)`` (current minus baseline) on paired samples.

    0/1 values: Newcombe's hybrid score interval; continuous values: paired Student t on the
    differences; ratio metrics: the delta method on the difference of the two linearised
    ratios, with a t quantile. In the unit of the values; ``(nan, nan)`` for fewer than 2
    samples (Newcombe: 1) or NaN values.
    """
    is_ratio, acols, bcols = _paired_columns(a, b, "paired_difference_interval")
    n = acols[0].shape[0]
    if n == 0 or any(np.isnan(c).any() for c in acols + bcols):
        return (float("nan"), float("nan"))
    if not is_ratio:
        x, y = acols[0], bcols[0]
        hit = binary_scale(x, y)
        if hit is not None:
            lo, hi = newcombe_paired_interval(x != 0, y != 0, alpha)
            return (lo * hit, hi * hit)
        return mean_t_interval(x - y, alpha)
    ia, ib = _ratio_influence(*acols), _ratio_influence(*bcols)
    if ia is None or ib is None or n < 2:
        return (float("nan"), float("nan"))
    diff = ia[0] - ib[0]
    z = ia[1] - ib[1]
    half = t_quantile(1.0 - alpha / 2.0, n - 1) * float(z.std(ddof=1)) / math.sqrt(n)
    return (diff - half, diff + half)


def largest_single_sample_effect(
    a: Sequence[float] | np.ndarray | Ratio,
    b: Sequence[float] | np.ndarray | Ratio,
) -> float:
    """The most one sample alone moves the metric between ``b`` and ``a``.

    For each sample, the change of ``stat(a)`` when that sample's current value is replaced
    by its baseline value; the largest absolute change (``|a_i - b_i| / n`` for a mean, so
    ``1/n`` for a 0/1 metric). In the unit of the values; NaN when undefined.
    """
    is_ratio, acols, bcols = _paired_columns(a, b, "largest_single_sample_effect")
    n = acols[0].shape[0]
    if n == 0 or any(np.isnan(c).any() for c in acols + bcols):
        return float("nan")
    if not is_ratio:
        return float(np.max(np.abs(acols[0] - bcols[0]))) / n
    sa = [float(c.sum()) for c in acols]
    base = float(_stat(sa, True, n))
    with np.errstate(divide="ignore", invalid="ignore"):
        moved = (sa[0] - acols[0] + bcols[0]) / (sa[1] - acols[1] + bcols[1])
    eff = np.abs(moved - base)
    eff = eff[np.isfinite(eff)]
    return float(eff.max()) if eff.size and math.isfinite(base) else float("nan")


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
    """95% interval of ``result.metrics[metric]`` from its stored per-sample values.

    Uses ``result.per_sample[metric]`` (mean metric) or ``result.per_sample_ratio[metric]``
    (ratio metric), in the metric's own unit (see :func:`per_sample_scale`); the interval is
    :func:`sample_ci`'s (Wilson for 0/1 values, Student t below :data:`SMALL_N` samples,
    percentile bootstrap above). Returns ``None`` when the result has no per-sample values
    for ``metric``, they are empty, they do not reproduce the reported value (so a wrong
    interval is never shown) or the interval is undefined (one continuous sample). The
    interval is clipped to the metric's natural bounds (``MetricValue.lower`` / ``upper``; a
    metric in percent to [0, 100]).
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
    zero_hit = 100.0 if mv.unit == "%" else 1.0  # misses only: a hit is 100 in percent
    lo, hi = (sample_ci(per_sample=vals, n_boot=n_boot, seed=seed, alpha=alpha,
                        zero_hit=zero_hit / scale) if den is None
              else sample_ci(ratio=(vals, den), n_boot=n_boot, seed=seed, alpha=alpha))
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return None
    from remotesam.bench.api import clip_interval, metric_bounds

    # a bounded metric stays in its range: a Student t interval at small n may overshoot it
    bounds = metric_bounds(mv.unit, getattr(mv, "lower", None), getattr(mv, "upper", None))
    return clip_interval(lo * scale, hi * scale, bounds)
