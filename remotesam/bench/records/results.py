"""The run document: what a benchmark run produces, as JSON, for reports and gates.

One :class:`RunDocument` per ``remotesam-bench run`` (written to ``<results>/runs/<run_id>.json``
and re-creatable from the SQLite store by ``remotesam-bench score``). Leaderboards, radar charts,
baselines and the gate all read this structure, never the runner's internals.

JSON layout (``schema = "remotesam-bench/run/1"``)::

    {"schema": ..., "run_id": str, "created": ISO-8601 str,
     "provenance": {package_version, git_revision, torch, cuda, device, precision,
                    world_size, config: {...}, wall_time_s, samples_per_s, ...},
     "results": [TaskResult, ...]}

    TaskResult = {"checkpoint": {"name": str, "path": str, "sha256": str},
                  "task": str, "task_version": int, "dataset": str, "split": str,
                  "settings_hash": str,
                  "n_total": int, "n_evaluated": int, "n_failed": int,
                  "synthetic": bool, "subset": bool,
                  "sample_ids": [str, ...],     # the evaluated samples, in scoring order
                  "failures": [{"sample_id": str, "error": str,
                                "kind": "transient" | "permanent" | "missing"}, ...],
                  "metrics": {name: MetricValue, ...},
                  "tables": {...},
                  "per_sample": {name: {"sample_ids": [...], "values": [...]}},
                  "per_sample_ratio": {name: {"sample_ids": [...], "num": [...], "den": [...]}}}

    MetricValue = {"value": float, "higher_is_better": bool, "primary": bool, "unit": str,
                   "official": bool, "ci95": [lo, hi] | null}
"""

from __future__ import annotations

import json
import math
import stat
import warnings
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

__all__ = [
    "SCHEMA",
    "CheckpointRef",
    "MetricValue",
    "RunDocument",
    "RunsDirWarning",
    "TaskResult",
    "find_run",
    "format_metric",
    "latest_run",
    "list_runs",
    "resolve_run",
    "resolve_runs",
    "runs_dir",
    "short_names",
]

SCHEMA = "remotesam-bench/run/1"


@dataclass(frozen=True)
class CheckpointRef:
    """Identifies a checkpoint: display ``name``, ``path`` as given, ``sha256`` of the file."""

    name: str
    path: str
    sha256: str


def format_metric(v: float, unit: str, *, signed: bool = False, nan: str = "n/a",
                  inf: str | None = None, percent: str = ".2f", general: str = ".4g") -> str:
    """A metric value as text, the one number formatter of tables, reports and the gate.

    Args:
        v: the value.
        unit: ``"%"`` (format ``percent``), ``"samples"`` (a whole number) or anything else
            (format ``general``).
        signed: always show the sign (a difference).
        nan: the text of NaN (an undefined metric).
        inf: the text of an infinite value (default: ``str(v)``, ``"inf"`` / ``"-inf"``).
        percent, general: the format specs of percentages and of other units.
    """
    if not math.isfinite(v):
        if math.isnan(v):
            return nan
        return str(v) if inf is None else inf
    sign = "+" if signed else ""
    if unit == "samples":
        return f"{v:{sign}.0f}"
    return f"{v:{sign}{percent if unit == '%' else general}}"


@dataclass
class MetricValue:
    """One metric's value with its direction and optional 95% bootstrap interval."""

    value: float
    higher_is_better: bool = True
    primary: bool = False
    unit: str = "%"
    official: bool = True
    ci95: tuple[float, float] | None = None
    #: the metric's natural bounds (:meth:`remotesam.bench.api.MetricSpec.bounds`); None:
    #: unbounded, or not recorded (older documents: a "%" metric is on [0, 100])
    lower: float | None = None
    upper: float | None = None


