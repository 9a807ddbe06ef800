"""Regression gate: compare a run with a baseline file on matched samples, metric by metric.

Baseline file (JSON, ``schema = "remotesam-bench/baseline/2"``), written by
:func:`write_baseline` (``remotesam-bench baseline``), meant to be committed and hand-edited::

    {"schema": ..., "created": ISO-8601, "source_run": run_id,
     "checkpoint": {"name", "sha256"} | null,          # informational
     "default_tolerance": {"abs": float} | {"rel": float} | null,
     "hard_factor": 3.0, "hard_min_samples": 3, "alpha": 0.05,
     "samples": [                                      # one per task/dataset/split (format 2)
       {"task", "dataset", "split", "checkpoint": name | absent,
        "n_total": int, "n_evaluated": int, "n_failed": int,
        "evaluated_ids": [...] | null,                 # null: the run did not record them
        "failed_ids": [...], "synthetic": bool}, ...],
     "metrics": [
       {"task", "dataset", "split", "metric",
        "checkpoint": name | absent,                    # only when the run had several
        "value": float | "nan", "higher_is_better": bool, "unit": str,
        "tolerance": {"abs": a, "rel": r},              # either or both; optional
        "hard_tolerance": {"abs": ..., "rel": ...},     # optional
        "per_sample": {"sample_ids": [...], "values": [...]},             # optional
        "per_sample_ratio": {"sample_ids": [...], "num": [...], "den": [...]}  # optional
       }, ...]}

Every task/dataset also has a metric ``n_failed`` (samples that failed; lower is better; unit
``samples``; tolerance ``{"abs": 0}``: one newly failed sample is a regression). Format 1 files
(no ``samples``, no ``n_failed``) still load and gate: the sample set is then taken from the
per-sample ids where the file has them, and every check that needs what format 1 lacks is
named in the report ("sample set not recorded", "failures not recorded").

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
more, than its tolerance (0 by default).

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
  20 samples changed, else ``n_perm`` seeded draws); see :mod:`remotesam.bench.stats`.
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

import io
import json
import math
import os
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from remotesam.bench.results import RunDocument, TaskResult
from remotesam.bench.stats import (
    largest_single_sample_effect,
    paired_difference_interval,
    paired_test,
    per_sample_scale,
)

__all__ = [
    "BASELINE_SCHEMA",
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

BASELINE_SCHEMA = "remotesam-bench/baseline/2"
BASELINE_SCHEMA_V1 = "remotesam-bench/baseline/1"
_READABLE_SCHEMAS = (BASELINE_SCHEMA_V1, BASELINE_SCHEMA)
#: The gated failure count of a task/dataset (a row beside its metrics).
N_FAILED = "n_failed"
EXIT_PASS, EXIT_REGRESSION, EXIT_ERROR = 0, 1, 2

_CHECKED = ("pass", "improved", "regressed")
_STATUSES = ("regressed", "missing", "not comparable", "unchecked", "improved", "pass")


class GateError(Exception):
    """The gate cannot run: baseline file missing or malformed, run ambiguous. Exit code 2."""


@dataclass(frozen=True)
class Tolerance:
    """Allowed worsening: ``max(abs, rel * |baseline|)`` (a missing part counts as 0)."""

    abs: float | None = None
    rel: float | None = None

    def allowed(self, baseline: float) -> float:
        a = self.abs or 0.0
        r = (self.rel or 0.0) * abs(baseline) if math.isfinite(baseline) else 0.0
        return max(a, r)

    def to_dict(self) -> dict[str, float]:
        return {k: v for k, v in (("abs", self.abs), ("rel", self.rel)) if v is not None}

    @classmethod
    def from_dict(cls, d: Any, where: str) -> Tolerance:
        if not isinstance(d, dict) or not d or set(d) - {"abs", "rel"}:
            raise GateError(f"{where}: expected an object with 'abs' and/or 'rel' (numbers >= 0),"
                            f" e.g. {{\"abs\": 0.5}}; got {d!r}")
        for k, v in d.items():
            if v is None:
                continue
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not v >= 0:
                raise GateError(f"{where}.{k}: expected a number >= 0, got {v!r}")
        if all(v is None for v in d.values()):
            raise GateError(f"{where}: give 'abs' and/or 'rel' as a number >= 0, got {d!r}")
        return cls(abs=_opt_float(d.get("abs")), rel=_opt_float(d.get("rel")))


def _opt_float(v: Any) -> float | None:
    return None if v is None else float(v)


def _default_tolerance(unit: str) -> Tolerance:
    return Tolerance(abs=0.5) if unit == "%" else Tolerance(rel=0.02)


_FAILED_TOLERANCE = Tolerance(abs=0.0)

GroupKey = tuple[str | None, str, str, str]  # (checkpoint name | None, task, dataset, split)


def _group_label(key: GroupKey) -> str:
    ck, task, dataset, split = key
    ds = dataset if split == "test" else f"{dataset}:{split}"
    return f"[{ck}] {task}/{ds}" if ck else f"{task}/{ds}"


@dataclass
class BaselineMetric:
    """One gated metric (see the module docstring for the JSON form)."""

    task: str
    dataset: str
    split: str
    metric: str
    value: float
    higher_is_better: bool = True
    unit: str = "%"
    checkpoint: str | None = None
    tolerance: Tolerance | None = None
    hard_tolerance: Tolerance | None = None
    per_sample: dict[str, list[Any]] | None = None
    per_sample_ratio: dict[str, list[Any]] | None = None

    @property
    def group(self) -> GroupKey:
        return (self.checkpoint, self.task, self.dataset, self.split)

    @property
    def label(self) -> str:
        return _group_label(self.group)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"task": self.task, "dataset": self.dataset, "split": self.split,
                             "metric": self.metric}
        if self.checkpoint is not None:
            d["checkpoint"] = self.checkpoint
        d.update(value=self.value if math.isfinite(self.value) else str(self.value),
                 higher_is_better=self.higher_is_better, unit=self.unit)
        if self.tolerance is not None:
            d["tolerance"] = self.tolerance.to_dict()
        if self.hard_tolerance is not None:
            d["hard_tolerance"] = self.hard_tolerance.to_dict()
        if self.per_sample is not None:
            d["per_sample"] = self.per_sample
        if self.per_sample_ratio is not None:
            d["per_sample_ratio"] = self.per_sample_ratio
        return d


@dataclass
class SampleSet:
    """The samples behind one task/dataset result: which were evaluated, which failed.

    ``None`` in a field means "not recorded" (a format 1 baseline, or a plugin that stores no
    per-sample values, whose evaluated ids the run document does not list).
    """

    n_total: int | None = None
    n_evaluated: int | None = None
    n_failed: int | None = None
    evaluated_ids: list[str] | None = None
    failed_ids: list[str] | None = None
    synthetic: bool | None = None
    failure_errors: dict[str, str] = field(default_factory=dict)

    @property
    def n_selected(self) -> int | None:
        """Samples the run tried (evaluated + failed); None when unknown."""
        if self.n_evaluated is None or self.n_failed is None:
            return None
        return self.n_evaluated + self.n_failed

    @property
    def selected_ids(self) -> set[str] | None:
        if self.evaluated_ids is None or self.failed_ids is None:
            return None
        return set(self.evaluated_ids) | set(self.failed_ids)

    @property
    def subset(self) -> bool | None:
        """True when fewer samples were selected than the dataset holds (``--limit``)."""
        if self.n_selected is None or not self.n_total:
            return None
        return self.n_selected < self.n_total

    @classmethod
    def of_result(cls, r: TaskResult) -> SampleSet:
        """The sample set of a run's result (evaluated ids from its per-sample values)."""
        failed = [str(f.get("sample_id")) for f in r.failures if isinstance(f, dict)]
        evaluated = _evaluated_ids(r)
        return cls(n_total=int(r.n_total), n_evaluated=int(r.n_evaluated),
                   n_failed=int(r.n_failed), evaluated_ids=evaluated,
                   failed_ids=failed if len(failed) == int(r.n_failed) else None,
                   synthetic=bool(getattr(r, "synthetic", False)),
                   failure_errors={str(f.get("sample_id")): _failure_text(f)
                                   for f in r.failures if isinstance(f, dict)})

    def to_dict(self, key: GroupKey) -> dict[str, Any]:
        ck, task, dataset, split = key
        d: dict[str, Any] = {"task": task, "dataset": dataset, "split": split}
        if ck is not None:
            d["checkpoint"] = ck
        d.update(n_total=self.n_total, n_evaluated=self.n_evaluated, n_failed=self.n_failed,
                 evaluated_ids=self.evaluated_ids, failed_ids=self.failed_ids,
                 synthetic=bool(self.synthetic))
        return d

    @classmethod
    def from_dict(cls, d: Any, where: str) -> tuple[GroupKey, SampleSet]:
        if not isinstance(d, dict):
            raise GateError(f"{where}: expected an object, got {type(d).__name__}")
        key: GroupKey = (d.get("checkpoint"), _str(d, "task", where), _str(d, "dataset", where),
                         _str(d, "split", where))
        counts = {}
        for k in ("n_total", "n_evaluated", "n_failed"):
            v = d.get(k)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 0):
                raise GateError(f"{where}.{k}: expected an integer >= 0 or null, got {v!r}")
            counts[k] = v
        ids = {}
        for k in ("evaluated_ids", "failed_ids"):
            v = d.get(k)
            if v is not None and (not isinstance(v, list)
                                  or not all(isinstance(x, str) for x in v)):
                raise GateError(f"{where}.{k}: expected a list of sample ids (strings) or null")
            ids[k] = v
        if ids["evaluated_ids"] is not None and counts["n_evaluated"] is not None \
                and len(ids["evaluated_ids"]) != counts["n_evaluated"]:
            raise GateError(f"{where}: evaluated_ids holds {len(ids['evaluated_ids'])} ids but "
                            f"n_evaluated is {counts['n_evaluated']}")
        if ids["failed_ids"] is not None and counts["n_failed"] is not None \
                and len(ids["failed_ids"]) != counts["n_failed"]:
            raise GateError(f"{where}: failed_ids holds {len(ids['failed_ids'])} ids but "
                            f"n_failed is {counts['n_failed']}")
        syn = d.get("synthetic")
        if syn is not None and not isinstance(syn, bool):
            raise GateError(f"{where}.synthetic: expected true or false, got {syn!r}")
        return key, cls(n_total=counts["n_total"], n_evaluated=counts["n_evaluated"],
                        n_failed=counts["n_failed"], evaluated_ids=ids["evaluated_ids"],
                        failed_ids=ids["failed_ids"], synthetic=syn)


