"""Regression gate: compare a run with a baseline file, metric by metric.

Baseline file (JSON, ``schema = "remotesam-bench/baseline/1"``), written by
:func:`write_baseline` (``remotesam-bench baseline``) and meant to be committed and hand-edited::

    {"schema": ..., "created": ISO-8601, "source_run": run_id,
     "checkpoint": {"name", "sha256"} | null,          # informational
     "default_tolerance": {"abs": float} | {"rel": float} | null,
     "hard_factor": 3.0, "alpha": 0.05,
     "metrics": [
       {"task", "dataset", "split", "metric",
        "checkpoint": name | absent,                    # only when the run had several
        "value": float | "nan", "higher_is_better": bool, "unit": str,
        "tolerance": {"abs": a, "rel": r},              # either or both; optional
        "hard_tolerance": {"abs": ..., "rel": ...},     # optional
        "per_sample": {"sample_ids": [...], "values": [...]},             # optional
        "per_sample_ratio": {"sample_ids": [...], "num": [...], "den": [...]}  # optional
       }, ...]}

The rule (per metric, ``worse = baseline - current`` when higher is better, ``current -
baseline`` when lower is better, e.g. MAE):

* ``allowed = max(abs, rel * |baseline|)`` from the metric's ``tolerance`` (else the file's
  ``default_tolerance``, else 0.5 for ``%`` metrics and 2% relative for others);
  ``hard = max(abs, rel * |baseline|)`` from ``hard_tolerance``, else ``hard_factor * allowed``.
* ``worse <= allowed``: **pass** (**improved** when ``-worse > allowed``).
* ``worse > hard``: **regressed**, whatever the statistics say.
* ``allowed < worse <= hard``: if both the baseline and the run stored per-sample values for
  the metric (at least 2 common sample ids), a one-sided paired bootstrap
  (:func:`remotesam.bench.stats.paired_bootstrap_pvalue`) decides: **regressed** when
  ``p < alpha`` (0.05), else **pass** ("not significant"); without per-sample values,
  **regressed**.
* Metric absent from the run: **missing**. A finite baseline that became NaN: **regressed**.

Exit codes (:attr:`GateReport.exit_code`): 0 every metric passed or improved; 1 at least one
regression; 2 error: a metric is missing, or (raised as :class:`GateError`) the baseline file is
missing or malformed or the run cannot be matched to it.
"""

from __future__ import annotations

import io
import json
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from remotesam.bench.results import RunDocument, TaskResult
from remotesam.bench.stats import paired_bootstrap_pvalue

__all__ = [
    "BASELINE_SCHEMA",
    "Baseline",
    "BaselineMetric",
    "GateError",
    "GateReport",
    "GateRow",
    "Tolerance",
    "compare",
    "write_baseline",
]

