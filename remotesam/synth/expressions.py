"""Referring expressions and captions for synthetic scenes.

A referring expression is generated from attributes (colour, size, position) and relations
(nearest to a unique other object) and is kept only when it identifies **exactly one** object:
every candidate is checked against all objects of the same noun group in the scene.
Positions are judged from mask centroids in image coordinates (x right, y down) *with a margin*,
so that no expression depends on a borderline pixel.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from .scene import Scene, SceneObject

__all__ = ["DIRECTION_WORDS", "Expression", "caption_scene", "referring_expressions"]

#: Words whose meaning changes under a horizontal or vertical flip (used by training
#: augmentation to decide which flips keep an expression valid).
DIRECTION_WORDS = {
    "horizontal": re.compile(
        r"\b(left|right|leftmost|rightmost|east|west|eastern|western)\b", re.I
    ),
    "vertical": re.compile(
        r"\b(top|bottom|upper|lower|topmost|bottommost|above|below"
        r"|north|south|northern|southern)\b",
        re.I,
    ),
}

# noun group -> (kinds it covers, nouns to say it with)
_GROUPS: dict[str, tuple[frozenset[str], tuple[str, ...]]] = {
    "airplane": (frozenset({"airplane"}), ("airplane", "plane")),
    "ship": (frozenset({"ship"}), ("ship", "boat")),
    "storagetank": (frozenset({"storagetank"}), ("storage tank", "tank", "oil tank")),
    "car": (frozenset({"car"}), ("car", "small vehicle")),
    "truck": (frozenset({"truck"}), ("truck", "large vehicle")),
    "vehicle": (frozenset({"car", "truck"}), ("vehicle",)),
    "tenniscourt": (frozenset({"tenniscourt"}), ("tennis court", "court")),
    "windmill": (frozenset({"windmill"}), ("windmill", "wind turbine")),
    "bridge": (frozenset({"bridge"}), ("bridge",)),
    "swimmingpool": (frozenset({"swimmingpool"}), ("swimming pool", "pool")),
    "harbor": (frozenset({"harbor"}), ("harbor", "pier")),
}

_REGION_PHRASE = {
    (0, 0): "in the upper left", (0, 1): "at the top", (0, 2): "in the upper right",
    (1, 0): "on the left", (1, 1): "in the center", (1, 2): "on the right",
    (2, 0): "in the lower left", (2, 1): "at the bottom", (2, 2): "in the lower right",
}


@dataclass(frozen=True)
class Expression:
    """A referring expression.

    Attributes:
        index: index of the referred object in ``scene.objects``.
        text: the sentence, lower-case except the first letter, no final period.
        kind: attribute family used (``unique``, ``color``, ``position``, ``color+position``,
            ``size``, ``extreme``, ``relation``).
    """

    index: int
    text: str
    kind: str


def _region(c: tuple[float, float], S: int, margin: float) -> tuple[int, int] | None:
    """3x3 cell (row, col) of a centre, or None when within ``margin`` of a cell border."""
    out = []
    for v in (c[1], c[0]):
        t = v / S * 3
        cell = min(int(t), 2)
        if min(abs(t - 1), abs(t - 2)) * S / 3 < margin:
            return None
        out.append(cell)
    return out[0], out[1]


def referring_expressions(scene: Scene, rng: np.random.Generator) -> list[Expression]:
    """All objects of ``scene`` that can be referred to uniquely, one expression each.

    Args:
        scene: a rendered scene.
        rng: chooses among the valid expressions of an object (deterministic given its state).

    Returns:
        Expressions ordered by object index; objects without any unique description are left
        out.
    """
    objs = scene.objects
    S = scene.image.shape[0]
    centers = [o.center for o in objs]
    areas = [o.area for o in objs]
    margin = 0.035 * S
    regions = [_region(c, S, margin) for c in centers]
    # unique anchors for relations: noun group with exactly one member
    anchors: list[tuple[int, str]] = []
    for _g, (kinds, nouns) in _GROUPS.items():
        members = [i for i, o in enumerate(objs) if o.kind in kinds]
        if len(members) == 1:
            anchors.append((members[0], nouns[0]))
    out: list[Expression] = []
    for i, o in enumerate(objs):
        cands: list[tuple[str, str]] = []
        for _g, (kinds, nouns) in _GROUPS.items():
            if o.kind not in kinds:
                continue
            peers = [j for j, p in enumerate(objs) if p.kind in kinds]
            others = [j for j in peers if j != i]
            noun = nouns[int(rng.integers(len(nouns)))]
            cands.extend(_candidates(i, o, others, objs, centers, areas, regions, noun, S, anchors))
        if not cands:
            continue
        # prefer informative expressions (drop the bare "the X" when alternatives exist) and
        # pick the attribute family first, so that every family is equally frequent
        rich = [c for c in cands if c[1] != "unique"] or cands
        families = sorted({k for _, k in rich})
        fam = families[int(rng.integers(len(families)))]
        texts = [t for t, k in rich if k == fam]
        text, kind = texts[int(rng.integers(len(texts)))], fam
        prefix = "the" if rng.random() < 0.8 else "a"
        if text.startswith("the ") and kind not in ("size", "extreme", "relation"):
            text = prefix + text[3:]
        out.append(Expression(i, text[0].upper() + text[1:], kind))
    return out


def _candidates(
    i: int,
    o: SceneObject,
    others: list[int],
    objs: list[SceneObject],
    centers: list[tuple[float, float]],
    areas: list[int],
    regions: list[tuple[int, int] | None],
    noun: str,
    S: int,
    anchors: list[tuple[int, str]],
) -> list[tuple[str, str]]:
    c = centers[i]
    out: list[tuple[str, str]] = []
    colored = o.kind not in ("windmill", "bridge", "swimmingpool", "harbor")
    if not others:
        out.append((f"the {noun}", "unique"))
        if colored:
            out.append((f"the {o.color} {noun}", "color"))
    unique_color = colored and all(objs[j].color != o.color for j in others)
    if unique_color and others:
        out.append((f"the {o.color} {noun}", "color"))
    reg = regions[i]
    if reg is not None:
        other_regs = [regions[j] for j in others]
        # an ambiguous (borderline) peer could be read as either cell: it blocks uniqueness
        if all(r is not None and r != reg for r in other_regs):
            out.append((f"the {noun} {_REGION_PHRASE[reg]}", "position"))
        elif colored:
            same_color = [r for j, r in zip(others, other_regs) if objs[j].color == o.color]
            if same_color and all(r is not None and r != reg for r in same_color):
                out.append((f"the {o.color} {noun} {_REGION_PHRASE[reg]}", "color+position"))
    if others:
        a = areas[i]
        rest = sorted(areas[j] for j in others)
        if a >= 1.35 * rest[-1]:
            out.append((f"the largest {noun}", "size"))
        if a * 1.35 <= rest[0]:
            out.append((f"the smallest {noun}", "size"))
        m = 0.08 * S
        xs = [centers[j][0] for j in others]
        ys = [centers[j][1] for j in others]
        if c[0] + m < min(xs):
            out.append((f"the leftmost {noun}", "extreme"))
        if c[0] - m > max(xs):
            out.append((f"the rightmost {noun}", "extreme"))
        if c[1] + m < min(ys):
            out.append((f"the topmost {noun}", "extreme"))
        if c[1] - m > max(ys):
            out.append((f"the bottommost {noun}", "extreme"))
    for a_idx, a_noun in anchors:
        if a_idx == i or objs[a_idx].kind == o.kind:
            continue
        ac = centers[a_idx]
        d = math.dist(c, ac)
        if d > 0.3 * S:
            continue
        ds = [math.dist(centers[j], ac) for j in others]
        if all(d < 0.6 * x for x in ds):
            phrase = "next to" if d < 0.15 * S else "closest to"
            out.append((f"the {noun} {phrase} the {a_noun}", "relation"))
    return out


_NUM = ("no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")


def _num(n: int) -> str:
    return _NUM[n] if n < len(_NUM) else "many"


def _many(n: int) -> str:
    return "many" if n >= 5 else _num(n)


def caption_scene(scene: Scene, rng: np.random.Generator, n: int = 5) -> list[str]:
    """``n`` distinct reference captions of a land-use scene, UCM-captions style: words
    separated by spaces and ending in ``" ."``.

    Raises:
        ValueError: ``scene`` is not a land-use scene.
    """
    if scene.landuse is None:
        raise ValueError("caption_scene needs a land-use scene (scene.landuse is None)")
    cnt: dict[str, int] = {}
    for o in scene.objects:
        cnt[o.kind] = cnt.get(o.kind, 0) + 1
    regions = scene.regions
    trees = "tree" in regions
    buildings = "building" in regions
    t = scene.landuse
    c: list[str] = []
    if t == "agricultural":
        c = [
            "There is a piece of farmland",
            "It is a piece of farmland with crops",
            "Several fields of farmland are next to each other",
            "The farmland is divided into pieces",
            "There are green crops in the farmland",
            "Many rows of crops are in the farmland",
        ]
        if buildings:
            c.append("A building is next to the farmland")
    elif t == "airplane":
        k = cnt.get("airplane", 0)
        c = [
            f"There are {_many(k)} airplanes in the airport",
            f"{_num(k).capitalize()} airplanes are parked on the ground",
            f"{_many(k).capitalize()} white airplanes are stopped in the airport",
            "Some airplanes are parked in an airport",
            "The airport has several airplanes and a road",
            "Airplanes are parked side by side on the ground",
        ]
    elif t == "beach":
        c = [
            "There is a beach next to the sea",
            "The yellow beach is between the water and the grass",
            "A long beach is along the sea",
            "Waves are on the beach",
            "The sea is next to a piece of sand",
            "It is a beach with water and some trees"
            if trees
            else "It is a beach with water and grass",
        ]
    elif t == "harbor":
        k = cnt.get("ship", 0)
        p = cnt.get("harbor", 0)
        c = [
            f"There are {_many(k)} boats in the harbor",
            f"{_many(k).capitalize()} boats are docked at the harbor",
            f"The harbor has {_num(p)} piers and some boats",
            "Boats are parked in the water next to the piers",
            "Several ships are in a harbor",
            "A harbor with boats and piers in the water",
        ]
    elif t == "parkinglot":
        k = cnt.get("car", 0) + cnt.get("truck", 0)
        c = [
            f"There are {_many(k)} cars in the parking lot",
            "Many cars are parked in the parking lot",
            "Lots of vehicles are parked in rows in the parking lot",
            "A parking lot with many cars",
            "Cars of different colors are parked in the parking lot",
            "Some trees are around the parking lot"
            if trees
            else "The parking lot is next to the grass",
        ]
    elif t == "river":
        c = [
            "There is a river",
            "A river goes through the land",
            "The winding river is between the trees"
            if trees
            else "The winding river is between the grass",
            "There is a river with trees on both sides"
            if trees
            else "There is a river with grass on both sides",
            "A curved river is in the image",
            "The river flows across the area",
        ]
        if cnt.get("bridge"):
            c.append("A bridge is over the river")
    elif t == "storagetanks":
        k = cnt.get("storagetank", 0)
        c = [
            f"There are {_many(k)} storage tanks",
            f"{_many(k).capitalize()} white storage tanks are on the ground",
            "Several storage tanks are arranged in rows",
            "Some round storage tanks are in the image",
            f"{_num(k).capitalize()} storage tanks are close to each other",
            "Storage tanks of different sizes are here",
        ]
    elif t == "tenniscourt":
        k = cnt.get("tenniscourt", 0)
        word = "tennis court" if k == 1 else "tennis courts"
        c = [
            f"There {'is' if k == 1 else 'are'} {_num(k)} {word}",
            f"{_num(k).capitalize()} {word} {'is' if k == 1 else 'are'} surrounded by grass",
            f"The {word} {'is' if k == 1 else 'are'} next to some trees"
            if trees
            else f"The {word} {'is' if k == 1 else 'are'} on the grass",
            f"It is {'a tennis court' if k == 1 else 'some tennis courts'} with white lines",
            f"{_num(k).capitalize()} {word} and some green trees",
            "There are tennis courts and grass",
        ]
    elif t in _FIXED_CAPTIONS:
        c = list(_FIXED_CAPTIONS[t])
        if trees and t not in ("forest",):
            c.append("Some green trees are in the image")
        k = cnt.get("car", 0) + cnt.get("truck", 0)
        if k:
            c.append(f"There are {_many(k)} cars on the road")
    if len(c) < n:
        raise ValueError(
            f"caption_scene: only {len(c)} captions for scene type {t!r}, {n} requested"
        )
    order = rng.permutation(len(c))[:n]
    return [c[int(j)] + " ." for j in sorted(order)]


_FIXED_CAPTIONS: dict[str, tuple[str, ...]] = {
    "baseballdiamond": (
        "There is a baseball field",
        "A baseball field is surrounded by green grass",
        "The baseball field has a brown infield",
        "It is a baseball field with grass",
        "A fan shaped baseball field is on the grass",
    ),
    "buildings": (
        "There are many buildings",
        "Several large buildings are next to the road",
        "Some buildings with flat roofs are here",
        "Many buildings are arranged along a road",
        "It is an area with large buildings",
    ),
    "chaparral": (
        "It is a piece of chaparral",
        "There are many shrubs on the bare land",
        "Some dark green bushes are on the yellow land",
        "The dry land is covered with small bushes",
        "Many small bushes are scattered on the ground",
    ),
    "denseresidential": (
        "It is a dense residential area",
        "Many houses are arranged densely",
        "Lots of houses are next to each other along the roads",
        "There are many buildings and two roads",
        "Many houses with different colors are in the dense residential area",
    ),
    "mediumresidential": (
        "It is a medium residential area",
        "Some houses and trees are along the roads",
        "There are several houses and many green trees",
        "Houses are arranged along the roads with trees",
        "Many houses and some trees are in the residential area",
    ),
    "sparseresidential": (
        "It is a sparse residential area",
        "A few houses are surrounded by many trees",
        "Several houses are scattered on the grass",
        "There are a few houses and a road",
        "Some houses and many green trees are in the sparse residential area",
    ),
    "mobilehomepark": (
        "It is a mobile home park",
        "Many mobile homes are arranged in rows",
        "Lots of white mobile homes are next to the roads",
        "There are many mobile homes and several roads",
        "Many white houses are arranged neatly in the mobile home park",
    ),
    "forest": (
        "It is a piece of forest",
        "There are many green trees",
        "The dense forest is green",
        "Lots of trees are close to each other",
        "Many green trees are in the forest",
    ),
    "freeway": (
        "There is a freeway",
        "A freeway goes across the image",
        "Some cars are on the freeway",
        "Two roads of the freeway are parallel",
        "The freeway is next to the grass",
    ),
    "intersection": (
        "There is an intersection",
        "Two roads cross each other",
        "It is an intersection of two roads",
        "Some cars are at the intersection",
        "The intersection has white crosswalks",
    ),
    "overpass": (
        "There is an overpass",
        "A road goes over another road",
        "It is an overpass across a road",
        "The overpass is over the road with some cars",
        "Two roads cross with an overpass",
    ),
    "runway": (
        "There is a runway",
        "A long runway is on the grass",
        "The gray runway has white lines",
        "It is a straight runway",
        "A runway goes across the grass",
    ),
    "golfcourse": (
        "It is a golf course",
        "There is a golf course with trees",
        "Some sand bunkers are on the golf course",
        "The green golf course has some trees",
        "A golf course with green grass and sand",
    ),
}
