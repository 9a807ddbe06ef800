"""Rule-based captions from detections (the official ``RuleBasedCaptioning.single_captioning``).

A caption is one "existence" sentence listing the detected classes with counts, followed by one
"distribution" sentence per non-empty image region (2x2 or 3x3 grid, row-major). Every sentence
picks its template through a ``choose`` callable; the official code uses the unseeded
``random.choice``, here the choice is injected so that captions are reproducible:
:func:`seeded_chooser` (a private ``random.Random(seed)``) or :func:`fixed_chooser` (always the
template with index ``t % len``, which is how the golden data was produced).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping, Sequence
from typing import Any

__all__ = [
    "DISTRIBUTION_TEMPLATES",
    "EXISTENCE_TEMPLATES",
    "REGION_NAMES",
    "Chooser",
    "build_caption",
    "fixed_chooser",
    "seeded_chooser",
]

Chooser = Callable[[Sequence[str]], str]

#: Filled with ``", ".join(names)``.
EXISTENCE_TEMPLATES: tuple[str, ...] = (
    "It contains {}.",
    "The image includes {}.",
    "There are {} in the image.",
    "This image features {}.",
    "This picture shows {}.",
)

#: Filled with ``[names, region, "is" | "are"]`` as the single positional argument.
DISTRIBUTION_TEMPLATES: tuple[str, ...] = (
    "The {0[1]} region contains {0[0]}.",
    "{0[0]} {0[2]} distributed in the {0[1]}.",
    "There {0[2]} {0[0]} in the {0[1]}.",
    "The {0[1]} region has {0[0]}.",
    "{0[0]} {0[2]} observed in the {0[1]}.",
    "In the {0[1]}, {0[0]} {0[2]} present.",
)

#: Region names in row-major order, by region count.
REGION_NAMES: dict[int, tuple[str, ...]] = {
    4: ("upper left", "upper right", "lower left", "lower right"),
    9: (
        "upper left", "upper center", "upper right",
        "middle left", "center", "middle right",
        "lower left", "lower center", "lower right",
    ),
}


def seeded_chooser(seed: int) -> Chooser:
    """A chooser drawing templates from a private ``random.Random(seed)``.

    The same seed gives the same sequence of choices, hence the same caption for the same input;
    the global ``random`` state is neither used nor changed.
    """
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int, got {seed!r}")
    rng = random.Random(seed)

    def choose(seq: Sequence[str]) -> str:
        return rng.choice(seq)

    return choose


def fixed_chooser(t: int) -> Chooser:
    """A chooser that always returns ``seq[t % len(seq)]`` (how the golden captions were made)."""
    if isinstance(t, bool) or not isinstance(t, int):
        raise TypeError(f"template index t must be an int, got {t!r}")

    def choose(seq: Sequence[str]) -> str:
        return seq[t % len(seq)]

    return choose


def _plural(name: str) -> str:
    return f"{name}s"


def build_caption(
    pred: Mapping[str, Sequence[Sequence[float]] | None],
    shape_hw: tuple[int, int],
    region_count: int,
    choose: Chooser,
) -> str:
    """Caption a set of detections exactly as the official ``single_captioning``.

    * Objects are ``(class, box[:4])`` in dict order, then list order; ``box[:4]`` is read as
      ``x1, y1, x2, y2`` (for obb rows this is the first two corners, as in the official code).
    * Existence: classes in order of first appearance; ``"many {cls}s"`` for 5 or more boxes,
      ``"{n} {cls}s"`` for 2 to 4, ``"{cls}"`` for one; joined with ``", "``.
    * Regions: ``split = sqrt(region_count)``; a box goes to row ``int(cy // (H / split))`` and
      column ``int(cx // (W / split))`` with ``cx, cy`` the box centre (a centre on a boundary
      goes to the lower/right region). A centre outside the image is clamped into the nearest
      border region (the official code never sees one: M2B boxes lie inside the image).
    * One distribution sentence per non-empty region, row-major: classes in order of first
      appearance, ``"{cls}s"`` if the class occurs more than once in the region, joined with
      ``", "``; the verb is ``"are"`` when the region holds more than one object, else ``"is"``.
    * Result ``existence + " " + " ".join(distribution)``; no capitalisation, so an empty ``pred``
      gives ``"It contains . "`` (with the first template).

    ``choose`` is called once for the existence sentence, then once per distribution sentence in
    region order.

    Args:
        pred: class name -> sequence of box rows (at least 4 numbers each, extra columns such as
            the confidence are ignored). ``None`` or an empty list means no boxes for the class
            (the official detection returns ``None`` for such classes).
        shape_hw: image ``(H, W)`` in pixels.
        region_count: 4 (2x2 grid) or 9 (3x3 grid).
        choose: picks one template from a sequence; see :func:`seeded_chooser`,
            :func:`fixed_chooser`.

    Raises:
        ValueError: bad ``region_count``, ``shape_hw`` or box rows.
        TypeError: ``pred`` not a mapping, a non-string class name, ``choose`` not callable.
    """
    if region_count not in REGION_NAMES:
        raise ValueError(f"region_count must be 4 or 9, got {region_count!r}")
    if not isinstance(pred, Mapping):
        raise TypeError(f"pred must map class names to box lists, got {type(pred).__name__}")
    if not callable(choose):
        raise TypeError("choose must be a callable taking a sequence of templates")
    try:
        height, width = (int(v) for v in shape_hw)
    except (TypeError, ValueError):
        raise ValueError(f"shape_hw must be (H, W) integers, got {shape_hw!r}") from None
    if height <= 0 or width <= 0:
        raise ValueError(f"shape_hw must be positive (H, W), got {shape_hw!r}")

    objects: list[tuple[str, tuple[float, float, float, float]]] = []
    for cls, boxes in pred.items():
        if not isinstance(cls, str):
            raise TypeError(f"class names must be strings, got {cls!r}")
        if boxes is None:
            continue
        for box in boxes:
            objects.append((cls, _box4(cls, box)))

    counts: dict[str, int] = {}
    for cls, _ in objects:
        counts[cls] = counts.get(cls, 0) + 1
    names = []
    for cls, c in counts.items():
        if c >= 5:
            names.append(f"many {_plural(cls)}")
        elif c >= 2:
            names.append(f"{c} {_plural(cls)}")
        else:
            names.append(cls)
    existence = choose(EXISTENCE_TEMPLATES).format(", ".join(names))

    split = math.isqrt(region_count)
    region_w = width / split
    region_h = height / split
    regions: list[dict[str, int]] = [{} for _ in range(region_count)]
    for cls, (x1, y1, x2, y2) in objects:
        cx = (x1 + x2) / 2
        cy = (y1 + y2) / 2
        row = min(max(int(cy // region_h), 0), split - 1)
        col = min(max(int(cx // region_w), 0), split - 1)
        reg = regions[row * split + col]
        reg[cls] = reg.get(cls, 0) + 1

    sentences = []
    for name, reg in zip(REGION_NAMES[region_count], regions):
        if not reg:
            continue
        listed = ", ".join(_plural(c) if n > 1 else c for c, n in reg.items())
        verb = "are" if sum(reg.values()) > 1 else "is"
        sentences.append(choose(DISTRIBUTION_TEMPLATES).format([listed, name, verb]))
    return existence + " " + " ".join(sentences)


def _box4(cls: str, box: Any) -> tuple[float, float, float, float]:
    try:
        vals = [float(v) for v in list(box)[:4]]
    except (TypeError, ValueError):
        raise ValueError(
            f"box of class {cls!r} must be a sequence of numbers, got {box!r}"
        ) from None
    if len(vals) < 4 or not all(math.isfinite(v) for v in vals):
        raise ValueError(f"box of class {cls!r} needs 4 finite numbers x1, y1, x2, y2, got {box!r}")
    return vals[0], vals[1], vals[2], vals[3]
