"""Tests of the ``seg`` plugin (iSAID colour masks, single-channel label PNGs).

No real iSAID mask is public (SOURCES.md): the masks here are SYNTHETIC, drawn with the official
palette; the image is the REAL 369x369 RGBA iSAID crop of ``data/real/isaid``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from PIL import Image
from plugin_support import FakeEngine, run_harness_tiny
from sklearn.metrics import confusion_matrix as sk_confusion
from sklearn.metrics import f1_score, jaccard_score

from remotesam.bench.api import DatasetError
from remotesam.bench.kit import masks as kit_masks
from remotesam.text import prompt
from remotesam_plugins.metrics.segmentation import (
    fast_hist,
    per_class_iou_official,
    per_class_pa_official,
    semantic_metrics,
)
from remotesam_plugins.seg import (
    ISAID_CLASSES,
    ISAID_PALETTE,
    ISAIDAdapter,
    LabelPNGAdapter,
    PotsdamAdapter,
    SemanticSegmentationTask,
    colour_to_label,
    merge_class_masks,
)


class FakeSegModel:
    """Answers through a :class:`FakeEngine` with the given label maps (at network size S) in
    image order: prompt ``k`` of an image gets ``mask_net = (label_map == k + 1)``, and the
    plugin's ``reduce`` merges the class masks back into that label map. ``calls`` records each
    image's prompts."""

    def __init__(self, label_maps: list[np.ndarray]) -> None:
        self.maps = list(label_maps)
        self.calls: list[list[str]] = []
        self._image: np.ndarray | None = None
        self._map = np.zeros((1, 1), np.int64)
        self.engine = FakeEngine(self._painted, int(np.asarray(label_maps[0]).shape[0]))
        self.batch_size = 8

    def _painted(self, image: np.ndarray, text: str) -> Any:
        if image is not self._image:  # the engine loads each request's image once
            self._image = image
            self._map = np.asarray(self.maps.pop(0)).astype(np.int64)
            self.calls.append([])
        self.calls[-1].append(text)
        k = len(self.calls[-1])
        return SimpleNamespace(mask=np.zeros(image.shape[:2], np.uint8),
                               mask_net=(self._map == k).astype(np.uint8))


def _colour(label: np.ndarray) -> np.ndarray:
    pal = np.asarray([(0, 0, 0), *ISAID_PALETTE], dtype=np.uint8)
    return pal[label]


def _random_label(rng: np.random.Generator, h: int, w: int, k: int) -> np.ndarray:
    lab = np.zeros((h, w), np.int64)
    for _ in range(6):
        c = int(rng.integers(1, k + 1))
        y, x = rng.integers(0, h - 20), rng.integers(0, w - 20)
        lab[y : y + int(rng.integers(10, 120)), x : x + int(rng.integers(10, 120))] = c
    return lab


@pytest.fixture
def isaid_root(real_data: Path, tmp_path: Path) -> tuple[Path, np.ndarray]:
    """Official download layout: REAL image (renamed P0998.png) + SYNTHETIC palette mask."""
    img = real_data / "isaid" / "images_only" / "PIX_SEG_068_iSAID_P0998-ori.png"
    (tmp_path / "val" / "images").mkdir(parents=True)
    (tmp_path / "val" / "Semantic_masks" / "images").mkdir(parents=True)
    shutil.copy(img, tmp_path / "val" / "images" / "P0998.png")
    w, h = Image.open(img).size
    label = _random_label(np.random.default_rng(0), h, w, 15)
    Image.fromarray(_colour(label)).save(
        tmp_path / "val" / "Semantic_masks" / "images" / "P0998_instance_color_RGB.png"
    )
    # an instance-id mask in the same folder must be skipped
    Image.fromarray(np.zeros((h, w, 3), np.uint8)).save(
        tmp_path / "val" / "Semantic_masks" / "images" / "P0998_instance_id_RGB.png"
    )
    return tmp_path, label


# --------------------------------------------------------------------------------------------
# golden parity with the official SEG.py helpers
# --------------------------------------------------------------------------------------------


