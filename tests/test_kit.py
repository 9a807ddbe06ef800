"""Tests of :mod:`remotesam.bench.kit`, the public helpers for plugin authors (file checks,
options, masks, images), through the public import path ``remotesam.bench.kit``."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

import remotesam.bench.kit as kit
from remotesam import classes as C
from remotesam.bench.api import DatasetError
from remotesam_plugins.det import DetectionTask


def test_check_options() -> None:
    kit.check_options("x", {"a": 1}, {"a", "b"})
    with pytest.raises(
        DatasetError, match=r"^isaid: unknown option\(s\) \['z'\]; available: \['a', 'b'\]$"
    ):
        kit.check_options("isaid", {"z": 1, "a": 2}, {"b", "a"})
    with pytest.raises(
        ValueError, match=r"^vg task: unknown option\(s\) \['k'\]; this task has no options$"
    ):
        kit.check_options("vg task", {"k": 1}, error=ValueError, kind="task")


def test_option_path_and_int_and_bool_options(tmp_path: Path) -> None:
    assert kit.option_path({"a": "x/y"}, "a", tmp_path) == Path("x/y")
    assert kit.option_path({"a": ""}, "a", tmp_path) == tmp_path
    assert kit.option_path({}, "a", tmp_path) == tmp_path
    assert kit.positive_int_option("ref", {}, "eval_size", 896) == 896
    assert kit.positive_int_option("ref", {"eval_size": "64"}, "eval_size", 896) == 64
    with pytest.raises(ValueError, match=r"ref task: option eval_size='a' is not an integer"):
        kit.positive_int_option("ref", {"eval_size": "a"}, "eval_size", 896)
    with pytest.raises(ValueError, match="must be positive, got 0"):
        kit.positive_int_option("seg", {"eval_size": 0}, "eval_size", 896)
    assert kit.parse_bool_option("t", "k", "Yes") is True
    assert kit.parse_bool_option("t", "k", "auto", allow_auto=True) is None
    with pytest.raises(ValueError, match=r"expected true/false$"):
        kit.parse_bool_option("t", "k", "auto")


def test_read_text(tmp_path: Path) -> None:
    p = tmp_path / "a.txt"
    with pytest.raises(DatasetError, match=r"^DOTA label file: file .*a\.txt not found$"):
        kit.read_text(p, "DOTA label file")
    p.write_bytes(b"\xff\xfe bad")
    with pytest.raises(DatasetError, match=r"^split file: cannot read .*a\.txt: .*utf-8"):
        kit.read_text(p, "split file")
    p.write_text("ok\n", encoding="utf-8")
    assert kit.read_text(p) == "ok\n"


def test_score_lengths_and_sample_classes() -> None:
    kit.check_score_lengths([1], [2])
    with pytest.raises(ValueError, match="score: 2 samples but 1 predictions"):
        kit.check_score_lengths([1, 2], [3])
    task = DetectionTask()
    dota = SimpleNamespace(sample_id="s", meta={"dataset": "dotav2"})
    assert kit.sample_dataset_classes(task, dota) == C.DOTA_CLASSES
    assert (
        kit.sample_dataset_classes(task, SimpleNamespace(sample_id="s", meta={})) == C.DIOR_CLASSES
    )
    with pytest.raises(ValueError, match="sample s: unknown dataset 'nope' in meta"):
        kit.sample_dataset_classes(task, SimpleNamespace(sample_id="s", meta={"dataset": "nope"}))


def test_public_surface() -> None:
    assert kit.DatasetError is DatasetError
    for name in kit.__all__:
        obj = getattr(kit, name)
        if callable(obj) and not isinstance(obj, type):
            assert obj.__doc__, f"kit.{name} has no docstring"


def test_require_and_layout_errors(tmp_path: Path) -> None:
    layout = "root/\n  images/*.png\n"
    assert kit.require_dir(tmp_path, "mydata") == tmp_path
    with pytest.raises(
        DatasetError,
        match=r"^mydata: directory .*images not found\. Point the dataset root.*\nExpected "
              r"layout:\nroot/\n  images/\*\.png$",
    ):
        kit.require_dir(tmp_path / "images", "mydata", layout)
    with pytest.raises(
        DatasetError, match=r"^mydata: file .*a\.json not found\. Point the dataset root[^\n]*$"
    ):
        kit.require_file(tmp_path / "a.json", "mydata")
    err = kit.layout_error("mydata: no split file", layout)
    assert (
        isinstance(err, DatasetError)
        and str(err) == "mydata: no split file\nExpected layout:\nroot/\n  images/*.png"
    )
    assert str(kit.layout_error("plain")) == "plain"
    with pytest.raises(
        DatasetError,
        match=r"^mydata: 2 image\(s\) listed in the annotations are absent: .*x\.png, .*y\.png\. "
              r"Complete",
    ):
        kit.check_images_exist(
            [tmp_path / "x.png", tmp_path / "y.png", tmp_path / "x.png"], "mydata", layout
        )


def test_image_files_and_images(tmp_path: Path) -> None:
    Image.fromarray(np.full((5, 7), 9, np.uint8)).save(tmp_path / "b.PNG")
    Image.fromarray(np.zeros((3, 4, 4), np.uint8)).save(tmp_path / "a.png")
    (tmp_path / ".hidden.png").write_bytes(b"x")
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "sub.png").mkdir()
    assert [p.name for p in kit.image_files(tmp_path)] == ["a.png", "b.PNG"]
    assert kit.image_size(tmp_path / "b.PNG") == (5, 7)
    grey = kit.load_image(tmp_path / "b.PNG")
    assert grey.shape == (5, 7, 3) and grey.dtype == np.uint8 and (grey == 9).all()
    assert kit.load_image(tmp_path / "a.png").shape == (3, 4, 3)
    with pytest.raises(DatasetError, match=r"image .*missing\.png not found"):
        kit.load_image(tmp_path / "missing.png")
    with pytest.raises(DatasetError, match=r"image .*\.hidden\.png is unreadable"):
        kit.load_image(tmp_path / ".hidden.png")
    with pytest.raises(DatasetError, match=r"image .*nope\.png not found"):
        kit.image_size(tmp_path / "nope.png")


def test_read_json_error_names_line_and_column(tmp_path: Path) -> None:
    p = tmp_path / "a.json"
    p.write_text('{"a": 1,\n "b": }', encoding="utf-8")
    with pytest.raises(
        DatasetError, match=r"^labels: .*a\.json is not valid JSON: .* at line 2, column 7"
    ):
        kit.read_json(p, "labels")
    p.write_text('{"a": [1, 2]}', encoding="utf-8")
    assert kit.read_json(p) == {"a": [1, 2]}


def test_as_str_list() -> None:
    assert kit.as_str_list("a, b,c", "classes") == ["a", "b", "c"]
    assert kit.as_str_list(["a", 2], "classes") == ["a", "2"]
    with pytest.raises(DatasetError, match=r"option 'classes': empty name in 'a,,b'"):
        kit.as_str_list("a,,b", "classes")
    with pytest.raises(DatasetError, match="expected a list or a comma-separated string, got 3"):
        kit.as_str_list(3, "classes")


def test_masks_round_trip_resize_and_iou() -> None:
    rng = np.random.default_rng(0)
    m = (rng.random((13, 17)) > 0.6).astype(np.uint8)
    rle = kit.mask_to_rle(m)
    assert rle["size"] == [13, 17] and isinstance(rle["counts"], str)
    np.testing.assert_array_equal(kit.rle_to_mask(rle), m)
    assert kit.rle_resize_nearest(rle, (9, 31)) == kit.mask_to_rle(kit.resize_nearest(m, (9, 31)))
    other = (rng.random((13, 17)) > 0.5).astype(np.uint8)
    inter, union = int((m & other).sum()), int((m | other).sum())
    assert kit.rle_inter_union(rle, kit.mask_to_rle(other)) == (inter, union)
    assert kit.mask_iou(m, kit.mask_to_rle(other)) == pytest.approx(inter / union)
    assert np.isnan(kit.mask_iou(np.zeros((4, 4)), np.zeros((4, 4))))
    assert kit.mask_iou(np.zeros((4, 4)), np.ones((4, 4))) == 0.0
    with pytest.raises(ValueError, match="sizes differ"):
        kit.mask_iou(np.zeros((4, 4)), np.zeros((4, 5)))
    with pytest.raises(ValueError, match="2-D mask"):
        kit.mask_to_rle(np.zeros((2, 2, 2)))
    poly = kit.segmentation_to_rle([[1, 1, 6, 1, 6, 6, 1, 6]], 8, 8, "ann.json, annotations[0]")
    assert kit.rle_to_mask(poly)[3, 3] == 1 and kit.rle_to_mask(poly)[7, 7] == 0
    with pytest.raises(
        DatasetError, match=r"^ann\.json, annotations\[0\]: RLE size \[4, 4\] differs"
    ):
        kit.segmentation_to_rle(kit.mask_to_rle(np.ones((4, 4))), 8, 8, "ann.json, annotations[0]")
