"""Scoring stored predictions into a :class:`~remotesam.bench.records.results.TaskResult`."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from remotesam.bench.api import clip_interval, metric_bounds
from remotesam.bench.api.contract import json_default, scores_problems
from remotesam.bench.errors import PluginError
from remotesam.bench.records.results import CheckpointRef, MetricValue, TaskResult
from remotesam.bench.run.jobs import Job

__all__ = ["score_job"]


def _bootstrap(per_sample: np.ndarray | None = None,
               ratio: tuple[np.ndarray, np.ndarray] | None = None,
               unit: str = "", bounds: tuple[float | None, float | None] | None = None,
               ) -> tuple[float, float] | None:
    """The 95% interval stored as ``ci95``, clipped to ``bounds`` (default: by ``unit``)."""
    try:
        from remotesam.bench.records.stats import sample_ci
    except ImportError:
        return None
    try:  # Wilson for hit/miss values, Student t at small n, else the bootstrap
        lo, hi = sample_ci(per_sample=per_sample, ratio=ratio, n_boot=1000, seed=0,
                           zero_hit=100.0 if unit == "%" else 1.0)
    except Exception:  # an undefined interval (empty, all-NaN) is simply not shown
        return None
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return None
    # a bounded metric (a percentage, an error >= 0) stays in its range: a Student t interval at
    # small n may overshoot it
    return clip_interval(lo, hi, metric_bounds(unit) if bounds is None else bounds)


def _bounds(m: Any) -> tuple[float | None, float | None]:
    """A metric spec's natural bounds (specs of plugins written before they existed: by unit)."""
    return metric_bounds(getattr(m, "unit", ""), getattr(m, "lower", None),
                         getattr(m, "upper", None))


def score_job(job: Job, ckpt: CheckpointRef, preds: Mapping[str, dict[str, Any]],
           failures: Mapping[str, str],
           missing_reason: str = "no prediction stored (not predicted)",
           settings_hash: str | None = None,
           transient: frozenset[str] | set[str] = frozenset()) -> TaskResult:
    """Score the stored predictions of ``job``'s samples; failures are the samples without one.

    Raises:
        PluginError: ``score`` raised or returned something off-contract.
    """
    plugin = job.plugin
    ok = [s for s in job.samples if s.sample_id in preds]
    failed = [{"sample_id": s.sample_id,
               "error": failures.get(s.sample_id, missing_reason),
               "kind": ("transient" if s.sample_id in transient else "permanent")
               if s.sample_id in failures else "missing"}
              for s in job.samples if s.sample_id not in preds]
    result = TaskResult(
        checkpoint=ckpt,
        task=job.task,
        task_version=int(plugin.version),
        dataset=job.dataset,
        split=job.split,
        settings_hash=settings_hash or job.settings_hash,
        n_total=job.n_total,
        n_evaluated=len(ok),
        n_failed=len(failed),
        failures=failed,
        synthetic=job.synthetic,
        subset=job.subset,
        sample_ids=[s.sample_id for s in ok],
        task_title=plugin.display_title(),
        dataset_title=plugin.dataset_title(job.dataset),
    )
    specs = {m.name: m for m in plugin.metrics}
    if not ok:
        for name, m in specs.items():
            result.metrics[name] = MetricValue(
                float("nan"), m.higher_is_better, m.primary, m.unit, m.official
            )
        return result
    try:
        scores = plugin.score(ok, [preds[s.sample_id] for s in ok])
    except Exception as e:
        raise PluginError(
            f"{job.label}: {type(plugin).__name__}.score raised {type(e).__name__}: {e}"
        ) from e
    problems = scores_problems(plugin, [s.sample_id for s in ok], scores)
    if problems:
        raise PluginError(
            f"{job.label}: {type(plugin).__name__}.score broke the contract: " + "; ".join(problems)
        )
    ids = list(scores.sample_ids) or [s.sample_id for s in ok]
    for name, m in specs.items():
        value = float(scores.metrics[name])
        ci = None
        if name in scores.per_sample:  # shapes checked by scores_problems
            ci = _bootstrap(
                per_sample=np.asarray(scores.per_sample[name], dtype=np.float64),
                unit=m.unit,
                bounds=_bounds(m),
            )
        elif name in scores.per_sample_ratio:
            num, den = (np.asarray(a, dtype=np.float64) for a in scores.per_sample_ratio[name])
            ci = _bootstrap(ratio=(num, den), unit=m.unit, bounds=_bounds(m))
        official = m.official and name not in scores.deviations
        lower, upper = _bounds(m)
        result.metrics[name] = MetricValue(
            value, m.higher_is_better, m.primary, m.unit, official, ci, lower, upper
        )
    for name, arr in scores.per_sample.items():
        vals = np.asarray(arr, dtype=np.float64).reshape(-1)
        result.per_sample[name] = {"sample_ids": ids, "values": vals.tolist()}
    for name, (num, den) in scores.per_sample_ratio.items():
        result.per_sample_ratio[name] = {
            "sample_ids": ids,
            "num": np.asarray(num, dtype=np.float64).reshape(-1).tolist(),
            "den": np.asarray(den, dtype=np.float64).reshape(-1).tolist(),
        }
    tables = dict(scores.tables)
    if scores.deviations:
        notes = dict(tables.get("notes") or {})
        for name, why in scores.deviations.items():
            notes.setdefault(name, why)
        tables["notes"] = notes
    result.tables = json.loads(json.dumps(tables, default=json_default))
    return result
