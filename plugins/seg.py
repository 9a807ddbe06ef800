"""Semantic segmentation (``seg``): iSAID colour masks and single-channel label PNG sets.

Protocol reproduced (official ``tasks/code/eval/SEG.py``, iSAID only):

* one prompt per class, ``"{class} in the image."`` **with the trailing period** (the
  predictor's own default has none; the ``template`` option changes it);
* per-class masks are merged so that where classes overlap the **higher class index wins**
  (``np.maximum.reduce``; ``SemanticMasks.label_map_net`` already follows that rule), with no
  probability gate (``class_colors_transform``: label = class id wherever the argmax is > 0);
* ground truth: the iSAID ``*_instance_color_RGB.png`` mapped through the official palette in the
  official order (ship = 1 ... harbor = 15, 0 = background), resized to 896x896 with PIL
  ``NEAREST``; the prediction is taken at network resolution (896 for the official model);
* one 16x16 confusion matrix over the dataset (rows = label, columns = prediction);
  ``per_class_iu = diag / max(row + col - diag, 1)``, ``mIoU = nanmean`` over **all 16 classes
  including background**, classes absent from label and prediction counting as 0; ``mPA`` alike.

Beside them (not official): ``mIoU_fg`` (mean IoU over the foreground classes present in label
or prediction, mmsegmentation convention), ``mF1`` (mean F1 over the same classes; the metric the
paper reports for Potsdam), ``aAcc`` (pixel accuracy); per-class tables.

Deviations from the official code, all deliberate:

* Evaluation size = ``eval_size`` option (default 896); predictions made at another network size
  S are nearest-resized to it.
* Unknown mask colours: the official ``change_label`` silently maps them to background, and so
  does the default here (``unknown_colour="background"``). The dataset option
  ``unknown_colour="error"`` (``--dataset-opt seg.isaid.unknown_colour=error``) instead raises
  :class:`DatasetError` naming the file and the colour (the sample fails in ``predict``).
* Colour masks are decoded as the official code decodes them, ``Image.open(p).convert("RGB")``,
  whatever their PIL mode: a 16-bit greyscale mask is clipped to 0..255 by PIL (and then maps to
  background unless a grey level is a palette colour).
* The image of a mask is ``<stem without _instance_color_RGB>.png``; the official code uses
  ``stem[0:5] + ".png"``, which is the same for whole iSAID scenes (``P0003``) but wrong for
  devkit patches (``P0003_0_800_0_800``).
* Data location: the official script hard-codes ``/data/dishimin/iSAID/test/{images,masks}``;
  iSAID's test masks are withheld, so that folder must have held the **val** set. The default
  split here is ``val``, read from the official download layout
  (``val/Semantic_masks/images``) or the script's ``<split>/masks`` layout.
* The shipped ``SEG.py`` cannot run (PIL ``Image`` never imported) and ``SEG.sh`` has a broken line
  continuation; nothing of that is reproduced.
* Potsdam / Vaihingen / UDD5 / DeepGlobe have no official code: the ``potsdam`` /
  ``label_png`` adapters read single-channel label PNGs in the mmsegmentation layout with a
  ``classes`` option; their mIoU keeps the official formula (background = "no class prompted
  fired"), and labels listed as ignored are left out of the confusion matrix.
* Vaihingen, UDD5 and DeepGlobe (Table 2's "unseen datasets") follow SegEarth-OV's
  open-vocabulary protocol, where the paper's competitors come from
  (:mod:`remotesam_plugins._openvocab_seg`): Vaihingen = mmseg's ``ISPRSDataset`` val folder
  (398 crops; impervious surface .. car prompted, clutter the background class, 0 ignored;
  ``protocol=segearth_ov_queries`` prompts clutter too and scores unfired pixels as clutter,
  the target's ``unfired_as``; ``protocol=isprs6`` keeps the former six-prompt reading), UDD5
  val, DeepGlobe road extraction (1,530-image test split; land cover as the alternative
  dataset ``deepglobe_landcover``), the background class ("clutter" / "other" / "background" /
  "unknown") scored, and ``mIoU`` / ``mPA`` as mmsegmentation's ``IoUMetric`` computes them
  (a class absent from label and prediction is left out of the mean instead of counting 0).
  The protocol's name is written to the run document (``tables.protocol``).
* No per-sample arrays exist for the confusion-matrix metrics (they are not decomposable per
  image); ``aAcc`` has a per-sample ratio.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from remotesam.bench.api import (
    DatasetAdapter,
    DatasetError,
    MetricSpec,
    Prediction,
    Sample,
    Scores,
    TaskPlugin,
)
from remotesam.bench.api.datainfo import DatasetInfo
from remotesam.bench.api.predictions import ClassMasks
from remotesam.bench.kit import (
    as_str_list,
    check_images_exist,
    check_options,
    check_score_lengths,
    image_files,
    mask_to_rle,
    positive_int_option,
    read_text,
    require_dir,
    resize_nearest,
    rle_to_mask,
)
from remotesam.classes import ISAID_CLASSES, ISAID_PALETTE, POTSDAM_CLASSES

from ._datasets import DATASET_INFO
from ._labels import colour_to_label
from ._openvocab_seg import (
    OPENVOCAB_ENCODINGS,
    DeepGlobeLandCoverAdapter,
    DeepGlobeRoadAdapter,
    UDD5Adapter,
    VaihingenAdapter,
    mmseg_metrics,
    read_openvocab_label,
)
from .metrics.segmentation import (
    fast_hist,
    per_class_f1_std,
    per_class_iou_official,
    per_class_iou_std,
    per_class_pa_official,
    semantic_metrics,
)

__all__ = [
    "ISAID_CLASSES",
    "ISAID_PALETTE",
    "POTSDAM_CLASSES",
    "ISAIDAdapter",
    "LabelPNGAdapter",
    "PotsdamAdapter",
    "SemanticSegmentationTask",
    "VaihingenAdapter",
    "colour_to_label",
    "merge_class_masks",
    "read_label",
]


_SEG_MASK_SUFFIX = "_instance_color_RGB"


# --------------------------------------------------------------------------------------------
# Label decoding
# --------------------------------------------------------------------------------------------


def _read_png(path: Path, rgb: bool) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.load()
            if rgb:  # the official decoding, whatever the mode (16-bit grey: clipped by PIL)
                return np.asarray(im.convert("RGB"))
            if im.mode not in ("L", "P", "I", "I;16", "I;16B", "I;16L"):
                raise DatasetError(
                    f"{path}: label image has PIL mode {im.mode}; expected a single-channel label "
                    "PNG (mode L, P or I: one class value per pixel)"
                )
            return np.asarray(im)  # mode P: the palette indices are the label values
    except FileNotFoundError:
        raise DatasetError(f"label file {path} not found") from None
    except (OSError, UnidentifiedImageError, ValueError) as exc:
        raise DatasetError(f"label file {path} is unreadable: {exc}") from None


def read_label(target: Mapping[str, Any], size: int | None = None) -> np.ndarray:
    """Ground-truth label map of a SEG sample.

    Args:
        target: a sample target (``label_path`` plus ``encoding`` ``"rgb_palette"`` with
            ``palette`` / ``unknown_colour``, or ``"index"`` with ``value_offset``,
            ``ignore_values``, ``background_value``, ``classes``).
        size: when given, nearest-resize (PIL) to ``size x size``; RGB masks are mapped first
            (the official code resizes first; identical result for nearest resizing).

    Returns:
        ``(H, W)`` int64: 0 = background, ``k + 1`` = ``classes[k]``, -1 = ignored pixel.

    Raises:
        DatasetError: unreadable file, unknown colour or label value (naming file and value).
    """
    path = Path(target["label_path"])
    if target["encoding"] in OPENVOCAB_ENCODINGS:  # DeepGlobe release masks (_openvocab_seg)
        return read_openvocab_label(target, size)
    if target["encoding"] == "rgb_palette":
        rgb = _read_png(path, rgb=True)
        # Map (and validate) at full resolution, then resize: identical to the official
        # resize-then-map for nearest resizing, and no unknown colour can hide between samples.
        label = colour_to_label(rgb, target["palette"],
                                unknown=target.get("unknown_colour", "background"),
                                where=str(path))
        out = label.astype(np.int64)
        return resize_nearest(out, size) if size is not None else out
    raw = _read_png(path, rgb=False).astype(np.int64)
    if raw.ndim != 2:
        raise DatasetError(f"{path}: label image has shape {raw.shape}, expected (H, W)")
    k = len(target["classes"])
    offset = int(target.get("value_offset", 0))
    ignore = [int(v) for v in target.get("ignore_values", [])]
    bg = target.get("background_value")
    out = raw - offset + 1
    valid = (raw - offset >= 0) & (raw - offset < k)
    ign = np.isin(raw, ignore) if ignore else np.zeros(raw.shape, dtype=bool)
    is_bg = (raw == int(bg)) if bg is not None else np.zeros(raw.shape, dtype=bool)
    bad = ~(valid | ign | is_bg)
    if bad.any():
        vals = np.unique(raw[bad])[:10].tolist()
        raise DatasetError(
            f"{path}: label value(s) {vals} are neither a class value "
            f"({offset}..{offset + k - 1} for "
            f"{k} classes), an ignored value {ignore} nor the background value {bg}; "
            + str(
                target.get(
                    "label_hint",
                    "check the dataset options classes / value_offset / "
                    "ignore_values / background_value",
                )
            )
        )
    out = np.where(is_bg, 0, out)
    out = np.where(ign, -1, out)
    return resize_nearest(out, size) if size is not None else out


def merge_class_masks(masks: np.ndarray) -> np.ndarray:
    """Official merge of per-class binary masks: ``np.maximum.reduce((k + 1) * mask_k)``.

    Args:
        masks: ``(K, H, W)`` 0/1.

    Returns:
        ``(H, W)`` int64 label map; where classes overlap the higher index wins.
    """
    m = np.asarray(masks)
    if m.ndim != 3:
        raise ValueError(f"merge_class_masks expects (K, H, W), got {m.shape}")
    ids = np.arange(1, m.shape[0] + 1, dtype=np.int64)[:, None, None]
    return (
        np.max(np.where(m > 0, ids, 0), axis=0) if m.shape[0] else np.zeros(m.shape[1:], np.int64)
    )


# --------------------------------------------------------------------------------------------
# Adapters
# --------------------------------------------------------------------------------------------


class ISAIDAdapter(DatasetAdapter):
    """iSAID semantic masks (``Pxxxx_instance_color_RGB.png``) and their images (``Pxxxx.png``).

    Options: ``image_dir``, ``mask_dir`` (override the locations), ``unknown_colour``
    (``"background"`` default = the official silent mapping, or ``"error"``: a colour outside the
    palette fails the sample, naming the file and the colour).
    """

    name: ClassVar[str] = "isaid"
    info: ClassVar[DatasetInfo | None] = DATASET_INFO["isaid"]
    title: ClassVar[str] = "iSAID"
    splits: ClassVar[tuple[str, ...]] = ("val", "train", "test")
    default_split: ClassVar[str] = "val"
    default_subdir: ClassVar[str] = "iSAID"
    classes: ClassVar[tuple[str, ...]] = ISAID_CLASSES
    layout: ClassVar[str] = (
        "<root>/                                   (e.g. iSAID)\n"
        "  <split>/images/P0003.png ...\n"
        "  <split>/Semantic_masks/images/P0003_instance_color_RGB.png ...  (official download)\n"
        "    or <split>/masks/P0003_instance_color_RGB.png ...             (official SEG.py)\n"
    )
    _OPTIONS: ClassVar[frozenset[str]] = frozenset({"image_dir", "mask_dir", "unknown_colour"})

    def __init__(self, root: str | Path, split: str | None = None, **options: Any) -> None:
        super().__init__(root, split, **options)
        check_options("isaid", self.options, self._OPTIONS)
        self.unknown_colour = str(self.options.get("unknown_colour", "background"))
        if self.unknown_colour not in ("error", "background"):
            raise DatasetError(
                "isaid: option unknown_colour must be 'error' or 'background', got "
                f"{self.unknown_colour!r}"
            )
        base = self.root / self.split
        if "mask_dir" in self.options:
            self.mask_dir = Path(self.options["mask_dir"])
        else:
            self.mask_dir = base / "Semantic_masks" / "images"
            if not self.mask_dir.is_dir() and (base / "masks").is_dir():
                self.mask_dir = base / "masks"
        self.image_dir = Path(self.options.get("image_dir", base / "images"))
        require_dir(self.mask_dir, "isaid mask folder", self.layout)
        require_dir(self.image_dir, "isaid image folder", self.layout)

    def samples(self) -> list[Sample]:
        """One sample per colour mask, sorted by name; ``sample_id`` = image stem.

        ``target``: ``label_path``, ``encoding="rgb_palette"``, ``palette``, ``unknown_colour``,
        ``classes`` (the 15 official names).
        """
        masks = [p for p in image_files(self.mask_dir) if p.stem.endswith(_SEG_MASK_SUFFIX)]
        if not masks:
            raise DatasetError(
                f"isaid: no '*{_SEG_MASK_SUFFIX}.png' colour mask in {self.mask_dir}\nExpected "
                f"layout:\n{self.layout}"
            )
        out = []
        for m in masks:
            stem = m.stem[: -len(_SEG_MASK_SUFFIX)]
            out.append(
                Sample(
                    sample_id=stem,
                    image=self.image_dir / f"{stem}.png",
                    target={
                        "label_path": str(m),
                        "encoding": "rgb_palette",
                        "palette": [list(c) for c in ISAID_PALETTE],
                        "unknown_colour": self.unknown_colour,
                        "classes": list(ISAID_CLASSES),
                    },
                    meta={"mask_file": m.name},
                )
            )
        check_images_exist((Path(s.image) for s in out), f"isaid ({self.image_dir})", self.layout)
        return out


class LabelPNGAdapter(DatasetAdapter):
    """Single-channel label PNGs in the mmsegmentation layout (Potsdam/Vaihingen style).

    A label value ``v`` is class ``classes[v - value_offset]``; values in ``ignore_values`` are
    left out of the metrics; ``background_value`` (optional) counts as background (class 0).

    Options: ``classes`` (list or comma-separated names, in label-value order; for
    ``label_png`` required, or read from ``<root>/classes.txt``, one name per line, which also
    overrides the Potsdam defaults), ``value_offset`` (int), ``ignore_values``
    (list/comma-separated ints),
    ``background_value`` (int), ``img_dir``, ``ann_dir`` (override the folders).
    """

    name: ClassVar[str] = "label_png"
    splits: ClassVar[tuple[str, ...]] = ("val", "train", "test")
    default_split: ClassVar[str] = "val"
    default_subdir: ClassVar[str] = "label_png"
    classes: ClassVar[tuple[str, ...]] = ()
    layout: ClassVar[str] = (
        "<root>/\n"
        "  classes.txt                           (optional: class names, one per line)\n"
        "  img_dir/<split>/<name>.png|.jpg|.tif ...\n"
        "  ann_dir/<split>/<name>.png ...        (single-channel class values)\n"
    )
    default_value_offset: ClassVar[int] = 0
    default_ignore_values: ClassVar[tuple[int, ...]] = (255,)
    _OPTIONS: ClassVar[frozenset[str]] = frozenset(
        {"classes", "value_offset", "ignore_values", "background_value", "img_dir", "ann_dir"}
    )

    def __init__(self, root: str | Path, split: str | None = None, **options: Any) -> None:
        super().__init__(root, split, **options)
        check_options(self.name, self.options, self._OPTIONS)
        classes_file = self.root / "classes.txt"
        if "classes" in self.options:
            self.class_names = tuple(as_str_list(self.options["classes"], "classes"))
        elif classes_file.is_file():
            names = [
                ln.strip()
                for ln in read_text(classes_file, f"{self.name} classes.txt").splitlines()
            ]
            self.class_names = tuple(as_str_list([n for n in names if n], f"{classes_file}"))
        elif self.classes:
            self.class_names = self.classes
        else:
            raise DatasetError(
                f"{self.name}: class names are required: pass the option 'classes' (names in "
                f"label-value order, e.g. classes=road,building,tree) or write them, one per line, "
                f"to {classes_file}"
            )
        try:
            self.value_offset = int(self.options.get("value_offset", self.default_value_offset))
            ig = self.options.get("ignore_values", list(self.default_ignore_values))
            self.ignore_values = [
                int(v) for v in (ig.split(",") if isinstance(ig, str) else ig) if str(v).strip()
            ]
            bg = self.options.get("background_value")
            self.background_value = None if bg is None else int(bg)
        except (TypeError, ValueError) as exc:
            raise DatasetError(
                f"{self.name}: value_offset / ignore_values / background_value must be integers "
                f"({exc})"
            ) from None
        self.img_dir = Path(self.options.get("img_dir", self.root / "img_dir" / self.split))
        self.ann_dir = Path(self.options.get("ann_dir", self.root / "ann_dir" / self.split))
        require_dir(self.img_dir, f"{self.name} image folder", self.layout)
        require_dir(self.ann_dir, f"{self.name} label folder", self.layout)

    def samples(self) -> list[Sample]:
        """One sample per label PNG (sorted); the image is the file with the same stem."""
        labels = [p for p in image_files(self.ann_dir) if p.suffix.lower() == ".png"]
        if not labels:
            raise DatasetError(
                f"{self.name}: no .png label in {self.ann_dir}\nExpected layout:\n{self.layout}"
            )
        images = {p.stem: p for p in image_files(self.img_dir)}
        out = []
        missing = []
        for lab in labels:
            img = images.get(lab.stem)
            if img is None:
                missing.append(self.img_dir / f"{lab.stem}.*")
                continue
            out.append(
                Sample(
                    sample_id=lab.stem,
                    image=img,
                    target={
                        "label_path": str(lab),
                        "encoding": "index",
                        "classes": list(self.class_names),
                        "value_offset": self.value_offset,
                        "ignore_values": list(self.ignore_values),
                        "background_value": self.background_value,
                    },
                    meta={"label_file": lab.name},
                )
            )
        if missing:
            raise DatasetError(
                f"{self.name}: {len(missing)} label(s) without an image of the same name: "
                f"{', '.join(str(m) for m in missing[:5])}\nExpected layout:\n{self.layout}"
            )
        return out


class PotsdamAdapter(LabelPNGAdapter):
    """ISPRS Potsdam, mmsegmentation-converted labels (values 1..6 in :data:`POTSDAM_CLASSES`
    order, 0 = ignored boundary). No official RemoteSAM code exists (paper: mF1 %, Table 4)."""

    name: ClassVar[str] = "potsdam"
    info: ClassVar[DatasetInfo | None] = DATASET_INFO["potsdam"]
    title: ClassVar[str] = "Potsdam"
    default_subdir: ClassVar[str] = "potsdam"
    classes: ClassVar[tuple[str, ...]] = POTSDAM_CLASSES
    default_value_offset: ClassVar[int] = 1
    default_ignore_values: ClassVar[tuple[int, ...]] = (0, 255)


# --------------------------------------------------------------------------------------------
# Task
# --------------------------------------------------------------------------------------------


def _metric_specs() -> tuple[MetricSpec, ...]:
    return (
        MetricSpec(
            "mIoU",
            primary=True,
            official=True,
            description="confusion-matrix mIoU over K+1 classes incl. background, absent = 0 "
            "(official)",
        ),
        MetricSpec(
            "mPA",
            official=True,
            description="mean per-class pixel accuracy incl. background (official)",
        ),
        MetricSpec(
            "mIoU_fg",
            official=False,
            description="mean IoU over foreground classes present in label or prediction",
        ),
        MetricSpec(
            "mF1",
            official=False,
            description="mean F1 over foreground classes present in label or prediction",
        ),
        MetricSpec("aAcc", official=False, description="overall pixel accuracy"),
    )


class SemanticSegmentationTask(TaskPlugin):
    """Semantic segmentation by per-class referring prompts; confusion-matrix metrics.

    Options: ``template`` (prompt, default ``"{} in the image."``, official SEG.py; changes
    predictions), ``eval_size`` (default 896; scoring only).
    """

    name: ClassVar[str] = "seg"
    title: ClassVar[str] = "Semantic seg."
    version: ClassVar[int] = 1
    description: ClassVar[str] = (
        "semantic segmentation (iSAID colour masks; Potsdam-style label "
        "PNGs; Vaihingen / UDD5 / DeepGlobe, SegEarth-OV protocol)"
    )
    metrics: ClassVar[tuple[MetricSpec, ...]] = _metric_specs()
    datasets: ClassVar[Mapping[str, type[DatasetAdapter]]] = {
        "isaid": ISAIDAdapter,
        "potsdam": PotsdamAdapter,
        "vaihingen": VaihingenAdapter,
        "label_png": LabelPNGAdapter,
        "udd5": UDD5Adapter,
        "deepglobe": DeepGlobeRoadAdapter,
        "deepglobe_landcover": DeepGlobeLandCoverAdapter,
    }
    default_dataset: ClassVar[str] = "isaid"
    OFFICIAL_TEMPLATE: ClassVar[str] = "{} in the image."

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        super().__init__(options)
        check_options("seg task", self.options, {"template", "eval_size"}, error=ValueError)
        self.template = str(self.options.get("template", self.OFFICIAL_TEMPLATE))
        if "{}" not in self.template:
            raise ValueError(
                f"seg task: option template={self.template!r} must contain '{{}}' for the class "
                "name"
            )
        self.eval_size = positive_int_option("seg", self.options, "eval_size", 896)

    def settings(self) -> dict[str, Any]:
        """Only the prompt template changes predictions."""
        return {"template": self.template}

    def requests(self, s: Sample) -> list[Any]:
        """One request: the class prompts (``template``), masks at the network size only."""
        from remotesam.engine import Request
        from remotesam.text import prompt

        return [
            Request(
                s.image,
                tuple(prompt(c, self.template) for c in s.target["classes"]),
                frozenset({"mask_net"}),
            )
        ]

    def reduce(self, s: Sample, answers: Sequence[Any]) -> Prediction:
        """The merged label map at network size (:func:`remotesam.reduce.label_map_net`) as one
        RLE per class, as :meth:`predict`; the ground truth is read first so that a bad label
        fails this sample."""
        from remotesam import reduce as rd

        (ans,) = answers
        gt = read_label(s.target)
        if gt.shape != tuple(ans.hw):
            raise DatasetError(
                f"{s.target['label_path']}: label size {gt.shape[0]}x{gt.shape[1]} differs from "
                "image "
                f"{s.image} size {ans.hw[0]}x{ans.hw[1]} (HxW)"
            )
        classes = list(s.target["classes"])
        lm = rd.label_map_net(ans)
        return ClassMasks(
            tuple(classes),
            (int(lm.shape[0]), int(lm.shape[1])),
            tuple(mask_to_rle(lm == k + 1) for k in range(len(classes))),
        ).encode()

    def score(self, samples: Sequence[Sample], predictions: Sequence[Prediction]) -> Scores:
        """Dataset confusion matrix at ``eval_size`` -> official mIoU/mPA and the extras
        (percent)."""
        check_score_lengths(samples, predictions)
        if not samples:
            nan = float("nan")
            return Scores(metrics={m.name: nan for m in self.metrics})
        classes = list(samples[0].target["classes"])
        n = len(classes) + 1
        hist = np.zeros((n, n), dtype=np.int64)
        correct = np.zeros(len(samples))
        valid = np.zeros(len(samples))
        for k, (s, p) in enumerate(zip(samples, predictions)):
            if list(s.target["classes"]) != classes or list(p.get("classes", [])) != classes:
                raise ValueError(
                    f"sample {s.sample_id}: class list differs from the first sample's {classes}"
                )
            masks = p.get("masks_net")
            if not isinstance(masks, list) or len(masks) != len(classes):
                raise ValueError(
                    f"prediction for sample {s.sample_id}: 'masks_net' must hold {len(classes)} "
                    "RLEs"
                )
            try:
                pred = merge_class_masks(np.stack([rle_to_mask(m) for m in masks]))
            except (KeyError, TypeError, ValueError) as exc:
                raise ValueError(
                    f"prediction for sample {s.sample_id}: bad 'masks_net' RLE ({exc})"
                ) from None
            unfired = s.target.get("unfired_as")  # a prompted class that also takes "none fired"
            if unfired is not None:
                pred = np.where(pred == 0, int(unfired), pred)
            pred = resize_nearest(pred, self.eval_size)
            gt = read_label(s.target, self.eval_size)
            h = fast_hist(gt, pred, n)
            hist += h
            correct[k] = np.trace(h)
            valid[k] = h.sum()
        m = semantic_metrics(hist)
        protocol = samples[0].target.get("protocol")
        if samples[0].target.get("miou") == "mmseg":  # open-vocabulary sets (_openvocab_seg)
            m.update(mmseg_metrics(hist))
        names = [str(samples[0].target.get("background_name", "background")), *classes]
        tables = {
            "per_class": [
                {
                    "class": names[c],
                    "IoU": 100.0 * float(iu_o),
                    "IoU_std": None if np.isnan(iu_s) else 100.0 * float(iu_s),
                    "F1": None if np.isnan(f1) else 100.0 * float(f1),
                    "PA": 100.0 * float(pa),
                    "gt_pixels": int(hist[c].sum()),
                    "pred_pixels": int(hist[:, c].sum()),
                }
                for c, (iu_o, iu_s, f1, pa) in enumerate(
                    zip(
                        per_class_iou_official(hist),
                        per_class_iou_std(hist),
                        per_class_f1_std(hist),
                        per_class_pa_official(hist),
                    )
                )
            ],
            "confusion_matrix": {"classes": names, "rows_are": "label", "matrix": hist.tolist()},
            "eval_size": self.eval_size,
        }
        if protocol:
            tables["protocol"] = protocol
        return Scores(
            metrics={key: 100.0 * v for key, v in m.items()},
            per_sample_ratio={"aAcc": (100.0 * correct, valid)},
            tables=tables,
            sample_ids=[s.sample_id for s in samples],
        )
