"""Helpers shared by the built-in task plugins (private module).

What lives here:

* **file reading with clear errors**: :func:`read_text` (UTF-8 text), :func:`read_json` (JSON
  with line/column on a syntax error), :func:`read_refer_pickle` (REFER ``refs(unc).p`` through a *restricted* unpickler that
  only rebuilds plain containers: never plain ``pickle.load``), :func:`require_dir` /
  :func:`require_file` (missing paths -> :class:`DatasetError` showing the expected layout);
* **REFER datasets** (RRSIS-D, RemoteSAM-270K): :func:`load_refer` reads ``refs(unc).p`` +
  ``instances.json`` with RRSIS-D's non-COCO quirks (``categories_id`` in annotations, xyxy
  ``bbox``, ``segmentation`` as a *list* of compressed RLE dicts, 0-based categories);
* **COCO helpers**: :func:`read_coco` (a COCO-style json, validated), :func:`segmentation_to_rle`
  (polygons / uncompressed RLE / compressed RLE -> compressed RLE with ``str`` counts);
* **masks**: :func:`mask_to_rle`, :func:`rle_to_mask`, :func:`resize_nearest`;
* **images**: :func:`load_image` (RGB ``uint8`` array, via ``remotesam.image.load_image`` when
  available), :func:`image_size` (header only), :func:`image_files`;
* **options and plugin plumbing**: :func:`check_options` (unknown option names),
  :func:`option_path`, :func:`parse_bool_option`, :func:`positive_int_option`,
  :func:`check_score_lengths`, :func:`sample_dataset_classes`.

Everything raises :class:`remotesam.bench.api.DatasetError` with the file, the field (or line)
and what was expected. Engineer G may append detection helpers at the end, clearly separated.
"""

from __future__ import annotations

import io
import json
import pickle
from collections.abc import Iterable, Mapping, Sequence, Sized
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils

from remotesam.bench.api import DatasetError

__all__ = [
    "IMAGE_EXTENSIONS",
    "ReferData",
    "ReferRef",
    "as_str_list",
    "check_images_exist",
    "check_options",
    "check_score_lengths",
    "image_files",
    "image_size",
    "load_image",
    "load_refer",
    "mask_to_rle",
    "nearest_index_map",
    "option_path",
    "parse_bool_option",
    "positive_int_option",
    "read_coco",
    "read_json",
    "read_refer_pickle",
    "read_text",
    "refer_gt_mask",
    "refer_split_matches",
    "require_dir",
    "require_file",
    "resize_nearest",
    "rle_counts",
    "rle_inter_union",
    "rle_resize_nearest",
    "rle_to_mask",
    "sample_dataset_classes",
    "segmentation_to_rle",
]

#: File extensions treated as images (lower case, with the dot).
IMAGE_EXTENSIONS: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")


# --------------------------------------------------------------------------------------------
# Paths
# --------------------------------------------------------------------------------------------


def _layout_hint(layout: str) -> str:
    return f"\nExpected layout:\n{layout.rstrip()}" if layout else ""


def _require(path: Path, exists: bool, kind: str, what: str, layout: str) -> Path:
    if not exists:
        raise DatasetError(
            f"{what}: {kind} {path} not found. Point the dataset root at the folder in the "
            f"official layout (or pass the matching option).{_layout_hint(layout)}"
        )
    return path


def require_dir(path: Path, what: str, layout: str = "") -> Path:
    """Return ``path`` if it is a directory, else raise :class:`DatasetError` showing ``layout``."""
    return _require(path, path.is_dir(), "directory", what, layout)


def require_file(path: Path, what: str, layout: str = "") -> Path:
    """Return ``path`` if it is a file, else raise :class:`DatasetError` showing ``layout``."""
    return _require(path, path.is_file(), "file", what, layout)


def option_path(options: Mapping[str, Any], key: str, default: Path) -> Path:
    """``Path(options[key])`` when the option is set (non-empty), else ``default``."""
    value = options.get(key)
    return Path(value) if value else default


def image_files(folder: Path) -> list[Path]:
    """Image files directly inside ``folder`` (extensions in :data:`IMAGE_EXTENSIONS`, any case;
    hidden files skipped), sorted by name."""
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_EXTENSIONS
    )


# --------------------------------------------------------------------------------------------
# JSON and pickle
# --------------------------------------------------------------------------------------------


