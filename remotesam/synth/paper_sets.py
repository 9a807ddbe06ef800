"""Writers for the paper's iSAID detection and SATIN multi-label sets (Tables 12-13, Fig. 7).

Each set is written in its owners' release format from scenes the generator already rendered
(no new rendering, so the other formats' bytes are unchanged), small on purpose:

* ``iSAID_patches/val/`` -- what the iSAID devkit's ``split.py`` + ``preprocess.py`` write:
  images no larger than 800 px are copied whole (``P0001.png``, the same bytes as
  ``iSAID/val/images``), ``instancesonly_filtered_val.json`` with image and annotation ids from
  0, devkit category names and ids (``labels.py``), only the categories present, one
  annotation per object with its outer contours as polygons, ``area`` = pixel count
  (objects of <= 10 px dropped), ``bbox`` = the polygons' envelope (``polys_to_boxes``).
* ``UCMerced_LandUse/LandUse_Multilabeled.txt`` -- tab-separated, ``IMAGE\\LABEL`` + the 17
  hyphenated labels, for some of the UC Merced test scenes already written there.
* ``AID_multilabel/`` -- ``multilabel.csv`` (``IMAGE/LABEL`` + 17 labels), ``images_tr/`` and
  ``images_test/`` JPEGs in per-scene folders, ``<Scene>/<scene>_<n>.jpg``.
* ``MultiScene-Clean/`` -- ``Tra.csv`` / ``Test.csv`` (``name`` + the 36 scene classes as the
  owners' loader spells them, ``SolarPannel`` ...; rows name the image without extension) and
  ``images/<n>.jpg``.
* ``MLRSNet/`` -- ``labels/<category>.csv`` (``image`` + the 60 labels, CRLF line ends, as
  in the owners' copy at github.com/cugbrs/MLRSNet) and
  ``Images/<category>/<category>_<nnnnn>.jpg``.

Labels come from what each scene contains (object kinds and land-cover regions), mapped to each
dataset's vocabulary below; a label nothing in the scenes can show is always 0.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from remotesam.classes import (
    ISAID_DEVKIT_NAMES,
    MLRSNET_CLASSES,
    MULTISCENE_CLASSES,
    MULTISCENE_RELEASE_NAMES,
)

from .scene import Scene
from .vocab import ISAID_NAMES
from .writers import write_image, write_json, write_text

__all__ = ["PAPER_SET_IMAGES", "write_paper_sets"]

#: Images per SATIN set and iSAID detection patches written (kept small: the main job scores
#: every pair).
PAPER_SET_IMAGES = {"isaid": 16, "satin": 8}

_RES = ("denseresidential", "mediumresidential", "sparseresidential")
_PAVED = ("road", "parkinglot", "freeway", "intersection", "runway", "overpass")
_SEA = "@sea"  # water of a coast scene

# label -> (object kinds, region names) that make it positive
_UCM_AID: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "airplane": (("airplane",), ()), "bare-soil": ((), ()),
    "buildings": ((), ("building", "buildings", *_RES)), "cars": (("car", "truck"), ()),
    "chaparral": ((), ("chaparral",)), "court": (("tenniscourt",), ()), "dock": (("harbor",), ()),
    "field": ((), ("agricultural", "baseballfield", "golffield")), "grass": ((), ()),
    "mobile-home": ((), ("mobilehomepark",)), "pavement": ((), _PAVED), "sand": ((), ("beach",)),
    "sea": ((), (_SEA,)), "ship": (("ship",), ()), "tanks": (("storagetank",), ()),
    "trees": ((), ("tree", "forest")), "water": ((), ("water", "river")),
}  # fmt: skip

_MULTISCENE: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "apron": (("airplane",), ()), "baseball field": ((), ("baseballfield",)),
    "beach": ((), ("beach",)), "bridge": (("bridge",), ()), "farmland": ((), ("agricultural",)),
    "woodland": ((), ("forest",)), "golf course": ((), ("golffield",)),
    "parking lot": ((), ("parkinglot",)), "port": (("harbor",), ()),
    "residential": ((), (*_RES, "mobilehomepark")), "river": ((), ("river",)),
    "runway": ((), ("runway",)), "storage tank": (("storagetank",), ()),
    "tennis court": (("tenniscourt",), ()), "wind turbine": (("windmill",), ()),
    "sea": ((), (_SEA,)),
}  # fmt: skip

_MLRSNET: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "airplane": (("airplane",), ()), "baseball diamond": ((), ("baseballfield",)),
    "beach": ((), ("beach",)), "bridge": (("bridge",), ()),
    "buildings": ((), ("building", "buildings", *_RES)), "cars": (("car", "truck"), ()),
    "chaparral": ((), ("chaparral",)), "dense residential area": ((), ("denseresidential",)),
    "dock": (("harbor",), ()), "field": ((), ("agricultural",)), "forest": ((), ("forest",)),
    "freeway": ((), ("freeway",)), "golf course": ((), ("golffield",)),
    "habor": (("harbor",), ()), "intersection": ((), ("intersection",)),
    "mobile home": ((), ("mobilehomepark",)), "overpass": ((), ("overpass",)),
    "parking lot": ((), ("parkinglot",)), "pavement": ((), _PAVED), "river": ((), ("river",)),
    "road": ((), ("road",)), "runway": ((), ("runway",)), "sand": ((), ("beach",)),
    "sea": ((), (_SEA,)), "ships": (("ship",), ()),
    "sparse residential area": ((), ("sparseresidential",)),
    "swimming pool": (("swimmingpool",), ()), "tanks": (("storagetank",), ()),
    "tennis court": (("tenniscourt",), ()), "trees": ((), ("tree", "forest")),
    "water": ((), ("water", "river")), "wind turbine": (("windmill",), ()),
}  # fmt: skip

#: UC Merced folder (or object-scene layout) -> MLRSNet category folder.
_MLRSNET_CATEGORY = {
    "agricultural": "farmland", "airplane": "airplane", "baseballdiamond": "baseball_diamond",
    "beach": "beach", "buildings": "commercial_area", "chaparral": "chaparral",
    "denseresidential": "dense_residential_area", "forest": "forest", "freeway": "freeway",
    "golfcourse": "golf_course", "harbor": "harbor&port", "intersection": "intersection",
    "mediumresidential": "dense_residential_area", "mobilehomepark": "mobile_home_park",
    "overpass": "overpass", "parkinglot": "parking_lot", "river": "river", "runway": "airport",
    "sparseresidential": "sparse_residential_area", "storagetanks": "storage_tank",
    "tenniscourt": "tennis_court", "land": "industrial_area", "coast": "harbor&port",
}  # fmt: skip


def _present(scene: Scene, vocab: dict[str, tuple[tuple[str, ...], tuple[str, ...]]]) -> set[str]:
    kinds = {o.kind for o in scene.objects}
    regions = set(scene.regions)
    if scene.layout == "coast" and "water" in regions:
        regions.add(_SEA)
    return {lab for lab, (ks, rs) in vocab.items() if kinds & set(ks) or regions & set(rs)}


def _table(
    header: Sequence[str],
    rows: Sequence[tuple[str, set[str]]],
    labels: Sequence[str],
    delimiter: str,
) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, delimiter=delimiter, lineterminator="\n")
    w.writerow(header)
    for name, pos in rows:
        w.writerow([name, *("1" if lab in pos else "0" for lab in labels)])
    return buf.getvalue()


def _write_table(path: Path, text: str, crlf: bool = False) -> Path:
    if not crlf:
        return write_text(path, text.splitlines())
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes("".join(f"{line}\r\n" for line in text.splitlines()).encode("utf-8"))
    return path


def _isaid(out: Path, tests: Sequence[Any], counts: dict[str, int]) -> list[Path]:
    root = out / "iSAID_patches" / "val"
    devkit_id = {n: k + 1 for k, n in enumerate(ISAID_DEVKIT_NAMES)}
    images: list[dict[str, Any]] = []
    anns: list[dict[str, Any]] = []
    cats: dict[str, int] = {}
    files: list[Path] = []
    for k, item in enumerate(tests[: PAPER_SET_IMAGES["isaid"]]):
        stem = f"P{k + 1:04d}"
        sc = item.scene
        files.append(write_image(root / "images" / f"{stem}.png", sc.image))
        h, w = sc.image.shape[:2]
        images.append({"id": k, "width": w, "height": h, "file_name": f"{stem}.png",
                       "ins_file_name": f"{stem}_instance_id_RGB.png",
                       "seg_file_name": f"{stem}_instance_color_RGB.png"})  # fmt: skip
        for o in sc.objects:
            name = ISAID_NAMES[o.kind]
            if name is None or o.area <= 10:
                continue
            contours, _ = cv2.findContours(
                o.mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE
            )
            polys = [c.reshape(-1).astype(float).tolist() for c in contours if c.size > 4]
            if not polys:
                continue
            xy = np.concatenate([np.asarray(p).reshape(-1, 2) for p in polys])
            x0, y0 = xy.min(0)
            x1, y1 = xy.max(0)
            cats.setdefault(name, devkit_id[name])
            anns.append({"id": len(anns), "image_id": k, "segmentation": polys,
                         "category_id": devkit_id[name], "category_name": name, "iscrowd": 0,
                         "area": int(o.area),
                         "bbox": [float(x0), float(y0), float(x1 - x0), float(y1 - y0)]})
    categories = [{"id": i, "name": n} for n, i in cats.items()]
    files.append(
        write_json(
            root / "instancesonly_filtered_val.json",
            {"annotations": anns, "categories": categories, "images": images},
        )
    )
    counts["isaid_det_images"], counts["isaid_det_objects"] = len(images), len(anns)
    return files


def write_paper_sets(
    out: Path,
    tests: Sequence[Any],
    landuse_tests: Sequence[tuple[Any, tuple[str, int, int]]],
    counts: dict[str, int],
) -> tuple[list[Path], dict[str, dict[str, str]]]:
    """Write iSAID detection patches and the four SATIN multi-label sets under ``out``.

    Args:
        out: the benchmark root.
        tests: the test object scenes (generator items with ``.scene``), in order.
        landuse_tests: ``(item, (folder, NN, N))`` of the UC Merced test scenes, whose
            ``Images/<folder>/<folder>NN.tif`` the generator has written.
        counts: updated with the number of images per set.

    Returns:
        ``(files written, {task: {dataset: relative folder}})`` for the manifest.
    """
    files = _isaid(out, tests, counts)
    n = PAPER_SET_IMAGES["satin"]
    lu = list(landuse_tests)[:: max(1, len(landuse_tests) // n)][:n]
    objs = list(tests)[: n // 2]
    mixed = [it for pair in zip(objs, lu) for it in (pair[0], pair[1][0])][:n]

    # UC Merced multi-label: rows for the UC Merced test scenes already on disk
    ucm = list(_UCM_AID)
    rows = [(f"{folder}{nn:02d}", _present(item.scene, _UCM_AID)) for item, (folder, nn, _) in lu]
    files.append(
        _write_table(
            out / "UCMerced_LandUse" / "LandUse_Multilabeled.txt",
            _table(["IMAGE\\LABEL", *ucm], rows, ucm, "\t"),
        )
    )

    # AID multi-label: the first two images train, the rest test
    rows = []
    for i, item in enumerate(mixed):
        scene = item.scene.landuse or item.scene.layout
        name = f"{scene}_{i + 1}"
        folder = "images_tr" if i < 2 else "images_test"
        # per-scene folders, as the release (Airport/airport_1.jpg)
        files.append(
            write_image(
                out / "AID_multilabel" / folder / scene.capitalize() / f"{name}.jpg",
                item.scene.image,
            )
        )
        rows.append((name, _present(item.scene, _UCM_AID)))
    files.append(
        _write_table(
            out / "AID_multilabel" / "multilabel.csv", _table(["IMAGE/LABEL", *ucm], rows, ucm, ",")
        )
    )

    # MultiScene-Clean: Tra.csv holds the first two images, Test.csv the rest
    scene_labels = list(MULTISCENE_CLASSES)
    tables: dict[str, list[tuple[str, set[str]]]] = {"Tra.csv": [], "Test.csv": []}
    for i, item in enumerate(mixed):
        name = f"{i + 1:06d}"
        files.append(
            write_image(out / "MultiScene-Clean" / "images" / f"{name}.jpg", item.scene.image)
        )
        tables["Tra.csv" if i < 2 else "Test.csv"].append((name, _present(item.scene, _MULTISCENE)))
    for t, rows in tables.items():
        files.append(
            _write_table(
                out / "MultiScene-Clean" / t,
                _table(["name", *MULTISCENE_RELEASE_NAMES], rows, scene_labels, ","),
            )
        )

    # MLRSNet: one table per category of the images written
    ml = list(MLRSNET_CLASSES)
    per_cat: dict[str, list[tuple[str, set[str]]]] = {}
    for item in mixed:
        cat = _MLRSNET_CATEGORY.get(item.scene.landuse or item.scene.layout, "river")
        name = f"{cat}_{len(per_cat.get(cat, [])) + 1:05d}.jpg"
        files.append(write_image(out / "MLRSNet" / "Images" / cat / name, item.scene.image))
        per_cat.setdefault(cat, []).append((name, _present(item.scene, _MLRSNET)))
    for cat, rows in sorted(per_cat.items()):
        # the owners' copy (github.com/cugbrs/MLRSNet): lower-case labels/, CRLF line ends
        files.append(
            _write_table(
                out / "MLRSNet" / "labels" / f"{cat}.csv",
                _table(["image", *ml], rows, ml, ","),
                crlf=True,
            )
        )
    counts["satin_images"] = len(lu) + 3 * len(mixed)
    datasets = {
        "det": {"isaid": "iSAID_patches/val"},
        "mlc": {
            "ucm_multilabel": "UCMerced_LandUse",
            "aid_multilabel": "AID_multilabel",
            "multiscene": "MultiScene-Clean",
            "mlrsnet": "MLRSNet",
        },
    }
    return files, datasets
