"""Binary masks as COCO compressed RLE: encode, decode, convert, resize, intersect.

Conventions: a mask is a 2-D ``(H, W)`` array, non-zero = foreground; an RLE is the COCO
compressed form ``{"size": [h, w], "counts": str}`` (column-major runs, first run background),
which is JSON-serialisable and therefore a valid part of a prediction. Resizing is PIL
``NEAREST`` (the official RemoteSAM REF/SEG evaluation resizes ground truth this way).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils

from remotesam.bench.api import DatasetError

__all__ = [
    "mask_iou",
    "mask_to_rle",
    "nearest_index_map",
    "resize_nearest",
    "rle_counts",
    "rle_inter_union",
    "rle_resize_nearest",
    "rle_to_mask",
    "segmentation_to_rle",
]


def mask_to_rle(mask: np.ndarray) -> dict[str, Any]:
    """Encode a 2-D 0/1 mask as COCO compressed RLE ``{"size": [h, w], "counts": str}``.

    Args:
        mask: ``(H, W)`` array; non-zero = foreground.
    """
    m = np.asfortranarray(np.asarray(mask) != 0, dtype=np.uint8)
    if m.ndim != 2:
        raise ValueError(f"mask_to_rle expects a 2-D mask, got shape {m.shape}")
    rle = mask_utils.encode(m)
    return {
        "size": [int(rle["size"][0]), int(rle["size"][1])],
        "counts": rle["counts"].decode("ascii"),
    }


def rle_to_mask(rle: Mapping[str, Any]) -> np.ndarray:
    """Decode a compressed COCO RLE (``counts`` as ``str`` or ``bytes``) to ``(H, W)`` uint8 0/1."""
    counts = rle["counts"]
    if isinstance(counts, str):
        counts = counts.encode("ascii")
    if not isinstance(counts, bytes):
        raise ValueError(
            "rle_to_mask expects compressed RLE (counts str/bytes); use segmentation_to_rle"
        )
    h, w = (int(v) for v in rle["size"])
    return mask_utils.decode({"size": [h, w], "counts": counts})


def segmentation_to_rle(seg: Any, height: int, width: int, where: str) -> dict[str, Any]:
    """Convert a COCO ``segmentation`` field to one compressed RLE (``str`` counts).

    Accepted forms: polygon list ``[[x, y, ...], ...]``; an uncompressed RLE dict (``counts``
    list); a compressed RLE dict; a *list* of RLE dicts (RRSIS-D stores one RLE inside a list;
    several are merged by union here; the official REF loader's ``sum == 1`` rule is applied by
    :func:`load_refer` instead, which keeps the list).

    Args:
        seg: the field's value.
        height: image height, needed for polygons and checked against RLE sizes.
        width: image width, as ``height``.
        where: "file, field" text for error messages.

    Raises:
        DatasetError: unknown form, or an RLE whose size differs from ``(height, width)``.
    """
    try:
        if isinstance(seg, Mapping):
            rles = [seg]
        elif isinstance(seg, list) and seg and all(isinstance(s, Mapping) for s in seg):
            rles = list(seg)
        elif isinstance(seg, list) and seg and all(isinstance(s, list) for s in seg):
            polys = [[float(v) for v in p] for p in seg]
            if any(len(p) < 6 or len(p) % 2 for p in polys):
                raise DatasetError(
                    f"{where}: polygon with fewer than 3 points or an odd number of coordinates"
                )
            rle = mask_utils.merge(mask_utils.frPyObjects(polys, height, width))
            return {"size": [height, width], "counts": rle["counts"].decode("ascii")}
        else:
            raise DatasetError(
                f"{where}: expected a polygon list, an RLE dict or a list of RLE dicts, got "
                f"{type(seg).__name__} {str(seg)[:80]!r}"
            )
        out = []
        for r in rles:
            if "size" not in r or "counts" not in r:
                raise DatasetError(f"{where}: RLE dict without 'size'/'counts' keys: {sorted(r)}")
            size = [int(v) for v in r["size"]]
            if size != [height, width]:
                raise DatasetError(
                    f"{where}: RLE size {size} differs from the image size [{height}, {width}]"
                )
            counts = r["counts"]
            if isinstance(counts, list):
                out.append(mask_utils.frPyObjects({"size": size, "counts": counts}, *size))
            else:
                c = counts.encode("ascii") if isinstance(counts, str) else counts
                out.append({"size": size, "counts": c})
        merged = out[0] if len(out) == 1 else mask_utils.merge(out)
        counts = merged["counts"]
        return {
            "size": [height, width],
            "counts": counts.decode("ascii") if isinstance(counts, bytes) else counts,
        }
    except DatasetError:
        raise
    except (TypeError, ValueError, KeyError) as exc:
        raise DatasetError(f"{where}: malformed segmentation ({exc})") from None


def resize_nearest(arr: np.ndarray, size: int | tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of a 2-D integer array with PIL's ``NEAREST`` filter.

    This is how the official REF/SEG evaluation resizes ground truth to 896x896 (PIL images,
    ``Image.NEAREST``); PIL is called directly because its fixed-point coordinate arithmetic
    picks different source pixels than a float formula for some sizes (e.g. 1024 -> 896).

    Args:
        arr: ``(H, W)`` integer array (bool/uint8 masks or label maps with values < 2**31).
        size: ``S`` (square) or ``(out_h, out_w)``.

    Returns:
        ``(out_h, out_w)`` array of the input dtype (bool input gives uint8).
    """
    from PIL import Image

    out_h, out_w = (size, size) if isinstance(size, int) else size
    a = np.asarray(arr)
    if a.dtype == bool:
        a = a.astype(np.uint8)
    if a.ndim != 2:
        raise ValueError(f"resize_nearest expects a 2-D array, got shape {a.shape}")
    if a.shape == (out_h, out_w):
        return a
    if a.dtype == np.uint8:
        img = Image.fromarray(a, mode="L")
        return np.asarray(img.resize((out_w, out_h), Image.Resampling.NEAREST))
    if a.size and (a.min() < -(2**31) or a.max() >= 2**31):
        raise ValueError("resize_nearest: values do not fit in int32")
    out = Image.fromarray(a.astype(np.int32), mode="I").resize((out_w, out_h),
                                                              Image.Resampling.NEAREST)
    return np.asarray(out).astype(a.dtype, copy=False)


