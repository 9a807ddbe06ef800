"""Regression gate: compare a run with a baseline file on matched samples, metric by metric.

Baselines (format, loading, writing) live in :mod:`remotesam.bench.gate.baseline`; the verdict and
its renderings (terminal table, Markdown step summary, JUnit XML, GitHub annotations) in
:mod:`remotesam.bench.gate.verdict`. This module holds the rule and :func:`compare`.

**Matched samples.** For each task/dataset the run's sample set (evaluated + failed ids) is
compared with the baseline's. Equal sets: the metrics are compared. Different sets (a
``--limit`` run against a full baseline, a changed dataset): every metric of that task/dataset
is **not comparable** (exit 2, the note gives baseline n, run n and how many are in common),
unless ``intersection=True`` (``--intersection``): then metrics with per-sample values are
re-scored on the common samples on both sides (the note shows the dropped counts) and metrics
without them are **unchecked**. Without ids on either side (a plugin that stores no
per-sample values), the sets are matched by their sizes. A sample evaluated by one side and
failed by the other is left out of the metric comparison (re-scored on the samples both
evaluated, when per-sample values allow it) and judged by ``n_failed`` instead.

**Failures** (row ``n_failed``): a sample the baseline evaluated that fails now is *newly
failed*; the row regresses when more samples are newly failed, or the failure count grew by
more, than its tolerance (0 by default). A format 1 baseline (written before sample sets and
failures were recorded) still gates; what it cannot check is named in the report.

**The rule per metric** (``worse = baseline - current`` when higher is better, ``current -
baseline`` when lower is better, e.g. MAE; values on the matched samples):

* ``allowed = max(abs, rel * |baseline|)`` from the metric's ``tolerance`` (else the file's
  ``default_tolerance``, else 0.5 for ``%`` metrics and 2% relative for others).
* ``hard = max(abs, rel * |baseline|)`` from ``hard_tolerance``, else ``hard_factor *
  allowed``; **at small n** it is raised to ``hard_min_samples`` (3) times the largest change
  one sample alone makes (``100/n`` points for a 0/1 metric in %: 16.7 at n = 6): a drop that
  fewer than three samples can cause is never failed without the test, so one or two flipped
  samples of a 6-sample smoke run are judged by the exact test, not by a tolerance finer than
  the metric's resolution. For a hit/miss metric in % with the defaults (0.5 points, factor
  3, 3 samples) at n <= 200 this reads: up to three samples lost (net) go to the test, which
  at that size never finds them significant (p = 0.125 for 3 of 3 discordant pairs), so they
  pass with a "not significant" note; four or more lost fail.
* ``worse <= allowed``: **pass** (**improved** when ``-worse > allowed``).
* ``worse > hard``: **regressed**, whatever the statistics say.
* ``allowed < worse <= hard``: with per-sample values on both sides (>= 2 matched samples) a
  one-sided paired test decides, exact at any n: the **exact McNemar** (sign) test for 0/1
  per-sample values (Acc@0.5, accuracy, Pr@X), a **permutation test** swapping baseline and
  current per sample for continuous values and ratio metrics (exact enumeration when at most
  20 samples changed, else ``n_perm`` seeded draws); see :mod:`remotesam.bench.records.stats`.
  **regressed** when ``p < alpha`` (0.05), else **pass** ("not significant"). Without
  per-sample values: **regressed**.
* The interval shown is the 95% interval of ``delta = current - baseline`` on the matched
  samples: Newcombe's hybrid score interval for 0/1 values, paired Student t for continuous
  values, the delta method with a t quantile for ratios (all right at n = 5..20).
* A NaN baseline value is **unchecked** (nothing to compare); a finite baseline that became
  NaN is **regressed**; a metric absent from the run is **missing**.

Exit codes (:attr:`GateReport.exit_code`): 0 every checked metric passed or improved; 1 at
least one regression; 2 a metric is missing or not comparable, or nothing could be checked
(e.g. every baseline value is NaN), or (raised as :class:`GateError`) the baseline file is
missing or malformed or the run cannot be matched to it.

Limits: re-scoring on an intersection takes per-sample values as independent of the other
samples; a metric whose per-sample values depend on the whole evaluated set (captioning's
CIDEr: IDF over the evaluated references) is then only approximately re-scored.

Context travels with the verdict: every task/dataset row says how many samples were
evaluated, failed and selected of the dataset's total, whether the run was a subset
(``--limit``) and whether the data were synthetic (the embedded procedural benchmark).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from remotesam.bench.gate.baseline import (
    BASELINE_SCHEMA,
    BASELINE_SCHEMA_V1,
    FAILED_TOLERANCE,
    N_FAILED,
    Baseline,
    BaselineMetric,
    GateError,
    GroupKey,
    SampleSet,
    Tolerance,
    checkpoint_display,
    checkpoints_of,
    group_label,
    portable_names,
    select_checkpoint,
    write_baseline,
)
from remotesam.bench.gate.verdict import (
    EXIT_ERROR,
    EXIT_PASS,
    EXIT_REGRESSION,
    GateReport,
    GateRow,
    GroupContext,
    fmt_value,
)
from remotesam.bench.records.results import RunDocument, TaskResult
from remotesam.bench.records.stats import (
    largest_single_sample_effect,
    paired_difference_interval,
    paired_test,
    per_sample_scale,
)

__all__ = [
    "BASELINE_SCHEMA",
    "EXIT_ERROR",
    "EXIT_PASS",
    "EXIT_REGRESSION",
    "N_FAILED",
    "Baseline",
    "BaselineMetric",
    "GateError",
    "GateReport",
    "GateRow",
    "GroupContext",
    "SampleSet",
    "Tolerance",
    "compare",
    "write_baseline",
]


# ------------------------------------------------------------------------- matching samples


@dataclass
class _Match:
    comparable: bool
    matched_by: str
    common: set[str] | None  # the common selected ids (None: unknown / everything)
    note: str = ""
    n_common: int | None = None
    failures_differ: bool = False  # the run failed other samples than the baseline did


def _failures_differ(b: SampleSet | None, recorded: bool, r: SampleSet) -> bool:
    if b is None:
        return bool(r.n_failed)
    if recorded and b.failed_ids is not None and r.failed_ids is not None:
        return set(b.failed_ids) != set(r.failed_ids)
    if recorded and b.n_failed is not None:
        return b.n_failed != r.n_failed
    return bool(r.n_failed)  # format 1: assumed none failed then


def _baseline_set(baseline: Baseline, key: GroupKey,
                  metrics: Sequence[BaselineMetric]) -> tuple[SampleSet | None, bool]:
    """The baseline's sample set for a group and whether it was recorded (format 2)."""
    if key in baseline.samples:
        return baseline.samples[key], True
    for m in metrics:  # format 1: the evaluated ids of any per-sample metric
        ps = m.per_sample or m.per_sample_ratio
        if ps is not None:
            ids = [str(x) for x in ps["sample_ids"]]
            return SampleSet(n_evaluated=len(ids), evaluated_ids=ids), False
    return None, False