def _failure_text(f: dict[str, Any]) -> str:
    """A failure entry as text; a transient one (retried by the next run) says so."""
    text = str(f.get("error", ""))
    return f"transient, retried by the next run: {text}" if f.get("kind") == "transient" \
        else text


def _evaluated_ids(r: TaskResult) -> list[str] | None:
    """The ids of the samples ``r`` evaluated, when the result records them.

    A ``sample_ids`` attribute of the result wins; otherwise the ids of its per-sample values
    (the runner stores every per-sample metric on the same evaluated samples). None when the
    result stores neither, or the ids disagree with ``n_evaluated``.
    """
    cands: list[Any] = [getattr(r, "sample_ids", None)]
    cands += [e.get("sample_ids") for e in list(r.per_sample.values())
              + list(r.per_sample_ratio.values()) if isinstance(e, dict)]
    for ids in cands:
        if isinstance(ids, list) and len(ids) == int(r.n_evaluated):
            return [str(x) for x in ids]
    return None


@dataclass
class Baseline:
    """A baseline file in memory. Load with :meth:`load`, write with :meth:`save`."""

    metrics: list[BaselineMetric]
    default_tolerance: Tolerance | None = None
    hard_factor: float = 3.0
    alpha: float = 0.05
    source_run: str = ""
    created: str = ""
    checkpoint: dict[str, str] | None = None
    samples: dict[GroupKey, SampleSet] = field(default_factory=dict)
    hard_min_samples: float = 3.0
    schema: str = BASELINE_SCHEMA

    def tolerance_for(self, m: BaselineMetric) -> Tolerance:
        if m.metric == N_FAILED and m.tolerance is None:
            return _FAILED_TOLERANCE
        return m.tolerance or self.default_tolerance or _default_tolerance(m.unit)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": BASELINE_SCHEMA, "created": self.created, "source_run": self.source_run,
            "checkpoint": self.checkpoint,
            "default_tolerance": (self.default_tolerance.to_dict()
                                  if self.default_tolerance else None),
            "hard_factor": self.hard_factor, "hard_min_samples": self.hard_min_samples,
            "alpha": self.alpha,
            "samples": [s.to_dict(k) for k, s in self.samples.items()],
            "metrics": [m.to_dict() for m in self.metrics],
        }

    def save(self, path: str | Path) -> Path:
        """Write atomically (temp file + rename). Raises :class:`GateError` if unwritable."""
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps(self.to_dict(), indent=1) + "\n", encoding="utf-8")
            tmp.replace(path)
        except OSError as e:
            raise GateError(f"cannot write baseline {path}: {e.strerror}") from e
        return path

    @classmethod
    def load(cls, path: str | Path) -> Baseline:
        """Read and validate a baseline file (format 1 or 2).

        Raises:
            GateError: missing or unreadable file, invalid JSON, unknown schema, or a field
                with the wrong type (the message names the file, the entry and the field).
        """
        path = Path(path)
        if not path.is_file():
            raise GateError(f"baseline file {path} does not exist; create one with "
                            "`remotesam-bench baseline --out " + str(path) + "`")
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except OSError as e:
            raise GateError(f"cannot read baseline {path}: {e.strerror}") from e
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise GateError(f"{path}: not valid JSON ({e}); expected a remotesam-bench "
                            "baseline file") from e
        return cls.from_dict(doc, str(path))

    @classmethod
    def from_dict(cls, doc: Any, source: str = "<baseline>") -> Baseline:
        if not isinstance(doc, dict) or doc.get("schema") not in _READABLE_SCHEMAS:
            found = doc.get("schema") if isinstance(doc, dict) else type(doc).__name__
            newer = isinstance(found, str) and found.startswith("remotesam-bench/baseline/")
            raise GateError(f"{source}: field 'schema' is {found!r}, expected one of "
                            f"{list(_READABLE_SCHEMAS)}"
                            + ("; it was written by a newer remotesam-bench: upgrade" if newer
                               else ""))
        raw = doc.get("metrics")
        if not isinstance(raw, list) or not raw:
            raise GateError(f"{source}: field 'metrics' must be a non-empty list")
        metrics = [_metric_from_dict(m, f"{source}: metrics[{i}]") for i, m in enumerate(raw)]
        seen: dict[tuple[Any, ...], int] = {}
        for i, m in enumerate(metrics):
            k = (m.checkpoint, m.task, m.dataset, m.split, m.metric)
            if k in seen:
                raise GateError(f"{source}: metrics[{i}] repeats metrics[{seen[k]}] "
                                f"({m.label} {m.metric}); keep one")
            seen[k] = i
        raw_samples = doc.get("samples", [])
        if not isinstance(raw_samples, list):
            raise GateError(f"{source}: field 'samples' must be a list")
        samples: dict[GroupKey, SampleSet] = {}
        for i, s in enumerate(raw_samples):
            key, ss = SampleSet.from_dict(s, f"{source}: samples[{i}]")
            if key in samples:
                raise GateError(f"{source}: samples[{i}] repeats {_group_label(key)}; keep one")
            samples[key] = ss
        dt = doc.get("default_tolerance")
        hard_factor = _number(doc.get("hard_factor", 3.0), f"{source}: hard_factor")
        hard_min = _number(doc.get("hard_min_samples", 3.0), f"{source}: hard_min_samples")
        alpha = _number(doc.get("alpha", 0.05), f"{source}: alpha")
        if hard_factor < 1.0:
            raise GateError(f"{source}: hard_factor must be >= 1, got {hard_factor}")
        if not hard_min >= 0:
            raise GateError(f"{source}: hard_min_samples must be >= 0, got {hard_min}")
        if not 0.0 < alpha < 1.0:
            raise GateError(f"{source}: alpha must be in (0, 1), got {alpha}")
        ck = doc.get("checkpoint")
        return cls(
            metrics=metrics,
            default_tolerance=None if dt is None else Tolerance.from_dict(
                dt, f"{source}: default_tolerance"),
            hard_factor=hard_factor, alpha=alpha,
            source_run=str(doc.get("source_run", "")), created=str(doc.get("created", "")),
            checkpoint=ck if isinstance(ck, dict) else None, samples=samples,
            hard_min_samples=hard_min, schema=str(doc["schema"]),
        )