@lru_cache(maxsize=64)
def nearest_index_map(n_in: int, n_out: int) -> np.ndarray:
    """Source index of each output index for PIL ``NEAREST`` resizing along one axis.

    Obtained from PIL itself (a 1-pixel-high index image), so it matches
    :func:`resize_nearest` exactly; PIL's nearest filter is separable. ``(n_out,)`` int64,
    non-decreasing.
    """
    from PIL import Image

    idx = Image.fromarray(np.arange(n_in, dtype=np.int32)[None, :], mode="I")
    out = np.asarray(idx.resize((n_out, 1), Image.Resampling.NEAREST))[0].astype(np.int64)
    out.setflags(write=False)
    return out


def rle_counts(rle: Mapping[str, Any]) -> np.ndarray:
    """Run lengths of a compressed COCO RLE (column-major; first run is background).

    Vectorised decoder of pycocotools' string format (6-bit chars, 5 value bits, continuation
    bit 0x20, sign bit 0x10 on the last char, runs after the second coded as deltas of the run
    two before). pycocotools decodes this string only inside its C extension (``_frString``
    is private and its ``RLEs`` do not expose the runs), so the runs are read here; used to
    check a prediction's RLE and to resize one without decoding it.

    Raises:
        ValueError: malformed string, or run lengths that do not sum to ``h * w``.
    """
    counts = rle["counts"]
    raw = np.frombuffer(
        counts.encode("ascii") if isinstance(counts, str) else bytes(counts), dtype=np.uint8
    )
    h, w = (int(v) for v in rle["size"])
    if raw.size == 0:
        vals = np.zeros(0, dtype=np.int64)
    else:
        c = raw.astype(np.int64) - 48
        if c.min() < 0 or c.max() > 63:
            raise ValueError("RLE counts string has characters outside the COCO alphabet")
        more = (c & 0x20) != 0
        if more[-1]:
            raise ValueError("RLE counts string is truncated")
        ends = np.flatnonzero(~more)
        starts = np.concatenate(([0], ends[:-1] + 1))
        tok = np.repeat(np.arange(ends.size), ends - starts + 1)
        k = np.arange(c.size) - starts[tok]
        if k.max() > 11:
            raise ValueError("RLE counts string has an over-long number")
        vals = np.add.reduceat((c & 0x1F) << (5 * k), starts)
        neg = (c[ends] & 0x10) != 0
        vals = vals - np.where(neg, 1 << (5 * (k[ends] + 1)), 0)
        vals[3::2] = np.cumsum(vals[1::2])[1:] if vals.size > 3 else vals[3::2]
        if vals.size > 4:
            vals[4::2] = vals[2] + np.cumsum(vals[4::2])
    if (vals < 0).any() or int(vals.sum()) != h * w:
        raise ValueError(f"RLE run lengths do not describe a {h}x{w} mask")
    return vals


