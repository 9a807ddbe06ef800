"""REFER datasets (RRSIS-D, RemoteSAM-270K) for the built-in plugins (private module).

* :func:`read_refer_pickle` reads ``refs(unc).p`` through a *restricted* unpickler that only
  rebuilds plain containers (never plain ``pickle.load``), after an opcode scan that refuses
  allocation bombs (declared lengths, frames or memo indices beyond the file's size);
* :func:`load_refer` reads ``refs(unc).p`` + ``instances.json`` with RRSIS-D's non-COCO quirks
  (``categories_id`` in annotations, xyxy ``bbox``, ``segmentation`` as a *list* of compressed
  RLE dicts, 0-based categories);
* :func:`refer_gt_mask` applies the official REF ground-truth rule.

Errors are :class:`remotesam.bench.api.DatasetError` naming the file, the ref and the field.
"""

from __future__ import annotations

import _compat_pickle
import io
import pickle
import pickletools
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from remotesam.bench.api import DatasetError
from remotesam.bench.kit.files import is_regular_file, read_json
from remotesam.bench.kit.masks import mask_to_rle, rle_to_mask, segmentation_to_rle

__all__ = [
    "SENTENCE_FIELDS",
    "ReferData",
    "ReferRef",
    "load_refer",
    "read_refer_pickle",
    "refer_gt_mask",
    "refer_split_matches",
]


#: Sentence fields of a REFER ref: ``raw`` (the text as written; the official evaluation
#: feeds it) and ``sent`` (REFER's normalised text).
SENTENCE_FIELDS: tuple[str, ...] = ("raw", "sent")


# --------------------------------------------------------------------------------------------
# Pickle safety: a structural scan before unpickling, and allocation-checked constructors
# --------------------------------------------------------------------------------------------

# Opcode argument layouts (pickletools): no argument (None), fixed size n >= 0, a text line
# (-1), or a length prefix of 1 / 4 signed / 4 unsigned / 8 unsigned bytes followed by that
# many bytes (-2 .. -5).
_ARG_LINE = -1
_LEN_PREFIX: dict[int, tuple[int, bool]] = {
    -2: (1, False),
    -3: (4, True),
    -4: (4, False),
    -5: (8, False),
}
_ARG_LAYOUT: dict[int, int | None] = {
    op.code.encode("latin-1")[0]: (None if op.arg is None else op.arg.n)
    for op in pickletools.opcodes
}
_OP: dict[str, int] = {op.name: op.code.encode("latin-1")[0] for op in pickletools.opcodes}
_TWO_LINES = frozenset({_OP["GLOBAL"], _OP["INST"]})
_MEMO_PUTS = frozenset({_OP["PUT"], _OP["BINPUT"], _OP["LONG_BINPUT"]})


class _PickleRefused(Exception):
    """A pickle refused before or while unpickling (the message says why)."""


def _check_memo_index(idx: int, at: int, n: int) -> None:
    if idx > n:
        raise _PickleRefused(f"memo index {idx} at byte {at} exceeds the file size {n}")


