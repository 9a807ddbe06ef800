"""Images for ``predict()``: decoded RGB pixels, or the size from the header alone."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from remotesam.bench.api import DatasetError

__all__ = ["image_size", "load_image"]


def image_size(path: Path) -> tuple[int, int]:
    """``(height, width)`` read from the image header (the pixels are not decoded).

    Raises:
        DatasetError: missing or unreadable image.
    """
    from PIL import Image, UnidentifiedImageError

    if not Path(path).is_file():  # regular files only: a FIFO would block Image.open
        raise DatasetError(f"image {path} not found (or not a regular file)")
    try:
        with Image.open(path) as im:
            w, h = im.size
    except FileNotFoundError:
        raise DatasetError(f"image {path} not found") from None
    except (OSError, UnidentifiedImageError) as exc:
        raise DatasetError(f"image {path} is unreadable: {exc}") from None
    return int(h), int(w)


def load_image(path: str | Path, *, high_depth: str = "clip") -> np.ndarray:
    """Load an image as ``(H, W, 3)`` uint8 RGB (alpha dropped, greyscale expanded).

    Decoding follows :func:`remotesam.image.load_image` (the model's own loader): by default
    (``high_depth="clip"``) exactly the official loaders' ``Image.open(p).convert("RGB")``, so
    16- and 32-bit greyscale images are clipped to 0..255; ``high_depth="high_byte"`` keeps the
    high byte of 16-bit data instead.

    Raises:
        DatasetError: missing, truncated or undecodable file.
    """
    from remotesam.image import load_image as _load  # imports torch: only when needed

    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"image {path} not found (listed by the annotations but absent)")
    try:
        arr = np.asarray(_load(path, high_depth=high_depth))
    except (OSError, ValueError, TypeError) as exc:
        raise DatasetError(f"image {path} is unreadable: {exc}") from None
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] < 3:
        raise DatasetError(f"image {path}: expected an RGB image, got array shape {arr.shape}")
    return np.ascontiguousarray(arr[:, :, :3])
