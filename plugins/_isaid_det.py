"""iSAID object detection (``det.isaid``): the iSAID devkit's COCO instance json, HBB and OBB.

Protocol (paper Tables 12-13; **no official RemoteSAM code** exists for iSAID detection, see
PROTOCOLS 2.3, so the standard iSAID benchmark protocol is reproduced):

* **Split ``val``** (iSAID's test annotations are withheld; the published rows are val).
* **Patches, by default**: the iSAID devkit (github.com/CAPTAIN-WHU/iSAID_Devkit) cuts every
  image larger than 800 px both ways into 800x800 patches with 200 px overlap
  (``preprocess/split.py``, names ``P0003_<y0>_<y1>_<x0>_<x1>.png``, smaller images copied
  whole, P1527/P1530 skipped) and writes ``instancesonly_filtered_val.json``
  (``preprocess.py --set train,val``, its default: with ``--set val`` alone the script pairs
  ``val`` with ``train/images`` and writes the train patches under the val name)
  (``preprocess/preprocess.py``: COCO polygons, categories named as in the devkit's
  ``labels.py``, ``ship`` ... ``Harbor``, objects of area <= 10 px dropped). This is the layout
  every published iSAID detector is scored on (the devkit, mmdetection/mmrotate iSAID configs),
  and RemoteSAM's own DOTA protocol is patch-level too. The images are the DOTA-v1.0 images.
* **HBB** (Table 12): the annotation's own ``bbox`` (COCO ``xywh``, the polygon envelope).
* **OBB** (Table 13): the minimum-area rectangle (``cv2.minAreaRect``) of each object's
  polygon points (all its polygons together), as 4 corners.
* **Metric**: COCO AP50 per class averaged over classes with ground truth (``mAP50``,
  ``pycocotools``), and ``mAP50_obb`` with oriented-polygon IoU under the same COCO matching
  (:func:`remotesam_plugins.metrics.detection.polygon_ap`); the detections-per-image limit is
  the iSAID devkit's ``maxDets=1000`` (its ``cocoeval.py`` ``Params``), not COCO's 100.
* Classes: the 15 iSAID classes under RemoteSAM's names (:data:`remotesam.classes.ISAID_CLASSES`,
  the official SEG.py order and prompts); json categories are mapped **by name**, case and
  ``_`` ignored (the released ``iSAID_train.json`` and ``iSAID_val.json`` number categories
  differently; mmdetection's ``store_tank`` is read as storage tank).
* The devkit numbers annotations from 0; ``COCOeval`` records a match as the matched
  annotation's id, so run on the devkit json itself it can never count annotation 0 as found
  (a pycocotools quirk). The ground truth reaches COCO here numbered from 1, so that one object
  of the set is scored like every other (tested against ``COCOeval`` on the json with ids + 1).
* Images without any object stay in the evaluation (their detections are false positives), as
  ``COCOeval`` over the json counts them.

Alternative (option ``layout=full``): whole DOTA images with the iSAID release's
``<split>/Annotations/iSAID_<split>.json`` and ``<split>/images/Pxxxx.png`` (the same
category names and polygons, un-patched). Options: ``layout`` (``patches``/``full``),
``ann_file``, ``image_dir``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, ClassVar

import cv2
import numpy as np

from remotesam.bench.api import DatasetAdapter, DatasetError, Sample
from remotesam.bench.api.datainfo import DatasetInfo
from remotesam.bench.kit import (
    check_images_exist,
    check_options,
    member_path,
    option_path,
    read_json,
    require_dir,
    require_file,
)
from remotesam.bench.kit.files import is_regular_file
from remotesam.classes import ISAID_CLASSES, ISAID_DEVKIT_NAMES

__all__ = ["ISAID_DET_MAX_DETS", "ISAIDDetectionAdapter", "isaid_obb", "read_isaid_instances"]

#: Detections kept per image by the iSAID devkit's ``COCOeval`` (``Params.maxDets[-1]``).
ISAID_DET_MAX_DETS = 1000

#: devkit / release category name (normalised) -> RemoteSAM iSAID class.
_NAME_MAP: dict[str, str] = {}


def _norm(name: str) -> str:
    return "".join(ch for ch in str(name).lower() if ch.isalnum())


for _devkit, _ours in zip(ISAID_DEVKIT_NAMES, ISAID_CLASSES, strict=True):
    _NAME_MAP[_norm(_devkit)] = _ours
    _NAME_MAP[_norm(_ours)] = _ours
# mmdetection's / mmsegmentation's iSAIDDataset spell storage tank ``store_tank``; jsons
# renamed to match them (a common step before training there) keep that name
_NAME_MAP["storetank"] = _NAME_MAP[_norm("storage_tank")]


def _json_int(v: Any) -> int | None:
    if (
        isinstance(v, bool)
        or not isinstance(v, (int, float))
        or not math.isfinite(v)
        or v != int(v)
    ):
        return None
    return int(v)


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def isaid_obb(points: np.ndarray) -> np.ndarray:
    """Oriented box of an object: ``cv2.minAreaRect`` of its ``(n, 2)`` polygon points.

    Returns:
        ``(8,)`` float64 ``[x0, y0, x1, y1, x2, y2, x3, y3]`` (``cv2.boxPoints`` order),
        absolute pixels; a single point or a line gives a degenerate (zero-area) rectangle.
    """
    pts = np.asarray(points, dtype=np.float32).reshape(-1, 2)
    return cv2.boxPoints(cv2.minAreaRect(pts)).astype(np.float64).reshape(8)


def _segmentation_points(seg: Any, where: str, height: int | None, width: int | None) -> np.ndarray:
    """All polygon vertices of a COCO ``segmentation`` (polygon list or RLE dict), ``(n, 2)``."""
    if isinstance(seg, list):
        polys = []
        for k, poly in enumerate(seg):
            if (
                not isinstance(poly, list)
                or len(poly) < 2
                or len(poly) % 2
                or not all(_finite(v) for v in poly)
            ):
                raise DatasetError(
                    f"{where}.segmentation[{k}]: expected a flat list [x0, y0, x1, y1, ...] of an "
                    f"even number of finite coordinates, found {str(poly)[:80]}"
                )
            polys.append(np.asarray(poly, dtype=np.float64).reshape(-1, 2))
        return np.concatenate(polys) if polys else np.zeros((0, 2))
    if isinstance(seg, dict) and "counts" in seg and "size" in seg:
        from pycocotools import mask as mask_utils

        try:
            rle = dict(seg)
            if isinstance(rle["counts"], list):
                h, w = (int(v) for v in rle["size"])
                rle = mask_utils.frPyObjects(rle, h, w)
            m = mask_utils.decode(rle)
        except (TypeError, ValueError, KeyError) as e:
            raise DatasetError(f"{where}.segmentation: unreadable RLE ({e})") from None
        ys, xs = np.nonzero(m)
        return np.stack([xs, ys], 1).astype(np.float64)
    raise DatasetError(
        f"{where}.segmentation: expected COCO polygons (list of lists) or an RLE object, found "
        f"{type(seg).__name__}"
    )


def read_isaid_instances(
    path: Path,
) -> tuple[list[dict[str, Any]], dict[int, dict[str, list[Any]]]]:
    """Read an iSAID COCO instance json (devkit patches or the full-image release).

    Returns:
        ``(images, objects)``: ``images`` in file order as ``{"id", "file_name", "width",
        "height"}``; ``objects``: image id -> ``{"bbox_xyxy", "labels", "iscrowd", "area",
        "polygons", "obb_from_bbox"}`` lists (``polygons`` are the ``(8,)`` minimum-area
        rectangles; an object without segmentation gets its box corners and
        ``obb_from_bbox`` True).

    Raises:
        DatasetError: naming the file and field for a missing list, an unknown category name,
            an undeclared category id, an annotation on an unknown image, a bbox that is not 4
            finite numbers with ``w, h >= 0``, a bad ``iscrowd``/``area``, a malformed
            polygon, duplicate image ids.
    """
    data = read_json(path, "iSAID instance annotation file")
    if not isinstance(data, dict):
        raise DatasetError(
            f"{path}: expected a COCO json object with images/annotations/categories"
        )
    for key in ("images", "annotations", "categories"):
        if not isinstance(data.get(key), list):
            raise DatasetError(f"{path}: missing or non-list field {key!r} (COCO instance format)")
    cats: dict[int, str] = {}
    for i, cat in enumerate(data["categories"]):
        if not isinstance(cat, dict) or _json_int(cat.get("id")) is None or "name" not in cat:
            raise DatasetError(
                f"{path}: categories[{i}] needs an integer 'id' and a 'name', found {cat!r}"
            )
        ours = _NAME_MAP.get(_norm(cat["name"]))
        if ours is None:
            raise DatasetError(
                f"{path}: categories[{i}].name = {cat['name']!r} is not an iSAID class; expected "
                f"one of {list(ISAID_DEVKIT_NAMES)} (matched by name, case and '_' ignored)"
            )
        cats[int(cat["id"])] = ours
    images: list[dict[str, Any]] = []
    seen: dict[int, dict[str, Any]] = {}
    for i, im in enumerate(data["images"]):
        iid = _json_int(im.get("id")) if isinstance(im, dict) else None
        if iid is None or not isinstance(im.get("file_name"), str) or not im["file_name"]:
            raise DatasetError(
                f"{path}: images[{i}] needs an integer 'id' and a 'file_name', found {im!r}"
            )
        if iid in seen:
            raise DatasetError(f"{path}: images[{i}].id = {iid} appears twice")
        size: dict[str, int | None] = {}
        for key in ("width", "height"):
            v = im.get(key)
            size[key] = None if v is None else _json_int(v)
            if v is not None and (size[key] is None or size[key] <= 0):  # type: ignore[operator]
                raise DatasetError(
                    f"{path}: images[{i}].{key} = {v!r}; expected a positive integer"
                )
        rec = {"id": iid, "file_name": im["file_name"], **size}
        seen[iid] = rec
        images.append(rec)
    objects: dict[int, dict[str, list[Any]]] = {}
    for i, ann in enumerate(data["annotations"]):
        where = f"{path}: annotations[{i}]"
        if not isinstance(ann, dict):
            raise DatasetError(f"{where} is not an object")
        for key in ("image_id", "category_id", "bbox"):
            if key not in ann:
                raise DatasetError(f"{where} has no {key!r} field")
        iid = _json_int(ann["image_id"])
        if iid is None or iid not in seen:
            raise DatasetError(f"{where}.image_id = {ann['image_id']!r} is not in images[]")
        cid = _json_int(ann["category_id"])
        if cid is None or cid not in cats:
            raise DatasetError(
                f"{where}.category_id = {ann['category_id']!r} is not declared in categories[] "
                f"(declared ids: {sorted(cats)})"
            )
        bb = ann["bbox"]
        if not (
            isinstance(bb, list)
            and len(bb) == 4
            and all(_finite(v) for v in bb)
            and bb[2] >= 0
            and bb[3] >= 0
        ):
            raise DatasetError(
                f"{where}.bbox = {bb!r}; expected COCO [x, y, width, height] of finite numbers "
                "with width, height >= 0"
            )
        x, y, w, h = (float(v) for v in bb)
        crowd = ann.get("iscrowd", 0)
        if _json_int(crowd) not in (0, 1):
            raise DatasetError(f"{where}.iscrowd = {crowd!r}; expected 0 or 1")
        area = ann.get("area", w * h)
        if not _finite(area) or area < 0:
            raise DatasetError(f"{where}.area = {area!r}; expected a finite number >= 0")
        seg = ann.get("segmentation")
        pts = (
            _segmentation_points(seg, where, seen[iid]["height"], seen[iid]["width"])
            if seg not in (None, [], {})
            else np.zeros((0, 2))
        )
        from_bbox = len(pts) == 0
        if from_bbox:
            pts = np.array([[x, y], [x + w, y], [x + w, y + h], [x, y + h]])
        o = objects.setdefault(
            iid,
            {
                "bbox_xyxy": [],
                "labels": [],
                "iscrowd": [],
                "area": [],
                "polygons": [],
                "obb_from_bbox": [],
            },
        )
        o["bbox_xyxy"].append([x, y, x + w, y + h])
        o["labels"].append(cats[cid])
        o["iscrowd"].append(int(crowd))
        o["area"].append(float(area))
        o["polygons"].append(isaid_obb(pts).tolist())
        o["obb_from_bbox"].append(from_bbox)
    return images, objects


class ISAIDDetectionAdapter(DatasetAdapter):
    """iSAID val in the devkit's patch layout (default) or whole images (``layout=full``).

    ``Sample.target``: ``bbox_xyxy`` ``(n, 4)`` (the json's ``bbox``, xyxy), ``polygons``
    ``(n, 8)`` (minimum-area rectangles of the object polygons), ``labels`` (RemoteSAM iSAID
    names), ``difficult`` (0), ``iscrowd``, ``area``. ``meta``: ``dataset``, ``image_id`` (the
    json's), ``file_name``, ``width``, ``height``, ``obb_from_bbox`` (objects without a polygon).
    Every image of the json is a sample, objects or not (``sample_id`` = ``file_name``).
    """

    name: ClassVar[str] = "isaid"
    splits: ClassVar[tuple[str, ...]] = ("val", "train")
    default_split: ClassVar[str] = "val"
    default_subdir: ClassVar[str] = "iSAID_patches"
    classes: ClassVar[tuple[str, ...]] = ISAID_CLASSES
    layout: ClassVar[str] = (
        "<root>/                                  (iSAID_patches, written by the iSAID devkit)\n"
        "  val/instancesonly_filtered_val.json    (COCO polygons, devkit category names)\n"
        "  val/images/P0003_0_800_0_800.png ...   (800x800 patches, overlap 200)\n"
        "layout=full: <root>/val/Annotations/iSAID_val.json + <root>/val/images/P0003.png\n"
    )
    info: ClassVar[DatasetInfo] = DatasetInfo(
        title="iSAID (detection)",
        source="Waqas Zamir et al., iSAID, CVPR-W 2019; https://captain-whu.github.io/iSAID/ "
        "(annotations) + DOTA-v1.0 images; patches by "
        "https://github.com/CAPTAIN-WHU/iSAID_Devkit preprocess/split.py + preprocess.py",
        licence="academic use only (iSAID / DOTA terms)",
        split="val",
        size=None,
        layout=("val/instancesonly_filtered_val.json", "val/images/*.png"),
        how_to_get="download iSAID train and val (semantic and instance masks) and the "
        "DOTA-v1.0 train/val images into iSAID/{train,val}/images, then run the iSAID devkit's "
        "preprocess/: python split.py --set train,val; python preprocess.py --set train,val "
        "(writes iSAID_patches/val/instancesonly_filtered_val.json; --set val alone makes a "
        "val json of the train patches)",
        counts={},
    )
    _OPTIONS: ClassVar[frozenset[str]] = frozenset({"layout", "ann_file", "image_dir"})

    def __init__(self, root: str | Path, split: str | None = None, **options: Any) -> None:
        super().__init__(root, split, **options)
        check_options(type(self).__name__, self.options, self._OPTIONS)
        self.layout_kind = str(self.options.get("layout", "patches")).lower()
        if self.layout_kind not in ("patches", "full"):
            raise DatasetError(
                f"{self.name}: option layout={self.options['layout']!r}; expected 'patches' (iSAID "
                "devkit 800 px patches, default) or 'full' (whole images, iSAID_<split>.json)"
            )
        base = self.root / self.split
        default_ann = (
            base / f"instancesonly_filtered_{self.split}.json"
            if self.layout_kind == "patches"
            else base / "Annotations" / f"iSAID_{self.split}.json"
        )
        self.ann_file = option_path(self.options, "ann_file", default_ann)
        self.image_dir = option_path(self.options, "image_dir", base / "images")
        require_file(self.ann_file, f"{self.name} annotation file", self.layout)
        require_dir(self.image_dir, f"{self.name} image folder", self.layout)

    def samples(self) -> list[Sample]:
        """One sample per image of the json, in json order.

        Raises:
            DatasetError: malformed json (file + field), duplicate file names, an empty json,
                images listed but absent.
        """
        images, objects = read_isaid_instances(self.ann_file)
        if not images:
            raise DatasetError(f"{self.ann_file}: images[] is empty; nothing to evaluate")
        out: list[Sample] = []
        seen: set[str] = set()
        for im in images:
            fn, iid = im["file_name"], im["id"]
            if fn in seen:
                raise DatasetError(f"{self.ann_file}: file_name {fn!r} appears for two image ids")
            seen.add(fn)
            o = objects.get(iid, {})
            n = len(o.get("labels", []))
            out.append(
                Sample(
                    sample_id=fn,
                    image=member_path(
                        self.image_dir, fn, f"{self.ann_file}: images[] id {iid} file_name"
                    ),
                    target={
                        "bbox_xyxy": o.get("bbox_xyxy", []),
                        "polygons": o.get("polygons", []),
                        "labels": o.get("labels", []),
                        "difficult": [0] * n,
                        "iscrowd": o.get("iscrowd", []),
                        "area": o.get("area", []),
                    },
                    meta={
                        "dataset": self.name,
                        "image_id": iid,
                        "file_name": fn,
                        "width": im["width"],
                        "height": im["height"],
                        "obb_from_bbox": int(sum(o.get("obb_from_bbox", []))),
                    },
                )
            )
        if self.layout_kind == "patches" and not any(is_regular_file(Path(s.image)) for s in out):
            raise DatasetError(
                f"{self.ann_file}: none of its {len(out)} images is in {self.image_dir} "
                f"(first: {out[0].meta['file_name']}). If the iSAID devkit's preprocess.py wrote "
                "it with --set val alone, it lists the train patches (the script pairs the sets "
                "with train/images, val/images by position): run python preprocess.py --set "
                "train,val"
            )
        check_images_exist(
            (Path(s.image) for s in out), f"{self.name} ({self.image_dir})", self.layout
        )
        return out
