"""``remotesam-bench data prepare``: the datasets' own releases -> what the adapters read.

* ``dior``: DIOR's Pascal-VOC XML (``Annotations/Horizontal Bounding Boxes/*.xml``, or the
  DIOR-R ``Annotations/Oriented Bounding Boxes/*.xml``, whose corner envelope is used) and
  ``ImageSets/Main/<split>.txt`` -> ``DIORcoco/Annotations/DIOR_<split>.json`` (COCO: image id =
  the file number, ``bbox`` xywh = ``[xmin, ymin, xmax - xmin, ymax - ymin]``, ``area = w * h``,
  ``iscrowd`` 0, ``segmentation`` [], annotation ids 1.. in file order, category ids 1..20 in
  RemoteSAM's DIOR order, names lower-cased) + ``DIORcoco/JPEGImages/`` (the split's images).
* ``dotav2``: DOTA ``images/*.png`` + ``labelTxt/*.txt`` -> ``DOTAv2_patches/<split>/{images,
  annfiles}``: the DOTA devkit's ``ImgSplit_multi_process`` rules (see :func:`split_dota_image`),
  patch names ``P0000__1__{left}___{up}.png``, header-less label lines.

Every run is idempotent (a second run finds every output and says so), resumable (outputs are
written per source image, each file through a temporary name and a rename, and an image counts
as done only when its marker is written last) and reports progress. A partial release stops the
command before anything is written, naming the first missing file.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from remotesam.bench.errors import EXIT_OK, InputError

__all__ = [
    "DIOR_COCO_CLASSES",
    "PREPARERS",
    "DOTAObject",
    "clip_polygon_to_rect",
    "dior_xml_to_coco",
    "format_dota_line",
    "parse_dota_labels",
    "prepare_command",
    "prepare_dior",
    "prepare_dota",
    "split_dota_image",
    "split_windows",
]

#: RemoteSAM's DIOR category order (ids 1..20).
DIOR_COCO_CLASSES: tuple[str, ...] = (
    "airplane", "airport", "baseballfield", "basketballcourt", "bridge", "chimney", "dam",
    "expressway-service-area", "expressway-toll-station", "golffield", "groundtrackfield",
    "harbor", "overpass", "ship", "stadium", "storagetank", "tenniscourt", "trainstation",
    "vehicle", "windmill",
)  # fmt: skip

_Progress = Callable[[str], None]


def _say(msg: str) -> None:
    print(msg, flush=True)


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _atomic_copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dst.name}.", suffix=".tmp", dir=dst.parent)
    os.close(fd)
    try:
        shutil.copyfile(src, tmp)
        os.replace(tmp, dst)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# -- DIOR ---------------------------------------------------------------------------------------


def _xml_int(obj: ET.Element, tag: str, where: str) -> float:
    el = obj.find(f".//{tag}")
    if el is None or el.text is None:
        raise InputError(f"{where}: <{tag}> is missing; expected a DIOR VOC XML object with "
                         "<bndbox> (horizontal) or <robndbox> (oriented) corners")
    try:
        return float(el.text.strip())
    except ValueError:
        raise InputError(f"{where}: <{tag}> is {el.text!r}, expected a number") from None


def _dior_objects(xml_path: Path) -> list[tuple[str, list[float]]]:
    """``(class name, [xmin, ymin, xmax, ymax])`` per ``<object>``; OBB corners -> envelope."""
    try:
        root = ET.parse(xml_path).getroot()
    except (ET.ParseError, OSError) as e:
        raise InputError(f"{xml_path}: not a readable XML file ({e}); download it again") from None
    out = []
    for k, obj in enumerate(root.iter("object")):
        where = f"{xml_path}: object {k}"
        name_el = obj.find("name")
        if name_el is None or not (name_el.text or "").strip():
            raise InputError(f"{where}: <name> is missing")
        name = (name_el.text or "").strip().lower()
        if name not in DIOR_COCO_CLASSES:
            raise InputError(f"{where}: class {name!r} is not one of the 20 DIOR classes")
        if obj.find("robndbox") is not None:
            xs = [_xml_int(obj, f"x_{c}", where) for c in
                  ("left_top", "right_top", "right_bottom", "left_bottom")]
            ys = [_xml_int(obj, f"y_{c}", where) for c in
                  ("left_top", "right_top", "right_bottom", "left_bottom")]
            box = [min(xs), min(ys), max(xs), max(ys)]
        else:
            box = [_xml_int(obj, t, where) for t in ("xmin", "ymin", "xmax", "ymax")]
        out.append((name, box))
    return out


def _num(v: float) -> int | float:
    return int(v) if float(v).is_integer() else float(v)


def dior_xml_to_coco(xml_files: Sequence[Path], sizes: Sequence[tuple[int, int]] | None = None,
                     ) -> dict[str, Any]:
    """Convert DIOR VOC XML files to the COCO json RemoteSAM's DET/MLC loaders read.

    Args:
        xml_files: one ``NNNNN.xml`` per image, in the order images are listed.
        sizes: ``(width, height)`` per file; default: the XML's ``<size>`` (DIOR: 800 x 800).

    Returns:
        ``{"images", "annotations", "categories"}``: image ``id`` = ``int(stem)``, ``bbox`` xywh
        absolute pixels, category ids 1..20 in :data:`DIOR_COCO_CLASSES` order.
    """
    images: list[dict[str, Any]] = []
    anns: list[dict[str, Any]] = []
    for i, xml_path in enumerate(xml_files):
        stem = xml_path.stem
        try:
            iid = int(stem)
        except ValueError:
            raise InputError(f"{xml_path}: DIOR file names are numbers (00001.xml ...)") from None
        if sizes is not None:
            w, h = sizes[i]
        else:
            root = ET.parse(xml_path).getroot()
            w = int(_xml_int(root, "width", str(xml_path)))
            h = int(_xml_int(root, "height", str(xml_path)))
        images.append({"id": iid, "file_name": f"{stem}.jpg", "width": w, "height": h})
        for name, (x0, y0, x1, y1) in _dior_objects(xml_path):
            bw, bh = x1 - x0, y1 - y0
            anns.append({"id": len(anns) + 1, "image_id": iid,
                         "category_id": DIOR_COCO_CLASSES.index(name) + 1,
                         "bbox": [_num(x0), _num(y0), _num(bw), _num(bh)], "area": _num(bw * bh),
                         "iscrowd": 0, "segmentation": []})
    cats = [{"id": i + 1, "name": n, "supercategory": "none"}
            for i, n in enumerate(DIOR_COCO_CLASSES)]
    return {"images": images, "annotations": anns, "categories": cats}


_DIOR_ANN_DIRS = ("Horizontal Bounding Boxes", "Oriented Bounding Boxes")
_DIOR_IMG_DIRS = ("JPEGImages-test", "JPEGImages-trainval", "JPEGImages")


def prepare_dior(src: str | Path, out: str | Path, split: str = "test",
                 progress: _Progress = _say) -> Path:
    """DIOR release -> ``<out>/DIORcoco/{Annotations/DIOR_<split>.json, JPEGImages/}``.

    ``src`` holds ``Annotations/Horizontal Bounding Boxes/`` (preferred) or
    ``Annotations/Oriented Bounding Boxes/``, ``ImageSets/Main/<split>.txt`` (``all`` = every
    XML) and the images in ``JPEGImages-test/``, ``JPEGImages-trainval/`` or ``JPEGImages/``.

    Returns:
        The written (or already complete) json path.

    Raises:
        InputError: a partial release (names the first missing file), before anything is written.
    """
    src, out = Path(src), Path(out)
    ann_dir = next((src / "Annotations" / d for d in _DIOR_ANN_DIRS
                    if (src / "Annotations" / d).is_dir()), None)
    if ann_dir is None:
        raise InputError(f"{src / 'Annotations' / _DIOR_ANN_DIRS[0]}: folder not found; --src must "
                         "be the unpacked DIOR release (Annotations/, ImageSets/, JPEGImages-*)")
    if split == "all":
        stems = sorted(p.stem for p in ann_dir.glob("*.xml"))
    else:
        list_file = src / "ImageSets" / "Main" / f"{split}.txt"
        if not list_file.is_file():
            raise InputError(f"{list_file}: not found; download DIOR's ImageSets (or pass "
                             "--split all to convert every XML)")
        stems = [ln.strip() for ln in list_file.read_text().splitlines() if ln.strip()]
    if not stems:
        raise InputError(f"{ann_dir}: no image listed for split {split!r}")
    xmls, imgs = [], []
    img_dirs = [src / d for d in _DIOR_IMG_DIRS if (src / d).is_dir()]
    for s in stems:
        x = ann_dir / f"{s}.xml"
        if not x.is_file():
            raise InputError(f"{x}: missing from the release; download DIOR's Annotations again")
        img = next((d / f"{s}.jpg" for d in img_dirs if (d / f"{s}.jpg").is_file()), None)
        if img is None:
            where = img_dirs[0] if img_dirs else src / _DIOR_IMG_DIRS[0]
            raise InputError(f"{where / (s + '.jpg')}: missing from the release; download "
                             "DIOR's JPEGImages-test / JPEGImages-trainval archives again")
        xmls.append(x)
        imgs.append(img)
    dst = out / "DIORcoco"
    json_path = dst / "Annotations" / f"DIOR_{split}.json"
    coco = dior_xml_to_coco(xmls)
    data = (json.dumps(coco, indent=1) + "\n").encode()
    todo = [(i, dst / "JPEGImages" / i.name) for i in imgs]
    todo = [(a, b) for a, b in todo if not (b.is_file() and b.stat().st_size == a.stat().st_size)]
    if not todo and json_path.is_file() and json_path.read_bytes() == data:
        progress(f"dior: {json_path} and {len(imgs)} image(s) are already complete; nothing to do")
        return json_path
    for k, (a, b) in enumerate(todo, 1):
        _atomic_copy(a, b)
        if k % 500 == 0 or k == len(todo):
            progress(f"dior: copied {k}/{len(todo)} image(s)")
    _atomic_write_bytes(json_path, data)
    progress(f"dior: wrote {json_path} ({len(coco['images'])} images, "
             f"{len(coco['annotations'])} boxes)")
    return json_path


# -- DOTA ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DOTAObject:
    """One labelTxt object: ``poly`` 8 numbers (x1, y1, ..., x4, y4, absolute pixels)."""

    poly: tuple[float, ...]
    name: str
    difficult: str


def parse_dota_labels(path: Path) -> list[DOTAObject]:
    """Read a DOTA ``labelTxt`` file as the devkit does (``parse_dota_poly2``): lines with fewer
    than 9 fields (the ``imagesource:`` / ``gsd:`` headers) are skipped, coordinates are
    truncated to ints (``int(float(v))``), a missing difficulty is ``"0"``."""
    out = []
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: cannot read the label file ({e})") from None
    for n, line in enumerate(text.splitlines(), 1):
        parts = line.strip().split(" ")
        if len(parts) < 9:
            continue
        try:
            poly = tuple(float(int(float(v))) for v in parts[:8])
        except ValueError:
            raise InputError(f"{path}:{n}: expected 8 numbers, a class and a difficulty, got "
                             f"{line.strip()!r}") from None
        out.append(DOTAObject(poly, parts[8], parts[9] if len(parts) >= 10 else "0"))
    return out


def split_windows(width: int, height: int, subsize: int = 1024, gap: int = 200,
                  ) -> list[tuple[int, int]]:
    """``(left, up)`` of the devkit's patches, in its order (columns outer, rows inner); the last
    window of a row/column is moved back to end at the image border (never below 0)."""
    slide = subsize - gap
    out = []
    left = 0
    while left < width:
        if left + subsize >= width:
            left = max(width - subsize, 0)
        up = 0
        while up < height:
            if up + subsize >= height:
                up = max(height - subsize, 0)
            out.append((left, up))
            if up + subsize >= height:
                break
            up += slide
        if left + subsize >= width:
            break
        left += slide
    return out


def _area(pts: Sequence[tuple[float, float]]) -> float:
    """Signed shoelace area (positive = counter-clockwise in a y-up frame)."""
    s = 0.0
    for (x0, y0), (x1, y1) in zip(pts, [*pts[1:], pts[0]], strict=True):
        s += x0 * y1 - x1 * y0
    return s / 2.0


def _simplify(pts: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Drop repeated and collinear vertices (as a GEOS overlay result has none)."""
    changed = True
    while changed and len(pts) >= 3:
        changed = False
        out: list[tuple[float, float]] = []
        for p in pts:
            if not out or p != out[-1]:
                out.append(p)
        if len(out) > 1 and out[0] == out[-1]:
            out.pop()
        n = len(out)
        keep = []
        for i in range(n):
            a, b, c = out[i - 1], out[i], out[(i + 1) % n]
            cross = (b[0] - a[0]) * (c[1] - b[1]) - (b[1] - a[1]) * (c[0] - b[0])
            if cross == 0.0:
                changed = True
                continue
            keep.append(b)
        if changed:
            pts = keep
        else:
            pts = out
    return pts