@pytest.mark.parity
def test_seg_helpers_equal_official_golden(reference_dir: Path) -> None:
    g = np.load(reference_dir / "postprocess_golden.npz")
    r = json.loads(str(g["results_json"]))["seg"]
    # change_label: unknown colours -> 0 in the official code, and by default here
    lab = colour_to_label(g["seg_label_rgb"], ISAID_PALETTE[:3])
    np.testing.assert_array_equal(lab, g["seg_label"])
    with pytest.raises(DatasetError, match=r"outside the class palette: \(255, 255, 255\)"):
        colour_to_label(g["seg_label_rgb"], ISAID_PALETTE[:3], unknown="error", where="golden")
    merged = merge_class_masks(g["seg_pred_bin"][:, 0])
    np.testing.assert_array_equal(merged, g["seg_merged"][0])
    hist = fast_hist(g["seg_label"], merged, 4)
    np.testing.assert_array_equal(hist, g["seg_hist"])
    np.testing.assert_allclose(
        per_class_iou_official(hist), g["seg_per_class_iu"], rtol=0, atol=1e-15
    )
    np.testing.assert_allclose(
        per_class_pa_official(hist), g["seg_per_class_PA"], rtol=0, atol=1e-15
    )
    m = semantic_metrics(hist)
    assert m["mIoU"] == pytest.approx(r["mIoU"], abs=1e-15)
    assert m["mPA"] == pytest.approx(r["mPA"], abs=1e-15)
    # a class absent from label and prediction counts as IoU 0 (official max(., 1))
    np.testing.assert_allclose(
        per_class_iou_official(g["seg_hist_absent"]), g["seg_iu_absent"], atol=1e-15
    )
    np.testing.assert_allclose(
        per_class_pa_official(g["seg_hist_absent"]), g["seg_pa_absent"], atol=1e-15
    )


def test_standard_metrics_equal_sklearn() -> None:
    rng = np.random.default_rng(3)
    for seed in range(3):
        rng = np.random.default_rng(seed)
        y = rng.integers(0, 6, 5000)
        p = np.where(rng.random(5000) < 0.6, y, rng.integers(0, 6, 5000))
        p[p == 4] = 5  # class 4 never predicted
        y[y == 3] = 2
        p[p == 3] = 2  # class 3 absent from both -> excluded from the standard means
        hist = fast_hist(y, p, 6)
        np.testing.assert_array_equal(hist, sk_confusion(y, p, labels=range(6)))
        m = semantic_metrics(hist)
        present = [c for c in range(1, 6) if (y == c).any() or (p == c).any()]
        assert m["mIoU_fg"] == pytest.approx(jaccard_score(y, p, labels=present, average="macro"))
        assert m["mF1"] == pytest.approx(f1_score(y, p, labels=present, average="macro"))
        assert m["aAcc"] == pytest.approx((y == p).mean())


# --------------------------------------------------------------------------------------------
# iSAID adapter
# --------------------------------------------------------------------------------------------


@pytest.mark.realdata
def test_isaid_adapter_and_end_to_end(isaid_root: tuple[Path, np.ndarray]) -> None:
    root, label = isaid_root
    a = ISAIDAdapter(root)
    assert a.split == "val" and a.classes == ISAID_CLASSES and len(ISAID_CLASSES) == 15
    samples = a.samples()
    assert [s.sample_id for s in samples] == ["P0998"]
    from remotesam_plugins.seg import read_label

    np.testing.assert_array_equal(read_label(samples[0].target), label)
    # perfect prediction at network size 896
    net = kit_masks.resize_nearest(label, 896)
    task = SemanticSegmentationTask()
    model = FakeSegModel([net])
    preds = task.predict(model, samples)
    # official prompt with the period
    assert model.calls == [[prompt(c, "{} in the image.") for c in ISAID_CLASSES]]
    assert model.calls[0][0] == "ship in the image."
    assert json.loads(json.dumps(preds)) == preds
    s = task.score(samples, preds)
    present = np.unique(label)
    assert s.metrics["mIoU"] == pytest.approx(100 * len(present) / 16)  # absent classes count 0
    assert s.metrics["mIoU_fg"] == pytest.approx(100.0)
    assert s.metrics["aAcc"] == pytest.approx(100.0)
    assert set(s.metrics) == {m.name for m in task.metrics}
    assert s.tables["confusion_matrix"]["classes"][0] == "background"
    assert task.settings() == {"template": "{} in the image."}


@pytest.mark.realdata
def test_isaid_score_matches_independent_confusion(isaid_root: tuple[Path, np.ndarray]) -> None:
    root, label = isaid_root
    samples = ISAIDAdapter(root).samples()
    rng = np.random.default_rng(5)
    pred_net = _random_label(rng, 64, 64, 15)
    task = SemanticSegmentationTask({"eval_size": 128})
    s = task.score(samples, task.predict(FakeSegModel([pred_net]), samples))
    gt_e = np.asarray(
        Image.fromarray(label.astype(np.int32), mode="I").resize((128, 128), Image.NEAREST)
    )
    pr_e = np.asarray(
        Image.fromarray(pred_net.astype(np.int32), mode="I").resize((128, 128), Image.NEAREST)
    )
    hist = sk_confusion(gt_e.ravel(), pr_e.ravel(), labels=range(16))
    iu = np.diag(hist) / np.maximum(hist.sum(0) + hist.sum(1) - np.diag(hist), 1)
    assert s.metrics["mIoU"] == pytest.approx(100 * iu.mean())
    np.testing.assert_array_equal(np.asarray(s.tables["confusion_matrix"]["matrix"]), hist)
    num, den = s.per_sample_ratio["aAcc"]
    assert 100 * np.trace(hist) / hist.sum() == pytest.approx(num.sum() / den.sum())


