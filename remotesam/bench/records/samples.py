"""Stored results read back with their samples: a task result of a run document, the
dataset's samples (through the task's adapter) and the predictions in the store.

The export (:mod:`remotesam.bench.reports.export`), the HTML report and the trackers' per-sample
tables all read results this way.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from remotesam.bench.api import Sample, TaskPlugin
from remotesam.bench.errors import InputError
from remotesam.bench.records.results import RunDocument, TaskResult

__all__ = [
    "LoadedResult",
    "SampleRecord",
    "checkpoint_folder",
    "load_result",
    "per_sample_values",
    "slug",
]


@dataclass
class SampleRecord:
    """One sample of a result: the sample, its stored prediction (or failure) and the run's
    per-sample metric values (``{name: value}`` or ``{name: {"num", "den"}}``)."""

    sample: Sample
    prediction: dict[str, Any] | None
    error: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)


@dataclass
class LoadedResult:
    """A :class:`TaskResult` with its samples and predictions read back.

    Attributes:
        run: the run document holding ``result``.
        result: the task result.
        plugin: an instance of the task's plugin (with the run's task options).
        classes: the dataset adapter's class names (may be empty).
        records: one per sample of the run's selection, in dataset order.
        category_ids: class name -> COCO category id (the dataset's own when it has a COCO
            json, else 1-based class order).
        ann_file: the dataset's COCO annotation file, when its adapter has one.
    """

    run: RunDocument
    result: TaskResult
    plugin: TaskPlugin
    classes: tuple[str, ...]
    records: list[SampleRecord]
    category_ids: dict[str, int] = field(default_factory=dict)
    ann_file: Path | None = None

    @property
    def predicted(self) -> list[SampleRecord]:
        return [r for r in self.records if r.prediction is not None]


def per_sample_values(result: TaskResult) -> dict[str, dict[str, Any]]:
    """``{sample_id: {metric: value | {"num", "den"}}}`` from the run document."""
    out: dict[str, dict[str, Any]] = {}
    for name, d in result.per_sample.items():
        for sid, v in zip(d.get("sample_ids", []), d.get("values", [])):
            out.setdefault(sid, {})[name] = _num(v)
    for name, d in result.per_sample_ratio.items():
        for sid, num, den in zip(d.get("sample_ids", []), d.get("num", []), d.get("den", [])):
            out.setdefault(sid, {})[name] = {"num": _num(num), "den": _num(den)}
    return out


def _num(v: Any) -> Any:
    return float(v) if isinstance(v, (int, float, str)) else v


def load_result(run: RunDocument, result: TaskResult, results_dir: str | Path, *,
                registry: Any = None, data_root: str | Path | None = None,
                dataset_roots: Mapping[str, str | Path] | None = None,
                store: Any = None) -> LoadedResult:
    """Read the samples of ``result`` with its plugin's adapter and its predictions from the store.

    Args:
        run, result: the run document and one of its results.
        results_dir: the results directory holding ``store.sqlite``.
        registry: task registry (default: installed entry points).
        data_root, dataset_roots: override the data locations recorded in the run.
        store: an open :class:`~remotesam.bench.records.store.ResultsStore` to reuse
            (default: opened read-only here and closed again).

    Raises:
        InputError: the task is unknown, the dataset missing or unreadable (the message names
            the path), or there is no store in ``results_dir``.
    """
    from remotesam.bench.api.datasets import locate_dataset, read_samples
    from remotesam.bench.api.registry import Registry
    from remotesam.bench.errors import PluginError, StoreError
    from remotesam.bench.records.identity import sample_fingerprints
    from remotesam.bench.records.store import PredictionKey, ResultsStore

    registry = registry or Registry()
    cfg_src = dict(run.provenance.get("config", {}))
    roots = dict(cfg_src.get("dataset_roots", {}) or {})
    roots.update({k: str(v) for k, v in (dataset_roots or {}).items()})
    task_options = cfg_src.get("task_options", {}) or {}
    limit = cfg_src.get("limit")
    try:
        plugin = registry.get(result.task)(dict(task_options.get(result.task, {})))
    except PluginError as e:
        raise InputError(f"run {run.run_id}: {e}") from e
    if result.dataset not in plugin.datasets:
        raise InputError(f"run {run.run_id}: task {result.task!r} has no dataset "
                         f"{result.dataset!r} any more")
    adapter_cls = plugin.datasets[result.dataset]
    root = locate_dataset(result.task, result.dataset, adapter_cls,
                          data_root if data_root is not None else cfg_src.get("data_root"), roots)
    adapter, samples = read_samples(result.task, result.dataset, adapter_cls, root, result.split,
                              (cfg_src.get("dataset_options", {}) or {}).get(
                                  f"{result.task}.{result.dataset}", {}))
    if limit is not None:
        samples = samples[:limit]
    own = store is None
    if own:
        try:
            store = ResultsStore(results_dir, readonly=True)
        except StoreError as e:
            raise InputError(str(e)) from e
    try:
        fps = sample_fingerprints(samples, store)
        key = PredictionKey(result.checkpoint.sha256, result.task, result.task_version,
                            result.dataset, result.split, result.settings_hash)
        preds = store.get_predictions(key, fingerprints=fps)
        failures = store.get_failures(key, fps)
    finally:
        if own:
            store.close()
    values = per_sample_values(result)
    failed_now = {f["sample_id"]: f.get("error", "") for f in result.failures}
    records = []
    for s in samples:
        pred = preds.get(s.sample_id)
        err = None if pred is not None else (failures.get(s.sample_id)
                                             or failed_now.get(s.sample_id)
                                             or "no prediction stored for this sample")
        records.append(SampleRecord(s, pred, err, values.get(s.sample_id, {})))
    classes = tuple(getattr(adapter_cls, "classes", ()) or ())
    ann = _ann_file(adapter)
    return LoadedResult(run, result, plugin, classes, records,
                        _category_ids(classes, records, ann), ann)


def _category_ids(classes: Sequence[str], records: Sequence[SampleRecord],
                  ann: Path | None) -> dict[str, int]:
    names = list(classes)
    for r in records:  # classes seen in targets or predictions but not in the adapter's list
        for name in list(r.sample.target.get("labels", []) or []):
            if isinstance(name, str) and name not in names:
                names.append(name)
    ids = {c: k + 1 for k, c in enumerate(names)}
    if ann is not None:
        try:
            doc = json.loads(Path(ann).read_text(encoding="utf-8"))
            cats = {str(c["name"]): int(c["id"]) for c in doc.get("categories", [])}
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            cats = {}
        norm = {_norm(k): v for k, v in cats.items()}
        if cats and all(_norm(c) in norm for c in names):
            ids = {c: norm[_norm(c)] for c in names}
    return ids


def _ann_file(adapter: Any) -> Path | None:
    """The adapter's COCO annotation file (``ann_file`` attribute), if it has one."""
    ann = getattr(adapter, "ann_file", None)
    return Path(ann) if ann is not None and Path(ann).is_file() else None


def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "x"


def checkpoint_folder(result: TaskResult) -> str:
    """``"<file stem>-<sha256[:8]>"``: the folder of a checkpoint's files in an export."""
    return f"{slug(Path(result.checkpoint.name).stem)}-{result.checkpoint.sha256[:8]}"