def _match(b: SampleSet | None, recorded: bool, r: SampleSet) -> _Match:
    if b is None:
        return _Match(True, "not recorded", None,
                      "the baseline records no sample set for this task (format 1 without "
                      "per-sample values): sample sets not checked")
    b_sel = b.selected_ids if recorded else (
        set(b.evaluated_ids) if b.evaluated_ids is not None else None)
    r_sel = r.selected_ids
    if b_sel is not None and r_sel is not None:
        common = b_sel & r_sel
        if b_sel == r_sel:
            return _Match(True, "ids", common, n_common=len(common))
        return _Match(False, "ids", common, n_common=len(common),
                      note=f"sample sets differ: baseline n={len(b_sel)}, run n={len(r_sel)}, "
                           f"in common {len(common)}")
    bn = b.n_selected if recorded else b.n_evaluated
    rn = r.n_selected
    if bn is not None and rn is not None:
        if bn == rn:
            return _Match(True, "counts", None,
                          note="sample ids not recorded; sample sets matched by size only")
        return _Match(False, "counts", None,
                      note=f"sample sets differ: baseline n={bn}, run n={rn}; ids not recorded, "
                           "so the common samples are unknown")
    return _Match(True, "not recorded", None, "sample sets not recorded: not checked")


# ------------------------------------------------------------------------- per-metric rows


@dataclass
class _Pairs:
    a: Any  # current: (n,) array or (num, den)
    b: Any  # baseline
    n: int
    scale: float | None  # per-sample statistic -> metric unit (None: not reproducible)
    base_ids: int  # how many ids the baseline's per-sample values hold
    run_ids: int


