"""``generate``: the procedural Earth-observation benchmark, written in every official format.

Output tree (``--data-root`` for every task; paths as the official RemoteSAM scripts use them,
DATASETS.md)::

    <out>/manifest.json                                   what was written (sha256 per file)
    <out>/rrsisd/refs(unc).p                              REFER refs (train/val/test)
                                                          [ref, training]
    <out>/rrsisd/instances.json                           RRSIS-D-style instances
    <out>/images/rrsisd/JPEGImages/NNNNN.jpg
    <out>/DIORcoco/JPEGImages/NNNNN.jpg                   DIOR test images             [det, mlc]
    <out>/DIORcoco/Annotations/DIOR_test.json             COCO json, DIOR ids 1..20
    <out>/DOTAv2_patches/val/images/PNNNN__1__0___0.png   DOTA patches
                                                          [det obb, mlc]
    <out>/DOTAv2_patches/val/annfiles/PNNNN__1__0___0.txt    header-less DOTA labels
    <out>/iSAID/val/images/PNNNN.png                      iSAID images                 [seg]
    <out>/iSAID/val/masks/PNNNN_instance_color_RGB.png    iSAID colour masks
    <out>/potsdam/{img_dir,ann_dir}/val/2_13_K_0_S_S.png   ISPRS Potsdam labels 1..6  [seg]
    <out>/vaihingen/{img_dir,ann_dir}/val/area1_K_0_S_S.png ISPRS Vaihingen labels     [seg]
    <out>/RSVG/JPEGImages/NNNNN.jpg, RSVG/Annotations/NNNNN.xml, RSVG/{train,val,test}.txt   [vg]
    <out>/UCMerced_LandUse/Images/<class>/<class>NN.tif   land-use test scenes         [mcc]
    <out>/UCM_captions/Images/N.tif, UCM_captions/dataset.json                         [cap]
    <out>/Counting/test/DIOR/Images/NNNNN.png, .../Annotation/test_IMG_CT.json        [cnt]
    <out>/Counting/test/DOTAv2/Images/PNNNN.png, .../Annotation/test_IMG_CT.json
                                                                      [cnt, DOTA names]
    <out>/RefSegRS/..., RISBench/..., UDD5/val/..., DeepGlobe/DeepGlobe_test_1530/...,
    <out>/DeepGlobe_LandCover/train/...     [ref, seg; see remotesam.synth.refseg_sets]
    <out>/iSAID_patches/val/images/PNNNN.png, .../instancesonly_filtered_val.json     [det]
    <out>/UCMerced_LandUse/LandUse_Multilabeled.txt, AID_multilabel/, MultiScene-Clean/,
    <out>/MLRSNet/                   SATIN multi-label sets [mlc; see remotesam.synth.paper_sets]

Splits: object scenes ``train`` / ``val`` / ``test`` (the benchmark formats hold the test
scenes, under the split name each official evaluation uses: ``val`` for iSAID and DOTA, whose
test labels are withheld; REFER and RSVG hold all three, REFER's train/val add "{category} in the
image" refs with merged masks and empty-mask refs for absent categories, as RemoteSAM-270K does);
land-use scenes likewise (UC Merced folders hold the test scenes, UCM-captions all three splits,
REFER the train/val ones).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .expressions import caption_scene, referring_expressions
from .isprs import write_isprs
from .paper_sets import write_paper_sets
from .refseg_sets import write_refseg_sets
from .scene import Scene, render_landuse_scene, render_object_scene
from .vocab import (
    COUNT_NAMES,
    DIOR_CLASSES,
    DIOR_NAMES,
    DOTA_NAMES,
    ISAID_NAMES,
    ISAID_PALETTE,
    LANDUSE_TYPES,
    UCM_CLASSES,
    refer_categories,
)
from .writers import (
    encode_rle,
    write_dota_label,
    write_image,
    write_json,
    write_pickle,
    write_rsvg_xml,
    write_text,
)

__all__ = ["GENERATOR_VERSION", "SynthError", "SynthManifest", "generate"]

#: Bumped whenever the same seed can produce different bytes.
#: 2: the REFER train/val "{category} in the image" refs cover every word of the captioning
#: vocabulary (synonyms as positives, never-drawn things as negatives), 4 negatives per image.
#: 3: adds RISBench, RefSegRS, UDD5 and DeepGlobe (:mod:`remotesam.synth.refseg_sets`) and
#: ISPRS Potsdam / Vaihingen label PNGs (:mod:`remotesam.synth.isprs`); the files of
#: version 2 are unchanged.
#: 4: adds iSAID detection patches and the SATIN multi-label sets
#: (:mod:`remotesam.synth.paper_sets`); the files of version 3 are unchanged.
#: 5: the real releases' layouts: MLRSNet ``labels/`` (CRLF), AID per-scene image folders,
#: MultiScene's own header names, DeepGlobe road as GRSet's ``DeepGlobe_test_1530/{img,gt}``
#: (image and label bytes unchanged, paths and table text changed).
GENERATOR_VERSION = 5

MANIFEST = "manifest.json"
_SPLITS = ("train", "val", "test")
_SPLIT_CODE = {"train": 0, "val": 1, "test": 2}


class SynthError(ValueError):
    """Bad arguments to :func:`generate` or an output directory that cannot be used."""


@dataclass
class SynthManifest:
    """What :func:`generate` wrote.

    Attributes:
        root: the output directory (``--data-root`` for every task).
        seed, n_images, image_size: the arguments.
        counts: numbers of scenes, refs, images per format.
        datasets: task -> {name: relative path} of the main files/folders.
        files: relative POSIX path -> sha256 hex of every file written (manifest excluded).
    """

    root: Path
    seed: int
    n_images: int
    image_size: int
    object_scale: float = 1.0
    counts: dict[str, int] = field(default_factory=dict)
    datasets: dict[str, dict[str, str]] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "generator": "remotesam.synth",
            "version": GENERATOR_VERSION,
            "seed": self.seed,
            "n_images": self.n_images,
            "image_size": self.image_size,
            "object_scale": self.object_scale,
            "counts": self.counts,
            "datasets": self.datasets,
            "files": self.files,
        }

    def digest(self) -> str:
        """sha256 over all file hashes (one number for "same bytes")."""
        h = hashlib.sha256()
        for k in sorted(self.files):
            h.update(f"{k}\0{self.files[k]}\n".encode())
        return h.hexdigest()


# ---------------------------------------------------------------------------------------------
# validation


def _check_int(name: str, value: Any, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise SynthError(
            f"{name} must be an integer, got {type(value).__name__} {value!r}; "
            f"pass a whole number between {lo} and {hi}"
        )
    v = int(value)
    if not lo <= v <= hi:
        raise SynthError(f"{name} must be between {lo} and {hi}, got {v}")
    return v


def _prepare_out(out_dir: str | os.PathLike[str]) -> Path:
    if not isinstance(out_dir, (str, os.PathLike)):
        raise SynthError(f"out_dir must be a path, got {type(out_dir).__name__} {out_dir!r}")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise SynthError(
            f"output path {out} exists and is not a directory; choose a directory path"
        )
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise SynthError(
            f"cannot create output directory {out}: {e.strerror or e}; choose a writable location"
        ) from e
    if not os.access(out, os.W_OK | os.X_OK):
        raise SynthError(
            f"output directory {out} is not writable; choose a writable location or fix its "
            "permissions"
        )
    manifest = out / MANIFEST
    entries = [p for p in out.iterdir()]
    if entries and not manifest.is_file():
        raise SynthError(
            f"output directory {out} is not empty and holds no {MANIFEST} from a previous "
            "synth run; choose an empty or new directory (nothing was written)"
        )
    if manifest.is_file():
        # remove exactly what the previous run wrote, so no stale file survives
        try:
            old = json.loads(manifest.read_text(encoding="utf-8"))
            old_files = old["files"]
        except (ValueError, KeyError, TypeError) as e:
            raise SynthError(
                f"{manifest} is not a synth manifest ({e}); choose an empty directory"
            ) from e
        for rel in old_files:
            p = (out / rel).resolve()
            if out.resolve() in p.parents and p.is_file():
                p.unlink()
        manifest.unlink()
        for d in sorted(
            (p for p in out.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True
        ):
            if not any(d.iterdir()):
                d.rmdir()
    probe = out / ".synth_write_probe"
    try:
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise SynthError(f"output directory {out} is not writable: {e.strerror or e}") from e
    return out


# ---------------------------------------------------------------------------------------------
# prompt vocabulary for "{category} in the image" refs (training splits)

# group -> (phrases, category name, kinds, region names)
_PRESENCE: tuple[tuple[tuple[str, ...], str, frozenset[str], tuple[str, ...]], ...] = (
    (("airplane", "plane"), "airplane", frozenset({"airplane"}), ()),
    (("ship", "boat"), "ship", frozenset({"ship"}), ()),
    (("storagetank", "storage tank"), "storagetank", frozenset({"storagetank"}), ()),
    (("vehicle",), "vehicle", frozenset({"car", "truck"}), ()),
    (("small-vehicle", "car"), "small-vehicle", frozenset({"car"}), ()),
    (("large-vehicle", "truck"), "large-vehicle", frozenset({"truck"}), ()),
    (("tenniscourt", "tennis court"), "tenniscourt", frozenset({"tenniscourt"}), ()),
    (("windmill",), "windmill", frozenset({"windmill"}), ()),
    (("bridge",), "bridge", frozenset({"bridge"}), ()),
    (("swimming-pool", "swimming pool"), "swimming-pool", frozenset({"swimmingpool"}), ()),
    (("harbor",), "harbor", frozenset({"harbor"}), ()),
    (("water",), "water", frozenset(), ("water",)),
    (("river",), "river", frozenset(), ("river",)),
    (("beach", "sand"), "beach", frozenset(), ("beach",)),
    (("parkinglot", "parking lot"), "parkinglot", frozenset(), ("parkinglot",)),
    (("agricultural", "farmland"), "agricultural", frozenset(), ("agricultural",)),
    (("road",), "road", frozenset(), ("road",)),
    (("building", "house", "roof"), "building", frozenset(), ("building",)),
    (("tree",), "tree", frozenset(), ("tree",)),
    (("baseballfield", "baseball field"), "baseballfield", frozenset(), ("baseballfield",)),
    (("buildings",), "buildings", frozenset(), ("buildings",)),
    (("chaparral", "bush"), "chaparral", frozenset(), ("chaparral",)),
    (
        ("denseresidential", "dense residential area"),
        "denseresidential",
        frozenset(),
        ("denseresidential",),
    ),
    (("forest",), "forest", frozenset(), ("forest",)),
    (("freeway", "highway"), "freeway", frozenset(), ("freeway",)),
    (("golffield", "golf course"), "golffield", frozenset(), ("golffield",)),
    (("intersection",), "intersection", frozenset(), ("intersection",)),
    (
        ("mediumresidential", "medium residential area"),
        "mediumresidential",
        frozenset(),
        ("mediumresidential",),
    ),
    (("mobilehomepark", "mobile home park"), "mobilehomepark", frozenset(), ("mobilehomepark",)),
    (("overpass",), "overpass", frozenset(), ("overpass",)),
    (("runway",), "runway", frozenset(), ("runway",)),
    (
        ("sparseresidential", "sparse residential area"),
        "sparseresidential",
        frozenset(),
        ("sparseresidential",),
    ),
    (
        ("residential",),
        "residential",
        frozenset(),
        ("denseresidential", "mediumresidential", "sparseresidential"),
    ),
)

#: Classes of the official vocabularies (DIOR, DOTA, iSAID and the 37 captioning "potential
#: classes") that no synthetic scene contains (negatives). Captioning's "grass" is left out on
#: purpose: grass-textured ground is drawn but never annotated, so it is neither a positive nor
#: a negative.
_NEVER = (
    ("basketballcourt", "basketballcourt"),
    ("groundtrackfield", "groundtrackfield"),
    ("chimney", "chimney"),
    ("dam", "dam"),
    ("stadium", "stadium"),
    ("trainstation", "trainstation"),
    ("airport", "airport"),
    ("expressway-service-area", "Expressway-Service-area"),
    ("expressway-toll-station", "Expressway-toll-station"),
    ("helicopter", "helicopter"),
    ("roundabout", "roundabout"),
    ("soccer-ball-field", "soccer-ball-field"),
    ("bank", "bank"),
    ("stand", "stand"),
    ("waste land", "waste land"),
    ("pedestrian", "pedestrian"),
    ("villa", "villa"),
    ("trail", "trail"),
    ("park", "park"),
    ("people", "people"),
    ("bunker", "bunker"),
    ("container-crane", "container-crane"),
    ("helipad", "helipad"),
)

#: Empty-mask "{category} in the image" refs per train/val image.
_NEGATIVES_PER_IMAGE = 4


#: kind -> noun of DOTA counting questions (the official DOTA counting classes).
_DOTA_COUNT_NOUNS = {
    "airplane": "plane",
    "ship": "ship",
    "storagetank": "storage tank",
    "car": "vehicle",
    "truck": "vehicle",
    "tenniscourt": "tennis court",
    "bridge": "bridge",
    "swimmingpool": "swimming pool",
    "harbor": "harbor",
}


def _presence_masks(scene: Scene) -> list[tuple[tuple[str, ...], str, np.ndarray | None]]:
    out = []
    for phrases, cat, kinds, regions in _PRESENCE:
        m = np.zeros(scene.image.shape[:2], bool)
        for o in scene.objects:
            if o.kind in kinds:
                m |= o.mask
        for r in regions:
            if r in scene.regions:
                m |= scene.regions[r]
        out.append((phrases, cat, m if m.any() else None))
    return out


# ---------------------------------------------------------------------------------------------
# scenes


@dataclass
class _Item:
    scene: Scene
    split: str
    image_id: int
    rng_seed: list[int]


def _write_counting(
    out: Path,
    subset: str,
    named: list[tuple[str, _Item]],
    noun_of: Any,
    counts: dict[str, int],
    count_key: str,
) -> list[Any]:
    """Counting images and their Falcon-style question json under ``Counting/test/<subset>``:
    one question per (image, counted noun), ``noun_of(kind)`` naming a kind (None: not counted)."""
    files, questions = [], []
    for name, item in named:
        files.append(
            write_image(out / "Counting" / "test" / subset / "Images" / name, item.scene.image)
        )
        per: dict[str, int] = {}
        for o in item.scene.objects:
            noun = noun_of(o.kind)
            if noun is not None:
                per[noun] = per.get(noun, 0) + 1
        for noun in sorted(per):
            questions.append(
                {
                    "conversations": [
                        {
                            "content": f"<image>\n[IMG_CT]\nCount the number of {noun}.",
                            "from": "human",
                        },
                        {"content": str(per[noun]), "from": "gpt"},
                    ],
                    "crop": [],
                    "images": [f"{subset}/Images/{name}"],
                }
            )
    files.append(
        write_json(
            out / "Counting" / "test" / subset / "Annotation" / "test_IMG_CT.json",
            questions,
            indent=1,
        )
    )
    counts[count_key] = len(questions)
    return files


def _rng(*key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(k) for k in key]))


def _bbox(mask: np.ndarray) -> list[int]:
    if not mask.any():
        return [0, 0, 0, 0]
    ys, xs = np.nonzero(mask)
    return [int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1]


def generate(
    out_dir: str | os.PathLike[str],
    seed: int = 0,
    n_images: int = 48,
    image_size: int = 256,
    *,
    n_train: int | None = None,
    n_val: int | None = None,
    landuse_per_class: int | None = None,
    object_scale: float = 1.0,
) -> SynthManifest:
    """Render the synthetic benchmark into ``out_dir`` in every official format.

    Args:
        out_dir: output directory; created if missing. It must be empty or hold a previous
            synth run (whose files are replaced).
        seed: non-negative integer; same seed and arguments -> byte-identical files.
        n_images: object scenes in the **test** split (the benchmark of ref/seg/det/vg/mlc/cnt).
        image_size: side S of the square images in pixels (64..2048).
        n_train: object scenes in the train split (default ``n_images // 4``; pass more, e.g.
            400, to train a model on the set).
        n_val: object scenes in the val split (default ``max(2, n_images // 16)``).
        landuse_per_class: land-use test scenes per UC Merced class, all 21 classes (default
            ``max(1, n_images // 24)``, at most 10); val gets one per class (none when
            ``n_val`` is 0), train ``ceil(landuse_per_class * n_train / n_images)`` (at most 80).
        object_scale: multiplies the size of every randomly placed object (0.5..3; 1.0 gives
            DIOR-like sizes at 256 px; larger objects are easier for a tiny model).

    Returns:
        :class:`SynthManifest`, also written to ``out_dir/manifest.json``.

    Raises:
        SynthError: non-integer or out-of-range arguments, an output path that is a file, not
            writable, or a non-empty directory that is not a previous synth output.
    """
    seed = _check_int("seed", seed, 0, 2**63 - 1)
    n_images = _check_int("n_images", n_images, 1, 9000)
    image_size = _check_int("image_size", image_size, 64, 2048)
    n_train = n_images // 4 if n_train is None else _check_int("n_train", n_train, 0, 20000)
    n_val = max(2, n_images // 16) if n_val is None else _check_int("n_val", n_val, 0, 9000)
    lu = (
        min(max(1, n_images // 24), 10)
        if landuse_per_class is None
        else _check_int("landuse_per_class", landuse_per_class, 1, 10)
    )
    lu_counts = {
        "train": min(-(-lu * n_train // n_images), 80),
        "val": 1 if n_val else 0,
        "test": lu,
    }
    if (
        isinstance(object_scale, bool)
        or not isinstance(object_scale, (int, float))
        or not 0.5 <= object_scale <= 3.0
    ):
        raise SynthError(f"object_scale must be a number between 0.5 and 3, got {object_scale!r}")
    object_scale = float(object_scale)
    out = _prepare_out(out_dir)
    S = image_size

    # ---- render ------------------------------------------------------------------------
    obj_items: list[_Item] = []
    next_id = 1
    for split, n in (("train", n_train), ("val", n_val), ("test", n_images)):
        for i in range(n):
            key = [seed, 1, _SPLIT_CODE[split], i]
            obj_items.append(
                _Item(render_object_scene(_rng(*key), S, object_scale), split, next_id, key)
            )
            next_id += 1
    lu_items: dict[str, list[tuple[_Item, tuple[str, int, int]]]] = {s: [] for s in _SPLITS}
    for split in _SPLITS:
        for ci, folder in enumerate(LANDUSE_TYPES):
            for i in range(lu_counts[split]):
                key = [seed, 2, _SPLIT_CODE[split], ci, i]
                item = _Item(
                    render_landuse_scene(_rng(*key), S, folder, object_scale), split, next_id, key
                )
                next_id += 1
                lu_items[split].append((item, _ucm_index(folder, split, i)))

    files: list[Path] = []
    counts: dict[str, int] = {}

    # ---- REFER (ref benchmark + training) ------------------------------------------------
    refs: list[dict[str, Any]] = []
    anns: list[dict[str, Any]] = []
    images: list[dict[str, Any]] = []
    cat_id = {c["name"]: c["id"] for c in refer_categories()}
    img_dir = out / "images" / "rrsisd" / "JPEGImages"
    expressions: dict[int, list[tuple[int, str]]] = {}

    def add_ref(item: _Item, mask: np.ndarray, text: str, cat: str) -> None:
        ann_id = len(anns) + 1
        ref_id = len(refs) + 1
        anns.append(
            {
                "area": int(mask.sum()),
                "bbox": _bbox(mask),
                "categories_id": int(cat_id[cat]),
                "id": ann_id,
                "image_id": item.image_id,
                "segmentation": [encode_rle(mask)],
            }
        )
        refs.append(
            {
                "image_id": item.image_id,
                "split": item.split,
                "sentences": [
                    {"tokens": text.split(), "raw": text, "sent_id": ref_id, "sent": text}
                ],
                "file_name": f"{item.image_id:05d}.jpg",
                "category_id": int(cat_id[cat]),
                "ann_id": ann_id,
                "sent_ids": [ref_id],
                "ref_id": ref_id,
            }
        )

    refer_items = obj_items + [it for s in ("train", "val") for it, _ in lu_items[s]]
    for item in refer_items:
        sc = item.scene
        files.append(write_image(img_dir / f"{item.image_id:05d}.jpg", sc.image))
        images.append(
            {"file_name": f"{item.image_id:05d}.jpg", "height": S, "width": S, "id": item.image_id}
        )
        rng = _rng(*item.rng_seed, 7)
        exprs = referring_expressions(sc, rng)
        expressions[item.image_id] = [(e.index, e.text) for e in exprs]
        for e in exprs:
            o = sc.objects[e.index]
            cat = DIOR_NAMES[o.kind] or {"swimmingpool": "swimming-pool"}[o.kind]
            add_ref(item, o.mask, e.text, cat)
        if item.split == "test":
            continue
        present = _presence_masks(sc)
        for phrases, cat, m in present:
            if m is None:
                continue
            phrase = phrases[int(rng.integers(len(phrases)))]
            add_ref(item, m, f"{phrase} in the image" + ("." if rng.random() < 0.5 else ""), cat)
        absent = [(p[int(rng.integers(len(p)))], c) for p, c, m in present if m is None]
        absent += list(_NEVER)
        for j in rng.choice(
            len(absent), size=min(_NEGATIVES_PER_IMAGE, len(absent)), replace=False
        ):
            phrase, cat = absent[int(j)]
            add_ref(
                item,
                np.zeros((S, S), bool),
                f"{phrase} in the image" + ("." if rng.random() < 0.5 else ""),
                cat,
            )
    files.append(write_pickle(out / "rrsisd" / "refs(unc).p", refs))
    files.append(
        write_json(
            out / "rrsisd" / "instances.json",
            {"annotations": anns, "categories": refer_categories(), "images": images},
        )
    )
    for s in _SPLITS:
        counts[f"refer_refs_{s}"] = sum(r["split"] == s for r in refs)

    tests = [it for it in obj_items if it.split == "test"]

    # ---- DIOR COCO (det, mlc) --------------------------------------------------------------
    coco_imgs: list[dict[str, Any]] = []
    coco_anns: list[dict[str, Any]] = []
    for item in tests:
        files.append(
            write_image(
                out / "DIORcoco" / "JPEGImages" / f"{item.image_id:05d}.jpg", item.scene.image
            )
        )
        coco_imgs.append(
            {"file_name": f"{item.image_id:05d}.jpg", "height": S, "id": item.image_id, "width": S}
        )
        for o in item.scene.objects:
            name = DIOR_NAMES[o.kind]
            if name is None:
                continue
            x0, y0, x1, y1 = o.bbox_xyxy
            coco_anns.append(
                {
                    "area": o.area,
                    "bbox": [x0, y0, x1 - x0, y1 - y0],
                    "category_id": DIOR_CLASSES.index(name) + 1,
                    "id": len(coco_anns) + 1,
                    "image_id": item.image_id,
                    "iscrowd": 0,
                    "segmentation": [],
                }
            )
    coco_cats = [
        {"id": i + 1, "name": n, "supercategory": "none"} for i, n in enumerate(DIOR_CLASSES)
    ]
    files.append(
        write_json(
            out / "DIORcoco" / "Annotations" / "DIOR_test.json",
            {"annotations": coco_anns, "categories": coco_cats, "images": coco_imgs},
            indent=1,
        )
    )
    counts["dior_images"], counts["dior_boxes"] = len(coco_imgs), len(coco_anns)

    # ---- DOTA patches (det obb, mlc) -------------------------------------------------------
    n_dota = 0
    for k, item in enumerate(tests, start=1):
        stem = f"P{k:04d}__1__0___0"
        files.append(
            write_image(out / "DOTAv2_patches" / "val" / "images" / f"{stem}.png", item.scene.image)
        )
        rows = [(o.obb(), name, 0) for o in item.scene.objects if (name := DOTA_NAMES[o.kind])]
        files.append(
            write_dota_label(out / "DOTAv2_patches" / "val" / "annfiles" / f"{stem}.txt", rows)
        )
        n_dota += len(rows)
    counts["dota_boxes"] = n_dota

    # ---- iSAID colour masks (seg) ------------------------------------------------------------
    for k, item in enumerate(tests, start=1):
        stem = f"P{k:04d}"
        sem = np.zeros((S, S, 3), np.uint8)
        for o in item.scene.objects:
            name = ISAID_NAMES[o.kind]
            if name is not None:
                sem[o.mask] = ISAID_PALETTE[name]
        files.append(
            write_image(out / "iSAID" / "val" / "images" / f"{stem}.png", item.scene.image)
        )
        files.append(
            write_image(out / "iSAID" / "val" / "masks" / f"{stem}_instance_color_RGB.png", sem)
        )
    counts["isaid_images"] = len(tests)

    # ---- ISPRS Potsdam / Vaihingen label PNGs (seg) ------------------------------------------
    files += write_isprs(
        out / "potsdam", [(f"2_13_{k}_0_{S}_{S}", it.scene) for k, it in enumerate(tests)]
    )
    files += write_isprs(
        out / "vaihingen", [(f"area1_{k}_0_{S}_{S}", it.scene) for k, it in enumerate(tests)]
    )
    counts["isprs_images"] = len(tests)

    # ---- DIOR-RSVG (vg) -------------------------------------------------------------------
    split_idx: dict[str, list[int]] = {s: [] for s in _SPLITS}
    gidx = 0
    for item in sorted(obj_items, key=lambda it: it.image_id):  # XML files sorted by name
        objs = []
        for idx, text in expressions[item.image_id]:
            o = item.scene.objects[idx]
            name = DIOR_NAMES[o.kind]
            if name is None:
                continue
            objs.append((name, o.bbox_xyxy, text))
            split_idx[item.split].append(gidx)
            gidx += 1
        if not objs:
            continue
        files.append(
            write_image(out / "RSVG" / "JPEGImages" / f"{item.image_id:05d}.jpg", item.scene.image)
        )
        files.append(
            write_rsvg_xml(
                out / "RSVG" / "Annotations" / f"{item.image_id:05d}.xml",
                f"{item.image_id:05d}.jpg",
                (S, S),
                objs,
            )
        )
    for s in _SPLITS:
        files.append(write_text(out / "RSVG" / f"{s}.txt", (str(i) for i in split_idx[s])))
        counts[f"rsvg_{s}"] = len(split_idx[s])

    # ---- Counting (cnt) -------------------------------------------------------------------
    # DIOR: DIOR names; DOTA: DOTA vocabulary (cars and trucks are one "vehicle" class there)
    def dior_noun(kind: str) -> str | None:
        name = DIOR_NAMES[kind]
        return None if name is None else COUNT_NAMES[name]

    files += _write_counting(
        out,
        "DIOR",
        [(f"{it.image_id:05d}.png", it) for it in tests],
        dior_noun,
        counts,
        "count_questions",
    )
    files += _write_counting(
        out,
        "DOTAv2",
        [(f"P{k:04d}.png", it) for k, it in enumerate(tests, start=1)],
        _DOTA_COUNT_NOUNS.get,
        counts,
        "count_questions_dota",
    )

    # ---- RISBench, RefSegRS (ref), UDD5, DeepGlobe (seg) ----------------------------------
    extra_files, extra_datasets = write_refseg_sets(out, obj_items, expressions, seed, counts)
    files += extra_files

    # ---- UC Merced (mcc) and UCM-captions (cap) --------------------------------------------
    cap_images: list[dict[str, Any]] = []
    sent_id = 0
    for split in _SPLITS:
        for item, (folder, nn, number) in lu_items[split]:
            if split == "test":
                files.append(
                    write_image(
                        out / "UCMerced_LandUse" / "Images" / folder / f"{folder}{nn:02d}.tif",
                        item.scene.image,
                    )
                )
            files.append(
                write_image(out / "UCM_captions" / "Images" / f"{number}.tif", item.scene.image)
            )
            caps = caption_scene(item.scene, _rng(*item.rng_seed, 9))
            sents: list[dict[str, Any]] = []
            for c in caps:
                sents.append(
                    {"imgid": number - 1, "raw": c, "sentid": sent_id, "tokens": c[:-2].split()}
                )
                sent_id += 1
            cap_images.append(
                {
                    "filename": f"{number}.tif",
                    "imgid": number - 1,
                    "sentences": sents,
                    "sentids": [s["sentid"] for s in sents],
                    "split": split,
                }
            )
    cap_images.sort(key=lambda d: d["imgid"])
    files.append(
        write_json(
            out / "UCM_captions" / "dataset.json",
            {"dataset": "UCM", "images": cap_images},
            indent=1,
        )
    )
    counts["ucm_test_images"] = len(lu_items["test"])
    counts["ucm_caption_images"] = len(cap_images)
    counts["object_scenes"] = len(obj_items)

    # ---- iSAID detection patches (det) and SATIN multi-label sets (mlc) -----------------------
    paper_files, paper_datasets = write_paper_sets(out, tests, lu_items["test"], counts)
    files += paper_files

    manifest = SynthManifest(
        root=out,
        seed=seed,
        n_images=n_images,
        image_size=S,
        object_scale=object_scale,
        counts=counts,
        datasets={
            "ref": {"rrsisd": "rrsisd", "images": "images/rrsisd/JPEGImages"},
            "seg": {"isaid": "iSAID/val", "potsdam": "potsdam", "vaihingen": "vaihingen"},
            "det": {"dior": "DIORcoco", "dota": "DOTAv2_patches/val"},
            "mlc": {"dior": "DIORcoco", "dota": "DOTAv2_patches/val"},
            "vg": {"rsvg": "RSVG"},
            "mcc": {"ucm": "UCMerced_LandUse/Images"},
            "cap": {"ucm_captions": "UCM_captions"},
            "cnt": {"dior": "Counting/test/DIOR", "dotav2": "Counting/test/DOTAv2"},
            "train": {
                "refs": "rrsisd/refs(unc).p",
                "instances": "rrsisd/instances.json",
                "images": "images/rrsisd/JPEGImages",
            },
        },
        files={
            p.relative_to(out).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(set(files))
        },
    )
    for task, entries in [*extra_datasets.items(), *paper_datasets.items()]:
        manifest.datasets.setdefault(task, {}).update(entries)
    write_json(out / MANIFEST, manifest.to_dict(), indent=1)
    return manifest


def _ucm_index(folder: str, split: str, i: int) -> tuple[str, int, int]:
    """(folder, NN, N) of the i-th land-use image of a split: UCM-captions numbering, test =
    NN 90..99 (agricultural 80..89), val = 80..89 (agricultural 90..99), train = 0..79;
    ``N = class_index * 100 + NN + 1`` over the 21 official classes."""
    first = {"train": 0, "val": 80, "test": 90}[split]
    if folder == "agricultural" and split != "train":
        first = 170 - first
    nn = first + i
    return folder, nn, UCM_CLASSES.index(folder) * 100 + nn + 1
