"""Referring segmentation sets in the "phrase list" layout (RefSegRS, RISBench) (private module).

The layout, as LGCE's release of RefSegRS defines it and RISBench's release follows it::

    <root>/<image folder>/<idx>.<ext>          one image per expression (RefSegRS: images/*.tif)
    <root>/<mask folder>/<idx>.<ext>           its binary mask, same stem (RefSegRS: masks/*.tif)
    <root>/output_phrase_<split>.txt           one line per expression: "<idx> <phrase>"

A line is split at its first run of whitespace: the image index, then the expression (all the
rest, kept as written). Blank lines are skipped. The mask is single-channel (an RGB mask must
have three equal channels); the target is where it equals the foreground value (255, as the
LGCE/RMSIN loaders read these masks); any value other than 0 and the foreground value is an
error naming the file, unless the ``mask_threshold`` option asks for ``value >= threshold``.

Errors are :class:`~remotesam.bench.api.DatasetError` naming the file, the line and the field.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from remotesam.bench.api import DatasetAdapter, DatasetError, Sample
from remotesam.bench.kit import check_options, read_text, require_dir, require_file
from remotesam.bench.kit.files import is_regular_file
from remotesam.bench.kit.masks import mask_to_rle

__all__ = ["PhraseLine", "PhraseListAdapter", "parse_phrase_file", "read_binary_mask"]

#: Image and mask suffixes looked for, in this order, for a line's index.
_SUFFIXES: tuple[str, ...] = (".tif", ".tiff", ".png", ".jpg", ".jpeg", ".bmp")
_LINE = re.compile(r"^\s*(\S+)\s+(\S.*?)\s*$")


class PhraseLine:
    """One expression of a phrase file: ``index`` (the image/mask stem), ``phrase``, ``line``
    (1-based line number in the file)."""

    __slots__ = ("index", "line", "phrase")

    def __init__(self, index: str, phrase: str, line: int) -> None:
        self.index = index
        self.phrase = phrase
        self.line = line


def parse_phrase_file(path: Path, what: str) -> list[PhraseLine]:
    """Parse ``output_phrase_<split>.txt``: ``"<idx> <phrase>"`` per line, blank lines skipped.

    Raises:
        DatasetError: the file is missing or unreadable, a line has no phrase after its index,
            or an index contains a path separator (naming the file and the line).
    """
    text = read_text(path, what)
    out: list[PhraseLine] = []
    for n, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        m = _LINE.match(raw)
        if m is None:
            raise DatasetError(
                f"{path}: line {n} is {raw.strip()[:60]!r}; expected '<image index> <referring "
                "expression>' (an index, a space, then the phrase). Fix or remove the line."
            )
        index, phrase = m.group(1), m.group(2)
        if "/" in index or "\\" in index or index in (".", ".."):
            raise DatasetError(
                f"{path}: line {n}: image index {index!r} is not a plain file stem; expected "
                "the number of an image in the image folder"
            )
        out.append(PhraseLine(index, phrase, n))
    return out


def read_binary_mask(path: Path, foreground: int = 255, threshold: int | None = None) -> np.ndarray:
    """Read a referring mask as ``(H, W)`` bool.

    Args:
        path: single-channel image (mode ``1``/``L``/``P``/``I``), or RGB with equal channels.
        foreground: the value that marks the target (LGCE/RMSIN loaders: 255).
        threshold: when given, foreground = ``value >= threshold`` and no value is rejected.

    Raises:
        DatasetError: unreadable file, unequal RGB channels, or (without ``threshold``) a value
            other than 0 and ``foreground`` (naming the file and the values).
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.load()
            mode = im.mode
            if mode == "1":
                a = np.asarray(im.convert("L"))
            elif mode in ("RGB", "RGBA"):
                rgb = np.asarray(im.convert("RGB"))
                if not (np.array_equal(rgb[..., 0], rgb[..., 1])
                        and np.array_equal(rgb[..., 0], rgb[..., 2])):
                    raise DatasetError(
                        f"{path}: mask is RGB with unequal channels; expected a binary mask "
                        f"(0 = background, {foreground} = target)"
                    )
                a = rgb[..., 0]
            elif mode in ("L", "P", "I", "I;16", "I;16B", "I;16L"):
                a = np.asarray(im)
            else:
                raise DatasetError(f"{path}: mask has PIL mode {mode}; expected a binary mask")
    except FileNotFoundError:
        raise DatasetError(f"mask file {path} not found") from None
    except (OSError, UnidentifiedImageError, ValueError) as exc:
        raise DatasetError(f"mask file {path} is unreadable: {exc}") from None
    if a.ndim != 2:
        raise DatasetError(f"{path}: mask has shape {a.shape}, expected (H, W)")
    if threshold is not None:
        return a >= threshold
    bad = (a != 0) & (a != foreground)
    if bad.any():
        vals = np.unique(a[bad])[:8].tolist()
        raise DatasetError(
            f"{path}: mask value(s) {vals} are neither 0 (background) nor {foreground} (target); "
            "expected a binary mask. Pass the dataset option mask_threshold=128 to binarise "
            "such masks at a threshold instead (mask_threshold=1: every non-zero value is the "
            "target, as third-party RefSegRS/RISBench loaders read 0/1 masks)."
        )
    return a == foreground