def clip_polygon_to_rect(pts: Sequence[tuple[float, float]], x0: float, y0: float, x1: float,
                         y1: float) -> list[tuple[float, float]]:
    """Intersection of a simple polygon with the rectangle ``[x0, x1] x [y0, y1]``
    (Sutherland-Hodgman; exact for the convex quadrilaterals of DOTA labels), without
    repeated or collinear vertices; ``[]`` when they do not overlap in an area."""
    poly = list(pts)
    for axis, bound, keep_ge in ((0, x0, True), (0, x1, False), (1, y0, True), (1, y1, False)):
        if not poly:
            break
        out: list[tuple[float, float]] = []
        for i, cur in enumerate(poly):
            prev = poly[i - 1]
            cin = cur[axis] >= bound if keep_ge else cur[axis] <= bound
            pin = prev[axis] >= bound if keep_ge else prev[axis] <= bound
            if cin != pin:
                t = (bound - prev[axis]) / (cur[axis] - prev[axis])
                q = (prev[0] + t * (cur[0] - prev[0]), prev[1] + t * (cur[1] - prev[1]))
                q = (bound, q[1]) if axis == 0 else (q[0], bound)
                out.append(q)
            if cin:
                out.append(cur)
        poly = out
    poly = _simplify(poly)
    return poly if len(poly) >= 3 and _area(poly) != 0.0 else []