@dataclass
class TaskResult:
    """Scores of one checkpoint on one (task, dataset, split).

    Context that travels with the numbers: ``n_total`` samples in the dataset split,
    ``n_evaluated`` scored, ``n_failed`` without a prediction (listed in ``failures``), so
    ``n_evaluated + n_failed < n_total`` exactly when ``limit`` selected a subset (``subset``);
    ``synthetic`` is True when the data is the procedural embedded benchmark (its numbers are
    never comparable with published ones). ``sample_ids`` lists the evaluated samples (every
    task, also those without per-sample values, so two sample sets of the same size are told
    apart); None in documents written before it existed. ``task_title`` / ``dataset_title``:
    the display names the plugin gave the task and dataset when the run was made (reports show
    them without the plugin installed). Documents written before these fields existed read back
    with ``synthetic=False``, ``subset`` derived from the counts and empty titles.
    """

    checkpoint: CheckpointRef
    task: str
    task_version: int
    dataset: str
    split: str
    settings_hash: str = ""
    n_total: int = 0
    n_evaluated: int = 0
    n_failed: int = 0
    failures: list[dict[str, str]] = field(default_factory=list)
    metrics: dict[str, MetricValue] = field(default_factory=dict)
    tables: dict[str, Any] = field(default_factory=dict)
    per_sample: dict[str, dict[str, list[Any]]] = field(default_factory=dict)
    per_sample_ratio: dict[str, dict[str, list[Any]]] = field(default_factory=dict)
    synthetic: bool = False
    subset: bool = False
    sample_ids: list[str] | None = None
    task_title: str = ""
    dataset_title: str = ""

    @property
    def key(self) -> tuple[str, str, str, str]:
        """``(checkpoint sha256, task, dataset, split)``."""
        return (self.checkpoint.sha256, self.task, self.dataset, self.split)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TaskResult:
        d = dict(d)
        known = {f.name for f in fields(cls)}
        d = {k: v for k, v in d.items() if k in known}  # fields of a newer version are ignored
        d["checkpoint"] = CheckpointRef(**d["checkpoint"])
        if "subset" not in d:
            d["subset"] = int(d.get("n_evaluated", 0)) + int(d.get("n_failed", 0)) < int(
                d.get("n_total", 0))
        metrics = {}
        for name, m in d.get("metrics", {}).items():
            m = dict(m)
            if m.get("ci95") is not None:
                m["ci95"] = tuple(m["ci95"])
            m["value"] = _from_json_float(m["value"])
            metrics[name] = MetricValue(**m)
        d["metrics"] = metrics
        return cls(**d)


@dataclass
class RunDocument:
    """A whole run: provenance plus one :class:`TaskResult` per (checkpoint, task, dataset)."""

    run_id: str
    created: str
    provenance: dict[str, Any] = field(default_factory=dict)
    results: list[TaskResult] = field(default_factory=list)
    schema: str = SCHEMA

    def to_json(self) -> str:
        """Serialise; NaN/inf metric values become the strings ``"nan"``/``"inf"``."""
        return json.dumps(_to_jsonable(asdict(self)), indent=1, sort_keys=False)

    def save(self, path: str | Path) -> Path:
        """Write atomically (temp file + rename) so a crash never leaves half a document."""
        from remotesam.fileio import write_text_atomic

        return write_text_atomic(path, self.to_json())

    @classmethod
    def from_json(cls, text: str, source: str = "<string>") -> RunDocument:
        try:
            d = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(
                f"{source}: not valid JSON ({e}); expected a remotesam-bench run document"
            ) from e
        if not isinstance(d, dict) or d.get("schema") != SCHEMA:
            found = d.get("schema") if isinstance(d, dict) else type(d).__name__
            raise ValueError(f"{source}: field 'schema' is {found!r}, expected {SCHEMA!r}")
        for name in ("run_id", "created"):
            if not isinstance(d.get(name), str):
                raise ValueError(f"{source}: field {name!r} is missing or not a string; expected "
                                 "a remotesam-bench run document")
        try:
            results = [TaskResult.from_dict(r) for r in d.get("results", [])]
        except (KeyError, TypeError, AttributeError, ValueError) as e:
            raise ValueError(f"{source}: field 'results' holds a malformed task result "
                             f"({type(e).__name__}: {e})") from e
        return cls(run_id=d["run_id"], created=d["created"], provenance=d.get("provenance", {}),
                   results=results, schema=d["schema"])

    @classmethod
    def load(cls, path: str | Path) -> RunDocument:
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as e:
            raise ValueError(f"cannot read run document {path}: {e.strerror}") from e
        return cls.from_json(text, source=str(path))


def _from_json_float(v: Any) -> float:
    if isinstance(v, str):
        return float(v)  # "nan", "inf", "-inf"
    return float(v)


