"""Detection metrics: COCO box AP per class (pycocotools or faster-coco-eval) and polygon AP.

Functional cores, numpy in / floats out.

* :func:`coco_bbox_ap` runs COCO ``bbox`` evaluation once over all classes and reads, per
  class, exactly what the official ``DET.py`` prints when it runs ``COCOeval`` with
  ``params.catIds=[classindex]`` (COCO evaluates categories independently, so one run over all
  categories gives the same per-class numbers as one run per class; the tests check this).
  The caller's image ids are used as they are (COCO breaks score ties across images by image
  id, so renumbered ids would rank ties differently from ``COCOeval`` on the original file);
  ``iscrowd`` objects are passed as COCO crowd regions (ignored, IoU over the detection's
  area), and the per-image detection limit is ``maxDets=100`` unless the caller lifts it.
* :func:`polygon_ap` is a re-implementation of the same COCO matching/accumulation
  (greedy by score, 101-point interpolated precision, ``max_dets`` (100 or none), ignore flags)
  with the IoU of oriented 4-point polygons, for DOTA OBB AP50. On axis-aligned rectangles it equals
  pycocotools' ``bbox`` AP (tested).

Boxes are ``xyxy`` absolute pixels unless a name says ``xywh``; polygons are ``(n, 8)``
``[x0, y0, x1, y1, x2, y2, x3, y3]``.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

__all__ = [
    "COCO_BACKENDS",
    "COCO_MAX_DETS",
    "APResult",
    "coco_bbox_ap",
    "coco_bbox_inputs",
    "polygon_ap",
    "polygon_iou_matrix",
]

COCO_BACKENDS = ("pycocotools", "faster-coco-eval")

#: COCO's detections-per-image limit (``params.maxDets[-1]``).
COCO_MAX_DETS = 100

_IOU_THRS = np.linspace(0.5, 0.95, int(np.round((0.95 - 0.5) / 0.05)) + 1, endpoint=True)
_REC_THRS = np.linspace(0.0, 1.00, int(np.round((1.00 - 0.0) / 0.01)) + 1, endpoint=True)


@dataclass
class APResult:
    """Per-class and overall AP, as fractions in [0, 1] (NaN where a class has no ground truth).

    Attributes:
        classes: class names, in the order of the arrays.
        ap50: ``(K,)`` AP at IoU 0.5 (area all, maxDets 100): what ``summarize()`` prints second.
        ap: ``(K,)`` AP averaged over IoU 0.50:0.05:0.95 (``summarize()``'s first line), or NaN
            when only IoU 0.5 was evaluated.
        ap75: ``(K,)`` AP at IoU 0.75 (NaN when not evaluated).
        n_gt: ``(K,)`` number of non-ignored ground-truth objects per class.
        overall_ap: COCO mAP@[.5:.95] over all classes (``summarize()`` over all categories).
        overall_ap50: COCO AP50 over all classes.
        stats: the 12 ``summarize()`` numbers over all classes (-1 kept; only the "all" area
            range is evaluated, so the small/medium/large entries are -1).
    """

    classes: tuple[str, ...]
    ap50: np.ndarray
    ap: np.ndarray
    ap75: np.ndarray
    n_gt: np.ndarray
    overall_ap: float
    overall_ap50: float
    stats: list[float] = field(default_factory=list)

    @property
    def mean_ap50(self) -> float:
        """Plain mean of the per-class AP50 over classes with ground truth (NaN if none)."""
        v = self.ap50[~np.isnan(self.ap50)]
        return float(v.mean()) if v.size else float("nan")

    def table(self) -> list[dict[str, Any]]:
        """Per-class rows ``{"class", "AP50", "AP", "AP75", "n_gt"}`` in percent (JSON-ready)."""
        def pct(x: float) -> float | None:
            return None if np.isnan(x) else round(float(x) * 100.0, 6)

        return [
            {"class": c, "AP50": pct(self.ap50[k]), "AP": pct(self.ap[k]),
             "AP75": pct(self.ap75[k]), "n_gt": int(self.n_gt[k])}
            for k, c in enumerate(self.classes)
        ]  # fmt: skip


def _mean_valid(a: np.ndarray) -> float:
    v = a[a > -1]
    return float(np.mean(v)) if v.size else float("nan")


def _coco_gt_dict(
    image_ids: Sequence[int],
    gt_boxes: dict[int, np.ndarray],
    gt_labels: dict[int, np.ndarray],
    gt_ignore: dict[int, np.ndarray] | None,
    num_classes: int,
    gt_crowd: dict[int, np.ndarray] | None = None,
    gt_area: dict[int, np.ndarray] | None = None,
    names: Sequence[str] | None = None,
) -> dict[str, Any]:
    anns = []
    aid = 1
    for iid in image_ids:
        boxes = gt_boxes.get(iid)
        if boxes is None:
            continue
        labels = gt_labels[iid]
        ign = gt_ignore.get(iid) if gt_ignore else None
        crowd = gt_crowd.get(iid) if gt_crowd else None
        area = gt_area.get(iid) if gt_area else None
        for j in range(len(boxes)):
            x1, y1, x2, y2 = (float(v) for v in boxes[j])
            w, h = x2 - x1, y2 - y1
            ann = {"id": aid, "image_id": int(iid), "category_id": int(labels[j]) + 1,
                   "bbox": [x1, y1, w, h],
                   "area": float(area[j]) if area is not None else w * h,
                   "iscrowd": int(bool(crowd[j])) if crowd is not None else 0}  # fmt: skip
            if ign is not None and bool(ign[j]):
                ann["_difficult_ignore"] = 1
            anns.append(ann)
            aid += 1
    return {
        "images": [{"id": int(i)} for i in image_ids],
        "annotations": anns,
        "categories": [{"id": k + 1, "name": str(names[k]) if names else str(k + 1)}
                       for k in range(num_classes)],
    }


def _uncapped(det_image_ids: np.ndarray) -> int:
    """A per-image detection limit that cuts nothing: the largest per-image count (>= 100)."""
    ids = np.asarray(det_image_ids).reshape(-1)
    most = int(np.unique(ids, return_counts=True)[1].max()) if ids.size else 0
    return max(COCO_MAX_DETS, most)


def coco_bbox_ap(
    image_ids: Sequence[int],
    gt_boxes: dict[int, np.ndarray],
    gt_labels: dict[int, np.ndarray],
    det_image_ids: np.ndarray,
    det_boxes_xywh: np.ndarray,
    det_scores: np.ndarray,
    det_labels: np.ndarray,
    classes: Sequence[str],
    *,
    gt_ignore: dict[int, np.ndarray] | None = None,
    gt_crowd: dict[int, np.ndarray] | None = None,
    gt_area: dict[int, np.ndarray] | None = None,
    max_dets: int | None = COCO_MAX_DETS,
    backend: str = "pycocotools",
) -> APResult:
    """COCO ``bbox`` AP per class.

    Args:
        image_ids: the evaluated images (ints; images without any GT still count for FPs).
        gt_boxes: image id -> ``(n, 4)`` xyxy ground truth.
        gt_labels: image id -> ``(n,)`` int class index into ``classes``.
        det_image_ids, det_boxes_xywh, det_scores, det_labels: detections, flat, ``(N,)``,
            ``(N, 4)`` COCO ``[x, y, w, h]``, ``(N,)``, ``(N,)`` class index.
        classes: class names (category id = index + 1).
        gt_ignore: image id -> ``(n,)`` bool; ignored objects neither count as misses nor make
            matched detections false positives (DOTA "difficult"). pycocotools backend only.
        gt_crowd: image id -> ``(n,)`` bool ``iscrowd`` flags, passed to COCO as they are:
            a crowd object is an ignore region and its IoU is ``intersection / detection
            area`` (pycocotools semantics), so several detections may fall in one crowd.
        gt_area: image id -> ``(n,)`` the annotations' own ``area`` (COCO's area ranges read
            it); default ``w * h``.
        max_dets: detections kept per (image, class), highest scores first: COCO's 100 by
            default; ``None`` keeps all (DOTA has no such cap). ``summarize()``'s
            ``maxDets=100`` entries then use that larger limit.
        backend: ``"pycocotools"`` (reference) or ``"faster-coco-eval"`` (C++; same numbers,
            tested to 1e-6).

    Raises:
        ValueError: unknown backend, or ``gt_ignore`` with the faster-coco-eval backend.
        ImportError: faster-coco-eval requested but not installed (names the extra).
    """
    if backend not in COCO_BACKENDS:
        raise ValueError(f"unknown COCO backend {backend!r}; expected one of {COCO_BACKENDS}")
    has_ignore = gt_ignore is not None and any(np.any(v) for v in gt_ignore.values())
    if has_ignore and backend != "pycocotools":
        raise ValueError(
            "ignored (difficult) ground truth is only supported by the pycocotools backend; "
            "use coco_backend=pycocotools or difficult=keep"
        )
    K = len(classes)
    gt, dets, max_dets = coco_bbox_inputs(
        image_ids, gt_boxes, gt_labels, det_image_ids, det_boxes_xywh, det_scores, det_labels,
        classes, gt_ignore=gt_ignore, gt_crowd=gt_crowd, gt_area=gt_area, max_dets=max_dets)
    sink = io.StringIO()
    with contextlib.redirect_stdout(sink):
        if backend == "pycocotools":
            E = _run_pycocotools(gt, dets, int(max_dets))
        else:
            E = _run_faster(gt, dets, int(max_dets))
    precision = np.asarray(E["precision"])  # [T, R, K, A, M]
    a_all, m_last = 0, -1
    ap50 = np.array([_mean_valid(precision[0, :, k, a_all, m_last]) for k in range(K)])
    ap = np.array([_mean_valid(precision[:, :, k, a_all, m_last]) for k in range(K)])
    t75 = int(np.argmin(np.abs(_IOU_THRS - 0.75)))
    ap75 = np.array([_mean_valid(precision[t75, :, k, a_all, m_last]) for k in range(K)])
    n_gt = np.zeros(K, dtype=np.int64)
    for a in gt["annotations"]:
        if not a.get("_difficult_ignore") and not a["iscrowd"]:
            n_gt[a["category_id"] - 1] += 1
    return APResult(
        classes=tuple(classes), ap50=ap50, ap=ap, ap75=ap75, n_gt=n_gt,
        overall_ap=_mean_valid(precision[:, :, :, a_all, m_last]),
        overall_ap50=_mean_valid(precision[0, :, :, a_all, m_last]),
        stats=[float(s) for s in E.get("stats", [])],
    )  # fmt: skip


def coco_bbox_inputs(
    image_ids: Sequence[int],
    gt_boxes: dict[int, np.ndarray],
    gt_labels: dict[int, np.ndarray],
    det_image_ids: np.ndarray,
    det_boxes_xywh: np.ndarray,
    det_scores: np.ndarray,
    det_labels: np.ndarray,
    classes: Sequence[str],
    *,
    gt_ignore: dict[int, np.ndarray] | None = None,
    gt_crowd: dict[int, np.ndarray] | None = None,
    gt_area: dict[int, np.ndarray] | None = None,
    max_dets: int | None = COCO_MAX_DETS,
) -> tuple[dict[str, Any], list[dict[str, Any]], int]:
    """The COCO ground truth, results and per-image limit that :func:`coco_bbox_ap` evaluates
    (arguments as there).

    Returns:
        ``(gt, dets, max_dets)``: a COCO ground-truth dict (category id = class index + 1,
        named; an ignored object carries ``"_difficult_ignore": 1``, which plain ``COCOeval``
        does not read), the results list (``bbox`` ``[x, y, w, h]`` floats as given), and the
        ``maxDets`` that cuts what the harness cuts (``None`` resolved to a limit that cuts
        nothing).
    """
    image_ids = sorted(int(i) for i in image_ids)
    gt = _coco_gt_dict(image_ids, gt_boxes, gt_labels, gt_ignore, len(classes), gt_crowd,
                       gt_area, names=classes)
    if max_dets is None:
        max_dets = _uncapped(det_image_ids)
    elif int(max_dets) < 1:
        raise ValueError(f"max_dets must be >= 1 or None, got {max_dets!r}")
    dets = [
        {"image_id": int(det_image_ids[i]), "category_id": int(det_labels[i]) + 1,
         "bbox": [float(v) for v in det_boxes_xywh[i]], "score": float(det_scores[i])}
        for i in range(len(det_scores))
    ]  # fmt: skip
    return gt, dets, int(max_dets)


def _run_pycocotools(gt: dict[str, Any], dets: list[dict[str, Any]], max_dets: int
                     ) -> dict[str, Any]:
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    class _IgnoringCOCOeval(COCOeval):
        # pycocotools derives gt['ignore'] from iscrowd only; re-apply the difficult flag.
        def _prepare(self) -> None:
            super()._prepare()
            for gts in self._gts.values():
                for g in gts:
                    if g.get("_difficult_ignore"):
                        g["ignore"] = 1

    coco_gt = COCO()
    coco_gt.dataset = gt  # built fresh by the caller: no copy needed
    coco_gt.createIndex()
    coco_dt = _load_res(COCO, coco_gt, dets)
    ev = _IgnoringCOCOeval(coco_gt, coco_dt, "bbox")
    _area_all_only(ev, max_dets)
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
    return {"precision": ev.eval["precision"], "stats": list(ev.stats)}


def _area_all_only(ev: Any, max_dets: int = 100) -> None:
    # Only the "all" area range is reported; evaluating small/medium/large as well would cost 4x
    # (areas are evaluated independently, so the "all" numbers are unchanged; summarize()
    # prints -1 for the other ranges).
    ev.params.areaRng = [ev.params.areaRng[0]]
    ev.params.areaRngLbl = [ev.params.areaRngLbl[0]]
    ev.params.maxDets = [1, 10, int(max_dets)]


def _load_res(coco_cls: Any, coco_gt: Any, dets: list[dict[str, Any]]) -> Any:
    if dets:
        return coco_gt.loadRes(dets)
    empty = coco_cls()
    empty.dataset = {"images": list(coco_gt.dataset["images"]),
                     "categories": [dict(c) for c in coco_gt.dataset["categories"]],
                     "annotations": []}  # fmt: skip
    empty.createIndex()
    return empty


def _run_faster(gt: dict[str, Any], dets: list[dict[str, Any]], max_dets: int) -> dict[str, Any]:
    try:
        from faster_coco_eval import COCO as FCOCO
        from faster_coco_eval import COCOeval_faster
    except ImportError as e:
        raise ImportError(
            "coco_backend=faster-coco-eval needs the 'faster-coco-eval' package: "
            "pip install 'remotesam-bench[fast]'"
        ) from e
    coco_gt = FCOCO(gt)
    coco_dt = coco_gt.loadRes(dets) if dets else _load_res(FCOCO, coco_gt, [])
    ev = COCOeval_faster(coco_gt, coco_dt, "bbox", print_function=lambda *a, **k: None)
    _area_all_only(ev, max_dets)
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
    return {"precision": ev.eval["precision"], "stats": list(ev.stats)}


# --------------------------------------------------------------------------------------------
# Polygon (OBB) AP
# --------------------------------------------------------------------------------------------


def _hull(poly: np.ndarray) -> np.ndarray:
    pts = poly.reshape(-1, 2).astype(np.float32)
    return cv2.convexHull(pts).reshape(-1, 2)


def polygon_iou_matrix(dets: np.ndarray, gts: np.ndarray) -> np.ndarray:
    """IoU of every ``(det, gt)`` pair of 4-point polygons.

    Each polygon is replaced by its convex hull (DOTA quadrilaterals are convex; a self-crossing
    vertex order is thereby tolerated) and intersected with ``cv2.intersectConvexConvex``.
    Zero-area unions give IoU 0.

    Args:
        dets: ``(n, 8)`` float polygons.
        gts: ``(m, 8)`` float polygons.

    Returns:
        ``(n, m)`` float64 IoU.
    """
    dets = np.asarray(dets, dtype=np.float64).reshape(-1, 8)
    gts = np.asarray(gts, dtype=np.float64).reshape(-1, 8)
    out = np.zeros((len(dets), len(gts)), dtype=np.float64)
    if out.size == 0:
        return out
    dh = [_hull(p) for p in dets]
    gh = [_hull(p) for p in gts]
    da = np.array([abs(cv2.contourArea(h)) if len(h) >= 3 else 0.0 for h in dh])
    ga = np.array([abs(cv2.contourArea(h)) if len(h) >= 3 else 0.0 for h in gh])
    denv = np.stack([dets[:, 0::2].min(1), dets[:, 1::2].min(1), dets[:, 0::2].max(1),
                     dets[:, 1::2].max(1)], 1)  # fmt: skip
    genv = np.stack([gts[:, 0::2].min(1), gts[:, 1::2].min(1), gts[:, 0::2].max(1),
                     gts[:, 1::2].max(1)], 1)  # fmt: skip
    ix = np.minimum(denv[:, None, 2], genv[None, :, 2]) - np.maximum(
        denv[:, None, 0], genv[None, :, 0]
    )
    iy = np.minimum(denv[:, None, 3], genv[None, :, 3]) - np.maximum(
        denv[:, None, 1], genv[None, :, 1]
    )
    cand = np.argwhere((ix > 0) & (iy > 0))
    for i, j in cand:
        if da[i] <= 0 or ga[j] <= 0:
            continue
        inter, _ = cv2.intersectConvexConvex(dh[i], gh[j])
        inter = max(float(inter), 0.0)
        union = da[i] + ga[j] - inter
        if union > 0:
            out[i, j] = inter / union
    return out


def polygon_ap(
    image_ids: Sequence[int],
    gt_polys: dict[int, np.ndarray],
    gt_labels: dict[int, np.ndarray],
    det_image_ids: np.ndarray,
    det_polys: np.ndarray,
    det_scores: np.ndarray,
    det_labels: np.ndarray,
    classes: Sequence[str],
    *,
    gt_ignore: dict[int, np.ndarray] | None = None,
    iou_thresholds: Sequence[float] = (0.5,),
    max_dets: int | None = COCO_MAX_DETS,
    iou_fn: Any = None,
) -> APResult:
    """COCO-protocol AP with polygon IoU (area range "all").

    Matching follows pycocotools ``evaluateImg``: per (image, class), detections sorted by
    descending score (stable) and cut at ``max_dets``; ground truth sorted non-ignored first;
    each detection takes the unmatched ground truth of highest IoU >= threshold, preferring
    non-ignored ones; detections matched to ignored ground truth are ignored. Accumulation
    follows ``accumulate``: 101 recall thresholds, monotone precision envelope.

    Args:
        image_ids: evaluated images.
        gt_polys / gt_labels / gt_ignore: image id -> ``(n, 8)`` / ``(n,)`` class index /
            ``(n,)`` bool.
        det_*: flat detections ``(N,)``, ``(N, 8)``, ``(N,)``, ``(N,)``.
        classes: class names.
        iou_thresholds: IoU thresholds averaged into ``ap``; ``ap50`` needs 0.5 among them.
        max_dets: detections kept per (image, class), highest scores first (COCO: 100);
            ``None`` keeps all.
        iou_fn: ``(dets, gts) -> (n, m)`` IoU; default :func:`polygon_iou_matrix`.

    Returns:
        :class:`APResult` (``ap75`` NaN unless 0.75 is evaluated; ``ap`` averages the given
        thresholds).
    """
    iou_fn = iou_fn or polygon_iou_matrix
    thr = np.asarray(sorted(iou_thresholds), dtype=np.float64)
    T, R, K = len(thr), len(_REC_THRS), len(classes)
    image_ids = sorted(int(i) for i in image_ids)
    det_image_ids = np.asarray(det_image_ids, dtype=np.int64)
    det_labels = np.asarray(det_labels, dtype=np.int64)
    det_scores = np.asarray(det_scores, dtype=np.float64)
    det_polys = np.asarray(det_polys, dtype=np.float64).reshape(-1, 8)
    precision = -np.ones((T, R, K))
    n_gt = np.zeros(K, dtype=np.int64)
    # group detections by (image, class) once
    order = np.lexsort((det_labels, det_image_ids))
    groups: dict[tuple[int, int], np.ndarray] = {}
    if order.size:
        keys = np.stack([det_image_ids[order], det_labels[order]], 1)
        cuts = np.flatnonzero(np.any(np.diff(keys, axis=0) != 0, axis=1)) + 1
        for chunk in np.split(order, cuts):
            groups[(int(det_image_ids[chunk[0]]), int(det_labels[chunk[0]]))] = chunk
    for k in range(K):
        scores_all: list[np.ndarray] = []
        match_all: list[np.ndarray] = []
        dtig_all: list[np.ndarray] = []
        npig = 0
        for iid in image_ids:
            gl = gt_labels.get(iid)
            gsel = np.flatnonzero(gl == k) if gl is not None and len(gl) else np.zeros(0, np.int64)
            dsel = groups.get((iid, k), np.zeros(0, np.int64))
            if gsel.size == 0 and dsel.size == 0:
                continue
            gig = (
                np.asarray(gt_ignore[iid], dtype=bool)[gsel]
                if gt_ignore is not None and iid in gt_ignore
                else np.zeros(gsel.size, dtype=bool)
            )
            gord = np.argsort(gig.astype(np.int64), kind="mergesort")
            gsel, gig = gsel[gord], gig[gord]
            dord = np.argsort(-det_scores[dsel], kind="mergesort")
            if max_dets is not None:
                dord = dord[:max_dets]
            dsel = dsel[dord]
            npig += int(np.count_nonzero(~gig))
            ious = (
                iou_fn(det_polys[dsel], gt_polys[iid][gsel])
                if dsel.size and gsel.size
                else np.zeros((dsel.size, gsel.size))
            )
            dtm = np.zeros((T, dsel.size), dtype=bool)
            dtig = np.zeros((T, dsel.size), dtype=bool)
            for t, tv in enumerate(thr):
                gtm = np.zeros(gsel.size, dtype=bool)
                for d in range(dsel.size):
                    best = min(tv, 1 - 1e-10)
                    m = -1
                    for g in range(gsel.size):
                        if gtm[g]:
                            continue
                        if m > -1 and not gig[m] and gig[g]:
                            break
                        if ious[d, g] < best:
                            continue
                        best = ious[d, g]
                        m = g
                    if m == -1:
                        continue
                    dtig[t, d] = gig[m]
                    dtm[t, d] = True
                    gtm[m] = True
            scores_all.append(det_scores[dsel])
            match_all.append(dtm)
            dtig_all.append(dtig)
        n_gt[k] = npig
        if npig == 0:
            continue
        scores = np.concatenate(scores_all) if scores_all else np.zeros(0)
        inds = np.argsort(-scores, kind="mergesort")
        dtm = np.concatenate(match_all, axis=1)[:, inds] if match_all else np.zeros((T, 0), bool)
        dtig = np.concatenate(dtig_all, axis=1)[:, inds] if dtig_all else np.zeros((T, 0), bool)
        tps = dtm & ~dtig
        fps = ~dtm & ~dtig
        tp_sum = np.cumsum(tps, axis=1, dtype=np.float64)
        fp_sum = np.cumsum(fps, axis=1, dtype=np.float64)
        for t in range(T):
            tp, fp = tp_sum[t], fp_sum[t]
            rc = tp / npig
            pr = tp / (fp + tp + np.spacing(1))
            pr = np.maximum.accumulate(pr[::-1])[::-1] if pr.size else pr
            q = np.zeros(R)
            idx = np.searchsorted(rc, _REC_THRS, side="left")
            ok = idx < pr.size
            q[ok] = pr[idx[ok]]
            precision[t, :, k] = q
    ap50 = (
        np.array(
            [_mean_valid(precision[int(np.argmin(np.abs(thr - 0.5))), :, k]) for k in range(K)]
        )
        if np.any(np.isclose(thr, 0.5))
        else np.full(K, np.nan)
    )
    ap75 = (
        np.array(
            [_mean_valid(precision[int(np.argmin(np.abs(thr - 0.75))), :, k]) for k in range(K)]
        )
        if np.any(np.isclose(thr, 0.75))
        else np.full(K, np.nan)
    )
    ap = np.array([_mean_valid(precision[:, :, k]) for k in range(K)])
    t50 = int(np.argmin(np.abs(thr - 0.5)))
    return APResult(
        classes=tuple(classes), ap50=ap50, ap=ap, ap75=ap75, n_gt=n_gt,
        overall_ap=_mean_valid(precision),
        overall_ap50=_mean_valid(precision[t50]) if np.any(np.isclose(thr, 0.5)) else float("nan"),
    )  # fmt: skip


def xyxy_to_polygon(boxes: np.ndarray) -> np.ndarray:
    """``(n, 4)`` xyxy -> ``(n, 8)`` polygons ``(x1,y1),(x2,y1),(x2,y2),(x1,y2)``."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return np.stack([b[:, 0], b[:, 1], b[:, 2], b[:, 1], b[:, 2], b[:, 3], b[:, 0], b[:, 3]], 1)


def polygon_to_xyxy(polys: np.ndarray) -> np.ndarray:
    """``(n, 8)`` polygons -> ``(n, 4)`` horizontal envelopes xyxy."""
    p = np.asarray(polys, dtype=np.float64).reshape(-1, 8)
    return np.stack([p[:, 0::2].min(1), p[:, 1::2].min(1), p[:, 0::2].max(1), p[:, 1::2].max(1)], 1)
