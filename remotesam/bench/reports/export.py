"""Per-sample export: every sample's target, stored prediction and per-sample metrics as files.

Predictions live in ``<results>/store.sqlite`` as JSON text under their cache key; this module
reads them back beside the samples they belong to, so users can inspect them and re-score them
with their own tools::

    remotesam-bench export [--results-dir results] [--run RUN ...] --out DIR
    remotesam-bench run ... --log-samples          # the same, into <results>/samples/

Layout of ``DIR``::

    manifest.json                       # what was exported, with each result's context
    <run_id>/<ckpt>-<sha8>/<task>.<dataset>.<split>.jsonl
    <run_id>/<ckpt>-<sha8>/<task>.<dataset>.<split>.coco_results.json   (box predictions)

One JSONL line per sample of the run's selection (``--limit`` subsets stay subsets)::

    {"sample_id": str, "image": str (path), "target": {...}, "meta": {...},
     "prediction": {...} | null,      # as the plugin returned it (masks stay COCO RLE)
     "failed": str | null,            # the error of a failed sample (prediction is null)
     "metrics": {name: float | {"num": float, "den": float}}}   # the run's per-sample values

``prediction`` is exactly what :meth:`TaskPlugin.score` consumed, so
:func:`rescore_jsonl` (plugin ``score()`` on the exported samples and predictions) reproduces
the run's metrics. COCO results files are lists of ``{"image_id", "category_id", "bbox": [x, y,
w, h] (absolute pixels, float), "score"}`` for the horizontal boxes (the envelope of oriented
ones when only those exist); image ids are the dataset's own (``meta["image_id"]``) or the
1-based sample order, category ids those of the dataset's COCO json when it has one, else the
1-based position in the plugin's class list (both maps are in the manifest).

Samples are read again with the plugin's dataset adapter, from the data roots, splits and
options recorded in the run document's provenance; a stored prediction is only used while its
sample's input fingerprint is unchanged (as ``score`` does).
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from remotesam.bench.api import BoxesPrediction, Sample, Scores, TaskPlugin, decode_prediction
from remotesam.bench.api.contract import json_default
from remotesam.bench.errors import InputError
from remotesam.bench.records.results import RunDocument, TaskResult
from remotesam.fileio import write_text_atomic

__all__ = [
    "LoadedResult",
    "SampleRecord",
    "export_runs",
    "load_result",
    "per_sample_values",
    "read_jsonl",
    "rescore_jsonl",
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
    """

    run: RunDocument
    result: TaskResult
    plugin: TaskPlugin
    classes: tuple[str, ...]
    records: list[SampleRecord]
    category_ids: dict[str, int] = field(default_factory=dict)

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
    return LoadedResult(run, result, plugin, classes, records,
                        _category_ids(adapter, classes, records))


def _category_ids(adapter: Any, classes: Sequence[str], records: Sequence[SampleRecord],
                  ) -> dict[str, int]:
    names = list(classes)
    for r in records:  # classes seen in targets or predictions but not in the adapter's list
        for name in list(r.sample.target.get("labels", []) or []):
            if isinstance(name, str) and name not in names:
                names.append(name)
    ids = {c: k + 1 for k, c in enumerate(names)}
    ann = _ann_file(adapter)
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


# ----------------------------------------------------------------------------- writing


def _dumps(obj: Any) -> str:
    return json.dumps(obj, default=json_default, allow_nan=True, ensure_ascii=False)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "x"


def checkpoint_folder(result: TaskResult) -> str:
    """``"<file stem>-<sha256[:8]>"``: the folder of a checkpoint's files in an export."""
    return f"{_slug(Path(result.checkpoint.name).stem)}-{result.checkpoint.sha256[:8]}"


def _box_parts(pred: Mapping[str, Any]) -> tuple[list[list[float]], list[float], list[str]] | None:
    """Horizontal boxes of a box prediction (``hbb``, else the envelopes of ``obb``; see
    :class:`~remotesam.bench.api.BoxesPrediction`); None for any other prediction."""
    typed = decode_prediction(pred)
    if not isinstance(typed, BoxesPrediction):
        return None
    part = typed.horizontal()
    return part.boxes.tolist(), part.scores.tolist(), list(part.labels)


def coco_results(loaded: LoadedResult) -> list[dict[str, Any]] | None:
    """COCO detection results (``bbox`` as ``[x, y, w, h]``) of a box task; None for others."""
    out: list[dict[str, Any]] = []
    any_boxes = False
    for k, rec in enumerate(loaded.records):
        if rec.prediction is None:
            continue
        parts = _box_parts(rec.prediction)
        if parts is None:
            continue
        any_boxes = True
        image_id = rec.sample.meta.get("image_id", k + 1)
        for box, score, label in zip(*parts):
            cat = loaded.category_ids.get(label)
            if cat is None:
                cat = len(loaded.category_ids) + 1
                loaded.category_ids[label] = cat
            x1, y1, x2, y2 = box
            out.append({"image_id": image_id, "category_id": cat,
                        "bbox": [x1, y1, x2 - x1, y2 - y1], "score": score})
    return out if any_boxes else None


