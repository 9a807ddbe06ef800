"""COCO-style annotation files for the built-in plugins (private module)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from remotesam.bench.api import DatasetError
from remotesam.bench.kit.files import read_json

__all__ = ["read_coco"]


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
