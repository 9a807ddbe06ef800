"""What the report shows, computed from run documents, stored predictions and the datasets.

* :func:`sample_measure`: one value per sample to rank the gallery by (the run's own per-sample
  values of the primary metric, else another metric's, else a ratio metric's ``num / den``,
  else -- for box predictions, whose AP has no per-sample decomposition -- an image-level AP50
  computed here, named ``image_AP50``).
* :func:`pr_curves`: precision-recall curves of box predictions at IoU 0.5 (greedy matching by
  score per class, as VOC/COCO), per class and over all classes.
* :func:`confusion`: the confusion matrix of single-label predictions (``target["label"]`` vs
  ``prediction["label"]``, or the arg-max of ``prediction["scores"]``).
* :func:`checkpoint_step`: the training step of a checkpoint, from its name or metadata.

These are report-side views for people; the official metrics stay those of the run document.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from remotesam.bench.api import BoxesPrediction, SceneLabel, decode_prediction
from remotesam.bench.reports.export import LoadedResult, SampleRecord

__all__ = ["Measure", "PRCurve", "checkpoint_step", "confusion", "pr_curves", "sample_measure"]


@dataclass
class Measure:
    """A per-sample value for ranking: ``values[sample_id]``, direction, and where it came from."""

    name: str
    higher_is_better: bool
    values: dict[str, float]
    source: str  # "run" (the run document) or "report" (computed here)


def sample_measure(loaded: LoadedResult) -> Measure | None:
    """The per-sample value the gallery and the comparison rank by (see the module docstring)."""
    res = loaded.result
    names = sorted(res.metrics, key=lambda n: not res.metrics[n].primary)
    for name in names:
        d = res.per_sample.get(name)
        if d:
            vals = {sid: float(v) for sid, v in zip(d["sample_ids"], d["values"])
                    if v is not None and math.isfinite(float(v))}
            return Measure(name, res.metrics[name].higher_is_better, vals, "run")
    for name in names:
        d = res.per_sample_ratio.get(name)
        if d:
            vals = {sid: float(n) / float(dd) for sid, n, dd in
                    zip(d["sample_ids"], d["num"], d["den"]) if float(dd) > 0}
            return Measure(f"{name} (per sample)", res.metrics[name].higher_is_better, vals,
                           "run")
    matches = _matches(loaded)
    if matches:
        vals = {}
        for sid, m in matches.items():
            ap = _image_ap50(m)
            if ap is not None:
                vals[sid] = ap
        return Measure("image_AP50", True, vals, "report")
    return None


def _matches(loaded: LoadedResult) -> dict[str, tuple[np.ndarray, np.ndarray, list[str],
                                                        dict[str, int]]]:
    """:func:`match_boxes` of every predicted sample, computed once per loaded result."""
    cached = getattr(loaded, "_box_matches", None)
    if cached is None:
        cached = {}
        for r in loaded.predicted:
            m = match_boxes(r)
            if m is not None:
                cached[r.sample.sample_id] = m
        loaded._box_matches = cached  # type: ignore[attr-defined]
    return cached


# ----------------------------------------------------------------------------- boxes


def box_prediction(pred: Mapping[str, Any] | None,
                   ) -> tuple[np.ndarray, np.ndarray, list[str], np.ndarray | None] | None:
    """``(boxes_xyxy (n, 4), scores (n,), labels, polygons (n, 8) | None)`` of a box
    prediction (``hbb`` and/or ``obb`` parts); None when ``pred`` holds no boxes."""
    typed = decode_prediction(pred)
    if not isinstance(typed, BoxesPrediction):
        return None
    part = typed.horizontal()
    polys = typed.obb.boxes if typed.hbb is None and typed.obb is not None else None
    return part.boxes, part.scores, list(part.labels), polys


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix of xyxy boxes ``a`` (n, 4) and ``b`` (m, 4)."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def match_boxes(record: SampleRecord, iou_thr: float = 0.5,
                ) -> tuple[np.ndarray, np.ndarray, list[str], dict[str, int]] | None:
    """Greedy matching of one image's predictions to its ground truth, per class.

    Returns ``(scores (n,), tp (n,) bool, labels (n,), n_gt per class)`` with predictions in
    descending score order, or None when the record holds no box prediction.
    """
    parts = box_prediction(record.prediction)
    if parts is None:
        return None
    boxes, scores, labels, _ = parts
    gt = np.asarray(record.sample.target.get("bbox_xyxy", []) or [], dtype=np.float64)
    gt = gt.reshape(-1, 4)
    gt_labels = [str(v) for v in record.sample.target.get("labels", [])]
    n_gt: dict[str, int] = {}
    for c in gt_labels:
        n_gt[c] = n_gt.get(c, 0) + 1
    order = np.argsort(-scores, kind="stable")
    ious = _iou(boxes, gt)
    used = np.zeros(len(gt), dtype=bool)
    tp = np.zeros(len(order), dtype=bool)
    if len(gt):
        gt_arr = np.array(gt_labels, dtype=object)
        for rank, i in enumerate(order):
            cand = np.where(~used & (gt_arr == labels[i]), ious[i], -1.0)
            j = int(np.argmax(cand))
            if cand[j] >= iou_thr:
                used[j] = True
                tp[rank] = True
    return scores[order], tp, [labels[i] for i in order], n_gt


def _ap(tp: np.ndarray, n_gt: int) -> float:
    """VOC all-point interpolated AP of a score-sorted tp array."""
    if n_gt == 0:
        return math.nan
    ctp = np.cumsum(tp)
    recall = ctp / n_gt
    precision = ctp / np.arange(1, len(tp) + 1)
    r = np.concatenate([[0.0], recall, [1.0]])
    p = np.concatenate([[0.0], precision, [0.0]])
    p = np.maximum.accumulate(p[::-1])[::-1]
    idx = np.nonzero(r[1:] != r[:-1])[0]
    return float(np.sum((r[idx + 1] - r[idx]) * p[idx + 1]))


def _image_ap50(m: tuple[np.ndarray, np.ndarray, list[str], dict[str, int]]) -> float | None:
    _, tp, labels, n_gt = m
    if not n_gt:
        return None
    aps = [_ap(tp[[lab == c for lab in labels]], n) for c, n in n_gt.items()]
    return 100.0 * float(np.mean(aps))


@dataclass
class PRCurve:
    """Precision and recall (``(n,)`` float arrays in [0, 1]) of one class (or ``"all"``)."""

    name: str
    recall: np.ndarray
    precision: np.ndarray
    ap50: float
    n_gt: int


def _curve(name: str, scores: np.ndarray, tp: np.ndarray, n_gt: int,
           max_points: int = 120) -> PRCurve | None:
    if n_gt == 0:
        return None
    order = np.argsort(-scores, kind="stable")
    tp = tp[order]
    ctp = np.cumsum(tp)
    recall = ctp / n_gt
    precision = ctp / np.arange(1, len(tp) + 1)
    ap = _ap(tp, n_gt)
    if len(recall) > max_points:
        keep = np.unique(np.linspace(0, len(recall) - 1, max_points).astype(int))
        recall, precision = recall[keep], precision[keep]
    return PRCurve(name, recall, precision, 100.0 * ap, n_gt)


def pr_curves(loaded: LoadedResult) -> list[PRCurve]:
    """PR curves at IoU 0.5: ``"all"`` (every class pooled) first, then one per class with
    ground truth, in class order. Empty for results without box predictions."""
    per: dict[str, tuple[list[float], list[bool]]] = {}
    n_gt: dict[str, int] = {}
    matches = _matches(loaded)
    seen = bool(matches)
    for m in matches.values():
        scores, tp, labels, counts = m
        for s, t, lab in zip(scores, tp, labels):
            sc, tt = per.setdefault(lab, ([], []))
            sc.append(float(s))
            tt.append(bool(t))
        for c, n in counts.items():
            n_gt[c] = n_gt.get(c, 0) + n
    if not seen:
        return []
    out = []
    all_s = np.array([s for sc, _ in per.values() for s in sc])
    all_t = np.array([t for _, tt in per.values() for t in tt], dtype=bool)
    total = _curve("all", all_s, all_t, sum(n_gt.values()))
    if total is not None:
        out.append(total)
    order = [c for c in loaded.classes if c in n_gt] + sorted(set(n_gt) - set(loaded.classes))
    for c in order:
        sc, tt = per.get(c, ([], []))
        curve = _curve(c, np.array(sc), np.array(tt, dtype=bool), n_gt[c])
        if curve is not None:
            out.append(curve)
    return out


# ----------------------------------------------------------------------------- labels


def predicted_label(pred: Mapping[str, Any] | None) -> str | None:
    """The single label of a classification prediction (``label``, else the top score)."""
    typed = decode_prediction(pred)
    if not isinstance(typed, SceneLabel):
        return None
    if typed.label is not None:
        return typed.label
    return typed.top() if typed.classes else None


def confusion(loaded: LoadedResult) -> tuple[list[str], np.ndarray] | None:
    """``(classes, matrix (K, K) int)`` with rows = ground truth, columns = prediction, for
    single-label results; None for other kinds."""
    pairs = []
    for r in loaded.predicted:
        gt = r.sample.target.get("label")
        if not isinstance(gt, str):
            return None
        pl = predicted_label(r.prediction)
        if pl is None:
            return None
        pairs.append((gt, pl))
    if not pairs:
        return None
    classes = [c for c in loaded.classes if any(c in p for p in pairs)]
    classes += sorted({c for p in pairs for c in p} - set(classes))
    index = {c: k for k, c in enumerate(classes)}
    mat = np.zeros((len(classes), len(classes)), dtype=np.int64)
    for gt, pl in pairs:
        mat[index[gt], index[pl]] += 1
    return classes, mat


# ----------------------------------------------------------------------------- sweeps

_STEP_PATTERNS = (
    re.compile(r"(?:^|[^a-z])(?:global_?)?step[_-]?(\d+)", re.I),
    re.compile(r"checkpoint[_-](\d+)", re.I),
    re.compile(r"(?:^|[^a-z])iter(?:ation)?[_-]?(\d+)", re.I),
    re.compile(r"(?:^|[^a-z])ep(?:och)?[_-]?(\d+)", re.I),
)


def checkpoint_step(name: str, metadata: Mapping[str, Any] | None = None,
                    ) -> tuple[float, str] | None:
    """The training step (or epoch) a checkpoint was saved at: ``(value, unit)``.

    Looks at ``metadata`` first (``step``/``global_step``/``epoch``), then the file name and
    its folders, innermost first: ``step_12000``, ``global_step12000``, ``checkpoint-12000``,
    ``iter_500``, ``ep3`` / ``epoch_3``. Returns None when nothing matches.
    """
    for key, unit in (("global_step", "step"), ("step", "step"), ("epoch", "epoch")):
        if metadata and isinstance(metadata.get(key), (int, float)):
            return float(metadata[key]), unit
    parts = [p for p in re.split(r"[\\/]", name) if p][::-1]
    for part in parts:
        stem = re.sub(r"\.(pth|pt|bin|safetensors|ckpt|json)$", "", part, flags=re.I)
        for k, pat in enumerate(_STEP_PATTERNS):
            m = pat.search(stem)
            if m:
                return float(m.group(1)), ("epoch" if k == 3 else "step")
    return None


def checkpoint_metadata(path: str) -> dict[str, Any]:
    """The ``__metadata__`` of a safetensors file's header (``{}`` for other files or when it
    cannot be read); only the header is read, never the tensors. ``step``, ``global_step``
    and ``epoch`` become floats (left out when they are not numbers)."""
    from remotesam.checkpoint import safetensors_metadata

    if not str(path).endswith(".safetensors"):
        return {}
    out: dict[str, Any] = {}
    for k, v in safetensors_metadata(path).items():
        try:
            out[k] = float(v) if k in ("step", "global_step", "epoch") else v
        except (TypeError, ValueError):
            continue
    return out


def order_checkpoints(names: Sequence[str],
                      metadata: Mapping[str, Mapping[str, Any]] | None = None,
                      ) -> tuple[list[str], str]:
    """Checkpoint names in sweep order and the x-axis unit (``"step"``, ``"epoch"`` or
    ``"index"`` when not every name carries one: then names with a step come first, in step
    order, the others after them in the given order). ``metadata[name]`` (e.g. from
    :func:`checkpoint_metadata`) is consulted first."""
    found = {n: checkpoint_step(n, (metadata or {}).get(n)) for n in names}
    steps = {n: v for n, v in found.items() if v is not None}
    known = sorted(steps, key=lambda n: steps[n][0])
    if len(steps) == len(found) and len({v[1] for v in steps.values()}) == 1:
        return known, next(iter(steps.values()))[1]
    # Not every name has a step: those that have one in step order, then the others.
    return known + [n for n in names if n not in steps], "index"
