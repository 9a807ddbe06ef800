"""Visual grounding (``vg``): DIOR-RSVG (Pascal-VOC-style XML + official split files).

Protocol reproduced (official ``tasks/code/eval/VG.py`` + ``RSVG_VG`` loader):

* split file ``<root>/<split>.txt`` (one 0-based **global object index** per line); objects are
  counted over the XML files in ``Annotations/`` **sorted by file name**, in document order; the
  expression is the object's ``<description>``, the target its ``<bndbox>`` (xyxy, pixels);
* prediction = ``model.visual_grounding(image, description)``: the union box of the referring
  mask's components (no EPOC), or no box when the mask is empty;
* box IoU without +1 (0 when the union is 0); ``Acc@t`` = share of expressions with IoU >= t
  (t = 0.5..0.9; the paper's "AP50" is ``Acc@0.5``), ``mIoU`` = mean IoU; in percent.

Deviations from the official code, all deliberate:

* **Stale-IoU bug documented, not reproduced**: when no box is predicted the official loop adds 0
  to its IoU sum but leaves the variable ``IoU`` at the previous sample's value, so the precision
  counters re-count the previous expression (and the first sample raises NameError). Here an
  expression without a box has IoU 0 for every metric. ``no_box_rate`` (not official) reports
  how often that happens.
* Elements are found by tag name (``bndbox``, ``description``), not by position
  (``member[2]`` / ``member[3]``) as the official loader does.
* The split file is looked up as ``<root>/<split>.txt`` (the official ``dirname(annoFolder)``
  rule breaks when the folder ends with ``/``); the index lookup uses a set, not a list scan.
* Malformed XML (syntax, missing ``bndbox``/coordinates/``description``) and split files (non-
  integer lines, indices past the last object) raise :class:`DatasetError` naming the file and the
  object or line. So do NaN or infinite coordinates and inverted boxes (``xmax < xmin`` or
  ``ymax < ymin``), which the official loader would carry into a meaningless IoU; zero-width
  boxes are kept, as officially (their IoU is 0 unless matched exactly).
* ``<filename>`` must name a file inside ``JPEGImages/`` (no absolute path, no ``..``).
* ``Annotations/`` is listed for regular ``.xml`` files only: a FIFO, socket or device named
  ``*.xml`` is skipped and never opened (the official ``os.listdir`` loop would block on it).
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
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
from remotesam.bench.api.predictions import BoxPrediction, PredictionFormatError
from remotesam.bench.kit import (
    check_images_exist,
    check_options,
    check_score_lengths,
    member_path,
    read_text,
    regular_files,
    require_dir,
    require_file,
)
from remotesam.classes import DIOR_RSVG_CLASSES

from ._datasets import DATASET_INFO
from .metrics.grounding import VG_THRESHOLDS, box_iou_pairs, grounding_metrics

__all__ = [
    "DIOR_CLASSES_RSVG",
    "DIORRSVGAdapter",
    "VisualGroundingTask",
    "read_rsvg_objects",
    "read_split_file",
]

#: DIOR class names as they appear in DIOR-RSVG ``<name>`` elements.
DIOR_CLASSES_RSVG: tuple[str, ...] = DIOR_RSVG_CLASSES


def read_split_file(path: Path) -> list[int]:
    """Global object indices of a DIOR-RSVG split file (one integer per line; blanks skipped).

    Raises:
        DatasetError: naming the file and line of a non-integer or negative entry.
    """
    out: list[int] = []
    lines = read_text(path, "DIOR-RSVG split file").splitlines()
    for n, line in enumerate(lines, 1):
        text = line.strip()
        if not text:
            continue
        try:
            v = int(text)
        except ValueError:
            raise DatasetError(
                f"DIOR-RSVG split file {path}, line {n}: {text!r} is not an integer (expected one "
                "0-based object index per line)"
            ) from None
        if v < 0:
            raise DatasetError(f"DIOR-RSVG split file {path}, line {n}: negative index {v}")
        out.append(v)
    return out


def _text(elem: ET.Element, tag: str, where: str) -> str:
    child = elem.find(tag)
    if child is None or child.text is None or not child.text.strip():
        raise DatasetError(f"{where}: element <{tag}> missing or empty")
    return child.text.strip()


def read_rsvg_objects(xml_path: Path) -> tuple[str, list[dict[str, Any]]]:
    """Parse one DIOR-RSVG XML.

    Returns:
        ``(filename, objects)`` where ``filename`` is ``<filename>`` (or ``<stem>.jpg``) and each
        object is ``{"name", "bbox_xyxy": [xmin, ymin, xmax, ymax] (float), "description"}`` in
        document order.

    Raises:
        DatasetError: XML syntax error (with line), or an object without ``bndbox``,
            coordinates or ``description`` (naming the object number).
    """
    try:
        root = ET.parse(xml_path).getroot()
    except ET.ParseError as exc:
        line, col = exc.position
        raise DatasetError(
            f"DIOR-RSVG annotation {xml_path}: XML syntax error at line {line}, column {col}: {exc}"
        ) from None
    except OSError as exc:
        raise DatasetError(f"DIOR-RSVG annotation {xml_path}: cannot read: {exc}") from None
    fn = root.find("filename")
    filename = (
        fn.text.strip()
        if fn is not None and fn.text and fn.text.strip()
        else f"{xml_path.stem}.jpg"
    )
    objects = []
    for k, obj in enumerate(root.findall("object")):
        where = f"DIOR-RSVG annotation {xml_path}, <object> #{k + 1}"
        box = obj.find("bndbox")
        if box is None:
            raise DatasetError(
                f"{where}: element <bndbox> missing (expected xmin, ymin, xmax, ymax)"
            )
        coords = []
        for tag in ("xmin", "ymin", "xmax", "ymax"):
            t = _text(box, tag, f"{where} <bndbox>")
            try:
                v = float(t)
            except ValueError:
                raise DatasetError(f"{where} <bndbox>: <{tag}> = {t!r} is not a number") from None
            if not math.isfinite(v):
                raise DatasetError(
                    f"{where} <bndbox>: <{tag}> = {t!r} is not a finite number (NaN or infinite "
                    "boxes cannot be scored; fix the annotation)"
                )
            coords.append(v)
        if coords[2] < coords[0] or coords[3] < coords[1]:
            raise DatasetError(
                f"{where} <bndbox>: inverted box xmin={coords[0]:g} ymin={coords[1]:g} "
                f"xmax={coords[2]:g} ymax={coords[3]:g}; expected xmin <= xmax and ymin <= ymax"
            )
        objects.append(
            {
                "name": (obj.findtext("name") or "").strip(),
                "bbox_xyxy": coords,
                "description": _text(obj, "description", where),
            }
        )
    return filename, objects


class DIORRSVGAdapter(DatasetAdapter):
    """DIOR-RSVG (Zhan et al., TGRS 2023): one XML per image, official ``{train,val,test}.txt``.

    Options: ``ann_dir``, ``image_dir``, ``split_file`` override the locations;
    ``allow_partial`` (bool, default False) evaluates the split objects present in an incomplete
    ``Annotations/`` folder (as the official loader silently does) instead of raising.
    """

    name: ClassVar[str] = "dior_rsvg"
    info: ClassVar[DatasetInfo | None] = DATASET_INFO["dior_rsvg"]
    title: ClassVar[str] = "DIOR-RSVG"
    splits: ClassVar[tuple[str, ...]] = ("test", "val", "train")
    default_split: ClassVar[str] = "test"
    default_subdir: ClassVar[str] = "RSVG"
    classes: ClassVar[tuple[str, ...]] = DIOR_CLASSES_RSVG
    layout: ClassVar[str] = (
        "<root>/                 (e.g. refer/data/RSVG)\n"
        "  Annotations/00001.xml ...\n"
        "  JPEGImages/00001.jpg ...\n"
        "  train.txt  val.txt  test.txt   (0-based global object indices)\n"
    )
    _OPTIONS: ClassVar[frozenset[str]] = frozenset(
        {"ann_dir", "image_dir", "split_file", "allow_partial"}
    )

    def __init__(self, root: str | Path, split: str | None = None, **options: Any) -> None:
        super().__init__(root, split, **options)
        check_options("dior_rsvg", self.options, self._OPTIONS)
        self.ann_dir = Path(self.options.get("ann_dir", self.root / "Annotations"))
        self.image_dir = Path(self.options.get("image_dir", self.root / "JPEGImages"))
        self.split_file = Path(self.options.get("split_file", self.root / f"{self.split}.txt"))
        require_dir(self.ann_dir, "dior_rsvg annotation folder", self.layout)
        require_dir(self.image_dir, "dior_rsvg image folder", self.layout)
        require_file(self.split_file, "dior_rsvg split file", self.layout)
        ap = self.options.get("allow_partial", False)
        self.allow_partial = ap if isinstance(ap, bool) else str(ap).lower() in ("1", "true", "yes")

    def samples(self) -> list[Sample]:
        """One sample per object index of the split, in global-index order.

        ``sample_id`` = the global object index (as text); ``target["bbox_xyxy"]``;
        ``meta``: ``description``, ``class``, ``xml``, ``object_in_xml`` (0-based).
        """
        wanted = set(read_split_file(self.split_file))
        # regular files only: a FIFO named x.xml would block ET.parse forever
        xmls = sorted(regular_files(self.ann_dir, (".xml",)), key=lambda p: p.name)
        if not xmls:
            raise DatasetError(
                f"dior_rsvg: no .xml file in {self.ann_dir}\nExpected layout:\n{self.layout}"
            )
        found: dict[int, Sample] = {}
        index = 0
        for xml in xmls:
            filename, objects = read_rsvg_objects(xml)
            for k, obj in enumerate(objects):
                if index in wanted:
                    found[index] = Sample(
                        sample_id=str(index),
                        image=member_path(
                            self.image_dir, filename, f"DIOR-RSVG annotation {xml} <filename>"
                        ),
                        target={"bbox_xyxy": obj["bbox_xyxy"]},
                        meta={
                            "description": obj["description"],
                            "class": obj["name"],
                            "xml": xml.name,
                            "object_in_xml": k,
                        },
                    )
                index += 1
        beyond = sorted(i for i in wanted if i >= index)
        if beyond and not self.allow_partial:
            raise DatasetError(
                f"dior_rsvg: split file {self.split_file} lists object index {beyond[0]} (and "
                f"{len(beyond) - 1} more) but {self.ann_dir} holds only {index} objects; the "
                "annotation "
                "folder is incomplete (pass allow_partial=true to evaluate the objects present) or "
                "the "
                "split file belongs to another release"
            )
        out = [found[i] for i in sorted(found)]
        if not out:
            raise DatasetError(
                f"dior_rsvg: no object of split {self.split!r} ({self.split_file}) in "
                f"{self.ann_dir}"
            )
        check_images_exist(
            (Path(s.image) for s in out), f"dior_rsvg ({self.image_dir})", self.layout
        )
        return out


class VisualGroundingTask(TaskPlugin):
    """Visual grounding: Acc@0.5..0.9 and mean IoU of the union box (official, bug fixed)."""

    name: ClassVar[str] = "vg"
    title: ClassVar[str] = "Visual grounding"
    version: ClassVar[int] = 1
    description: ClassVar[str] = "visual grounding (DIOR-RSVG): box from the referring mask"
    metrics: ClassVar[tuple[MetricSpec, ...]] = (
        MetricSpec(
            "Acc@0.5",
            primary=True,
            official=True,
            description="share of expressions with box IoU >= 0.5 (paper: AP50; official)",
        ),
        *(
            MetricSpec(
                f"Acc@{t:g}",
                official=True,
                description=f"share of expressions with box IoU >= {t:g} (official)",
            )
            for t in VG_THRESHOLDS[1:]
        ),
        MetricSpec("mIoU", official=True, description="mean box IoU, no box = 0 (official)"),
        MetricSpec(
            "no_box_rate",
            higher_is_better=False,
            official=False,
            description="share of expressions without a predicted box",
        ),
    )
    datasets: ClassVar[Mapping[str, type[DatasetAdapter]]] = {"dior_rsvg": DIORRSVGAdapter}
    default_dataset: ClassVar[str] = "dior_rsvg"

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        super().__init__(options)
        check_options("vg task", self.options, error=ValueError, kind="task")

    def requests(self, s: Sample) -> list[Any]:
        """One request: the description, mask and probability at the original size."""
        from remotesam.engine import Request

        return [Request(s.image, (str(s.meta["description"]),), frozenset({"mask", "prob"}))]

    def reduce(self, s: Sample, answers: Sequence[Any]) -> Prediction:
        """The union box (:func:`remotesam.reduce.grounding`), as :meth:`predict`."""
        from remotesam import reduce as rd

        (ans,) = answers
        res = rd.grounding(ans, conf_threshold=0.01, remove_inner=True)
        return BoxPrediction.from_array(res.box, None if res.box is None else res.score).encode()

    def score(self, samples: Sequence[Sample], predictions: Sequence[Prediction]) -> Scores:
        """Metrics in percent; ``per_sample``: IoU (%) for ``mIoU``, 0/100 hits for ``Acc@t``,
        0/100 for ``no_box_rate``."""
        check_score_lengths(samples, predictions)
        n = len(samples)
        pred = np.full((n, 4), np.nan)
        gt = np.zeros((n, 4))
        for k, (s, p) in enumerate(zip(samples, predictions)):
            gt[k] = np.asarray(s.target["bbox_xyxy"], dtype=np.float64)
            try:
                box = BoxPrediction.decode(p).box
            except PredictionFormatError as e:
                raise ValueError(f"prediction for sample {s.sample_id}: {e}") from None
            if box is not None:
                pred[k] = np.asarray(box, dtype=np.float64)
        no_box = np.isnan(pred).any(axis=1)
        iou = box_iou_pairs(np.where(no_box[:, None], 0.0, pred), gt)
        iou[no_box] = 0.0
        m = grounding_metrics(iou)
        metrics = {name: 100.0 * v for name, v in m.items()}
        metrics["no_box_rate"] = 100.0 * float(no_box.mean()) if n else float("nan")
        per_sample = {"mIoU": 100.0 * iou, "no_box_rate": 100.0 * no_box.astype(np.float64)}
        for t in VG_THRESHOLDS:
            per_sample[f"Acc@{t:g}"] = 100.0 * (iou >= t)
        return Scores(
            metrics=metrics,
            per_sample=per_sample,
            tables={"summary": {"expressions": n, "no_box": int(no_box.sum())}},
            sample_ids=[s.sample_id for s in samples],
        )