def _find(folder: Path, stem: str) -> Path | None:
    for suffix in _SUFFIXES:
        for cand in (folder / f"{stem}{suffix}", folder / f"{stem}{suffix.upper()}"):
            if is_regular_file(cand):
                return cand
    return None


class PhraseListAdapter(DatasetAdapter):
    """Common reader of the phrase-list layout; subclasses name the folders and the release.

    Options: ``image_dir``, ``mask_dir``, ``phrase_file`` (override the locations),
    ``foreground_value`` (int, default 255), ``mask_threshold`` (int: binarise at
    ``value >= threshold`` instead of requiring 0/foreground).
    """

    splits: ClassVar[tuple[str, ...]] = ("train", "val", "test")
    default_split: ClassVar[str] = "test"
    image_folder: ClassVar[str] = "images"
    mask_folder: ClassVar[str] = "masks"
    _OPTIONS: ClassVar[frozenset[str]] = frozenset(
        {"image_dir", "mask_dir", "phrase_file", "foreground_value", "mask_threshold"}
    )

    def __init__(self, root: str | Path, split: str | None = None, **options: Any) -> None:
        super().__init__(root, split, **options)
        check_options(self.name, self.options, self._OPTIONS)
        try:
            self.foreground = int(self.options.get("foreground_value", 255))
            thr = self.options.get("mask_threshold")
            self.threshold = None if thr is None else int(thr)
        except (TypeError, ValueError) as exc:
            raise DatasetError(
                f"{self.name}: options foreground_value / mask_threshold must be integers ({exc})"
            ) from None
        self.image_dir = Path(self.options.get("image_dir", self.root / self.image_folder))
        self.mask_dir = Path(self.options.get("mask_dir", self.root / self.mask_folder))
        self.phrase_path = Path(
            self.options.get("phrase_file", self.root / f"output_phrase_{self.split}.txt"))
        require_dir(self.image_dir, f"{self.name} image folder", self.layout)
        require_dir(self.mask_dir, f"{self.name} mask folder", self.layout)
        require_file(self.phrase_path, f"{self.name} phrase file", self.layout)

    def samples(self) -> list[Sample]:
        """One sample per line of the split's phrase file, in file order.

        ``sample_id``: the image index (``"<idx>:<k>"`` for the k-th repeat of an index).
        ``target``: ``label_path`` (the mask file), ``mask_rle`` (compressed COCO RLE at the
        original size, the mask file's foreground), ``size``
        ``[H, W]``, ``bbox_xyxy`` None, ``category`` None (these sets name no category).
        ``meta``: ``sentence``, ``index``, ``line``, ``file_name``, ``split``.

        Raises:
            DatasetError: a bad line, a missing image or mask, or a bad mask value (naming the
                file and the line).
        """
        lines = parse_phrase_file(self.phrase_path, f"{self.name} phrase file")
        if not lines:
            raise DatasetError(f"{self.name}: {self.phrase_path} lists no expression")
        seen: dict[str, int] = {}
        cache: dict[str, dict[str, Any]] = {}
        out: list[Sample] = []
        for pl in lines:
            where = f"{self.phrase_path}: line {pl.line}"
            image = _find(self.image_dir, pl.index)
            if image is None:
                raise DatasetError(
                    f"{where}: no image {self.image_dir / pl.index}.* (tried "
                    f"{', '.join(_SUFFIXES)}); complete the download or pass image_dir"
                )
            if pl.index not in cache:
                mask_path = _find(self.mask_dir, pl.index)
                if mask_path is None:
                    raise DatasetError(
                        f"{where}: no mask {self.mask_dir / pl.index}.* (tried "
                        f"{', '.join(_SUFFIXES)}); complete the download or pass mask_dir"
                    )
                m = read_binary_mask(mask_path, self.foreground, self.threshold)
                cache.clear()  # consecutive lines of one index share the decoded target
                cache[pl.index] = {
                    "label_path": str(mask_path),
                    "mask_rle": mask_to_rle(m),
                    "size": [int(m.shape[0]), int(m.shape[1])],
                    "bbox_xyxy": None,
                    "category": None,
                }
            k = seen.get(pl.index, 0)
            seen[pl.index] = k + 1
            sid = pl.index if k == 0 else f"{pl.index}:{k}"
            out.append(Sample(
                sample_id=sid,
                image=image,
                target=cache[pl.index],
                meta={"sentence": pl.phrase, "index": pl.index, "line": pl.line,
                      "file_name": image.name, "split": self.split},
            ))
        return out