def _scan_pickle(data: bytes) -> None:
    """Walk every opcode of ``data`` (building nothing) and refuse what could make the C
    unpickler allocate far more than the file holds.

    * every length-prefixed argument (``BINBYTES8``, ``BINUNICODE8``, ``BYTEARRAY8``, ``LONG4``,
      ``BINSTRING`` ...) and every ``FRAME`` must fit in the bytes that remain: the unpickler
      allocates a declared length *before* reading it (``BINBYTES8`` of 1.5 GB in 36 bytes);
    * memo indices (``PUT`` / ``BINPUT`` / ``LONG_BINPUT``) must not exceed the file size (the
      memo table grows to twice the index);
    * unknown opcodes, a protocol above :data:`pickle.HIGHEST_PROTOCOL` and a missing ``STOP``
      are refused.

    Cost: one pass in Python over the opcodes, about as long as unpickling itself.

    Raises:
        _PickleRefused: naming the opcode's offset and the declared vs available sizes.
    """
    n = len(data)
    pos = 0
    layout = _ARG_LAYOUT
    stop, frame, proto, long_binput = _OP["STOP"], _OP["FRAME"], _OP["PROTO"], _OP["LONG_BINPUT"]
    find = data.find
    while pos < n:
        code = data[pos]
        at = pos
        pos += 1
        kind = layout.get(code, -99)
        if kind is None:
            if code == stop:
                return
            continue
        if kind > 0:
            if pos + kind > n:
                raise _PickleRefused(
                    f"the opcode at byte {at} needs {kind} argument bytes, {n - pos} remain"
                )
            if code == frame:
                size = int.from_bytes(data[pos:pos + 8], "little")
                if size > n - pos - 8:
                    raise _PickleRefused(
                        f"FRAME at byte {at} declares {size} bytes but only {n - pos - 8} remain"
                    )
            elif code == proto:
                if data[pos] > pickle.HIGHEST_PROTOCOL:
                    raise _PickleRefused(f"unsupported pickle protocol {data[pos]}")
            elif code == long_binput:
                _check_memo_index(int.from_bytes(data[pos:pos + 4], "little"), at, n)
            pos += kind
        elif kind == -2:  # 1-byte length: at most 255 bytes
            if pos >= n or data[pos] > n - pos - 1:
                raise _PickleRefused(f"the opcode at byte {at} declares more bytes than remain")
            pos += 1 + data[pos]
        elif kind == _ARG_LINE:
            for _ in range(2 if code in _TWO_LINES else 1):
                end = find(b"\n", pos)
                if end < 0:
                    raise _PickleRefused(f"unterminated text argument at byte {at}")
                if code in _MEMO_PUTS:
                    try:
                        idx = int(data[pos:end])
                    except ValueError:
                        raise _PickleRefused(
                            f"memo index {data[pos:end][:20]!r} at byte {at}"
                        ) from None
                    _check_memo_index(idx, at, n)
                pos = end + 1
        elif kind == -99:
            raise _PickleRefused(f"unknown opcode 0x{code:02x} at byte {at}")
        else:
            width, signed = _LEN_PREFIX[kind]
            if pos + width > n:
                raise _PickleRefused(f"the length of the argument at byte {at} is cut off")
            size = int.from_bytes(data[pos:pos + width], "little", signed=signed)
            pos += width
            if size < 0 or size > n - pos:
                raise _PickleRefused(
                    f"the opcode at byte {at} declares {size} bytes but only {n - pos} remain"
                )
            pos += size
    raise _PickleRefused("no STOP opcode (truncated file)")


def _safe_bytearray(limit: int) -> Any:
    def bytearray_(*args: Any) -> bytearray:
        # a pickled bytearray carries its bytes (bytearray(b'..') or bytearray(u'..', 'latin-1'));
        # an int argument only allocates: refuse one beyond the file's size
        if args and isinstance(args[0], int) and not 0 <= args[0] <= limit:
            raise _PickleRefused(
                f"bytearray({args[0]}) would allocate more than the file holds ({limit} bytes)"
            )
        return bytearray(*args)

    return bytearray_


class _SafeArray(np.ndarray):
    """An ndarray rebuilt from a pickle: ``__setstate__`` checks the declared size first."""

    def __setstate__(self, state: Any) -> None:
        try:
            shape, dtype, raw = (
                (state[1], state[2], state[4])
                if len(state) == 5
                else (state[0], state[1], state[3])
            )
            count = float(np.prod([int(v) for v in shape], dtype=np.float64))
            dt = np.dtype(dtype)
        except (TypeError, ValueError, IndexError) as exc:
            raise _PickleRefused(f"malformed numpy array state ({exc})") from None
        if dt.hasobject:
            if not isinstance(raw, list) or len(raw) != count:
                raise _PickleRefused(
                    f"numpy object array of shape {tuple(shape)} does not carry its items"
                )
        elif count * dt.itemsize > (len(raw) if isinstance(raw, (bytes, bytearray)) else 0):
            raise _PickleRefused(
                f"numpy array of shape {tuple(shape)} ({dt}) needs more bytes than it carries"
            )
        super().__setstate__(state)