def _number(v: Any, where: str) -> float:
    if isinstance(v, str) and v.lower() in ("nan", "inf", "-inf"):
        return float(v)
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise GateError(f"{where}: expected a number, got {v!r}")
    return float(v)


def _str(d: dict[str, Any], key: str, where: str) -> str:
    if key not in d:
        raise GateError(f"{where}: lacks field {key!r}")
    if not isinstance(d[key], str) or not d[key]:
        raise GateError(f"{where}.{key}: expected a non-empty string, got {d[key]!r}")
    return d[key]


def _per_sample(d: Any, keys: tuple[str, ...], where: str) -> dict[str, list[Any]] | None:
    if d is None:
        return None
    if not isinstance(d, dict) or any(not isinstance(d.get(k), list) for k in keys):
        raise GateError(f"{where}: expected an object with lists {list(keys)}")
    n = len(d["sample_ids"])
    if any(len(d[k]) != n for k in keys):
        raise GateError(f"{where}: lists {list(keys)} must have the same length, got "
                        f"{[len(d[k]) for k in keys]}")
    return {k: list(d[k]) for k in keys}


def _metric_from_dict(d: Any, where: str) -> BaselineMetric:
    if not isinstance(d, dict):
        raise GateError(f"{where}: expected an object, got {type(d).__name__}")
    if "value" not in d:
        raise GateError(f"{where}: lacks field 'value'")
    hib = d.get("higher_is_better", True)
    if not isinstance(hib, bool):
        raise GateError(f"{where}.higher_is_better: expected true or false, got {hib!r}")
    ck = d.get("checkpoint")
    if ck is not None and not isinstance(ck, str):
        raise GateError(f"{where}.checkpoint: expected a checkpoint name, got {ck!r}")
    return BaselineMetric(
        task=_str(d, "task", where), dataset=_str(d, "dataset", where),
        split=_str(d, "split", where), metric=_str(d, "metric", where),
        value=_number(d["value"], f"{where}.value"), higher_is_better=hib,
        unit=str(d.get("unit", "%")), checkpoint=ck,
        tolerance=(Tolerance.from_dict(d["tolerance"], f"{where}.tolerance")
                   if d.get("tolerance") is not None else None),
        hard_tolerance=(Tolerance.from_dict(d["hard_tolerance"], f"{where}.hard_tolerance")
                        if d.get("hard_tolerance") is not None else None),
        per_sample=_per_sample(d.get("per_sample"), ("sample_ids", "values"),
                               f"{where}.per_sample"),
        per_sample_ratio=_per_sample(d.get("per_sample_ratio"), ("sample_ids", "num", "den"),
                                     f"{where}.per_sample_ratio"),
    )