def _to_jsonable(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return str(obj)
    if isinstance(obj, dict):
        return {k: _to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_to_jsonable(v) for v in obj]
    if hasattr(obj, "item") and callable(obj.item):  # numpy scalars
        return _to_jsonable(obj.item())
    return obj


def runs_dir(results_dir: str | Path) -> Path:
    """Where run documents live: ``<results_dir>/runs``."""
    return Path(results_dir) / "runs"


class RunsDirWarning(UserWarning):
    """A file in ``<results>/runs/`` that is not a readable run document was skipped."""


def list_runs(results_dir: str | Path) -> list[RunDocument]:
    """Every run document under ``<results_dir>/runs``, oldest first (by ``created``, then id).

    A file there that is not a run document (not a regular file, unreadable, not JSON, another
    schema, missing fields) is skipped with a :class:`RunsDirWarning` naming it and why.
    """
    docs = []
    for p in sorted(runs_dir(results_dir).glob("*.json")):
        try:
            if not stat.S_ISREG(p.stat().st_mode):  # a FIFO would block the read forever
                raise ValueError(f"{p}: not a regular file")
            docs.append(RunDocument.load(p))
        except (OSError, ValueError) as e:
            warnings.warn(f"skipped {p}: {e}", RunsDirWarning, stacklevel=2)
    return sorted(docs, key=lambda d: (d.created, d.run_id))


def latest_run(results_dir: str | Path) -> RunDocument:
    """The newest run document; ``FileNotFoundError`` naming the folder when there is none."""
    docs = list_runs(results_dir)
    if not docs:
        raise FileNotFoundError(
            f"no run documents in {runs_dir(results_dir)}; run `remotesam-bench run` first "
            "or pass --results-dir"
        )
    return docs[-1]


def resolve_run(spec: str, results_dir: str | Path) -> RunDocument:
    """A run document from a path (an existing file) or a run id under ``<results_dir>/runs``.

    The id is looked up as ``<results_dir>/runs/<id>.json``, then among the documents' own
    ``run_id`` fields; a unique prefix is accepted. Raises ``ValueError`` listing the ids found.
    """
    p = Path(spec)
    if p.is_file():
        return RunDocument.load(p)
    folder = runs_dir(results_dir)
    exact = folder / f"{spec}.json"
    if exact.is_file():
        return RunDocument.load(exact)
    docs = list_runs(results_dir) if folder.is_dir() else []
    ids = [d.run_id for d in docs]
    for candidates in ([d for d in docs if d.run_id == spec],
                       [d for d in docs if d.run_id.startswith(spec)]):
        if len(candidates) == 1:
            return candidates[0]
        if len(candidates) > 1:
            raise ValueError(f"run id prefix {spec!r} is ambiguous in {folder}: "
                             f"{[d.run_id for d in candidates]}")
    raise ValueError(f"--run {spec!r} is neither a file nor a run id in {folder}; "
                     + (f"run ids there (oldest first): {ids[-10:]}" if ids else
                        "that folder holds no run documents (run `remotesam-bench run` first)"))


def resolve_runs(specs: list[str] | None, results_dir: str | Path) -> list[RunDocument]:
    """The runs named by ``specs`` (in order), or every run in ``results_dir`` (oldest first)."""
    if specs:
        return [resolve_run(s, results_dir) for s in specs]
    docs = list_runs(results_dir)
    if not docs:
        raise ValueError(f"no run documents in {runs_dir(results_dir)}; run `remotesam-bench run`"
                         " first or pass --results-dir / --run")
    return docs


def find_run(spec: str | None, results_dir: str | Path) -> RunDocument:
    """The run named by ``spec`` (:func:`resolve_run`), or the latest run in ``results_dir``.

    Raises:
        ValueError: no such run (the message lists the ids found), or no run at all.
    """
    if spec:
        return resolve_run(spec, results_dir)
    try:
        return latest_run(results_dir)
    except FileNotFoundError as e:
        raise ValueError(str(e)) from e


def short_names(names: Iterable[str]) -> dict[str, str]:
    """Shortest trailing path parts that still tell the given checkpoint names apart.

    ``["/runs/a/ckpt.pth", "/runs/b/ckpt.pth"]`` -> ``{..: "a/ckpt.pth", ..: "b/ckpt.pth"}``;
    names without a path separator are kept as they are.
    """
    uniq = list(dict.fromkeys(names))
    parts = {n: [p for p in n.replace("\\", "/").split("/") if p] or [n] for n in uniq}
    depth = {n: 1 for n in uniq}
    while True:
        shown = {n: "/".join(parts[n][-depth[n]:]) for n in uniq}
        groups: dict[str, list[str]] = {}
        for n, s in shown.items():
            groups.setdefault(s, []).append(n)
        grow = [n for g in groups.values() if len(g) > 1 for n in g
                if depth[n] < len(parts[n])]
        if not grow:
            return shown
        for n in grow:
            depth[n] += 1
