"""Official class vocabularies of the benchmarks (single source for plugins and data tools).

Every name list here is in its **official order** (the order the official evaluation code
prompts with, or the dataset's own label order); the plugins, the synthetic-data generator and
anything else that needs a dataset's classes import them from here instead of keeping copies.

* DIOR (20 classes) in three spellings: :data:`DIOR_CLASSES` (RemoteSAM's COCO json / detection
  / counting), :data:`DIOR_RSVG_CLASSES` (DIOR-RSVG ``<name>`` elements) and
  :data:`RRSISD_CLASSES` (RRSIS-D ``instances.json``, 0-based ids);
* iSAID (15 classes): :data:`ISAID_CLASSES` with its RGB :data:`ISAID_PALETTE` (label
  ``k + 1``; background ``(0, 0, 0)`` = 0) and the devkit spellings :data:`ISAID_DEVKIT_NAMES`;
* ISPRS Potsdam / Vaihingen: :data:`POTSDAM_CLASSES` (label values 1..6);
* DOTA-v2.0 (18 classes): :data:`DOTA_CLASSES` and :data:`DOTA_NAME_MAP` (label-file name ->
  RemoteSAM name);
* UC Merced LandUse (21): :data:`UCM_CLASSES` (official prompt names), :data:`UCM_FOLDERS`
  (name -> folder) and :data:`UCM_FOLDER_NAMES` (the folders, alphabetical);
* captioning: the 37 :data:`CAPTION_POTENTIAL_CLASSES`;
* counting: prior box areas :data:`DIOR_PRIOR_AREAS`, :data:`DOTA_PRIOR_AREAS` (pixels) and the
  17 :data:`DOTA_COUNT_CLASSES`.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = [
    "AID_MULTILABEL_CLASSES",
    "CAPTION_POTENTIAL_CLASSES",
    "DIOR_CLASSES",
    "DIOR_PRIOR_AREAS",
    "DIOR_RSVG_CLASSES",
    "DOTA_CLASSES",
    "DOTA_COUNT_CLASSES",
    "DOTA_NAME_MAP",
    "DOTA_PRIOR_AREAS",
    "ISAID_CLASSES",
    "ISAID_DEVKIT_NAMES",
    "ISAID_PALETTE",
    "MLRSNET_CLASSES",
    "MULTISCENE_CLASSES",
    "MULTISCENE_RELEASE_NAMES",
    "POTSDAM_CLASSES",
    "RRSISD_CLASSES",
    "UCM_CLASSES",
    "UCM_FOLDERS",
    "UCM_FOLDER_NAMES",
    "UCM_MULTILABEL_CLASSES",
]

# --------------------------------------------------------------------------------------------
# DIOR family
# --------------------------------------------------------------------------------------------

#: DIOR's 20 classes in the official order; COCO category id = index + 1 in RemoteSAM's json.
DIOR_CLASSES: tuple[str, ...] = (
    "airplane", "airport", "baseballfield", "basketballcourt", "bridge", "chimney", "dam",
    "expressway-service-area", "expressway-toll-station", "golffield", "groundtrackfield",
    "harbor", "overpass", "ship", "stadium", "storagetank", "tenniscourt", "trainstation",
    "vehicle", "windmill",
)  # fmt: skip

#: The two DIOR names DIOR-RSVG and RRSIS-D capitalise.
_DIOR_CAPITALISED: Mapping[str, str] = {
    "expressway-service-area": "Expressway-Service-area",
    "expressway-toll-station": "Expressway-toll-station",
}

#: DIOR class names as they appear in DIOR-RSVG ``<name>`` elements (DIOR order).
DIOR_RSVG_CLASSES: tuple[str, ...] = tuple(_DIOR_CAPITALISED.get(c, c) for c in DIOR_CLASSES)

#: RRSIS-D categories in their official 0-based id order (``instances.json`` ``categories``):
#: the DIOR-RSVG names sorted by code point (the two capitalised names first).
RRSISD_CLASSES: tuple[str, ...] = tuple(sorted(DIOR_RSVG_CLASSES))

# --------------------------------------------------------------------------------------------
# iSAID, ISPRS
# --------------------------------------------------------------------------------------------

#: iSAID classes in the official SEG.py order (label k + 1 = ``ISAID_CLASSES[k]``; 0 = background).
ISAID_CLASSES: tuple[str, ...] = (
    "ship", "storagetank", "baseballfield", "tenniscourt", "basketballcourt", "groundtrackfield",
    "bridge", "large-vehicle", "small-vehicle", "helicopter", "swimming-pool", "roundabout",
    "soccer-ball-field", "airplane", "harbor",
)  # fmt: skip

#: iSAID RGB colours (iSAID devkit), aligned with :data:`ISAID_CLASSES`; background is (0, 0, 0).
ISAID_PALETTE: tuple[tuple[int, int, int], ...] = (
    (0, 0, 63), (0, 63, 63), (0, 63, 0), (0, 63, 127), (0, 63, 191), (0, 63, 255), (0, 127, 63),
    (0, 127, 127), (0, 0, 127), (0, 0, 191), (0, 0, 255), (0, 191, 127), (0, 127, 191),
    (0, 127, 255), (0, 100, 155),
)  # fmt: skip

#: iSAID devkit class keys, aligned with :data:`ISAID_CLASSES` (iSAID_Devkit spelling).
ISAID_DEVKIT_NAMES: tuple[str, ...] = (
    "ship", "storage_tank", "baseball_diamond", "tennis_court", "basketball_court",
    "Ground_Track_Field", "Bridge", "Large_Vehicle", "Small_Vehicle", "Helicopter",
    "Swimming_pool", "Roundabout", "Soccer_ball_field", "plane", "Harbor",
)  # fmt: skip

#: ISPRS Potsdam / Vaihingen classes, mmsegmentation order (label PNG values 1..6, 0 = ignore).
POTSDAM_CLASSES: tuple[str, ...] = (
    "impervious surface", "building", "low vegetation", "tree", "car", "clutter",
)  # fmt: skip

# --------------------------------------------------------------------------------------------
# DOTA-v2.0
# --------------------------------------------------------------------------------------------

#: DOTA-v2.0's 18 classes as RemoteSAM names them (DET_DOTA order).
DOTA_CLASSES: tuple[str, ...] = (
    "airplane", "ship", "storagetank", "baseballfield", "tenniscourt", "basketballcourt",
    "groundtrackfield", "harbor", "bridge", "large-vehicle", "small-vehicle", "helicopter",
    "roundabout", "soccer-ball-field", "swimming-pool", "container-crane", "airport", "helipad",
)  # fmt: skip

#: Official DOTA label name -> RemoteSAM class name (names not listed are kept as they are).
DOTA_NAME_MAP: Mapping[str, str] = {
    "plane": "airplane",
    "storage-tank": "storagetank",
    "baseball-diamond": "baseballfield",
    "tennis-court": "tenniscourt",
    "basketball-court": "basketballcourt",
    "ground-track-field": "groundtrackfield",
}

# --------------------------------------------------------------------------------------------
# UC Merced LandUse, captioning
# --------------------------------------------------------------------------------------------

#: UC Merced's 21 official class names (MCC prompts), in official order.
UCM_CLASSES: tuple[str, ...] = (
    "agricultural", "airplane", "baseballfield", "beach", "buildings", "chaparral",
    "denseresidential", "forest", "freeway", "golffield", "harbor", "intersection",
    "mediumresidential", "mobilehomepark", "overpass", "parkinglot", "river", "runway",
    "sparseresidential", "storagetank", "tenniscourt",
)  # fmt: skip

#: Folder of each official class name in the UC Merced download (three names differ).
UCM_FOLDERS: Mapping[str, str] = {
    **{c: c for c in UCM_CLASSES},
    "baseballfield": "baseballdiamond",
    "golffield": "golfcourse",
    "storagetank": "storagetanks",
}

#: UC Merced's 21 folder names, aligned with :data:`UCM_CLASSES` (alphabetical, as downloaded);
#: UCM-captions' ``N.tif`` is ``UCM_FOLDER_NAMES[(N-1)//100]`` tile ``(N-1) % 100``.
UCM_FOLDER_NAMES: tuple[str, ...] = tuple(UCM_FOLDERS[c] for c in UCM_CLASSES)

#: The 37 "potential classes" the official captioning detects, in official order.
CAPTION_POTENTIAL_CLASSES: tuple[str, ...] = (
    "road", "highway", "bank", "tenniscourt", "roof", "vehicle", "parking lot", "airplane",
    "stand", "farmland", "waste land", "basketballcourt", "storagetank", "pedestrian", "villa",
    "beach", "boat", "tree", "grass", "water", "trail", "park", "bush", "golffield", "house",
    "airport", "people", "overpass", "baseballfield", "swimming-pool", "bunker", "building",
    "harbor", "residential", "sand", "stadium", "intersection",
)  # fmt: skip

# --------------------------------------------------------------------------------------------
# SATIN multi-label sets (paper Fig. 7)
# --------------------------------------------------------------------------------------------

#: UC Merced multi-label classes (Chaudhuri et al.), SATIN spelling, release column order.
UCM_MULTILABEL_CLASSES: tuple[str, ...] = (
    "airplane", "bare soil", "buildings", "cars", "chaparral", "court", "dock", "field", "grass",
    "mobile home", "pavement", "sand", "sea", "ship", "tanks", "trees", "water",
)  # fmt: skip

#: AID multi-label classes (Hua et al.): the same 17 as UC Merced multi-label.
AID_MULTILABEL_CLASSES: tuple[str, ...] = UCM_MULTILABEL_CLASSES

#: MultiScene(-Clean) scene classes, SATIN spelling, official order.
MULTISCENE_CLASSES: tuple[str, ...] = (
    "apron", "baseball field", "basketball field", "beach", "bridge", "cemetery", "commercial",
    "farmland", "woodland", "golf course", "greenhouse", "helipad", "lake or pond", "oil field",
    "orchard", "parking lot", "park", "pier", "port", "quarry", "railway", "residential",
    "river", "roundabout", "runway", "soccer", "solar panel", "sparse shrub", "stadium",
    "storage tank", "tennis court", "train station", "wastewater plant", "wind turbine",
    "works", "sea",
)  # fmt: skip

#: MultiScene classes as the owners' loader names them (``SCENE_CATEGORY`` in
#: github.com/Hua-YS/Multi-Scene-Recognition ``utils/multiscene_clean.py``), same order as
#: :data:`MULTISCENE_CLASSES`, its spelling kept (``OilFiled``, ``SolarPannel``, ``WindTrubine``).
MULTISCENE_RELEASE_NAMES: tuple[str, ...] = (
    "Apron", "BaseballField", "BasketballField", "Beach", "Bridge", "Cemetery", "Commercial",
    "Farmland", "Woodland", "GolfCourse", "Greenhouse", "Helipad", "LakePond", "OilFiled",
    "Orchard", "ParkingLot", "Park", "Pier", "Port", "Quarry", "Railway", "Residential", "River",
    "Roundabout", "Runway", "Soccer", "SolarPannel", "SparseShrub", "Stadium", "StorageTank",
    "TennisCourt", "TrainStation", "WastewaterPlant", "WindTrubine", "Works", "Sea",
)  # fmt: skip

#: MLRSNet labels, released spelling and column order (``labels/<category>.csv`` header).
MLRSNET_CLASSES: tuple[str, ...] = (
    "airplane", "airport", "bare soil", "baseball diamond", "basketball court", "beach",
    "bridge", "buildings", "cars", "chaparral", "cloud", "containers", "crosswalk",
    "dense residential area", "desert", "dock", "factory", "field", "football field", "forest",
    "freeway", "golf course", "grass", "greenhouse", "gully", "habor", "intersection", "island",
    "lake", "mobile home", "mountain", "overpass", "park", "parking lot", "parkway", "pavement",
    "railway", "railway station", "river", "road", "roundabout", "runway", "sand", "sea",
    "ships", "snow", "snowberg", "sparse residential area", "stadium", "swimming pool", "tanks",
    "tennis court", "terrace", "track", "trail", "transmission tower", "trees", "water",
    "wetland", "wind turbine",
)  # fmt: skip

# --------------------------------------------------------------------------------------------
# Counting priors
# --------------------------------------------------------------------------------------------

#: Per-class prior box areas (pixels) of the official counting pipeline, DIOR.
DIOR_PRIOR_AREAS: Mapping[str, float] = {
    "airplane": 36, "airport": 1824, "baseballfield": 20, "basketballcourt": 88, "bridge": 9,
    "chimney": 12, "dam": 264, "expressway-service-area": 110, "expressway-toll-station": 36,
    "golffield": 2728, "groundtrackfield": 132, "harbor": 24, "overpass": 9, "ship": 14,
    "stadium": 255, "storagetank": 4, "tenniscourt": 36, "trainstation": 1170, "vehicle": 6,
    "windmill": 27,
}  # fmt: skip

#: Per-class prior box areas (pixels) of the official counting pipeline, DOTA (17 classes:
#: large and small vehicles are one ``vehicle`` class there).
DOTA_PRIOR_AREAS: Mapping[str, float] = {
    "airplane": 35, "ship": 15, "storagetank": 8, "baseballfield": 81, "tenniscourt": 153,
    "basketballcourt": 576, "groundtrackfield": 210, "harbor": 64, "bridge": 24, "vehicle": 21,
    "helicopter": 162, "roundabout": 16, "soccer-ball-field": 72, "swimming-pool": 20,
    "container-crane": 187, "airport": 1337, "helipad": 121,
}  # fmt: skip

#: The 17 DOTA counting classes (order of :data:`DOTA_PRIOR_AREAS`).
DOTA_COUNT_CLASSES: tuple[str, ...] = tuple(DOTA_PRIOR_AREAS)
