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

import numbers
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import torch
from torch import nn

from remotesam import reduce as _reduce
from remotesam.engine import Answer, Engine, Request, nearest_index
from remotesam.image import IMAGENET_MEAN, IMAGENET_STD, ImageInput
from remotesam.precision import resolve_precision
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


#: Source indices of the legacy-nearest resize (see :func:`remotesam.engine.nearest_index`).
_nearest_index = nearest_index


def _resize_nearest(a: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """Legacy-nearest resize of the last two axes of ``a`` to ``hw`` (bit-identical to torch)."""
    rows = nearest_index(hw[0], a.shape[-2])
    cols = nearest_index(hw[1], a.shape[-1])
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
                f"classnames has {name!r} twice (positions {seen[name]} and {i}); give each class "
                "once"
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
    # a Real compares with floats (typeshed's numbers.Real declares no float comparison)
    if isinstance(value, bool) or not isinstance(value, numbers.Real) \
            or not (low <= cast(float, value) <= high):
        raise ValueError(f"{name} must be a number in [{low}, {high}], got {value!r}")
    return float(value)


class RemoteSAM:
    """Eight remote-sensing tasks from one referring-segmentation network.

    Args:
        net: the network, ``net(image (B,3,S,S) float32, input_ids (B,L) int64,
            attention_mask (B,L) int64, text_features=None) -> logits (B,2,S,S)``; optionally
            ``net.encode_text(input_ids, attention_mask)`` (then text features of repeated prompts
            are cached) and ``net.config`` (``img_size``, ``max_tokens``, ``image_mean``,
            ``image_std``). It is moved to ``device`` and put in eval mode.
        device: torch device for the network (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ...).
        precision: ``"fp32"``, ``"bf16"`` (``torch.autocast``) or ``"fp16"`` (autocast, CUDA
            only: refused on CPU, where it is hundreds of times slower).
        batch_size: number of image-prompt items per forward pass. Results do not depend on it
            beyond the last bits of the logits (CPU kernels may differ with the batch size).
        image_size: network input side ``S``; required only when ``net`` has no ``config``.
        tokenizer: a :class:`~remotesam.text.Tokenizer` to share; built once otherwise.
        epoc_model: optional EPOC boundary model: a local DirectSAM model directory (loaded with
            :func:`remotesam.postprocess.load_boundary_model`, i.e.
            ``transformers.AutoModelForSemanticSegmentation`` from local files, never a hub) or
            an already loaded ``BoundaryModel``. When given, detection, counting and captioning
            use EPOC unless called with ``epoc=False``.
        text_cache_size: number of prompts whose text features are kept on ``device``.
        prefetch_workers: threads that load and resize images ahead of the network in
            :meth:`Engine.run <remotesam.engine.Engine.run>` (the benchmark harness's path).

    Every task method accepts ``image`` as an ``(H, W, 3)`` uint8 RGB array, a PIL image or a file
    path (see :func:`remotesam.image.load_image` for RGBA/grayscale/16-bit rules) and returns a
    frozen dataclass from :mod:`remotesam.types`. Not thread-safe (use one instance per thread).
    Every method is a :class:`~remotesam.engine.Request` answered by :attr:`engine` (the same
    engine the benchmark harness streams whole datasets through) and reduced to the task's
    result by :mod:`remotesam.reduce`.

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
        prefetch_workers: int = 2,
    ) -> None:
        if not isinstance(net, nn.Module):
            raise TypeError(f"net must be a torch.nn.Module, got {type(net).__name__}")
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
        precision = resolve_precision(precision, self.device)  # the one precision rule
        self.precision = precision
        self.image_size = size
        self.image_mean = tuple(getattr(config, "image_mean", IMAGENET_MEAN))
        self.image_std = tuple(getattr(config, "image_std", IMAGENET_STD))
        max_tokens = int(getattr(config, "max_tokens", 20))
        if tokenizer is None:
            tokenizer = Tokenizer(max_tokens=max_tokens)
        elif tokenizer.max_tokens != max_tokens:
            raise ValueError(
                f"tokenizer encodes {tokenizer.max_tokens} tokens but the network expects "
                f"{max_tokens}"
            )
        self.tokenizer = tokenizer
        self.net = net.to(self.device).eval()
        self._epoc_name: str | None = None
        self.epoc_model: BoundaryModel | None = None
        if epoc_model is not None:
            self._load_epoc(epoc_model)
        #: The engine that answers every request of this predictor (see :mod:`remotesam.engine`).
        self.engine = Engine(
            self.net, device=self.device, image_size=size, image_mean=self.image_mean,
            image_std=self.image_std, tokenizer=tokenizer, precision=precision,
            batch_size=batch_size, text_cache_size=text_cache_size,
            boundary_fn=self._boundary if self.epoc_model is not None else None,
            prefetch_workers=prefetch_workers,
        )

    @property
    def net(self) -> nn.Module:
        """The network that answers every request. Assigning another one moves it to
        :attr:`device` in eval mode and hands it to :attr:`engine` (whose cached text features
        of the previous network are dropped)."""
        return self._net

    @net.setter
    def net(self, value: nn.Module) -> None:
        if not isinstance(value, nn.Module):
            raise TypeError(f"net must be a torch.nn.Module, got {type(value).__name__}")
        self._net = value.to(self.device).eval()
        engine = self.__dict__.get("engine")
        if engine is not None:
            engine.set_net(self._net)

    @property
    def batch_size(self) -> int:
        """Image-prompt items per forward pass (the engine's)."""
        return self.engine.batch_size

    @batch_size.setter
    def batch_size(self, value: int) -> None:
        self.engine.configure(batch_size=value)

    @property
    def _text_cache(self) -> Any:
        return self.engine._text_cache

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
                ``hf://OWNER/REPO/FILE[@REVISION]``
                (e.g. ``hf://1e12Leon/RemoteSAM/checkpoint.pth``), fetched through
                huggingface_hub's cache (``HF_HUB_OFFLINE=1``: cache only).
            config: a config name or :class:`~remotesam.model.RemoteSAMConfig`; inferred from the
                weights when ``None``.
            device: as for :class:`RemoteSAM`.
            precision: as for :class:`RemoteSAM`.
            **kwargs: as for :class:`RemoteSAM`.

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
                "BoundaryModel from remotesam.postprocess.load_boundary_model, got "
                f"{type(model).__name__}"
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
    def answer(self, request: Request) -> Answer:
        """The dense outputs of one :class:`~remotesam.engine.Request` (see
        :mod:`remotesam.engine`).

        For many requests at once (a dataset), use ``self.engine.run(...)``: it prefetches,
        batches images together and overlaps the caller's work with the next forwards.
        """
        return self.engine.answer(request)

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

        model = self.epoc_model
        if model is None:  # the engine is handed this method only with a boundary model
            raise RuntimeError("no EPOC boundary model is loaded")
        with torch.inference_mode():
            return boundary_map(model, rgb)

    def _referring_answer(self, image: ImageInput, sentences: Sequence[str]) -> Answer:
        return self.engine.answer(Request(image, tuple(sentences),
                                          frozenset({"mask", "prob", "mask_net", "prob_net"})))

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
    ) -> tuple[tuple[int, int], Detections]:
        """Validate the post-processing arguments and detect ``names`` in ``image``.

        Returns the image size ``(H, W)`` and the detections (see :meth:`detection`).
        """
        use_epoc = self._use_epoc(epoc)
        epoc_threshold = _check_unit("epoc_threshold", epoc_threshold)
        epoc_area_ratio = _check_unit("epoc_area_ratio", epoc_area_ratio)
        conf_threshold = _check_unit("conf_threshold", conf_threshold)
        nms_iou = _check_unit("nms_iou", nms_iou)
        ans = self.engine.answer(Request(image, tuple(prompt(n, template) for n in names),
                                         frozenset({"mask", "prob"}), boundary=use_epoc))
        dets = _reduce.detections(
            ans, names, box_type, use_boundary=use_epoc, epoc_threshold=epoc_threshold,
            epoc_area_ratio=epoc_area_ratio, conf_threshold=conf_threshold, nms_iou=nms_iou,
            remove_inner=bool(remove_inner))
        return ans.hw, dets

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
        return _reduce.referring_mask(self._referring_answer(image, [sentence]))

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
        ans = self.engine.answer(Request(image, tuple(prompt(n, template) for n in names),
                                         frozenset({"mask", "prob", "mask_net"})))
        return _reduce.semantic_masks(ans, names)

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
        sentence = _check_sentence(sentence)
        conf_threshold = _check_unit("conf_threshold", conf_threshold)
        ans = self.engine.answer(Request(image, (sentence,), frozenset({"mask", "prob"})))
        return _reduce.grounding(
            ans, conf_threshold=conf_threshold, remove_inner=bool(remove_inner)
        )

    def _pooled(self, image: ImageInput, names: tuple[str, ...], template: str) -> Answer:
        return self.engine.answer(Request(image, tuple(prompt(n, template) for n in names),
                                          frozenset({"pooled"})))

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
        return _reduce.multi_label(self._pooled(image, names, template), names, factor, threshold)

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
        return _reduce.multi_class(self._pooled(image, names, template), names, factor, floor)

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

        Arguments not listed below are as for :meth:`detection`.

        Args:
            prior_areas: optional per-class prior box area in pixels (the official CNT protocol's
                ``prior_area_info``); a box counts only if ``(x2-x1)*(y2-y1) > prior *
                area_factor``. Every queried class must have a prior when this is given.
            area_factor: official 0.8.
            epoc_threshold: official 0.15 for counting.

        Returns:
            :class:`~remotesam.types.Counts`.

        Raises:
            ValueError: a class without prior, a negative prior, bad thresholds or class names.
        """
        names = _check_classnames(classnames)
        if prior_areas is not None:
            if not isinstance(prior_areas, Mapping):
                raise TypeError(
                    "prior_areas must be a mapping class name -> area, got "
                    f"{type(prior_areas).__name__}"
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
        if (
            isinstance(area_factor, bool)
            or not isinstance(area_factor, numbers.Real)
            or not area_factor >= 0
        ):
            raise ValueError(f"area_factor must be a non-negative number, got {area_factor!r}")
        _, dets = self._detect(
            image, names, template=template, box_type="hbb", epoc=epoc,
            epoc_threshold=epoc_threshold, epoc_area_ratio=epoc_area_ratio,
            conf_threshold=conf_threshold, nms_iou=nms_iou, remove_inner=True,
        )  # fmt: skip
        return _reduce.counts(dets, names, prior_areas, float(area_factor))

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
        from remotesam.postprocess import fixed_chooser, seeded_chooser

        names = _check_classnames(classnames)
        if region_split not in _REGION_SPLITS or isinstance(region_split, bool):
            raise ValueError(f"region_split must be 4 (2x2) or 9 (3x3), got {region_split!r}")
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise TypeError(f"seed must be an int, got {type(seed).__name__}: {seed!r}")
        if template_index is not None and (
            isinstance(template_index, bool)
            or not isinstance(template_index, int)
            or template_index < 0
        ):
            raise TypeError(
                f"template_index must be a non-negative int or None, got {template_index!r}"
            )
        hw, dets = self._detect(
            image, names, template=template, box_type="hbb", epoc=epoc,
            epoc_threshold=epoc_threshold, epoc_area_ratio=epoc_area_ratio,
            conf_threshold=conf_threshold, nms_iou=nms_iou, remove_inner=True,
        )  # fmt: skip
        choose = (
            fixed_chooser(template_index) if template_index is not None else seeded_chooser(seed)
        )
        return _reduce.caption(dets, names, hw, region_split, choose)
