"""The SATIN multi-label sets of the paper's Fig. 7, read from their owners' releases (``mlc``).

Fig. 7 of the paper scores zero-shot multi-label classification on four "complex scenes" sets
of SATIN (Roberts et al., arXiv 2304.11619; https://satinbenchmark.github.io,
huggingface.co/datasets/jonathan-roberts1/SATIN). SATIN evaluates **every image** of each set
(its Hub copies have one split, ``train``, holding the whole set), so the default split here is
``all``; where the release has a train/test split it is offered as ``train`` / ``test``.

Class names are SATIN's (its Hub ``class_label`` names, which are also the prompts of a
zero-shot run: ``"{class} in the image"``); the release's label columns are matched to them by
name, case, ``-``/``_``/space ignored (UCM and AID write ``bare-soil``, SATIN ``bare soil``).
MLRSNet keeps its released spelling ``habor`` (SATIN does too).

The metric is the ``mlc`` task's official label-wise accuracy (the paper calls every
multi-label number "Acc" and never defines it; PROTOCOLS 2.5): no RemoteSAM code exists for
these sets, so the published Fig. 7 rows carry protocol ``unstated``.

Datasets (adapter, default sub-folder, release layout):

* ``ucm_multilabel`` -- UC Merced multi-label (Chaudhuri et al., TGRS 2018; 2,100 images, 17
  labels): ``UCMerced_LandUse/LandUse_Multilabeled.txt`` (tab-separated, header
  ``IMAGE\\LABEL`` + 17 names, rows ``agricultural00`` + 17 0/1) over the UC Merced
  ``Images/<class>/<name>.tif``.
* ``aid_multilabel`` -- AID multi-label (Hua et al., TGRS 2020; 3,000 images, 2,400 train /
  600 test, 17 labels): ``AID_multilabel/multilabel.csv`` (``Multilabel.csv`` in some copies;
  an image column, ``IMAGE\\LABEL`` or ``IMAGE/LABEL`` in the copies seen, + the 17 hyphenated
  names, rows ``airport_1`` without extension) with images in per-scene folders
  ``images_tr/<Scene>/<scene>_<n>.jpg`` and ``images_test/<Scene>/...`` (100 images of each of
  the 30 AID scenes; flat folders are read too).
* ``multiscene`` -- MultiScene-Clean (Hua et al., TGRS 2022; 14,000 images, 7,000 / 7,000,
  36 labels): ``MultiScene-Clean/Tra.csv`` and ``Test.csv`` (a header row, then the image name
  without extension + 36 columns; an empty cell read as 0) and ``images/<name>.jpg``, as the
  owners' loader reads them (github.com/Hua-YS/Multi-Scene-Recognition,
  ``utils/multiscene_clean.py``). That loader takes the 36 label columns by position in its
  ``SCENE_CATEGORY`` order (CamelCase, ``OilFiled``/``SolarPannel``/``WindTrubine`` spelt so);
  a header that does not name every class in some spelling is read in that order too.
* ``mlrsnet`` -- MLRSNet (Qi et al., ISPRS 2020; 109,161 images, 46 categories, 60 labels):
  ``MLRSNet/labels/<category>.csv`` (the owners' GitHub copy; ``Labels/`` is read too),
  ``image`` + 60 named columns, CRLF line ends, image names with ``.jpg``
  (``airplane_00001.jpg``; the category ``swimmimg_pool`` keeps its released spelling), and
  ``Images/<category>/<image>`` (or all images directly in ``Images/``).

Every label cell must be 0 or 1; a row with another value, a missing column, a duplicate
image or an image that is not on disk is a :class:`DatasetError` naming the file and line.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, ClassVar

from remotesam.bench.api import DatasetAdapter, DatasetError, Sample
from remotesam.bench.api.datainfo import DatasetInfo
from remotesam.bench.kit import (
    IMAGE_EXTENSIONS,
    check_images_exist,
    check_options,
    option_path,
    read_text,
    require_dir,
    require_file,
)
from remotesam.classes import (
    AID_MULTILABEL_CLASSES,
    MLRSNET_CLASSES,
    MULTISCENE_CLASSES,
    UCM_MULTILABEL_CLASSES,
)

__all__ = [
    "AID_MULTILABEL_CLASSES",
    "MLRSNET_CLASSES",
    "MULTISCENE_CLASSES",
    "UCM_MULTILABEL_CLASSES",
    "AIDMultiLabelAdapter",
    "MLRSNetAdapter",
    "MultiSceneCleanAdapter",
    "UCMMultiLabelAdapter",
    "read_label_table",
]

#: Other spellings of MultiScene classes found in readers of the release (the owners' loader,
#: github.com/Hua-YS/Multi-Scene-Recognition ``utils/multiscene_clean.py`` ``SCENE_CATEGORY``,
#: names them in CamelCase with three typos: ``OilFiled``, ``SolarPannel``, ``WindTrubine``).
_MULTISCENE_ALIASES = {
    "lakepond": "lake or pond",
    "oilfiled": "oil field",
    "solarpannel": "solar panel",
    "windtrubine": "wind turbine",
    "basktball field": "basketball field",
    "lake/pond": "lake or pond",
    "lake pond": "lake or pond",
    "soccer field": "soccer",
    "solar farm": "solar panel",
    "wastewater": "wastewater plant",
    "storage tanks": "storage tank",
}

def _key(name: str) -> str:
    return " ".join(str(name).lower().replace("-", " ").replace("_", " ").split())


def _squash(name: str) -> str:
    """``_key`` without spaces: ``BaseballField``, ``baseball_field`` and ``baseball field``
    compare equal."""
    return _key(name).replace(" ", "")


def _stem(name: str) -> str:
    base = os.path.basename(name.strip())
    stem, ext = os.path.splitext(base)
    return stem if ext.lower() in IMAGE_EXTENSIONS else base


def read_label_table(
    path: Path,
    classes: Sequence[str],
    *,
    delimiter: str,
    aliases: dict[str, str] | None = None,
    blank_is_zero: bool = False,
    positional: bool = False,
) -> list[tuple[str, int, list[str]]]:
    """Read a multi-label table: a header row (image column + one column per class) and one
    row per image of 0/1 cells.

    Args:
        path: the table (csv / tab-separated text).
        classes: canonical class names; header names are matched after lower-casing and
            ignoring ``-``, ``_`` and spaces (``BaseballField`` = ``baseball field``), through
            ``aliases`` (spelling -> class).
        delimiter: ``","`` or ``"\\t"``.
        blank_is_zero: read an empty cell as 0 (MultiScene).
        positional: when the header does not name every class, read the ``len(classes)``
            label columns in ``classes`` order (as MultiScene's own reader does).

    Returns:
        ``(image name as written, 1-based line number, positive classes in canonical order)``
        per data row, in file order.

    Raises:
        DatasetError: naming the file (and line, column) for an empty file, a header that
            misses a class or names an unknown one, a row of the wrong length, a cell that is
            not 0 or 1, an empty image name, an image listed twice.
    """
    text = read_text(path, "multi-label table").lstrip("\ufeff")
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    try:
        rows = [(reader.line_num, r) for r in reader if any(c.strip() for c in r)]
    except csv.Error as e:
        raise DatasetError(f"{path}, line {reader.line_num}: not a readable table ({e})") from None
    if not rows:
        raise DatasetError(
            f"{path}: empty label table; expected a header row and one row per image"
        )
    header_line, header = rows[0][0], [c.strip() for c in rows[0][1]]
    lookup = {_squash(c): c for c in classes}
    for a, b in (aliases or {}).items():
        lookup[_squash(a)] = b
    cols = header[1:]
    mapped = [lookup.get(_squash(c)) for c in cols]
    if positional and not all(mapped) and len(cols) == len(classes):
        # the owners' reader takes the label columns by position, whatever the header says
        mapped = list(classes)
    unknown = [c for c, m in zip(cols, mapped) if m is None]
    if unknown:
        raise DatasetError(
            f"{path}, line {header_line}: column(s) {unknown} are not classes of this "
            f"dataset; expected the image column then {list(classes)}"
        )
    missing = [c for c in classes if c not in mapped]
    if missing or len(set(mapped)) != len(mapped):
        raise DatasetError(
            f"{path}, line {header_line}: header {header} lacks or repeats class column(s) "
            f"{missing or sorted({str(m) for m in mapped if mapped.count(m) > 1})}; "
            "expected the image "
            f"column then the {len(classes)} classes"
        )
    order = {c: k for k, c in enumerate(classes)}
    out: list[tuple[str, int, list[str]]] = []
    seen: dict[str, int] = {}
    for lineno, raw in rows[1:]:
        if len(raw) != len(header):
            raise DatasetError(
                f"{path}, line {lineno}: {len(raw)} fields, expected {len(header)} (image name + "
                f"{len(cols)} labels); fix or re-export the table"
            )
        name = raw[0].strip()
        if not name:
            raise DatasetError(f"{path}, line {lineno}: empty image name")
        if name in seen:
            raise DatasetError(
                f"{path}, line {lineno}: image {name!r} already listed on line {seen[name]}"
            )
        seen[name] = lineno
        pos: list[str] = []
        for c, cell in zip(mapped, raw[1:]):
            v = cell.strip()
            if v == "" and blank_is_zero:
                v = "0"
            try:
                f = float(v)
            except ValueError:
                f = -1.0
            if f not in (0.0, 1.0):
                raise DatasetError(
                    f"{path}, line {lineno}, column {c!r}: value {cell!r}; expected 0 or 1"
                )
            if f == 1.0:
                pos.append(c)  # type: ignore[arg-type]
        out.append((name, lineno, sorted(pos, key=order.__getitem__)))
    return out


def _index_images(folders: Iterable[Path]) -> dict[str, list[Path]]:
    """stem -> image files under ``folders`` (recursive, hidden entries skipped)."""
    index: dict[str, list[Path]] = {}
    for folder in folders:
        for dirpath, dirnames, filenames in os.walk(folder):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for fn in sorted(filenames):
                if fn.startswith(".") or os.path.splitext(fn)[1].lower() not in IMAGE_EXTENSIONS:
                    continue
                index.setdefault(os.path.splitext(fn)[0], []).append(Path(dirpath) / fn)
    return index


class _MultiLabelReleaseAdapter(DatasetAdapter):
    """Shared reading: label rows -> samples whose ``target["labels"]`` are the positives."""

    splits: ClassVar[tuple[str, ...]] = ("all",)
    default_split: ClassVar[str] = "all"
    _OPTIONS: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, root: str | Path, split: str | None = None, **options: Any) -> None:
        super().__init__(root, split, **options)
        check_options(type(self).__name__, self.options, self._OPTIONS)

    def _rows(self) -> list[tuple[Path, str, int, list[str]]]:
        """``(table, image name, line, positives)`` of the split."""
        raise NotImplementedError

    def _image_folders(self) -> list[Path]:
        raise NotImplementedError

    def _resolve(
        self,
        table: Path,
        name: str,
        line: int,
        index: dict[str, list[Path]],
        hint: str | None = None,
    ) -> Path:
        stem = _stem(name)
        found = index.get(stem, [])
        if hint is not None:
            found = [p for p in found if p.parent.name == hint] or found
        if len(found) > 1:
            raise DatasetError(
                f"{table}, line {line}: image {name!r} matches several files ({found[:3]}); keep "
                "one image per name"
            )
        if not found:
            folders = ", ".join(str(f) for f in self._image_folders())
            raise DatasetError(
                f"{table}, line {line}: image {name!r} not found under {folders}\nExpected "
                f"layout:\n{self.layout}"
            )
        return found[0]

    def samples(self) -> list[Sample]:
        """One sample per labelled image, in table order (``sample_id`` = the image name as the
        table writes it). ``target``: ``labels`` (positives, canonical order). ``meta``:
        ``dataset``, ``label_file``, ``line``."""
        rows = self._rows()
        if not rows:
            raise DatasetError(
                f"{self.name}: the label table(s) list no image\nExpected layout:\n{self.layout}"
            )
        index = _index_images(self._image_folders())
        out = []
        ids: dict[str, tuple[Path, int]] = {}
        for row in rows:
            table, name, line, pos = row[:4]
            hint: list[Any] = list(row[4:])
            if name in ids:
                raise DatasetError(
                    f"{table}, line {line}: image {name!r} is also listed in "
                    f"{ids[name][0]}, line {ids[name][1]}"
                )
            ids[name] = (table, line)
            img = self._resolve(table, name, line, index, hint[0] if hint else None)
            out.append(
                Sample(
                    sample_id=name,
                    image=img,
                    target={"labels": pos},
                    meta={"dataset": self.name, "label_file": str(table), "line": line},
                )
            )
        check_images_exist((Path(s.image) for s in out), f"{self.name}", self.layout)
        return out


class UCMMultiLabelAdapter(_MultiLabelReleaseAdapter):
    """UC Merced multi-label: ``LandUse_Multilabeled.txt`` over ``Images/<class>/<name>.tif``.

    Options: ``label_file``, ``image_dir``.
    """

    name: ClassVar[str] = "ucm_multilabel"
    default_subdir: ClassVar[str] = "UCMerced_LandUse"
    classes: ClassVar[tuple[str, ...]] = UCM_MULTILABEL_CLASSES
    layout: ClassVar[str] = (
        "<root>/                           (UCMerced_LandUse)\n"
        "  LandUse_Multilabeled.txt        (tab-separated: IMAGE\\LABEL + 17 labels, 0/1)\n"
        "  Images/agricultural/agricultural00.tif ...\n"
    )
    info: ClassVar[DatasetInfo] = DatasetInfo(
        title="UCM_MultiLabel",
        source="Chaudhuri et al., TGRS 2018 (multi-labels, http://bigearth.eu/datasets) over UC "
        "Merced LandUse (http://weegee.vision.ucmerced.edu/datasets/landuse.html); SATIN "
        "(arXiv 2304.11619) set UC_Merced_LandUse_MultiLabel",
        licence="unknown (UC Merced: public domain imagery from USGS)",
        split="all",
        size=2100,
        layout=("LandUse_Multilabeled.txt", "Images/*/*.tif"),
        how_to_get="unzip UCMerced_LandUse.zip and put the multi-label release's "
        "LandUse_Multilabeled.txt beside its Images/ folder",
        counts={"Images/*/*.tif": 2100},
    )
    _OPTIONS: ClassVar[frozenset[str]] = frozenset({"label_file", "image_dir"})

    def __init__(self, root: str | Path, split: str | None = None, **options: Any) -> None:
        super().__init__(root, split, **options)
        self.label_file = option_path(
            self.options, "label_file", self.root / "LandUse_Multilabeled.txt"
        )
        self.image_dir = option_path(self.options, "image_dir", self.root / "Images")
        require_file(self.label_file, f"{self.name} label table", self.layout)
        require_dir(self.image_dir, f"{self.name} image folder", self.layout)

    def _image_folders(self) -> list[Path]:
        return [self.image_dir]

    def _rows(self) -> list[Any]:
        rows = read_label_table(self.label_file, self.classes, delimiter="\t")
        # the class folder is the name without its two-digit number (agricultural00)
        return [(self.label_file, n, ln, pos, n.rstrip("0123456789")) for n, ln, pos in rows]


class AIDMultiLabelAdapter(_MultiLabelReleaseAdapter):
    """AID multi-label: ``multilabel.csv`` over ``images_tr/`` (train) and ``images_test/``.

    Splits ``all`` (SATIN, default), ``train``, ``test``. Options: ``label_file``.
    """

    name: ClassVar[str] = "aid_multilabel"
    splits: ClassVar[tuple[str, ...]] = ("all", "test", "train")
    default_subdir: ClassVar[str] = "AID_multilabel"
    classes: ClassVar[tuple[str, ...]] = AID_MULTILABEL_CLASSES
    layout: ClassVar[str] = (
        "<root>/                           (AID_multilabel)\n"
        "  multilabel.csv                  (image column + 17 labels, 0/1; or Multilabel.csv)\n"
        "  images_tr/Airport/airport_1.jpg ...     (2,400 train images, per-scene folders)\n"
        "  images_test/Airport/airport_2.jpg ...   (600 test images)\n"
    )
    info: ClassVar[DatasetInfo] = DatasetInfo(
        title="AID_MultiLabel",
        source="Hua et al., TGRS 2020, https://github.com/Hua-YS/AID-Multilabel-Dataset (over "
        "AID, Xia et al., TGRS 2017); SATIN (arXiv 2304.11619) set AID_MultiLabel",
        licence="CC0 (as SATIN lists it); AID: academic use",
        split="all",
        size=3000,
        layout=("multilabel.csv | Multilabel.csv", "images_tr", "images_test"),
        how_to_get="download the AID multi-label release (Google Drive link in "
        "Hua-YS/AID-Multilabel-Dataset) and unpack it as AID_multilabel/",
        counts={
            "images_tr/*/*.jpg | images_tr/*.jpg": 2400,
            "images_test/*/*.jpg | images_test/*.jpg": 600,
        },
    )
    _OPTIONS: ClassVar[frozenset[str]] = frozenset({"label_file"})

    def __init__(self, root: str | Path, split: str | None = None, **options: Any) -> None:
        super().__init__(root, split, **options)
        default_table = self.root / "multilabel.csv"
        if not default_table.is_file() and (self.root / "Multilabel.csv").is_file():
            default_table = self.root / "Multilabel.csv"
        self.label_file = option_path(self.options, "label_file", default_table)
        require_file(self.label_file, f"{self.name} label table", self.layout)
        wanted = {
            "all": ("images_tr", "images_test"),
            "train": ("images_tr",),
            "test": ("images_test",),
        }[self.split]
        self.image_dirs = [
            require_dir(self.root / d, f"{self.name} image folder", self.layout) for d in wanted
        ]

    def _image_folders(self) -> list[Path]:
        return list(self.image_dirs)

    def _rows(self) -> list[Any]:
        rows = read_label_table(self.label_file, self.classes, delimiter=",")
        if self.split == "all":
            return [(self.label_file, n, ln, pos) for n, ln, pos in rows]
        # a split holds the rows whose image is in its folder
        index = _index_images(self.image_dirs)
        return [(self.label_file, n, ln, pos) for n, ln, pos in rows if _stem(n) in index]


class MultiSceneCleanAdapter(_MultiLabelReleaseAdapter):
    """MultiScene-Clean: ``Tra.csv`` (train) and ``Test.csv`` (test) over ``images/``.

    Splits ``all`` (both tables, SATIN, default), ``train``, ``test``. Options: ``image_dir``.
    """

    name: ClassVar[str] = "multiscene"
    splits: ClassVar[tuple[str, ...]] = ("all", "test", "train")
    default_subdir: ClassVar[str] = "MultiScene-Clean"
    classes: ClassVar[tuple[str, ...]] = MULTISCENE_CLASSES
    layout: ClassVar[str] = (
        "<root>/                           (MultiScene-Clean)\n"
        "  Tra.csv, Test.csv               (image name + 36 scene labels, 0/1; 7,000 rows each)\n"
        "  images/<image>.jpg ...\n"
    )
    info: ClassVar[DatasetInfo] = DatasetInfo(
        title="MultiScene",
        source="Hua et al., MultiScene, TGRS 2022 (arXiv 2104.02846), "
        "https://gitlab.lrz.de/ai4eo/reasoning/multiscene, https://multiscene.github.io; "
        "SATIN (arXiv 2304.11619) set MultiScene (the Clean subset)",
        licence="MIT (as SATIN lists it)",
        split="all",
        size=14000,
        layout=("Tra.csv", "Test.csv", "images/*.jpg"),
        how_to_get="download MultiScene-Clean from the MultiScene release and unpack it as "
        "MultiScene-Clean/ (label tables beside images/)",
        counts={"images/*.jpg": 14000},
    )
    _OPTIONS: ClassVar[frozenset[str]] = frozenset({"image_dir"})
    _TABLES: ClassVar[dict[str, tuple[str, ...]]] = {
        "all": ("Tra.csv", "Test.csv"),
        "train": ("Tra.csv",),
        "test": ("Test.csv",),
    }

    def __init__(self, root: str | Path, split: str | None = None, **options: Any) -> None:
        super().__init__(root, split, **options)
        self.tables = [
            require_file(self.root / t, f"{self.name} label table", self.layout)
            for t in self._TABLES[self.split]
        ]
        self.image_dir = require_dir(
            option_path(self.options, "image_dir", self.root / "images"),
            f"{self.name} image folder",
            self.layout,
        )

    def _image_folders(self) -> list[Path]:
        return [self.image_dir]

    def _rows(self) -> list[Any]:
        out: list[Any] = []
        seen: dict[str, Path] = {}
        for t in self.tables:
            for n, ln, pos in read_label_table(
                t,
                self.classes,
                delimiter=",",
                aliases=_MULTISCENE_ALIASES,
                blank_is_zero=True,
                positional=True,
            ):
                if n in seen:
                    raise DatasetError(f"{t}, line {ln}: image {n!r} is also listed in {seen[n]}")
                seen[n] = t
                out.append((t, n, ln, pos))
        return out


class MLRSNetAdapter(_MultiLabelReleaseAdapter):
    """MLRSNet: ``labels/<category>.csv`` (or ``Labels/``) over ``Images/<category>/``.

    Every category table is read (sorted by name); an image is looked up in the folder of its
    table's category. Options: ``label_dir``, ``image_dir``.
    """

    name: ClassVar[str] = "mlrsnet"
    default_subdir: ClassVar[str] = "MLRSNet"
    classes: ClassVar[tuple[str, ...]] = MLRSNET_CLASSES
    layout: ClassVar[str] = (
        "<root>/                           (MLRSNet)\n"
        "  labels/airplane.csv ...         (image + 60 labels, 0/1; one table per category;\n"
        "                                   Labels/ is read too)\n"
        "  Images/airplane/airplane_00001.jpg ...\n"
    )
    info: ClassVar[DatasetInfo] = DatasetInfo(
        title="MLRSNet",
        source="Qi et al., MLRSNet, ISPRS J. 2020, https://github.com/cugbrs/MLRSNet, "
        "https://data.mendeley.com/datasets/7j9bv9vwsx; SATIN (arXiv 2304.11619) set "
        "MLRSNet",
        licence="CC BY 4.0 (Mendeley Data release)",
        split="all",
        size=109161,
        layout=("labels/*.csv | Labels/*.csv", "Images/*/*.jpg | Images/*.jpg"),
        how_to_get="download MLRSNet (github.com/cugbrs/MLRSNet or Mendeley Data), unpack the "
        "per-category image archives Images/<category>.rar into Images/<category>/ beside "
        "labels/",
        counts={
            "labels/*.csv | Labels/*.csv": 46,
            "Images/*/*.jpg | Images/*.jpg": 109161,
        },
    )
    _OPTIONS: ClassVar[frozenset[str]] = frozenset({"label_dir", "image_dir"})

    def __init__(self, root: str | Path, split: str | None = None, **options: Any) -> None:
        super().__init__(root, split, **options)
        default_labels = self.root / "labels"  # the owners' GitHub copy's spelling
        if not default_labels.is_dir() and (self.root / "Labels").is_dir():
            default_labels = self.root / "Labels"
        self.label_dir = require_dir(
            option_path(self.options, "label_dir", default_labels),
            f"{self.name} label folder",
            self.layout,
        )
        self.image_dir = require_dir(
            option_path(self.options, "image_dir", self.root / "Images"),
            f"{self.name} image folder",
            self.layout,
        )
        self.tables = sorted(p for p in self.label_dir.glob("*.csv") if p.is_file())
        if not self.tables:
            raise DatasetError(
                f"{self.name}: no <category>.csv in {self.label_dir}\nExpected "
                f"layout:\n{self.layout}"
            )

    def _image_folders(self) -> list[Path]:
        return [self.image_dir]

    def _rows(self) -> list[Any]:
        out: list[Any] = []
        for t in self.tables:
            out += [
                (t, n, ln, pos, t.stem)
                for n, ln, pos in read_label_table(t, self.classes, delimiter=",")
            ]
        return out