def _stat_of(x: Any) -> float:
    if isinstance(x, tuple):
        d = float(np.sum(x[1]))
        return float(np.sum(x[0])) / d if d != 0 else math.nan
    return float(np.mean(x)) if len(x) else math.nan


def _pairs(m: BaselineMetric, res: TaskResult, keep: set[str] | None) -> _Pairs | None:
    """Per-sample values of baseline and run on their common evaluated ids (baseline order),
    restricted to ``keep`` when given; None without per-sample values on both sides."""
    mv = res.metrics[m.metric]
    cols: tuple[str, ...]
    if m.per_sample is not None and m.metric in res.per_sample:
        base, cur, cols = m.per_sample, res.per_sample[m.metric], ("values",)
    elif m.per_sample_ratio is not None and m.metric in res.per_sample_ratio:
        base, cur, cols = m.per_sample_ratio, res.per_sample_ratio[m.metric], ("num", "den")
    else:
        return None
    cur_ids = [str(x) for x in cur.get("sample_ids", [])]
    if any(len(cur.get(c, [])) != len(cur_ids) for c in cols):
        return None
    idx = {sid: i for i, sid in enumerate(cur_ids)}
    pairs = [(i, idx[str(sid)]) for i, sid in enumerate(base["sample_ids"])
             if str(sid) in idx and (keep is None or str(sid) in keep)]
    b_full = tuple(np.asarray(base[c], dtype=float) for c in cols)
    c_full = tuple(np.asarray(cur[c], dtype=float) for c in cols)

    def pick(full: tuple[np.ndarray, ...], which: np.ndarray) -> Any:
        sel = tuple(col[which] for col in full)
        return sel if len(sel) == 2 else sel[0]

    def scales(full: tuple[np.ndarray, ...], value: float) -> set[float]:
        stat = _stat_of(full if len(full) == 2 else full[0])
        if stat == 0 and value == 0:  # 0 matches every scale
            return {1.0, 100.0}
        s = per_sample_scale(stat, value)
        return set() if s is None else {s}

    both = scales(b_full, m.value) & scales(c_full, float(mv.value))
    scale = (next(iter(both)) if len(both) == 1
             else (100.0 if m.unit == "%" else 1.0) if both else None)
    if not pairs:
        return _Pairs(None, None, 0, scale, len(base["sample_ids"]), len(cur_ids))
    bi, ci = (np.array(x) for x in zip(*pairs))
    return _Pairs(pick(c_full, ci), pick(b_full, bi), len(pairs), scale,
                  len(base["sample_ids"]), len(cur_ids))