# --------------------------------------------------------------------------------------------
# writing a baseline


def _checkpoints(results: list[TaskResult]) -> dict[str, TaskResult]:
    out: dict[str, TaskResult] = {}
    for r in results:
        out.setdefault(r.checkpoint.sha256 or r.checkpoint.name, r)
    return out


def _select_checkpoint(run: RunDocument, checkpoint: str | None) -> list[TaskResult]:
    """Results of one checkpoint, or all when ``checkpoint`` is None.

    ``checkpoint`` matches a checkpoint's name (its path as given to ``run``) exactly, else the
    end of that path (``good.pth``, ``runs/a/good.pth``), else a sha256 prefix of >= 6 hex digits.

    Raises:
        GateError: nothing matches, or several different checkpoints do.
    """
    if checkpoint is None:
        return list(run.results)
    spec = checkpoint.replace("\\", "/")
    tests = [
        lambda r: r.checkpoint.name == checkpoint,
        lambda r: r.checkpoint.name.replace("\\", "/").endswith("/" + spec.lstrip("/")),
        lambda r: len(spec) >= 6 and r.checkpoint.sha256.startswith(spec.lower()),
    ]
    for test in tests:
        chosen = [r for r in run.results if test(r)]
        shas = {r.checkpoint.sha256 for r in chosen}
        if len(shas) > 1:
            raise GateError(f"--checkpoint {checkpoint!r} matches {len(shas)} checkpoints of run "
                            f"{run.run_id}: {sorted({r.checkpoint.name for r in chosen})}; "
                            "give more of the path or a sha256 prefix")
        if chosen:
            return chosen
    names = sorted({f"{r.checkpoint.name} ({r.checkpoint.sha256[:8]})" for r in run.results})
    raise GateError(f"run {run.run_id} has no checkpoint {checkpoint!r}; it has: {names}")


def _portable_name(name: str) -> str:
    """A checkpoint name fit for a committed file: an absolute path keeps its file name."""
    return Path(name).name if os.path.isabs(name) else name


