"""Tests of the helpers shared by the plugins (``remotesam_plugins._common``,
``remotesam_plugins.metrics._stats``) and of the class vocabularies in :mod:`remotesam.classes`."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from remotesam_plugins import _common
from remotesam_plugins.det import DetectionTask
from remotesam_plugins.metrics._stats import f1_per_class, nanmean
from sklearn.metrics import f1_score

from remotesam import classes as C
from remotesam.bench.api import DatasetError


def test_class_vocabularies() -> None:
    assert len(C.DIOR_CLASSES) == len(set(C.DIOR_CLASSES)) == 20
    assert C.DIOR_RSVG_CLASSES[7:9] == ("Expressway-Service-area", "Expressway-toll-station")
    assert [c.lower() for c in C.DIOR_RSVG_CLASSES] == list(C.DIOR_CLASSES)
    # RRSIS-D's 0-based category order: the two capitalised names first, then DIOR order
    assert C.RRSISD_CLASSES[:3] == ("Expressway-Service-area", "Expressway-toll-station", "airplane")
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


def test_check_options() -> None:
    _common.check_options("x", {"a": 1}, {"a", "b"})
    with pytest.raises(DatasetError, match=r"^isaid: unknown option\(s\) \['z'\]; available: \['a', 'b'\]$"):
        _common.check_options("isaid", {"z": 1, "a": 2}, {"b", "a"})
    with pytest.raises(ValueError, match=r"^vg task: unknown option\(s\) \['k'\]; this task has no options$"):
        _common.check_options("vg task", {"k": 1}, error=ValueError, kind="task")


def test_option_path_and_int_and_bool_options(tmp_path: Path) -> None:
    assert _common.option_path({"a": "x/y"}, "a", tmp_path) == Path("x/y")
    assert _common.option_path({"a": ""}, "a", tmp_path) == tmp_path
    assert _common.option_path({}, "a", tmp_path) == tmp_path
    assert _common.positive_int_option("ref", {}, "eval_size", 896) == 896
    assert _common.positive_int_option("ref", {"eval_size": "64"}, "eval_size", 896) == 64
    with pytest.raises(ValueError, match=r"ref task: option eval_size='a' is not an integer"):
        _common.positive_int_option("ref", {"eval_size": "a"}, "eval_size", 896)
    with pytest.raises(ValueError, match="must be positive, got 0"):
        _common.positive_int_option("seg", {"eval_size": 0}, "eval_size", 896)
    assert _common.parse_bool_option("t", "k", "Yes") is True
    assert _common.parse_bool_option("t", "k", "auto", allow_auto=True) is None
    with pytest.raises(ValueError, match=r"expected true/false$"):
        _common.parse_bool_option("t", "k", "auto")


def test_read_text(tmp_path: Path) -> None:
    p = tmp_path / "a.txt"
    with pytest.raises(DatasetError, match=r"^DOTA label file: file .*a\.txt not found$"):
        _common.read_text(p, "DOTA label file")
    p.write_bytes(b"\xff\xfe bad")
    with pytest.raises(DatasetError, match=r"^split file: cannot read .*a\.txt: .*utf-8"):
        _common.read_text(p, "split file")
    p.write_text("ok\n", encoding="utf-8")
    assert _common.read_text(p) == "ok\n"


def test_score_lengths_and_sample_classes() -> None:
    _common.check_score_lengths([1], [2])
    with pytest.raises(ValueError, match="score: 2 samples but 1 predictions"):
        _common.check_score_lengths([1, 2], [3])
    task = DetectionTask()
    dota = SimpleNamespace(sample_id="s", meta={"dataset": "dotav2"})
    assert _common.sample_dataset_classes(task, dota) == C.DOTA_CLASSES
    assert _common.sample_dataset_classes(task, SimpleNamespace(sample_id="s", meta={})) == C.DIOR_CLASSES
    with pytest.raises(ValueError, match="sample s: unknown dataset 'nope' in meta"):
        _common.sample_dataset_classes(task, SimpleNamespace(sample_id="s", meta={"dataset": "nope"}))


def test_stats_helpers() -> None:
    assert nanmean(np.array([1.0, np.nan, 3.0])) == 2.0
    assert np.isnan(nanmean(np.array([np.nan]))) and np.isnan(nanmean(np.zeros(0)))
    rng = np.random.default_rng(0)
    t, p = rng.integers(0, 4, 50), rng.integers(0, 4, 50)
    cm = np.bincount(4 * t + p, minlength=16).reshape(4, 4)
    np.testing.assert_allclose(f1_per_class(cm), f1_score(t, p, average=None), rtol=1e-12)
    assert np.isnan(f1_per_class(np.array([[3, 0], [0, 0]]))[1])
