"""Vaihingen, UDD5 and DeepGlobe as open-vocabulary semantic segmentation for ``seg`` (private).

The RemoteSAM paper's Table 2 ("unseen datasets": Vaihingen, UDD5, DeepGlobe) takes its
open-vocabulary competitors (MaskCLIP, SCLIP, GEM, ClearCLIP, SegEarth-OV) from SegEarth-OV
(Li et al., CVPR 2025, https://github.com/likyoo/SegEarth-OV) and states no protocol of its own,
so the protocol here is SegEarth-OV's, read off its configs (``configs/cfg_udd5.py``,
``cfg_deepglobe_road.py``, ``cfg_vaihingen.py``, ``cls_udd5.txt``, ``cls_roadval.txt``,
``cls_deepglobe.txt``, ``cls_vaihingen.txt``, ``custom_datasets.py``) and mmsegmentation's
``ISPRSDataset`` / ``tools/dataset_converters/vaihingen.py``:

* **Vaihingen** (``vaihingen``; ISPRS 2D Semantic Labeling Contest): mmseg's ``ISPRSDataset``
  on ``vaihingen/img_dir/val`` + ``vaihingen/ann_dir/val`` (``cfg_vaihingen.py``), i.e. the
  17 val areas of mmseg's converter cut into 512x512 crops (398 images; the converter's
  ``<area>_<x0>_<y0>_<x1>_<y1>.png`` names), images and labels ``.png``. Label files hold
  the converter's values 0 eroded boundary / unknown colour, 1 impervious surface,
  2 building, 3 low vegetation, 4 tree, 5 car, 6 clutter; ``ISPRSDataset`` sets
  ``reduce_zero_label=True`` (0 -> 255 ignored, v -> v - 1; a stored 255 stays ignored).
  SegEarth-OV's queries (``cls_vaihingen.txt``) are ``impervious surface, building,
  low vegetation, tree, car, clutter`` with ``bg_idx=5``: clutter is the background class
  (low-confidence pixels become clutter) and it is scored. Here the five other classes are
  prompted and clutter is the background class ("no prompted class fired"), as UDD5's
  "other"; SegEarth-OV also queries the word "clutter", RemoteSAM's rule needs no query for
  the background. Labels 7..254 are an error naming the file. The option ``protocol``:
  ``segearth_ov`` (default, as above); ``segearth_ov_queries`` (SegEarth-OV's six queries
  exactly: clutter prompted too, and pixels where no class fires count as clutter, its
  ``bg_idx``; the unused "none" class is left out by mmseg's rule); ``isprs6`` (the former
  reading: the six ISPRS classes all prompted, values 1..6, 0 and 255 ignored, plus a
  background class that no label holds, scored with RemoteSAM ``SEG.py``'s formula, where an
  absent class counts 0, so that background IoU is always 0 and caps mIoU at 6/7).

* **UDD5** (``udd5``; Chen et al., PRCV 2018, https://github.com/MarcWong/UDD): split ``val``
  (``UDD5/val/src`` + ``UDD5/val/gt``); ground truth = single-channel label PNGs with values
  0 vegetation, 1 building, 2 road, 3 vehicle, 4 other, 255 ignored (``UDD5Dataset``,
  ``reduce_zero_label=False``). SegEarth-OV's class queries are ``vegetation, building, road,
  vehicle, background`` with ``bg_idx=4``: "other" is the background class and it is scored.
  Colour-coded labels (the README's palette: vegetation (107,142,35), building (102,102,156),
  road (128,64,128), vehicle (0,0,142), other (0,0,0)) are read too, per file.
* **DeepGlobe** (``deepglobe``; Demir et al., CVPR-W 2018): SegEarth-OV evaluates DeepGlobe only
  as *road extraction* (``cfg_deepglobe_road.py``: ``RoadValDataset``, classes ``background,
  road``, the 1,530-image test split ``DeepGlobe_test_1530`` of GRSet,
  https://github.com/xiaoyan07/GRNet_GRSet). Table 2 is consistent with that: the referring
  models FIANet and RMSIN, which find almost no road, score 47.8 / 47.9, i.e. the background
  class's IoU (~95) halved. Three layouts are read, found in this order: SegEarth-OV's
  converted folders ``DeepGlobe_test_1530/image_cvt/<id>.jpg`` + ``label_cvt/<id>.png`` (values
  0 / 1; written by its ``tools/dataset_converters/deepglobe_road.py``); GRSet's own
  ``DeepGlobe_test_1530/img/<id>_sat.jpg`` + ``gt/<id>_mask.png`` (the converter's input; road
  white, binarised at 128 as the converter and the DeepGlobe README do); and the DeepGlobe
  release's ``<split>/<id>_sat.jpg`` + ``<id>_mask.png`` (only its ``train`` folder has masks:
  the 1,530 test tiles are a part of it, so place them in ``test/``).
* **DeepGlobe land cover** (``deepglobe_landcover``, an alternative, since the paper does not say
  which DeepGlobe track it used): ``<split>/<id>_sat.jpg`` + RGB ``<id>_mask.png`` binarised at
  128 per channel, classes in SegEarth-OV's ``cls_deepglobe.txt`` order ``urban, agriculture,
  rangeland, forest, water, barren`` with ``unknown`` (0,0,0) as the background class. Only the
  train split (803 images) has public masks, so it is the default.

Scoring (all three): each foreground class is one prompt (the ``seg`` task's template);
pixels where no class fires are the background class (RemoteSAM's rule, the counterpart of
SegEarth-OV's ``bg_idx`` for low-confidence pixels), and the background class is scored like
any other. ``mIoU`` and ``mPA`` follow mmsegmentation's ``IoUMetric`` (SegEarth-OV's
``test_evaluator``): per-class IoU = I / U over the dataset, **NaN (left out of the mean) for a
class absent from both label and prediction**, ignored label 255 left out; ``mPA`` is mmseg's
``mAcc``. The ``seg`` task's ``eval_size`` (896, RemoteSAM's evaluation size) applies;
SegEarth-OV scores at the original resolution (``--task-opt seg.eval_size`` changes it for all
datasets of a run). The protocol's name is written into the run document (``tables.protocol``).

Options (``--dataset-opt seg.udd5.KEY=VALUE``): ``img_dir`` / ``ann_dir`` (folders),
``protocol`` (Vaihingen only: ``segearth_ov`` or ``isprs6``, above),
``unknown_colour`` (colour-coded labels: ``error`` or ``background``), ``miou`` (``mmseg``,
default, or ``official``: RemoteSAM ``SEG.py``'s formula, an absent class counting 0); the
split with ``--split`` (UDD5 ``train``; DeepGlobe road ``train`` / ``valid`` folders of the
release).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from remotesam.bench.api import DatasetAdapter, DatasetError, Sample
from remotesam.bench.api.datainfo import DatasetInfo
from remotesam.bench.kit import check_options, image_files, require_dir, resize_nearest
from remotesam.classes import POTSDAM_CLASSES

from ._datasets import DATASET_INFO

__all__ = [
    "DEEPGLOBE_LC_CLASSES",
    "DEEPGLOBE_LC_PALETTE",
    "DEEPGLOBE_ROAD_CLASSES",
    "OPENVOCAB_ENCODINGS",
    "SEGEARTH_OV",
    "UDD5_CLASSES",
    "UDD5_PALETTE",
    "VAIHINGEN_CLASSES",
    "DeepGlobeLandCoverAdapter",
    "DeepGlobeRoadAdapter",
    "UDD5Adapter",
    "VaihingenAdapter",
    "mmseg_metrics",
    "read_openvocab_label",
]

#: Protocol tag written into targets and into the run document.
SEGEARTH_OV = ("SegEarth-OV open-vocabulary protocol (github.com/likyoo/SegEarth-OV configs): "
               "foreground classes prompted, background class scored, mmseg IoUMetric mIoU")

#: UDD5 classes prompted, label values 0..3; value 4 ("other") is the background class.
UDD5_CLASSES: tuple[str, ...] = ("vegetation", "building", "road", "vehicle")
#: UDD5 README colours of :data:`UDD5_CLASSES`; "other" is (0, 0, 0).
UDD5_PALETTE: tuple[tuple[int, int, int], ...] = (
    (107, 142, 35), (102, 102, 156), (128, 64, 128), (0, 0, 142),
)
#: Vaihingen classes prompted (mmseg label values 1..5; 6 = clutter, the background class).
VAIHINGEN_CLASSES: tuple[str, ...] = POTSDAM_CLASSES[:5]
DEEPGLOBE_ROAD_CLASSES: tuple[str, ...] = ("road",)
#: DeepGlobe land cover classes (SegEarth-OV ``cls_deepglobe.txt`` order); unknown = background.
DEEPGLOBE_LC_CLASSES: tuple[str, ...] = (
    "urban", "agriculture", "rangeland", "forest", "water", "barren",
)
DEEPGLOBE_LC_PALETTE: tuple[tuple[int, int, int], ...] = (
    (0, 255, 255), (255, 255, 0), (255, 0, 255), (0, 255, 0), (0, 0, 255), (255, 255, 255),
)

#: Label encodings this module reads (``read_label`` in ``seg`` dispatches them here).
OPENVOCAB_ENCODINGS: frozenset[str] = frozenset({"threshold_binary", "threshold_palette"})
_THRESHOLD = 128


def _open(path: Path) -> Any:
    from PIL import Image, UnidentifiedImageError

    try:
        im = Image.open(path)
        im.load()
        return im
    except FileNotFoundError:
        raise DatasetError(f"label file {path} not found") from None
    except (OSError, UnidentifiedImageError, ValueError) as exc:
        raise DatasetError(f"label file {path} is unreadable: {exc}") from None


def read_openvocab_label(target: Mapping[str, Any], size: int | None = None) -> np.ndarray:
    """Ground truth of a DeepGlobe release mask (``encoding`` ``threshold_binary`` or
    ``threshold_palette``), as :func:`remotesam_plugins.seg.read_label` returns it.

    ``threshold_binary``: the mask (any mode, converted to PIL ``L``) is road where
    ``>= 128`` -> label 1, else 0. ``threshold_palette``: each RGB channel binarised at 128,
    then colour k of ``palette`` -> ``k + 1``, black -> 0; another colour is an error naming
    the file unless ``unknown_colour`` is ``"background"``.

    Returns:
        ``(H, W)`` int64 (nearest-resized to ``size x size`` when given).
    """
    from ._labels import colour_to_label

    path = Path(target["label_path"])
    with _open(path) as im:
        if target["encoding"] == "threshold_binary":
            a = np.asarray(im.convert("L"))
            out = (a >= _THRESHOLD).astype(np.int64)
        else:
            if im.mode not in ("RGB", "RGBA", "P"):
                raise DatasetError(f"{path}: colour mask has PIL mode {im.mode}, expected RGB")
            rgb = np.where(np.asarray(im.convert("RGB")) >= _THRESHOLD, 255, 0).astype(np.uint8)
            out = colour_to_label(rgb, target["palette"],
                                  unknown=target.get("unknown_colour", "error"),
                                  where=str(path)).astype(np.int64)
    return resize_nearest(out, size) if size is not None else out


def mmseg_metrics(hist: np.ndarray) -> dict[str, float]:
    """mmsegmentation ``IoUMetric`` from a confusion matrix (rows = label, cols = prediction):
    ``mIoU`` = nanmean of I / U over all classes (NaN where U = 0), ``mPA`` = nanmean of
    TP / label pixels (mmseg ``mAcc``; NaN where a class has no label pixel). Fractions."""
    h = np.asarray(hist, dtype=np.float64)
    tp = np.diag(h)
    union = h.sum(0) + h.sum(1) - tp
    label = h.sum(1)
    iou = np.divide(tp, union, out=np.full_like(tp, np.nan), where=union > 0)
    acc = np.divide(tp, label, out=np.full_like(tp, np.nan), where=label > 0)
    nan = float("nan")
    return {
        "mIoU": float(np.nanmean(iou)) if np.isfinite(iou).any() else nan,
        "mPA": float(np.nanmean(acc)) if np.isfinite(acc).any() else nan,
    }


def _label_mode(path: Path) -> str:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            return str(im.mode)
    except (OSError, UnidentifiedImageError, ValueError) as exc:
        raise DatasetError(f"label file {path} is unreadable: {exc}") from None


class _OpenVocabAdapter(DatasetAdapter):
    """Pairs images and label files by stem; subclasses say where and how labels read."""

    background_name: ClassVar[str] = "background"
    _OPTIONS: ClassVar[frozenset[str]] = frozenset(
        {"img_dir", "ann_dir", "unknown_colour", "miou"})

    def __init__(self, root: str | Path, split: str | None = None, **options: Any) -> None:
        super().__init__(root, split, **options)
        check_options(self.name, self.options, self._OPTIONS)
        self.unknown_colour = str(self.options.get("unknown_colour", "error"))
        if self.unknown_colour not in ("error", "background"):
            raise DatasetError(f"{self.name}: option unknown_colour must be 'error' or "
                               f"'background', got {self.unknown_colour!r}")
        self.miou = str(self.options.get("miou", "mmseg"))
        if self.miou not in ("mmseg", "official"):
            raise DatasetError(f"{self.name}: option miou must be 'mmseg' (SegEarth-OV's "
                               f"IoUMetric, default) or 'official' (RemoteSAM SEG.py: a class "
                               f"absent from label and prediction counts 0), got {self.miou!r}")
        img, ann = self._locate()
        self.img_dir = Path(self.options.get("img_dir", img))
        self.ann_dir = Path(self.options.get("ann_dir", ann))
        require_dir(self.img_dir, f"{self.name} image folder", self.layout)
        require_dir(self.ann_dir, f"{self.name} label folder", self.layout)

    def _locate(self) -> tuple[Path, Path]:  # pragma: no cover - overridden
        raise NotImplementedError

    def _pairs(self, label_suffix: str, image_suffix: str) -> list[tuple[str, Path, Path]]:
        """(stem, image, label) for every label file ``<stem><label_suffix>`` of ``ann_dir``."""
        labels = [p for p in image_files(self.ann_dir) if p.name.endswith(label_suffix)]
        if not labels:
            raise DatasetError(f"{self.name}: no '*{label_suffix}' label in {self.ann_dir}\n"
                               f"Expected layout:\n{self.layout}")
        images = {p.name[: -len(image_suffix)] if p.name.endswith(image_suffix) else p.stem: p
                  for p in image_files(self.img_dir)}
        out, missing = [], []
        for lab in labels:
            stem = lab.name[: -len(label_suffix)]
            img = images.get(stem)
            if img is None:
                missing.append(f"{self.img_dir / stem}{image_suffix}")
                continue
            out.append((stem, img, lab))
        if missing:
            raise DatasetError(
                f"{self.name}: {len(missing)} label(s) without an image: "
                f"{', '.join(missing[:5])}\nExpected layout:\n{self.layout}")
        return out

    def _sample(self, stem: str, image: Path, label: Path, target: dict[str, Any]) -> Sample:
        target.update({"label_path": str(label), "classes": list(self.classes),
                       "background_name": self.background_name, "protocol": SEGEARTH_OV,
                       "miou": self.miou})
        return Sample(sample_id=stem, image=image, target=target,
                      meta={"label_file": label.name})


class UDD5Adapter(_OpenVocabAdapter):
    """UDD5 (``src/*.JPG`` + ``gt/*.png`` per split), SegEarth-OV's protocol (module docstring).

    Options: ``img_dir``, ``ann_dir`` (override the folders), ``unknown_colour`` (colour-coded
    labels only: ``"error"`` default, or ``"background"``).
    """

    name: ClassVar[str] = "udd5"
    splits: ClassVar[tuple[str, ...]] = ("val", "train")
    default_split: ClassVar[str] = "val"
    default_subdir: ClassVar[str] = "UDD5"
    classes: ClassVar[tuple[str, ...]] = UDD5_CLASSES
    background_name: ClassVar[str] = "other"
    layout: ClassVar[str] = (
        "<root>/                   (e.g. UDD/UDD5)\n"
        "  <split>/src/<name>.JPG ...\n"
        "  <split>/gt/<name>.png ...  (labels 0 vegetation .. 3 vehicle, 4 other, 255 ignored)\n"
    )
    info: ClassVar[DatasetInfo] = DatasetInfo(
        title="UDD5",
        source=("Chen et al., Large-scale structure from motion with semantic constraints of "
                "aerial images, PRCV 2018; https://github.com/MarcWong/UDD"),
        licence="non-commercial use (UDD README); repository MIT",
        split="val",
        size=None,
        layout=("val/src/*", "val/gt/*.png"),
        how_to_get=("Download UDD-5 from the Google Drive / Baidu links in the UDD README "
                    "(github.com/MarcWong/UDD) and unpack it so that UDD5/ holds "
                    "{train,val}/{src,gt}; pass --data-root to the folder above UDD5/."),
    )

    def _locate(self) -> tuple[Path, Path]:
        return self.root / self.split / "src", self.root / self.split / "gt"

    def samples(self) -> list[Sample]:
        """One sample per ``gt/*.png`` (sorted), its image ``src/<stem>.*``; single-channel
        labels use the ``index`` encoding, RGB ones the README palette."""
        out = []
        for stem, img, lab in self._pairs(".png", ".JPG"):
            if _label_mode(lab) in ("RGB", "RGBA"):
                target: dict[str, Any] = {
                    "encoding": "rgb_palette", "palette": [list(c) for c in UDD5_PALETTE],
                    "unknown_colour": self.unknown_colour}
            else:
                target = {"encoding": "index", "value_offset": 0, "ignore_values": [255],
                          "background_value": 4}
            out.append(self._sample(stem, img, lab, target))
        return out


class DeepGlobeRoadAdapter(_OpenVocabAdapter):
    """DeepGlobe road extraction as SegEarth-OV evaluates it (module docstring).

    Three layouts, found in this order (module docstring): SegEarth-OV's converted
    ``<root>/DeepGlobe_test_1530/{image_cvt,label_cvt}`` (or ``<root>/{image_cvt,label_cvt}``;
    labels 0 / 1, 255 ignored), GRSet's ``<root>/DeepGlobe_test_1530/{img,gt}`` (``<id>_sat.jpg``
    + ``<id>_mask.png``, road = white, binarised at 128), and the DeepGlobe release's
    ``<root>/<split>/<id>_sat.jpg`` + ``<id>_mask.png``. Options: ``img_dir``, ``ann_dir``.
    """

    name: ClassVar[str] = "deepglobe"
    splits: ClassVar[tuple[str, ...]] = ("test", "train", "valid")
    default_split: ClassVar[str] = "test"
    default_subdir: ClassVar[str] = "DeepGlobe"
    classes: ClassVar[tuple[str, ...]] = DEEPGLOBE_ROAD_CLASSES
    layout: ClassVar[str] = (
        "<root>/                                   (e.g. DeepGlobe)\n"
        "  DeepGlobe_test_1530/img/<id>_sat.jpg, .../gt/<id>_mask.png   (GRSet; road = white)\n"
        "  or DeepGlobe_test_1530/image_cvt/<id>.jpg, .../label_cvt/<id>.png (SegEarth-OV's\n"
        "     converter output, 0 / 1)\n"
        "  or <split>/<id>_sat.jpg, <split>/<id>_mask.png ...   (DeepGlobe release layout)\n"
    )
    info: ClassVar[DatasetInfo] = DatasetInfo(
        title="DeepGlobe",
        source=("Demir et al., DeepGlobe 2018: A Challenge to Parse the Earth through Satellite "
                "Images, CVPR-W 2018; road extraction test split of 1,530 images as SegEarth-OV "
                "uses it (GRSet, https://github.com/xiaoyan07/GRNet_GRSet)"),
        licence="DeepGlobe challenge terms (research use)",
        split="test",
        size=1530,
        layout=(
            "DeepGlobe_test_1530/gt/*_mask.png | DeepGlobe_test_1530/label_cvt/*.png"
            " | test/*_mask.png",
        ),
        how_to_get=("Download GRSet's validation set (Baidu link in "
                    "github.com/xiaoyan07/GRNet_GRSet) and place its DeepGlobe_test_1530 folder "
                    "(img/, gt/) under DeepGlobe/ (SegEarth-OV's converted image_cvt/, "
                    "label_cvt/ are read too), or place the same 1,530 tiles of the DeepGlobe "
                    "road release's train folder (<id>_sat.jpg + <id>_mask.png) in "
                    "DeepGlobe/test/."),
        counts={
            "DeepGlobe_test_1530/img/*_sat.jpg | DeepGlobe_test_1530/image_cvt/*.jpg"
            " | test/*_sat.jpg": 1530,
        },
    )

    def _locate(self) -> tuple[Path, Path]:
        self.converted = False
        for base in (self.root / "DeepGlobe_test_1530", self.root):
            if (base / "image_cvt").is_dir() and (base / "label_cvt").is_dir():
                self.converted = True
                return base / "image_cvt", base / "label_cvt"
        for base in (self.root / "DeepGlobe_test_1530", self.root):
            if (base / "img").is_dir() and (base / "gt").is_dir():
                return base / "img", base / "gt"
        return self.root / self.split, self.root / self.split

    def samples(self) -> list[Sample]:
        """One sample per label (sorted by id); ``sample_id`` = the tile id."""
        if self.converted and "ann_dir" not in self.options:
            pairs = self._pairs(".png", ".jpg")
            target: dict[str, Any] = {"encoding": "index", "value_offset": 1,
                                      "ignore_values": [255], "background_value": 0}
        else:
            pairs = self._pairs("_mask.png", "_sat.jpg")
            target = {"encoding": "threshold_binary"}
        return [self._sample(stem, img, lab, dict(target)) for stem, img, lab in pairs]


class DeepGlobeLandCoverAdapter(_OpenVocabAdapter):
    """DeepGlobe land cover (``<split>/<id>_sat.jpg`` + RGB ``<id>_mask.png``), an alternative
    reading of Table 2's "DeepGlobe" (module docstring). Options: ``img_dir``, ``ann_dir``,
    ``unknown_colour``."""

    name: ClassVar[str] = "deepglobe_landcover"
    splits: ClassVar[tuple[str, ...]] = ("train", "valid", "test")
    default_split: ClassVar[str] = "train"
    default_subdir: ClassVar[str] = "DeepGlobe_LandCover"
    classes: ClassVar[tuple[str, ...]] = DEEPGLOBE_LC_CLASSES
    background_name: ClassVar[str] = "unknown"
    layout: ClassVar[str] = (
        "<root>/                                   (e.g. DeepGlobe_LandCover)\n"
        "  <split>/<id>_sat.jpg, <split>/<id>_mask.png ...  (RGB palette, binarised at 128)\n"
    )
    info: ClassVar[DatasetInfo] = DatasetInfo(
        title="DeepGlobe Land Cover",
        source=("Demir et al., DeepGlobe 2018, CVPR-W 2018 (land cover classification track)"),
        licence="DeepGlobe challenge terms (research use)",
        split="train",
        size=803,
        layout=("train/*_sat.jpg", "train/*_mask.png"),
        how_to_get=("Unpack the DeepGlobe land cover release so that DeepGlobe_LandCover/train "
                    "holds the 803 <id>_sat.jpg / <id>_mask.png pairs (valid/test masks are "
                    "not public)."),
        counts={"train/*_sat.jpg": 803},
    )

    def _locate(self) -> tuple[Path, Path]:
        return self.root / self.split, self.root / self.split

    def samples(self) -> list[Sample]:
        """One sample per ``*_mask.png`` (sorted by id)."""
        return [
            self._sample(stem, img, lab, {
                "encoding": "threshold_palette",
                "palette": [list(c) for c in DEEPGLOBE_LC_PALETTE],
                "unknown_colour": self.unknown_colour})
            for stem, img, lab in self._pairs("_mask.png", "_sat.jpg")
        ]


#: Protocol tag of Vaihingen's ``protocol=isprs6`` option.
ISPRS6 = ("ISPRS six classes (impervious surface .. clutter) all prompted, label values 1..6, "
          "0/255 ignored, an unlabelled background class scored, RemoteSAM SEG.py mIoU")


class VaihingenAdapter(_OpenVocabAdapter):
    """ISPRS Vaihingen in mmsegmentation's converted layout, SegEarth-OV's protocol (module
    docstring): ``img_dir/<split>/*.png`` + ``ann_dir/<split>/*.png`` (converter values 0..6).

    Options: ``protocol`` (``"segearth_ov"`` default: impervious surface, building, low
    vegetation, tree, car prompted, clutter = scored background, 0 / 255 ignored, mmseg mIoU;
    ``"segearth_ov_queries"``: clutter prompted as well and also given to unfired pixels;
    ``"isprs6"``: all six ISPRS classes prompted, an extra background class scored, RemoteSAM
    ``SEG.py`` mIoU), ``miou`` (``mmseg`` / ``official``; default follows ``protocol``),
    ``img_dir``, ``ann_dir``. Other label conventions: the ``label_png`` dataset.
    """

    name: ClassVar[str] = "vaihingen"
    splits: ClassVar[tuple[str, ...]] = ("val", "train")
    default_split: ClassVar[str] = "val"
    default_subdir: ClassVar[str] = "vaihingen"
    classes: ClassVar[tuple[str, ...]] = VAIHINGEN_CLASSES
    background_name: ClassVar[str] = "clutter"
    protocols: ClassVar[tuple[str, ...]] = ("segearth_ov", "segearth_ov_queries", "isprs6")
    _OPTIONS: ClassVar[frozenset[str]] = frozenset({"img_dir", "ann_dir", "miou", "protocol"})
    layout: ClassVar[str] = (
        "<root>/                                (e.g. vaihingen, mmseg's converter output)\n"
        "  img_dir/<split>/<area>_<x0>_<y0>_<x1>_<y1>.png ...   (512x512 IRRG crops)\n"
        "  ann_dir/<split>/<same name>.png ...  (0 ignored, 1 impervious surface .. 5 car, "
        "6 clutter)\n"
    )
    info: ClassVar[DatasetInfo | None] = DATASET_INFO["vaihingen"]  # val, 398 crops

    def __init__(self, root: str | Path, split: str | None = None, **options: Any) -> None:
        protocol = str(options.get("protocol", "segearth_ov"))
        if protocol not in self.protocols:
            raise DatasetError(f"vaihingen: option protocol must be 'segearth_ov' (SegEarth-OV, "
                               f"default), 'segearth_ov_queries' (its six queries, clutter "
                               f"also where none fires) or 'isprs6' (six ISPRS classes "
                               f"prompted, extra background class), got {protocol!r}")
        if protocol == "isprs6":
            options.setdefault("miou", "official")
        super().__init__(root, split, **options)
        self.protocol = protocol
        if protocol != "segearth_ov":
            self.classes = POTSDAM_CLASSES  # type: ignore[misc]
            self.background_name = ("background" if protocol == "isprs6"  # type: ignore[misc]
                                    else "none fired (scored as clutter)")

    def _locate(self) -> tuple[Path, Path]:
        return self.root / "img_dir" / self.split, self.root / "ann_dir" / self.split

    def samples(self) -> list[Sample]:
        """One sample per ``ann_dir/<split>/*.png`` (sorted), its image ``img_dir/<split>/``
        with the same name; ``sample_id`` = the crop name."""
        if self.protocol != "segearth_ov":
            target: dict[str, Any] = {"encoding": "index", "value_offset": 1,
                                      "ignore_values": [0, 255], "background_value": None}
            if self.protocol == "segearth_ov_queries":
                target["unfired_as"] = len(POTSDAM_CLASSES)  # clutter, SegEarth-OV's bg_idx
        else:
            target = {"encoding": "index", "value_offset": 1, "ignore_values": [0, 255],
                      "background_value": len(VAIHINGEN_CLASSES) + 1}
        target["label_hint"] = ("Vaihingen labels must be mmsegmentation's converter output "
                                "(tools/dataset_converters/vaihingen.py: 0 boundary, 1 impervious "
                                "surface .. 6 clutter); convert the ISPRS colour GT with it")
        out = []
        for stem, img, lab in self._pairs(".png", ".png"):
            t = dict(target)
            smp = self._sample(stem, img, lab, t)
            if self.protocol == "isprs6":
                t["protocol"] = ISPRS6
            out.append(smp)
        return out
