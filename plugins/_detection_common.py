"""Readers shared by the detection, multi-label and counting plugins (DIOR COCO json, DOTA labels).

Everything here reads the benchmarks' *original* files and raises
:class:`remotesam.bench.api.DatasetError` naming the file, the line or field, what was found and
what was expected. Coordinates are absolute pixels; horizontal boxes are ``xyxy`` floats
(``[xmin, ymin, xmax, ymax]``, COCO ``xywh`` converted with ``x2 = x + w``); DOTA objects keep
their 4-point polygon ``[x0, y0, ..., x3, y3]`` (float64; truncated toward zero by default, as
the official loader's ``int(float(v))``) and the horizontal envelope of it.

Official class lists and orders (see ``../shared/docs/PROTOCOLS.md`` 2.3, 2.5, 2.8 and
``postprocess_golden.md`` section 3) live in :mod:`remotesam.classes` and are re-exported here
so that ``det``, ``mlc`` and ``cnt`` agree.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from remotesam.bench.api import DatasetError
from remotesam.bench.kit import read_json, read_text
from remotesam.classes import (
    DIOR_CLASSES,
    DIOR_PRIOR_AREAS,
    DOTA_CLASSES,
    DOTA_COUNT_CLASSES,
    DOTA_NAME_MAP,
    DOTA_PRIOR_AREAS,
)

__all__ = [
    "COUNTING_NAME_ALIASES",
    "DIOR_CLASSES",
    "DIOR_PRIOR_AREAS",
    "DOTA_CLASSES",
    "DOTA_COUNT_CLASSES",
    "DOTA_DIFFICULTIES",
    "DOTA_NAME_MAP",
    "DOTA_PRIOR_AREAS",
    "CocoDetections",
    "DotaObject",
    "read_coco_detection_json",
    "read_dota_label_file",
    "stable_seed",
]


#: Falcon question wording -> class name, where removing spaces / joining with hyphens does not
#: already give the class name (``"storage tank"`` -> ``"storagetank"`` needs no entry).
COUNTING_NAME_ALIASES: Mapping[str, str] = {
    "railway station": "trainstation",
    "train station": "trainstation",
    "golf course": "golffield",
    "plane": "airplane",
    "storage-tank": "storagetank",
    "baseball-diamond": "baseballfield",
    "baseball diamond": "baseballfield",
    "tennis-court": "tenniscourt",
    "basketball-court": "basketballcourt",
    "ground-track-field": "groundtrackfield",
    # DOTA-v2 counting (official DOTA ``convert_name``): the questions say "crane" for the
    # container-crane class; large and small vehicles are the one DOTA counting class "vehicle"
    # (the 17 DOTA counting priors have "vehicle" only). Aliases only apply when the target
    # name is one of the dataset's classes, so DIOR is unaffected.
    "crane": "container-crane",
    "container crane": "container-crane",
    "large vehicle": "vehicle",
    "large-vehicle": "vehicle",
    "small vehicle": "vehicle",
    "small-vehicle": "vehicle",
}


def stable_seed(text: str, base: int = 0) -> int:
    """A seed in ``[0, 2**31)`` derived from ``text`` (sha256), independent of process and order."""
    digest = hashlib.sha256(f"{base}:{text}".encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


# --------------------------------------------------------------------------------------------
# COCO json (DIOR)
# --------------------------------------------------------------------------------------------


@dataclass
class CocoDetections:
    """A COCO detection json read with categories mapped **by name** to an official class list.

    Attributes:
        path: the json file.
        images: list of ``{"id", "file_name", "width", "height"}`` in file order (width/height
            ``None`` when absent).
        boxes: image id -> ``(n, 4)`` float64 xyxy boxes.
        labels: image id -> list of ``n`` class names (official names).
        iscrowd: image id -> list of ``n`` ints, the annotations' ``iscrowd`` (0 when absent).
        areas: image id -> list of ``n`` floats, the annotations' ``area`` (``w * h`` when
            absent); COCO's area ranges read it.
        category_names: json category id -> official class name.
    """

    path: Path
    images: list[dict[str, Any]]
    boxes: dict[int, np.ndarray] = field(default_factory=dict)
    labels: dict[int, list[str]] = field(default_factory=dict)
    iscrowd: dict[int, list[int]] = field(default_factory=dict)
    areas: dict[int, list[float]] = field(default_factory=dict)
    category_names: dict[int, str] = field(default_factory=dict)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _finite_number(v: Any) -> bool:
    return _is_number(v) and math.isfinite(v)


def _json_int(v: Any) -> int | None:
    """``v`` as an int when it is a JSON integer (or an integral float), else ``None``."""
    if isinstance(v, bool) or not _is_number(v) or not math.isfinite(v) or int(v) != v:
        return None
    return int(v)


def _norm_name(name: str) -> str:
    return name.strip().lower().replace("_", "-")


def read_coco_detection_json(
    path: str | Path, classes: Sequence[str], aliases: Mapping[str, str] | None = None
) -> CocoDetections:
    """Read a COCO detection json, mapping ``categories[].name`` (not ids) onto ``classes``.

    Category names are compared case-insensitively with ``_`` read as ``-`` (native DIOR spells
    ``Expressway-Service-area``); ``aliases`` maps further spellings. Boxes ``bbox`` are COCO
    ``[x, y, w, h]`` and are returned as xyxy.

    Image ids are kept as the file has them (scoring uses them, as ``COCOeval`` does);
    ``iscrowd`` and ``area`` are kept per annotation.

    Raises:
        DatasetError: missing/truncated json, missing keys, an unknown category name, a
            category id used by an annotation but not declared, a bbox that is not 4 finite
            numbers with ``w, h >= 0`` (NaN, infinite, inverted), an ``iscrowd`` other than
            0/1, a NaN/infinite/negative ``area``, a non-integer image id, a non-positive or
            non-integer image ``width``/``height``, an annotation whose ``image_id`` is not in
            ``images``.
    """
    p = Path(path)
    data = read_json(p, "COCO detection annotation file")
    if not isinstance(data, dict):
        raise DatasetError(f"{p}: expected a COCO json object with images/annotations/categories")
    for key in ("images", "annotations", "categories"):
        if key not in data or not isinstance(data[key], list):
            raise DatasetError(f"{p}: missing or non-list field {key!r} (COCO detection format)")
    lookup = {_norm_name(c): c for c in classes}
    for a, b in (aliases or {}).items():
        lookup[_norm_name(a)] = b
    cat_names: dict[int, str] = {}
    for i, cat in enumerate(data["categories"]):
        if not isinstance(cat, dict) or "id" not in cat or "name" not in cat:
            raise DatasetError(f"{p}: categories[{i}] needs 'id' and 'name', found {cat!r}")
        name = lookup.get(_norm_name(str(cat["name"])))
        if name is None:
            raise DatasetError(
                f"{p}: categories[{i}].name = {cat['name']!r} is not an official class; "
                f"expected one of {list(classes)} (categories are matched by name, not id)"
            )
        cat_names[int(cat["id"])] = name
    images: list[dict[str, Any]] = []
    seen: set[int] = set()
    for i, im in enumerate(data["images"]):
        if not isinstance(im, dict) or "id" not in im or "file_name" not in im:
            raise DatasetError(f"{p}: images[{i}] needs 'id' and 'file_name', found {im!r}")
        iid = _json_int(im["id"])
        if iid is None:
            raise DatasetError(
                f"{p}: images[{i}].id = {im['id']!r} is not an integer (COCO image id)"
            )
        if iid in seen:
            raise DatasetError(f"{p}: images[{i}].id = {iid} appears twice")
        seen.add(iid)
        size: dict[str, int | None] = {}
        for key in ("width", "height"):
            v = im.get(key)
            n = None if v is None else _json_int(v)
            size[key] = n
            if v is not None and (n is None or n <= 0):
                raise DatasetError(
                    f"{p}: images[{i}].{key} = {v!r}; expected a positive integer (pixels) or no "
                    "field"
                )
        images.append({"id": iid, "file_name": str(im["file_name"]), **size})
    boxes: dict[int, list[list[float]]] = {}
    labels: dict[int, list[str]] = {}
    iscrowd: dict[int, list[int]] = {}
    areas: dict[int, list[float]] = {}
    for i, ann in enumerate(data["annotations"]):
        if not isinstance(ann, dict):
            raise DatasetError(f"{p}: annotations[{i}] is not an object")
        for key in ("image_id", "category_id", "bbox"):
            if key not in ann:
                raise DatasetError(f"{p}: annotations[{i}] has no {key!r} field")
        iid = _json_int(ann["image_id"])
        if iid is None or iid not in seen:
            raise DatasetError(
                f"{p}: annotations[{i}].image_id = {ann['image_id']!r} is not in images[]"
            )
        cid = _json_int(ann["category_id"])
        if cid is None or cid not in cat_names:
            raise DatasetError(
                f"{p}: annotations[{i}].category_id = {ann['category_id']!r} is not declared in "
                "categories[] "
                f"(declared ids: {sorted(cat_names)})"
            )
        bb = ann["bbox"]
        if (
            not isinstance(bb, list)
            or len(bb) != 4
            or not all(_finite_number(v) for v in bb)
            or bb[2] < 0
            or bb[3] < 0
        ):
            raise DatasetError(
                f"{p}: annotations[{i}].bbox = {bb!r}; expected COCO [x, y, width, height] of "
                "finite numbers with width, height >= 0 (NaN, infinite or inverted boxes cannot be "
                "scored; fix the converter that wrote the file)"
            )
        x, y, w, h = (float(v) for v in bb)
        crowd = ann.get("iscrowd", 0)
        if _json_int(crowd) not in (0, 1):
            raise DatasetError(f"{p}: annotations[{i}].iscrowd = {crowd!r}; expected 0 or 1")
        area = ann.get("area", w * h)
        if not _finite_number(area) or area < 0:
            raise DatasetError(
                f"{p}: annotations[{i}].area = {area!r}; expected a finite number >= 0 (or no "
                "field)"
            )
        boxes.setdefault(iid, []).append([x, y, x + w, y + h])
        labels.setdefault(iid, []).append(cat_names[cid])
        iscrowd.setdefault(iid, []).append(int(crowd))
        areas.setdefault(iid, []).append(float(area))
    out = CocoDetections(path=p, images=images, category_names=cat_names)
    for iid, bl in boxes.items():
        out.boxes[iid] = np.asarray(bl, dtype=np.float64).reshape(-1, 4)
        out.labels[iid] = labels[iid]
        out.iscrowd[iid] = iscrowd[iid]
        out.areas[iid] = areas[iid]
    return out


# --------------------------------------------------------------------------------------------
# DOTA label files
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DotaObject:
    """One DOTA object.

    Attributes:
        polygon: ``(8,)`` float64 ``[x0, y0, x1, y1, x2, y2, x3, y3]`` absolute pixels.
        name: the class name after :data:`DOTA_NAME_MAP` (``raw_name`` keeps the file's).
        difficult: 0 or 1 (official), 2 for objects truncated by ImgSplit patching.
        line: 1-based line number in the file.
    """

    polygon: np.ndarray
    name: str
    raw_name: str
    difficult: int
    line: int

    @property
    def bbox_xyxy(self) -> np.ndarray:
        """Horizontal envelope ``[min x, min y, max x, max y]`` of the polygon (float64)."""
        xs, ys = self.polygon[0::2], self.polygon[1::2]
        return np.array([xs.min(), ys.min(), xs.max(), ys.max()], dtype=np.float64)


#: Difficulty values of DOTA label files: 0/1 (official), 2 (objects cut by ImgSplit patching).
DOTA_DIFFICULTIES: frozenset[int] = frozenset({0, 1, 2})


def read_dota_label_file(
    path: str | Path, classes: Sequence[str] | None = None, *, truncate: bool = True
) -> list[DotaObject]:
    """Read a DOTA ``labelTxt`` / mmrotate ``annfiles`` file (with or without the two header lines).

    Each object line is ``x0 y0 x1 y1 x2 y2 x3 y3 class difficult`` (whitespace-separated, int
    or float coordinates). Every official file has the 10 fields; a 9-field line is rejected
    (DOTA_devkit would silently take difficulty 0, hiding a lost field). Header lines
    ``imagesource:...`` and ``gsd:...`` (possibly ``gsd:null``) are skipped, as are blank lines.

    Args:
        path: the label file.
        classes: when given, mapped class names must be in it.
        truncate: truncate coordinates toward zero as the official loader does
            (``int(float(v))``, default); ``False`` keeps the file's floats (v1.5/v2.0 labels
            carry fractions).

    Raises:
        DatasetError: naming the file and line for a line that does not have 10 fields, a
            coordinate that is not a finite number (NaN, ``inf``), a difficulty that is not one
            of 0, 1, 2 (NaN, infinite, negative, fractional or larger values), or an unknown
            class.
    """
    p = Path(path)
    text = read_text(p, "DOTA label file")
    allowed = set(classes) if classes is not None else None
    out: list[DotaObject] = []
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        low = line.lower()
        if low.startswith("imagesource:") or low.startswith("gsd:"):
            continue
        parts = line.split()
        if len(parts) != 10:
            raise DatasetError(
                f"{p}, line {lineno}: found {len(parts)} fields ({line!r}); expected 10: "
                "'x0 y0 x1 y1 x2 y2 x3 y3 class difficult' (a field is missing or extra; fix or "
                "re-export the label file)"
            )
        try:
            coords = np.array([float(v) for v in parts[:8]], dtype=np.float64)
        except ValueError:
            raise DatasetError(
                f"{p}, line {lineno}: the first 8 fields must be numbers, found {parts[:8]}"
            ) from None
        if not np.all(np.isfinite(coords)):
            raise DatasetError(
                f"{p}, line {lineno}: non-finite coordinate (NaN or infinite) in {parts[:8]}; "
                "expected 8 finite pixel coordinates"
            )
        if truncate:
            coords = np.trunc(coords)
        try:
            dval = float(parts[9])
        except ValueError:
            dval = math.nan
        if not math.isfinite(dval) or dval != int(dval) or int(dval) not in DOTA_DIFFICULTIES:
            raise DatasetError(
                f"{p}, line {lineno}: difficulty {parts[9]!r} is not an integer 0, 1 or 2 "
                "(field 10: 0 = normal, 1 = difficult, 2 = cut by patching)"
            )
        diff = int(dval)
        raw_name = parts[8]
        name = DOTA_NAME_MAP.get(raw_name, raw_name)
        if allowed is not None and name not in allowed:
            raise DatasetError(
                f"{p}, line {lineno}: unknown class {raw_name!r}; expected one of "
                f"{sorted(set(DOTA_NAME_MAP) | allowed)}"
            )
        out.append(DotaObject(coords, name, raw_name, diff, lineno))
    return out


def find_dir(root: Path, candidates: Sequence[str]) -> Path | None:
    """First existing directory ``root / c`` among ``candidates``, else ``None``."""
    for c in candidates:
        d = root / c
        if d.is_dir():
            return d
    return None