def _metric_row(baseline: Baseline, m: BaselineMetric, res: TaskResult, match: _Match,
                intersection: bool, alpha: float, n_perm: int, seed: int) -> GateRow:
    tol = baseline.tolerance_for(m)
    label, group = m.label, m.label
    if m.metric not in res.metrics:
        allowed = tol.allowed(m.value)
        return GateRow(label, m.metric, m.higher_is_better, m.unit, m.value, math.nan,
                       math.nan, math.nan, allowed, math.nan, math.nan, 0, "missing",
                       f"the result has no metric {m.metric!r} (it has {sorted(res.metrics)})",
                       group=group)
    mv = res.metrics[m.metric]
    base_val, cur_val = m.value, float(mv.value)
    note: list[str] = []
    if mv.higher_is_better != m.higher_is_better:
        note.append("direction differs from the run's; the baseline's is used")

    def row(status: str, extra: str, **kw: Any) -> GateRow:
        # values over different samples get no delta: it would read as a change
        delta = (cur_val - base_val if status not in ("not comparable", "unchecked")
                 else math.nan)
        worse = -delta if m.higher_is_better else delta
        fields: dict[str, Any] = dict(allowed=tol.allowed(base_val), hard=math.nan,
                                      p_value=math.nan, n_paired=0)
        fields.update(kw)
        return GateRow(label, m.metric, m.higher_is_better, m.unit, base_val, cur_val, delta,
                       worse, status=status, note="; ".join(note + ([extra] if extra else [])),
                       group=group, **fields)

    if not match.comparable and not intersection:
        return row("not comparable",
                   f"{match.note}; pass --intersection to score the common samples")
    keep = match.common if (not match.comparable and intersection) else None
    if not match.comparable and intersection and keep is None:
        return row("not comparable", match.note + " (cannot intersect without sample ids)")
    pairs = _pairs(m, res, keep)
    restricted = keep is not None
    differs = pairs is not None and (pairs.n != pairs.base_ids or pairs.n != pairs.run_ids)
    if restricted or differs:
        if pairs is not None and pairs.n and pairs.scale is not None:
            base_val = _stat_of(pairs.b) * pairs.scale
            cur_val = _stat_of(pairs.a) * pairs.scale
            dropped_b, dropped_r = pairs.base_ids - pairs.n, pairs.run_ids - pairs.n
            note.append(f"scored on the {pairs.n} samples evaluated in both (dropped "
                        f"{dropped_b} baseline-only, {dropped_r} run-only; reported: baseline "
                        f"{fmt_value(m.value, m.unit)}, run {fmt_value(float(mv.value), m.unit)})")
        elif restricted:
            why = ("no per-sample values to re-score the common samples" if pairs is None
                   else "its per-sample values do not reproduce the metric")
            return row("unchecked", f"{match.note}; {why}")
        else:
            note.append("reported values over different evaluated samples (failures differ; "
                        "see n_failed)")
    elif match.failures_differ and pairs is None:
        note.append("reported values over different evaluated samples (failures differ; see "
                    "n_failed)")
    if math.isnan(base_val):
        return row("unchecked", "baseline value is NaN (undefined): nothing to compare")
    allowed = tol.allowed(base_val)
    hard = (m.hard_tolerance.allowed(base_val) if m.hard_tolerance is not None
            else baseline.hard_factor * allowed)
    hard = max(hard, allowed)
    p, test, n_paired = math.nan, "", 0
    lo = hi = math.nan
    if pairs is not None and pairs.n >= 2:
        n_paired = pairs.n
        p, test = paired_test(pairs.a, pairs.b, higher_is_better=m.higher_is_better,
                              n_perm=n_perm, seed=seed)
        if pairs.scale is not None:
            lo, hi = (v * pairs.scale for v in paired_difference_interval(pairs.a, pairs.b))
            step = largest_single_sample_effect(pairs.a, pairs.b) * pairs.scale
            if math.isfinite(step) and baseline.hard_min_samples * step > hard:
                hard = baseline.hard_min_samples * step
                note.append(f"hard tolerance raised to {fmt_value(hard, m.unit)} "
                            f"({baseline.hard_min_samples:g} samples' worth at n={pairs.n})")
    kw = dict(allowed=allowed, hard=hard, p_value=p, n_paired=n_paired, ci_low=lo, ci_high=hi,
              test=test)
    delta = cur_val - base_val
    worse = -delta if m.higher_is_better else delta
    if math.isnan(cur_val):
        return row("regressed", "value became NaN (undefined)", **kw)
    eps = 1e-9 * max(1.0, abs(base_val))  # rounding of sums must not decide a boundary case
    if worse <= allowed + eps:
        return row("improved" if -worse > allowed + eps else "pass", "", **kw)
    if worse > hard + eps:
        return row("regressed", "beyond the hard tolerance", **kw)
    if not math.isnan(p):
        if p < alpha:
            return row("regressed", f"significant ({test}, n={n_paired})", **kw)
        return row("pass", f"beyond tolerance but not significant ({test}, p >= {alpha:g}, "
                           f"n={n_paired})", **kw)
    return row("regressed", "beyond tolerance (no per-sample values for a paired test)", **kw)