def write_baseline(
    run: RunDocument,
    path: str | Path,
    *,
    default_abs_tol: float | None = None,
    default_rel_tol: float | None = None,
    hard_factor: float = 3.0,
    alpha: float = 0.05,
    checkpoint: str | None = None,
    tasks: list[str] | None = None,
    include_per_sample: bool = True,
    failed_tol: int = 0,
    hard_min_samples: float = 3.0,
) -> Baseline:
    """Write a baseline file (format 2) from ``run`` and return it.

    Every metric of every result becomes an entry with an explicit ``tolerance``:
    ``{"abs": default_abs_tol}`` and/or ``{"rel": default_rel_tol}`` when given, else 0.5
    (points) for ``%`` metrics and 2% relative for other units. Each task/dataset also gets
    an ``n_failed`` entry (tolerance ``{"abs": failed_tol}``, 0 by default) and a ``samples``
    record (evaluated and failed sample ids, counts, synthetic flag) so that the gate can match
    sample sets. Per-sample values are copied (for the paired tests) unless
    ``include_per_sample`` is False. When the run (or the chosen ``checkpoint``) holds several
    checkpoints, each entry records its checkpoint name.

    Raises:
        GateError: the run has no results (for ``checkpoint``/``tasks``), bad tolerances, or
            the file cannot be written.
    """
    for name, v in (("default_abs_tol", default_abs_tol), ("default_rel_tol", default_rel_tol)):
        if v is not None and not v >= 0:
            raise GateError(f"{name} must be >= 0, got {v}")
    if not failed_tol >= 0:
        raise GateError(f"failed_tol must be >= 0, got {failed_tol}")
    if hard_factor < 1.0:
        raise GateError(f"hard_factor must be >= 1, got {hard_factor}")
    results = _select_checkpoint(run, checkpoint)
    if tasks:
        results = [r for r in results if r.task in set(tasks)]
    if not results:
        raise GateError(f"run {run.run_id} has no results to write a baseline from"
                        + (f" for tasks {tasks}" if tasks else ""))
    ckpts = _checkpoints(results)
    several = len(ckpts) > 1
    names = [r.checkpoint.name for r in ckpts.values()]
    if several and len(set(names)) != len(names):
        raise GateError(f"run {run.run_id} holds several checkpoints with the same name "
                        f"{sorted(names)}; pass --checkpoint to gate one of them")
    user_tol = (Tolerance(abs=default_abs_tol, rel=default_rel_tol)
                if default_abs_tol is not None or default_rel_tol is not None else None)
    entries: list[BaselineMetric] = []
    samples: dict[GroupKey, SampleSet] = {}
    for r in results:
        ck = r.checkpoint.name if several else None
        for name, mv in r.metrics.items():
            if name == N_FAILED:
                continue  # the harness's own row below
            entries.append(BaselineMetric(
                task=r.task, dataset=r.dataset, split=r.split, metric=name,
                value=float(mv.value), higher_is_better=mv.higher_is_better, unit=mv.unit,
                checkpoint=ck, tolerance=user_tol or _default_tolerance(mv.unit),
                per_sample=(dict(r.per_sample[name])
                            if include_per_sample and name in r.per_sample else None),
                per_sample_ratio=(dict(r.per_sample_ratio[name])
                                  if include_per_sample and name in r.per_sample_ratio else None),
            ))
        entries.append(BaselineMetric(
            task=r.task, dataset=r.dataset, split=r.split, metric=N_FAILED,
            value=float(r.n_failed), higher_is_better=False, unit="samples", checkpoint=ck,
            tolerance=Tolerance(abs=float(failed_tol))))
        ss = SampleSet.of_result(r)
        ss.failure_errors = {}
        samples[(ck, r.task, r.dataset, r.split)] = ss
    one = next(iter(ckpts.values())).checkpoint
    base = Baseline(
        metrics=entries, default_tolerance=user_tol, hard_factor=hard_factor, alpha=alpha,
        source_run=run.run_id, created=datetime.now(UTC).isoformat(timespec="seconds"),
        checkpoint=None if several else {"name": _portable_name(one.name),
                                         "sha256": one.sha256},
        samples=samples, hard_min_samples=hard_min_samples,
    )
    Baseline.from_dict(base.to_dict(), "<new baseline>")  # same validation as loading
    base.save(path)
    return base


# --------------------------------------------------------------------------------------------
# comparing


@dataclass
class GateRow:
    """The verdict on one metric of one task/dataset.

    ``delta = current - baseline``; ``worse`` is the worsening (positive = worse,
    direction-aware); ``ci_low``/``ci_high`` the 95% interval of ``delta`` on the matched
    samples and ``p_value`` the paired test's p (NaN when none ran); ``n_paired`` the matched
    samples the values and the test are computed on (0 when reported values were compared).
    """

    label: str
    metric: str
    higher_is_better: bool
    unit: str
    baseline: float
    current: float
    delta: float
    worse: float
    allowed: float
    hard: float
    p_value: float
    n_paired: int
    status: str  # "pass" | "improved" | "regressed" | "missing" | "not comparable" | "unchecked"
    note: str = ""
    ci_low: float = math.nan
    ci_high: float = math.nan
    test: str = ""
    group: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {k: (v if not isinstance(v, float) or math.isfinite(v) else str(v))
                for k, v in self.__dict__.items()}

    @property
    def interval(self) -> str:
        if not (math.isfinite(self.ci_low) and math.isfinite(self.ci_high)):
            return ""
        return f"[{_f(self.ci_low, self.unit, True)}, {_f(self.ci_high, self.unit, True)}]"

    @property
    def p_text(self) -> str:
        return "" if math.isnan(self.p_value) else f"{self.p_value:.3f}"