def _context(result: TaskResult) -> dict[str, Any]:
    from remotesam.bench.reports.leaderboard import is_subset, is_synthetic

    return {"synthetic": is_synthetic(result), "subset": is_subset(result),
            "n_total": result.n_total, "n_evaluated": result.n_evaluated,
            "n_failed": result.n_failed}


def export_runs(runs: Iterable[RunDocument], results_dir: str | Path, out: str | Path, *,
                registry: Any = None, tasks: Sequence[str] | None = None,
                data_root: str | Path | None = None,
                dataset_roots: Mapping[str, str | Path] | None = None) -> list[Path]:
    """Write the per-sample files of ``runs`` under ``out`` (see the module docstring).

    Returns:
        The files written (JSONL and COCO results), then ``manifest.json``.

    Raises:
        InputError: a dataset cannot be read again, no store, or ``out`` is not writable.
    """
    from remotesam.bench.records.store import ResultsStore

    out = Path(out)
    written: list[Path] = []
    manifest: dict[str, Any] = {"schema": "remotesam-bench/export/1", "runs": []}
    try:
        store = ResultsStore(results_dir, readonly=True)
    except Exception as e:  # StoreError: a missing store is an input error here
        raise InputError(str(e)) from e
    try:
        for run in runs:
            entry: dict[str, Any] = {"run_id": run.run_id, "created": run.created, "results": []}
            for res in run.results:
                if tasks and res.task not in tasks:
                    continue
                loaded = load_result(run, res, results_dir, registry=registry,
                                     data_root=data_root, dataset_roots=dataset_roots,
                                     store=store)
                folder = out / _slug(run.run_id) / checkpoint_folder(res)
                stem = f"{_slug(res.task)}.{_slug(res.dataset)}.{_slug(res.split)}"
                files = {"jsonl": _write_jsonl(folder / f"{stem}.jsonl", loaded)}
                coco = coco_results(loaded)
                if coco is not None:
                    files["coco_results"] = _write_text(folder / f"{stem}.coco_results.json",
                                                        _dumps(coco))
                written += list(files.values())
                entry["results"].append({
                    "checkpoint": dataclasses.asdict(res.checkpoint), "task": res.task,
                    "task_version": res.task_version, "dataset": res.dataset,
                    "split": res.split, "context": _context(res),
                    "metrics": {k: (None if not math.isfinite(m.value) else m.value)
                                for k, m in res.metrics.items()},
                    "files": {k: str(p.relative_to(out)) for k, p in files.items()},
                    **({"category_ids": loaded.category_ids} if coco is not None else {}),
                })
            manifest["runs"].append(entry)
    finally:
        store.close()
    written.append(_write_text(out / "manifest.json", json.dumps(manifest, indent=1)))
    return written


def _write_text(path: Path, text: str) -> Path:
    try:
        write_text_atomic(path, text)
    except OSError as e:
        raise InputError(f"cannot write {path}: {e.strerror}; pass --out with a writable "
                         "folder") from e
    return path


def _write_jsonl(path: Path, loaded: LoadedResult) -> Path:
    lines = []
    for rec in loaded.records:
        s = rec.sample
        lines.append(_dumps({"sample_id": s.sample_id, "image": str(s.image),
                             "target": dict(s.target), "meta": dict(s.meta),
                             "prediction": rec.prediction,
                             "failed": None if rec.prediction is not None else rec.error,
                             "metrics": rec.metrics}))
    return _write_text(path, "\n".join(lines) + ("\n" if lines else ""))


# ----------------------------------------------------------------------------- reading


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """The records of an exported JSONL file.

    Raises:
        ValueError: unreadable file or a line that is not a JSON object (names file and line).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ValueError(f"cannot read {path}: {e.strerror}") from e
    out = []
    for i, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}:{i}: not valid JSON ({e.msg})") from e
        if not isinstance(rec, dict) or "sample_id" not in rec:
            raise ValueError(f"{path}:{i}: expected an object with 'sample_id'")
        out.append(rec)
    return out


def rescore_jsonl(path: str | Path, plugin: TaskPlugin) -> Scores:
    """Score an exported JSONL file with ``plugin.score`` (the samples that have a prediction)."""
    recs = [r for r in read_jsonl(path) if r.get("prediction") is not None]
    samples = [Sample(sample_id=r["sample_id"], image=r["image"], target=r.get("target", {}),
                      meta=r.get("meta", {})) for r in recs]
    return plugin.score(samples, [r["prediction"] for r in recs])