def _failed_row(baseline: Baseline, m: BaselineMetric | None, key: GroupKey,
                b: SampleSet | None, recorded: bool, r: SampleSet, match: _Match,
                intersection: bool) -> GateRow:
    """The ``n_failed`` row: newly failed samples and the failure count, on matched samples."""
    label = group_label(key)
    tol = (m.tolerance if m is not None and m.tolerance is not None else FAILED_TOLERANCE)
    base_count: float = math.nan
    if m is not None:
        base_count = m.value
    elif b is not None and recorded and b.n_failed is not None:
        base_count = float(b.n_failed)
    r_failed = set(r.failed_ids or [])
    cur_count = float(r.n_failed or 0)
    note: list[str] = []

    def row(status: str, base: float, cur: float, extra: str = "") -> GateRow:
        delta = cur - base
        return GateRow(label, N_FAILED, False, "samples", base, cur, delta, delta,
                       tol.allowed(base), math.nan, math.nan, 0, status,
                       "; ".join(note + ([extra] if extra else [])), group=label)

    if not match.comparable:
        if not intersection or match.common is None:
            return row("not comparable", base_count, cur_count, match.note)
        keep = match.common
        b_failed = set(b.failed_ids or []) & keep if b is not None else set()
        r_failed &= keep
        base_count, cur_count = float(len(b_failed)), float(len(r_failed))
        note.append(f"on the {len(keep)} samples selected by both")
    b_failed_ids = set(b.failed_ids) if (b is not None and recorded
                                          and b.failed_ids is not None) else None
    b_eval = set(b.evaluated_ids) if (b is not None and b.evaluated_ids is not None) else None
    if b_eval is not None:
        newly = r_failed & b_eval
    elif b_failed_ids is not None and match.comparable:
        newly = r_failed - b_failed_ids  # same selection: what did not fail then was evaluated
    else:
        newly = None
    if newly is None:
        if not r_failed and cur_count == 0:
            return row("pass", base_count, cur_count,
                       "no failed sample now; the baseline's failures are not recorded")
        return row("unchecked", base_count, cur_count,
                   "the baseline (format 1) records neither failed nor evaluated sample ids: "
                   f"{int(cur_count)} failure(s) now not checked")
    if math.isnan(base_count):
        base_count = float(len(b_failed_ids)) if b_failed_ids is not None else 0.0
        note.append("the baseline (format 1) records no failures; compared with the samples "
                    "it evaluated")
    allowed = tol.allowed(base_count)
    if newly:
        shown = sorted(newly)[:5]
        err = r.failure_errors.get(shown[0], "")
        note.append(f"{len(newly)} newly failed (evaluated in the baseline): "
                    + ", ".join(shown) + (" ..." if len(newly) > 5 else "")
                    + (f" (first error: {err[:160]})" if err else ""))
    worse = cur_count - base_count
    if len(newly) > allowed or worse > allowed:
        return row("regressed", base_count, cur_count)
    return row("improved" if worse < 0 and not newly else "pass", base_count, cur_count)


def _task_filter(tasks: Sequence[str] | None) -> Any:
    """``(task, dataset) -> bool`` from selections like ``det``, ``det.dior``, ``all``."""
    if not tasks or any(t in ("all", "*") for t in tasks):
        return lambda task, dataset: True
    specs = [t.split(".", 1) for t in tasks]
    return lambda task, dataset: any(
        s[0] == task and (len(s) == 1 or s[1] in ("*", dataset)) for s in specs)


