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
                  "failures": [{"sample_id": str, "error": str}, ...],
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
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "SCHEMA",
    "CheckpointRef",
    "MetricValue",
    "RunDocument",
    "TaskResult",
    "latest_run",
    "list_runs",
    "runs_dir",
]

SCHEMA = "remotesam-bench/run/1"


@dataclass(frozen=True)
class CheckpointRef:
    """Identifies a checkpoint: display ``name``, ``path`` as given, ``sha256`` of the file."""

    name: str
    path: str
    sha256: str


@dataclass
class MetricValue:
    """One metric's value with its direction and optional 95% bootstrap interval."""

    value: float
    higher_is_better: bool = True
    primary: bool = False
    unit: str = "%"
    official: bool = True
    ci95: tuple[float, float] | None = None


@dataclass
class TaskResult:
    """Scores of one checkpoint on one (task, dataset, split)."""

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

    @property
    def key(self) -> tuple[str, str, str, str]:
        """``(checkpoint sha256, task, dataset, split)``."""
        return (self.checkpoint.sha256, self.task, self.dataset, self.split)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TaskResult:
        d = dict(d)
        d["checkpoint"] = CheckpointRef(**d["checkpoint"])
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
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(self.to_json(), encoding="utf-8")
        tmp.replace(path)
        return path

    @classmethod
    def from_json(cls, text: str, source: str = "<string>") -> RunDocument:
        try:
            d = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"{source}: not valid JSON ({e}); expected a remotesam-bench run document") from e
        if not isinstance(d, dict) or d.get("schema") != SCHEMA:
            found = d.get("schema") if isinstance(d, dict) else type(d).__name__
            raise ValueError(f"{source}: field 'schema' is {found!r}, expected {SCHEMA!r}")
        results = [TaskResult.from_dict(r) for r in d.get("results", [])]
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


def list_runs(results_dir: str | Path) -> list[RunDocument]:
    """Every run document under ``<results_dir>/runs``, oldest first (by ``created``, then id)."""
    docs = [RunDocument.load(p) for p in sorted(runs_dir(results_dir).glob("*.json"))]
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