BASELINE_SCHEMA = "remotesam-bench/baseline/1"
EXIT_PASS, EXIT_REGRESSION, EXIT_ERROR = 0, 1, 2


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
    def label(self) -> str:
        ds = self.dataset if self.split == "test" else f"{self.dataset}:{self.split}"
        ck = f"[{self.checkpoint}] " if self.checkpoint else ""
        return f"{ck}{self.task}/{ds}"

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
class Baseline:
    """A baseline file in memory. Load with :meth:`load`, write with :meth:`save`."""

    metrics: list[BaselineMetric]
    default_tolerance: Tolerance | None = None
    hard_factor: float = 3.0
    alpha: float = 0.05
    source_run: str = ""
    created: str = ""
    checkpoint: dict[str, str] | None = None

    def tolerance_for(self, m: BaselineMetric) -> Tolerance:
        return m.tolerance or self.default_tolerance or _default_tolerance(m.unit)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": BASELINE_SCHEMA, "created": self.created, "source_run": self.source_run,
            "checkpoint": self.checkpoint,
            "default_tolerance": (self.default_tolerance.to_dict()
                                  if self.default_tolerance else None),
            "hard_factor": self.hard_factor, "alpha": self.alpha,
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
        """Read and validate a baseline file.

        Raises:
            GateError: missing or unreadable file, invalid JSON, wrong schema, or a field with
                the wrong type (the message names the file, the entry and the field).
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
        if not isinstance(doc, dict) or doc.get("schema") != BASELINE_SCHEMA:
            found = doc.get("schema") if isinstance(doc, dict) else type(doc).__name__
            raise GateError(f"{source}: field 'schema' is {found!r}, expected "
                            f"{BASELINE_SCHEMA!r}")
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
        dt = doc.get("default_tolerance")
        hard_factor = _number(doc.get("hard_factor", 3.0), f"{source}: hard_factor")
        alpha = _number(doc.get("alpha", 0.05), f"{source}: alpha")
        if hard_factor < 1.0:
            raise GateError(f"{source}: hard_factor must be >= 1, got {hard_factor}")
        if not 0.0 < alpha < 1.0:
            raise GateError(f"{source}: alpha must be in (0, 1), got {alpha}")
        return cls(
            metrics=metrics,
            default_tolerance=None if dt is None else Tolerance.from_dict(
                dt, f"{source}: default_tolerance"),
            hard_factor=hard_factor, alpha=alpha,
            source_run=str(doc.get("source_run", "")), created=str(doc.get("created", "")),
            checkpoint=doc.get("checkpoint"),
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
) -> Baseline:
    """Write a baseline file from ``run`` (every metric of every result) and return it.

    Each metric gets an explicit ``tolerance``: ``{"abs": default_abs_tol}`` and/or
    ``{"rel": default_rel_tol}`` when given, else 0.5 (points) for ``%`` metrics and 2%
    relative for other units. Per-sample values are copied when the run has them (for the
    paired bootstrap) unless ``include_per_sample`` is False. When the run (or the chosen
    ``checkpoint``) holds several checkpoints, each entry records its checkpoint name.

    Raises:
        GateError: the run has no results (for ``checkpoint``/``tasks``), bad tolerances, or
            the file cannot be written.
    """
    for name, v in (("default_abs_tol", default_abs_tol), ("default_rel_tol", default_rel_tol)):
        if v is not None and not v >= 0:
            raise GateError(f"{name} must be >= 0, got {v}")
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
    entries = []
    for r in results:
        for name, mv in r.metrics.items():
            entries.append(BaselineMetric(
                task=r.task, dataset=r.dataset, split=r.split, metric=name,
                value=float(mv.value), higher_is_better=mv.higher_is_better, unit=mv.unit,
                checkpoint=r.checkpoint.name if several else None,
                tolerance=user_tol or _default_tolerance(mv.unit),
                per_sample=(dict(r.per_sample[name])
                            if include_per_sample and name in r.per_sample else None),
                per_sample_ratio=(dict(r.per_sample_ratio[name])
                                  if include_per_sample and name in r.per_sample_ratio else None),
            ))
    one = next(iter(ckpts.values())).checkpoint
    base = Baseline(
        metrics=entries, default_tolerance=user_tol, hard_factor=hard_factor, alpha=alpha,
        source_run=run.run_id, created=datetime.now(UTC).isoformat(timespec="seconds"),
        checkpoint=None if several else {"name": one.name, "sha256": one.sha256},
    )
    Baseline.from_dict(base.to_dict(), "<new baseline>")  # same validation as loading
    base.save(path)
    return base


# --------------------------------------------------------------------------------------------
# comparing


@dataclass
class GateRow:
    """The verdict on one metric. ``delta = current - baseline``; ``worse`` is the worsening
    (positive = worse, direction-aware); ``p_value`` is NaN when no paired test ran."""

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
    status: str  # "pass" | "improved" | "regressed" | "missing"
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {k: (v if not isinstance(v, float) or math.isfinite(v) else str(v))
                for k, v in self.__dict__.items()}


@dataclass
class GateReport:
    """All rows of a comparison plus the decision."""

    rows: list[GateRow]
    run_id: str
    baseline_path: str = ""
    alpha: float = 0.05
    notes: list[str] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(r.status == status for r in self.rows)

    @property
    def exit_code(self) -> int:
        """0 pass, 1 regression, 2 missing metric (an error takes precedence)."""
        if self.count("missing"):
            return EXIT_ERROR
        if self.count("regressed"):
            return EXIT_REGRESSION
        return EXIT_PASS

    @property
    def passed(self) -> bool:
        return self.exit_code == EXIT_PASS

    def summary(self) -> str:
        verdict = {0: "PASS", 1: "REGRESSION", 2: "ERROR"}[self.exit_code]
        parts = [f"{self.count(s)} {s}" for s in ("regressed", "missing", "improved", "pass")
                 if self.count(s)]
        return (f"gate {verdict}: run {self.run_id} vs baseline {self.baseline_path or '-'}: "
                + ", ".join(parts))

    def moved(self) -> list[GateRow]:
        """Rows that changed value or did not pass."""
        return [r for r in self.rows if r.status != "pass" or r.delta != 0]

    def table(self, show_all: bool = True) -> Any:
        """A ``rich.table.Table``; with ``show_all=False`` only rows that moved or did not pass."""
        from rich.table import Table

        style = {"regressed": "bold red", "missing": "bold magenta", "improved": "green",
                 "pass": ""}
        t = Table(title=self.summary(), title_justify="left")
        for name, just in (("task/dataset", "left"), ("metric", "left"), ("baseline", "right"),
                           ("current", "right"), ("delta", "right"), ("allowed", "right"),
                           ("p", "right"), ("status", "left"), ("note", "left")):
            t.add_column(name, justify=just)  # type: ignore[arg-type]
        hidden = 0
        for r in self.rows:
            if not show_all and r.status == "pass" and r.delta == 0:
                hidden += 1
                continue
            arrow = "" if r.higher_is_better else " ↓"
            t.add_row(r.label, r.metric + arrow, _f(r.baseline, r.unit), _f(r.current, r.unit),
                      _f(r.delta, r.unit, signed=True), _f(r.allowed, r.unit),
                      "" if math.isnan(r.p_value) else f"{r.p_value:.3f}",
                      r.status, r.note, style=style[r.status])
        if hidden:
            t.caption = f"{hidden} unchanged metric(s) not shown"
        return t

    def to_text(self, show_all: bool = True, width: int = 160) -> str:
        """The table as plain text (no colour), e.g. for a pytest failure message."""
        from rich.console import Console

        buf = io.StringIO()
        console = Console(file=buf, width=width, no_color=True, color_system=None,
                          force_terminal=False)
        if show_all or self.moved():
            console.print(self.table(show_all))
        else:
            console.print(f"{self.summary()} (no metric moved)")
        return buf.getvalue() + "".join(f"note: {n}\n" for n in self.notes)

    def to_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "baseline": self.baseline_path, "alpha": self.alpha,
                "exit_code": self.exit_code, "summary": self.summary(), "notes": self.notes,
                "rows": [r.to_dict() for r in self.rows]}


def _f(v: float, unit: str, signed: bool = False) -> str:
    if isinstance(v, float) and not math.isfinite(v):
        return "" if math.isnan(v) else str(v)
    s = f"{v:+.2f}" if signed else f"{v:.2f}"
    if unit != "%":
        s = f"{v:+.4g}" if signed else f"{v:.4g}"
    return s


def _aligned(base: BaselineMetric, res: TaskResult, metric: str,
             ) -> tuple[Any, Any, int] | None:
    """Per-sample values of baseline and run on their common sample ids (baseline order)."""
    if base.per_sample is not None and metric in res.per_sample:
        cur = res.per_sample[metric]
        idx = {sid: i for i, sid in enumerate(cur.get("sample_ids", []))}
        pairs = [(i, idx[sid]) for i, sid in enumerate(base.per_sample["sample_ids"])
                 if sid in idx]
        if len(pairs) < 2:
            return None
        bi, ci = (np.array(x) for x in zip(*pairs))
        b = np.asarray(base.per_sample["values"], dtype=float)[bi]
        c = np.asarray(cur.get("values", []), dtype=float)[ci]
        return c, b, len(pairs)
    if base.per_sample_ratio is not None and metric in res.per_sample_ratio:
        cur = res.per_sample_ratio[metric]
        idx = {sid: i for i, sid in enumerate(cur.get("sample_ids", []))}
        pairs = [(i, idx[sid]) for i, sid in enumerate(base.per_sample_ratio["sample_ids"])
                 if sid in idx]
        if len(pairs) < 2:
            return None
        bi, ci = (np.array(x) for x in zip(*pairs))
        b = (np.asarray(base.per_sample_ratio["num"], dtype=float)[bi],
             np.asarray(base.per_sample_ratio["den"], dtype=float)[bi])
        c = (np.asarray(cur.get("num", []), dtype=float)[ci],
             np.asarray(cur.get("den", []), dtype=float)[ci])
        return c, b, len(pairs)
    return None


def compare(
    run: RunDocument,
    baseline: Baseline,
    *,
    checkpoint: str | None = None,
    alpha: float | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    baseline_path: str = "",
) -> GateReport:
    """Compare ``run`` with ``baseline`` (the rule is in the module docstring).

    Args:
        run: the run document to judge.
        baseline: a loaded :class:`Baseline`.
        checkpoint: which checkpoint of the run to judge (name or sha256 prefix) when the run
            holds several and the baseline entries do not name one.
        alpha: significance level of the paired test (default: the baseline file's, 0.05).
        n_boot, seed: paired bootstrap settings (deterministic for a fixed seed).

    Returns:
        A :class:`GateReport`; its ``exit_code`` is 0, 1 or 2.

    Raises:
        GateError: the run is ambiguous (several checkpoints, none chosen) or has no checkpoint
            of that name.
    """
    alpha = baseline.alpha if alpha is None else alpha
    if not 0.0 < alpha < 1.0:
        raise GateError(f"alpha must be in (0, 1), got {alpha}")
    results = _select_checkpoint(run, checkpoint)
    names_needed = any(m.checkpoint is None for m in baseline.metrics)
    if names_needed and len(_checkpoints(results)) > 1:
        names = sorted({f"{r.checkpoint.name} ({r.checkpoint.sha256[:8]})" for r in results})
        raise GateError(f"run {run.run_id} holds {len(names)} checkpoints {names} and the "
                        "baseline does not say which to judge; pass --checkpoint NAME")
    index: dict[tuple[str | None, str, str, str], TaskResult] = {}
    for r in results:
        index[(None, r.task, r.dataset, r.split)] = r
        index[(r.checkpoint.name, r.task, r.dataset, r.split)] = r
    rows: list[GateRow] = []
    notes: list[str] = []
    for m in baseline.metrics:
        tol = baseline.tolerance_for(m)
        allowed = tol.allowed(m.value)
        hard = (m.hard_tolerance.allowed(m.value) if m.hard_tolerance is not None
                else baseline.hard_factor * allowed)
        hard = max(hard, allowed)
        res = index.get((m.checkpoint, m.task, m.dataset, m.split))
        if res is None or m.metric not in res.metrics:
            what = "no result for this task/dataset/split" if res is None else (
                f"the result has no metric {m.metric!r} (it has {sorted(res.metrics)})")
            rows.append(GateRow(m.label, m.metric, m.higher_is_better, m.unit, m.value,
                                math.nan, math.nan, math.nan, allowed, hard, math.nan, 0,
                                "missing", what))
            continue
        mv = res.metrics[m.metric]
        cur = float(mv.value)
        note = ""
        if mv.higher_is_better != m.higher_is_better:
            note = "direction differs from the run's; the baseline's is used. "
        delta = cur - m.value
        worse = -delta if m.higher_is_better else delta
        p, n_paired = math.nan, 0
        aligned = _aligned(m, res, m.metric)
        if aligned is not None:
            c, b, n_paired = aligned
            p = paired_bootstrap_pvalue(c, b, higher_is_better=m.higher_is_better,
                                        n_boot=n_boot, seed=seed)
        if math.isnan(m.value):
            status = "pass"
            note += "baseline is NaN (undefined); not gated"
        elif math.isnan(cur):
            status = "regressed"
            note += "value became NaN (undefined)"
        elif worse <= allowed:
            status = "improved" if -worse > allowed else "pass"
        elif worse > hard:
            status = "regressed"
            note += "beyond the hard tolerance"
        elif not math.isnan(p):
            if p < alpha:
                status = "regressed"
                note += f"significant (paired bootstrap, n={n_paired})"
            else:
                status = "pass"
                note += f"beyond tolerance but not significant (p >= {alpha:g}, n={n_paired})"
        else:
            status = "regressed"
            note += "beyond tolerance (no per-sample values for a paired test)"
        rows.append(GateRow(m.label, m.metric, m.higher_is_better, m.unit, m.value, cur, delta,
                            worse, allowed, hard, p, n_paired, status, note.strip()))
    gated = {(m.checkpoint, m.task, m.dataset, m.split, m.metric) for m in baseline.metrics}
    ungated = [f"{r.task}/{r.dataset}:{r.split} {name}" for r in results for name in r.metrics
               if (None, r.task, r.dataset, r.split, name) not in gated
               and (r.checkpoint.name, r.task, r.dataset, r.split, name) not in gated]
    if ungated:
        notes.append(f"{len(ungated)} metric(s) of the run are not in the baseline and were not "
                     f"gated: {', '.join(ungated[:8])}{' ...' if len(ungated) > 8 else ''}")
    return GateReport(rows=rows, run_id=run.run_id, baseline_path=baseline_path, alpha=alpha,
                      notes=notes)
