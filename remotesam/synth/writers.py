"""Byte-deterministic writers for the official file formats (DATASETS.md).

Every writer returns the paths it wrote. Determinism rules: JSON with sorted keys and no
timestamps, pickle protocol 2 of plain ``list``/``dict``/``str``/``int`` only, images encoded
with fixed settings (JPEG quality 95 via OpenCV, PNG compression 1 via OpenCV, uncompressed RGB
TIFF via Pillow).
"""

from __future__ import annotations

import json
import pickle
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import cv2
import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils

__all__ = [
    "encode_rle",
    "write_dota_label",
    "write_image",
    "write_json",
    "write_pickle",
    "write_rsvg_xml",
    "write_text",
]


def _ensure_parent(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)


def write_image(path: Path, image: np.ndarray) -> Path:
    """Write an ``(H, W, 3)`` uint8 RGB image; the format follows the suffix
    (``.jpg``/``.png``/``.tif``)."""
    _ensure_parent(path)
    suffix = path.suffix.lower()
    if suffix in (".tif", ".tiff"):
        Image.fromarray(image, "RGB").save(path, format="TIFF", compression=None)
        return path
    if suffix in (".jpg", ".jpeg"):
        ok, buf = cv2.imencode(".jpg", image[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95])
    elif suffix == ".png":
        ok, buf = cv2.imencode(".png", image[..., ::-1], [cv2.IMWRITE_PNG_COMPRESSION, 1])
    else:
        raise ValueError(f"write_image: unsupported image suffix {suffix!r} for {path}")
    if not ok:
        raise OSError(f"OpenCV could not encode {path}")
    path.write_bytes(buf.tobytes())
    return path


def write_json(path: Path, obj: Any, indent: int | None = None) -> Path:
    """JSON with sorted keys, UTF-8, trailing newline."""
    _ensure_parent(path)
    path.write_text(
        json.dumps(obj, sort_keys=True, indent=indent, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    return path


def write_pickle(path: Path, obj: Any) -> Path:
    """Pickle protocol 2 (as RRSIS-D's ``refs(unc).p``). ``obj`` must hold only plain Python
    containers and scalars, so a restricted unpickler can read it back."""
    _ensure_parent(path)
    path.write_bytes(pickle.dumps(obj, protocol=2))
    return path


def write_text(path: Path, lines: Iterable[str]) -> Path:
    _ensure_parent(path)
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    return path


def encode_rle(mask: np.ndarray) -> dict[str, Any]:
    """Compressed COCO RLE of an ``(H, W)`` bool/uint8 mask: ``{"size": [H, W], "counts": str}``."""
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)[:, :, None]))[0]
    return {"counts": rle["counts"].decode("ascii"), "size": [int(v) for v in rle["size"]]}


def write_rsvg_xml(
    path: Path,
    filename: str,
    size: tuple[int, int],
    objects: Sequence[tuple[str, Sequence[int], str]],
) -> Path:
    """DIOR-RSVG annotation: one ``<object>`` (name, bndbox xyxy ints, description) per referred
    object, element order as in the official files (name, pose, bndbox, description)."""
    h, w = size
    parts = [
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>',
        "<annotation>",
        f"  <filename>{escape(filename)}</filename>",
        "  <source>",
        "    <database>DIOR</database>",
        "  </source>",
        "  <size>",
        f"    <width>{w}</width>",
        f"    <height>{h}</height>",
        "    <depth>3</depth>",
        "  </size>",
        "  <segmented>0</segmented>",
    ]
    for name, box, desc in objects:
        x0, y0, x1, y1 = (int(v) for v in box)
        parts += [
            "  <object>",
            f"    <name>{escape(name)}</name>",
            "    <pose>Unspecified</pose>",
            "    <bndbox>",
            f"      <xmin>{x0}</xmin>",
            f"      <ymin>{y0}</ymin>",
            f"      <xmax>{x1}</xmax>",
            f"      <ymax>{y1}</ymax>",
            "    </bndbox>",
            f"    <description>{escape(desc)}</description>",
            "  </object>",
        ]
    parts.append("</annotation>")
    _ensure_parent(path)
    path.write_text("\n".join(parts), encoding="utf-8")
    return path


def write_dota_label(
    path: Path, rows: Sequence[tuple[np.ndarray, str, int]], header: bool = False
) -> Path:
    """DOTA label file: ``x1 y1 x2 y2 x3 y3 x4 y4 class difficulty`` per line, float
    coordinates with one decimal (v1.5/v2.0 style). Header-less by default (the
    mmrotate "annfiles" that RemoteSAM reads); ``header=True`` adds ``imagesource``/``gsd``."""
    lines = ["imagesource:synthetic", "gsd:null"] if header else []
    for corners, name, difficult in rows:
        coords = " ".join(f"{float(v):.1f}" for v in np.asarray(corners, np.float64).reshape(-1))
        lines.append(f"{coords} {name} {int(difficult)}")
    return write_text(path, lines)
