"""Mask to boxes (the official ``M2B``), inner-box removal and NMS.

Conventions used throughout this module:

* Images are indexed ``(row, col) = (y, x)``; masks are ``(H, W)`` uint8 0/1, probabilities are
  ``(H, W)`` floating point foreground probabilities.
* Horizontal boxes (``"hbb"``) are rows ``[x1, y1, x2, y2, conf]`` in absolute pixels with the
  right and bottom edges **exclusive** (one past the last pixel), straight from OpenCV component
  statistics.
* Oriented boxes (``"obb"``) are rows ``[x0, y0, x1, y1, x2, y2, x3, y3, conf]``: the 4 corners of
  ``cv2.minAreaRect`` of the component's first external contour, in ``cv2.boxPoints`` order,
  truncated toward zero (``.astype(int)``). Corners may lie outside the image.
* Components are the 8-connected components of the mask in **OpenCV label order**
  (``cv2.connectedComponentsWithStats``), which is not pixel raster order.

Two implementations of the same algorithm live here:

* :func:`masks_to_boxes` is the fast one: component statistics and per-component confidence in
  O(pixels) (``connectedComponentsWithStats`` + ``np.bincount``), oriented boxes computed on each
  component's bounding-box crop only, and inner-box removal without rasterising polygons on full
  canvases (interval arithmetic for hbb; per-polygon cached rasters for the few obb pairs whose
  raster extents nest).
* :func:`masks_to_boxes_reference` is a straightforward transcription of the official algorithm
  (one full-image comparison per component, O(n^2) full-canvas polygon rasterisation in
  :func:`box1_in_box2`). It exists as the baseline for tests and ``benchmarks/bench_m2b.py``.

Both give identical coordinates; confidences agree to float32 summation-order rounding (~1e-7):
the official sum is a float32 pairwise sum over the whole image, the fast one a float64 bincount.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import cv2
import numpy as np

__all__ = [
    "box1_in_box2",
    "masks_to_boxes",
    "masks_to_boxes_reference",
    "nms",
    "remove_inner_boxes",
]

BoxType = Literal["hbb", "obb"]
_BOX_TYPES = ("hbb", "obb")
# Pair blocks for the vectorised O(n^2) containment tests: rows per block so that one block holds
# at most about this many pairs (bounded memory for maps with tens of thousands of components).
_PAIR_BLOCK = 1 << 21


# --------------------------------------------------------------------------------------------
# input validation
# --------------------------------------------------------------------------------------------


def _check_binary_mask(mask: Any, name: str) -> np.ndarray:
    if not isinstance(mask, np.ndarray):
        raise TypeError(f"{name} must be a numpy array of shape (H, W), got {type(mask).__name__}")
    if mask.ndim != 2:
        raise ValueError(f"{name} must have shape (H, W), got shape {mask.shape}")
    if mask.dtype == np.bool_:
        mask = mask.view(np.uint8)
    elif mask.dtype != np.uint8:
        raise ValueError(
            f"{name} must be uint8 0/1 (or bool), got dtype {mask.dtype}; "
            "convert with (mask > 0).astype(np.uint8)"
        )
    if mask.size and int(mask.max()) > 1:
        raise ValueError(
            f"{name} must hold only 0 and 1, found value {int(mask.max())}; "
            "convert with (mask > 0).astype(np.uint8)"
        )
    return np.ascontiguousarray(mask)


def _check_inputs(
    mask: Any,
    probs: Any,
    box_type: Any,
    conf_threshold: Any,
    new_mask: Any,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validate the M2B inputs; return (component source mask, mask, probs)."""
    if box_type not in _BOX_TYPES:
        raise ValueError(f"box_type must be one of {_BOX_TYPES}, got {box_type!r}")
    mask = _check_binary_mask(mask, "mask")
    if not isinstance(probs, np.ndarray):
        raise TypeError(f"probs must be a numpy array of shape (H, W), got {type(probs).__name__}")
    if probs.shape != mask.shape:
        raise ValueError(f"probs must have the mask's shape {mask.shape}, got shape {probs.shape}")
    if not np.issubdtype(probs.dtype, np.floating):
        raise ValueError(
            f"probs must be a floating-point probability map (float32), got dtype {probs.dtype}"
        )
    if isinstance(conf_threshold, bool) or not isinstance(conf_threshold, (int, float, np.number)):
        raise TypeError(f"conf_threshold must be a number, got {conf_threshold!r}")
    src = mask
    if new_mask is not None:
        src = _check_binary_mask(new_mask, "new_mask")
        if src.shape != mask.shape:
            raise ValueError(
                f"new_mask must have the mask's shape {mask.shape}, got shape {src.shape}"
            )
    return src, mask, probs