def _latin1_encode(text: Any, encoding: Any = "latin1", *rest: Any) -> bytes:
    # protocols 0-2 written by Python 3 store bytes as _codecs.encode(str, 'latin1'); the result
    # is as long as the text, which the file holds
    if not isinstance(text, str) or str(encoding).lower().replace("-", "") != "latin1" or rest:
        raise _PickleRefused(
            "_codecs.encode is only allowed as encode(<str>, 'latin1') (pickled bytes)"
        )
    return text.encode("latin-1")


def _ndarray_token(*args: Any) -> Any:
    raise _PickleRefused("numpy.ndarray may only be rebuilt through numpy's _reconstruct")


def _safe_reconstruct(limit: int) -> Any:
    def _reconstruct(cls: Any, shape: Any, dtype: Any) -> np.ndarray:
        if cls is not _ndarray_token:
            raise _PickleRefused("numpy _reconstruct of anything but numpy.ndarray")
        try:
            dims = tuple(int(v) for v in (shape if isinstance(shape, (tuple, list)) else (shape,)))
            nbytes = float(np.prod(dims, dtype=np.float64)) * np.dtype(dtype).itemsize
        except (TypeError, ValueError) as exc:
            raise _PickleRefused(f"malformed numpy _reconstruct arguments ({exc})") from None
        if min(dims, default=0) < 0 or nbytes > limit:
            raise _PickleRefused(
                f"a numpy array of shape {dims} would allocate more than the file holds"
            )
        return np.ndarray.__new__(_SafeArray, dims, dtype)

    return _reconstruct


class _RestrictedUnpickler(pickle.Unpickler):
    """Rebuilds only plain data: containers, strings, numbers, numpy scalars/arrays.

    Any other global (functions, arbitrary classes) is refused, so a malicious pickle cannot
    execute code. Python-2 names (``__builtin__``, ``copy_reg``) are mapped by ``fix_imports``.
    The globals that could allocate from a small argument (``bytearray(n)``, numpy arrays) are
    replaced by versions that refuse sizes beyond ``limit`` (the file's size); run
    :func:`_scan_pickle` first for the opcode-level checks.
    """

    _ALLOWED: frozenset[tuple[str, str]] = frozenset(
        {
            ("builtins", "set"),
            ("builtins", "frozenset"),
            ("builtins", "dict"),
            ("builtins", "list"),
            ("builtins", "tuple"),
            ("builtins", "bytearray"),
            ("collections", "OrderedDict"),
            ("_codecs", "encode"),
            ("numpy", "dtype"),
            ("numpy.core.multiarray", "scalar"),
            ("numpy._core.multiarray", "scalar"),
            ("numpy.core.multiarray", "_reconstruct"),
            ("numpy._core.multiarray", "_reconstruct"),
            ("numpy", "ndarray"),
        }
    )

    def __init__(self, file: Any, *, limit: int, **kwargs: Any) -> None:
        super().__init__(file, **kwargs)
        self._limit = limit

    def find_class(self, module: str, name: str) -> Any:
        # Python-2 names (protocols 0-2): __builtin__.set -> builtins.set, as fix_imports does
        if (module, name) in _compat_pickle.NAME_MAPPING:
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        elif module in _compat_pickle.IMPORT_MAPPING:
            module = _compat_pickle.IMPORT_MAPPING[module]
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(
                f"refused to load global {module}.{name} (only plain lists/dicts/strings/numbers "
                "are allowed in a REFER refs file)"
            )
        if name == "bytearray":
            return _safe_bytearray(self._limit)
        if name == "encode":
            return _latin1_encode
        if name == "ndarray":
            return _ndarray_token
        if name == "_reconstruct":
            return _safe_reconstruct(self._limit)
        return super().find_class(module, name)