@dataclass
class GroupContext:
    """What a task/dataset's numbers rest on: samples, subset, synthetic data, failures."""

    label: str
    run: SampleSet
    baseline: SampleSet | None
    matched_by: str  # "ids" | "counts" | "not recorded"
    comparable: bool
    n_common: int | None = None
    intersection: bool = False

    @property
    def flags(self) -> list[str]:
        out = []
        if self.run.subset:
            out.append("subset")
        if self.run.synthetic:
            out.append("synthetic")
        if self.run.n_failed:
            out.append(f"{self.run.n_failed} failed")
        return out

    @property
    def samples_text(self) -> str:
        r = self.run
        total = r.n_total if r.n_total else "?"
        return f"{r.n_evaluated}/{total}" + (f" +{r.n_failed} failed" if r.n_failed else "")

    def describe(self) -> str:
        r, b = self.run, self.baseline
        text = f"{self.label}: run evaluated {r.n_evaluated}"
        if r.n_failed:
            text += f", {r.n_failed} failed"
        text += f" of {r.n_total} samples" if r.n_total else " samples"
        flags = [f for f in self.flags if not f.endswith("failed")]
        if flags:
            text += f" ({', '.join(flags)})"
        if b is not None and b.n_evaluated is not None:
            text += f"; baseline evaluated {b.n_evaluated}"
            if b.n_failed:
                text += f", {b.n_failed} failed"
            if b.n_total:
                text += f" of {b.n_total}"
        text += f"; sample sets matched by {self.matched_by}"
        if self.matched_by != "not recorded":
            text += ": same" if self.comparable and not self.intersection else (
                f": {self.n_common} in common" if self.n_common is not None else ": differ")
        return text

    def to_dict(self) -> dict[str, Any]:
        r, b = self.run, self.baseline
        return {"label": self.label, "n_total": r.n_total, "n_evaluated": r.n_evaluated,
                "n_failed": r.n_failed, "subset": r.subset, "synthetic": bool(r.synthetic),
                "baseline_n_evaluated": None if b is None else b.n_evaluated,
                "baseline_n_failed": None if b is None else b.n_failed,
                "matched_by": self.matched_by, "comparable": self.comparable,
                "n_common": self.n_common, "intersection": self.intersection,
                "description": self.describe()}


