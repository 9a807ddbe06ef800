"""The RemoteSAM predictor: one referring-segmentation network, eight Earth-observation tasks.

:class:`RemoteSAM` wraps a network (``net(image, input_ids, attention_mask, text_features=None)
-> logits (B, 2, S, S)``) and reproduces the official wrapper's behaviour by default
(``tasks/code/model.py`` as described in MODEL.md section 4 and PROTOCOLS.md section 2):

* image: RGB, PIL bilinear resize to ``S x S`` (aspect ratio not kept), ``/255``, ImageNet
  mean/std in float32 (:mod:`remotesam.image`);
* text: bert-base-uncased WordPiece, 20 tokens (:mod:`remotesam.text`); class prompts
  ``"{classname} in the image"`` (every class-prompt method takes ``template=``);
* mask = argmax of the two logits (a tie is background), prob = ``softmax[:, 1]``; both are
  resized back to the original size with legacy *nearest* interpolation
  (``src = floor(dst * in / out)``, PyTorch's ``F.interpolate`` default), never bilinear;
* detection = mask-to-box per class (8-connected components, confidence = mean probability,
  ``conf_threshold=0.01``, inner boxes removed), NMS at IoU 0.5, boxes ordered by score;
* visual grounding = union of the referring mask's boxes, or ``None``;
* multi-label: ``0.5*max + 0.5*mean`` of the probability map at network resolution, ``> 0.5``;
* multi-class: ``1.0*max + 0.0*mean`` (the code's factor), ``None`` when the best is ``< 0.5``;
* counting = number of detected boxes (optionally filtered by ``area > prior * 0.8``);
* captioning = rule-based caption from the detections, with a *seeded* template choice.

What differs from the official wrapper, on purpose, without changing results: the tokenizer is
built once; class prompts are batched into forward passes (``batch_size``); text features of
repeated prompts are cached when the network has ``encode_text``; inference runs under
:func:`torch.inference_mode`; ``precision="bf16"`` uses :func:`torch.autocast`. Classification
scores are accumulated in float64: the official float32 ``torch.mean`` changes in its last bit
with the number of threads (1 vs 2 threads on the golden maps), so it cannot be matched bit for
bit; ours agrees with the golden scores to 1e-7 and is the same on every machine.

Example::

    model = RemoteSAM.from_checkpoint("checkpoint.pth", device="cuda")
    ref = model.referring_seg("scene.jpg", "the airplane on the right")   # ReferringMask
    dets = model.detection("scene.jpg", ["airplane", "vehicle"])          # Detections
"""

from __future__ import annotations

import contextlib
import math
import numbers
import os
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from remotesam.image import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    ImageInput,
    load_image,
    normalize,
    resize_image,
)
from remotesam.text import DEFAULT_TEMPLATE, Tokenizer, prompt
from remotesam.types import (
    Caption,
    Counts,
    Detections,
    Grounding,
    MultiClassResult,
    MultiLabelResult,
    ReferringMask,
    SemanticMasks,
)

if TYPE_CHECKING:
    from remotesam.postprocess import BoundaryModel

__all__ = ["RemoteSAM"]

_PRECISIONS: dict[str, torch.dtype | None] = {"fp32": None, "bf16": torch.bfloat16}
_BOX_TYPES = ("hbb", "obb")
_REGION_SPLITS = (4, 9)

#: Official defaults of every threshold and factor (PROTOCOLS.md section 2); each is also a
#: keyword parameter of the method that uses it.
DEFAULTS: dict[str, Any] = {
    "template": DEFAULT_TEMPLATE,
    "conf_threshold": 0.01,
    "remove_inner": True,
    "nms_iou": 0.5,
    "mlc_factor": 0.5,
    "mlc_threshold": 0.5,
    "mcc_factor": 1.0,
    "mcc_floor": 0.5,
    "epoc_threshold_detection": 0.25,
    "epoc_threshold_counting": 0.15,
    "epoc_area_ratio": 0.2,
    "area_factor": 0.8,
    "region_split": 4,
}


def _nearest_index(out_size: int, in_size: int) -> np.ndarray:
    """Source indices of PyTorch's legacy ``nearest`` resize from ``in_size`` to ``out_size``.

    ``src = min(floor(dst * (float32(in) / out)), in - 1)`` computed in float32, as
    ``F.interpolate(mode="nearest")`` does (the ``2x`` and identity shortcuts give the same).
    """
    if out_size == in_size:
        return np.arange(out_size, dtype=np.intp)
    scale = np.float32(in_size) / np.float32(out_size)
    src = np.floor(np.arange(out_size, dtype=np.float32) * scale).astype(np.intp)
    return np.minimum(src, in_size - 1)