def _n_cols(box_type: str) -> int:
    return 5 if box_type == "hbb" else 9


# --------------------------------------------------------------------------------------------
# box1_in_box2 (official semantics) and polygon helpers
# --------------------------------------------------------------------------------------------


def _as_polygons(boxes: Any, name: str = "boxes") -> tuple[np.ndarray, str]:
    """Box rows -> (n, 4, 2) int64 polygon vertices and the box type.

    Rows of 4 or 5 values are hbb ``[x1, y1, x2, y2(, conf)]`` and become the polygon
    ``(x1,y1),(x2,y1),(x2,y2),(x1,y2)``; rows of 8 or 9 values are obb corner lists. Coordinates
    are truncated toward zero to integers, as the official code casts them.
    """
    arr = np.asarray(boxes, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] not in (4, 5, 8, 9):
        raise ValueError(
            f"{name} must have shape (n, 4|5) for hbb [x1,y1,x2,y2(,conf)] or (n, 8|9) for obb "
            f"[x0,y0,...,x3,y3(,conf)], got shape {arr.shape}"
        )
    if not np.all(np.isfinite(arr[:, :8] if arr.shape[1] >= 8 else arr[:, :4])):
        raise ValueError(f"{name} holds non-finite coordinates")
    if arr.shape[1] in (4, 5):
        c = arr[:, :4].astype(np.int64)
        x1, y1, x2, y2 = c[:, 0], c[:, 1], c[:, 2], c[:, 3]
        poly = np.stack(
            [np.stack([x1, y1], 1), np.stack([x2, y1], 1), np.stack([x2, y2], 1),
             np.stack([x1, y2], 1)],
            axis=1,
        )
        return poly, "hbb"
    return arr[:, :8].astype(np.int64).reshape(-1, 4, 2), "obb"


def box1_in_box2(box1: Sequence[float] | np.ndarray, box2: Sequence[float] | np.ndarray) -> bool:
    """Official ``box1_in_box2``: is polygon 1's clipped raster inside polygon 2's?

    Both boxes become 4-point polygons (an hbb ``[x1,y1,x2,y2]`` becomes
    ``(x1,y1),(x2,y1),(x2,y2),(x1,y2)``), coordinates truncated to int. Each is filled with
    ``cv2.fillPoly`` (boundary included) on its own ``h x w`` canvas, where ``w`` / ``h`` are the
    maximum x / y over both polygons, **without** +1, so column ``x = w`` and row ``y = h`` are
    clipped away, as are negative coordinates. The result is
    ``pixels(box1 & box2) == pixels(box1)``. Hence identical boxes contain each other, and a box
    poking one column or row past the other's max edge still counts as inside. A canvas with a
    non-positive side is empty, so the answer is True (the official code would fail there).

    Args:
        box1, box2: one box each: 4 or 5 values (hbb, an optional 5th conf is ignored) or 8 or 9
            values (obb corners, an optional 9th conf is ignored). The two may differ in type.

    Raises:
        ValueError: when a box does not have 4, 5, 8 or 9 finite values.
    """
    p1, _ = _as_polygons(np.asarray(box1, dtype=np.float64).reshape(1, -1), "box1")
    p2, _ = _as_polygons(np.asarray(box2, dtype=np.float64).reshape(1, -1), "box2")
    p1, p2 = p1[0], p2[0]
    w = int(max(p1[:, 0].max(), p2[:, 0].max()))
    h = int(max(p1[:, 1].max(), p2[:, 1].max()))
    if w <= 0 or h <= 0:
        return True
    c1 = np.zeros((h, w), np.uint8)
    c2 = np.zeros((h, w), np.uint8)
    cv2.fillPoly(c1, [p1.astype(np.int32)], 1)
    cv2.fillPoly(c2, [p2.astype(np.int32)], 1)
    return int(np.count_nonzero(c1 & c2)) == int(np.count_nonzero(c1))


