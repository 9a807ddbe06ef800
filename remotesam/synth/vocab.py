"""Class vocabularies of the synthetic benchmark and their names in each official dataset.

The generator draws a handful of *kinds* of objects (and a few land-use scene types). Each
dataset format names them with its own official vocabulary; these tables are the single place
where that mapping lives. Names here must match the official class lists the plugins use
(DATASETS.md / PROTOCOLS.md section 2).
"""

from __future__ import annotations

from remotesam import classes as _classes

__all__ = [
    "COUNT_NAMES",
    "DIOR_CLASSES",
    "DIOR_NAMES",
    "DOTA_NAMES",
    "EXTRA_CATEGORIES",
    "ISAID_NAMES",
    "ISAID_PALETTE",
    "LANDUSE_PROMPT",
    "LANDUSE_TYPES",
    "NOUNS",
    "OBJECT_KINDS",
    "RRSISD_CATEGORIES",
    "UCM_CLASSES",
    "refer_categories",
]

#: Object kinds drawn by the renderer. ``car`` and ``truck`` are both DIOR ``vehicle``.
OBJECT_KINDS: tuple[str, ...] = (
    "airplane",
    "ship",
    "storagetank",
    "car",
    "truck",
    "tenniscourt",
    "windmill",
    "bridge",
    "swimmingpool",
    "harbor",
)

#: RRSIS-D categories, 0-based ids in this order (``instances.json`` of RRSIS-D).
RRSISD_CATEGORIES: tuple[str, ...] = _classes.RRSISD_CLASSES

#: Categories appended after the 20 RRSIS-D ones (ids 20, 21, ...) for what the synthetic
#: training set also refers to: iSAID-only classes, land cover and land-use scene types.
#: RemoteSAM-270K's category ids carry no meaning either (DATASETS.md section 2).
EXTRA_CATEGORIES: tuple[str, ...] = (
    "swimming-pool",
    "small-vehicle",
    "large-vehicle",
    "agricultural",
    "beach",
    "river",
    "parkinglot",
    "water",
    "road",
    "building",
    "tree",
    "helicopter",
    "roundabout",
    "soccer-ball-field",
    "buildings",
    "chaparral",
    "denseresidential",
    "forest",
    "freeway",
    "intersection",
    "mediumresidential",
    "mobilehomepark",
    "runway",
    "sparseresidential",
    # generator v2: the captioning vocabulary's words that have no category above
    "residential",
    "bank",
    "stand",
    "waste land",
    "pedestrian",
    "villa",
    "trail",
    "park",
    "people",
    "bunker",
    "container-crane",
    "helipad",
)


def refer_categories() -> list[dict[str, int | str]]:
    """The ``categories`` list of the synthetic ``instances.json`` (0-based ids)."""
    names = RRSISD_CATEGORIES + EXTRA_CATEGORIES
    return [{"id": i, "name": n} for i, n in enumerate(names)]


#: DIOR classes, COCO category ids 1..20 in this order (DATASETS.md section 4).
DIOR_CLASSES: tuple[str, ...] = _classes.DIOR_CLASSES

#: kind -> DIOR / RRSIS-D / DIOR-RSVG class name (None: not annotated in DIOR-family sets).
DIOR_NAMES: dict[str, str | None] = {
    "airplane": "airplane",
    "ship": "ship",
    "storagetank": "storagetank",
    "car": "vehicle",
    "truck": "vehicle",
    "tenniscourt": "tenniscourt",
    "windmill": "windmill",
    "bridge": "bridge",
    "swimmingpool": None,
    "harbor": "harbor",
}

#: kind -> iSAID colour-mask class key (None: not an iSAID class, left as background).
ISAID_NAMES: dict[str, str | None] = {
    "airplane": "plane",
    "ship": "ship",
    "storagetank": "storage_tank",
    "car": "Small_Vehicle",
    "truck": "Large_Vehicle",
    "tenniscourt": "tennis_court",
    "windmill": None,
    "bridge": "Bridge",
    "swimmingpool": "Swimming_pool",
    "harbor": "Harbor",
}

#: iSAID semantic colour palette (R, G, B), iSAID_Devkit order (DATASETS.md section 3).
ISAID_PALETTE: dict[str, tuple[int, int, int]] = dict(
    zip(_classes.ISAID_DEVKIT_NAMES, _classes.ISAID_PALETTE, strict=True)
)

#: kind -> DOTA-v2.0 label-file class name.
DOTA_NAMES: dict[str, str | None] = {
    "airplane": "plane",
    "ship": "ship",
    "storagetank": "storage-tank",
    "car": "small-vehicle",
    "truck": "large-vehicle",
    "tenniscourt": "tennis-court",
    "windmill": None,
    "bridge": "bridge",
    "swimmingpool": "swimming-pool",
    "harbor": "harbor",
}

#: DIOR class -> the noun used in counting questions ("Count the number of {noun}."). The
#: official loader maps "storage tank" back to "storagetank"; the others are DIOR names as is.
COUNT_NAMES: dict[str, str] = {
    "airplane": "airplane",
    "ship": "ship",
    "storagetank": "storage tank",
    "vehicle": "vehicle",
    "tenniscourt": "tenniscourt",
    "windmill": "windmill",
    "bridge": "bridge",
    "harbor": "harbor",
}

#: kind -> (singular, plural) natural nouns used in referring expressions and captions.
NOUNS: dict[str, tuple[str, str]] = {
    "airplane": ("airplane", "airplanes"),
    "ship": ("ship", "ships"),
    "storagetank": ("storage tank", "storage tanks"),
    "car": ("car", "cars"),
    "truck": ("truck", "trucks"),
    "tenniscourt": ("tennis court", "tennis courts"),
    "windmill": ("windmill", "windmills"),
    "bridge": ("bridge", "bridges"),
    "swimmingpool": ("swimming pool", "swimming pools"),
    "harbor": ("harbor", "harbors"),
}

#: UC Merced LandUse classes (folder names, alphabetical = official label order).
UCM_CLASSES: tuple[str, ...] = _classes.UCM_FOLDER_NAMES

#: Land-use scene types the generator draws: every UC Merced folder (the official MCC loader
#: reads all 21 class folders).
LANDUSE_TYPES: tuple[str, ...] = UCM_CLASSES

#: UC Merced folder -> the class name the official MCC protocol prompts with.
LANDUSE_PROMPT: dict[str, str] = {
    **{c: c for c in UCM_CLASSES},
    "baseballdiamond": "baseballfield",
    "golfcourse": "golffield",
    "storagetanks": "storagetank",
}