@dataclass
class GateReport:
    """All rows of a comparison plus the decision."""

    rows: list[GateRow]
    run_id: str
    baseline_path: str = ""
    alpha: float = 0.05
    notes: list[str] = field(default_factory=list)
    groups: list[GroupContext] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(r.status == status for r in self.rows)

    @property
    def n_checked(self) -> int:
        """Metric rows (not ``n_failed``) that were actually compared."""
        return sum(r.status in _CHECKED and r.metric != N_FAILED for r in self.rows)

    @property
    def exit_code(self) -> int:
        """0 pass, 1 regression, 2 missing / not comparable / nothing checked (takes precedence)."""
        if self.count("missing") or self.count("not comparable") or not self.n_checked:
            return EXIT_ERROR
        if self.count("regressed"):
            return EXIT_REGRESSION
        return EXIT_PASS

    @property
    def passed(self) -> bool:
        return self.exit_code == EXIT_PASS

    @property
    def verdict(self) -> str:
        code = self.exit_code
        if code == EXIT_PASS:
            return "PASS"
        if code == EXIT_REGRESSION:
            return "REGRESSION"
        if self.count("missing"):
            return "ERROR"
        if self.count("not comparable"):
            return "NOT COMPARABLE"
        return "NOTHING CHECKED"

    @property
    def context_flags(self) -> list[str]:
        """Run-wide context: ``subset``, ``synthetic data``, ``N failed``."""
        out = []
        subset = [g for g in self.groups if g.run.subset]
        if subset:
            out.append(f"subset run ({len(subset)} of {len(self.groups)} task/datasets)")
        if any(g.run.synthetic for g in self.groups):
            out.append("synthetic data")
        failed = sum(g.run.n_failed or 0 for g in self.groups)
        if failed:
            out.append(f"{failed} failed sample(s)")
        return out

    def summary(self) -> str:
        parts = [f"{self.count(s)} {s}" for s in _STATUSES if self.count(s)]
        text = (f"gate {self.verdict}: run {self.run_id} vs baseline "
                f"{self.baseline_path or '-'}: " + ", ".join(parts or ["no rows"]))
        if not self.n_checked:
            text += " (nothing checked: no baseline metric could be compared)"
        if self.context_flags:
            text += f" [{'; '.join(self.context_flags)}]"
        return text

    def moved(self) -> list[GateRow]:
        """Rows that changed value or did not pass."""
        return [r for r in self.rows if r.status != "pass" or r.delta != 0]

    def problems(self) -> list[GateRow]:
        """Rows that make the gate fail or that could not be checked."""
        return [r for r in self.rows if r.status not in ("pass", "improved")]

    def table(self, show_all: bool = True) -> Any:
        """A ``rich.table.Table``; with ``show_all=False`` only rows that moved or did not pass."""
        from rich.table import Table

        style = {"regressed": "bold red", "missing": "bold magenta",
                 "not comparable": "bold magenta", "unchecked": "yellow", "improved": "green",
                 "pass": ""}
        t = Table(title=self.summary(), title_justify="left")
        for name, just in (("task/dataset", "left"), ("samples", "right"), ("metric", "left"),
                           ("baseline", "right"), ("run", "right"), ("delta", "right"),
                           ("95% CI of delta", "right"), ("allowed", "right"), ("p", "right"),
                           ("status", "left"), ("note", "left")):
            t.add_column(name, justify=just)  # type: ignore[arg-type]
        ctx = {g.label: g for g in self.groups}
        hidden = 0
        for r in self.rows:
            if not show_all and r.status == "pass" and r.delta == 0:
                hidden += 1
                continue
            arrow = "" if r.higher_is_better else " ↓"
            g = ctx.get(r.group)
            samples = g.samples_text + "".join(
                f" {f}" for f in g.flags if not f.endswith("failed")) if g else ""
            t.add_row(r.label, samples, r.metric + arrow, _f(r.baseline, r.unit),
                      _f(r.current, r.unit), _f(r.delta, r.unit, signed=True), r.interval,
                      _f(r.allowed, r.unit), r.p_text, r.status, r.note, style=style[r.status])
        if hidden:
            t.caption = f"{hidden} unchanged metric(s) not shown"
        return t

    def to_text(self, show_all: bool = True, width: int = 200) -> str:
        """The table as plain text (no colour), e.g. for a pytest failure message."""
        from rich.console import Console

        buf = io.StringIO()
        console = Console(file=buf, width=width, no_color=True, color_system=None,
                          force_terminal=False)
        if show_all or self.moved():
            console.print(self.table(show_all))
        else:
            console.print(f"{self.summary()} (no metric moved)")
        return (buf.getvalue() + "".join(f"context: {g.describe()}\n" for g in self.groups)
                + "".join(f"note: {n}\n" for n in self.notes))

    def to_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "baseline": self.baseline_path, "alpha": self.alpha,
                "exit_code": self.exit_code, "verdict": self.verdict, "summary": self.summary(),
                "n_checked": self.n_checked, "context": self.context_flags,
                "notes": self.notes, "groups": [g.to_dict() for g in self.groups],
                "rows": [r.to_dict() for r in self.rows]}

    # ---------------------------------------------------------------- CI formats

    def to_markdown(self, show_all: bool = False) -> str:
        """A Markdown report (GitHub step summary): verdict, context, the regression table
        (metric, baseline, run, delta, interval, p) and every other row folded away."""
        icon = {0: "✅", 1: "❌", 2: "⚠️"}[self.exit_code]
        lines = [f"## {icon} remotesam-bench gate: {self.verdict}", "",
                 f"Run `{self.run_id}` against baseline `{self.baseline_path or '-'}`: "
                 + ", ".join(f"{self.count(s)} {s}" for s in _STATUSES if self.count(s)) + "."]
        if not self.n_checked:
            lines.append("Nothing was checked: no baseline metric could be compared.")
        if self.context_flags:
            lines += ["", "**Context:** " + "; ".join(self.context_flags) + "."]
        header = ("| task/dataset | samples | metric | baseline | run | delta | 95% CI of delta "
                  "| p | status | note |\n|---|---:|---|---:|---:|---:|---:|---:|---|---|")

        def md_rows(rows: Iterable[GateRow]) -> list[str]:
            ctx = {g.label: g for g in self.groups}
            out = []
            for r in rows:
                g = ctx.get(r.group)
                samples = (g.samples_text + "".join(
                    f" {f}" for f in g.flags if not f.endswith("failed"))) if g else ""
                cells = [r.label, samples, r.metric + ("" if r.higher_is_better else " ↓"),
                         _f(r.baseline, r.unit), _f(r.current, r.unit),
                         _f(r.delta, r.unit, signed=True), r.interval, r.p_text,
                         f"**{r.status}**" if r.status not in ("pass", "improved") else r.status,
                         r.note]
                out.append("| " + " | ".join(_md_cell(c) for c in cells) + " |")
            return out

        problems = self.problems()
        if problems:
            lines += ["", "### Regressions and unchecked metrics", "", header, *md_rows(problems)]
        rest = [r for r in self.rows if r not in problems and (show_all or r in self.moved())]
        if rest:
            lines += ["", "<details><summary>Other metrics that moved "
                      f"({len(rest)})</summary>", "", header, *md_rows(rest), "", "</details>"]
        if self.groups:
            lines += ["", "<details><summary>Samples behind the numbers</summary>", ""]
            lines += [f"- {_md_cell(g.describe())}" for g in self.groups]
            lines += ["", "</details>"]
        for n in self.notes:
            lines += ["", f"> {_md_cell(n)}"]
        return "\n".join(lines) + "\n"

    def to_junit(self) -> str:
        """JUnit XML: one ``testcase`` per gated row; a regression is a ``failure``, a missing
        or not comparable metric an ``error``, an unchecked one ``skipped``."""
        suite = ET.Element("testsuite", name="remotesam-bench gate",
                           timestamp=datetime.now(UTC).isoformat(timespec="seconds"))
        props = ET.SubElement(suite, "properties")
        for k, v in (("run_id", self.run_id), ("baseline", self.baseline_path),
                     ("verdict", self.verdict), ("exit_code", str(self.exit_code)),
                     ("context", "; ".join(self.context_flags))):
            ET.SubElement(props, "property", name=k, value=v)
        counts = {"failures": 0, "errors": 0, "skipped": 0}
        for r in self.rows:
            case = ET.SubElement(suite, "testcase", name=r.metric, time="0",
                                 classname="remotesam_bench.gate." + r.label.replace("/", "."))
            msg = _row_message(r)
            if r.status == "regressed":
                ET.SubElement(case, "failure", message=msg, type="regression").text = msg
                counts["failures"] += 1
            elif r.status in ("missing", "not comparable"):
                ET.SubElement(case, "error", message=msg, type=r.status).text = msg
                counts["errors"] += 1
            elif r.status == "unchecked":
                ET.SubElement(case, "skipped", message=msg)
                counts["skipped"] += 1
            ET.SubElement(case, "system-out").text = msg
        if not self.n_checked:
            case = ET.SubElement(suite, "testcase", name="nothing checked", time="0",
                                 classname="remotesam_bench.gate")
            msg = "no baseline metric could be compared (all NaN, unchecked or not comparable)"
            ET.SubElement(case, "error", message=msg, type="nothing checked").text = msg
            counts["errors"] += 1
        n_cases = len(suite.findall("testcase"))
        suite.set("tests", str(n_cases))
        for k, v in counts.items():
            suite.set(k, str(v))
        ET.SubElement(suite, "system-out").text = "\n".join(
            [self.summary()] + [g.describe() for g in self.groups] + self.notes)
        root = ET.Element("testsuites", name="remotesam-bench gate", tests=str(n_cases),
                          **{k: str(v) for k, v in counts.items()})
        root.append(suite)
        ET.indent(root)
        return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(
            root, encoding="unicode") + "\n"

    def github_annotations(self) -> list[str]:
        """GitHub Actions workflow commands: ``::error`` per regressed, missing or not
        comparable row (and when nothing was checked), ``::warning`` per unchecked row and
        for subset or synthetic runs."""
        out = []
        for r in self.rows:
            level = ("error" if r.status in ("regressed", "missing", "not comparable")
                     else "warning" if r.status == "unchecked" else None)
            if level:
                title = f"remotesam-bench gate: {r.label} {r.metric} {r.status}"
                out.append(f"::{level} title={_gh_prop(title)}::{_gh_data(_row_message(r))}")
        if not self.n_checked:
            out.append(f"::error title={_gh_prop('remotesam-bench gate: nothing checked')}::"
                       + _gh_data(self.summary()))
        if self.context_flags:
            out.append(f"::warning title={_gh_prop('remotesam-bench gate: context')}::"
                       + _gh_data("the gated numbers come from a " + "; ".join(
                           self.context_flags)))
        return out


