"""Referring expression segmentation (``ref``): RRSIS-D and RemoteSAM-270K in REFER format.

Protocol reproduced (official ``tasks/code/eval/REF.py`` + ``refer/refer.py``):

* data: ``refs(unc).p`` + ``instances.json`` (RRSIS-D's non-COCO flavour: ``categories_id``,
  xyxy ``bbox``, ``segmentation`` = list of one compressed RLE, 0-based categories); a ref is
  kept when its split matches REFER's ``getRefIds`` rule (``test`` matches by substring);
* **every sentence of every ref** is one sample (``sample_id = "<ref_id>:<sent_id>"``); the
  model is fed the sentence's ``raw`` text, as the official ``ReferDataset`` does
  (``el['raw']``; PROTOCOLS 2.1 / DATASETS 1: RemoteSAM's REF eval goes through
  ``ReferDataset``);
* ground truth = pixels where the decoded segmentation list sums to exactly 1 (``REFER.getMask``
  + ``annot[mask == 1] = 1``), resized to 896x896 with PIL ``NEAREST``; the prediction is the
  network-resolution argmax (``ReferringMask.mask_net``, 896x896 for the official model);
* per expression ``IoU = I / U`` (0 when ``U = 0``); ``mIoU`` = mean, ``oIoU = ΣI / ΣU``,
  ``Pr@t`` = share with ``IoU >= t``, t = 0.5..0.9; reported in percent.

Scoring runs on the COCO RLEs themselves (PIL-exact nearest resizing of the runs, I/U with
pycocotools' RLE merge/area): the same integers as decoding the masks, about 10x faster.

Deviations from the official code, all deliberate:

* The evaluation size is the ``eval_size`` task option (default 896, official). A model whose
  network size S differs has its ``mask_net`` nearest-resized (PIL) from S to ``eval_size``.
* Extra, non-official metrics ``*_orig`` score the prediction at the original image size
  (``ReferringMask.mask``, the official wrapper's nearest upsampling) against the original GT.
* Default split is ``test`` (the paper's tables, per the author in issue #11); the shipped
  ``REF.sh`` passes ``--split val`` and does not run at all (broken ``\\ `` line continuation,
  unknown ``--nproc_per_node`` flag): nothing of that is reproduced.
* ``REFER`` only accepts the dataset name ``rrsisd``; here the file locations are options.
* RemoteSAM-270K has no official evaluation; its training loader (``All_Dataset``) reads only
  ``sentences[0]`` and a flat ``JPEGImages/`` folder. The adapter keeps the flat folder but
  evaluates every sentence, like RRSIS-D. Image sizes come from ``images[]`` or, when the image
  is not listed there (the pre-cleaning release lists fewer images than it uses), from the RLE.
* Dataset option ``sentence_field=sent`` feeds REFER's normalised ``sent`` text instead (what
  the official *training* loader ``All_Dataset`` reads; not the official evaluation). A
  sentence lacking the chosen field falls back to the other one (the official loader would
  raise ``KeyError``).
* A ``sent_id`` that appears twice in the split (``refs(unc).p`` edited or merged by hand): the
  official evaluation walks every sentence of every ref, so both are evaluated; the same here
  by default, with a :class:`~remotesam.bench.api.DatasetWarning` giving the count (a repeat
  inside one ref gets the sample id ``"<ref_id>:<sent_id>#<index in the ref>"``). The dataset
  option ``duplicates=error`` (``--dataset-opt ref.rrsisd.duplicates=error``) refuses the file.
* ``refs(unc).p`` is read with a restricted unpickler (plain data only), never ``pickle.load``.
* An image whose size differs from its ``instances.json`` entry fails that sample with a clear
  message (the official loader would silently compare masks of different sizes or crash).
* RISBench and RefSegRS come in LGCE's phrase-list layout (images + binary masks +
  ``output_phrase_<split>.txt``), read by :mod:`remotesam_plugins._risbench` and
  :mod:`remotesam_plugins._refsegrs` (test split by default; the metrics are this task's).
* Images listed by the refs but absent raise :class:`DatasetError` in ``samples()`` (the
  official loader fails on the first one mid-run); so does a ``file_name`` pointing outside
  the image folder (absolute, or with ``..``).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
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
from remotesam.bench.api.predictions import MaskPrediction
from remotesam.bench.kit import (
    check_images_exist,
    check_options,
    check_score_lengths,
    mask_to_rle,
    member_path,
    positive_int_option,
    require_dir,
    require_file,
    rle_inter_union,
    rle_resize_nearest,
)
from remotesam.bench.kit.masks import rle_counts
from remotesam.classes import RRSISD_CLASSES

from ._datasets import DATASET_INFO
from ._refer import SENTENCE_FIELDS, ReferData, load_refer, refer_gt_mask
from ._refsegrs import RefSegRSAdapter
from ._risbench import RISBenchAdapter
from .metrics.segmentation import REF_THRESHOLDS, per_expression_iou, referring_metrics

__all__ = [
    "RRSISD_CLASSES",
    "RISBenchAdapter",
    "RRSISDAdapter",
    "RefSegRSAdapter",
    "ReferringSegmentationTask",
    "RemoteSAM270KAdapter",
]


class _ReferAdapter(DatasetAdapter):
    """Common REFER reading; subclasses say where the files are."""

    splits: ClassVar[tuple[str, ...]] = ("train", "val", "test")
    default_split: ClassVar[str] = "test"
    _refs_names: ClassVar[tuple[str, ...]] = ("refs(unc).p",)
    _OPTIONS: ClassVar[frozenset[str]] = frozenset(
        {"refs_file", "instances_file", "image_dir", "sentence_field", "duplicates"}
    )

    def __init__(self, root: str | Path, split: str | None = None, **options: Any) -> None:
        super().__init__(root, split, **options)
        check_options(type(self).__name__, self.options, self._OPTIONS)
        self.sentence_field = str(self.options.get("sentence_field", "raw")).lower()
        if self.sentence_field not in SENTENCE_FIELDS:
            raise DatasetError(
                f"{self.name}: option sentence_field={self.options['sentence_field']!r}; expected "
                "'raw' (official: the text ReferDataset feeds the model) or 'sent'"
            )
        self.duplicates = str(self.options.get("duplicates", "keep")).lower()
        if self.duplicates not in ("keep", "error"):
            raise DatasetError(f"{self.name}: option duplicates={self.options['duplicates']!r}; "
                               "expected 'keep' (official: evaluate every sentence) or 'error'")
        self.refs_path, self.instances_path, self.image_dir = self._locate()
        require_file(self.refs_path, f"{self.name} refs file", self.layout)
        require_file(self.instances_path, f"{self.name} instances file", self.layout)
        require_dir(self.image_dir, f"{self.name} image folder", self.layout)

    def _locate(self) -> tuple[Path, Path, Path]:  # pragma: no cover - overridden
        raise NotImplementedError

    def _option_path(self, key: str) -> Path | None:
        v = self.options.get(key)
        return None if v is None else Path(v)

    def read(self) -> ReferData:
        """The parsed refs of this split (see :func:`remotesam_plugins._refer.load_refer`)."""
        data = load_refer(self.refs_path, self.instances_path, self.split,
                          sentence_field=self.sentence_field, duplicates=self.duplicates)
        if not data.refs:
            raise DatasetError(
                f"{self.name}: no ref of split {self.split!r} in {self.refs_path}; splits present: "
                f"{list(data.splits_found)}"
            )
        return data

    def samples(self) -> list[Sample]:
        """One sample per sentence of every ref of the split, in file order.

        ``target``: ``mask_rle`` (compressed COCO RLE, ``str`` counts, original size, official
        GT rule), ``size`` ``[H, W]``, ``bbox_xyxy`` (as stored; RRSIS-D: the DIOR-RSVG box) or
        None, ``category`` (name or None). ``meta``: ``sentence`` (the ``sentence_field``
        text), ``ref_id``, ``sent_id``, ``ann_id``, ``image_id``, ``file_name``, ``split``.

        Raises:
            DatasetError: malformed files (naming file, ref and field) or absent images.
        """
        data = self.read()
        if data.n_duplicate_sent_ids:
            warnings.warn(
                f"{self.refs_path}: {data.n_duplicate_sent_ids} sentence(s) of split "
                f"{self.split!r} repeat a sent_id; each is evaluated, as the official code "
                f"does; --dataset-opt ref.{self.name}.duplicates=error refuses such a file",
                DatasetWarning, stacklevel=2)
        out: list[Sample] = []
        ids: set[str] = set()
        for ref in data.refs:
            where = f"{self.instances_path}: annotation id {ref.ann_id}"
            rle = refer_gt_mask(ref, where)
            cat = None
            if ref.category_id is not None:
                cat = data.categories.get(ref.category_id)
            target = {
                "mask_rle": rle,
                "size": [ref.height, ref.width],
                "bbox_xyxy": None if ref.bbox is None else list(ref.bbox),
                "category": cat,
            }
            image = member_path(self.image_dir, ref.file_name,
                                f"{self.refs_path}: ref {ref.ref_id} file_name")
            for k, (sent_id, text) in enumerate(ref.sentences):
                sid = f"{ref.ref_id}:{sent_id}"
                if sid in ids:  # a sent_id repeated inside one ref
                    sid = f"{sid}#{k}"
                ids.add(sid)
                out.append(
                    Sample(
                        sample_id=sid,
                        image=image,
                        target=target,
                        meta={
                            "sentence": text,
                            "ref_id": ref.ref_id,
                            "sent_id": sent_id,
                            "ann_id": ref.ann_id,
                            "image_id": ref.image_id,
                            "file_name": ref.file_name,
                            "split": ref.split,
                        },
                    )
                )
        check_images_exist(
            (Path(s.image) for s in out), f"{self.name} ({self.image_dir})", self.layout
        )
        return out


class RRSISDAdapter(_ReferAdapter):
    """RRSIS-D (Liu et al., CVPR 2024) in the REFER layout the official code reads.

    ``root`` is the REFER data root (holding ``rrsisd/`` and ``images/rrsisd/``); pointing it at
    the ``rrsisd/`` folder itself also works. Options: ``refs_file``, ``instances_file``,
    ``image_dir`` override the three locations; ``sentence_field`` (``raw`` official, default;
    or ``sent``) picks the text fed to the model.
    """

    name: ClassVar[str] = "rrsisd"
    info: ClassVar[DatasetInfo | None] = DATASET_INFO["rrsisd"]
    title: ClassVar[str] = "RRSIS-D"
    default_subdir: ClassVar[str] = "."
    classes: ClassVar[tuple[str, ...]] = RRSISD_CLASSES
    layout: ClassVar[str] = (
        "<root>/                       (REFER data root, e.g. refer/data)\n"
        "  rrsisd/refs(unc).p\n"
        "  rrsisd/instances.json\n"
        "  images/rrsisd/JPEGImages/02934.jpg ...\n"
    )

    def _locate(self) -> tuple[Path, Path, Path]:
        root = self.root
        if (root / "rrsisd" / "refs(unc).p").is_file() or not (root / "refs(unc).p").is_file():
            ann_dir, data_root = root / "rrsisd", root
        else:  # pointed at the rrsisd/ folder itself
            ann_dir, data_root = root, root.parent
        return (
            self._option_path("refs_file") or ann_dir / "refs(unc).p",
            self._option_path("instances_file") or ann_dir / "instances.json",
            self._option_path("image_dir") or data_root / "images" / "rrsisd" / "JPEGImages",
        )


class RemoteSAM270KAdapter(_ReferAdapter):
    """RemoteSAM-270K (``refs(unc)_RemoteSAM.p`` + ``instances.json`` + flat ``JPEGImages/``).

    Same REFER schema as RRSIS-D (per the authors). Its ``categories`` ids carry no meaning
    (the object types live in the text), so ``classes`` is empty and ``target["category"]`` is
    whatever ``instances.json`` names. Options as for :class:`RRSISDAdapter`.
    """

    name: ClassVar[str] = "remotesam270k"
    info: ClassVar[DatasetInfo | None] = DATASET_INFO["remotesam270k"]
    title: ClassVar[str] = "RemoteSAM-270K"
    default_subdir: ClassVar[str] = "RemoteSAM-270K"
    classes: ClassVar[tuple[str, ...]] = ()
    layout: ClassVar[str] = (
        "<root>/                       (e.g. RemoteSAM-270K)\n"
        "  refs(unc)_RemoteSAM.p       (or refs(unc).p)\n"
        "  instances.json\n"
        "  JPEGImages/<file_name> ...\n"
    )

    def _locate(self) -> tuple[Path, Path, Path]:
        refs = self._option_path("refs_file")
        if refs is None:
            refs = self.root / "refs(unc)_RemoteSAM.p"
            if not refs.is_file() and (self.root / "refs(unc).p").is_file():
                refs = self.root / "refs(unc).p"
        return (
            refs,
            self._option_path("instances_file") or self.root / "instances.json",
            self._option_path("image_dir") or self.root / "JPEGImages",
        )


def _metric_specs() -> tuple[MetricSpec, ...]:
    specs = [
        MetricSpec(
            "oIoU",
            primary=True,
            official=True,
            description="overall IoU ΣI/ΣU at eval_size (official)",
        ),
        MetricSpec(
            "mIoU", official=True, description="mean per-expression IoU at eval_size (official)"
        ),
    ]
    specs += [
        MetricSpec(
            f"Pr@{t:g}",
            official=True,
            description=f"share of expressions with IoU >= {t:g} at eval_size (official)",
        )
        for t in REF_THRESHOLDS
    ]
    specs += [
        MetricSpec(
            "oIoU_orig", official=False, description="overall IoU at the original image size"
        ),
        MetricSpec("mIoU_orig", official=False, description="mean IoU at the original image size"),
    ]
    specs += [
        MetricSpec(
            f"Pr@{t:g}_orig", official=False, description=f"Pr@{t:g} at the original image size"
        )
        for t in REF_THRESHOLDS
    ]
    return tuple(specs)


def _checked_rle(pred: Mapping[str, Any], key: str, sample_id: str) -> dict[str, Any]:
    """``pred[key]`` as a validated compressed RLE (counts consistent with the size)."""
    try:
        rle = pred[key]
        out = {"size": [int(v) for v in rle["size"]], "counts": rle["counts"]}
        rle_counts(out)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ValueError(
            f"prediction for sample {sample_id}: field {key!r} is not a COCO RLE "
            f"{{'size': [h, w], 'counts': str}} ({exc}); re-run predict (stale cache?)"
        ) from None
    return out


class ReferringSegmentationTask(TaskPlugin):
    """Referring expression segmentation: oIoU, mIoU, Pr@0.5..0.9 (official) at ``eval_size``.

    Options (``--task-opt``): ``eval_size`` (int, default 896) - the square size at which the
    official metrics are computed; it only affects scoring.
    """

    name: ClassVar[str] = "ref"
    title: ClassVar[str] = "Referring seg."
    version: ClassVar[int] = 2
    description: ClassVar[str] = (
        "referring expression segmentation (RRSIS-D / RemoteSAM-270K in "
        "REFER format; RISBench / RefSegRS phrase lists)"
    )
    metrics: ClassVar[tuple[MetricSpec, ...]] = _metric_specs()
    datasets: ClassVar[Mapping[str, type[DatasetAdapter]]] = {
        "rrsisd": RRSISDAdapter,
        "remotesam270k": RemoteSAM270KAdapter,
        "risbench": RISBenchAdapter,
        "refsegrs": RefSegRSAdapter,
    }
    default_dataset: ClassVar[str] = "rrsisd"
    _SCORE_OPTIONS: ClassVar[frozenset[str]] = frozenset({"eval_size"})

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        super().__init__(options)
        check_options("ref task", self.options, self._SCORE_OPTIONS, error=ValueError)
        self.eval_size = positive_int_option("ref", self.options, "eval_size", 896)

    def settings(self) -> dict[str, Any]:
        """No option changes a prediction (``eval_size`` only affects scoring)."""
        return {}

    def requests(self, s: Sample) -> list[Any]:
        """One request: the expression, masks at the original and the network size only."""
        from remotesam.engine import Request

        return [Request(s.image, (str(s.meta["sentence"]),), frozenset({"mask", "mask_net"}))]

    def reduce(self, s: Sample, answers: Sequence[Any]) -> Prediction:
        """Both masks as RLE, as :meth:`predict` (an image whose size differs from the
        annotation fails the sample)."""
        (ans,) = answers
        h, w = (int(v) for v in s.target["size"])
        if tuple(ans.hw) != (h, w):
            raise DatasetError(
                f"image {s.image}: size {ans.hw[0]}x{ans.hw[1]} (HxW) differs from "
                f"the annotation's {h}x{w} (sample {s.sample_id})"
            )
        return MaskPrediction(mask_to_rle(ans.mask[0]), mask_to_rle(ans.mask_net[0])).encode()

    def score(self, samples: Sequence[Sample], predictions: Sequence[Prediction]) -> Scores:
        """Official metrics at ``eval_size`` plus ``*_orig`` at the original size (percent).

        ``per_sample_ratio``: ``oIoU`` and ``oIoU_orig`` as (100·I, U); ``per_sample``: IoU (in
        percent) for ``mIoU`` and 0/100 hits for ``Pr@t``.
        """
        check_score_lengths(samples, predictions)
        n = len(samples)
        inter = np.zeros(n, dtype=np.float64)
        union = np.zeros(n, dtype=np.float64)
        inter_o = np.zeros(n, dtype=np.float64)
        union_o = np.zeros(n, dtype=np.float64)
        gt_cache: dict[int, dict[str, Any]] = {}
        size = (self.eval_size, self.eval_size)
        for k, (s, p) in enumerate(zip(samples, predictions)):
            gt_rle = s.target["mask_rle"]
            key = id(gt_rle)  # sentences of one ref share their target: resize once
            if key not in gt_cache:
                gt_cache.clear()
                gt_cache[key] = rle_resize_nearest(gt_rle, size)
            pred_net = _checked_rle(p, "mask_net", s.sample_id)
            if pred_net["size"][0] != pred_net["size"][1]:
                raise ValueError(
                    f"prediction for sample {s.sample_id}: mask_net is not square "
                    f"{pred_net['size']}"
                )
            # Everything on RLEs: nearest resizing and I/U without decoding (exact, fast).
            inter[k], union[k] = rle_inter_union(rle_resize_nearest(pred_net, size), gt_cache[key])
            pred = _checked_rle(p, "mask", s.sample_id)
            if pred["size"] != [int(v) for v in gt_rle["size"]]:
                raise ValueError(
                    f"prediction for sample {s.sample_id}: mask size {pred['size']} differs from "
                    "the "
                    f"ground truth {gt_rle['size']}"
                )
            inter_o[k], union_o[k] = rle_inter_union(pred, gt_rle)
        metrics: dict[str, float] = {}
        per_sample: dict[str, np.ndarray] = {}
        ratio: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for suffix, i_arr, u_arr in (("", inter, union), ("_orig", inter_o, union_o)):
            m = referring_metrics(i_arr, u_arr)
            iou = per_expression_iou(i_arr, u_arr)
            for name, value in m.items():
                metrics[name + suffix] = 100.0 * value
            per_sample["mIoU" + suffix] = 100.0 * iou
            for t in REF_THRESHOLDS:
                per_sample[f"Pr@{t:g}" + suffix] = 100.0 * (iou >= t)
            ratio["oIoU" + suffix] = (100.0 * i_arr, u_arr.copy())
        return Scores(
            metrics=metrics,
            per_sample=per_sample,
            per_sample_ratio=ratio,
            tables={
                "summary": {
                    "expressions": n,
                    "eval_size": self.eval_size,
                    "empty_union": int(np.count_nonzero(union == 0)),
                }
            },
            sample_ids=[s.sample_id for s in samples],
        )