# --------------------------------------------------------------------------------------------
# fast remove_inner
# --------------------------------------------------------------------------------------------


def _pair_blocks(n: int) -> list[slice]:
    rows = max(1, _PAIR_BLOCK // max(n, 1))
    return [slice(s, min(s + rows, n)) for s in range(0, n, rows)]


def _remove_inner_hbb(poly: np.ndarray) -> np.ndarray:
    """Interval-arithmetic twin of the rasterised hbb test; returns the keep mask.

    An axis-aligned rectangle filled with ``fillPoly`` covers exactly its (inclusive) vertex
    bounding box, so its pixels on the pair canvas ``[0, W) x [0, H)`` are that box clipped.
    """
    n = poly.shape[0]
    x0, x1 = poly[:, :, 0].min(1), poly[:, :, 0].max(1)
    y0, y1 = poly[:, :, 1].min(1), poly[:, :, 1].max(1)
    lx, ly = np.maximum(x0, 0), np.maximum(y0, 0)
    removed = np.zeros(n, dtype=bool)
    for blk in _pair_blocks(n):
        # rows: i (the candidate inner box); columns: j (the candidate outer box)
        W = np.maximum(x1[blk, None], x1[None, :])
        H = np.maximum(y1[blk, None], y1[None, :])
        rxi = np.minimum(x1[blk, None], W - 1)
        ryi = np.minimum(y1[blk, None], H - 1)
        rxj = np.minimum(x1[None, :], W - 1)
        ryj = np.minimum(y1[None, :], H - 1)
        lxi, lyi = lx[blk, None], ly[blk, None]
        empty_i = (lxi > rxi) | (lyi > ryi)
        inside = empty_i | (
            (lx[None, :] <= lxi) & (rxi <= rxj) & (ly[None, :] <= lyi) & (ryi <= ryj)
        )
        idx = np.arange(blk.start, blk.stop)
        inside[idx - blk.start, idx] = False
        removed[blk] = inside.any(axis=1)
    return ~removed


class _PolyRasters:
    """Lazily drawn, cached clipped rasters of an obb polygon set.

    Variant ``v = 2 * clip_right + clip_bottom``: on a pair canvas ``[0, W) x [0, H)`` a polygon
    whose max x equals ``W`` loses its last column (``clip_right``), likewise for rows; a polygon
    whose max x is below ``W`` is not clipped on the right at all. Each variant is drawn with
    ``cv2.fillPoly`` on a canvas that starts at ``(max(min x, 0), max(min y, 0))`` and ends exactly
    where the pair canvas would: an integer translation that moves no clipping edge the polygon
    reaches, so the raster equals the pair canvas's raster restricted to the crop.
    """

    def __init__(self, poly: np.ndarray) -> None:
        self.poly = poly
        self._canvas: dict[tuple[int, int], tuple[int, int, np.ndarray | None]] = {}
        self._pixels: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}

    def canvas(self, k: int, v: int) -> tuple[int, int, np.ndarray | None]:
        """``(ox, oy, raster)`` of polygon ``k`` in variant ``v``; raster None when empty."""
        key = (k, v)
        if key not in self._canvas:
            p = self.poly[k]
            ox = max(int(p[:, 0].min()), 0)
            oy = max(int(p[:, 1].min()), 0)
            w = int(p[:, 0].max()) + (0 if v >> 1 else 1) - ox
            h = int(p[:, 1].max()) + (0 if v & 1 else 1) - oy
            raster = None
            if w > 0 and h > 0:
                raster = np.zeros((h, w), np.uint8)
                cv2.fillPoly(raster, [(p - np.array([ox, oy])).astype(np.int32)], 1)
            self._canvas[key] = (ox, oy, raster)
        return self._canvas[key]

    def pixels(self, k: int, v: int) -> tuple[np.ndarray, np.ndarray]:
        """Global ``(xs, ys)`` of the drawn pixels of polygon ``k`` in variant ``v``."""
        key = (k, v)
        if key not in self._pixels:
            ox, oy, raster = self.canvas(k, v)
            if raster is None:
                self._pixels[key] = (np.zeros(0, np.int64), np.zeros(0, np.int64))
            else:
                ys, xs = np.nonzero(raster)
                self._pixels[key] = (xs + ox, ys + oy)
        return self._pixels[key]

    def inside(self, i: int, vi: int, j: int, vj: int) -> bool:
        """Exact ``box1_in_box2(i, j)`` from the cached rasters of the pair's variants."""
        xs, ys = self.pixels(i, vi)
        if xs.size == 0:
            return True
        ox, oy, raster = self.canvas(j, vj)
        if raster is None:
            return False
        lx, ly = xs - ox, ys - oy
        h, w = raster.shape
        if lx.min() < 0 or ly.min() < 0 or lx.max() >= w or ly.max() >= h:
            return False
        return bool(raster[ly, lx].all())


