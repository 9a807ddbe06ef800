"""Tests of the private helpers shared by the built-in plugins
(``remotesam_plugins.metrics._stats``) and of the class vocabularies in :mod:`remotesam.classes`.

The public helpers for plugin authors (:mod:`remotesam.bench.kit`) are tested in test_kit.py."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import f1_score

from remotesam import classes as C
from remotesam_plugins.metrics._stats import f1_per_class, nanmean


def test_class_vocabularies() -> None:
    assert len(C.DIOR_CLASSES) == len(set(C.DIOR_CLASSES)) == 20
    assert C.DIOR_RSVG_CLASSES[7:9] == ("Expressway-Service-area", "Expressway-toll-station")
    assert [c.lower() for c in C.DIOR_RSVG_CLASSES] == list(C.DIOR_CLASSES)
    # RRSIS-D's 0-based category order: the two capitalised names first, then DIOR order
    assert C.RRSISD_CLASSES[:3] == (
        "Expressway-Service-area",
        "Expressway-toll-station",
        "airplane",
    )
    assert C.RRSISD_CLASSES[-1] == "windmill" and set(C.RRSISD_CLASSES) == set(C.DIOR_RSVG_CLASSES)
    assert len(C.ISAID_CLASSES) == len(C.ISAID_PALETTE) == len(C.ISAID_DEVKIT_NAMES) == 15
    assert len(set(C.ISAID_PALETTE)) == 15 and (0, 0, 0) not in C.ISAID_PALETTE
    assert dict(zip(C.ISAID_CLASSES, C.ISAID_PALETTE))["airplane"] == (0, 127, 255)
    assert len(C.DOTA_CLASSES) == 18 and set(C.DOTA_NAME_MAP.values()) <= set(C.DOTA_CLASSES)
    assert len(C.UCM_CLASSES) == 21 and list(C.UCM_FOLDER_NAMES) == sorted(C.UCM_FOLDER_NAMES)
    assert C.UCM_FOLDERS["golffield"] == "golfcourse" and C.UCM_FOLDER_NAMES[2] == "baseballdiamond"
    assert len(C.CAPTION_POTENTIAL_CLASSES) == len(set(C.CAPTION_POTENTIAL_CLASSES)) == 37
    assert set(C.DIOR_PRIOR_AREAS) == set(C.DIOR_CLASSES)
    assert len(C.DOTA_COUNT_CLASSES) == 17 and "vehicle" in C.DOTA_COUNT_CLASSES


def test_stats_helpers() -> None:
    assert nanmean(np.array([1.0, np.nan, 3.0])) == 2.0
    assert np.isnan(nanmean(np.array([np.nan]))) and np.isnan(nanmean(np.zeros(0)))
    rng = np.random.default_rng(0)
    t, p = rng.integers(0, 4, 50), rng.integers(0, 4, 50)
    cm = np.bincount(4 * t + p, minlength=16).reshape(4, 4)
    np.testing.assert_allclose(f1_per_class(cm), f1_score(t, p, average=None), rtol=1e-12)
    assert np.isnan(f1_per_class(np.array([[3, 0], [0, 0]]))[1])
