"""EPOC: splitting touching objects with a DirectSAM contour map before mask-to-box.

The official pipeline (PROTOCOLS 2.3) runs DirectSAM (a Segformer with one output channel,
``chendelong/DirectSAM-EntitySeg-1024px-0501``) on the image, takes the sigmoid boundary
probability at full resolution (single scale), cuts the contour pixels above a threshold (0.25
for detection and captioning, 0.15 for counting) out of the class mask, and keeps the
8-connected pieces whose area exceeds ``area_ratio`` (0.2) times the largest piece coming from the
same original component. The refined mask then goes to :func:`masks_to_boxes` as ``new_mask``.

Nothing here downloads anything: the boundary model is loaded from a local directory only.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

__all__ = [
    "COUNTING_EPOC_THRESHOLD",
    "DETECTION_EPOC_THRESHOLD",
    "EPOC_AREA_RATIO",
    "BoundaryModel",
    "boundary_map",
    "epoc_refine",
    "load_boundary_model",
]

DETECTION_EPOC_THRESHOLD = 0.25
COUNTING_EPOC_THRESHOLD = 0.15
EPOC_AREA_RATIO = 0.2

# ImageNet statistics, used when the model directory has no preprocessor_config.json.
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


def epoc_refine(
    mask: np.ndarray,
    boundary_prob: np.ndarray,
    threshold: float,
    area_ratio: float = EPOC_AREA_RATIO,
) -> np.ndarray:
    """Cut contours out of a class mask and drop the small pieces (vectorised, O(pixels)).

    1. ``cut = mask & (boundary_prob <= threshold)``: pixels whose boundary probability is above
       ``threshold`` are removed.
    2. The 8-connected components of ``cut`` ("pieces") are grouped by the 8-connected component
       of ``mask`` they lie in (each piece lies in exactly one).
    3. A piece is kept when its area is **strictly greater** than ``area_ratio`` times the area of
       the largest piece of its group (so the largest piece always stays).

    Args:
        mask: ``(H, W)`` uint8 (or bool) 0/1 class mask.
        boundary_prob: ``(H, W)`` floating boundary probabilities in [0, 1]
            (:func:`boundary_map`).
        threshold: boundary probability above which a pixel is cut.
        area_ratio: relative area below which a piece is dropped.

    Returns:
        ``(H, W)`` uint8 0/1 refined mask (a subset of ``mask``).

    Raises:
        ValueError / TypeError: wrong shapes or dtypes, non-finite or out-of-range parameters.
    """
    if not isinstance(mask, np.ndarray) or mask.ndim != 2:
        raise ValueError(
            f"mask must be an (H, W) numpy array, got {type(mask).__name__} "
            f"{getattr(mask, 'shape', '')}"
        )
    if mask.dtype == np.bool_:
        mask = mask.view(np.uint8)
    if mask.dtype != np.uint8 or (mask.size and int(mask.max()) > 1):
        raise ValueError(f"mask must be uint8 0/1 (or bool), got dtype {mask.dtype}")
    if not isinstance(boundary_prob, np.ndarray) or boundary_prob.shape != mask.shape:
        raise ValueError(
            f"boundary_prob must be a numpy array of the mask's shape {mask.shape}, got "
            f"{getattr(boundary_prob, 'shape', type(boundary_prob).__name__)}"
        )
    if not np.issubdtype(boundary_prob.dtype, np.floating):
        raise ValueError(f"boundary_prob must be floating point, got dtype {boundary_prob.dtype}")
    for name, val in (("threshold", threshold), ("area_ratio", area_ratio)):
        if isinstance(val, bool) or not isinstance(val, (int, float, np.number)):
            raise TypeError(f"{name} must be a number, got {val!r}")
        if not np.isfinite(val):
            raise ValueError(f"{name} must be finite, got {val!r}")
    if area_ratio < 0:
        raise ValueError(f"area_ratio must be >= 0, got {area_ratio!r}")

    mask = np.ascontiguousarray(mask)
    cut = (mask.astype(bool) & (boundary_prob <= threshold)).view(np.uint8)
    n_new, new_labels, stats, _ = cv2.connectedComponentsWithStats(
        cut, connectivity=8, ltype=cv2.CV_32S
    )
    if n_new <= 1:
        return np.zeros_like(mask)
    _, old_labels = cv2.connectedComponents(mask, connectivity=8, ltype=cv2.CV_32S)
    fg = cut.ravel().view(np.bool_)
    parent = np.zeros(n_new, dtype=np.int64)
    # every pixel of a piece has the same original component: one scatter gives the parent map
    parent[new_labels.ravel()[fg]] = old_labels.ravel()[fg]
    area = stats[:, cv2.CC_STAT_AREA].astype(np.int64)
    largest = np.zeros(int(parent.max()) + 1, dtype=np.int64)
    np.maximum.at(largest, parent[1:], area[1:])
    keep = area > area_ratio * largest[parent]
    keep[0] = False
    return keep[new_labels].astype(np.uint8)


@dataclass(frozen=True, eq=False)
class BoundaryModel:
    """A DirectSAM-style boundary network with its preprocessing.

    Attributes:
        model: a ``transformers`` semantic-segmentation model with one output channel
            (``num_labels=1``), in eval mode.
        processor: the directory's ``transformers`` image processor
            (``preprocessor_config.json``), or None; when set it prepares the input.
        size_hw: network input ``(height, width)`` used without a processor (bilinear resize).
        mean, std: per-channel normalisation of ``image / 255`` used without a processor.
        source: the directory the model was loaded from (for messages).
    """

    model: Any
    processor: Any
    size_hw: tuple[int, int]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    source: str = ""


def load_boundary_model(path: str | os.PathLike[str], device: str = "cpu") -> BoundaryModel:
    """Load a local DirectSAM directory (``config.json`` + weights); never touches a hub.

    The network is loaded with ``transformers.AutoModelForSemanticSegmentation.from_pretrained``
    (``local_files_only=True``). Preprocessing is the directory's image processor
    (``AutoImageProcessor``, from ``preprocessor_config.json``) when it has one, as the DirectSAM
    release does; otherwise a bilinear resize to the network's ``config.image_size`` (when set,
    else 1024) and ImageNet normalisation.

    Raises:
        FileNotFoundError: the directory or its ``config.json`` is missing.
        ValueError: the model does not have exactly one output channel, or the preprocessor
            config is malformed.
    """
    root = Path(path)
    if not root.is_dir():
        raise FileNotFoundError(
            f"EPOC boundary model directory {str(root)!r} does not exist; download "
            "chendelong/DirectSAM-EntitySeg-1024px-0501 (config.json, model weights, "
            "preprocessor_config.json) to a local folder and pass that folder"
        )
    if not (root / "config.json").is_file():
        raise FileNotFoundError(
            f"EPOC boundary model directory {str(root)!r} has no config.json; it must be a "
            "transformers model folder (config.json + model.safetensors)"
        )
    from transformers import AutoModelForSemanticSegmentation

    model = AutoModelForSemanticSegmentation.from_pretrained(str(root), local_files_only=True)
    model = model.to(device).eval()
    num_labels = int(getattr(model.config, "num_labels", -1))
    if num_labels != 1:
        raise ValueError(
            f"{root / 'config.json'}: a boundary model must have num_labels=1 (one contour "
            f"channel), found num_labels={num_labels}"
        )
    size_hw, mean, std = _preprocessing(root, model.config)
    processor = None
    if (root / "preprocessor_config.json").is_file():
        from transformers import AutoImageProcessor

        processor = AutoImageProcessor.from_pretrained(str(root), local_files_only=True)
    return BoundaryModel(
        model=model, processor=processor, size_hw=size_hw, mean=mean, std=std, source=str(root)
    )


def _preprocessing(
    root: Path, config: Any
) -> tuple[tuple[int, int], tuple[float, float, float], tuple[float, float, float]]:
    import json

    side = int(getattr(config, "image_size", 0) or 1024)
    size_hw = (side, side)
    mean, std = _IMAGENET_MEAN, _IMAGENET_STD
    pp = root / "preprocessor_config.json"
    if pp.is_file():
        try:
            cfg = json.loads(pp.read_text(encoding="utf-8"))
            size = cfg.get("size", {"height": side, "width": side})
            if isinstance(size, dict):
                size_hw = (int(size["height"]), int(size["width"]))
            else:
                size_hw = (int(size), int(size))
            mean = tuple(float(v) for v in cfg.get("image_mean", mean))  # type: ignore[assignment]
            std = tuple(float(v) for v in cfg.get("image_std", std))  # type: ignore[assignment]
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(
                f"{pp}: expected 'size' {{'height', 'width'}}, 'image_mean' and 'image_std' "
                f"fields: {exc}"
            ) from None
        if len(mean) != 3 or len(std) != 3:
            raise ValueError(f"{pp}: image_mean and image_std must have 3 values each")
    return size_hw, mean, std


def boundary_map(model: BoundaryModel, image_rgb_uint8: np.ndarray) -> np.ndarray:
    """Boundary probability of every pixel, single scale, at the image's own resolution.

    The image is prepared by the model's image processor (or resized bilinearly to the input
    size and normalised when there is none), run through the network; the one-channel logits are
    upsampled bilinearly to ``(H, W)`` and passed through a sigmoid.

    Args:
        model: from :func:`load_boundary_model`.
        image_rgb_uint8: ``(H, W, 3)`` uint8 RGB image.

    Returns:
        ``(H, W)`` float32 probabilities in [0, 1].

    Raises:
        TypeError: ``model`` is not a :class:`BoundaryModel`.
        ValueError: the image is not ``(H, W, 3)`` uint8.
    """
    import torch
    import torch.nn.functional as F

    if not isinstance(model, BoundaryModel):
        raise TypeError(
            f"model must be a BoundaryModel from load_boundary_model(), got {type(model).__name__}"
        )
    img = image_rgb_uint8
    if not isinstance(img, np.ndarray) or img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(
            f"image must be an (H, W, 3) RGB numpy array, got "
            f"{type(img).__name__} {getattr(img, 'shape', '')}"
        )
    if img.dtype != np.uint8:
        raise ValueError(f"image must be uint8, got dtype {img.dtype}")
    h, w = img.shape[:2]
    param = next(model.model.parameters())
    with torch.inference_mode():
        if model.processor is not None:
            x = model.processor(images=img, return_tensors="pt")["pixel_values"]
        else:
            x = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)[None].float() / 255.0
            x = F.interpolate(x, size=model.size_hw, mode="bilinear", align_corners=False)
            mean = torch.tensor(model.mean, dtype=x.dtype).view(1, 3, 1, 1)
            std = torch.tensor(model.std, dtype=x.dtype).view(1, 3, 1, 1)
            x = (x - mean) / std
        x = x.to(device=param.device, dtype=param.dtype)
        logits = model.model(pixel_values=x).logits.float()
        logits = F.interpolate(logits[:, :1], size=(h, w), mode="bilinear", align_corners=False)
        prob = torch.sigmoid(logits)[0, 0]
    return prob.cpu().numpy().astype(np.float32)