def _remove_inner_obb(poly: np.ndarray) -> np.ndarray:
    """Exact twin of the rasterised polygon test.

    A conservative vectorised prefilter keeps only pairs ``(i, j)`` where every vertex of ``i``
    lying on the pair canvas is inside ``j``'s vertex bounding box (vertices on the canvas are
    always drawn, and nothing is drawn outside a polygon's vertex bounding box), or where no
    vertex of ``i`` is on the canvas. Those few pairs get the exact raster comparison on cached
    per-polygon crops.
    """
    n = poly.shape[0]
    pr = _PolyRasters(poly)
    px, py = poly[:, :, 0], poly[:, :, 1]  # (n, 4)
    xmin, xmax, ymin, ymax = px.min(1), px.max(1), py.min(1), py.max(1)
    # A vertex strictly below the polygon's own max x and max y (and not negative) is on every
    # pair canvas; such a polygon can only be inside a polygon whose vertex box meets its own.
    always_on = np.any((px >= 0) & (py >= 0) & (px < xmax[:, None]) & (py < ymax[:, None]), axis=1)
    removed = np.zeros(n, dtype=bool)
    for blk in _pair_blocks(n):
        ii = np.arange(blk.start, blk.stop)
        meets = (
            (xmin[blk, None] <= xmax[None, :]) & (xmin[None, :] <= xmax[blk, None])
            & (ymin[blk, None] <= ymax[None, :]) & (ymin[None, :] <= ymax[blk, None])
        )
        meets |= ~always_on[blk, None]
        meets[ii - blk.start, ii] = False
        a_idx, j_idx = np.nonzero(meets)
        if a_idx.size == 0:
            continue
        i_idx = a_idx + blk.start
        W = np.maximum(xmax[i_idx], xmax[j_idx])[:, None]  # (m, 1)
        H = np.maximum(ymax[i_idx], ymax[j_idx])[:, None]
        vx, vy = px[i_idx], py[i_idx]  # (m, 4)
        on_canvas = (vx >= 0) & (vx < W) & (vy >= 0) & (vy < H)
        in_vj = (
            (vx >= xmin[j_idx, None]) & (vx <= xmax[j_idx, None])
            & (vy >= ymin[j_idx, None]) & (vy <= ymax[j_idx, None])
        )
        cand = np.all(~on_canvas | in_vj, axis=1)
        for i, j in zip(i_idx[cand].tolist(), j_idx[cand].tolist()):
            if removed[i]:
                continue
            vi = 2 * int(xmax[i] >= xmax[j]) + int(ymax[i] >= ymax[j])
            vj = 2 * int(xmax[j] >= xmax[i]) + int(ymax[j] >= ymax[i])
            if pr.inside(i, vi, j, vj):
                removed[i] = True
    return ~removed