def _poly4_from_poly5(p: list[float]) -> list[float]:
    """The devkit's ``GetPoly4FromPoly5``: merge the two ends of the shortest edge into their
    midpoint."""
    d = [math.hypot(p[i * 2] - p[i * 2 + 2], p[i * 2 + 1] - p[i * 2 + 3]) for i in range(4)]
    d.append(math.hypot(p[0] - p[8], p[1] - p[9]))
    pos = int(np.array(d).argsort()[0])
    out: list[float] = []
    for count in range(5):
        if count == pos:
            out.append((p[count * 2] + p[(count * 2 + 2) % 10]) / 2)
            out.append((p[(count * 2 + 1) % 10] + p[(count * 2 + 3) % 10]) / 2)
        elif count == (pos + 1) % 5:
            continue
        else:
            out += [p[count * 2], p[count * 2 + 1]]
    return out


def _best_point_order(p: list[float], ref: Sequence[float]) -> list[float]:
    """The devkit's ``choose_best_pointorder_fit_another``: the cyclic start closest to ``ref``."""
    combos = [p[2 * k:] + p[:2 * k] for k in range(4)]
    dst = np.array(ref, dtype=np.float64)
    dists = np.array([np.sum((np.array(c, dtype=np.float64) - dst) ** 2) for c in combos])
    return combos[int(dists.argsort()[0])]


