"""Procedural aerial-like scenes: textured ground, water, roads, objects with exact masks.

Everything is drawn with numpy and OpenCV from one ``numpy.random.Generator``, so a scene is a
pure function of its seed. Coordinates: images are ``(H, W, 3)`` uint8 **RGB**, indexed
``[y, x]``; object masks are ``(H, W)`` bool; boxes are ``xyxy`` with exclusive right/bottom
edges (one past the last pixel).

Two families of scenes are drawn:

* *object scenes* (DIOR/iSAID/DOTA-like): a ground layout (``land``, ``river`` or ``coast``)
  with several instances of several object kinds (see :data:`remotesam.synth.vocab.OBJECT_KINDS`);
* *land-use scenes* (UC Merced-like): one scene type per image (``agricultural``, ``airplane``,
  ``beach``, ``harbor``, ``parkinglot``, ``river``, ``storagetanks``, ``tenniscourt``).

Each scene is drawn in a canonical orientation (water at the bottom) and then rotated by a
multiple of 90 degrees; all geometry is derived from the final masks.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import cv2
import numpy as np

from .vocab import LANDUSE_TYPES

__all__ = ["Scene", "SceneObject", "render_landuse_scene", "render_object_scene"]

RGB = tuple[int, int, int]
# One drawing operation: a polygon (N, 2) float in image pixels, its colour, and whether it is
# part of the object's mask (shadows and decorations around an object are not).
Op = tuple[np.ndarray, RGB, bool]

COLORS: dict[str, RGB] = {
    "white": (236, 236, 232),
    "gray": (140, 142, 146),
    "black": (38, 38, 42),
    "red": (196, 42, 36),
    "blue": (38, 74, 192),
    "yellow": (228, 198, 40),
    "green": (52, 146, 64),
    "orange": (228, 122, 34),
}

_KIND_COLORS: dict[str, tuple[str, ...]] = {
    "airplane": ("white", "gray"),
    "ship": ("white", "gray", "red", "black", "blue"),
    "storagetank": ("white", "gray"),
    "car": ("white", "black", "red", "blue", "yellow", "gray"),
    "truck": ("white", "red", "blue", "orange"),
    "tenniscourt": ("green", "blue", "red"),
    "windmill": ("white",),
    "bridge": ("gray",),
    "swimmingpool": ("blue",),
    "harbor": ("gray",),
}

_SUBPIXEL = 4  # cv2 fixed-point shift


@dataclass
class SceneObject:
    """One annotated object.

    Attributes:
        kind: object kind (``remotesam.synth.vocab.OBJECT_KINDS``).
        color: colour name (a key of :data:`COLORS`).
        mask: ``(H, W)`` bool, exactly the object's pixels in the final image.
        area: number of mask pixels.
        bbox_xyxy: ``[x0, y0, x1, y1]`` absolute pixels, right/bottom exclusive.
        center: mask centroid ``(x, y)``.
    """

    kind: str
    color: str
    mask: np.ndarray
    area: int = field(init=False)
    bbox_xyxy: tuple[int, int, int, int] = field(init=False)
    center: tuple[float, float] = field(init=False)

    def __post_init__(self) -> None:
        # area (pixels), box [x0, y0, x1, y1] right/bottom exclusive, centroid (x, y)
        ys, xs = np.nonzero(self.mask)
        self.area = int(xs.size)
        self.bbox_xyxy = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
        self.center = (float(xs.mean()), float(ys.mean()))

    def obb(self) -> np.ndarray:
        """Oriented box: ``(4, 2)`` float corners of the minimum-area rectangle of the mask,
        clockwise on screen (y down) starting at the corner nearest the top-left."""
        ys, xs = np.nonzero(self.mask)
        pts = np.stack([xs, ys], 1).astype(np.float32)
        rect = cv2.minAreaRect(pts)
        (cx, cy), (w, h), ang = rect
        rect = ((cx, cy), (w + 1.0, h + 1.0), ang)  # pixel centres -> pixel extents
        corners = cv2.boxPoints(rect).astype(np.float64)
        c = corners.mean(0)
        order = np.argsort(np.arctan2(corners[:, 1] - c[1], corners[:, 0] - c[0]))
        corners = corners[order]  # increasing screen angle = clockwise on screen
        start = int(np.argmin(corners[:, 0] + corners[:, 1]))
        return np.roll(corners, -start, axis=0)


@dataclass
class Scene:
    """A rendered scene.

    Attributes:
        image: ``(H, W, 3)`` uint8 RGB.
        objects: annotated objects, in drawing order (later ones never overlap earlier ones).
        regions: land-cover / land-use masks ``(H, W)`` bool by name (``water``, ``road``,
            ``building``, ``tree``, ``beach``, ``parkinglot``, ``agricultural``, ``river``).
        layout: ``land`` / ``river`` / ``coast`` for object scenes, the UC Merced folder name
            for land-use scenes.
        landuse: UC Merced folder name for land-use scenes, else None.
    """

    image: np.ndarray
    objects: list[SceneObject] = field(default_factory=list)
    regions: dict[str, np.ndarray] = field(default_factory=dict)
    layout: str = "land"
    landuse: str | None = None


# ---------------------------------------------------------------------------------------------
# low-level drawing


def _noise(
    rng: np.random.Generator, h: int, w: int, cells: tuple[int, ...] = (3, 9, 33)
) -> np.ndarray:
    """Smooth multi-scale noise, ``(h, w)`` float32 with zero mean and unit-ish amplitude."""
    out = np.zeros((h, w), np.float32)
    amp = 1.0
    for c in cells:
        g = rng.random((c + 1, c + 1), dtype=np.float32) - 0.5
        out += amp * cv2.resize(g, (w, h), interpolation=cv2.INTER_CUBIC)
        amp *= 0.55
    return out / max(float(np.abs(out).max()), 1e-6)


def _texture(
    rng: np.random.Generator, h: int, w: int, base: RGB, amp: float, grain: float
) -> np.ndarray:
    """A textured colour field ``(h, w, 3)`` float32."""
    n = _noise(rng, h, w)
    tint = rng.uniform(0.85, 1.15, 3).astype(np.float32)
    img = np.asarray(base, np.float32)[None, None, :] + amp * n[..., None] * tint
    # uniform grain with standard deviation ``grain`` (cheaper than Gaussian samples)
    img += (rng.random((h, w, 1), dtype=np.float32) - np.float32(0.5)) * np.float32(
        grain * 3.4641016
    )
    return img


def _paint(img: np.ndarray, mask: np.ndarray, tex: np.ndarray) -> None:
    img[mask] = tex[mask]


def _poly_mask(h: int, w: int, polys: list[np.ndarray]) -> np.ndarray:
    m = np.zeros((h, w), np.uint8)
    pts = [np.round(p * (1 << _SUBPIXEL)).astype(np.int32) for p in polys]
    cv2.fillPoly(m, pts, 1, lineType=cv2.LINE_8, shift=_SUBPIXEL)
    return m.astype(bool)


def _fill(img: np.ndarray, poly: np.ndarray, color: RGB) -> None:
    pts = np.round(poly * (1 << _SUBPIXEL)).astype(np.int32)
    cv2.fillPoly(img, [pts], tuple(float(c) for c in color), lineType=cv2.LINE_AA, shift=_SUBPIXEL)


def _xf(local: np.ndarray, cx: float, cy: float, angle: float) -> np.ndarray:
    """Object-frame points ``(N, 2)`` (x forward) -> image pixels, rotated by ``angle`` rad."""
    c, s = math.cos(angle), math.sin(angle)
    rot = np.array([[c, -s], [s, c]])
    return local @ rot.T + np.array([cx, cy])


def _rect(length: float, w: float, x0: float = 0.0, y0: float = 0.0) -> np.ndarray:
    h = length / 2
    return np.array(
        [[x0 - h, y0 - w / 2], [x0 + h, y0 - w / 2], [x0 + h, y0 + w / 2], [x0 - h, y0 + w / 2]]
    )


def _ellipse(rx: float, ry: float, n: int = 28, x0: float = 0.0, y0: float = 0.0) -> np.ndarray:
    t = np.linspace(0, 2 * math.pi, n, endpoint=False)
    return np.stack([x0 + rx * np.cos(t), y0 + ry * np.sin(t)], 1)


def _rounded_rect(length: float, w: float, r: float) -> np.ndarray:
    h = length / 2
    r = min(r, h, w / 2)
    pts = []
    for cx, cy, a0 in (
        (h - r, w / 2 - r, 0),
        (-h + r, w / 2 - r, 90),
        (-h + r, -w / 2 + r, 180),
        (h - r, -w / 2 + r, 270),
    ):
        for a in np.linspace(a0, a0 + 90, 5):
            t = math.radians(a)
            pts.append((cx + r * math.cos(t), cy + r * math.sin(t)))
    return np.array(pts)


def _shade(color: RGB, f: float) -> RGB:
    r, g, b = (int(np.clip(c * f, 0, 255)) for c in color)
    return (r, g, b)


# ---------------------------------------------------------------------------------------------
# object shapes: each returns drawing ops in image coordinates


def _shape_airplane(L: float, cx: float, cy: float, a: float, col: RGB) -> list[Op]:
    f = (
        np.array(
            [[0.5, 0], [0.42, 0.05], [-0.45, 0.045], [-0.5, 0], [-0.45, -0.045], [0.42, -0.05]]
        )
        * L
    )
    wing = (
        np.array(
            [
                [0.12, 0.04],
                [-0.18, 0.46],
                [-0.28, 0.46],
                [-0.12, 0.04],
                [-0.12, -0.04],
                [-0.28, -0.46],
                [-0.18, -0.46],
                [0.12, -0.04],
            ]
        )
        * L
    )
    tail = (
        np.array(
            [
                [-0.36, 0.02],
                [-0.46, 0.17],
                [-0.5, 0.17],
                [-0.46, 0.0],
                [-0.5, -0.17],
                [-0.46, -0.17],
                [-0.36, -0.02],
            ]
        )
        * L
    )
    return [
        (_xf(wing, cx, cy, a), _shade(col, 0.92), True),
        (_xf(tail, cx, cy, a), _shade(col, 0.92), True),
        (_xf(f, cx, cy, a), col, True),
    ]


def _shape_ship(L: float, W: float, cx: float, cy: float, a: float, col: RGB) -> list[Op]:
    hull = np.array([[0.5, 0], [0.28, 0.5], [-0.5, 0.5], [-0.5, -0.5], [0.28, -0.5]]) * np.array(
        [L, W]
    )
    deck = _rect(0.22 * L, 0.62 * W, x0=-0.28 * L)
    deck_col = (220, 220, 214) if sum(col) < 500 else (120, 124, 130)
    return [(_xf(hull, cx, cy, a), col, True), (_xf(deck, cx, cy, a), deck_col, True)]


def _shape_tank(D: float, cx: float, cy: float, col: RGB) -> list[Op]:
    return [
        (_ellipse(D / 2, D / 2, 32, cx, cy), _shade(col, 0.8), True),
        (_ellipse(D * 0.42, D * 0.42, 32, cx, cy), col, True),
        (_ellipse(D * 0.08, D * 0.08, 12, cx - D * 0.12, cy - D * 0.12), _shade(col, 0.7), True),
    ]


def _shape_car(L: float, cx: float, cy: float, a: float, col: RGB) -> list[Op]:
    W = 0.48 * L
    return [
        (_xf(_rounded_rect(L, W, 0.18 * W), cx, cy, a), col, True),
        (_xf(_rect(0.16 * L, 0.8 * W, x0=0.18 * L), cx, cy, a), (40, 46, 56), True),
        (_xf(_rect(0.12 * L, 0.8 * W, x0=-0.3 * L), cx, cy, a), (60, 66, 76), True),
    ]


def _shape_truck(L: float, cx: float, cy: float, a: float, col: RGB) -> list[Op]:
    W = 0.36 * L
    return [
        (
            _xf(_rect(0.7 * L, W, x0=-0.15 * L), cx, cy, a),
            (222, 222, 218) if col != COLORS["white"] else (170, 172, 176),
            True,
        ),
        (_xf(_rect(0.22 * L, 0.92 * W, x0=0.39 * L), cx, cy, a), col, True),
        (_xf(_rect(0.06 * L, 0.2 * W, x0=0.23 * L), cx, cy, a), (60, 60, 60), True),
    ]


def _shape_court(L: float, cx: float, cy: float, a: float, col: RGB) -> list[Op]:
    W = 0.5 * L
    surround = (150, 70, 56) if col != COLORS["red"] else (60, 120, 70)
    ops: list[Op] = [
        (_xf(_rect(L * 1.18, W * 1.45), cx, cy, a), surround, True),
        (_xf(_rect(L, W), cx, cy, a), col, True),
    ]
    white = (245, 245, 245)
    t = max(0.035 * W, 0.6)
    for poly in (
        _rect(L, t, y0=W / 2 - t / 2),
        _rect(L, t, y0=-W / 2 + t / 2),
        _rect(t, W, x0=L / 2 - t / 2),
        _rect(t, W, x0=-L / 2 + t / 2),
        _rect(t * 1.4, W * 1.2),
        _rect(0.54 * L, t),
        _rect(t, W * 0.76, x0=0.27 * L),
        _rect(t, W * 0.76, x0=-0.27 * L),
    ):
        ops.append((_xf(poly, cx, cy, a), white, True))
    return ops


def _shape_windmill(R: float, cx: float, cy: float, a: float, col: RGB) -> list[Op]:
    ops: list[Op] = []
    blade = np.array([[0.0, -0.07], [1.0, -0.02], [1.0, 0.02], [0.0, 0.07]]) * R
    for k in range(3):
        ops.append((_xf(blade, cx, cy, a + k * 2 * math.pi / 3), col, True))
    ops.append((_ellipse(0.14 * R, 0.14 * R, 12, cx, cy), _shade(col, 0.85), True))
    return ops


def _shape_pool(L: float, W: float, cx: float, cy: float, a: float, col: RGB) -> list[Op]:
    return [
        (_xf(_rounded_rect(L * 1.15 + 2, W * 1.2 + 2, 2.5), cx, cy, a), (214, 210, 200), False),
        (_xf(_rounded_rect(L, W, 0.25 * W), cx, cy, a), (48, 168, 222), True),
        (_xf(_rect(L * 0.7, max(0.06 * W, 0.6)), cx, cy, a), (86, 196, 236), True),
    ]


def _shape_deck(L: float, W: float, cx: float, cy: float, a: float, col: RGB) -> list[Op]:
    return [
        (_xf(_rect(L, W), cx, cy, a), col, True),
        (_xf(_rect(L, 0.14 * W, y0=0.43 * W), cx, cy, a), _shade(col, 0.7), True),
        (_xf(_rect(L, 0.14 * W, y0=-0.43 * W), cx, cy, a), _shade(col, 0.7), True),
    ]


# ---------------------------------------------------------------------------------------------
# canvas with occupancy and placement


class _Canvas:
    def __init__(self, rng: np.random.Generator, size: int, object_scale: float = 1.0) -> None:
        self.rng = rng
        self.S = size
        self.k = size / 256.0  # scale of every length given for a 256 px image
        self.obj_k = self.k * object_scale  # object sizes only
        self.img = np.zeros((size, size, 3), np.float32)
        self.occ = np.zeros((size, size), bool)
        self.regions: dict[str, np.ndarray] = {}
        self.objects: list[tuple[str, str, np.ndarray]] = []
        ang = rng.uniform(0, 2 * math.pi)
        self.shadow = (math.cos(ang), math.sin(ang))

    def region(self, name: str) -> np.ndarray:
        if name not in self.regions:
            self.regions[name] = np.zeros((self.S, self.S), bool)
        return self.regions[name]

    # drawing -----------------------------------------------------------------------------
    def draw(self, ops: list[Op], shadow: float = 2.0) -> None:
        if shadow > 0:
            dx, dy = self.shadow[0] * shadow * self.k, self.shadow[1] * shadow * self.k
            polys = [p + np.array([dx, dy]) for p, _, _ in ops]
            allp = np.concatenate(polys)
            x0, y0 = (max(int(v) - 1, 0) for v in allp.min(0))
            x1, y1 = (min(int(v) + 2, self.S) for v in allp.max(0))
            if x1 > x0 and y1 > y0:
                sm = _poly_mask(y1 - y0, x1 - x0, [p - np.array([x0, y0]) for p in polys])
                self.img[y0:y1, x0:x1][sm] *= 0.55
        for poly, col, _ in ops:
            _fill(self.img, poly, col)

    def mask_of(self, ops: list[Op]) -> np.ndarray:
        return _poly_mask(self.S, self.S, [p for p, _, m in ops if m])

    def fits(
        self, mask: np.ndarray, allowed: np.ndarray, spacing: int, min_frac: float = 0.97
    ) -> bool:
        rows = np.flatnonzero(mask.any(1))
        if rows.size == 0:
            return False
        cols = np.flatnonzero(mask.any(0))
        b = 2
        y0, y1, x0, x1 = int(rows[0]), int(rows[-1]), int(cols[0]), int(cols[-1])
        if x0 < b or y0 < b or x1 >= self.S - b or y1 >= self.S - b:
            return False
        # work on the bounding box grown by the spacing only
        ya, yb = max(y0 - spacing, 0), min(y1 + spacing + 1, self.S)
        xa, xb = max(x0 - spacing, 0), min(x1 + spacing + 1, self.S)
        crop = mask[ya:yb, xa:xb]
        n = int(crop.sum())
        if n < 6:
            return False
        if spacing > 0:
            grown = cv2.dilate(
                crop.astype(np.uint8), np.ones((2 * spacing + 1,) * 2, np.uint8)
            ).astype(bool)
        else:
            grown = crop
        if (grown & self.occ[ya:yb, xa:xb]).any():
            return False
        return (crop & allowed[ya:yb, xa:xb]).sum() >= min_frac * n

    def add(
        self, kind: str, color: str, ops: list[Op], shadow: float = 2.0, annotate: bool = True
    ) -> np.ndarray:
        mask = self.mask_of(ops)
        self.draw(ops, shadow)
        # pixels of this object are final: later objects never overlap (occupancy check)
        self.occ |= mask
        if annotate:
            self.objects.append((kind, color, mask))
        return mask

    def sample_point(self, allowed: np.ndarray, margin: float) -> tuple[float, float] | None:
        m = int(margin)
        if self.S - 2 * m < 1:
            return None
        for _ in range(24):  # rejection sampling first: cheap when the free area is large
            x, y = self.rng.uniform(m, self.S - m, 2)
            if allowed[int(y), int(x)] and not self.occ[int(y), int(x)]:
                return float(x), float(y)
        sub = allowed[m : self.S - m, m : self.S - m] & ~self.occ[m : self.S - m, m : self.S - m]
        idx = np.flatnonzero(sub)
        if idx.size == 0:
            return None
        i = int(idx[self.rng.integers(idx.size)])
        w = self.S - 2 * m
        return float(i % w + m + self.rng.random()), float(i // w + m + self.rng.random())

    def try_place(
        self,
        kind: str,
        make: Callable[[float, float], tuple[str, list[Op]]],
        allowed: np.ndarray,
        margin: float,
        spacing: int = 2,
        tries: int = 30,
        shadow: float = 2.0,
        annotate: bool = True,
        min_frac: float = 0.97,
    ) -> bool:
        for _ in range(tries):
            p = self.sample_point(allowed, margin)
            if p is None:
                return False
            color, ops = make(*p)
            mask = self.mask_of(ops)
            if self.fits(mask, allowed, spacing, min_frac):
                self.add(kind, color, ops, shadow, annotate)
                return True
        return False

    # object factories --------------------------------------------------------------------
    def color(self, kind: str) -> tuple[str, RGB]:
        names = _KIND_COLORS[kind]
        name = names[int(self.rng.integers(len(names)))]
        jitter = self.rng.uniform(0.92, 1.06)
        return name, _shade(COLORS[name], jitter)

    def maker(
        self, kind: str, angle: float | None = None, size: float | None = None
    ) -> Callable[[float, float], tuple[str, list[Op]]]:
        rng, k = self.rng, self.obj_k

        def make(cx: float, cy: float) -> tuple[str, list[Op]]:
            a = rng.uniform(0, 2 * math.pi) if angle is None else angle + rng.normal(0, 0.03)
            name, col = self.color(kind)
            if kind == "airplane":
                return name, _shape_airplane((size or rng.uniform(26, 50)) * k, cx, cy, a, col)
            if kind == "ship":
                L = (size or rng.uniform(18, 44)) * k
                return name, _shape_ship(L, L * rng.uniform(0.24, 0.32), cx, cy, a, col)
            if kind == "storagetank":
                return name, _shape_tank((size or rng.uniform(10, 28)) * k, cx, cy, col)
            if kind == "car":
                return name, _shape_car((size or rng.uniform(9, 12.5)) * k, cx, cy, a, col)
            if kind == "truck":
                return name, _shape_truck((size or rng.uniform(17, 24)) * k, cx, cy, a, col)
            if kind == "tenniscourt":
                return name, _shape_court((size or rng.uniform(22, 30)) * k, cx, cy, a, col)
            if kind == "windmill":
                return name, _shape_windmill((size or rng.uniform(10, 17)) * k, cx, cy, a, col)
            if kind == "swimmingpool":
                L = (size or rng.uniform(13, 22)) * k
                return name, _shape_pool(L, L * rng.uniform(0.45, 0.7), cx, cy, a, col)
            raise ValueError(f"no maker for kind {kind!r}")

        return make


# ---------------------------------------------------------------------------------------------
# ground layouts

_GROUNDS: dict[str, tuple[RGB, float]] = {
    "grass": ((92, 122, 64), 22.0),
    "dry": ((150, 140, 104), 20.0),
    "soil": ((128, 108, 84), 18.0),
    "concrete": ((156, 154, 148), 12.0),
    "forest": ((52, 82, 44), 26.0),
    "sand": ((214, 198, 156), 12.0),
    "asphalt": ((86, 88, 92), 6.0),
}


def _ground(cv: _Canvas, kind: str, mask: np.ndarray | None = None) -> None:
    base, amp = _GROUNDS[kind]
    tex = _texture(cv.rng, cv.S, cv.S, base, amp, 3.0)
    if mask is None:
        cv.img[:] = tex
    else:
        _paint(cv.img, mask, tex)


def _water(cv: _Canvas, mask: np.ndarray) -> None:
    base = (
        int(cv.rng.integers(28, 52)),
        int(cv.rng.integers(62, 92)),
        int(cv.rng.integers(86, 118)),
    )
    tex = _texture(cv.rng, cv.S, cv.S, base, 10.0, 1.5)
    _paint(cv.img, mask, tex)
    cv.region("water")[:] |= mask


def _coast(cv: _Canvas, frac: float) -> np.ndarray:
    """Water below a wavy shoreline at height ``(1 - frac) * S``. Returns the water mask."""
    S = cv.S
    xs = np.arange(S, dtype=np.float64)
    amp = cv.rng.uniform(2, 10) * cv.k
    ph = cv.rng.uniform(0, 2 * math.pi)
    line = (1 - frac) * S + amp * np.sin(xs / S * 2 * math.pi * cv.rng.uniform(0.5, 1.5) + ph)
    ys = np.arange(S)[:, None]
    water = ys >= line[None, :]
    _water(cv, water)
    return water


def _river(cv: _Canvas, width: float) -> tuple[np.ndarray, np.ndarray]:
    """A meandering river across the image (left to right). Returns (water mask, centreline)."""
    S = cv.S
    xs = np.linspace(-10, S + 10, 48)
    y0 = cv.rng.uniform(0.3, 0.7) * S
    amp = cv.rng.uniform(0.03, 0.12) * S
    ph = cv.rng.uniform(0, 2 * math.pi)
    ys = y0 + amp * np.sin(xs / S * 2 * math.pi * cv.rng.uniform(0.6, 1.4) + ph)
    line = np.stack([xs, ys], 1)
    m = np.zeros((S, S), np.uint8)
    cv2.polylines(
        m,
        [np.round(line * 16).astype(np.int32)],
        False,
        1,
        thickness=max(int(width), 2),
        lineType=cv2.LINE_8,
        shift=4,
    )
    water = m.astype(bool)
    _water(cv, water)
    return water, line


def _roads(cv: _Canvas, n: int, avoid: np.ndarray | None = None) -> list[tuple[np.ndarray, float]]:
    """Straight roads across the image. Returns [(centreline (2,2), width)]."""
    S, out = cv.S, []
    road = cv.region("road")
    for _ in range(n):
        a = cv.rng.uniform(0, math.pi)
        c = cv.rng.uniform(0.2, 0.8, 2) * S
        d = np.array([math.cos(a), math.sin(a)]) * S * 1.5
        p0, p1 = c - d, c + d
        w = cv.rng.uniform(7, 12) * cv.k
        m = np.zeros((S, S), np.uint8)
        cv2.line(
            m,
            tuple(np.round(p0).astype(int)),
            tuple(np.round(p1).astype(int)),
            1,
            thickness=max(int(w), 2),
        )
        rm = m.astype(bool)
        if avoid is not None:
            rm &= ~avoid
        tex = _texture(cv.rng, S, S, (84, 86, 90), 6.0, 2.0)
        _paint(cv.img, rm, tex)
        lane = np.zeros((S, S), np.uint8)
        cv2.line(
            lane, tuple(np.round(p0).astype(int)), tuple(np.round(p1).astype(int)), 1, thickness=1
        )
        lane_m = lane.astype(bool) & rm
        cv.img[lane_m] = cv.img[lane_m] * 0.4 + np.array([230, 220, 160], np.float32) * 0.6
        road |= rm
        out.append((np.stack([p0, p1]), w))
    return out


def _clutter(cv: _Canvas, n_buildings: int, n_trees: int, allowed: np.ndarray) -> None:
    """Unannotated buildings and trees (recorded in the ``building`` / ``tree`` regions)."""
    rng, k = cv.rng, cv.k
    for _ in range(n_buildings):
        def make(cx: float, cy: float) -> tuple[str, list[Op]]:
            L, W = rng.uniform(12, 26) * k, rng.uniform(9, 18) * k
            roof = (
                int(rng.integers(120, 200)),
                int(rng.integers(100, 170)),
                int(rng.integers(90, 160)),
            )
            a = rng.uniform(0, math.pi)
            return "gray", [
                (_xf(_rect(L, W), cx, cy, a), roof, True),
                (_xf(_rect(L, 0.08 * W), cx, cy, a), _shade(roof, 0.8), True),
            ]

        cv.try_place(
            "building", make, allowed, 14 * k, spacing=2, tries=8, shadow=3.0, annotate=False
        )
    for _ in range(n_trees):
        def make_t(cx: float, cy: float) -> tuple[str, list[Op]]:
            r = rng.uniform(3, 7) * k
            g = (int(rng.integers(30, 60)), int(rng.integers(70, 110)), int(rng.integers(30, 55)))
            return "green", [(_ellipse(r, r * rng.uniform(0.8, 1.2), 16, cx, cy), g, True)]
        cv.try_place("tree", make_t, allowed, 8 * k, spacing=1, tries=4, shadow=2.0, annotate=False)
    # record clutter regions from the occupancy not covered by annotated objects
    objs = np.zeros_like(cv.occ)
    for _k, _c, m in cv.objects:
        objs |= m
    rest = cv.occ & ~objs
    rgb = cv.img
    green = (rgb[..., 1] > rgb[..., 0] + 15) & (rgb[..., 1] < 125)
    cv.region("tree")[:] |= rest & green
    cv.region("building")[:] |= rest & ~green


# ---------------------------------------------------------------------------------------------
# object scenes

_COUNT_RANGE: dict[str, tuple[int, int]] = {
    "airplane": (1, 4),
    "storagetank": (1, 6),
    "car": (1, 8),
    "truck": (1, 3),
    "tenniscourt": (1, 3),
    "windmill": (1, 4),
    "swimmingpool": (1, 3),
    "ship": (1, 5),
}
_LAND_KINDS = ("airplane", "storagetank", "car", "truck", "tenniscourt", "windmill", "swimmingpool")


def _finish(cv: _Canvas, rot: int, layout: str, landuse: str | None) -> Scene:
    img = np.clip(cv.img + 0.5, 0, 255).astype(np.uint8)
    img = np.ascontiguousarray(np.rot90(img, rot))
    objects = [
        SceneObject(str(kd), c, np.ascontiguousarray(np.rot90(m, rot))) for kd, c, m in cv.objects
    ]
    regions = {
        k: np.ascontiguousarray(np.rot90(v, rot)) for k, v in sorted(cv.regions.items()) if v.any()
    }
    return Scene(img, objects, regions, layout, landuse)


def render_object_scene(rng: np.random.Generator, size: int, object_scale: float = 1.0) -> Scene:
    """Draw one DIOR-like scene with several annotated object kinds.

    Args:
        rng: the only source of randomness.
        size: image side S in pixels (square images).
        object_scale: multiplies every object size (1.0: DIOR-like sizes at 256 px).

    Returns:
        :class:`Scene` with ``layout`` in ``land``, ``river``, ``coast``.
    """
    cv = _Canvas(rng, size, object_scale)
    layout = str(rng.choice(["land", "river", "coast"], p=[0.45, 0.3, 0.25]))
    _ground(cv, str(rng.choice(["grass", "dry", "soil", "concrete"], p=[0.35, 0.25, 0.2, 0.2])))
    S, k = size, cv.k
    water = np.zeros((S, S), bool)
    river_line = None
    if layout == "river":
        water, river_line = _river(cv, rng.uniform(0.12, 0.22) * S)
        cv.region("river")[:] |= water
    elif layout == "coast":
        water = _coast(cv, rng.uniform(0.3, 0.5))
    roads = _roads(cv, int(rng.choice([0, 1, 1, 2])), avoid=water)
    land = ~water & ~cv.region("road")
    road = cv.region("road")

    # water objects first
    if layout == "river" and river_line is not None and rng.random() < 0.75:
        for _ in range(int(rng.integers(1, 3))):
            _place_bridge(cv, river_line, water)
    if layout == "coast" and rng.random() < 0.6:
        for _ in range(int(rng.integers(1, 3))):
            _place_pier(cv, water, with_ships=rng.random() < 0.5)
    if layout in ("river", "coast"):
        lo, hi = _COUNT_RANGE["ship"]
        ship_size = 30.0 if layout == "coast" else 24.0
        for _ in range(int(rng.integers(lo, hi + 1))):
            cv.try_place(
                "ship",
                cv.maker("ship", size=rng.uniform(0.6, 1.45) * ship_size),
                water,
                8 * k,
                spacing=3,
                min_frac=0.999,
            )

    n_land = int(rng.integers(1, 3)) if layout != "land" else int(rng.integers(2, 5))
    kinds = [str(x) for x in rng.choice(_LAND_KINDS, size=n_land, replace=False)]
    for kind in sorted(kinds, key=_LAND_KINDS.index):
        lo, hi = _COUNT_RANGE[kind]
        n = int(rng.integers(lo, hi + 1))
        if kind in ("car", "truck") and roads and rng.random() < 0.6:
            for _ in range(n):
                _place_on_road(cv, kind, roads, road)
            continue
        margin = {"airplane": 26, "tenniscourt": 20, "windmill": 18, "storagetank": 15}.get(
            kind, 10
        ) * k
        for _ in range(n):
            cv.try_place(
                kind,
                cv.maker(kind),
                land,
                margin,
                spacing=3,
                shadow=4.0 if kind == "windmill" else 2.0,
            )
    _clutter(cv, int(rng.integers(0, 6)), int(rng.integers(0, 10)), land)
    return _finish(cv, int(rng.integers(4)), layout, None)


def _place_on_road(
    cv: _Canvas, kind: str, roads: list[tuple[np.ndarray, float]], road: np.ndarray
) -> None:
    rng = cv.rng
    for _ in range(15):
        (p0, p1), w = roads[int(rng.integers(len(roads)))]
        t = rng.uniform(0.3, 0.7)
        d = p1 - p0
        a = math.atan2(d[1], d[0]) + (math.pi if rng.random() < 0.5 else 0.0)
        nrm = np.array([-math.sin(a), math.cos(a)])
        c = p0 + t * d + nrm * w * 0.22
        color, ops = cv.maker(kind, angle=a)(float(c[0]), float(c[1]))
        mask = cv.mask_of(ops)
        if cv.fits(mask, road, 2, 0.8):
            cv.add(kind, color, ops, 1.5)
            return


def _place_bridge(cv: _Canvas, line: np.ndarray, water: np.ndarray) -> None:
    rng, S = cv.rng, cv.S
    for _ in range(10):
        i = int(rng.integers(8, len(line) - 8))
        p, q = line[i - 1], line[i + 1]
        a = math.atan2(q[1] - p[1], q[0] - p[0]) + math.pi / 2
        c = line[i]
        # length: cross the water plus a margin on each bank
        L = 0.0
        for s in np.arange(0, S, 1.0):
            x, y = c + s * np.array([math.cos(a), math.sin(a)])
            if not (0 <= x < S and 0 <= y < S) or not water[int(y), int(x)]:
                L = s
                break
        Ltot = 2 * L + 10 * cv.k
        W = rng.uniform(7, 11) * cv.k
        ops = _shape_deck(Ltot, W, float(c[0]), float(c[1]), a, (158, 156, 150))
        mask = cv.mask_of(ops)
        if cv.fits(mask, np.ones_like(water), 6, 0.0):
            cv.add("bridge", "gray", ops, 2.5)
            return


def _place_pier(cv: _Canvas, water: np.ndarray, with_ships: bool) -> None:
    """A pier from the shore (top) into the water (bottom) in canonical orientation."""
    rng, S, k = cv.rng, cv.S, cv.k
    for _ in range(10):
        x = rng.uniform(0.12, 0.88) * S
        col = np.flatnonzero(water[:, int(x)])
        if col.size == 0:
            continue
        shore = float(col[0])
        L = rng.uniform(28, 54) * k
        W = rng.uniform(6, 10) * k
        c = (x, shore + L / 2 - 4 * k)
        ops = [(_xf(_rect(L, W), c[0], c[1], math.pi / 2), (172, 168, 156), True)]
        mask = cv.mask_of(ops)
        if cv.fits(mask, np.ones_like(water), 10, 0.0) and (mask & water).sum() > 0.6 * mask.sum():
            cv.add("harbor", "gray", ops, 2.0)
            if with_ships:
                for side in (-1, 1):
                    if rng.random() < 0.7:
                        Ls = rng.uniform(0.45, 0.8) * L
                        sc = (x + side * (W / 2 + 0.16 * Ls + 2.5 * k), shore + L - Ls / 2 - 2 * k)
                        color, sops = cv.maker(
                            "ship",
                            angle=math.pi / 2 * (1 if rng.random() < 0.5 else -1),
                            size=Ls / k,
                        )(*sc)
                        sm = cv.mask_of(sops)
                        if cv.fits(sm, water, 1, 0.999):
                            cv.add("ship", color, sops, 1.5)
            return


# ---------------------------------------------------------------------------------------------
# land-use scenes


def render_landuse_scene(
    rng: np.random.Generator, size: int, landuse: str, object_scale: float = 1.0
) -> Scene:
    """Draw one UC Merced-like scene of type ``landuse`` (a folder name in
    :data:`remotesam.synth.vocab.LANDUSE_TYPES`); ``object_scale`` multiplies the size of
    objects placed at random (vehicles, tanks, airplanes, ...).

    Raises:
        ValueError: unknown ``landuse``.
    """
    if landuse not in LANDUSE_TYPES:
        raise ValueError(
            f"unknown land-use type {landuse!r}; expected one of {list(LANDUSE_TYPES)}"
        )
    cv = _Canvas(rng, size, object_scale)
    S, k = size, cv.k
    full = np.ones((S, S), bool)
    if landuse == "agricultural":
        _ground(cv, "soil")
        n_cut = int(rng.integers(1, 3))
        parcels = np.zeros((S, S), np.int32)
        for j in range(n_cut):
            a = rng.uniform(0, math.pi)
            c = rng.uniform(0.3, 0.7, 2) * S
            yy, xx = np.mgrid[0:S, 0:S]
            side = ((xx - c[0]) * math.cos(a) + (yy - c[1]) * math.sin(a)) > 0
            parcels += side.astype(np.int32) << j
        field_m = np.zeros((S, S), bool)
        yy, xx = np.mgrid[0:S, 0:S]
        for p in np.unique(parcels):
            pm = parcels == p
            a = rng.uniform(0, math.pi)
            period = rng.uniform(5, 12) * k
            c1 = np.array(
                [rng.integers(90, 150), rng.integers(120, 170), rng.integers(50, 90)], np.float32
            )
            c2 = c1 * rng.uniform(0.65, 0.85)
            ph = ((xx * math.cos(a) + yy * math.sin(a)) / period) % 1.0 < 0.5
            tex = _texture(rng, S, S, (0, 0, 0), 10.0, 2.0)
            col = np.where(ph[..., None], c1, c2) + tex
            cv.img[pm] = col[pm]
            field_m |= pm
        # dirt tracks on the parcel borders
        edges = cv2.Canny(parcels.astype(np.uint8) * 40, 1, 1) > 0
        edges = cv2.dilate(edges.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
        cv.img[edges] = np.array([168, 150, 118], np.float32)
        cv.region("agricultural")[:] |= field_m & ~edges
        if rng.random() < 0.5:
            _clutter(cv, 1, 3, full)
    elif landuse == "airplane":
        _ground(cv, "grass")
        apron = np.zeros((S, S), bool)
        apron[int(0.12 * S) : int(0.92 * S), :] = True
        _ground(cv, "concrete", apron)
        line_y = int(rng.uniform(0.7, 0.85) * S)
        cv.img[line_y : line_y + max(1, int(k)), :] = np.array([220, 190, 60], np.float32)
        n = int(rng.integers(2, 6))
        size_a = rng.uniform(34, 48)
        for i in range(n):
            x = (i + 0.5 + rng.uniform(-0.1, 0.1)) * S / n
            y = rng.uniform(0.38, 0.55) * S
            color, ops = cv.maker(
                "airplane", angle=-math.pi / 2, size=size_a * rng.uniform(0.85, 1.1)
            )(x, y)
            mask = cv.mask_of(ops)
            if cv.fits(mask, apron, 2, 0.9):
                cv.add("airplane", color, ops, 2.5)
    elif landuse == "beach":
        _ground(cv, "grass")
        water = _coast(cv, rng.uniform(0.35, 0.55))
        ys = np.arange(S)[:, None]
        first_water = np.argmax(water, axis=0).astype(np.float64)
        band = rng.uniform(0.15, 0.3) * S
        sand = (ys >= first_water[None, :] - band) & ~water
        _ground(cv, "sand", sand)
        foam = (ys >= first_water[None, :]) & (ys < first_water[None, :] + max(2, int(2 * k)))
        cv.img[foam] = cv.img[foam] * 0.3 + np.array([240, 244, 246], np.float32) * 0.7
        cv.region("beach")[:] |= sand
        _clutter(cv, 0, int(rng.integers(2, 8)), ~sand & ~water)
    elif landuse == "harbor":
        _ground(cv, "concrete")
        water = _coast(cv, rng.uniform(0.5, 0.65))
        for _ in range(int(rng.integers(2, 5))):
            _place_pier(cv, water, with_ships=True)
        for _ in range(int(rng.integers(0, 3))):
            cv.try_place("ship", cv.maker("ship"), water, 10 * k, spacing=3, min_frac=0.999)
        _clutter(cv, int(rng.integers(1, 5)), 0, ~water)
    elif landuse == "parkinglot":
        _ground(cv, "grass")
        lot = np.zeros((S, S), bool)
        m = int(rng.uniform(0.05, 0.18) * S)
        lot[m : S - m, m // 2 : S - m // 2] = True
        _ground(cv, "asphalt", lot)
        cv.region("parkinglot")[:] |= lot
        row_h = 16 * k
        y = m + row_h / 2 + 2
        a = 0.0 if rng.random() < 0.5 else math.pi
        while y + row_h / 2 < S - m:
            x = m / 2 + 8 * k
            while x < S - m / 2 - 8 * k:
                cv.img[int(y - row_h / 2) : int(y + row_h / 2), int(x - 4 * k)] = np.array(
                    [225, 225, 220], np.float32
                )
                if rng.random() < 0.6:
                    kind = "truck" if rng.random() < 0.08 else "car"
                    color, ops = cv.maker(
                        kind,
                        angle=a + math.pi / 2,
                        size=rng.uniform(10, 12) if kind == "car" else 15.0,
                    )(x, y)
                    mask = cv.mask_of(ops)
                    if cv.fits(mask, lot, 1, 0.95):
                        cv.add(kind, color, ops, 1.0)
                x += 8 * k
            y += row_h + rng.uniform(4, 10) * k
        _clutter(cv, 0, int(rng.integers(3, 10)), ~lot)
    elif landuse == "river":
        _ground(cv, str(rng.choice(["forest", "grass"])))
        water, line = _river(cv, rng.uniform(0.16, 0.3) * S)
        cv.region("river")[:] |= water
        if rng.random() < 0.3:
            _place_bridge(cv, line, water)
        _clutter(cv, 0, int(rng.integers(4, 14)), ~water)
    elif landuse == "storagetanks":
        _ground(cv, str(rng.choice(["concrete", "soil", "dry"])))
        nx, ny = int(rng.integers(2, 4)), int(rng.integers(2, 4))
        base = rng.uniform(20, 34)
        for i in range(nx):
            for j in range(ny):
                if rng.random() < 0.85:
                    cx = (i + 0.5) * S / nx + rng.uniform(-3, 3) * k
                    cy = (j + 0.5) * S / ny + rng.uniform(-3, 3) * k
                    color, ops = cv.maker("storagetank", size=base * rng.uniform(0.7, 1.1))(cx, cy)
                    mask = cv.mask_of(ops)
                    if cv.fits(mask, full, 2):
                        cv.add("storagetank", color, ops, 3.0)
        _clutter(cv, int(rng.integers(0, 3)), 0, full)
    elif landuse == "tenniscourt":
        _ground(cv, "grass")
        n = int(rng.integers(1, 4))
        L = rng.uniform(40, 56)
        a = rng.uniform(0, math.pi)
        c = np.array([S / 2, S / 2]) + rng.uniform(-0.1, 0.1, 2) * S
        step = np.array([-math.sin(a), math.cos(a)]) * L * 0.5 * 1.5 * k
        for i in range(n):
            p = c + (i - (n - 1) / 2) * step
            color, ops = cv.maker("tenniscourt", angle=a, size=L)(float(p[0]), float(p[1]))
            mask = cv.mask_of(ops)
            if cv.fits(mask, full, 0, 0.0):
                cv.add("tenniscourt", color, ops, 1.0)
        _clutter(cv, int(rng.integers(0, 3)), int(rng.integers(3, 10)), full)
    else:
        _more_landuse(cv, landuse)
    return _finish(cv, int(rng.integers(4)), landuse, landuse)


def _hroad(cv: _Canvas, y: float, width: float, lanes: int = 1) -> np.ndarray:
    """A horizontal road band centred at ``y`` (canonical frame); returns its mask."""
    S = cv.S
    m = np.zeros((S, S), bool)
    m[max(int(y - width / 2), 0) : min(int(y + width / 2), S), :] = True
    _paint(cv.img, m, _texture(cv.rng, S, S, (84, 86, 90), 6.0, 2.0))
    for j in range(1, lanes):
        yy = int(y - width / 2 + j * width / lanes)
        dash = (np.arange(S) // max(int(6 * cv.k), 2)) % 2 == 0
        cv.img[yy, dash] = np.array([230, 230, 225], np.float32)
    cv.region("road")[:] |= m
    return m


def _houses(
    cv: _Canvas, n: int, allowed: np.ndarray, size: tuple[float, float], spacing: int, region: str
) -> None:
    rng, k = cv.rng, cv.k
    for _ in range(n):
        def make(cx: float, cy: float) -> tuple[str, list[Op]]:
            L, W = rng.uniform(*size) * k, rng.uniform(0.6, 0.9) * size[0] * k
            roof = (
                int(rng.integers(110, 200)),
                int(rng.integers(80, 150)),
                int(rng.integers(70, 140)),
            )
            a = rng.choice([0.0, math.pi / 2]) + rng.normal(0, 0.05)
            return "gray", [
                (_xf(_rect(L, W), cx, cy, a), roof, True),
                (_xf(_rect(L, 0.1 * W), cx, cy, a), _shade(roof, 0.75), True),
            ]

        if cv.try_place(
            "house", make, allowed, 8 * k, spacing=spacing, tries=6, shadow=2.5, annotate=False
        ):
            pass
    cv.region("building")[:] |= cv.occ & ~cv.region("tree")


def _trees(cv: _Canvas, n: int, allowed: np.ndarray, r: tuple[float, float] = (3, 7)) -> None:
    rng, k = cv.rng, cv.k
    before = cv.occ.copy()
    for _ in range(n):
        def make(cx: float, cy: float) -> tuple[str, list[Op]]:
            rr = rng.uniform(*r) * k
            g = (int(rng.integers(28, 60)), int(rng.integers(66, 110)), int(rng.integers(28, 55)))
            return "green", [(_ellipse(rr, rr * rng.uniform(0.8, 1.2), 16, cx, cy), g, True)]

        cv.try_place(
            "tree",
            make,
            allowed,
            4 * k,
            spacing=0,
            tries=3,
            shadow=1.5,
            annotate=False,
            min_frac=0.9,
        )
    cv.region("tree")[:] |= cv.occ & ~before


def _more_landuse(cv: _Canvas, landuse: str) -> None:
    """The UC Merced scene types without annotated objects of their own."""
    rng, S, k = cv.rng, cv.S, cv.k
    full = np.ones((S, S), bool)
    if landuse == "buildings":
        _ground(cv, "concrete")
        _hroad(cv, rng.uniform(0.4, 0.6) * S, 16 * k, 2)
        land = ~cv.region("road")
        before = cv.occ.copy()
        for _ in range(int(rng.integers(6, 12))):
            def make(cx: float, cy: float) -> tuple[str, list[Op]]:
                L, W = rng.uniform(30, 70) * k, rng.uniform(22, 44) * k
                roof = (int(rng.integers(150, 225)),) * 3
                roof = (
                    roof[0],
                    roof[1] - int(rng.integers(0, 20)),
                    roof[2] - int(rng.integers(0, 30)),
                )
                return "gray", [
                    (_rect(L, W) + np.array([cx, cy]), roof, True),
                    (_rect(L * 0.3, W * 0.3) + np.array([cx, cy]), _shade(roof, 0.8), True),
                ]

            cv.try_place(
                "building",
                make,
                land,
                12 * k,
                spacing=3,
                tries=10,
                shadow=5.0,
                annotate=False,
                min_frac=1.0,
            )
        cv.region("buildings")[:] |= cv.occ & ~before
        cv.region("building")[:] |= cv.occ & ~before
    elif landuse in ("denseresidential", "mediumresidential", "sparseresidential"):
        _ground(cv, "grass")
        ys = [0.28 * S, 0.72 * S] if landuse != "sparseresidential" else [0.5 * S]
        for y in ys:
            _hroad(cv, y + rng.uniform(-6, 6) * k, 9 * k)
        land = ~cv.region("road")
        n_h, n_t = {
            "denseresidential": (60, 6),
            "mediumresidential": (26, 30),
            "sparseresidential": (9, 45),
        }[landuse]
        _houses(cv, n_h, land, (12, 17), 1 if landuse == "denseresidential" else 4, landuse)
        _trees(cv, n_t, land & ~cv.occ)
        cv.region(landuse)[:] |= full
    elif landuse == "mobilehomepark":
        _ground(cv, "dry")
        for y in np.arange(0.12, 0.95, 0.27) * S:
            _hroad(cv, y, 7 * k)
        land = ~cv.region("road")
        for y in np.arange(0.12, 0.95, 0.27) * S:
            for side in (-1, 1):
                x = 6 * k
                while x < S - 6 * k:
                    cy = y + side * 12 * k
                    col = (int(rng.integers(200, 240)),) * 3
                    ops = [(_rect(6 * k, 15 * k) + np.array([x, cy]), col, True)]
                    m = cv.mask_of(ops)
                    if rng.random() < 0.85 and cv.fits(m, land, 0, 1.0):
                        cv.add("home", "white", ops, 1.5, annotate=False)
                    x += 9 * k
        cv.region("building")[:] |= cv.occ
        _trees(cv, 6, land & ~cv.occ)
        cv.region("mobilehomepark")[:] |= full
    elif landuse == "forest":
        _ground(cv, "forest")
        _trees(cv, 140, full, (4, 9))
        cv.region("forest")[:] |= full
    elif landuse == "chaparral":
        _ground(cv, "dry")
        for _ in range(int(rng.integers(40, 90))):
            r = rng.uniform(1.5, 4) * k
            c = rng.uniform(0, S, 2)
            _fill(
                cv.img,
                _ellipse(r, r, 10, c[0], c[1]),
                (int(rng.integers(70, 100)), int(rng.integers(80, 100)), int(rng.integers(50, 70))),
            )
        cv.region("chaparral")[:] |= full
    elif landuse in ("freeway", "intersection", "overpass"):
        _ground(cv, str(rng.choice(["grass", "dry"])))
        if landuse == "freeway":
            y = rng.uniform(0.4, 0.6) * S
            m = _hroad(cv, y - 17 * k, 26 * k, 3) | _hroad(cv, y + 17 * k, 26 * k, 3)
            cv.region("freeway")[:] |= m
        else:
            m1 = _hroad(cv, rng.uniform(0.4, 0.6) * S, 24 * k, 2)
            x = int(rng.uniform(0.4, 0.6) * S)
            w = int(24 * k)
            m2 = np.zeros((S, S), bool)
            m2[:, x - w // 2 : x + w // 2] = True
            if landuse == "overpass":
                sh = np.roll(np.roll(m2, int(5 * k), 1), int(3 * k), 0) & ~m2
                cv.img[sh & m1] *= 0.5
                _paint(cv.img, m2, _texture(rng, S, S, (150, 150, 146), 6.0, 2.0))
                cv.img[m2 & ~np.roll(m2, 2, 1)] = np.array([200, 200, 196], np.float32)
                cv.img[m2 & ~np.roll(m2, -2, 1)] = np.array([200, 200, 196], np.float32)
            else:
                _paint(cv.img, m2, _texture(rng, S, S, (84, 86, 90), 6.0, 2.0))
                cross = m1 & m2
                cross_y, _cross_x = np.nonzero(cross)
                for yy in (cross_y.min() - int(4 * k), cross_y.max() + int(2 * k)):
                    stripe = (np.arange(S) // 2) % 2 == 0
                    rows = slice(max(yy, 0), max(yy, 0) + max(int(3 * k), 1))
                    cv.img[rows, x - w // 2 : x + w // 2][:, stripe[: w // 2 * 2]] = np.array(
                        [235, 235, 230], np.float32
                    )
            cv.region("road")[:] |= m2
            cv.region(landuse)[:] |= m1 | m2
        road = cv.region("road")
        for _ in range(int(rng.integers(3, 12))):
            kind = "truck" if rng.random() < 0.2 else "car"
            cv.try_place(
                kind,
                cv.maker(kind, angle=float(rng.choice([0.0, math.pi / 2, math.pi, -math.pi / 2]))),
                road,
                10 * k,
                2,
                10,
                1.2,
                annotate=True,
                min_frac=1.0,
            )
        _trees(cv, int(rng.integers(5, 20)), ~road)
        _houses(cv, int(rng.integers(0, 6)), ~road & ~cv.occ, (14, 22), 3, "building")
    elif landuse == "runway":
        _ground(cv, "grass")
        strip = rng.uniform(40, 60) * k
        y = rng.uniform(0.35, 0.65) * S
        m = np.zeros((S, S), bool)
        m[int(y - strip / 2) : int(y + strip / 2), :] = True
        _paint(cv.img, m, _texture(rng, S, S, (168, 168, 164), 5.0, 2.0))
        dash = (np.arange(S) // max(int(10 * k), 2)) % 3 == 0
        cv.img[int(y) - 1 : int(y) + 1, dash] = np.array([245, 245, 245], np.float32)
        for off in (-0.35, 0.35):
            yy = int(y + off * strip)
            cv.img[yy : yy + max(int(k), 1), :] = np.array([240, 240, 240], np.float32)
        cv.region("runway")[:] |= m
    elif landuse == "golfcourse":
        _ground(cv, "grass")
        fair = np.zeros((S, S), np.uint8)
        pts = np.cumsum(rng.uniform(-1, 1, (6, 2)) * 50 * k, 0) + np.array([S / 2, S / 2])
        cv2.polylines(
            fair,
            [np.round(np.clip(pts, 0, S - 1)).astype(np.int32)],
            False,
            1,
            thickness=int(rng.uniform(30, 50) * k),
        )
        fm = fair.astype(bool)
        _paint(cv.img, fm, _texture(rng, S, S, (120, 170, 80), 10.0, 2.0))
        for _ in range(int(rng.integers(2, 6))):
            c = rng.uniform(0.1, 0.9, 2) * S
            _fill(
                cv.img,
                _ellipse(rng.uniform(4, 9) * k, rng.uniform(3, 6) * k, 16, c[0], c[1]),
                (222, 210, 170),
            )
        _trees(cv, int(rng.integers(15, 40)), ~fm)
        cv.region("golffield")[:] |= full
    elif landuse == "baseballdiamond":
        _ground(cv, "grass")
        home = np.array([rng.uniform(0.35, 0.65) * S, rng.uniform(0.75, 0.85) * S])
        R = rng.uniform(0.45, 0.6) * S
        yy, xx = np.mgrid[0:S, 0:S]
        d = np.hypot(xx - home[0], yy - home[1])
        ang = np.degrees(np.arctan2(home[1] - yy, xx - home[0]))
        fan = (d < R) & (ang > 45) & (ang < 135)
        _paint(cv.img, fan, _texture(rng, S, S, (110, 158, 76), 8.0, 2.0))
        infield = (d < 0.42 * R) & (ang > 45) & (ang < 135)
        _paint(cv.img, infield, _texture(rng, S, S, (178, 130, 92), 6.0, 2.0))
        base = 0.22 * R
        diamond = np.array([[0, 0], [base, -base], [0, -2 * base], [-base, -base]]) + home
        _fill(cv.img, diamond * 1.0, (112, 160, 78))
        for p in diamond:
            _fill(cv.img, _rect(2.5 * k, 2.5 * k) + p, (245, 245, 245))
        cv.region("baseballfield")[:] |= fan | (d < 0.08 * R)
        _trees(cv, int(rng.integers(5, 15)), ~fan)