def remove_inner_boxes(boxes: Any) -> np.ndarray:
    """Which boxes survive the official ``remove_inner`` step.

    Box ``i`` is removed when :func:`box1_in_box2` ``(box_i, box_j)`` holds for any ``j != i``
    (all original boxes take part, so two identical boxes remove each other). Exactly equivalent to
    the O(n^2) rasterised loop, without full-canvas rasterisation: hbb by interval arithmetic on
    the clipped boxes, obb by comparing cached per-polygon crop rasters only for pairs whose
    drawn extents nest.

    Args:
        boxes: ``(n, 4|5)`` hbb rows ``[x1, y1, x2, y2(, conf)]`` or ``(n, 8|9)`` obb rows; only
            the coordinates are used (truncated to int).

    Returns:
        ``(n,)`` bool keep mask, True for boxes that stay (original order).

    Raises:
        ValueError: on a wrong shape or non-finite coordinates.
    """
    poly, kind = _as_polygons(boxes)
    if poly.shape[0] == 0:
        return np.zeros(0, dtype=bool)
    if kind == "hbb":
        return _remove_inner_hbb(poly)
    return _remove_inner_obb(poly)


# --------------------------------------------------------------------------------------------
# M2B
# --------------------------------------------------------------------------------------------


# Above this many horizontal foreground runs, OpenCV's own statistics are cheaper than the
# run-based ones (np.ufunc.at costs ~50-100 ns per run).
_MAX_RUNS = 8192


def _component_stats(
    src: np.ndarray, max_runs: int = _MAX_RUNS
) -> tuple[int, np.ndarray, np.ndarray]:
    """``cv2.connectedComponentsWithStats(src, connectivity=8)`` equivalent: ``(n, labels, stats)``
    with ``stats[k] = [x, y, w, h, area]`` (int64), same labels (OpenCV label order).

    OpenCV's statistics pass costs ~10x its labelling pass, so for masks made of few horizontal
    runs (smooth objects, the usual case) the statistics come from the runs instead: one pass to
    find the runs, then per-label min/max/sum over runs only.
    """
    h, w = src.shape
    pad = np.zeros((h, w + 2), np.int8)
    pad[:, 1:-1] = src
    d = np.diff(pad.ravel())
    starts = np.flatnonzero(d == 1) + 1
    if starts.size > max_runs:
        n, labels, stats, _ = cv2.connectedComponentsWithStats(
            src, connectivity=8, ltype=cv2.CV_32S
        )
        return n, labels, stats.astype(np.int64)
    n, labels = cv2.connectedComponents(src, connectivity=8, ltype=cv2.CV_32S)
    ends = np.flatnonzero(d == -1) + 1
    row = starts // (w + 2)
    xs = starts - row * (w + 2) - 1
    xe = ends - row * (w + 2) - 1  # exclusive; a run never crosses a row (padding columns)
    lab = labels[row, xs]
    stats = np.zeros((n, 5), np.int64)
    stats[:, 4] = np.bincount(lab, weights=xe - xs, minlength=n).astype(np.int64)
    x0 = np.full(n, w, np.int64)
    np.minimum.at(x0, lab, xs)
    x1 = np.zeros(n, np.int64)
    np.maximum.at(x1, lab, xe)
    y0 = np.full(n, h, np.int64)
    np.minimum.at(y0, lab, row)
    y1 = np.zeros(n, np.int64)
    np.maximum.at(y1, lab, row + 1)
    stats[1:, 0], stats[1:, 1] = x0[1:], y0[1:]
    stats[1:, 2], stats[1:, 3] = x1[1:] - x0[1:], y1[1:] - y0[1:]
    return n, labels, stats


def _obb_from_component(comp: np.ndarray, offset: tuple[int, int]) -> np.ndarray:
    contours, _ = cv2.findContours(comp, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE, offset=offset)
    return cv2.boxPoints(cv2.minAreaRect(contours[0])).astype(int).reshape(-1)