def format_dota_line(poly: Sequence[float], name: str, difficult: str) -> str:
    """One header-less label line as the devkit writes it (``str`` of float64 coordinates)."""
    return " ".join(str(np.float64(v)) for v in poly) + f" {name} {difficult}"


def _patch_lines(objects: Sequence[DOTAObject], left: int, up: int, right: int, down: int,
                 subsize: int, thresh: float) -> list[str]:
    lines = []
    for obj in objects:
        pts = [(obj.poly[2 * i], obj.poly[2 * i + 1]) for i in range(4)]
        area = abs(_area(pts))
        if area <= 0:
            continue
        inside = all(left <= x <= right and up <= y <= down for x, y in pts)
        if inside:
            sub = [float(int(obj.poly[i] - (left if i % 2 == 0 else up))) for i in range(8)]
            lines.append(format_dota_line(sub, obj.name, obj.difficult))
            continue
        inter = clip_polygon_to_rect(pts, left, up, right, down)
        if not inter:
            continue
        ratio = abs(_area(inter)) / area
        if ratio <= 0:
            continue
        if _area(inter) < 0:  # shapely orient(sign=1): counter-clockwise exterior
            inter = inter[::-1]
        if len(inter) < 4 or len(inter) > 5:
            continue
        flat = [c for p in inter for c in p]
        if len(inter) == 5:
            flat = _poly4_from_poly5(flat)
        flat = _best_point_order(flat, obj.poly)
        sub = [float(int(flat[i] - (left if i % 2 == 0 else up))) for i in range(8)]
        sub = [1.0 if v <= 1 else (float(subsize) if v >= subsize else v) for v in sub]
        lines.append(format_dota_line(sub, obj.name, obj.difficult if ratio > thresh else "2"))
    return lines