@pytest.mark.realdata
def test_isaid_unknown_colour_official_by_default(isaid_root: tuple[Path, np.ndarray]) -> None:
    """Official ``change_label`` maps a colour outside the palette to background (0): the
    default; ``unknown_colour="error"`` fails the sample instead."""
    from remotesam_plugins.seg import read_label

    root, label = isaid_root
    mask_path = root / "val" / "Semantic_masks" / "images" / "P0998_instance_color_RGB.png"
    rgb = _colour(label)
    rgb[7, 11] = (12, 34, 56)
    Image.fromarray(rgb).save(mask_path)
    samples = ISAIDAdapter(root).samples()
    official = label.copy()
    official[7, 11] = 0
    np.testing.assert_array_equal(read_label(samples[0].target), official)
    preds = SemanticSegmentationTask().predict(FakeSegModel([label]), samples)
    assert len(preds) == 1
    samples = ISAIDAdapter(root, unknown_colour="error").samples()
    with pytest.raises(DatasetError, match=r"P0998_instance_color_RGB\.png: 1 pixel\(s\) "
                       r".*\(12, 34, 56\) \(first at row 7, column 11\)"):
        SemanticSegmentationTask().predict(FakeSegModel([label]), samples)


@pytest.mark.realdata
def test_isaid_16bit_grey_colour_mask_read_as_pil_convert_rgb(
    isaid_root: tuple[Path, np.ndarray],
) -> None:
    """A 16-bit greyscale colour mask: the official ``Image.open(p).convert("RGB")`` clips to
    0..255 (PIL), so grey levels 0 and 1000 become (0, 0, 0) and (255, 255, 255): background.
    It is scored, not refused, and no pixel keeps a high byte (1000 >> 8 = 3)."""
    from remotesam_plugins.seg import read_label

    root, label = isaid_root
    mask_path = root / "val" / "Semantic_masks" / "images" / "P0998_instance_color_RGB.png"
    grey = np.where(label > 0, 1000, 0).astype(np.uint16)
    Image.fromarray(grey).save(mask_path)
    with Image.open(mask_path) as im:
        assert im.mode == "I;16"
        official_rgb = np.asarray(im.convert("RGB"))
    samples = ISAIDAdapter(root).samples()
    got = read_label(samples[0].target)
    np.testing.assert_array_equal(got, colour_to_label(official_rgb, ISAID_PALETTE))
    assert not got.any()


def test_isaid_script_layout_and_errors(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"(?s)isaid mask folder.*Expected layout"):
        ISAIDAdapter(tmp_path)
    (tmp_path / "test" / "masks").mkdir(parents=True)
    (tmp_path / "test" / "images").mkdir(parents=True)
    Image.fromarray(_colour(np.ones((20, 30), np.int64))).save(
        tmp_path / "test" / "masks" / "P0003_instance_color_RGB.png"
    )
    a = ISAIDAdapter(tmp_path, "test")  # official SEG.py layout <split>/masks
    with pytest.raises(DatasetError, match=r"absent: .*test/images/P0003\.png"):
        a.samples()
    Image.new("RGB", (30, 21)).save(tmp_path / "test" / "images" / "P0003.png")
    samples = a.samples()
    with pytest.raises(DatasetError, match=r"label size 20x30 differs from image .* size 21x30"):
        SemanticSegmentationTask().predict(FakeSegModel([np.zeros((8, 8))]), samples)
    with pytest.raises(DatasetError, match="unknown_colour must be"):
        ISAIDAdapter(tmp_path, "test", unknown_colour="ignore")


# --------------------------------------------------------------------------------------------
# single-channel label PNGs
# --------------------------------------------------------------------------------------------


def _label_png_root(tmp_path: Path, values: np.ndarray, n: int = 2) -> Path:
    (tmp_path / "img_dir" / "val").mkdir(parents=True)
    (tmp_path / "ann_dir" / "val").mkdir(parents=True)
    for i in range(n):
        Image.new("RGB", (values.shape[1], values.shape[0])).save(
            tmp_path / "img_dir" / "val" / f"tile{i}.png"
        )
        Image.fromarray(values.astype(np.uint8)).save(tmp_path / "ann_dir" / "val" / f"tile{i}.png")
    return tmp_path