def masks_to_boxes(
    mask: np.ndarray,
    probs: np.ndarray,
    box_type: BoxType = "hbb",
    conf_threshold: float = 0.01,
    remove_inner: bool = True,
    new_mask: np.ndarray | None = None,
) -> np.ndarray:
    """Boxes of the 8-connected components of a mask (the official ``M2B``), vectorised.

    Steps: 8-connected components in OpenCV label order (``cv2.connectedComponents``; bounding
    boxes and areas equal to ``cv2.connectedComponentsWithStats``'s, computed from horizontal runs
    when that is cheaper); confidence = mean of ``probs`` over the component (one ``np.bincount``);
    components with ``conf < conf_threshold`` dropped; hbb from the component statistics, obb from
    ``minAreaRect`` of the first external contour found on the component's bounding-box crop;
    optionally boxes inside another box removed (:func:`remove_inner_boxes`).

    Args:
        mask: ``(H, W)`` uint8 (or bool) 0/1 class mask.
        probs: ``(H, W)`` floating-point foreground probabilities (float32 in the pipeline).
        box_type: ``"hbb"`` or ``"obb"``.
        conf_threshold: components whose mean probability is below this are dropped.
        remove_inner: drop boxes lying inside another box (official quirks included).
        new_mask: optional EPOC-refined ``(H, W)`` 0/1 mask (see
            :func:`remotesam.postprocess.epoc_refine`); when given, its components are boxed
            instead of ``mask``'s, with confidences still taken from ``probs``.

    Returns:
        float64 array ``(n, 5)`` of ``[x1, y1, x2, y2, conf]`` (right/bottom exclusive) for hbb, or
        ``(n, 9)`` of ``[x0, y0, x1, y1, x2, y2, x3, y3, conf]`` for obb, in label order.

    Raises:
        ValueError: unknown ``box_type``; a mask that is not ``(H, W)`` uint8/bool 0/1; ``probs``
            not floating or of another shape.
        TypeError: a non-array mask or probs, or a non-numeric threshold.
    """
    src, _, probs = _check_inputs(mask, probs, box_type, conf_threshold, new_mask)
    ncol = _n_cols(box_type)
    n, labels, stats = _component_stats(src)
    if n <= 1:
        return np.zeros((0, ncol), dtype=np.float64)
    # Only foreground pixels carry a label > 0: sum over them alone (O(pixels), one pass).
    fg = src.ravel().view(np.bool_)
    sums = np.bincount(labels.ravel()[fg], weights=probs.ravel()[fg], minlength=n)
    area = stats[1:, cv2.CC_STAT_AREA]
    conf = sums[1:] / area
    sel = np.flatnonzero(~(conf < conf_threshold))  # official test: drop if conf < threshold
    if sel.size == 0:
        return np.zeros((0, ncol), dtype=np.float64)
    st = stats[1:][sel].astype(np.int64)
    x, y, w, h = st[:, 0], st[:, 1], st[:, 2], st[:, 3]
    if box_type == "hbb":
        out = np.stack([x, y, x + w, y + h], axis=1).astype(np.float64)
    else:
        H, W = src.shape
        out = np.empty((sel.size, 8), dtype=np.float64)
        for r, k in enumerate(sel):
            # One pixel of margin (where the image allows) keeps the crop's relation to the image
            # border identical to the full image's, so findContours traces the same contour.
            xa, ya = max(int(x[r]) - 1, 0), max(int(y[r]) - 1, 0)
            xb, yb = min(int(x[r] + w[r]) + 1, W), min(int(y[r] + h[r]) + 1, H)
            comp = (labels[ya:yb, xa:xb] == k + 1).view(np.uint8)
            out[r] = _obb_from_component(comp, (xa, ya))
    out = np.concatenate([out, conf[sel, None]], axis=1)
    if remove_inner:
        out = out[remove_inner_boxes(out)]
    return out


