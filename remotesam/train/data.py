"""REFER-format training data (RRSIS-D, RemoteSAM-270K, the synthetic set).

``refs(unc).p`` is read with a **restricted unpickler** that accepts plain containers and
scalars only (no global is ever imported); ``instances.json`` is RRSIS-D-style COCO json whose
annotations carry ``segmentation`` as a list holding one compressed RLE (DATASETS.md section 1).

A sample is one (image, sentence, binary mask). Tensors: image ``(3, S, S)`` float32 normalised
with the model's mean/std after a PIL bilinear resize (the official transform); ``input_ids`` /
``attention_mask`` ``(L,)`` int64; ``target`` ``(S, S)`` int64 0/1 (mask resized with nearest).
"""

from __future__ import annotations

import io
import json
import os
import pickle
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from pycocotools import mask as mask_utils

__all__ = [
    "ReferRecord",
    "ReferTrainDataset",
    "TrainDataError",
    "locate_refer",
    "read_refer",
    "safe_load_refs",
]

_HFLIP_WORDS = re.compile(r"\b(left|right|leftmost|rightmost|east|west|eastern|western)\b", re.I)
_VFLIP_WORDS = re.compile(
    r"\b(top|bottom|upper|lower|topmost|bottommost|above|below|north|south|northern|southern)\b",
    re.I,
)


class TrainDataError(ValueError):
    """The training data is missing, malformed or empty (the message names file and field)."""


class _RefusedGlobal(pickle.UnpicklingError):
    pass


class _PlainUnpickler(pickle.Unpickler):
    """Unpickler for data pickles: builds lists, dicts, tuples, str, bytes, numbers, bools,
    None; refuses every global (so no class is imported and no code can run)."""

    def find_class(self, module: str, name: str) -> Any:
        raise _RefusedGlobal(
            f"refused to load global '{module}.{name}': a REFER refs file holds only lists, dicts, "
            "strings and numbers"
        )


