"""Colour-coded label masks: an RGB palette mask to class indices (shared by the seg sets)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from remotesam.bench.api import DatasetError

__all__ = ["colour_to_label"]


def colour_to_label(
    rgb: np.ndarray,
    palette: Sequence[Sequence[int]],
    *,
    unknown: str = "background",
    where: str = "mask",
) -> np.ndarray:
    """Map an RGB colour mask to class indices (official ``change_label``).

    Args:
        rgb: ``(H, W, 3)`` uint8.
        palette: K colours; colour k -> label ``k + 1``; black ``(0, 0, 0)`` -> 0.
        unknown: ``"background"`` (official, default: map to 0) or ``"error"`` (raise).
        where: file name for the error message.

    Returns:
        ``(H, W)`` uint8 labels in ``[0, K]``.

    Raises:
        DatasetError: a colour outside the palette when ``unknown == "error"``.
    """
    a = np.asarray(rgb)
    if a.ndim != 3 or a.shape[2] < 3:
        raise DatasetError(f"{where}: expected an RGB colour mask, got array shape {a.shape}")
    a = a[:, :, :3].astype(np.int32)
    keys = (a[:, :, 0] << 16) | (a[:, :, 1] << 8) | a[:, :, 2]
    pal = np.asarray([(r << 16) | (g << 8) | b for r, g, b in palette] + [0], dtype=np.int32)
    values = np.asarray([*list(range(1, len(palette) + 1)), 0], dtype=np.uint8)
    order = np.argsort(pal, kind="stable")
    spal, svals = pal[order], values[order]
    idx = np.clip(np.searchsorted(spal, keys), 0, len(spal) - 1)
    found = spal[idx] == keys
    if not found.all() and unknown != "background":
        ys, xs = np.nonzero(~found)
        colours = np.unique(a[ys, xs].reshape(-1, 3), axis=0)
        shown = ", ".join(str(tuple(int(v) for v in c)) for c in colours[:5])
        raise DatasetError(
            f"{where}: {ys.size} pixel(s) have colour(s) outside the class palette: {shown} "
            f"(first at row {int(ys[0])}, column {int(xs[0])}). Expected background (0, 0, 0) or "
            "one of the dataset's class colours; pass unknown_colour='background' to map them "
            "to background as the official code does."
        )
    return np.where(found, svals[idx], 0).astype(np.uint8)
