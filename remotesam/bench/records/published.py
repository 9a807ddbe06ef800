"""Published numbers of RemoteSAM and the models it was compared with, as data.

The numbers live in ``remotesam/data/published.json`` (shipped in the package), one record per
(model, task, dataset, split, metric) with the value in the metric's own unit, its direction,
the source table of the paper and a note where the paper is ambiguous. This module loads and
validates that file and matches its records to the columns of a user's results.

Matching (the comparison rule): a published number belongs beside one of our columns only when
it was measured on the same task, dataset, split and metric **and** under the same protocol.
Task names are compared exactly; dataset and metric names after normalisation (lower case,
everything but letters and digits removed, so ``"Prec@0.5"`` == ``"prec_0.5"``) and through
the alias lists in the file (per dataset, and per task for metrics, e.g. the RSVG table's
``AP50`` is our ``vg`` ``Acc@0.5``). Splits are compared exactly, and each record's split is the
one the paper evaluated (iSAID segmentation: ``val``, the only split with public masks; DOTA
detection: ``test-dev``, labels not public), never a guess that happens to match our default.
A record's ``protocol`` is ``"official"`` (the official RemoteSAM evaluation, which our
official metrics reproduce) unless the file says otherwise; ``"unstated"`` marks numbers with
no official code behind them (iSAID detection, OBB AP, DOTA test-dev scoring): :meth:`lookup`
returns them only when asked for that protocol. Model names go through the per-model
``aliases`` (the paper prints ``Qwen-VL-chat`` in Table 12 and ``Qwen-VL-Chat`` elsewhere).
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
    "OFFICIAL_PROTOCOL",
    "PublishedResult",
    "PublishedTable",
    "load_published",
    "normalise_model_name",
    "normalise_name",
]

SCHEMA = "remotesam-bench/published/1"

#: The protocol of a record that names none: the official RemoteSAM evaluation.
OFFICIAL_PROTOCOL = "official"
_REQUIRED: dict[str, type | tuple[type, ...]] = {
    "model": str,
    "task": str,
    "dataset": str,
    "split": str,
    "metric": str,
    "value": (int, float),
    "unit": str,
    "higher_is_better": bool,
    "source": str,
}


def normalise_name(name: str) -> str:
    """Lower-case ``name`` and drop everything but letters and digits (``"Acc@0.5"`` ->
    ``"acc05"``)."""
    return re.sub(r"[^a-z0-9]", "", name.lower())


def normalise_model_name(name: str) -> str:
    """Lower-case a model name and drop spaces, ``-``, ``_`` and ``.`` only: the other marks
    tell models apart (``"CMPC+"`` is not ``"CMPC"``; ``"Qwen-VL-chat"`` is ``"qwen vl chat"``)."""
    return re.sub(r"[\s\-_.]", "", name.lower())


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
        protocol: ``"official"`` (the official RemoteSAM evaluation, reproduced by the
            plugins' official metrics) or another tag such as ``"unstated"`` (no official code).
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
    protocol: str = OFFICIAL_PROTOCOL


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
        self._model_norm: dict[str, str] = {}
        spelled: dict[str, str] = {}  # normalised -> the name or alias that gave it

        def add(name: str, model: str) -> None:
            key = normalise_model_name(name)
            other = self._model_norm.setdefault(key, model)
            if other != model:
                raise ValueError(
                    f"model name {name!r} of {model!r} "
                    f"and {spelled[key]!r} of {other!r} are the same after normalisation "
                    f"({key!r}); rename one or drop the alias"
                )
            spelled.setdefault(key, name)

        for r in self.results:
            add(r.model, r.model)
        for model, info in self.models.items():
            add(model, model)
            for a in (info.get("aliases") or []) if isinstance(info, dict) else []:
                add(str(a), model)
        self._index: dict[tuple[str, str, str, str, str], list[PublishedResult]] = {}
        for r in self.results:
            key = (r.task, self.canonical_dataset(r.dataset), r.split,
                   self.canonical_metric(r.task, r.metric), r.protocol)
            self._index.setdefault(key, []).append(r)

    def canonical_dataset(self, name: str) -> str:
        """The published file's dataset name for one of ours (or ``name`` normalised)."""
        n = normalise_name(name)
        return self._ds_norm.get(n, n)

    def canonical_metric(self, task: str, name: str) -> str:
        """The published file's metric name for one of ours within ``task``."""
        n = normalise_name(name)
        return normalise_name(self._metric_norm.get((task, n), n))

    def canonical_model(self, name: str) -> str | None:
        """The file's model name for ``name`` or one of its aliases (case, spaces, ``-``, ``_``
        and ``.`` ignored: ``"qwen-vl-chat"`` -> ``"Qwen-VL-Chat"``; ``"CMPC+"`` stays
        ``"CMPC+"``); ``None`` when unknown."""
        return self._model_norm.get(normalise_model_name(name))

    def lookup(self, task: str, dataset: str, split: str, metric: str,
               models: Iterable[str] | None = None, *,
               protocol: str = OFFICIAL_PROTOCOL) -> list[PublishedResult]:
        """Published results comparable with one of our columns, in file order; ``[]`` when none.

        Comparable = same task, dataset, split, metric (after aliases) and ``protocol``: a
        column of an official metric asks for ``"official"`` (the default), so records whose
        protocol is ``"unstated"`` are never placed beside it. ``models`` may use aliases.
        """
        found = self._index.get(
            (task, self.canonical_dataset(dataset), split, self.canonical_metric(task, metric),
             protocol), [])
        if models is None:
            return list(found)
        wanted = {self.canonical_model(m) or m for m in models}
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
            note=str(rec.get("note", "")), protocol=_protocol(rec, f"{source}: results[{i}]"),
        ))
    try:
        return _table(doc, results)
    except ValueError as e:
        raise ValueError(f"{source}: {e}") from None


def _table(doc: dict[str, Any], results: list[PublishedResult]) -> PublishedTable:
    return PublishedTable(
        results=results,
        models=dict(doc.get("models", {})),
        dataset_aliases={k: list(v) for k, v in doc.get("datasets", {}).items()},
        metric_aliases={t: {m: list(a) for m, a in tab.items()}
                        for t, tab in doc.get("metric_aliases", {}).items()},
        notes=list(doc.get("notes", [])),
        source=str(doc.get("source", "")),
    )


def _protocol(rec: dict[str, Any], where: str) -> str:
    value = rec.get("protocol", OFFICIAL_PROTOCOL)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{where}.protocol is {value!r}, expected a non-empty string such as "
                         f"{OFFICIAL_PROTOCOL!r} or 'unstated'")
    return value.strip()


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
