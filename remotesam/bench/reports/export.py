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

    <run_id>/<ckpt>-<sha8>/<task>.<dataset>.<split>.coco_gt.json        (the scored ground truth)
    <run_id>/<ckpt>-<sha8>/<task>.<dataset>.<split>.coco_eval.json      (how to reproduce it)

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

For a task whose plugin scores boxes with ``COCOeval`` (it has a ``coco_export(samples,
predictions)`` method, as ``det``), the results file holds exactly what the harness scored:
the official ``int()``-truncated ``[x, y, w, h]`` boxes, the image ids it scored; beside it
``coco_gt.json`` is the ground truth it scored (same category ids) and ``coco_eval.json`` says
how to get the harness's number with plain pycocotools: ``iouType``, ``params.maxDets`` (DOTA
keeps every detection, so its limit is set above the largest per-image count, not COCO's
100), the category map, which ``stats`` entry is which metric and the run's value::

    gt = COCO("det.dior.test.coco_gt.json")   # or the dataset's own json for DIOR
    ev = COCOeval(gt, gt.loadRes("det.dior.test.coco_results.json"), "bbox")
    ev.params.maxDets = [1, 10, 100]          # coco_eval.json "params"
    ev.evaluate(); ev.accumulate(); ev.summarize()
    100 * ev.stats[1]                         # == the run's mAP50

Samples are read again with the plugin's dataset adapter, from the data roots, splits and
options recorded in the run document's provenance; a stored prediction is only used while its
sample's input fingerprint is unchanged (as ``score`` does).
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from remotesam.bench.api import BoxesPrediction, Sample, Scores, TaskPlugin, decode_prediction
from remotesam.bench.api.contract import json_default
from remotesam.bench.errors import InputError
from remotesam.bench.records.results import RunDocument, TaskResult
from remotesam.bench.records.samples import (
    LoadedResult,
    SampleRecord,
    checkpoint_folder,
    load_result,
    per_sample_values,
    slug,
)
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


# ----------------------------------------------------------------------------- writing


def _dumps(obj: Any) -> str:
    return json.dumps(obj, default=json_default, allow_nan=True, ensure_ascii=False)


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


def scored_coco(loaded: LoadedResult) -> dict[str, Any] | None:
    """What the plugin scored with ``COCOeval``, as COCO files, or None when the plugin does
    not score with it (no ``coco_export`` method, or no prediction).

    Returns:
        the plugin's ``coco_export`` dict with category ids mapped to ``loaded.category_ids``
        (the dataset json's ids where it has one) in both ``gt`` and ``results``.
    """
    export = getattr(loaded.plugin, "coco_export", None)
    recs = loaded.predicted
    if export is None or not recs:
        return None
    out = dict(export([r.sample for r in recs], [r.prediction for r in recs]))
    classes = list(out["classes"])
    for name in classes:
        loaded.category_ids.setdefault(name, len(loaded.category_ids) + 1)
    remap = {k + 1: loaded.category_ids[c] for k, c in enumerate(classes)}
    gt = dict(out["gt"])
    gt["categories"] = [{"id": remap[k + 1], "name": c} for k, c in enumerate(classes)]
    gt["annotations"] = [dict(a, category_id=remap[a["category_id"]]) for a in gt["annotations"]]
    out["gt"] = gt
    out["results"] = [dict(d, category_id=remap[d["category_id"]]) for d in out["results"]]
    return out


def _coco_eval_sidecar(loaded: LoadedResult, scored: Mapping[str, Any], stem: str
                       ) -> dict[str, Any]:
    res = loaded.result
    md = int(scored["max_dets"])
    metrics = {k: (None if not math.isfinite(m.value) else m.value)
               for k, m in res.metrics.items() if k in ("mAP50", "mAP")}
    ann = loaded.ann_file
    scored_ids = {im["id"] for im in scored["gt"]["images"]}
    same_ids = ann is not None and _annotated_image_ids(ann) == scored_ids
    return {
        "schema": "remotesam-bench/coco-eval/1",
        "what": f"{res.task}/{res.dataset}:{res.split}, checkpoint {res.checkpoint.name}",
        "ground_truth": f"{stem}.coco_gt.json",
        # the dataset's own json scores the same only when every annotated image was scored
        # under its own id (not a --limit subset, no failed sample, image_ids=dataset)
        "dataset_ground_truth": str(ann) if same_ids else None,
        "results": f"{stem}.coco_results.json",
        "iouType": "bbox",
        "params": {"maxDets": [1, 10, md], "catIds": "all (default)",
                   "areaRng": "default (only the 'all' range is reported)"},
        "max_dets_note": ("COCO's 100 detections per image" if md == 100 else
                          f"{md} = at least the largest number of detections in one image: "
                          "the harness keeps every detection (DOTA protocol), so COCO's default "
                          "100 would cut some"),
        "category_ids": {c: loaded.category_ids[c] for c in scored["classes"]},
        "stats": {"mAP50": "100 * COCOeval.stats[1] (mean of the per-class AP50 over classes "
                           "with ground truth)",
                  "mAP": ("100 * the mean of COCOeval.eval['precision'][:, :, :, 0, -1] over its "
                          "entries > -1 (equal to 100 * stats[0] when maxDets[-1] is 100; "
                          "summarize() reads maxDets=100 for stats[0])")},
        "harness_metrics": metrics,
        "reproducible_with_plain_cocoeval": bool(scored["plain_cocoeval"]),
        "notes": dict(scored.get("notes", {})),
        "python": ("from pycocotools.coco import COCO; from pycocotools.cocoeval import "
                   f"COCOeval; gt = COCO('{stem}.coco_gt.json'); ev = COCOeval(gt, "
                   f"gt.loadRes('{stem}.coco_results.json'), 'bbox'); "
                   f"ev.params.maxDets = [1, 10, {md}]; ev.evaluate(); ev.accumulate(); "
                   "ev.summarize(); print(100 * ev.stats[1])"),
    }


def _annotated_image_ids(ann: Path) -> set[Any] | None:
    try:
        doc = json.loads(Path(ann).read_text(encoding="utf-8"))
        return {a["image_id"] for a in doc["annotations"]}
    except (OSError, ValueError, KeyError, TypeError):
        return None


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
    runs = list(runs)
    if tasks:
        known = sorted({r.task for run in runs for r in run.results})
        unknown = sorted(set(tasks) - set(known))
        if unknown:
            raise InputError(f"--tasks: no results for task(s) {', '.join(unknown)} in the "
                             f"selected run(s); tasks in them: {', '.join(known) or 'none'}")
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
                folder = out / slug(run.run_id) / checkpoint_folder(res)
                stem = f"{slug(res.task)}.{slug(res.dataset)}.{slug(res.split)}"
                files = {"jsonl": _write_jsonl(folder / f"{stem}.jsonl", loaded)}
                scored = scored_coco(loaded)
                coco = scored["results"] if scored is not None else coco_results(loaded)
                if coco is not None:
                    files["coco_results"] = _write_text(folder / f"{stem}.coco_results.json",
                                                        _dumps(coco))
                if scored is not None:
                    files["coco_gt"] = _write_text(folder / f"{stem}.coco_gt.json",
                                                   _dumps(scored["gt"]))
                    files["coco_eval"] = _write_text(
                        folder / f"{stem}.coco_eval.json",
                        json.dumps(_coco_eval_sidecar(loaded, scored, stem), indent=1))
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