def rle_resize_nearest(rle: Mapping[str, Any], size: int | tuple[int, int]) -> dict[str, Any]:
    """Nearest-resize a compressed COCO RLE without decoding it (same pixels as
    ``mask_to_rle(resize_nearest(rle_to_mask(rle), size))``).

    Works on the foreground runs: each run is split per column, mapped to the output columns
    that sample that column and to the output rows that sample its rows.

    Returns:
        Compressed RLE (``str`` counts) of size ``(out_h, out_w)``.
    """
    out_h, out_w = (size, size) if isinstance(size, int) else size
    h, w = (int(v) for v in rle["size"])
    if (h, w) == (out_h, out_w):
        c = rle["counts"]
        return {"size": [h, w], "counts": c if isinstance(c, str) else bytes(c).decode("ascii")}
    counts = rle_counts(rle)
    pos = np.concatenate(([0], np.cumsum(counts)))
    s = pos[1:-1:2]
    e = pos[2::2]
    keep = e > s
    s, e = s[keep], e[keep]
    rows = nearest_index_map(h, out_h)
    cols = nearest_index_map(w, out_w)
    # split runs at column boundaries
    c0, c1 = s // h, (e - 1) // h
    n = c1 - c0 + 1
    rep = np.repeat(np.arange(s.size), n)
    col = c0[rep] + np.arange(rep.size) - np.repeat(np.cumsum(n) - n, n)
    ra = np.where(col == c0[rep], s[rep] - col * h, 0)
    rb = np.where(col == c1[rep], e[rep] - col * h, h)
    # output columns sampling each input column
    lo = np.searchsorted(cols, col, "left")
    hi = np.searchsorted(cols, col, "right")
    m = hi - lo
    rep2 = np.repeat(np.arange(col.size), m)
    oc = lo[rep2] + np.arange(rep2.size) - np.repeat(np.cumsum(m) - m, m)
    ora = np.searchsorted(rows, ra[rep2], "left")
    orb = np.searchsorted(rows, rb[rep2], "left")
    ok = orb > ora
    fs = oc[ok] * out_h + ora[ok]
    fe = oc[ok] * out_h + orb[ok]
    order = np.argsort(fs, kind="stable")
    fs, fe = fs[order], fe[order]
    if fs.size:  # merge touching runs (no zero-length background runs)
        brk = np.concatenate(([True], fs[1:] != fe[:-1]))
        fs = fs[brk]
        fe = fe[np.concatenate((np.flatnonzero(brk)[1:] - 1, [fe.size - 1]))]
    bounds = np.empty(2 * fs.size + 2, dtype=np.int64)
    bounds[0] = 0
    bounds[1:-1:2] = fs
    bounds[2:-1:2] = fe
    bounds[-1] = out_h * out_w
    runs = np.diff(bounds)
    if runs.size > 1 and runs[-1] == 0:  # canonical RLE has no trailing empty run
        runs = runs[:-1]
    out = mask_utils.frPyObjects({"size": [out_h, out_w], "counts": runs.tolist()}, out_h, out_w)
    return {"size": [out_h, out_w], "counts": out["counts"].decode("ascii")}


def rle_inter_union(a: Mapping[str, Any], b: Mapping[str, Any]) -> tuple[int, int]:
    """Intersection and union pixel counts of two same-size compressed RLEs (no decoding)."""
    ra, rb = _coco_rle(a), _coco_rle(b)
    if ra["size"] != rb["size"]:
        raise ValueError(f"rle_inter_union: sizes differ {ra['size']} vs {rb['size']}")
    i = int(mask_utils.area(mask_utils.merge([ra, rb], intersect=True)))
    return i, int(mask_utils.area(ra)) + int(mask_utils.area(rb)) - i


def mask_iou(a: np.ndarray | Mapping[str, Any], b: np.ndarray | Mapping[str, Any]) -> float:
    """Intersection over union of two same-size masks, each a ``(H, W)`` array (non-zero =
    foreground) or a compressed RLE.

    Returns:
        ``inter / union``; ``nan`` when both masks are empty (IoU is undefined there: decide
        in the metric whether that counts as 0, 1 or is skipped, and document it).
    """
    ra = _coco_rle(mask_to_rle(a) if isinstance(a, np.ndarray) else a)
    rb = _coco_rle(mask_to_rle(b) if isinstance(b, np.ndarray) else b)
    if ra["size"] != rb["size"]:
        raise ValueError(f"mask_iou: sizes differ {ra['size']} vs {rb['size']}")
    if not mask_utils.area(ra) and not mask_utils.area(rb):
        return float("nan")  # pycocotools says 0 here
    return float(mask_utils.iou([ra], [rb], [0])[0, 0])


def _coco_rle(rle: Mapping[str, Any]) -> dict[str, Any]:
    counts = rle["counts"]
    return {
        "size": [int(v) for v in rle["size"]],
        "counts": counts.encode("ascii") if isinstance(counts, str) else counts,
    }