def _row_message(r: GateRow) -> str:
    parts = [f"{r.label} {r.metric}: {r.status}",
             f"baseline {_f(r.baseline, r.unit)}", f"run {_f(r.current, r.unit)}",
             f"delta {_f(r.delta, r.unit, signed=True)}"]
    if r.interval:
        parts.append(f"95% CI {r.interval}")
    if r.p_text:
        parts.append(f"p = {r.p_text}" + (f" ({r.test})" if r.test else ""))
    if math.isfinite(r.allowed):
        parts.append(f"allowed {_f(r.allowed, r.unit)}")
    text = ", ".join(p for p in parts if not p.endswith(" "))
    return text + (f"; {r.note}" if r.note else "")


def _gh_data(s: str) -> str:
    return s.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _gh_prop(s: str) -> str:
    return _gh_data(s).replace(":", "%3A").replace(",", "%2C")


def _md_cell(s: str) -> str:
    return str(s).replace("|", "\\|").replace("\n", " ")


def _f(v: float, unit: str, signed: bool = False) -> str:
    if isinstance(v, float) and not math.isfinite(v):
        return "" if math.isnan(v) else str(v)
    if unit == "samples":
        return f"{v:+.0f}" if signed else f"{v:.0f}"
    s = f"{v:+.2f}" if signed else f"{v:.2f}"
    if unit != "%":
        s = f"{v:+.4g}" if signed else f"{v:.4g}"
    return s


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
                        f"{_f(m.value, m.unit)}, run {_f(float(mv.value), m.unit)})")
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
                note.append(f"hard tolerance raised to {_f(hard, m.unit)} "
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
    label = _group_label(key)
    tol = (m.tolerance if m is not None and m.tolerance is not None else _FAILED_TOLERANCE)
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
    results = _select_checkpoint(run, checkpoint)
    names_needed = any(m.checkpoint is None for m in baseline.metrics)
    if names_needed and len(_checkpoints(results)) > 1:
        names = sorted({f"{r.checkpoint.name} ({r.checkpoint.sha256[:8]})" for r in results})
        raise GateError(f"run {run.run_id} holds {len(names)} checkpoints {names} and the "
                        "baseline does not say which to judge; pass --checkpoint NAME")
    index: dict[GroupKey, TaskResult] = {}
    for r in results:
        index[(None, r.task, r.dataset, r.split)] = r
        index[(r.checkpoint.name, r.task, r.dataset, r.split)] = r
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
        contexts.append(GroupContext(_group_label(key), rset, bset, match.matched_by,
                                     match.comparable, match.n_common,
                                     intersection and not match.comparable))
        if match.note and match.comparable:
            notes.append(f"{_group_label(key)}: {match.note}")
        elif intersection and match.common is not None:
            notes.append(f"{_group_label(key)}: {match.note}; scored on the "
                         f"{len(match.common)} common samples (intersection)")
        for m in plain:
            rows.append(_metric_row(baseline, m, res, match, intersection, alpha, n_perm, seed))
        rows.append(_failed_row(baseline, failed_entry, key, bset, recorded, rset, match,
                                intersection))
    gated = {(m.checkpoint, m.task, m.dataset, m.split, m.metric) for m in baseline.metrics}
    ungated = [f"{r.task}/{r.dataset}:{r.split} {name}" for r in results for name in r.metrics
               if wanted(r.task, r.dataset)
               and (None, r.task, r.dataset, r.split, name) not in gated
               and (r.checkpoint.name, r.task, r.dataset, r.split, name) not in gated]
    if ungated:
        notes.append(f"{len(ungated)} metric(s) of the run are not in the baseline and were not "
                     f"gated: {', '.join(ungated[:8])}{' ...' if len(ungated) > 8 else ''}")
    nan_rows = [r for r in rows if r.status == "unchecked" and "NaN" in r.note]
    if nan_rows and len(nan_rows) == sum(r.metric != N_FAILED for r in rows):
        notes.append("every baseline value is NaN: nothing to compare; regenerate the baseline "
                     "from a run whose metrics are defined")
    return GateReport(rows=rows, run_id=run.run_id, baseline_path=baseline_path, alpha=alpha,
                      notes=notes, groups=contexts)