def masks_to_boxes_reference(
    mask: np.ndarray,
    probs: np.ndarray,
    box_type: BoxType = "hbb",
    conf_threshold: float = 0.01,
    remove_inner: bool = True,
    new_mask: np.ndarray | None = None,
) -> np.ndarray:
    """Straightforward implementation of the official ``M2B`` (baseline for tests/benchmarks).

    One full-image component mask per component, confidence as the official float32 sum
    ``np.sum(probs * (labels == i)) / area``, the first external contour of the full-image
    component mask for obb, and the O(n^2) :func:`box1_in_box2` loop on full canvases.
    Same arguments, return value and errors as :func:`masks_to_boxes`.
    """
    src, _, probs = _check_inputs(mask, probs, box_type, conf_threshold, new_mask)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(src, connectivity=8)
    boxes: list[list[float]] = []
    for i in range(1, n):
        comp = np.where(labels == i, 1, 0).astype(np.uint8)
        area = stats[i, cv2.CC_STAT_AREA]
        conf = np.sum(probs * (comp == 1)) / area
        if conf < conf_threshold:
            continue
        if box_type == "hbb":
            x, y, w, h = (int(v) for v in stats[i, :4])
            boxes.append([x, y, x + w, y + h, float(conf)])
        else:
            contour = cv2.findContours(comp, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)[0][0]
            pts = cv2.boxPoints(cv2.minAreaRect(contour)).astype(int)
            boxes.append([*(int(v) for v in pts.reshape(-1)), float(conf)])
    if remove_inner:
        boxes = [
            b for i, b in enumerate(boxes)
            if not any(box1_in_box2(b, o) for j, o in enumerate(boxes) if j != i)
        ]
    return np.asarray(boxes, dtype=np.float64).reshape(-1, _n_cols(box_type))


# --------------------------------------------------------------------------------------------
# NMS
# --------------------------------------------------------------------------------------------


def nms(boxes: Any, scores: Any, iou_threshold: float = 0.5) -> np.ndarray:
    """Greedy non-maximum suppression, equal to ``torchvision.ops.nms`` (the official detection
    wrapper's NMS) on float64 CPU tensors, in numpy (no torchvision import: it costs ~1 s).

    Boxes are visited by descending score (ties: lower index first; torchvision's CPU kernel
    sorts stably); a box is suppressed when its IoU with an already kept box is **strictly
    greater** than ``iou_threshold``. Areas are ``(x2 - x1) * (y2 - y1)`` (no +1); a pair of
    zero-area boxes has IoU NaN and never suppresses. The arithmetic is the kernel's, in the
    same order and precision (``inter / (area_i + area_j - inter)`` in float64), so the kept
    indices are the same; ``tests/test_postprocess.py`` checks them against torchvision, the
    official golden outputs, ties and the edge cases.

    Args:
        boxes: ``(n, 4)`` xyxy boxes (extra columns are rejected).
        scores: ``(n,)`` scores.
        iou_threshold: IoU above which a lower-scoring box is discarded.

    Returns:
        ``(k,)`` int64 indices of the kept boxes, by descending score.

    Raises:
        ValueError: on wrong shapes or non-finite values.
    """
    b = np.asarray(boxes, dtype=np.float64)
    s = np.asarray(scores, dtype=np.float64)
    if b.size == 0 and s.size == 0:
        return np.zeros(0, dtype=np.int64)
    if b.ndim != 2 or b.shape[1] != 4:
        raise ValueError(f"boxes must have shape (n, 4) xyxy, got shape {b.shape}")
    if s.shape != (b.shape[0],):
        raise ValueError(f"scores must have shape ({b.shape[0]},), got shape {s.shape}")
    if not (np.all(np.isfinite(b)) and np.all(np.isfinite(s))):
        raise ValueError("boxes and scores must be finite")
    thr = float(iou_threshold)
    order = np.argsort(-s, kind="stable")
    x1, y1, x2, y2 = (b[order, c] for c in range(4))
    areas = (x2 - x1) * (y2 - y1)
    alive = np.ones(order.size, dtype=bool)
    keep: list[int] = []
    for i in range(order.size):
        if not alive[i]:
            continue
        keep.append(int(order[i]))
        rest = i + 1 + np.flatnonzero(alive[i + 1:])
        if rest.size == 0:
            break
        w = np.maximum(0.0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]))
        h = np.maximum(0.0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]))
        inter = w * h
        with np.errstate(invalid="ignore", divide="ignore"):
            ovr = inter / (areas[i] + areas[rest] - inter)
        alive[rest[ovr > thr]] = False
    return np.asarray(keep, dtype=np.int64)