def _resize_nearest(a: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """Legacy-nearest resize of the last two axes of ``a`` to ``hw`` (bit-identical to torch)."""
    rows = _nearest_index(hw[0], a.shape[-2])
    cols = _nearest_index(hw[1], a.shape[-1])
    return np.ascontiguousarray(a[..., rows[:, None], cols[None, :]])


def _check_sentence(sentence: Any) -> str:
    if not isinstance(sentence, str):
        raise TypeError(
            f"sentence must be a str (a referring expression such as 'the airplane on the "
            f"right'), got {type(sentence).__name__}: {sentence!r}"
        )
    if not sentence.strip():
        raise ValueError("sentence is empty; give a referring expression such as 'the white ship'")
    return sentence


def _check_classnames(classnames: Any) -> tuple[str, ...]:
    if isinstance(classnames, str):
        raise TypeError(
            f"classnames must be a list of str, got the single str {classnames!r}; "
            f"wrap it in a list: [{classnames!r}]"
        )
    if isinstance(classnames, (set, frozenset)):
        raise TypeError("classnames must be an ordered list or tuple of str, not a set")
    if not isinstance(classnames, Sequence):
        raise TypeError(
            f"classnames must be a list or tuple of str, got {type(classnames).__name__}"
        )
    names = tuple(classnames)
    if not names:
        raise ValueError("classnames is empty; give at least one class name, e.g. ['airplane']")
    for i, name in enumerate(names):
        if not isinstance(name, str):
            raise TypeError(f"classnames[{i}] must be a str, got {type(name).__name__}: {name!r}")
        if not name.strip():
            raise ValueError(f"classnames[{i}] is an empty string")
    seen: dict[str, int] = {}
    for i, name in enumerate(names):
        if name in seen:
            raise ValueError(
                f"classnames has {name!r} twice (positions {seen[name]} and {i}); give each class once"
            )
        seen[name] = i
    return names


def _check_box_type(box_type: Any) -> str:
    if box_type not in _BOX_TYPES:
        raise ValueError(
            f"unknown box_type {box_type!r}; expected 'hbb' (horizontal xyxy) or 'obb' "
            "(oriented 4-point polygon)"
        )
    return box_type


def _check_unit(name: str, value: Any, *, low: float = 0.0, high: float = 1.0) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not (low <= value <= high):
        raise ValueError(f"{name} must be a number in [{low}, {high}], got {value!r}")
    return float(value)


def _cat(parts: list[Any]) -> Any:
    """Concatenate cached per-sentence text features along the batch axis (tensor/tuple/dict)."""
    first = parts[0]
    if isinstance(first, torch.Tensor):
        return torch.cat(parts, dim=0)
    if isinstance(first, (tuple, list)):
        return type(first)(_cat([p[i] for p in parts]) for i in range(len(first)))
    if isinstance(first, Mapping):
        return {k: _cat([p[k] for p in parts]) for k in first}
    raise TypeError(
        f"net.encode_text returned {type(first).__name__}; expected a tensor, tuple or dict of tensors"
    )


class _Outputs:
    """Per-prompt network outputs at network resolution, on the CPU.

    Attributes:
        mask_net: ``(K, S, S)`` uint8 argmax (tie -> 0).
        prob_net: ``(K, S, S)`` float32 ``softmax[:, 1]``.
    """

    __slots__ = ("mask_net", "prob_net")

    def __init__(self, mask_net: np.ndarray, prob_net: np.ndarray) -> None:
        self.mask_net = mask_net
        self.prob_net = prob_net


class RemoteSAM:
    """Eight remote-sensing tasks from one referring-segmentation network.

    Args:
        net: the network, ``net(image (B,3,S,S) float32, input_ids (B,L) int64,
            attention_mask (B,L) int64, text_features=None) -> logits (B,2,S,S)``; optionally
            ``net.encode_text(input_ids, attention_mask)`` (then text features of repeated prompts
            are cached) and ``net.config`` (``img_size``, ``max_tokens``, ``image_mean``,
            ``image_std``). It is moved to ``device`` and put in eval mode.
        device: torch device for the network (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ...).
        precision: ``"fp32"`` or ``"bf16"`` (``torch.autocast``; no fp16: 400x slower on CPU).
        batch_size: number of prompts per forward pass. Results do not depend on it.
        image_size: network input side ``S``; required only when ``net`` has no ``config``.
        tokenizer: a :class:`~remotesam.text.Tokenizer` to share; built once otherwise.
        epoc_model: optional EPOC boundary model: a local DirectSAM model directory (loaded with
            :func:`remotesam.postprocess.load_boundary_model`, i.e.
            ``transformers.AutoModelForSemanticSegmentation`` from local files, never a hub) or
            an already loaded ``BoundaryModel``. When given, detection, counting and captioning
            use EPOC unless called with ``epoc=False``.
        text_cache_size: number of prompts whose text features are kept on ``device``.

    Every task method accepts ``image`` as an ``(H, W, 3)`` uint8 RGB array, a PIL image or a file
    path (see :func:`remotesam.image.load_image` for RGBA/grayscale/16-bit rules) and returns a
    frozen dataclass from :mod:`remotesam.types`. Not thread-safe (use one instance per thread).

    Raises:
        TypeError: ``net`` is not an ``nn.Module``.
        ValueError: unknown ``precision`` or ``device``, bad ``batch_size``/``image_size``,
            missing image size, tokenizer length different from the network's.
    """

    def __init__(
        self,
        net: nn.Module,
        *,
        device: str | torch.device = "cpu",
        precision: str = "fp32",
        batch_size: int = 8,
        image_size: int | None = None,
        tokenizer: Tokenizer | None = None,
        epoc_model: str | os.PathLike[str] | BoundaryModel | None = None,
        text_cache_size: int = 256,
    ) -> None:
        if not isinstance(net, nn.Module):
            raise TypeError(f"net must be a torch.nn.Module, got {type(net).__name__}")
        if precision not in _PRECISIONS:
            raise ValueError(
                f"unknown precision {precision!r}; expected one of {sorted(_PRECISIONS)} "
                "(fp16 is not offered: it is about 400x slower on CPU; use bf16)"
            )
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        config = getattr(net, "config", None)
        size = image_size if image_size is not None else getattr(config, "img_size", None)
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ValueError(
                f"cannot tell the network input size (got {size!r}): pass image_size=S or give "
                "the network a config with img_size"
            )
        try:
            self.device = torch.device(device)
        except (RuntimeError, TypeError) as e:
            raise ValueError(
                f"unknown device {device!r}: {e}; use e.g. 'cpu', 'cuda' or 'cuda:1'"
            ) from None
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(
                f"device {device!r} requested but CUDA is not available here; use device='cpu'"
            )
        self.precision = precision
        self.batch_size = batch_size
        self.image_size = size
        self.image_mean = tuple(getattr(config, "image_mean", IMAGENET_MEAN))
        self.image_std = tuple(getattr(config, "image_std", IMAGENET_STD))
        max_tokens = int(getattr(config, "max_tokens", 20))
        if tokenizer is None:
            tokenizer = Tokenizer(max_tokens=max_tokens)
        elif tokenizer.max_tokens != max_tokens:
            raise ValueError(
                f"tokenizer encodes {tokenizer.max_tokens} tokens but the network expects {max_tokens}"
            )
        self.tokenizer = tokenizer
        self.net = net.to(self.device).eval()
        self._has_encode_text = callable(getattr(net, "encode_text", None))
        self._text_cache: OrderedDict[str, Any] = OrderedDict()
        self._text_cache_size = max(int(text_cache_size), 0)
        self._epoc_name: str | None = None
        self.epoc_model: BoundaryModel | None = None
        if epoc_model is not None:
            self._load_epoc(epoc_model)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_checkpoint(
        cls,
        path: str | os.PathLike[str],
        config: Any = None,
        *,
        device: str | torch.device = "cpu",
        precision: str = "fp32",
        **kwargs: Any,
    ) -> RemoteSAM:
        """Load a checkpoint with :func:`remotesam.checkpoint.load_checkpoint` and wrap it.

        Args:
            path: an official ``.pth`` (``{'model': state_dict}``), a plain state dict or a
                safetensors file; or a Hugging Face Hub URI
                ``hf://OWNER/REPO/FILE[@REVISION]`` (e.g. ``hf://1e12Leon/RemoteSAM/checkpoint.pth``),
                fetched through huggingface_hub's cache (``HF_HUB_OFFLINE=1``: cache only).
            config: a config name or :class:`~remotesam.model.RemoteSAMConfig`; inferred from the
                weights when ``None``.
            device, precision, **kwargs: as for :class:`RemoteSAM`.

        Raises:
            FileNotFoundError: ``path`` does not exist.
            remotesam.hub.HubError: an ``hf://`` URI that cannot be resolved (the message says
                which repository, file and revision, and what to do).
            remotesam.checkpoint.CheckpointError: not a (compatible) checkpoint.
        """
        from remotesam.checkpoint import load_checkpoint

        net = load_checkpoint(path, config=config, map_location="cpu")
        return cls(net, device=device, precision=precision, **kwargs)

    def _load_epoc(self, model: Any) -> None:
        from remotesam.postprocess import BoundaryModel, load_boundary_model

        if isinstance(model, BoundaryModel):
            self.epoc_model = model
            self._epoc_name = Path(model.source).name if model.source else "BoundaryModel"
            return
        if not isinstance(model, (str, os.PathLike)):
            raise TypeError(
                "epoc_model must be a local DirectSAM model directory (str or path) or a "
                f"BoundaryModel from remotesam.postprocess.load_boundary_model, got {type(model).__name__}"
            )
        path = Path(model)
        self.epoc_model = load_boundary_model(path, device=str(self.device))
        self._epoc_name = path.name

    def __repr__(self) -> str:
        return (
            f"RemoteSAM(net={type(self.net).__name__}, device={str(self.device)!r}, "
            f"precision={self.precision!r}, image_size={self.image_size}, "
            f"batch_size={self.batch_size}, epoc={self._epoc_name!r})"
        )

    def settings(self) -> dict[str, Any]:
        """Settings that affect outputs (for a prediction cache key); JSON-able.

        Keys: ``precision``, ``image_size``, ``max_tokens``, ``image_mean``, ``image_std``,
        ``epoc_model`` (name or ``None``) and ``defaults`` (the official thresholds/factors that
        the task methods use unless told otherwise). ``batch_size`` and ``device`` are not
        included: results do not depend on the batch size, and a device change is a numerical
        (not a semantic) difference.
        """
        return {
            "precision": self.precision,
            "image_size": self.image_size,
            "max_tokens": self.tokenizer.max_tokens,
            "image_mean": list(self.image_mean),
            "image_std": list(self.image_std),
            "epoc_model": self._epoc_name,
            "defaults": dict(DEFAULTS),
        }

    # ------------------------------------------------------------------ core
    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        dtype = _PRECISIONS[self.precision]
        if dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=dtype)

    def _prepare(self, image: ImageInput) -> tuple[np.ndarray, torch.Tensor]:
        """Load the image; return the RGB array and the ``(1, 3, S, S)`` input on the device."""
        rgb = load_image(image)
        x = normalize(resize_image(rgb, self.image_size), self.image_mean, self.image_std)
        return rgb, x.to(self.device)

    def _text_features(self, sentences: Sequence[str], ids: torch.Tensor, mask: torch.Tensor) -> Any:
        parts = []
        for i, s in enumerate(sentences):
            feats = self._text_cache.get(s)
            if feats is None:
                feats = self.net.encode_text(ids[i : i + 1], mask[i : i + 1])
                if self._text_cache_size:
                    self._text_cache[s] = feats
                    while len(self._text_cache) > self._text_cache_size:
                        self._text_cache.popitem(last=False)
            else:
                self._text_cache.move_to_end(s)
            parts.append(feats)
        return _cat(parts)

    def _iter_forward(self, x: torch.Tensor, sentences: Sequence[str]) -> Iterator[_Outputs]:
        """Run the network on one image and every sentence, ``batch_size`` prompts per pass.

        Yields one :class:`_Outputs` per chunk of at most ``batch_size`` sentences, in order.
        """
        s = self.image_size
        for start in range(0, len(sentences), self.batch_size):
            chunk = sentences[start : start + self.batch_size]
            b = len(chunk)
            # The grad/autocast modes are entered per chunk, never held across a ``yield``: the
            # caller's code between chunks must run in its own modes.
            with torch.inference_mode():
                ids, mask = self.tokenizer.encode(chunk)
                ids, mask = ids.to(self.device), mask.to(self.device)
                images = x.expand(b, -1, -1, -1).contiguous()
                with self._autocast():
                    if self._has_encode_text:
                        feats = self._text_features(chunk, ids, mask)
                        logits = self.net(images, ids, mask, text_features=feats)
                    else:
                        logits = self.net(images, ids, mask)
                if not isinstance(logits, torch.Tensor) or tuple(logits.shape) != (b, 2, s, s):
                    found = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
                    raise RuntimeError(
                        f"the network returned {found}; expected logits of shape ({b}, 2, {s}, {s})"
                    )
                logits = logits.float()
                # argmax over 2 classes with ties to background == strict comparison.
                fg = (logits[:, 1] > logits[:, 0]).to(torch.uint8).cpu().numpy()
                prob = torch.softmax(logits, dim=1)[:, 1].contiguous().cpu().numpy()
            yield _Outputs(fg, prob)

    def _forward(self, x: torch.Tensor, sentences: Sequence[str]) -> _Outputs:
        outs = list(self._iter_forward(x, sentences))
        if len(outs) == 1:
            return outs[0]
        return _Outputs(
            np.concatenate([o.mask_net for o in outs]), np.concatenate([o.prob_net for o in outs])
        )

    def _per_prompt(
        self, x: torch.Tensor, sentences: Sequence[str]
    ) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
        """``(k, mask_net (S,S) uint8, prob_net (S,S) float32)`` for each sentence, in order."""
        k = 0
        for out in self._iter_forward(x, sentences):
            for j in range(out.mask_net.shape[0]):
                yield k, out.mask_net[j], out.prob_net[j]
                k += 1

    @staticmethod
    def _pooled_scores(prob_net: np.ndarray, factor: float) -> float:
        # factor * GMP + (1 - factor) * GAP of the network-resolution probability map, in float64
        # (the max is exact; the mean is accumulated in float64 so it does not depend on threads).
        gmp = float(prob_net.max())
        gap = float(prob_net.mean(dtype=np.float64))
        return factor * gmp + (1.0 - factor) * gap

    def _use_epoc(self, epoc: bool | None) -> bool:
        if epoc is None:
            return self.epoc_model is not None
        if epoc and self.epoc_model is None:
            raise ValueError(
                "epoc=True needs an EPOC boundary model: build RemoteSAM(..., epoc_model="
                "'path/to/DirectSAM-directory')"
            )
        return bool(epoc)

    def _boundary(self, rgb: np.ndarray) -> np.ndarray:
        from remotesam.postprocess import boundary_map

        with torch.inference_mode():
            return boundary_map(self.epoc_model, rgb)

    def _referring_masks(
        self, image: ImageInput, sentences: Sequence[str]
    ) -> tuple[_Outputs, np.ndarray, np.ndarray]:
        """Network outputs for ``sentences`` plus their masks and probabilities resized to the
        image (legacy nearest): ``(outputs, (K, H, W) uint8, (K, H, W) float32)``."""
        rgb, x = self._prepare(image)
        out = self._forward(x, sentences)
        hw = rgb.shape[:2]
        return out, _resize_nearest(out.mask_net, hw), _resize_nearest(out.prob_net, hw)

    def _detect(
        self,
        image: ImageInput,
        names: tuple[str, ...],
        *,
        template: str,
        box_type: str,
        epoc: bool | None,
        epoc_threshold: float,
        epoc_area_ratio: float,
        conf_threshold: float,
        nms_iou: float,
        remove_inner: bool,
    ) -> tuple[np.ndarray, Detections]:
        """Validate the post-processing arguments, load ``image`` and detect ``names`` in it.

        Returns the RGB image ``(H, W, 3)`` uint8 and the detections (see :meth:`detection`).
        """
        from remotesam.postprocess import masks_to_boxes, nms

        use_epoc = self._use_epoc(epoc)
        rgb, x = self._prepare(image)
        epoc_threshold = _check_unit("epoc_threshold", epoc_threshold)
        epoc_area_ratio = _check_unit("epoc_area_ratio", epoc_area_ratio)
        conf_threshold = _check_unit("conf_threshold", conf_threshold)
        nms_iou = _check_unit("nms_iou", nms_iou)
        remove_inner = bool(remove_inner)
        hw = (int(rgb.shape[0]), int(rgb.shape[1]))
        boundary = self._boundary(rgb) if use_epoc else None
        ncol = 4 if box_type == "hbb" else 8
        all_boxes, all_scores, all_labels = [], [], []
        sentences = [prompt(n, template) for n in names]
        for k, mask_net, prob_net in self._per_prompt(x, sentences):
            mask = _resize_nearest(mask_net, hw)
            prob = _resize_nearest(prob_net, hw)
            refined = None
            if boundary is not None:
                from remotesam.postprocess import epoc_refine

                refined = epoc_refine(mask, boundary, epoc_threshold, area_ratio=epoc_area_ratio)
            rows = np.asarray(
                masks_to_boxes(
                    mask, prob, box_type=box_type, conf_threshold=conf_threshold,
                    remove_inner=remove_inner, new_mask=refined,
                ),
                dtype=np.float64,
            ).reshape(-1, ncol + 1)
            if rows.shape[0] == 0:
                continue
            if box_type == "hbb":
                nms_boxes = rows[:, :4]
            else:
                # The official code defines no NMS for polygons (nothing calls M2B with obb); we
                # suppress on each polygon's axis-aligned envelope.
                xs, ys = rows[:, 0:8:2], rows[:, 1:8:2]
                nms_boxes = np.stack([xs.min(1), ys.min(1), xs.max(1), ys.max(1)], axis=1)
            keep = np.asarray(nms(nms_boxes, rows[:, ncol], iou_threshold=nms_iou), dtype=np.intp)
            rows = rows[keep]
            rows = rows[np.argsort(-rows[:, ncol], kind="stable")]
            all_boxes.append(rows[:, :ncol])
            all_scores.append(rows[:, ncol])
            all_labels.append(np.full(rows.shape[0], k, dtype=np.int64))
        return rgb, Detections(
            classnames=names,
            box_type=box_type,
            boxes=np.concatenate(all_boxes) if all_boxes else np.zeros((0, ncol), np.float64),
            scores=np.concatenate(all_scores) if all_scores else np.zeros(0, np.float64),
            labels=np.concatenate(all_labels) if all_labels else np.zeros(0, np.int64),
        )

    # ------------------------------------------------------------------ tasks
    def referring_seg(self, image: ImageInput, sentence: str) -> ReferringMask:
        """Segment what ``sentence`` refers to.

        Returns:
            :class:`~remotesam.types.ReferringMask`: ``mask`` ``(H, W)`` uint8 and ``prob``
            ``(H, W)`` float32 at the original size (legacy nearest), plus ``mask_net`` /
            ``prob_net`` ``(S, S)`` at network resolution.

        Raises:
            TypeError: ``sentence`` is not a str; bad image type/dtype.
            ValueError: empty ``sentence``; bad image shape. FileNotFoundError: missing image file.
        """
        sentence = _check_sentence(sentence)
        out, mask, prob = self._referring_masks(image, [sentence])
        return ReferringMask(mask=mask[0], prob=prob[0], mask_net=out.mask_net[0], prob_net=out.prob_net[0])

    def semantic_seg(
        self, image: ImageInput, classnames: Sequence[str], *, template: str = DEFAULT_TEMPLATE
    ) -> SemanticMasks:
        """One referring mask per class prompt, merged into a label map.

        Args:
            image: the image.
            classnames: K distinct class names; prompt = ``template.format(name)``.
            template: prompt template (the official SEG evaluation uses ``"{} in the image."``).

        Returns:
            :class:`~remotesam.types.SemanticMasks` (``masks``/``probs`` ``(K, H, W)``,
            ``label_map`` ``(H, W)`` int64 with 0 = background and ``k + 1`` = class k; where
            classes overlap the higher index wins, as the official ``np.maximum.reduce``).

        Raises:
            TypeError/ValueError: empty or non-str class names, duplicate names, bad template,
            bad image.
        """
        names = _check_classnames(classnames)
        out, masks, probs = self._referring_masks(image, [prompt(n, template) for n in names])
        ids = np.arange(1, len(names) + 1, dtype=np.int64)[:, None, None]
        label_net = (out.mask_net.astype(np.int64) * ids).max(axis=0)
        label = (masks.astype(np.int64) * ids).max(axis=0)
        return SemanticMasks(
            classnames=names, masks=masks, probs=probs, label_map=label, label_map_net=label_net
        )

    def detection(
        self,
        image: ImageInput,
        classnames: Sequence[str],
        box_type: str = "hbb",
        *,
        template: str = DEFAULT_TEMPLATE,
        epoc: bool | None = None,
        epoc_threshold: float = DEFAULTS["epoc_threshold_detection"],
        epoc_area_ratio: float = DEFAULTS["epoc_area_ratio"],
        conf_threshold: float = DEFAULTS["conf_threshold"],
        nms_iou: float = DEFAULTS["nms_iou"],
        remove_inner: bool = DEFAULTS["remove_inner"],
    ) -> Detections:
        """Boxes of every queried class: mask-to-box per class, NMS, ordered by score.

        Args:
            image: the image.
            classnames: K distinct class names.
            box_type: ``"hbb"`` (``[x1, y1, x2, y2]``, right/bottom exclusive) or ``"obb"``
                (``[x0, y0, ..., x3, y3]`` polygon, ``cv2.boxPoints`` order, truncated).
            template: prompt template.
            epoc: refine masks with the EPOC boundary model (default: when one was given).
            epoc_threshold: boundary probability above which pixels are cut (official 0.25).
            epoc_area_ratio: keep sub-components above this fraction of the largest in their
                parent component (official 0.2).
            conf_threshold: drop components whose mean probability is below this (official 0.01).
            nms_iou: IoU threshold of the per-class NMS (official 0.5). For ``"obb"`` the IoU is
                that of the polygons' axis-aligned envelopes (the official code has no obb NMS).
            remove_inner: drop boxes lying inside another box of the same class (official True).

        Returns:
            :class:`~remotesam.types.Detections` in original-image pixel coordinates; within a
            class, rows ordered by descending score; classes in ``classnames`` order.

        Raises:
            ValueError: unknown ``box_type``, ``epoc=True`` without a model, bad thresholds,
                bad class names. TypeError: non-str class names, bad image.
        """
        names = _check_classnames(classnames)
        box_type = _check_box_type(box_type)
        return self._detect(
            image, names, template=template, box_type=box_type, epoc=epoc,
            epoc_threshold=epoc_threshold, epoc_area_ratio=epoc_area_ratio,
            conf_threshold=conf_threshold, nms_iou=nms_iou, remove_inner=remove_inner,
        )[1]  # fmt: skip

    def visual_grounding(
        self,
        image: ImageInput,
        sentence: str,
        *,
        conf_threshold: float = DEFAULTS["conf_threshold"],
        remove_inner: bool = DEFAULTS["remove_inner"],
    ) -> Grounding:
        """One box for a referring expression: the union of the mask's component boxes.

        Returns:
            :class:`~remotesam.types.Grounding`: ``box`` ``(4,)`` float64 xyxy
            ``[min x1, min y1, max x2, max y2]`` over the mask-to-box boxes (no EPOC, no NMS, as
            the official VG), ``score`` their mean confidence; ``box=None``, ``score=nan`` when
            the mask is empty.

        Raises:
            TypeError: ``sentence`` is not a str. ValueError: empty sentence, bad image.
        """
        from remotesam.postprocess import masks_to_boxes

        sentence = _check_sentence(sentence)
        conf_threshold = _check_unit("conf_threshold", conf_threshold)
        _, masks, probs = self._referring_masks(image, [sentence])
        rows = np.asarray(
            masks_to_boxes(masks[0], probs[0], box_type="hbb", conf_threshold=conf_threshold,
                           remove_inner=bool(remove_inner)),
            dtype=np.float64,
        ).reshape(-1, 5)
        if rows.shape[0] == 0:
            return Grounding(box=None, score=math.nan)
        box = np.array(
            [rows[:, 0].min(), rows[:, 1].min(), rows[:, 2].max(), rows[:, 3].max()], dtype=np.float64
        )
        return Grounding(box=box, score=float(rows[:, 4].mean()))

    def _class_scores(
        self, image: ImageInput, names: tuple[str, ...], template: str, factor: float
    ) -> np.ndarray:
        sentences = [prompt(n, template) for n in names]
        _, x = self._prepare(image)
        scores = np.empty(len(names), dtype=np.float64)
        for k, _mask, prob_net in self._per_prompt(x, sentences):
            scores[k] = self._pooled_scores(prob_net, factor)
        return scores

    def multi_label_cls(
        self,
        image: ImageInput,
        classnames: Sequence[str],
        *,
        template: str = DEFAULT_TEMPLATE,
        factor: float = DEFAULTS["mlc_factor"],
        threshold: float = DEFAULTS["mlc_threshold"],
    ) -> MultiLabelResult:
        """Which classes are present: ``factor*max + (1-factor)*mean > threshold``.

        The pooled probability map is the ``(S, S)`` one at network resolution (official).

        Returns:
            :class:`~remotesam.types.MultiLabelResult` (``scores`` ``(K,)`` float64; ``labels`` the
            names scoring strictly above ``threshold``, in ``classnames`` order).

        Raises:
            TypeError/ValueError: bad class names, template, factor or image.
        """
        names = _check_classnames(classnames)
        factor = _check_unit("factor", factor)
        threshold = _check_unit("threshold", threshold)
        scores = self._class_scores(image, names, template, factor)
        labels = tuple(n for n, s in zip(names, scores) if s > threshold)
        return MultiLabelResult(classnames=names, scores=scores, labels=labels)

    def multi_class_cls(
        self,
        image: ImageInput,
        classnames: Sequence[str],
        *,
        template: str = DEFAULT_TEMPLATE,
        factor: float = DEFAULTS["mcc_factor"],
        floor: float = DEFAULTS["mcc_floor"],
    ) -> MultiClassResult:
        """The one scene class: argmax of ``factor*max + (1-factor)*mean``, or None below ``floor``.

        The official code's ``MCC_balance_factor = 1.0`` is pure max pooling (the paper's Eq. 3
        with lambda = 1 would be pure mean; see PROTOCOLS.md 2.6). Ties go to the first class.

        Returns:
            :class:`~remotesam.types.MultiClassResult` (``label`` is ``None`` when the best score
            is ``< floor``).

        Raises:
            TypeError/ValueError: bad class names, template, factor or image.
        """
        names = _check_classnames(classnames)
        factor = _check_unit("factor", factor)
        floor = _check_unit("floor", floor)
        scores = self._class_scores(image, names, template, factor)
        best = int(np.argmax(scores))
        label = None if scores[best] < floor else names[best]
        return MultiClassResult(classnames=names, scores=scores, label=label)

    def counting(
        self,
        image: ImageInput,
        classnames: Sequence[str],
        *,
        template: str = DEFAULT_TEMPLATE,
        prior_areas: Mapping[str, float] | None = None,
        area_factor: float = DEFAULTS["area_factor"],
        epoc: bool | None = None,
        epoc_threshold: float = DEFAULTS["epoc_threshold_counting"],
        epoc_area_ratio: float = DEFAULTS["epoc_area_ratio"],
        conf_threshold: float = DEFAULTS["conf_threshold"],
        nms_iou: float = DEFAULTS["nms_iou"],
    ) -> Counts:
        """Count objects per class = number of detected (horizontal) boxes.

        Args:
            prior_areas: optional per-class prior box area in pixels (the official CNT protocol's
                ``prior_area_info``); a box counts only if ``(x2-x1)*(y2-y1) > prior *
                area_factor``. Every queried class must have a prior when this is given.
            area_factor: official 0.8.
            epoc_threshold: official 0.15 for counting.
            Other arguments as for :meth:`detection`.

        Returns:
            :class:`~remotesam.types.Counts`.

        Raises:
            ValueError: a class without prior, a negative prior, bad thresholds or class names.
        """
        names = _check_classnames(classnames)
        if prior_areas is not None:
            if not isinstance(prior_areas, Mapping):
                raise TypeError(
                    f"prior_areas must be a mapping class name -> area, got {type(prior_areas).__name__}"
                )
            missing = [n for n in names if n not in prior_areas]
            if missing:
                raise ValueError(
                    f"prior_areas has no entry for {missing}; give a prior area (pixels) for every "
                    "queried class or pass prior_areas=None"
                )
            for n in names:
                v = prior_areas[n]
                if isinstance(v, bool) or not isinstance(v, numbers.Real) or not v >= 0:
                    raise ValueError(f"prior_areas[{n!r}] must be a non-negative number, got {v!r}")
        if isinstance(area_factor, bool) or not isinstance(area_factor, numbers.Real) or not area_factor >= 0:
            raise ValueError(f"area_factor must be a non-negative number, got {area_factor!r}")
        _, dets = self._detect(
            image, names, template=template, box_type="hbb", epoc=epoc,
            epoc_threshold=epoc_threshold, epoc_area_ratio=epoc_area_ratio,
            conf_threshold=conf_threshold, nms_iou=nms_iou, remove_inner=True,
        )  # fmt: skip
        counts: dict[str, int] = {}
        for k, name in enumerate(names):
            boxes = dets.boxes[dets.labels == k]
            if prior_areas is not None:
                area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
                boxes = boxes[area > float(prior_areas[name]) * float(area_factor)]
            counts[name] = int(boxes.shape[0])
        return Counts(classnames=names, counts=counts)

    def captioning(
        self,
        image: ImageInput,
        classnames: Sequence[str],
        region_split: int = DEFAULTS["region_split"],
        seed: int = 0,
        *,
        template: str = DEFAULT_TEMPLATE,
        template_index: int | None = None,
        epoc: bool | None = None,
        epoc_threshold: float = DEFAULTS["epoc_threshold_detection"],
        epoc_area_ratio: float = DEFAULTS["epoc_area_ratio"],
        conf_threshold: float = DEFAULTS["conf_threshold"],
        nms_iou: float = DEFAULTS["nms_iou"],
    ) -> Caption:
        """Rule-based caption from horizontal detections (existence + distribution sentences).

        Args:
            classnames: the vocabulary to detect (the official CAP uses 37 "potential classes").
            region_split: 4 (2x2 regions, the official evaluation) or 9 (3x3, README/paper).
            seed: seeds the sentence-template choice (the official code uses an unseeded
                ``random.choice``); the same call gives the same caption.
            template_index: force template ``t % len(templates)`` for every sentence instead of
                a seeded random choice (the golden data's chooser); overrides ``seed``.
            template: prompt template. Other arguments as for :meth:`detection`.

        Returns:
            :class:`~remotesam.types.Caption` (text and the detections it was built from).

        Raises:
            ValueError: ``region_split`` not 4 or 9, bad class names; TypeError: ``seed`` or
                ``template_index`` not an int.
        """
        from remotesam.postprocess import build_caption, fixed_chooser, seeded_chooser

        names = _check_classnames(classnames)
        if region_split not in _REGION_SPLITS or isinstance(region_split, bool):
            raise ValueError(f"region_split must be 4 (2x2) or 9 (3x3), got {region_split!r}")
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise TypeError(f"seed must be an int, got {type(seed).__name__}: {seed!r}")
        if template_index is not None and (
            isinstance(template_index, bool) or not isinstance(template_index, int) or template_index < 0
        ):
            raise TypeError(f"template_index must be a non-negative int or None, got {template_index!r}")
        rgb, dets = self._detect(
            image, names, template=template, box_type="hbb", epoc=epoc,
            epoc_threshold=epoc_threshold, epoc_area_ratio=epoc_area_ratio,
            conf_threshold=conf_threshold, nms_iou=nms_iou, remove_inner=True,
        )  # fmt: skip
        pred = {
            name: np.column_stack([dets.boxes[dets.labels == k], dets.scores[dets.labels == k]]).tolist()
            for k, name in enumerate(names)
        }
        choose = fixed_chooser(template_index) if template_index is not None else seeded_chooser(seed)
        text = build_caption(pred, (int(rgb.shape[0]), int(rgb.shape[1])), region_split, choose)
        return Caption(text=text, detections=dets)