def read_text(path: Path, what: str = "text file") -> str:
    """The UTF-8 text of a file.

    Raises:
        DatasetError: ``"<what>: file <path> not found"``, or ``"<what>: cannot read <path>:
            <reason>"`` for an unreadable or non-UTF-8 file.
    """
    path = Path(path)
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DatasetError(f"{what}: file {path} not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{what}: cannot read {path}: {exc}") from None


def read_json(path: Path, what: str = "JSON file") -> Any:
    """Parse a JSON file; a syntax error becomes :class:`DatasetError` with line and column.

    Raises:
        DatasetError: file missing, unreadable, not UTF-8 or not valid JSON.
    """
    path = Path(path)
    text = read_text(path, what)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise DatasetError(
            f"{what}: {path} is not valid JSON: {exc.msg} at line {exc.lineno}, column "
            f"{exc.colno} (truncated or corrupted file? re-download it)"
        ) from None


class _RestrictedUnpickler(pickle.Unpickler):
    """Rebuilds only plain data: containers, strings, numbers, numpy scalars/arrays.

    Any other global (functions, arbitrary classes) is refused, so a malicious pickle cannot
    execute code. Python-2 names (``__builtin__``, ``copy_reg``) are mapped by ``fix_imports``.
    """

    _ALLOWED: frozenset[tuple[str, str]] = frozenset(
        {
            ("builtins", "set"),
            ("builtins", "frozenset"),
            ("builtins", "dict"),
            ("builtins", "list"),
            ("builtins", "tuple"),
            ("builtins", "bytearray"),
            ("collections", "OrderedDict"),
            ("numpy", "dtype"),
            ("numpy.core.multiarray", "scalar"),
            ("numpy._core.multiarray", "scalar"),
            ("numpy.core.multiarray", "_reconstruct"),
            ("numpy._core.multiarray", "_reconstruct"),
            ("numpy", "ndarray"),
        }
    )

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(
            f"refused to load global {module}.{name} (only plain lists/dicts/strings/numbers "
            "are allowed in a REFER refs file)"
        )


def read_refer_pickle(path: Path) -> Any:
    """Load a REFER ``refs(unc).p`` safely (restricted unpickler; Python-2 pickles supported).

    Python-2 ``str`` objects are decoded as UTF-8, falling back to latin-1.

    Raises:
        DatasetError: missing, truncated, or holding anything but plain data.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DatasetError(f"REFER refs file {path}: cannot read: {exc}") from None
    last: Exception | None = None
    for encoding in ("utf-8", "latin1"):
        try:
            return _RestrictedUnpickler(io.BytesIO(data), encoding=encoding).load()
        except UnicodeDecodeError as exc:
            last = exc
            continue
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError, IndexError,
                AttributeError, ImportError) as exc:
            raise DatasetError(
                f"REFER refs file {path}: cannot unpickle ({type(exc).__name__}: {exc}); "
                "expected a pickled list of ref dicts (truncated download?)"
            ) from None
    raise DatasetError(f"REFER refs file {path}: undecodable strings ({last})")


# --------------------------------------------------------------------------------------------
# Masks
# --------------------------------------------------------------------------------------------


def mask_to_rle(mask: np.ndarray) -> dict[str, Any]:
    """Encode a 2-D 0/1 mask as COCO compressed RLE ``{"size": [h, w], "counts": str}``.

    Args:
        mask: ``(H, W)`` array; non-zero = foreground.
    """
    m = np.asfortranarray(np.asarray(mask) != 0, dtype=np.uint8)
    if m.ndim != 2:
        raise ValueError(f"mask_to_rle expects a 2-D mask, got shape {m.shape}")
    rle = mask_utils.encode(m)
    return {"size": [int(rle["size"][0]), int(rle["size"][1])], "counts": rle["counts"].decode("ascii")}


def rle_to_mask(rle: Mapping[str, Any]) -> np.ndarray:
    """Decode a compressed COCO RLE (``counts`` as ``str`` or ``bytes``) to ``(H, W)`` uint8 0/1."""
    counts = rle["counts"]
    if isinstance(counts, str):
        counts = counts.encode("ascii")
    if not isinstance(counts, bytes):
        raise ValueError("rle_to_mask expects compressed RLE (counts str/bytes); use segmentation_to_rle")
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
        height, width: image size, needed for polygons and checked against RLE sizes.
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
        return {"size": [height, width], "counts": counts.decode("ascii") if isinstance(counts, bytes) else counts}
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
        return np.asarray(Image.fromarray(a, mode="L").resize((out_w, out_h), Image.NEAREST))
    if a.size and (a.min() < -(2**31) or a.max() >= 2**31):
        raise ValueError("resize_nearest: values do not fit in int32")
    out = Image.fromarray(a.astype(np.int32), mode="I").resize((out_w, out_h), Image.NEAREST)
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
    out = np.asarray(idx.resize((n_out, 1), Image.NEAREST))[0].astype(np.int64)
    out.setflags(write=False)
    return out


def rle_counts(rle: Mapping[str, Any]) -> np.ndarray:
    """Run lengths of a compressed COCO RLE (column-major; first run is background).

    Vectorised decoder of pycocotools' string format (6-bit chars, 5 value bits, continuation
    bit 0x20, sign bit 0x10 on the last char, runs after the second coded as deltas of the run
    two before).

    Raises:
        ValueError: malformed string, or run lengths that do not sum to ``h * w``.
    """
    counts = rle["counts"]
    raw = np.frombuffer(counts.encode("ascii") if isinstance(counts, str) else bytes(counts), dtype=np.uint8)
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


def _coco_rle(rle: Mapping[str, Any]) -> dict[str, Any]:
    counts = rle["counts"]
    return {
        "size": [int(v) for v in rle["size"]],
        "counts": counts.encode("ascii") if isinstance(counts, str) else counts,
    }


# --------------------------------------------------------------------------------------------
# Images
# --------------------------------------------------------------------------------------------


def image_size(path: Path) -> tuple[int, int]:
    """``(height, width)`` read from the image header (the pixels are not decoded).

    Raises:
        DatasetError: missing or unreadable image.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            w, h = im.size
    except FileNotFoundError:
        raise DatasetError(f"image {path} not found") from None
    except (OSError, UnidentifiedImageError) as exc:
        raise DatasetError(f"image {path} is unreadable: {exc}") from None
    return int(h), int(w)