def read_refer_pickle(path: Path) -> Any:
    """Load a REFER ``refs(unc).p`` safely (restricted unpickler; Python-2 pickles supported).

    Python-2 ``str`` objects are decoded as UTF-8, falling back to latin-1.

    Hostile files are refused before anything large is built: the opcodes are scanned first
    (declared lengths, frames and memo indices must fit in the file, see :func:`_scan_pickle`),
    and the only allowed globals that could allocate from a small argument (``bytearray(n)``,
    numpy arrays) are checked against the file size. So a 36-byte pickle cannot allocate
    1.5 GB, and ``bytearray(2**50)`` is a :class:`DatasetError`, not a ``MemoryError``.

    Raises:
        DatasetError: missing or not a regular file, truncated, holding anything but plain
            data, or declaring more than the file can hold (naming the file and the reason).
    """
    path = Path(path)
    if not is_regular_file(path):
        raise DatasetError(
            f"REFER refs file {path}: not found or not a regular file (a FIFO or device is never "
            "opened)"
        )
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DatasetError(f"REFER refs file {path}: cannot read: {exc}") from None
    hostile = (
        "this is not a valid refs(unc).p (truncated, corrupted or hostile file): re-download it"
    )
    try:
        _scan_pickle(data)
    except _PickleRefused as exc:
        raise DatasetError(
            f"REFER refs file {path}: cannot unpickle, refused: {exc}; {hostile}"
        ) from None
    last: Exception | None = None
    for encoding in ("utf-8", "latin1"):
        try:
            return _RestrictedUnpickler(io.BytesIO(data), encoding=encoding, limit=len(data)).load()
        except UnicodeDecodeError as exc:
            last = exc
            continue
        except _PickleRefused as exc:
            raise DatasetError(
                f"REFER refs file {path}: cannot unpickle, refused: {exc}; {hostile}"
            ) from None
        except (MemoryError, RecursionError, OverflowError) as exc:
            raise DatasetError(
                f"REFER refs file {path}: cannot unpickle, it needs more memory or nesting than a "
                f"refs file can ({type(exc).__name__}); {hostile}"
            ) from None
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError, IndexError,
                AttributeError, ImportError, KeyError) as exc:
            raise DatasetError(
                f"REFER refs file {path}: cannot unpickle ({type(exc).__name__}: {exc}); "
                "expected a pickled list of ref dicts (truncated download?)"
            ) from None
    raise DatasetError(f"REFER refs file {path}: undecodable strings ({last})")


@dataclass(frozen=True)
class ReferRef:
    """One referred object with all its sentences.

    Attributes:
        ref_id, ann_id, image_id: ids from the refs file.
        split: the ref's split string (``"train"``, ``"val"``, ``"test"``, ``"testA"``...).
        file_name: image file name (relative to the image folder).
        category_id: as stored in the ref (0-based for RRSIS-D).
        sentences: ``(sent_id, text)`` pairs, in file order; ``text`` is the sentence field
            :func:`load_refer` was asked for (``raw`` by default, as the official evaluation
            loader ``ReferDataset`` reads ``el['raw']``; the other field when it is absent).
        segmentation: the annotation's ``segmentation`` (RRSIS-D: list of RLE dicts).
        height, width: image size (from ``images[]`` or the RLE).
        bbox: the annotation's ``bbox`` as stored (RRSIS-D: **xyxy**), or None.
    """

    ref_id: int
    ann_id: int
    image_id: int
    split: str
    file_name: str
    category_id: int | None
    sentences: tuple[tuple[int, str], ...]
    segmentation: Any
    height: int
    width: int
    bbox: tuple[float, ...] | None = None


@dataclass
class ReferData:
    """Parsed REFER dataset: refs plus category names (id -> name)."""

    refs: list[ReferRef]
    categories: dict[int, str] = field(default_factory=dict)
    splits_found: tuple[str, ...] = ()
    #: sentences whose ``sent_id`` an earlier sentence of the split already has (kept and
    #: evaluated, as the official ``ReferDataset``; ``duplicates="error"`` refuses them).
    n_duplicate_sent_ids: int = 0


def _int_field(obj: Mapping[str, Any], key: str, where: str) -> int:
    if key not in obj:
        raise DatasetError(f"{where}: field '{key}' missing")
    try:
        return int(obj[key])
    except (TypeError, ValueError):
        raise DatasetError(f"{where}: field '{key}' = {obj[key]!r} is not an integer") from None


def refer_split_matches(ref_split: str, split: str) -> bool:
    """REFER ``getRefIds(split=...)`` rule: ``test*`` splits match by substring
    (``testA``/``testB``), ``train``/``val`` must match exactly."""
    if split in ("testA", "testB", "testC"):
        return split in ref_split
    if split == "test":
        return "test" in ref_split
    return ref_split == split