def safe_load_refs(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Read a REFER ``refs(unc).p`` safely.

    Returns:
        The list of ref dicts.

    Raises:
        TrainDataError: missing file, not a pickle, a pickle that references any global, or not
            a list of dicts.
    """
    p = Path(path)
    if not p.is_file():
        raise TrainDataError(f"REFER refs file not found: {p}")
    try:
        data = _PlainUnpickler(io.BytesIO(p.read_bytes()), encoding="latin1").load()
    except _RefusedGlobal as e:
        raise TrainDataError(f"{p}: not a safe REFER refs pickle ({e})") from None
    except (
        pickle.UnpicklingError,
        EOFError,
        ValueError,
        TypeError,
        IndexError,
        KeyError,
        AttributeError,
        MemoryError,
    ) as e:
        raise TrainDataError(
            f"{p}: corrupt or truncated pickle ({type(e).__name__}: {e}); re-download or "
            "regenerate it"
        ) from None
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        raise TrainDataError(
            f"{p}: expected a pickled list of ref dicts, found {type(data).__name__}"
        )
    return data


@dataclass(frozen=True)
class ReferRecord:
    """One training item: an image file, a sentence and the RLE of its mask."""

    file_name: str
    sentence: str
    rle: dict[str, Any]
    height: int
    width: int
    ref_id: int


def locate_refer(data_root: str | os.PathLike[str]) -> tuple[Path, Path, Path]:
    """(refs file, instances file, image folder) of a REFER dataset root.

    Accepted layouts: RRSIS-D / synthetic (``<root>/rrsisd/refs(unc).p``,
    ``<root>/rrsisd/instances.json``, ``<root>/images/rrsisd/JPEGImages/``) and RemoteSAM-270K
    (``<root>/refs(unc)_RemoteSAM.p`` or ``refs(unc).p``, ``instances.json`` — directly or in
    ``Annotations/`` — and ``<root>/JPEGImages/``).

    Raises:
        TrainDataError: none of the layouts is found (the message shows both).
    """
    root = Path(data_root)
    if (root / "rrsisd" / "refs(unc).p").is_file():
        return (
            root / "rrsisd" / "refs(unc).p",
            root / "rrsisd" / "instances.json",
            root / "images" / "rrsisd" / "JPEGImages",
        )
    for ann in (root, root / "Annotations"):
        for name in ("refs(unc)_RemoteSAM.p", "refs(unc).p"):
            if (ann / name).is_file():
                return ann / name, ann / "instances.json", root / "JPEGImages"
    raise TrainDataError(
        f"no REFER dataset under {root}. Expected either\n"
        "  <root>/rrsisd/refs(unc).p, <root>/rrsisd/instances.json, "
        "<root>/images/rrsisd/JPEGImages/  (RRSIS-D, synthetic)\n"
        "or\n"
        "  <root>/[Annotations/]refs(unc)_RemoteSAM.p, instances.json, <root>/JPEGImages/          "
        "   (RemoteSAM-270K)\n"
        "or pass the three paths explicitly (--refs, --instances, --images)."
    )


def read_refer(
    refs_file: str | os.PathLike[str],
    instances_file: str | os.PathLike[str],
    split: str,
    sentences: str = "first",
) -> list[ReferRecord]:
    """Records of one split.

    Args:
        split: ``train`` / ``val`` match exactly; ``test*`` matches every split containing
            ``"test"`` (REFER's ``getRefIds`` rule).
        sentences: ``"first"`` (official training: ``sentences[0]`` of each ref) or ``"all"``.

    Raises:
        TrainDataError: malformed files (file, ref/annotation id and field named).
    """
    if sentences not in ("first", "all"):
        raise ValueError(f"sentences must be 'first' or 'all', got {sentences!r}")
    refs = safe_load_refs(refs_file)
    ip = Path(instances_file)
    if not ip.is_file():
        raise TrainDataError(f"REFER instances file not found: {ip}")
    try:
        inst = json.loads(ip.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise TrainDataError(f"{ip}: not valid JSON ({e})") from None
    if not isinstance(inst, dict) or not isinstance(inst.get("annotations"), list):
        raise TrainDataError(f"{ip}: expected an object with an 'annotations' list")
    anns: dict[int, dict[str, Any]] = {}
    for i, a in enumerate(inst["annotations"]):
        if not isinstance(a, dict) or "id" not in a or "segmentation" not in a:
            raise TrainDataError(f"{ip}: annotations[{i}] needs 'id' and 'segmentation'")
        anns[a["id"]] = a
    images = {im.get("id"): im for im in inst.get("images", []) if isinstance(im, dict)}
    out: list[ReferRecord] = []
    for k, r in enumerate(refs):
        where = f"{refs_file}: ref #{k} (ref_id {r.get('ref_id')!r})"
        rs = r.get("split")
        if not isinstance(rs, str):
            raise TrainDataError(f"{where}: field 'split' missing or not a string")
        if not (rs == split or (split.startswith("test") and "test" in rs)):
            continue
        for key in ("ann_id", "file_name", "sentences"):
            if key not in r:
                raise TrainDataError(f"{where}: field {key!r} missing")
        ann = anns.get(r["ann_id"])
        if ann is None:
            raise TrainDataError(f"{where}: ann_id {r['ann_id']!r} not in {ip}")
        seg = ann["segmentation"]
        rle = seg[0] if isinstance(seg, list) and seg and isinstance(seg[0], dict) else seg
        if not isinstance(rle, dict) or "size" not in rle or "counts" not in rle:
            raise TrainDataError(
                f"{ip}: annotation {ann['id']}: 'segmentation' must be a list holding one COCO RLE "
                "dict "
                f"{{'size': [H, W], 'counts': ...}}, found {type(seg).__name__}"
            )
        h, w = (int(v) for v in rle["size"])
        im = images.get(r.get("image_id"))
        if im is not None and (im.get("height"), im.get("width")) not in ((h, w), (None, None)):
            raise TrainDataError(
                f"{ip}: annotation {ann['id']} mask size {h}x{w} differs from image "
                f"{im.get('file_name')} {im.get('height')}x{im.get('width')}"
            )
        sents = r["sentences"]
        if not isinstance(sents, list) or not sents:
            raise TrainDataError(f"{where}: 'sentences' must be a non-empty list")
        for s in sents[:1] if sentences == "first" else sents:
            text = s.get("sent", s.get("raw")) if isinstance(s, dict) else None
            if not isinstance(text, str):
                raise TrainDataError(f"{where}: a sentence has no 'sent'/'raw' string")
            out.append(ReferRecord(str(r["file_name"]), text, rle, h, w, int(r.get("ref_id", k))))
    return out


def _decode(rle: dict[str, Any]) -> np.ndarray:
    r = dict(rle)
    if isinstance(r["counts"], str):
        r["counts"] = r["counts"].encode("ascii")
    elif isinstance(r["counts"], list):
        r = mask_utils.frPyObjects(r, *r["size"])
    m = mask_utils.decode(r)
    if m.ndim == 3:
        m = m.sum(axis=2)
    return (m > 0).astype(np.uint8)


class ReferTrainDataset(torch.utils.data.Dataset):
    """Map-style dataset over :class:`ReferRecord` s.

    Index with an int or with ``(index, epoch)``: the epoch (and the dataset seed) seed the
    augmentation of that item, so data are identical whatever the worker count or rank.

    Args:
        records: from :func:`read_refer`.
        image_dir: folder holding ``record.file_name``.
        size: network input side S.
        tokenizer: object with ``encode(list[str]) -> (ids (N, L), mask (N, L))``.
        mean, std: normalisation constants.
        augment: random horizontal/vertical flips (only when the sentence has no word whose
            meaning a flip changes, e.g. "left", "top"), small brightness/contrast jitter, and
            the official 32x32 black-out boxes on 20% of images; off by default (the official
            RemoteSAM training uses none).
        seed: augmentation seed.
    """

    def __init__(
        self,
        records: Sequence[ReferRecord],
        image_dir: str | os.PathLike[str],
        size: int,
        tokenizer: Any,
        mean: Sequence[float],
        std: Sequence[float],
        augment: bool = False,
        seed: int = 0,
    ) -> None:
        self.records = list(records)
        self.image_dir = Path(image_dir)
        self.size = int(size)
        self.tokenizer = tokenizer
        self.mean = np.asarray(mean, np.float32).reshape(3, 1, 1)
        self.std = np.asarray(std, np.float32).reshape(3, 1, 1)
        self.augment = augment
        self.seed = int(seed)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, torch.Tensor]:
        index, epoch = (key, 0) if isinstance(key, int) else key
        rec = self.records[index]
        path = self.image_dir / rec.file_name
        try:
            with Image.open(path) as raw:
                im = raw.convert("RGB")
                if im.size != (rec.width, rec.height):
                    raise TrainDataError(
                        f"{path}: image is {im.size[0]}x{im.size[1]} but its mask (ref "
                        f"{rec.ref_id}) is {rec.width}x{rec.height}"
                    )
                img = np.asarray(
                    im.resize((self.size, self.size), Image.Resampling.BILINEAR), dtype=np.uint8
                )
        except FileNotFoundError:
            raise TrainDataError(f"image of ref {rec.ref_id} not found: {path}") from None
        except OSError as e:
            raise TrainDataError(f"cannot read image {path} (ref {rec.ref_id}): {e}") from None
        mask = np.asarray(
            Image.fromarray(_decode(rec.rle)).resize(
                (self.size, self.size), Image.Resampling.NEAREST
            )
        )
        img = np.array(img)  # writable copy
        if self.augment:
            rng = np.random.default_rng(np.random.SeedSequence([self.seed, int(epoch), int(index)]))
            img, mask = _augment(img, mask, rec.sentence, rng)
        ids, am = self.tokenizer.encode([rec.sentence])
        x = (img.transpose(2, 0, 1).astype(np.float32) / np.float32(255.0) - self.mean) / self.std
        return {
            "image": torch.from_numpy(np.ascontiguousarray(x)),
            "input_ids": ids[0],
            "attention_mask": am[0],
            "target": torch.from_numpy(np.ascontiguousarray(mask).astype(np.int64)),
        }


def _augment(
    img: np.ndarray, mask: np.ndarray, sentence: str, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    if not _HFLIP_WORDS.search(sentence) and rng.random() < 0.5:
        img, mask = img[:, ::-1], mask[:, ::-1]
    if not _VFLIP_WORDS.search(sentence) and rng.random() < 0.5:
        img, mask = img[::-1], mask[::-1]
    a = rng.uniform(0.85, 1.15)
    b = rng.uniform(-12, 12)
    img = np.clip(img.astype(np.float32) * a + b, 0, 255).astype(np.uint8)
    if rng.random() < 0.2:  # official RRSIS train-time black-out boxes
        s = img.shape[0]
        k = max(1, round(32 * s / 896))
        for _ in range(int(rng.integers(1, 4))):
            y, x = (int(v) for v in rng.integers(0, max(s - k, 1), 2))
            img[y : y + k, x : x + k] = 0
    return np.ascontiguousarray(img), np.ascontiguousarray(mask)