def split_dota_image(image: np.ndarray, objects: Sequence[DOTAObject], stem: str,
                     subsize: int = 1024, gap: int = 200, thresh: float = 0.7,
                     padding: bool = True, rate: int | float = 1,
                     ) -> list[tuple[str, np.ndarray, list[str]]]:
    """Cut one DOTA image into patches with the DOTA devkit's ``ImgSplit_multi_process`` rules.

    Windows of ``subsize`` px every ``subsize - gap`` px (:func:`split_windows`); the window
    clip rectangle is ``[left, min(left + subsize, W - 1)] x [up, min(up + subsize, H - 1)]``.
    Per object (labelTxt ints): fully inside -> translated (``int`` of the difference); partly
    inside -> the intersection polygon (counter-clockwise; 3 or more than 5 vertices dropped, 5
    reduced to 4 by merging the shortest edge), its start vertex chosen closest to the original,
    translated, truncated, clamped to ``[1, subsize]``; difficulty kept when the kept area
    fraction is ``> thresh``, else ``"2"``. Patches smaller than ``subsize`` are zero-padded at
    the right/bottom when ``padding``.

    Args:
        image: ``(H, W, 3)`` uint8, channel order as read (BGR from OpenCV is kept).
        objects: the image's labels (:func:`parse_dota_labels`).
        stem: image name without suffix (``P0003``).

    Returns:
        ``(patch name, (subsize, subsize, 3) uint8 patch, label lines)`` per window, in the
        devkit's order; the name is ``{stem}__{rate}__{left}___{up}``.
    """
    if rate != 1:
        raise InputError("only rate 1 (no resizing) is supported")
    h, w = image.shape[:2]
    out = []
    for left, up in split_windows(w, h, subsize, gap):
        right, down = min(left + subsize, w - 1), min(up + subsize, h - 1)
        lines = _patch_lines(objects, left, up, right, down, subsize, thresh)
        sub = image[up:up + subsize, left:left + subsize]
        if padding and sub.shape[:2] != (subsize, subsize):
            padded = np.zeros((subsize, subsize, 3), np.uint8)
            padded[:sub.shape[0], :sub.shape[1]] = sub
            sub = padded
        out.append((f"{stem}__{rate}__{left}___{up}", np.ascontiguousarray(sub), lines))
    return out