def load_refer(
    refs_path: Path,
    instances_path: Path,
    split: str | None,
    *,
    require_sentences: bool = True,
    sentence_field: str = "raw",
    duplicates: str = "keep",
) -> ReferData:
    """Read a REFER dataset (``refs(unc).p`` + ``instances.json``), RRSIS-D flavour.

    Quirks handled: annotations carry ``categories_id`` (plural; ``category_id`` accepted too),
    ``bbox`` is xyxy (kept as stored), ``segmentation`` is a list holding one compressed RLE
    dict (a bare dict, polygons and uncompressed RLE are accepted too), categories are 0-based,
    ``area`` is ignored (it is not the mask pixel count). Image size comes from ``images[]``
    when listed there, else from the RLE ``size`` (RemoteSAM-270K lists fewer images than it
    uses).

    Args:
        refs_path: the pickle.
        instances_path: the json.
        split: keep refs of this split (REFER rule, see :func:`refer_split_matches`); None = all.
        require_sentences: raise when a ref has no sentence.
        sentence_field: ``"raw"`` (official evaluation: ``ReferDataset`` feeds ``el['raw']``)
            or ``"sent"`` (the REFER-normalised text the training loader reads); when a
            sentence lacks that field the other one is used.
        duplicates: ``"keep"`` (official: the evaluation walks every sentence of every ref, so
            a repeated ``sent_id`` is evaluated again; counted in
            ``ReferData.n_duplicate_sent_ids``) or ``"error"`` (raise on the repeat).

    Raises:
        DatasetError: naming the file, the ref index and the field.
        ValueError: ``sentence_field`` is neither ``"raw"`` nor ``"sent"``.
    """
    if sentence_field not in SENTENCE_FIELDS:
        raise ValueError(f"sentence_field={sentence_field!r}; expected one of {SENTENCE_FIELDS}")
    other_field = "sent" if sentence_field == "raw" else "raw"
    refs_raw = read_refer_pickle(refs_path)
    if not isinstance(refs_raw, list):
        raise DatasetError(
            f"REFER refs file {refs_path}: top level is a {type(refs_raw).__name__}, expected a "
            "list "
            "of ref dicts"
        )
    inst = read_json(instances_path, "REFER instances file")
    if not isinstance(inst, dict) or not isinstance(inst.get("annotations"), list):
        raise DatasetError(
            f"REFER instances file {instances_path}: field 'annotations' missing or not a list"
        )
    images: dict[int, tuple[int, int]] = {}
    for i, img in enumerate(inst.get("images") or []):
        where = f"{instances_path}: images[{i}]"
        if not isinstance(img, dict):
            raise DatasetError(f"{where}: expected an object")
        if "height" in img and "width" in img:
            images[_int_field(img, "id", where)] = (
                _int_field(img, "height", where),
                _int_field(img, "width", where),
            )
    anns: dict[int, tuple[int, Mapping[str, Any]]] = {}
    for i, ann in enumerate(inst["annotations"]):
        where = f"{instances_path}: annotations[{i}]"
        if not isinstance(ann, dict):
            raise DatasetError(f"{where}: expected an object")
        anns[_int_field(ann, "id", where)] = (i, ann)
    categories: dict[int, str] = {}
    for i, cat in enumerate(inst.get("categories") or []):
        if isinstance(cat, dict) and "id" in cat and "name" in cat:
            categories.setdefault(
                _int_field(cat, "id", f"{instances_path}: categories[{i}]"), str(cat["name"])
            )

    refs: list[ReferRef] = []
    splits_found: set[str] = set()
    seen_sent: set[int] = set()
    n_dup = 0
    for r_idx, ref in enumerate(refs_raw):
        where = f"{refs_path}: ref #{r_idx}"
        if not isinstance(ref, dict):
            raise DatasetError(f"{where}: expected a dict, got {type(ref).__name__}")
        ref_split = str(ref.get("split", ""))
        splits_found.add(ref_split)
        if split is not None and not refer_split_matches(ref_split, split):
            continue
        ann_id = _int_field(ref, "ann_id", where)
        ref_id = _int_field(ref, "ref_id", where) if "ref_id" in ref else ann_id
        image_id = _int_field(ref, "image_id", where)
        if not isinstance(ref.get("file_name"), str) or not ref["file_name"]:
            raise DatasetError(
                f"{where} (ref_id {ref_id}): field 'file_name' missing or not a string"
            )
        sents_raw = ref.get("sentences")
        if not isinstance(sents_raw, list) or (require_sentences and not sents_raw):
            raise DatasetError(f"{where} (ref_id {ref_id}): field 'sentences' missing or empty")
        sentences = []
        for s_idx, s in enumerate(sents_raw):
            s_where = f"{where} (ref_id {ref_id}): sentences[{s_idx}]"
            if not isinstance(s, dict):
                raise DatasetError(f"{s_where}: expected a dict")
            text = s.get(sentence_field, s.get(other_field))
            if not isinstance(text, str) or not text.strip():
                raise DatasetError(
                    f"{s_where}: field {sentence_field!r} (or {other_field!r}) missing, empty or "
                    "not a string"
                )
            sent_id = _int_field(s, "sent_id", s_where) if "sent_id" in s else ref_id * 1000 + s_idx
            if sent_id in seen_sent:
                if duplicates == "error":
                    raise DatasetError(
                        f"{s_where}: duplicate sent_id {sent_id} (refused by the option "
                        "duplicates=error; by default it is evaluated, as the official code does)")
                n_dup += 1
            seen_sent.add(sent_id)
            sentences.append((sent_id, text))
        if ann_id not in anns:
            raise DatasetError(
                f"{where} (ref_id {ref_id}): ann_id {ann_id} not found in {instances_path} "
                "(annotations[].id)"
            )
        a_idx, ann = anns[ann_id]
        a_where = f"{instances_path}: annotations[{a_idx}] (id {ann_id})"
        if "segmentation" not in ann:
            raise DatasetError(f"{a_where}: field 'segmentation' missing")
        seg = ann["segmentation"]
        if image_id in images:
            h, w = images[image_id]
        else:
            first = seg[0] if isinstance(seg, list) and seg and isinstance(seg[0], Mapping) else seg
            if isinstance(first, Mapping) and "size" in first:
                h, w = (int(v) for v in first["size"])
            else:
                raise DatasetError(
                    f"{a_where}: image {image_id} is not listed in images[] with height/width and "
                    "the segmentation is not an RLE with 'size'"
                )
        cat = ref.get("category_id", ann.get("categories_id", ann.get("category_id")))
        bbox = ann.get("bbox")
        refs.append(
            ReferRef(
                ref_id=ref_id,
                ann_id=ann_id,
                image_id=image_id,
                split=ref_split,
                file_name=ref["file_name"],
                category_id=None if cat is None else int(cat),
                sentences=tuple(sentences),
                segmentation=seg,
                height=h,
                width=w,
                bbox=None if not isinstance(bbox, list) else tuple(float(v) for v in bbox),
            )
        )
    return ReferData(refs=refs, categories=categories, splits_found=tuple(sorted(splits_found)),
                     n_duplicate_sent_ids=n_dup)


def refer_gt_mask(ref: ReferRef, where: str) -> dict[str, Any]:
    """The official REF ground truth of a ref as one compressed RLE.

    Official rule (``REFER.getMask`` + ``ReferDataset``): decode every RLE of the segmentation
    list, sum them, and keep pixels where the sum **equals 1**. With the single RLE RRSIS-D
    stores, that is the RLE itself.
    """
    seg = ref.segmentation
    if isinstance(seg, list) and len(seg) > 1 and all(isinstance(s, Mapping) for s in seg):
        total = np.zeros((ref.height, ref.width), dtype=np.int32)
        for k, s in enumerate(seg):
            rle = segmentation_to_rle(s, ref.height, ref.width, f"{where}.segmentation[{k}]")
            total += rle_to_mask(rle)
        return mask_to_rle(total == 1)
    return segmentation_to_rle(seg, ref.height, ref.width, f"{where}.segmentation")
