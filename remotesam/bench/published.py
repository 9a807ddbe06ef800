"""Published numbers of RemoteSAM and the models it was compared with, as data.

The numbers live in ``remotesam/data/published.json`` (shipped in the package), one record per
(model, task, dataset, split, metric) with the value in the metric's own unit, its direction,
the source table of the paper and a note where the paper is ambiguous. This module loads and
validates that file and matches its records to the columns of a user's results.

Matching: task names are compared exactly; dataset and metric names after normalisation
(lower case, everything but letters and digits removed, so ``"Prec@0.5"`` == ``"prec_0.5"``)
and through the alias lists in the file (per dataset, and per task for metrics, e.g. the RSVG
table's ``AP50`` is our ``vg`` ``Acc@0.5``). Splits are compared exactly.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

__all__ = [
    "PublishedResult",
    "PublishedTable",
    "load_published",
    "normalise_name",
]

SCHEMA = "remotesam-bench/published/1"
_REQUIRED = {"model": str, "task": str, "dataset": str, "split": str, "metric": str,
             "value": (int, float), "unit": str, "higher_is_better": bool, "source": str}


def normalise_name(name: str) -> str:
    """Lower-case ``name`` and drop everything but letters and digits (``"Acc@0.5"`` -> ``"acc05"``)."""
    return re.sub(r"[^a-z0-9]", "", name.lower())


@dataclass(frozen=True)
class PublishedResult:
    """One published number.

    Attributes:
        model: model name as in the paper (``"RemoteSAM"``, ``"Falcon"``, ...).
        task, dataset, split, metric: our names (``"vg"``, ``"dior_rsvg"``, ``"test"``,
            ``"Acc@0.5"``).
        value: in the metric's own unit (``unit == "%"``: 0-100 scale).
        higher_is_better: direction.
        source: where it is printed (``"Table 5"``, ``"Fig. 1 radar"``).
        note: caveats (ambiguous split, value differs between tables, ...), or ``""``.
    """

    model: str
    task: str
    dataset: str
    split: str
    metric: str
    value: float
    unit: str
    higher_is_better: bool
    source: str
    note: str = ""


@dataclass
class PublishedTable:
    """All published results plus the alias tables used to match them to our names."""

    results: list[PublishedResult]
    models: dict[str, dict[str, Any]] = field(default_factory=dict)
    dataset_aliases: dict[str, list[str]] = field(default_factory=dict)
    metric_aliases: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    source: str = ""

    def __post_init__(self) -> None:
        self._ds_norm: dict[str, str] = {}
        for canon, aliases in self.dataset_aliases.items():
            for a in [canon, *aliases]:
                self._ds_norm[normalise_name(a)] = canon
        self._metric_norm: dict[tuple[str, str], str] = {}
        for task, table in self.metric_aliases.items():
            for canon, aliases in table.items():
                for a in [canon, *aliases]:
                    self._metric_norm[(task, normalise_name(a))] = canon
        self._index: dict[tuple[str, str, str, str], list[PublishedResult]] = {}
        for r in self.results:
            key = (r.task, self.canonical_dataset(r.dataset), r.split,
                   self.canonical_metric(r.task, r.metric))
            self._index.setdefault(key, []).append(r)

    def canonical_dataset(self, name: str) -> str:
        """The published file's dataset name for one of ours (or ``name`` normalised)."""
        n = normalise_name(name)
        return self._ds_norm.get(n, n)

    def canonical_metric(self, task: str, name: str) -> str:
        """The published file's metric name for one of ours within ``task``."""
        n = normalise_name(name)
        return normalise_name(self._metric_norm.get((task, n), n))

    def lookup(self, task: str, dataset: str, split: str, metric: str,
               models: Iterable[str] | None = None) -> list[PublishedResult]:
        """Published results for one of our columns, in file order; ``[]`` when none."""
        found = self._index.get(
            (task, self.canonical_dataset(dataset), split, self.canonical_metric(task, metric)), [])
        if models is None:
            return list(found)
        wanted = set(models)
        return [r for r in found if r.model in wanted]

    def model_names(self) -> list[str]:
        """Model names in order of first appearance, RemoteSAM first."""
        seen: dict[str, None] = {}
        for r in self.results:
            seen.setdefault(r.model, None)
        names = list(seen)
        return sorted(names, key=lambda m: (m != "RemoteSAM", m != "RemoteSAM-FT", names.index(m)))


def _parse(doc: Any, source: str) -> PublishedTable:
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
        found = doc.get("schema") if isinstance(doc, dict) else type(doc).__name__
        raise ValueError(f"{source}: field 'schema' is {found!r}, expected {SCHEMA!r}")
    raw = doc.get("results")
    if not isinstance(raw, list):
        raise ValueError(f"{source}: field 'results' must be a list of records")
    results = []
    for i, rec in enumerate(raw):
        if not isinstance(rec, dict):
            raise ValueError(f"{source}: results[{i}] must be an object, got {type(rec).__name__}")
        for key, typ in _REQUIRED.items():
            if key not in rec:
                raise ValueError(f"{source}: results[{i}] lacks field {key!r}")
            if not isinstance(rec[key], typ) or (typ is not bool and isinstance(rec[key], bool)):
                raise ValueError(
                    f"{source}: results[{i}].{key} is {rec[key]!r}, expected {typ}"
                )
        results.append(PublishedResult(
            model=rec["model"], task=rec["task"], dataset=rec["dataset"], split=rec["split"],
            metric=rec["metric"], value=float(rec["value"]), unit=rec["unit"],
            higher_is_better=rec["higher_is_better"], source=rec["source"],
            note=str(rec.get("note", "")),
        ))
    return PublishedTable(
        results=results,
        models=dict(doc.get("models", {})),
        dataset_aliases={k: list(v) for k, v in doc.get("datasets", {}).items()},
        metric_aliases={t: {m: list(a) for m, a in tab.items()}
                        for t, tab in doc.get("metric_aliases", {}).items()},
        notes=list(doc.get("notes", [])),
        source=str(doc.get("source", "")),
    )


@lru_cache(maxsize=1)
def _load_packaged() -> PublishedTable:
    text = resources.files("remotesam.data").joinpath("published.json").read_text("utf-8")
    return _parse(json.loads(text), "remotesam/data/published.json")


def load_published(path: str | Path | None = None) -> PublishedTable:
    """Load the published numbers (the packaged file, or ``path`` in the same format).

    Raises:
        ValueError: the file is not valid JSON or a record lacks a field / has a wrong type
            (the message names the file and the record index).
    """
    if path is None:
        return _load_packaged()
    p = Path(path)
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except OSError as e:
        raise ValueError(f"cannot read published-results file {p}: {e.strerror}") from e
    except json.JSONDecodeError as e:
        raise ValueError(f"{p}: not valid JSON ({e})") from e
    return _parse(doc, str(p))
