"""Baseline files for the regression gate (:mod:`remotesam.bench.gate`): format, loading, writing.

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
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from remotesam.bench.records.results import RunDocument, TaskResult
from remotesam.fileio import write_text_atomic

__all__ = [
    "BASELINE_SCHEMA",
    "BASELINE_SCHEMA_V1",
    "FAILED_TOLERANCE",
    "N_FAILED",
    "Baseline",
    "BaselineMetric",
    "GateError",
    "GroupKey",
    "SampleSet",
    "Tolerance",
    "checkpoints_of",
    "evaluated_ids_of",
    "group_label",
    "portable_names",
    "select_checkpoint",
    "write_baseline",
]

BASELINE_SCHEMA = "remotesam-bench/baseline/2"
BASELINE_SCHEMA_V1 = "remotesam-bench/baseline/1"
_READABLE_SCHEMAS = (BASELINE_SCHEMA_V1, BASELINE_SCHEMA)
#: The gated failure count of a task/dataset (a row beside its metrics).
N_FAILED = "n_failed"


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


FAILED_TOLERANCE = Tolerance(abs=0.0)

GroupKey = tuple[str | None, str, str, str]  # (checkpoint name | None, task, dataset, split)


def group_label(key: GroupKey) -> str:
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
        return group_label(self.group)

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
        evaluated = evaluated_ids_of(r)
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


def evaluated_ids_of(r: TaskResult) -> list[str] | None:
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
            return FAILED_TOLERANCE
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
        try:
            write_text_atomic(path, json.dumps(self.to_dict(), indent=1) + "\n")
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
                raise GateError(f"{source}: samples[{i}] repeats {group_label(key)}; keep one")
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


def checkpoints_of(results: list[TaskResult]) -> dict[str, TaskResult]:
    out: dict[str, TaskResult] = {}
    for r in results:
        out.setdefault(r.checkpoint.sha256 or r.checkpoint.name, r)
    return out


def select_checkpoint(run: RunDocument, checkpoint: str | None) -> list[TaskResult]:
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
                            f"{run.run_id}: {checkpoint_display(chosen)}; "
                            "give more of the path or a sha256 prefix")
        if chosen:
            return chosen
    raise GateError(f"run {run.run_id} has no checkpoint {checkpoint!r}; it has: "
                    f"{checkpoint_display(run.results)}")


def checkpoint_display(results: list[TaskResult]) -> list[str]:
    """The checkpoints of ``results`` as messages show them: the shortest trailing part of the
    path that tells them apart and the first 8 hex digits of the sha256, sorted (the full
    paths stay in the run document)."""
    from remotesam.bench.records.results import short_names

    short = short_names(r.checkpoint.name for r in results)
    return sorted({f"{short[r.checkpoint.name]} ({r.checkpoint.sha256[:8]})" for r in results})


def _portable_name(name: str) -> str:
    """A checkpoint name fit for a committed file: an absolute path keeps its file name."""
    return Path(name).name if os.path.isabs(name) else name


def portable_names(names: list[str]) -> dict[str, str]:
    """``{name: name for a committed file}``: absolute paths shortened to their file name
    where that stays unique among ``names``, else kept (the gate matches either form)."""
    short = {n: _portable_name(n) for n in names}
    clash = {v for v in short.values() if list(short.values()).count(v) > 1}
    return {n: (n if s in clash else s) for n, s in short.items()}


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
    results = select_checkpoint(run, checkpoint)
    if tasks:
        results = [r for r in results if r.task in set(tasks)]
    if not results:
        raise GateError(f"run {run.run_id} has no results to write a baseline from"
                        + (f" for tasks {tasks}" if tasks else ""))
    ckpts = checkpoints_of(results)
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
        ck = portable_names(names).get(r.checkpoint.name) if several else None
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
