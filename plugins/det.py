"""Object detection (``det``): DIOR (COCO json) and DOTA-v2 (label files), COCO AP per class.

Protocol reproduced (official ``tasks/code/eval/DET.py`` / ``DET.sh``, ``DET_DOTA.py``):

* DIOR test from ``DIORcoco/Annotations/DIOR_test.json`` + ``JPEGImages/``; only images that
  have at least one annotation are evaluated (the official lists are built from annotations).
* One ``model.detection(image, classes, box_type="hbb", epoc=...)`` call per image over the
  dataset's official classes (prompt ``"{class} in the image"`` inside the predictor); EPOC on
  for DIOR (``DET.sh`` passes ``--EPOC``), off for DOTA (``DET_DOTA.sh``).
* Detections become COCO results ``bbox = [int(x1), int(y1), int(x2 - x1), int(y2 - y1)]``
  (truncation, as the official writer), ``score = conf``.
* ``pycocotools.COCOeval`` ``bbox`` per class (``params.catIds=[c]``): the per-class AP50
  (``summarize()``'s second number) is reported in ``tables["per_class"]``; ``mAP50`` is their
  plain mean over classes that have ground truth (the paper's Table 12 number; **no official
  script averages them**, see PROTOCOLS 2.3).
* The ground truth reaches COCO as in the original file: the json's own image ids
  (``images[].id``; COCO ranks score ties across images by image id), ``iscrowd=1``
  annotations as crowd regions (ignored; IoU over the detection's area), the annotations'
  ``area``; ``maxDets=100`` per image (COCO) for DIOR. The numbers equal ``COCOeval`` run on the
  original json (tested on a file with non-sequential ids, tied scores and crowd objects).
* DOTA coordinates are truncated toward zero (``int(float(v))``), as the official
  ``DOTA_style`` loader reads them.

Deviations and additions, all deliberate:

* Categories of the COCO json are mapped **by name**, never by id (public DIOR->COCO
  converters disagree on ids; a wrong order would silently score the wrong class). An unknown
  category name is a :class:`DatasetError`.
* COCO is run once over all classes instead of once per class; the per-class numbers are
  identical (COCO evaluates categories independently; tested).
* ``mAP`` (COCO mAP@[.5:.95]) and ``mAP75`` are printed by the official ``summarize()`` but never
  reported: listed as non-official.
* ``mAP50_obb`` (paper Table 13; **no official code**): COCO-protocol AP50 with oriented-polygon
  IoU, computed when predictions carry OBBs (task option ``box_type=obb|both``) and the dataset
  has polygons (DOTA). NaN otherwise, with the reason in ``tables["notes"]``.
* DOTA has **no detections-per-image cap** by default: the DOTA protocol keeps every
  detection, while COCO's ``maxDets=100`` cuts dense patches (a real patch with 295 objects:
  small-vehicle AP50 39.9 capped vs 98.3 uncapped). ``max_dets=100`` restores the COCO cap;
  DIOR keeps COCO's 100 (``max_dets=auto``).
* DOTA: the official script runs ``test-dev`` (labels not public) and only writes submission
  files; we score the ``val``/``train`` patches, whose labels are public. Label files are read
  with or without the two header lines (the official loader crashes on headers); a line
  must have all 10 fields (DOTA_devkit would read a 9-field line as difficulty 0, hiding a
  lost field; the official loader ignores difficulty altogether). The
  ``difficult`` flag is kept and, with ``difficult=ignore``, objects with difficulty >= 1 are
  COCO "ignore" regions (DOTA devkit practice); by default every object counts, as the
  official loaders read every line. A difficulty other than 0, 1 or 2, a NaN or infinite
  coordinate are :class:`DatasetError` naming file and line (the official loader never reads
  the difficulty and would carry NaN boxes into scoring). Degenerate (zero-area) polygons are
  kept, as officially: they can only be missed.
* DIOR json, a ``file_name`` under two image ids: the official code evaluates every image id
  (each with its own annotations and its own predictions), so does the harness by default; the
  repeat's sample id is ``"<file_name>#<image id>"`` and a
  :class:`~remotesam.bench.api.DatasetWarning` gives the count. Dataset option
  ``duplicates=error`` (``--dataset-opt det.dior.duplicates=error``) refuses the file.
* DIOR json: NaN, infinite or negative-size ``bbox``, ``iscrowd`` other than 0/1, NaN or
  negative ``area``, non-integer ids and sizes are :class:`DatasetError` naming file and
  field (``COCOeval`` would silently score them); so is a ``file_name`` that points outside
  ``JPEGImages/`` (absolute, or with ``..``).
* Dataset option ``coords=float`` keeps DOTA's fractional coordinates (not official); task
  option ``image_ids=sequential`` numbers images 1..n in sample order instead of using the
  json's ids (not official: changes how score ties rank).
* With ``box_type=obb`` the HBB metrics use the polygons' horizontal envelopes (not the
  ``M2B`` component boxes).
* Only COCO's "all" area range is evaluated (small/medium/large are never reported; the
  "all" numbers are unchanged, 4x faster); ``tables["coco_stats"]`` has -1 for the others.
* ``coco_backend=faster-coco-eval`` swaps in the C++ COCO evaluator (same numbers to 1e-6,
  tested); it cannot handle ``difficult=ignore``.

Task options (``--task-opt``): ``box_type`` (``hbb``/``obb``/``both``, default ``hbb``),
``epoc`` (``auto``/``true``/``false``; ``auto`` = as the official scripts: DIOR with EPOC
when the predictor was built with an EPOC model, DOTA without), ``coco_backend``
(``pycocotools``/``faster-coco-eval``), ``difficult`` (``keep``/``ignore``), ``max_dets``
(``auto`` = 100 for DIOR, none for DOTA; ``none``; or an integer), ``image_ids``
(``dataset``/``sequential``). Dataset option (``--dataset-opt det.dotav2.coords=...``):
``coords`` (``int``/``float``). ``max_dets`` and ``image_ids`` only affect scoring.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from remotesam.bench.api import (
    DatasetAdapter,
    DatasetError,
    DatasetWarning,
    MetricSpec,
    Prediction,
    Sample,
    Scores,
    TaskPlugin,
)
from remotesam.bench.api.datainfo import DatasetInfo
from remotesam.bench.api.predictions import BoxesPrediction, Detections, PredictionFormatError
from remotesam.bench.kit import (
    check_images_exist,
    check_options,
    check_score_lengths,
    image_files,
    member_path,
    option_path,
    parse_bool_option,
    require_dir,
    require_file,
    sample_dataset_classes,
)

from ._datasets import DATASET_INFO
from ._detection_common import (
    DIOR_CLASSES,
    DOTA_CLASSES,
    find_dir,
    read_coco_detection_json,
    read_dota_label_file,
)
from ._isaid_det import ISAID_DET_MAX_DETS, ISAIDDetectionAdapter
from .metrics._stats import nanmean
from .metrics.detection import (
    COCO_BACKENDS,
    COCO_MAX_DETS,
    coco_bbox_ap,
    coco_bbox_inputs,
    polygon_ap,
    polygon_to_xyxy,
)

__all__ = ["DIORDetectionAdapter", "DOTADetectionAdapter", "DetectionTask", "parse_bool_option"]


@dataclass
class _ScoreInputs:
    """What :meth:`DetectionTask.score` evaluates, image ids as scored (dicts keyed by them)."""

    classes: tuple[str, ...]
    ids: list[int]
    max_dets: int | None
    gt_boxes: dict[int, np.ndarray]
    gt_polys: dict[int, np.ndarray]
    gt_labels: dict[int, np.ndarray]
    gt_ignore: dict[int, np.ndarray]
    gt_crowd: dict[int, np.ndarray]
    gt_area: dict[int, np.ndarray]
    have_polys: bool
    have_obb_pred: bool
    hb: list[tuple[int, np.ndarray, np.ndarray, np.ndarray]]
    ob: list[tuple[int, np.ndarray, np.ndarray, np.ndarray]]
    di: np.ndarray
    xywh: np.ndarray
    ds: np.ndarray
    dl: np.ndarray


class DIORDetectionAdapter(DatasetAdapter):
    """DIOR in RemoteSAM's COCO json (``Annotations/DIOR_<split>.json`` + ``JPEGImages/``).

    Options: ``ann_file`` (path of the COCO json), ``image_dir``, ``duplicates`` (``keep``:
    official, a ``file_name`` under two image ids is evaluated once per id, with a warning;
    ``error``: refuse the file).

    ``Sample.target``: ``bbox_xyxy`` ``(n, 4)`` list (absolute pixels, COCO xywh converted),
    ``labels`` (class names), ``difficult`` (all 0), ``iscrowd`` (0/1 per object, the json's),
    ``area`` (the json's ``area``, else ``w * h``). ``meta``: ``dataset``, ``image_id`` (the
    json's own id; scoring uses it), ``file_name``, ``width``, ``height`` (from the json, may be
    None).
    """

    name: ClassVar[str] = "dior"
    info: ClassVar[DatasetInfo | None] = DATASET_INFO["dior"]
    title: ClassVar[str] = "DIOR"
    splits: ClassVar[tuple[str, ...]] = ("test", "trainval", "train", "val")
    default_split: ClassVar[str] = "test"
    default_subdir: ClassVar[str] = "DIORcoco"
    classes: ClassVar[tuple[str, ...]] = DIOR_CLASSES
    layout: ClassVar[str] = (
        "<root>/                        (e.g. refer/data/DIORcoco)\n"
        "  Annotations/DIOR_test.json   (COCO json; categories named as the 20 DIOR classes)\n"
        "  JPEGImages/11726.jpg ...\n"
    )
    _OPTIONS: ClassVar[frozenset[str]] = frozenset({"ann_file", "image_dir", "duplicates"})

    def __init__(self, root: str | Path, split: str | None = None, **options: Any) -> None:
        super().__init__(root, split, **options)
        check_options(type(self).__name__, self.options, self._OPTIONS)
        self.duplicates = str(self.options.get("duplicates", "keep")).lower()
        if self.duplicates not in ("keep", "error"):
            raise DatasetError(f"{self.name}: option duplicates={self.options['duplicates']!r}; "
                               "expected 'keep' (official: evaluate every image id) or 'error'")
        self.ann_file = option_path(self.options, "ann_file",
                                    self.root / "Annotations" / f"DIOR_{self.split}.json")
        self.image_dir = option_path(self.options, "image_dir", self.root / "JPEGImages")
        require_file(self.ann_file, f"{self.name} annotation file", self.layout)
        require_dir(self.image_dir, f"{self.name} image folder", self.layout)

    def samples(self) -> list[Sample]:
        """One sample per annotated image, in json order (``sample_id`` = ``file_name``).

        Raises:
            DatasetError: malformed json (file + field), unknown category name, duplicate file
                names, or images listed but absent.
        """
        coco = read_coco_detection_json(self.ann_file, self.classes)
        out: list[Sample] = []
        seen: dict[str, int] = {}
        repeated: list[str] = []
        for im in coco.images:
            iid = im["id"]
            if iid not in coco.boxes:
                continue
            fn = im["file_name"]
            sid = fn
            if fn in seen:
                if self.duplicates == "error":
                    raise DatasetError(
                        f"{self.ann_file}: file_name {fn!r} appears for two image ids "
                        f"({seen[fn]} and {iid}); drop the option duplicates=error to evaluate "
                        "each image id as the official code does"
                    )
                repeated.append(fn)
                sid = f"{fn}#{iid}"
            seen.setdefault(fn, iid)
            image = member_path(self.image_dir, fn, f"{self.ann_file}: images[] id {iid} file_name")
            out.append(
                Sample(
                    sample_id=sid,
                    image=image,
                    target={
                        "bbox_xyxy": coco.boxes[iid].tolist(),
                        "labels": list(coco.labels[iid]),
                        "difficult": [0] * len(coco.labels[iid]),
                        "iscrowd": list(coco.iscrowd[iid]),
                        "area": list(coco.areas[iid]),
                    },
                    meta={
                        "dataset": self.name,
                        "image_id": iid,
                        "file_name": fn,
                        "width": im["width"],
                        "height": im["height"],
                    },
                )
            )
        if not out:
            raise DatasetError(f"{self.ann_file}: no image has any annotation; nothing to evaluate")
        check_images_exist(
            (Path(s.image) for s in out), f"{self.name} ({self.image_dir})", self.layout
        )
        if repeated:
            warnings.warn(
                f"{self.ann_file}: {len(repeated)} image entr(y/ies) repeat a file_name under "
                f"another image id (e.g. {repeated[0]!r}); each image id is evaluated with its "
                "own annotations, as the official code does; --dataset-opt "
                f"<task>.{self.name}.duplicates=error refuses such a file",
                DatasetWarning,
                stacklevel=2,
            )
        return out


class DOTADetectionAdapter(DatasetAdapter):
    """DOTA-v2.0 images with DOTA label files (full images or ImgSplit / mmrotate patches).

    Looks for ``<root>/<split>/images`` + ``<root>/<split>/{annfiles,labelTxt}``, else
    ``<root>/images`` + ``<root>/{annfiles,labelTxt}``. Every image needs ``<stem>.txt``.
    Options: ``image_dir``, ``label_dir``; ``coords`` = ``int`` (default, official: coordinates
    truncated toward zero as ``int(float(v))`` in the official ``DOTA_style`` loader) or
    ``float`` (keep the label file's fractions).

    ``Sample.target``: ``polygons`` ``(n, 8)``, ``bbox_xyxy`` (their envelopes), ``labels``
    (RemoteSAM names via the official mapping plane->airplane ...), ``difficult`` (0/1/2).
    ``meta``: ``dataset``, ``label_file``.
    """

    name: ClassVar[str] = "dotav2"
    info: ClassVar[DatasetInfo | None] = DATASET_INFO["dotav2"]
    title: ClassVar[str] = "DOTA-v2"
    splits: ClassVar[tuple[str, ...]] = ("val", "train")
    default_split: ClassVar[str] = "val"
    default_subdir: ClassVar[str] = "DOTAv2_patches"
    classes: ClassVar[tuple[str, ...]] = DOTA_CLASSES
    layout: ClassVar[str] = (
        "<root>/                        (e.g. refer/data/DOTAv2_patches)\n"
        "  val/images/P0003__1024__0___0.png ...\n"
        "  val/annfiles/P0003__1024__0___0.txt ...   (or labelTxt/, header lines optional)\n"
        "(or <root>/images + <root>/annfiles directly)\n"
    )
    _OPTIONS: ClassVar[frozenset[str]] = frozenset({"image_dir", "label_dir", "coords"})

    def __init__(self, root: str | Path, split: str | None = None, **options: Any) -> None:
        super().__init__(root, split, **options)
        check_options(type(self).__name__, self.options, self._OPTIONS)
        self.coords = str(self.options.get("coords", "int")).lower()
        if self.coords not in ("int", "float"):
            raise DatasetError(
                f"{self.name}: option coords={self.options['coords']!r}; expected 'int' (official "
                "truncation) or 'float' (keep the label file's fractions)"
            )
        base = self.root / self.split if (self.root / self.split).is_dir() else self.root
        lab = self.options.get("label_dir")
        self.image_dir = option_path(self.options, "image_dir", base / "images")
        label_dir = Path(lab) if lab else find_dir(base, ("annfiles", "labelTxt"))
        require_dir(self.image_dir, f"{self.name} image folder", self.layout)
        if label_dir is None:
            raise DatasetError(
                f"{self.name}: no label folder (annfiles/ or labelTxt/) in {base}. DOTA test-dev "
                "labels are not public: evaluate the val or train split.\nExpected layout:\n"
                + self.layout
            )
        self.label_dir = require_dir(label_dir, f"{self.name} label folder", self.layout)

    def samples(self) -> list[Sample]:
        """One sample per image (sorted by name; ``sample_id`` = file stem).

        Raises:
            DatasetError: an image without its label file, or a malformed label line (file +
                line number).
        """
        images = image_files(self.image_dir)
        if not images:
            raise DatasetError(
                f"{self.name}: no image in {self.image_dir}\nExpected layout:\n{self.layout}"
            )
        out: list[Sample] = []
        for img in images:
            lab = self.label_dir / f"{img.stem}.txt"
            if not lab.is_file():
                raise DatasetError(
                    f"{self.name}: image {img} has no label file {lab} (write an empty file for an "
                    "image without objects)"
                )
            objs = read_dota_label_file(lab, self.classes, truncate=self.coords == "int")
            polys = np.stack([o.polygon for o in objs]) if objs else np.zeros((0, 8))
            out.append(
                Sample(
                    sample_id=img.stem,
                    image=img,
                    target={
                        "polygons": polys.tolist(),
                        "bbox_xyxy": polygon_to_xyxy(polys).tolist(),
                        "labels": [o.name for o in objs],
                        "difficult": [o.difficult for o in objs],
                    },
                    meta={"dataset": self.name, "label_file": str(lab)},
                )
            )
        return out


class DetectionTask(TaskPlugin):
    """Object detection by mask-to-box (M2B): per-class COCO AP50 and their mean (official)."""

    name: ClassVar[str] = "det"
    title: ClassVar[str] = "Detection"
    version: ClassVar[int] = 2
    description: ClassVar[str] = "object detection (DIOR, DOTA-v2, iSAID): COCO AP50 per class"
    metrics: ClassVar[tuple[MetricSpec, ...]] = (
        MetricSpec("mAP50", primary=True, official=True,
                   description="mean over classes of the per-class COCO AP50 (hbb), "
                               "paper Table 12"),
        MetricSpec("mAP", official=False,
                   description="COCO mAP@[.5:.95] (hbb), printed by summarize() but not reported"),
        MetricSpec("mAP75", official=False, description="COCO AP at IoU 0.75 (hbb)"),
        MetricSpec("mAP50_obb", official=False,
                   description="AP50 with oriented-polygon IoU, COCO protocol (paper Table 13; no "
                               "official code)"),
    )  # fmt: skip
    datasets: ClassVar[Mapping[str, type[DatasetAdapter]]] = {
        "dior": DIORDetectionAdapter,
        "dotav2": DOTADetectionAdapter,
        "isaid": ISAIDDetectionAdapter,
    }
    default_dataset: ClassVar[str] = "dior"
    _OPTIONS: ClassVar[frozenset[str]] = frozenset(
        {"box_type", "epoc", "coco_backend", "difficult", "max_dets", "image_ids"}
    )
    _EPOC_OFFICIAL: ClassVar[Mapping[str, bool]] = {"dior": True, "dotav2": False}
    #: Detections per image each dataset's protocol keeps: COCO's 100 for DIOR (``COCOeval``),
    #: no limit for DOTA (the DOTA devkit evaluation has none). Unknown datasets: COCO's 100.
    _MAX_DETS_OFFICIAL: ClassVar[Mapping[str, int | None]] = {
        "dior": COCO_MAX_DETS,
        "dotav2": None,
        "isaid": ISAID_DET_MAX_DETS,
    }

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        super().__init__(options)
        check_options("det task", self.options, self._OPTIONS, error=ValueError)
        self.box_type = str(self.options.get("box_type", "hbb")).lower()
        if self.box_type not in ("hbb", "obb", "both"):
            raise ValueError(
                f"det task: option box_type={self.box_type!r}; expected hbb, obb or both"
            )
        self.epoc = parse_bool_option(
            "det", "epoc", self.options.get("epoc", "auto"), allow_auto=True
        )
        self.coco_backend = str(self.options.get("coco_backend", "pycocotools")).lower()
        if self.coco_backend not in COCO_BACKENDS:
            raise ValueError(
                f"det task: option coco_backend={self.coco_backend!r}; expected one of "
                f"{COCO_BACKENDS}"
            )
        self.difficult = str(self.options.get("difficult", "keep")).lower()
        if self.difficult not in ("keep", "ignore"):
            raise ValueError(
                f"det task: option difficult={self.difficult!r}; expected keep or ignore"
            )
        if self.difficult == "ignore" and self.coco_backend != "pycocotools":
            raise ValueError("det task: difficult=ignore needs coco_backend=pycocotools")
        md = str(self.options.get("max_dets", "auto")).strip().lower()
        self.max_dets: int | str | None
        if md in ("auto", "none"):
            self.max_dets = md if md == "auto" else None
        else:
            try:
                self.max_dets = int(md)
            except ValueError:
                self.max_dets = 0
            if self.max_dets < 1:
                raise ValueError(
                    f"det task: option max_dets={self.options['max_dets']!r}; expected auto, none "
                    "or "
                    "a positive integer"
                )
        self.image_ids = str(self.options.get("image_ids", "dataset")).lower()
        if self.image_ids not in ("dataset", "sequential"):
            raise ValueError(
                f"det task: option image_ids={self.image_ids!r}; expected dataset or sequential"
            )

    def settings(self) -> dict[str, Any]:
        """Prediction settings: ``box_type`` and ``epoc`` (scoring options are not included)."""
        return {"box_type": self.box_type, "epoc": "auto" if self.epoc is None else self.epoc}

    def _classes(self, sample: Sample) -> tuple[str, ...]:
        return sample_dataset_classes(self, sample)

    def _epoc_for(self, sample: Sample) -> bool | None:
        if self.epoc is not None:
            return self.epoc
        # auto: official DIOR ran with EPOC -> use it when the predictor has an EPOC model
        # (None = the predictor's own default); official DOTA ran without.
        return None if self._EPOC_OFFICIAL.get(str(sample.meta.get("dataset")), False) else False

    def requests(self, sample: Sample) -> list[Any]:
        """One request: the dataset's class prompts, masks and probabilities at the original size
        (and the EPOC boundary map when EPOC is on for the sample's dataset)."""
        from remotesam.engine import Request
        from remotesam.text import prompt

        return [
            Request(
                sample.image,
                tuple(prompt(c) for c in self._classes(sample)),
                frozenset({"mask", "prob"}),
                boundary=self._epoc_for(sample),
            )
        ]

    def reduce(self, sample: Sample, answers: Sequence[Any]) -> Prediction:
        """Mask-to-box per class, NMS and score order (:func:`remotesam.reduce.detections`, the
        official defaults): the same prediction as :meth:`predict`."""
        from remotesam import reduce as rd
        from remotesam.predictor import DEFAULTS

        (ans,) = answers
        h, w = ans.hw
        mw, mh = sample.meta.get("width"), sample.meta.get("height")
        if mw is not None and mh is not None and (int(mh), int(mw)) != (h, w):
            raise DatasetError(
                f"image {sample.image}: size {h}x{w} (HxW) differs from the annotation's "
                f"{int(mh)}x{int(mw)} (sample {sample.sample_id})"
            )
        classes = tuple(self._classes(sample))
        parts: dict[str, Detections] = {}
        for bt in ("hbb", "obb") if self.box_type == "both" else (self.box_type,):
            det = rd.detections(
                ans,
                classes,
                bt,
                use_boundary=ans.boundary is not None,
                epoc_threshold=DEFAULTS["epoc_threshold_detection"],
                epoc_area_ratio=DEFAULTS["epoc_area_ratio"],
                conf_threshold=DEFAULTS["conf_threshold"],
                nms_iou=DEFAULTS["nms_iou"],
                remove_inner=DEFAULTS["remove_inner"],
            )
            parts[bt] = Detections.from_arrays(det.boxes, det.scores, det.labels, det.classnames)
        return BoxesPrediction((h, w), **parts).encode()

    def _inputs(
        self, samples: Sequence[Sample], predictions: Sequence[Prediction], notes: dict[str, str]
    ) -> _ScoreInputs:
        classes = self._classes(samples[0])
        index = {c: k for k, c in enumerate(classes)}
        ids = self._image_ids(samples, notes)
        max_dets = self._max_dets_for(samples[0])
        gt_boxes: dict[int, np.ndarray] = {}
        gt_polys: dict[int, np.ndarray] = {}
        gt_labels: dict[int, np.ndarray] = {}
        gt_ignore: dict[int, np.ndarray] = {}
        gt_crowd: dict[int, np.ndarray] = {}
        gt_area: dict[int, np.ndarray] = {}
        have_polys = True
        hb: list[tuple[int, np.ndarray, np.ndarray, np.ndarray]] = []
        ob: list[tuple[int, np.ndarray, np.ndarray, np.ndarray]] = []
        have_obb_pred = True
        for iid, s, p in zip(ids, samples, predictions):
            labels = s.target.get("labels", [])
            try:
                gt_labels[iid] = np.array([index[c] for c in labels], dtype=np.int64)
            except KeyError as e:
                raise ValueError(
                    f"sample {s.sample_id}: ground-truth class {e.args[0]!r} not in {list(classes)}"
                ) from None
            gt_boxes[iid] = np.asarray(s.target.get("bbox_xyxy", []), dtype=np.float64).reshape(
                -1, 4
            )
            if "polygons" in s.target:
                gt_polys[iid] = np.asarray(s.target["polygons"], dtype=np.float64).reshape(-1, 8)
            else:
                have_polys = False
            diff = np.asarray(s.target.get("difficult", [0] * len(labels)), dtype=np.int64)
            gt_ignore[iid] = (
                diff >= 1 if self.difficult == "ignore" else np.zeros(len(labels), bool)
            )
            gt_crowd[iid] = np.asarray(
                s.target.get("iscrowd", [0] * len(labels)), dtype=bool
            ).reshape(-1)
            if "area" in s.target:
                gt_area[iid] = np.asarray(s.target["area"], dtype=np.float64).reshape(-1)
            if len(gt_crowd[iid]) != len(labels) or (
                iid in gt_area and len(gt_area[iid]) != len(labels)
            ):
                raise ValueError(
                    f"sample {s.sample_id}: iscrowd/area lengths differ from the labels'"
                )
            try:
                pred = BoxesPrediction.decode(p)
            except PredictionFormatError as e:
                raise ValueError(f"prediction for sample {s.sample_id}: {e}") from None
            hb.append((iid, *self._pred_arrays(s, pred.horizontal(), index)))
            if pred.obb is not None:
                ob.append((iid, *self._pred_arrays(s, pred.obb, index)))
            else:
                have_obb_pred = False
        if predictions and "hbb" not in predictions[0] and "obb" in predictions[0]:
            notes["hbb"] = (
                "box_type=obb: HBB metrics use the horizontal envelopes of the predicted polygons"
            )
        di, db, ds, dl = _flatten(hb, 4)
        # the official writer truncates: [int(x1), int(y1), int(x2 - x1), int(y2 - y1)]
        xywh = np.stack([np.trunc(db[:, 0]), np.trunc(db[:, 1]), np.trunc(db[:, 2] - db[:, 0]),
                         np.trunc(db[:, 3] - db[:, 1])], 1) if len(db) else np.zeros((0, 4))
        return _ScoreInputs(
            classes,
            ids,
            max_dets,
            gt_boxes,
            gt_polys,
            gt_labels,
            gt_ignore,
            gt_crowd,
            gt_area,
            have_polys,
            have_obb_pred,
            hb,
            ob,
            di,
            xywh,
            ds,
            dl,
        )

    def score(self, samples: Sequence[Sample], predictions: Sequence[Prediction]) -> Scores:
        """COCO AP (percent). ``tables``: ``per_class`` rows (AP50/AP/AP75/n_gt, and
        ``AP50_obb`` where computed), ``coco_stats`` (the 12 summarize() numbers over all
        classes), ``notes``. No per-sample arrays: AP is not decomposable per image."""
        check_score_lengths(samples, predictions)
        notes: dict[str, str] = {}
        if not samples:
            nan = float("nan")
            return Scores(
                metrics={m.name: nan for m in self.metrics},
                tables={"notes": {"empty": "no sample"}},
            )
        x = self._inputs(samples, predictions, notes)
        classes, ids, max_dets = x.classes, x.ids, x.max_dets
        gt_boxes, gt_labels, gt_ignore, gt_crowd = x.gt_boxes, x.gt_labels, x.gt_ignore, x.gt_crowd
        gt_polys, gt_area, have_polys, have_obb_pred, ob = (
            x.gt_polys,
            x.gt_area,
            x.have_polys,
            x.have_obb_pred,
            x.ob,
        )
        di, xywh, ds, dl = x.di, x.xywh, x.ds, x.dl
        res = coco_bbox_ap(ids, gt_boxes, gt_labels, di, xywh, ds, dl, classes,
                           gt_ignore=gt_ignore if self.difficult == "ignore" else None,
                           gt_crowd=gt_crowd, gt_area=gt_area or None, max_dets=max_dets,
                           backend=self.coco_backend)  # fmt: skip
        n_crowd = int(sum(int(v.sum()) for v in gt_crowd.values()))
        if n_crowd:
            notes["iscrowd"] = (
                f"{n_crowd} iscrowd=1 object(s) scored as COCO crowd regions (ignored)"
            )
        rows = res.table()
        obb_value = float("nan")
        if have_obb_pred and have_polys:
            oi, opoly, osc, olb = _flatten(ob, 8)
            ores = polygon_ap(ids, gt_polys, gt_labels, oi, opoly, osc, olb, classes,
                              gt_ignore=gt_ignore if self.difficult == "ignore" else None,
                              max_dets=max_dets)  # fmt: skip
            obb_value = 100.0 * ores.mean_ap50
            for r, v in zip(rows, ores.ap50):
                r["AP50_obb"] = None if np.isnan(v) else round(float(v) * 100.0, 6)
        elif not have_polys:
            notes["mAP50_obb"] = (
                "the dataset has no oriented ground truth (DIOR COCO json is HBB only)"
            )
        else:
            notes["mAP50_obb"] = (
                "predictions have no OBBs: run with --task-opt box_type=obb or both"
            )
        metrics = {
            "mAP50": 100.0 * res.mean_ap50,
            "mAP": 100.0 * res.overall_ap,
            "mAP75": 100.0 * nanmean(res.ap75),
            "mAP50_obb": obb_value,
        }
        return Scores(
            metrics=metrics,
            tables={
                "per_class": rows,
                "coco_stats": res.stats,
                "notes": notes,
                "settings": {
                    "coco_backend": self.coco_backend,
                    "difficult": self.difficult,
                    "max_dets": "none" if max_dets is None else max_dets,
                    "image_ids": self.image_ids,
                },
            },
            sample_ids=[s.sample_id for s in samples],
        )

    def coco_export(
        self, samples: Sequence[Sample], predictions: Sequence[Prediction]
    ) -> dict[str, Any]:
        """Exactly what :meth:`score` hands to ``COCOeval`` for the HBB metrics, as COCO data.

        Returns:
            ``{"gt": COCO ground-truth dict, "results": [{"image_id", "category_id", "bbox"
            [x, y, w, h] (the official int()-truncated values), "score"}], "classes": [...],
            "max_dets": int, "plain_cocoeval": bool, "notes": {...}}``. Category id = class
            index + 1; image ids are the ones scored (the dataset's own, else 1..n in sample
            order). ``COCOeval(gt, results, "bbox")`` with ``params.maxDets = [1, 10,
            max_dets]`` gives ``mAP50 = 100 * stats[1]`` (the mean of the per-class AP50 over
            classes with ground truth) and ``mAP = 100 * stats[0]``, unless ``plain_cocoeval``
            is False (``difficult=ignore``: the ignore flag is a harness extension).
        """
        check_score_lengths(samples, predictions)
        notes: dict[str, str] = {}
        x = self._inputs(samples, predictions, notes)
        gt, dets, max_dets = coco_bbox_inputs(
            x.ids,
            x.gt_boxes,
            x.gt_labels,
            x.di,
            x.xywh,
            x.ds,
            x.dl,
            x.classes,
            gt_ignore=x.gt_ignore if self.difficult == "ignore" else None,
            gt_crowd=x.gt_crowd,
            gt_area=x.gt_area or None,
            max_dets=x.max_dets,
        )
        for d in dets:  # the official writer's ints (the values scored are these integers)
            d["bbox"] = [int(v) for v in d["bbox"]]
        plain = not any(a.get("_difficult_ignore") for a in gt["annotations"])
        if not plain:
            notes["difficult"] = (
                "difficult=ignore: objects marked _difficult_ignore are ignore "
                "regions, which plain COCOeval does not know"
            )
        return {
            "gt": gt,
            "results": dets,
            "classes": list(x.classes),
            "max_dets": max_dets,
            "plain_cocoeval": plain,
            "notes": notes,
        }

    def _max_dets_for(self, sample: Sample) -> int | None:
        if self.max_dets != "auto":
            return self.max_dets  # type: ignore[return-value]
        return self._MAX_DETS_OFFICIAL.get(str(sample.meta.get("dataset")), COCO_MAX_DETS)

    def _image_ids(self, samples: Sequence[Sample], notes: dict[str, str]) -> list[int]:
        """COCO image ids for scoring: the dataset's own (``meta["image_id"]``, as ``COCOeval``
        on the original file sees them) when every sample has a distinct integer one, else
        1..n in sample order (DOTA has no ids; ``image_ids=sequential`` forces this)."""
        n = len(samples)
        if self.image_ids == "dataset":
            own = [s.meta.get("image_id") for s in samples]
            ints = [int(v) for v in own if isinstance(v, int) and not isinstance(v, bool)]
            if len(ints) == n and len(set(own)) == n:
                return ints
            if any(v is not None for v in own):
                notes["image_ids"] = (
                    "dataset image ids missing or repeated: images numbered 1..n in sample order"
                )
        return list(range(1, n + 1))

    @staticmethod
    def _pred_arrays(
        s: Sample, part: Detections, index: Mapping[str, int]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        try:
            lb = np.array([index[c] for c in part.labels], dtype=np.int64)
        except KeyError as e:
            raise ValueError(
                f"prediction for sample {s.sample_id}: malformed boxes ({e!r}); expected boxes "
                f"(n, {part.boxes.shape[1]}), scores (n,), labels (n,) of known classes; "
                "re-run predict"
            ) from None
        return part.boxes, part.scores, lb


def _flatten(
    parts: list[tuple[int, np.ndarray, np.ndarray, np.ndarray]], width: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    if not parts:
        return np.zeros(0, np.int64), np.zeros((0, width)), np.zeros(0), np.zeros(0, np.int64)
    ids = np.concatenate([np.full(len(sc), iid, dtype=np.int64) for iid, _, sc, _ in parts])
    boxes = np.concatenate([b.reshape(-1, width) for _, b, _, _ in parts])
    scores = np.concatenate([sc for _, _, sc, _ in parts])
    labels = np.concatenate([lb for _, _, _, lb in parts])
    return ids, boxes, scores, labels
