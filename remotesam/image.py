"""Image loading and the official RemoteSAM preprocessing.

:func:`load_image` turns whatever a user holds (an RGB array, a PIL image, a file path) into one
canonical form, an ``(H, W, 3)`` uint8 RGB array, and rejects anything ambiguous with a message
that says what was found and what to do. :func:`preprocess` reproduces the official transform
bit for bit: PIL bilinear resize to ``size x size`` (aspect ratio not kept, as torchvision
``F.resize`` on a PIL image does), then ``/255`` and ImageNet mean/std in float32.

Conversion rules of :func:`load_image` (documented choices, each tested):

* **RGB uint8**: used as is. Arrays are assumed RGB; OpenCV users must convert BGR to RGB first.
* **Alpha** (RGBA, LA, PA, 4-channel arrays): the alpha channel is dropped, not composited.
* **Grayscale** (PIL ``L``/``1``, 2-D arrays, 1-channel arrays): replicated to 3 channels.
  Palette images are expanded to RGB; CMYK/YCbCr/LAB/HSV are converted by PIL.
* **High bit depth, default** ``high_depth="clip"``: exactly what the official evaluation loaders
  do (``Image.open(p).convert("RGB")``). PIL's conversion of a 16- or 32-bit greyscale image
  (modes ``I;16``, ``I;16B``, ``I;16L``, ``I``, ``F``) **clips** each value to 0..255 (``F``
  truncates towards zero first; NaN becomes 0), so a 16-bit value 1000 becomes 255, not 3.
  16-bit *RGB* files are decoded by PIL itself to their high byte (``v >> 8``). ``uint16``
  arrays follow the same rules as the same data in a file: a greyscale array (2-D or 1
  channel) is clipped, a 3- or 4-channel array keeps its high byte.
* ``high_depth="high_byte"`` (the behaviour before the official rule was the default; what
  ``cv2.imread``'s default mode does): every 16-bit image or array keeps its high byte, 32-bit
  integer images with values in 0..65535 likewise, float images are rejected. Data that uses
  only 11 or 12 of the 16 bits comes out dark either way: stretch it yourself and pass a uint8
  array.
* **Rejected** with an error: float or signed-integer arrays (the value range is ambiguous),
  arrays that are not 2-D or 3-D, channel counts other than 1, 3 or 4, empty images, missing or
  unreadable files.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

__all__ = [
    "HIGH_DEPTH_RULES",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "ImageInput",
    "load_image",
    "normalize",
    "preprocess",
    "resize_image",
]

#: Anything :func:`load_image` accepts.
ImageInput = np.ndarray | Image.Image | str | os.PathLike

#: Rules for 16- and 32-bit images (see the module docstring); the first is the default.
HIGH_DEPTH_RULES = ("clip", "high_byte")

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@functools.lru_cache(maxsize=8)
def _lut(mean: tuple[float, ...], std: tuple[float, ...]) -> np.ndarray:
    # (3, 256) float32 table of (v / 255 - mean_c) / std_c, computed elementwise in float32
    # exactly as torchvision ToTensor + Normalize do; a uint8 input has only 256 values per
    # channel, so the table is the transform, bit for bit.
    v = np.arange(256, dtype=np.float32) / np.float32(255)
    m = np.asarray(mean, dtype=np.float32)[:, None]
    s = np.asarray(std, dtype=np.float32)[:, None]
    table = (v[None, :] - m) / s
    table.setflags(write=False)
    return table


def _from_16bit(a: np.ndarray, high_depth: str) -> np.ndarray:
    grey = a.ndim == 2 or (a.ndim == 3 and a.shape[2] == 1)
    if high_depth == "clip" and grey:
        return np.minimum(a, 255).astype(np.uint8)  # PIL I;16 -> RGB
    return (a >> 8).astype(np.uint8)


def _check_rule(high_depth: str) -> None:
    if high_depth not in HIGH_DEPTH_RULES:
        raise ValueError(
            f"high_depth must be one of {', '.join(HIGH_DEPTH_RULES)}; got {high_depth!r}"
        )


def _array_to_rgb(a: np.ndarray, what: str, high_depth: str = "clip") -> np.ndarray:
    if a.dtype == np.uint16:
        a = _from_16bit(a, high_depth)
    elif a.dtype != np.uint8:
        raise TypeError(
            f"{what} has dtype {a.dtype}; expected uint8 RGB values 0..255 (or uint16: see "
            "remotesam.image for the 16-bit rules). Scale the data to 0..255 and cast with "
            ".astype(np.uint8)"
        )
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim != 3:
        raise ValueError(
            f"{what} has shape {tuple(a.shape)} ({a.ndim}-D); expected (H, W, 3) RGB, (H, W, 4) "
            "RGBA "
            "or (H, W) grayscale. For a batch, call the method once per image"
        )
    h, w, c = a.shape
    if c not in (1, 3, 4):
        hint = (
            " It looks channels-first: use a.transpose(1, 2, 0)."
            if a.shape[0] in (1, 3, 4) and c > 4
            else ""
        )
        raise ValueError(
            f"{what} has shape {tuple(a.shape)} with {c} channels; expected 1 (gray), 3 (RGB) or "
            f"4 (RGBA, alpha dropped) in the last axis.{hint}"
        )
    if h == 0 or w == 0:
        raise ValueError(f"{what} is empty: shape {tuple(a.shape)}")
    if c == 1:
        a = np.repeat(a, 3, axis=2)
    elif c == 4:
        a = a[:, :, :3]
    return np.ascontiguousarray(a)


def _pil_to_rgb(im: Image.Image, what: str, high_depth: str = "clip") -> np.ndarray:
    mode = im.mode
    if mode == "RGB":
        return _array_to_rgb(np.asarray(im), what)
    if mode in ("RGBA", "RGBX", "RGBa"):
        return _array_to_rgb(np.asarray(im.convert("RGBA"))[:, :, :3], what)
    if high_depth == "clip" and (mode.startswith("I;16") or mode in ("I", "F")):
        # The official loaders' Image.open(p).convert("RGB"), reproduced by calling it.
        try:
            rgb = im.convert("RGB")
        except (ValueError, OSError) as e:
            raise ValueError(f"{what} has PIL mode {mode!r}, which PIL cannot convert: {e}") from e
        return _array_to_rgb(np.asarray(rgb), what)
    if mode.startswith("I;16"):
        return _array_to_rgb(np.asarray(im).astype(np.uint16), what, high_depth)
    if mode == "I":
        a = np.asarray(im)
        if a.size and (a.min() < 0 or a.max() > 65535):
            raise ValueError(
                f"{what} is a 32-bit integer image with values in [{a.min()}, {a.max()}]; only 8- "
                "and "
                "16-bit images are supported. Scale it to 0..255 and pass a uint8 array"
            )
        return _array_to_rgb(a.astype(np.uint16), what, high_depth)
    if mode == "F":
        raise TypeError(
            f"{what} is a floating-point image (PIL mode 'F'); with high_depth='high_byte' its "
            "value range is ambiguous. Scale it to 0..255 and pass a uint8 array, or use the "
            "default high_depth='clip' (PIL's own conversion, as the official loaders)"
        )
    # 1, L, LA, P, PA, CMYK, YCbCr, LAB, HSV, La: PIL's own conversion (alpha dropped, gray
    # replicated, palette expanded).
    try:
        rgb = im.convert("RGB")
    except (ValueError, OSError) as e:
        raise ValueError(
            f"{what} has PIL mode {mode!r}, which cannot be converted to RGB: {e}"
        ) from e
    return _array_to_rgb(np.asarray(rgb), what)


def load_image(image: ImageInput, *, high_depth: str = "clip") -> np.ndarray:
    """Load an image as an RGB array.

    Args:
        image: an ``(H, W, 3)`` RGB / ``(H, W, 4)`` RGBA / ``(H, W)`` or ``(H, W, 1)`` gray
            array of dtype uint8 (or uint16), a ``PIL.Image.Image``, or a path (``str`` or
            ``os.PathLike``) to any image file PIL can read (JPEG, PNG, TIFF, ...). See the module
            docstring for the conversion rules.
        high_depth: ``"clip"`` (default: PIL's ``convert("RGB")``, what the official loaders
            do) or ``"high_byte"`` (keep the high byte of 16-bit data), see the module docstring.

    Returns:
        ``(H, W, 3)`` uint8 C-contiguous RGB array (a new array for non-array inputs; an array
        input that needs no conversion may be returned as a view of it).

    Raises:
        FileNotFoundError: the path does not exist.
        IsADirectoryError: the path is a directory.
        ValueError: the file is not a readable image; wrong shape, channel count, value range;
            empty image.
        TypeError: unsupported input type, or a dtype/mode with an ambiguous value range.
    """
    _check_rule(high_depth)
    if isinstance(image, np.ndarray):
        return _array_to_rgb(image, "image array", high_depth)
    if isinstance(image, Image.Image):
        return _pil_to_rgb(
            image, f"PIL image (mode {image.mode!r}, size {image.size})", high_depth
        )
    if isinstance(image, (str, os.PathLike)):
        path = Path(image)
        if not path.exists():
            raise FileNotFoundError(f"image file not found: {str(path)!r}")
        if path.is_dir():
            raise IsADirectoryError(f"expected an image file, got the directory {str(path)!r}")
        try:
            with Image.open(path) as im:
                im.load()
                return _pil_to_rgb(
                    im, f"image file {str(path)!r} (mode {im.mode!r})", high_depth
                )
        except UnidentifiedImageError:
            raise ValueError(
                f"cannot read {str(path)!r} as an image: PIL does not recognise its format "
                "(supported: JPEG, PNG, TIFF, BMP, WebP and other formats PIL reads)"
            ) from None
        except OSError as e:
            raise ValueError(f"cannot read image file {str(path)!r}: {e}") from e
    raise TypeError(
        f"image must be a numpy array (H, W, 3) uint8 RGB, a PIL image or a file path; got "
        f"{type(image).__module__}.{type(image).__name__}"
    )


def resize_image(image: np.ndarray, size: int) -> np.ndarray:
    """Resize an ``(H, W, 3)`` uint8 RGB array to ``(size, size, 3)`` with PIL bilinear.

    This is the official ``Resize`` (torchvision ``F.resize`` on a PIL image, which calls
    ``PIL.Image.resize(..., BILINEAR)``; antialiased when shrinking, aspect ratio not kept).
    """
    if image.shape[0] == size and image.shape[1] == size:
        return image
    return np.asarray(
        Image.fromarray(image, mode="RGB").resize((size, size), Image.Resampling.BILINEAR)
    )


def normalize(
    images: np.ndarray,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> torch.Tensor:
    """ToTensor + Normalize, bit-identical to torchvision, vectorised (a per-channel lookup table,
    applied with OpenCV's ``LUT``).

    Args:
        images: ``(B, S, S, 3)`` or ``(S, S, 3)`` uint8 RGB.
        mean, std: per-channel constants applied to ``v / 255`` (ImageNet by default).

    Returns:
        ``(B, 3, S, S)`` float32 CPU tensor ``(v / 255 - mean_c) / std_c`` (B = 1 for a single
        image).

    Raises:
        TypeError: ``images`` is not a uint8 array with 3 channels last.
    """
    if not isinstance(images, np.ndarray) or images.dtype != np.uint8 or images.shape[-1:] != (3,):
        raise TypeError(
            "normalize expects a (B, S, S, 3) or (S, S, 3) uint8 RGB array; use load_image first"
        )
    if images.ndim == 3:
        images = images[None]
    table = _lut(tuple(float(m) for m in mean), tuple(float(s) for s in std))
    b, h, w, _ = images.shape
    out = np.empty((b, 3, h, w), dtype=np.float32)
    import cv2

    # OpenCV's table lookup on contiguous planes, written in place: the same table, so the same
    # bits, in less time than numpy's take on the interleaved channels (which first widens every
    # index to intp): 1.3x at 64 px, 4-7x at 896 px
    for i in range(b):
        planes = cv2.split(np.ascontiguousarray(images[i]))
        for c in range(3):
            cv2.LUT(planes[c], table[c : c + 1], dst=out[i, c])
    return torch.from_numpy(out)


def preprocess(
    images: ImageInput | Sequence[ImageInput],
    size: int,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> torch.Tensor:
    """Load, resize and normalise images exactly as the official RemoteSAM transform.

    Args:
        images: one image or a sequence of images (anything :func:`load_image` accepts; sizes may
            differ).
        size: network input size ``S`` (896 for the official model).
        mean, std: normalisation constants (ImageNet by default, as the official model).

    Returns:
        ``(B, 3, S, S)`` float32 CPU tensor.

    Raises:
        ValueError: ``size`` is not a positive int, or an empty sequence; plus whatever
            :func:`load_image` raises.
    """
    if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
        raise ValueError(f"size must be a positive int, got {size!r}")
    if isinstance(images, (np.ndarray, Image.Image, str, os.PathLike)):
        images = [images]
    if len(images) == 0:
        raise ValueError("images is empty; give at least one image")
    batch = np.stack([resize_image(load_image(im), size) for im in images])
    return normalize(batch, mean, std)