def test_label_png_generic_with_classes_option(tmp_path: Path) -> None:
    vals = np.zeros((40, 50), np.uint8)
    vals[:, 25:] = 1
    vals[:5] = 255  # ignored
    root = _label_png_root(tmp_path, vals)
    with pytest.raises(DatasetError, match="class names are required: pass the option 'classes'"):
        LabelPNGAdapter(root)
    a = LabelPNGAdapter(root, classes="road, building")
    samples = a.samples()
    assert [s.sample_id for s in samples] == ["tile0", "tile1"]
    from remotesam_plugins.seg import read_label

    lab = read_label(samples[0].target)
    assert set(np.unique(lab)) == {-1, 1, 2}  # value v -> class v + 1 (0 = background), 255 ignored
    pred = np.where(vals == 255, 0, vals + 1).astype(np.int64)  # perfect
    task = SemanticSegmentationTask()
    model = FakeSegModel([pred, pred])
    s = task.score(samples, task.predict(model, samples))
    assert model.calls[0] == [prompt("road", "{} in the image."),
                              prompt("building", "{} in the image.")]
    assert s.metrics["aAcc"] == pytest.approx(100.0)  # ignored rows left out
    assert s.metrics["mIoU_fg"] == pytest.approx(100.0)
    assert s.metrics["mIoU"] == pytest.approx(100 * 2 / 3)  # background absent -> 0 (official rule)


def test_potsdam_defaults_and_bad_value(tmp_path: Path) -> None:
    vals = np.full((16, 16), 3, np.uint8)
    vals[0] = 0  # mmseg Potsdam: 0 = ignored boundary
    vals[1, 1] = 9  # not a class value
    root = _label_png_root(tmp_path, vals, n=1)
    samples = PotsdamAdapter(root).samples()
    assert samples[0].target["classes"][2] == "low vegetation"
    with pytest.raises(
        DatasetError, match=r"tile0\.png: label value\(s\) \[9\] are neither a class value \(1\.\.6"
    ):
        SemanticSegmentationTask().predict(FakeSegModel([vals]), samples)


def test_rgb_label_png_is_rejected(tmp_path: Path) -> None:
    root = _label_png_root(tmp_path, np.zeros((8, 8), np.uint8), n=1)
    Image.new("RGB", (8, 8)).save(root / "ann_dir" / "val" / "tile0.png")
    samples = LabelPNGAdapter(root, classes=["a"]).samples()
    with pytest.raises(
        DatasetError, match=r"tile0\.png: label image has PIL mode RGB; expected a single-channel"
    ):
        SemanticSegmentationTask().predict(FakeSegModel([np.zeros((8, 8))]), samples)


def test_label_without_image(tmp_path: Path) -> None:
    root = _label_png_root(tmp_path, np.zeros((8, 8), np.uint8), n=1)
    (root / "img_dir" / "val" / "tile0.png").unlink()
    with pytest.raises(DatasetError, match=r"1 label\(s\) without an image of the same name"):
        LabelPNGAdapter(root, classes=["a"]).samples()


def test_task_options() -> None:
    with pytest.raises(ValueError, match="unknown option"):
        SemanticSegmentationTask({"prompt": "x"})
    with pytest.raises(ValueError, match="must contain"):
        SemanticSegmentationTask({"template": "no slot"})
    assert SemanticSegmentationTask({"template": "{}"}).settings() == {"template": "{}"}


@pytest.mark.realdata
def test_check_task_plugin(isaid_root: tuple[Path, np.ndarray]) -> None:
    from remotesam import testing

    root, label = isaid_root
    testing.check_task_plugin(SemanticSegmentationTask)
    model = FakeSegModel([kit_masks.resize_nearest(label, 32)])
    testing.check_task_plugin(SemanticSegmentationTask, dataset_root=root, model=model)


def test_label_png_classes_txt(tmp_path: Path) -> None:
    root = _label_png_root(tmp_path, np.zeros((8, 8), np.uint8), n=1)
    (root / "classes.txt").write_text("water\n\nforest\n")
    assert LabelPNGAdapter(root).samples()[0].target["classes"] == ["water", "forest"]
    with pytest.raises(DatasetError, match=r"class names are required.*classes\.txt"):
        (root / "classes.txt").unlink()
        LabelPNGAdapter(root)


@pytest.mark.slow
@pytest.mark.realdata
def test_harness_end_to_end_with_tiny_model(
    isaid_root: tuple[Path, np.ndarray], tmp_path: Path
) -> None:
    root, _ = isaid_root
    res = run_harness_tiny(tmp_path, "seg.isaid", root)
    assert (res.n_evaluated, res.n_failed) == (1, 0)
    assert set(res.metrics) == {m.name for m in SemanticSegmentationTask.metrics}
    assert len(res.tables["per_class"]) == 16
