"""ISPRS Potsdam / Vaihingen label PNGs of the procedural benchmark (mmsegmentation layout).

mmsegmentation's ``tools/dataset_converters/potsdam.py`` / ``vaihingen.py`` write
``img_dir/<split>/<name>.png`` (RGB) and ``ann_dir/<split>/<name>.png`` (single channel, class
value ``v`` = :data:`remotesam.classes.POTSDAM_CLASSES` ``[v - 1]``, 0 = the ignored boundary
class after ``reduce_zero_label``-free conversion). The synthetic scenes map to those six classes:
roads and parking lots are *impervious surface*, buildings *building*, trees *tree*, cars
*car*, water and every other annotated object *clutter*, the rest of the ground *low vegetation*.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from .scene import Scene
from .writers import write_image

__all__ = ["isprs_label", "write_isprs"]

#: label values (POTSDAM_CLASSES order, 1-based)
_IMPERVIOUS, _BUILDING, _LOW_VEG, _TREE, _CAR, _CLUTTER = 1, 2, 3, 4, 5, 6
_REGION_VALUES: tuple[tuple[str, int], ...] = (
    ("road", _IMPERVIOUS), ("parkinglot", _IMPERVIOUS), ("runway", _IMPERVIOUS),
    ("freeway", _IMPERVIOUS), ("building", _BUILDING), ("tree", _TREE), ("forest", _TREE),
    ("water", _CLUTTER), ("river", _CLUTTER),
)


def isprs_label(scene: Scene) -> np.ndarray:
    """The ``(H, W)`` uint8 ISPRS label map of a scene (values 1..6, later layers win:
    ground, land-cover regions, then objects in drawing order)."""
    h, w = scene.image.shape[:2]
    lab = np.full((h, w), _LOW_VEG, np.uint8)
    for name, value in _REGION_VALUES:
        m = scene.regions.get(name)
        if m is not None:
            lab[m] = value
    for o in scene.objects:
        lab[o.mask] = _CAR if o.kind == "car" else _CLUTTER
    return lab


def write_isprs(root: Path, scenes: Sequence[tuple[str, Scene]], split: str = "val") -> list[Path]:
    """Write ``root/img_dir/<split>/<name>.png`` and ``root/ann_dir/<split>/<name>.png``.

    Args:
        root: dataset folder (``<data-root>/potsdam`` or ``<data-root>/vaihingen``).
        scenes: ``(name, scene)`` pairs; ``name`` is the file stem.
        split: split folder name (mmsegmentation evaluates ``val``).

    Returns:
        The written files.
    """
    files: list[Path] = []
    for name, sc in scenes:
        files.append(write_image(root / "img_dir" / split / f"{name}.png", sc.image))
        ann = root / "ann_dir" / split / f"{name}.png"
        ann.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(isprs_label(sc), "L").save(ann, format="PNG")
        files.append(ann)
    return files
