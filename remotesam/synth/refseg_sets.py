"""RISBench, RefSegRS, UDD5 and DeepGlobe in their release formats, from the object scenes.

Written by :func:`write_refseg_sets` (one hook in :func:`remotesam.synth.generate`)::

    <out>/RefSegRS/images/<idx>.tif, masks/<idx>.tif (0/255), output_phrase_<split>.txt  [ref]
    <out>/RISBench/img_rgb/<idx>.png, mask/<idx>.png (0/255), output_phrase_<split>.txt   [ref]
    <out>/UDD5/val/src/<name>.JPG, UDD5/val/gt/<name>.png (0 vegetation .. 4 other)         [seg]
    <out>/DeepGlobe/DeepGlobe_test_1530/img/<id>_sat.jpg, gt/<id>_mask.png (GRSet; RGB,   [seg]
        road white)
    <out>/DeepGlobe_LandCover/train/<id>_sat.jpg, <id>_mask.png (RGB land-cover palette)     [seg]

Referring sets: one line "<idx> <expression>" per expression (the REFER expressions of the same
scenes, at most :data:`_PER_SCENE` per test scene and 1 per train/val scene, to keep the sets
small), ``idx`` counting from 1 across the three splits. Semantic sets: the first
:data:`_SEG_SCENES` test scenes; UDD5 vegetation = trees, building = buildings, road = roads,
vehicle = cars and trucks, other = the rest; DeepGlobe road = the road region; land cover:
water, forest (trees), urban (buildings, roads and land objects), rangeland (the rest).
DeepGlobe's masks are written with small
deterministic deviations from pure 0 / 255 (its README: values "may not be pure 0 and 255";
readers binarise at 128). Nothing here draws from the scenes' random streams, so the other
formats' bytes do not change.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image

from .writers import write_image, write_text

__all__ = ["write_refseg_sets"]

#: Expressions per test scene in RISBench / RefSegRS (train / val scenes: 1).
_PER_SCENE = 2
#: Test scenes written to UDD5 and DeepGlobe.
_SEG_SCENES = 24
_SPLITS = ("train", "val", "test")
_UDD5_OTHER = 4
_LC = {
    "urban": (0, 255, 255),
    "rangeland": (255, 0, 255),
    "forest": (0, 255, 0),
    "water": (0, 0, 255),
}


def _write_gray(path: Path, mask: np.ndarray) -> Path:
    """Single-channel uint8 image; TIFF through PIL, PNG through OpenCV."""
    path.parent.mkdir(parents=True, exist_ok=True)
    a = np.ascontiguousarray(mask.astype(np.uint8))
    if path.suffix.lower() in (".tif", ".tiff"):
        Image.fromarray(a, "L").save(path, format="TIFF", compression=None)
        return path
    ok, buf = cv2.imencode(".png", a, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    if not ok:
        raise OSError(f"OpenCV could not encode {path}")
    path.write_bytes(buf.tobytes())
    return path


def _jitter(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """0 -> 0..12 and 255 -> 243..255 per channel (never across the 128 threshold)."""
    noise = rng.integers(0, 13, size=rgb.shape, dtype=np.int16)
    out = np.where(rgb >= 128, 255 - noise, noise)
    return out.astype(np.uint8)


def write_refseg_sets(
    out: Path,
    items: Sequence[Any],
    expressions: dict[int, list[tuple[int, str]]],
    seed: int,
    counts: dict[str, int],
) -> tuple[list[Path], dict[str, dict[str, str]]]:
    """Write the four sets (module docstring) from the object scenes.

    Args:
        out: the benchmark root.
        items: object-scene items (``scene``, ``split``, ``image_id``) in generation order.
        expressions: image id -> ``[(object index, expression)]`` (the REFER expressions).
        seed: the benchmark seed (DeepGlobe's mask deviations are drawn from it).
        counts: filled with ``risbench_<split>`` / ``refsegrs_<split>`` line counts and
            ``udd5_images`` / ``deepglobe_images``.

    Returns:
        The files written, and manifest ``datasets`` entries (task -> name -> path).
    """
    files: list[Path] = []
    lines: dict[str, list[str]] = {s: [] for s in _SPLITS}
    idx = 0
    for item in items:
        limit = _PER_SCENE if item.split == "test" else 1
        for obj_index, text in expressions[item.image_id][:limit]:
            idx += 1
            mask = item.scene.objects[obj_index].mask.astype(np.uint8) * 255
            files.append(write_image(out / "RefSegRS" / "images" / f"{idx}.tif", item.scene.image))
            files.append(_write_gray(out / "RefSegRS" / "masks" / f"{idx}.tif", mask))
            files.append(write_image(out / "RISBench" / "img_rgb" / f"{idx}.png", item.scene.image))
            files.append(_write_gray(out / "RISBench" / "mask" / f"{idx}.png", mask))
            lines[item.split].append(f"{idx} {text}")
    for s in _SPLITS:
        for name in ("RefSegRS", "RISBench"):
            files.append(write_text(out / name / f"output_phrase_{s}.txt", lines[s]))
            counts[f"{name.lower()}_{s}"] = len(lines[s])

    tests = [it for it in items if it.split == "test"][:_SEG_SCENES]
    for k, item in enumerate(tests, start=1):
        sc = item.scene
        shape = sc.image.shape[:2]
        none = np.zeros(shape, bool)
        tree = sc.regions.get("tree", none)
        building = sc.regions.get("building", none)
        road = sc.regions.get("road", none)
        water = sc.regions.get("water", none)
        vehicles = np.zeros(shape, bool)
        land_objects = np.zeros(shape, bool)
        for o in sc.objects:
            if o.kind in ("car", "truck"):
                vehicles |= o.mask
            if o.kind != "ship":
                land_objects |= o.mask
        # UDD5: index labels, later classes painted over earlier ones
        udd = np.full(shape, _UDD5_OTHER, np.uint8)
        for value, region in ((0, tree), (1, building), (2, road), (3, vehicles)):
            udd[region] = value
        name = f"DJI_{k:04d}"
        files.append(write_image(out / "UDD5" / "val" / "src" / f"{name}.JPG", sc.image))
        files.append(_write_gray(out / "UDD5" / "val" / "gt" / f"{name}.png", udd))
        # DeepGlobe road extraction as GRSet ships its 1,530 test tiles (img/ + gt/, the
        # folders SegEarth-OV's deepglobe_road.py converter reads): RGB mask, road white
        rng = np.random.default_rng(np.random.SeedSequence([int(seed), 11, k]))
        stem = f"{100000 + k}"
        road_rgb = np.repeat((road[..., None] * 255).astype(np.uint8), 3, axis=2)
        grset = out / "DeepGlobe" / "DeepGlobe_test_1530"
        files.append(write_image(grset / "img" / f"{stem}_sat.jpg", sc.image))
        files.append(write_image(grset / "gt" / f"{stem}_mask.png", _jitter(road_rgb, rng)))
        # DeepGlobe land cover: RGB palette
        lc = np.empty((*shape, 3), np.uint8)
        lc[:] = _LC["rangeland"]
        for cls, region in (
            ("forest", tree),
            ("water", water),
            ("urban", building | road | land_objects),
        ):
            lc[region] = _LC[cls]
        files.append(
            write_image(out / "DeepGlobe_LandCover" / "train" / f"{stem}_sat.jpg", sc.image)
        )
        files.append(
            write_image(
                out / "DeepGlobe_LandCover" / "train" / f"{stem}_mask.png", _jitter(lc, rng)
            )
        )
    counts["udd5_images"] = counts["deepglobe_images"] = len(tests)
    datasets = {
        "ref": {"risbench": "RISBench", "refsegrs": "RefSegRS"},
        "seg": {
            "udd5": "UDD5/val",
            "deepglobe": "DeepGlobe/DeepGlobe_test_1530",
            "deepglobe_landcover": "DeepGlobe_LandCover/train",
        },
    }
    return files, datasets