def compare(
    run: RunDocument,
    baseline: Baseline,
    *,
    checkpoint: str | None = None,
    alpha: float | None = None,
    n_perm: int = 10000,
    seed: int = 0,
    baseline_path: str = "",
    intersection: bool = False,
    tasks: Sequence[str] | None = None,
    n_boot: int | None = None,
) -> GateReport:
    """Compare ``run`` with ``baseline`` on matched samples (the rule is in the module docstring).

    Args:
        run: the run document to judge.
        baseline: a loaded :class:`Baseline` (format 1 or 2).
        checkpoint: which checkpoint of the run to judge (name or sha256 prefix) when the run
            holds several and the baseline entries do not name one.
        alpha: significance level of the paired test (default: the baseline file's, 0.05).
        n_perm, seed: Monte Carlo permutation draws when more than 20 samples changed
            (deterministic for a fixed seed); ``n_boot`` is an old name of ``n_perm``.
        intersection: score different sample sets on their common samples instead of
            reporting them as not comparable.
        tasks: gate only these baseline entries (``det``, ``det.dior``); the others are named
            in a note. Default: every entry.

    Returns:
        A :class:`GateReport`; its ``exit_code`` is 0, 1 or 2.

    Raises:
        GateError: the run is ambiguous (several checkpoints, none chosen), has no checkpoint
            of that name, or ``tasks`` selects no baseline entry.
    """
    if n_boot is not None:
        n_perm = n_boot
    alpha = baseline.alpha if alpha is None else alpha
    if not 0.0 < alpha < 1.0:
        raise GateError(f"alpha must be in (0, 1), got {alpha}")
    if n_perm < 1:
        raise GateError(f"n_perm must be >= 1, got {n_perm}")
    results = select_checkpoint(run, checkpoint)
    names_needed = any(m.checkpoint is None for m in baseline.metrics)
    if names_needed and len(checkpoints_of(results)) > 1:
        names = checkpoint_display(results)
        raise GateError(f"run {run.run_id} holds {len(names)} checkpoints {names} and the "
                        "baseline does not say which to judge; pass --checkpoint NAME")
    index: dict[GroupKey, TaskResult] = {}
    short = portable_names(sorted({r.checkpoint.name for r in results}))
    for r in results:
        index[(None, r.task, r.dataset, r.split)] = r
        index[(r.checkpoint.name, r.task, r.dataset, r.split)] = r
        index.setdefault((short[r.checkpoint.name], r.task, r.dataset, r.split), r)
    wanted = _task_filter(tasks)
    notes: list[str] = []
    metrics = [m for m in baseline.metrics if wanted(m.task, m.dataset)]
    skipped = sorted({m.label for m in baseline.metrics if not wanted(m.task, m.dataset)})
    if not metrics:
        raise GateError(f"--tasks {','.join(tasks or [])} selects no entry of the baseline; it "
                        f"gates {sorted({m.label for m in baseline.metrics})}")
    if skipped:
        notes.append(f"{len(skipped)} task/dataset(s) of the baseline not selected by --tasks "
                     f"and not gated: {', '.join(skipped)}")
    if baseline.schema == BASELINE_SCHEMA_V1:
        notes.append("baseline format 1: sample sets are matched by per-sample ids where the "
                     "file has them, failures against the samples it evaluated; regenerate it "
                     "with `remotesam-bench baseline` to check both fully")
    groups: dict[GroupKey, list[BaselineMetric]] = {}
    for m in metrics:
        groups.setdefault(m.group, []).append(m)
    rows: list[GateRow] = []
    contexts: list[GroupContext] = []
    for key, ms in groups.items():
        res = index.get(key)
        failed_entry = next((m for m in ms if m.metric == N_FAILED), None)
        plain = [m for m in ms if m.metric != N_FAILED]
        if res is None:
            for m in ms:
                rows.append(GateRow(m.label, m.metric, m.higher_is_better, m.unit, m.value,
                                    math.nan, math.nan, math.nan,
                                    baseline.tolerance_for(m).allowed(m.value), math.nan,
                                    math.nan, 0, "missing",
                                    "no result for this task/dataset/split", group=m.label))
            continue
        rset = SampleSet.of_result(res)
        bset, recorded = _baseline_set(baseline, key, plain)
        match = _match(bset, recorded, rset)
        match.failures_differ = _failures_differ(bset, recorded, rset)
        contexts.append(GroupContext(group_label(key), rset, bset, match.matched_by,
                                     match.comparable, match.n_common,
                                     intersection and not match.comparable))
        if match.note and match.comparable:
            notes.append(f"{group_label(key)}: {match.note}")
        elif intersection and match.common is not None:
            notes.append(f"{group_label(key)}: {match.note}; scored on the "
                         f"{len(match.common)} common samples (intersection)")
        if recorded and bset is not None and bool(bset.synthetic) != bool(rset.synthetic):
            data = {True: "synthetic data", False: "real data"}
            notes.append(f"{group_label(key)}: the baseline was measured on "
                         f"{data[bool(bset.synthetic)]}, the run on {data[bool(rset.synthetic)]}")
        for m in plain:
            rows.append(_metric_row(baseline, m, res, match, intersection, alpha, n_perm, seed))
        rows.append(_failed_row(baseline, failed_entry, key, bset, recorded, rset, match,
                                intersection))
    gated = {(m.checkpoint, m.task, m.dataset, m.split, m.metric) for m in baseline.metrics}
    ungated = [f"{r.task}/{r.dataset}:{r.split} {name}" for r in results for name in r.metrics
               if wanted(r.task, r.dataset)
               and (None, r.task, r.dataset, r.split, name) not in gated
               and (r.checkpoint.name, r.task, r.dataset, r.split, name) not in gated
               and (short[r.checkpoint.name], r.task, r.dataset, r.split, name) not in gated]
    if ungated:
        notes.append(f"{len(ungated)} metric(s) of the run are not in the baseline and were not "
                     f"gated: {', '.join(ungated[:8])}{' ...' if len(ungated) > 8 else ''}")
    nan_rows = [r for r in rows if r.status == "unchecked" and "NaN" in r.note]
    if nan_rows and len(nan_rows) == sum(r.metric != N_FAILED for r in rows):
        notes.append("every baseline value is NaN: nothing to compare; regenerate the baseline "
                     "from a run whose metrics are defined")
    return GateReport(rows=rows, run_id=run.run_id, baseline_path=baseline_path, alpha=alpha,
                      notes=notes, groups=contexts)