def load_image(path: str | Path) -> np.ndarray:
    """Load an image as ``(H, W, 3)`` uint8 RGB (alpha dropped, greyscale expanded).

    Uses ``remotesam.image.load_image`` when the package provides it, PIL otherwise.

    Raises:
        DatasetError: missing, truncated or undecodable file.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"image {path} not found (listed by the annotations but absent)")
    try:
        from remotesam.image import load_image as _load  # type: ignore[import-not-found]
    except ImportError:
        _load = None
    if _load is not None:
        try:
            arr = np.asarray(_load(path))
        except (OSError, ValueError, TypeError) as exc:
            raise DatasetError(f"image {path} is unreadable: {exc}") from None
    else:
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(path) as im:
                im.load()
                arr = np.asarray(im.convert("RGB"))
        except (OSError, UnidentifiedImageError, ValueError) as exc:
            raise DatasetError(f"image {path} is unreadable: {exc}") from None
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] < 3:
        raise DatasetError(f"image {path}: expected an RGB image, got array shape {arr.shape}")
    return np.ascontiguousarray(arr[:, :, :3])


# --------------------------------------------------------------------------------------------
# COCO json
# --------------------------------------------------------------------------------------------


def read_coco(path: Path, what: str = "COCO annotation file") -> dict[str, Any]:
    """Read and validate a COCO-style json (``images``, ``annotations``, ``categories`` lists).

    Checks that the three top-level lists exist and that every image has ``id`` and
    ``file_name``; returns the parsed dict unchanged.

    Raises:
        DatasetError: naming the file and the field (``images[3].file_name``...).
    """
    data = read_json(path, what)
    if not isinstance(data, dict):
        raise DatasetError(f"{what}: {path}: top level is a {type(data).__name__}, expected an object")
    for key in ("images", "annotations", "categories"):
        if not isinstance(data.get(key), list):
            raise DatasetError(f"{what}: {path}: field '{key}' missing or not a list")
    for i, img in enumerate(data["images"]):
        for key in ("id", "file_name"):
            if not isinstance(img, dict) or key not in img:
                raise DatasetError(f"{what}: {path}: images[{i}].{key} missing")
    return data


# --------------------------------------------------------------------------------------------
# REFER (RRSIS-D, RemoteSAM-270K)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReferRef:
    """One referred object with all its sentences.

    Attributes:
        ref_id, ann_id, image_id: ids from the refs file.
        split: the ref's split string (``"train"``, ``"val"``, ``"test"``, ``"testA"``...).
        file_name: image file name (relative to the image folder).
        category_id: as stored in the ref (0-based for RRSIS-D).
        sentences: ``(sent_id, text)`` pairs, in file order; ``text`` is the ``sent`` field
            (``raw`` when ``sent`` is absent).
        segmentation: the annotation's ``segmentation`` (RRSIS-D: list of RLE dicts).
        height, width: image size (from ``images[]`` or the RLE).
        bbox: the annotation's ``bbox`` as stored (RRSIS-D: **xyxy**), or None.
    """

    ref_id: int
    ann_id: int
    image_id: int
    split: str
    file_name: str
    category_id: int | None
    sentences: tuple[tuple[int, str], ...]
    segmentation: Any
    height: int
    width: int
    bbox: tuple[float, ...] | None = None


@dataclass
class ReferData:
    """Parsed REFER dataset: refs plus category names (id -> name)."""

    refs: list[ReferRef]
    categories: dict[int, str] = field(default_factory=dict)
    splits_found: tuple[str, ...] = ()


def _int_field(obj: Mapping[str, Any], key: str, where: str) -> int:
    if key not in obj:
        raise DatasetError(f"{where}: field '{key}' missing")
    try:
        return int(obj[key])
    except (TypeError, ValueError):
        raise DatasetError(f"{where}: field '{key}' = {obj[key]!r} is not an integer") from None


def refer_split_matches(ref_split: str, split: str) -> bool:
    """REFER ``getRefIds(split=...)`` rule: ``test*`` splits match by substring
    (``testA``/``testB``), ``train``/``val`` must match exactly."""
    if split in ("testA", "testB", "testC"):
        return split in ref_split
    if split == "test":
        return "test" in ref_split
    return ref_split == split


def load_refer(
    refs_path: Path,
    instances_path: Path,
    split: str | None,
    *,
    require_sentences: bool = True,
) -> ReferData:
    """Read a REFER dataset (``refs(unc).p`` + ``instances.json``), RRSIS-D flavour.

    Quirks handled: annotations carry ``categories_id`` (plural; ``category_id`` accepted too),
    ``bbox`` is xyxy (kept as stored), ``segmentation`` is a list holding one compressed RLE
    dict (a bare dict, polygons and uncompressed RLE are accepted too), categories are 0-based,
    ``area`` is ignored (it is not the mask pixel count). Image size comes from ``images[]``
    when listed there, else from the RLE ``size`` (RemoteSAM-270K lists fewer images than it
    uses).

    Args:
        refs_path: the pickle.
        instances_path: the json.
        split: keep refs of this split (REFER rule, see :func:`refer_split_matches`); None = all.
        require_sentences: raise when a ref has no sentence.

    Raises:
        DatasetError: naming the file, the ref index and the field.
    """
    refs_raw = read_refer_pickle(refs_path)
    if not isinstance(refs_raw, list):
        raise DatasetError(
            f"REFER refs file {refs_path}: top level is a {type(refs_raw).__name__}, expected a list "
            "of ref dicts"
        )
    inst = read_json(instances_path, "REFER instances file")
    if not isinstance(inst, dict) or not isinstance(inst.get("annotations"), list):
        raise DatasetError(f"REFER instances file {instances_path}: field 'annotations' missing or not a list")
    images: dict[int, tuple[int, int]] = {}
    for i, img in enumerate(inst.get("images") or []):
        where = f"{instances_path}: images[{i}]"
        if not isinstance(img, dict):
            raise DatasetError(f"{where}: expected an object")
        if "height" in img and "width" in img:
            images[_int_field(img, "id", where)] = (
                _int_field(img, "height", where),
                _int_field(img, "width", where),
            )
    anns: dict[int, tuple[int, Mapping[str, Any]]] = {}
    for i, ann in enumerate(inst["annotations"]):
        where = f"{instances_path}: annotations[{i}]"
        if not isinstance(ann, dict):
            raise DatasetError(f"{where}: expected an object")
        anns[_int_field(ann, "id", where)] = (i, ann)
    categories: dict[int, str] = {}
    for i, cat in enumerate(inst.get("categories") or []):
        if isinstance(cat, dict) and "id" in cat and "name" in cat:
            categories.setdefault(_int_field(cat, "id", f"{instances_path}: categories[{i}]"), str(cat["name"]))

    refs: list[ReferRef] = []
    splits_found: set[str] = set()
    seen_sent: set[int] = set()
    for r_idx, ref in enumerate(refs_raw):
        where = f"{refs_path}: ref #{r_idx}"
        if not isinstance(ref, dict):
            raise DatasetError(f"{where}: expected a dict, got {type(ref).__name__}")
        ref_split = str(ref.get("split", ""))
        splits_found.add(ref_split)
        if split is not None and not refer_split_matches(ref_split, split):
            continue
        ann_id = _int_field(ref, "ann_id", where)
        ref_id = _int_field(ref, "ref_id", where) if "ref_id" in ref else ann_id
        image_id = _int_field(ref, "image_id", where)
        if not isinstance(ref.get("file_name"), str) or not ref["file_name"]:
            raise DatasetError(f"{where} (ref_id {ref_id}): field 'file_name' missing or not a string")
        sents_raw = ref.get("sentences")
        if not isinstance(sents_raw, list) or (require_sentences and not sents_raw):
            raise DatasetError(f"{where} (ref_id {ref_id}): field 'sentences' missing or empty")
        sentences = []
        for s_idx, s in enumerate(sents_raw):
            s_where = f"{where} (ref_id {ref_id}): sentences[{s_idx}]"
            if not isinstance(s, dict):
                raise DatasetError(f"{s_where}: expected a dict")
            text = s.get("sent", s.get("raw"))
            if not isinstance(text, str) or not text.strip():
                raise DatasetError(f"{s_where}: field 'sent' (or 'raw') missing or empty")
            sent_id = _int_field(s, "sent_id", s_where) if "sent_id" in s else ref_id * 1000 + s_idx
            if sent_id in seen_sent:
                raise DatasetError(f"{s_where}: duplicate sent_id {sent_id}")
            seen_sent.add(sent_id)
            sentences.append((sent_id, text))
        if ann_id not in anns:
            raise DatasetError(
                f"{where} (ref_id {ref_id}): ann_id {ann_id} not found in {instances_path} "
                "(annotations[].id)"
            )
        a_idx, ann = anns[ann_id]
        a_where = f"{instances_path}: annotations[{a_idx}] (id {ann_id})"
        if "segmentation" not in ann:
            raise DatasetError(f"{a_where}: field 'segmentation' missing")
        seg = ann["segmentation"]
        if image_id in images:
            h, w = images[image_id]
        else:
            first = seg[0] if isinstance(seg, list) and seg and isinstance(seg[0], Mapping) else seg
            if isinstance(first, Mapping) and "size" in first:
                h, w = (int(v) for v in first["size"])
            else:
                raise DatasetError(
                    f"{a_where}: image {image_id} is not listed in images[] with height/width and "
                    "the segmentation is not an RLE with 'size'"
                )
        cat = ref.get("category_id", ann.get("categories_id", ann.get("category_id")))
        bbox = ann.get("bbox")
        refs.append(
            ReferRef(
                ref_id=ref_id,
                ann_id=ann_id,
                image_id=image_id,
                split=ref_split,
                file_name=ref["file_name"],
                category_id=None if cat is None else int(cat),
                sentences=tuple(sentences),
                segmentation=seg,
                height=h,
                width=w,
                bbox=None if not isinstance(bbox, list) else tuple(float(v) for v in bbox),
            )
        )
    return ReferData(refs=refs, categories=categories, splits_found=tuple(sorted(splits_found)))


def refer_gt_mask(ref: ReferRef, where: str) -> dict[str, Any]:
    """The official REF ground truth of a ref as one compressed RLE.

    Official rule (``REFER.getMask`` + ``ReferDataset``): decode every RLE of the segmentation
    list, sum them, and keep pixels where the sum **equals 1**. With the single RLE RRSIS-D
    stores, that is the RLE itself.
    """
    seg = ref.segmentation
    if isinstance(seg, list) and len(seg) > 1 and all(isinstance(s, Mapping) for s in seg):
        total = np.zeros((ref.height, ref.width), dtype=np.int32)
        for k, s in enumerate(seg):
            rle = segmentation_to_rle(s, ref.height, ref.width, f"{where}.segmentation[{k}]")
            total += rle_to_mask(rle)
        return mask_to_rle(total == 1)
    return segmentation_to_rle(seg, ref.height, ref.width, f"{where}.segmentation")


def check_images_exist(paths: Iterable[Path], what: str, layout: str = "") -> None:
    """Raise :class:`DatasetError` listing images named by the annotations but absent."""
    missing = [p for p in dict.fromkeys(paths) if not p.is_file()]
    if missing:
        shown = ", ".join(str(p) for p in missing[:5])
        more = f" (and {len(missing) - 5} more)" if len(missing) > 5 else ""
        raise DatasetError(
            f"{what}: {len(missing)} image(s) listed in the annotations are absent: {shown}{more}. "
            f"Complete the download or point the image folder option at them.{_layout_hint(layout)}"
        )


def as_str_list(value: Any, option: str) -> list[str]:
    """A list-of-strings option given as a list or a comma-separated string."""
    if isinstance(value, str):
        items = [v.strip() for v in value.split(",")]
    elif isinstance(value, Sequence):
        items = [str(v).strip() for v in value]
    else:
        raise DatasetError(f"option {option!r}: expected a list or a comma-separated string, got {value!r}")
    if not items or any(not v for v in items):
        raise DatasetError(f"option {option!r}: empty name in {value!r}")
    return items


# --------------------------------------------------------------------------------------------
# Options and plugin plumbing
# --------------------------------------------------------------------------------------------


def check_options(
    owner: str,
    options: Mapping[str, Any],
    allowed: Iterable[str] = (),
    *,
    error: type[Exception] = DatasetError,
    kind: str = "dataset",
) -> None:
    """Raise ``error`` naming the unknown option names of ``options`` and the allowed ones.

    Args:
        owner: prefix of the message (``"isaid"``, ``"cap task"``...).
        options: the options given.
        allowed: the accepted names; when empty the message says the ``kind`` has no options.
        error: :class:`DatasetError` for dataset adapters, ``ValueError`` for tasks.
        kind: ``"dataset"`` or ``"task"`` (only used when nothing is allowed).
    """
    allowed = frozenset(allowed)
    unknown = set(options) - allowed
    if unknown:
        hint = f"available: {sorted(allowed)}" if allowed else f"this {kind} has no options"
        raise error(f"{owner}: unknown option(s) {sorted(unknown)}; {hint}")


_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def parse_bool_option(task: str, key: str, value: Any, allow_auto: bool = False) -> bool | None:
    """``true/false`` (bool or string) option -> bool; ``auto`` -> None when allowed.

    Raises:
        ValueError: anything else, naming the task and the option.
    """
    if isinstance(value, bool):
        return value
    v = str(value).strip().lower()
    if allow_auto and v == "auto":
        return None
    if v in _TRUE:
        return True
    if v in _FALSE:
        return False
    choices = "true/false" + ("/auto" if allow_auto else "")
    raise ValueError(f"{task} task: option {key}={value!r}; expected {choices}")


def positive_int_option(task: str, options: Mapping[str, Any], key: str, default: int) -> int:
    """``int(options[key])`` (``default`` when absent), required to be > 0.

    Raises:
        ValueError: not an integer, or not positive (naming the task and the option).
    """
    try:
        value = int(options.get(key, default))
    except (TypeError, ValueError):
        raise ValueError(f"{task} task: option {key}={options[key]!r} is not an integer") from None
    if value <= 0:
        raise ValueError(f"{task} task: option {key} must be positive, got {value}")
    return value


def check_score_lengths(samples: Sized, predictions: Sized) -> None:
    """Raise ``ValueError`` unless ``score()`` got one prediction per sample."""
    if len(samples) != len(predictions):
        raise ValueError(f"score: {len(samples)} samples but {len(predictions)} predictions")


def sample_dataset_classes(task: Any, sample: Any) -> tuple[str, ...]:
    """Class list of the dataset a sample comes from (``sample.meta["dataset"]``, else the task's
    ``default_dataset``), looked up in ``task.datasets``.

    Raises:
        ValueError: the dataset named in ``meta`` is not one of the task's.
    """
    ds = str(sample.meta.get("dataset", task.default_dataset))
    if ds not in task.datasets:
        raise ValueError(f"sample {sample.sample_id}: unknown dataset {ds!r} in meta")
    return tuple(task.datasets[ds].classes)