def prepare_dota(src: str | Path, out: str | Path, split: str = "val", subsize: int = 1024,
                 gap: int = 200, thresh: float = 0.7, progress: _Progress = _say) -> Path:
    """DOTA split folder (``images/*.png`` + ``labelTxt/*.txt``) ->
    ``<out>/DOTAv2_patches/<split>/{images,annfiles}`` (:func:`split_dota_image`).

    Each source image is done when its marker ``.prepare/<stem>.done`` exists; markers are
    written after the image's patches, so an interrupted run resumes where it stopped.

    Returns:
        The patch folder (``<out>/DOTAv2_patches/<split>``).

    Raises:
        InputError: a missing folder, an image without its label file (named), an unreadable
            image; checked for every image before anything is written.
    """
    import cv2

    src, out = Path(src), Path(out)
    img_dir, lab_dir = src / "images", src / "labelTxt"
    for d in (img_dir, lab_dir):
        if not d.is_dir():
            raise InputError(f"{d}: folder not found; --src must be a DOTA split folder holding "
                             "images/ and labelTxt/ (e.g. DOTA-v2.0/val)")
    images = sorted(p for p in img_dir.iterdir() if p.suffix.lower() in (".png", ".jpg", ".tif")
                    and p.stem != "Thumbs")
    if not images:
        raise InputError(f"{img_dir}: no image; download the split's image archives")
    for p in images:
        if not (lab_dir / f"{p.stem}.txt").is_file():
            raise InputError(f"{lab_dir / (p.stem + '.txt')}: missing label file for {p.name}; "
                             "download the split's labelTxt archive again")
    dst = out / "DOTAv2_patches" / split
    marks = dst / ".prepare"
    settings = {"splitter": "DOTA_devkit ImgSplit_multi_process", "subsize": subsize,
                "gap": gap, "thresh": thresh, "padding": True, "rate": 1}
    sfile = marks / "settings.json"
    if sfile.is_file() and json.loads(sfile.read_text()) != settings:
        raise InputError(f"{dst}: holds patches cut with other settings ({sfile}); choose "
                         "another --out or remove that folder")
    todo = [p for p in images if not (marks / f"{p.stem}.done").is_file()]
    if not todo:
        progress(f"dotav2: all {len(images)} image(s) already split in {dst}; nothing to do")
        return dst
    _atomic_write_bytes(sfile, json.dumps(settings, sort_keys=True).encode())
    n_patches = 0
    for k, p in enumerate(todo, 1):
        img = cv2.imread(str(p), cv2.IMREAD_COLOR)
        if img is None:
            raise InputError(f"{p}: not a readable image; download it again")
        objs = parse_dota_labels(lab_dir / f"{p.stem}.txt")
        for name, patch, lines in split_dota_image(img, objs, p.stem, subsize, gap, thresh):
            ok, buf = cv2.imencode(".png", patch)
            if not ok:
                raise InputError(f"{p}: OpenCV could not encode patch {name}")
            _atomic_write_bytes(dst / "images" / f"{name}.png", buf.tobytes())
            _atomic_write_bytes(dst / "annfiles" / f"{name}.txt",
                                "".join(ln + "\n" for ln in lines).encode())
            n_patches += 1
        _atomic_write_bytes(marks / f"{p.stem}.done", b"")
        progress(f"dotav2: [{k + len(images) - len(todo)}/{len(images)}] {p.name}: "
                 f"{n_patches} patch(es) written so far")
    progress(f"dotav2: wrote {n_patches} patch(es) of {len(todo)} image(s) to {dst}")
    return dst


PREPARERS: dict[str, Callable[..., Path]] = {"dior": prepare_dior, "dotav2": prepare_dota}
_DEFAULT_SPLIT = {"dior": "test", "dotav2": "val"}


def prepare_command(args: argparse.Namespace) -> int:
    """``remotesam-bench data prepare NAME --src DIR --out DATA_ROOT [--split S]``."""
    src = Path(args.src)
    if not src.is_dir():
        raise InputError(f"--src {src}: not a folder; pass the unpacked release of {args.name}")
    split = args.split or _DEFAULT_SPLIT[args.name]
    try:
        PREPARERS[args.name](src, Path(args.out), split=split)
    except OSError as e:
        raise InputError(f"data prepare {args.name}: cannot write to {args.out} ({e}); pass a "
                         "writable --out") from None
    print(f"next: remotesam-bench data check --data-root {args.out} --tasks "
          f"{'det.dior,mlc.dior' if args.name == 'dior' else 'det.dotav2,mlc.dotav2'}",
          file=sys.stdout)
    return EXIT_OK
