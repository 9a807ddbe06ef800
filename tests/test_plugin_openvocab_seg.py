"""UDD5 and DeepGlobe (``seg`` task, SegEarth-OV's open-vocabulary protocol) on the procedural
benchmark.

The metric check recomputes mIoU / mAcc as mmsegmentation's ``IoUMetric`` does (SegEarth-OV's
``test_evaluator``), from scikit-learn's confusion matrix of the labels and predictions read
independently of the plugin: per class I / U, NaN where U = 0, nanmean; ignored label 255 left
out.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from plugin_support import check_plugin_tiny, run_harness_tiny
from sklearn.metrics import confusion_matrix

from remotesam.bench.api import DatasetError
from remotesam.bench.kit.masks import mask_to_rle, resize_nearest
from remotesam.synth import generate
from remotesam_plugins._openvocab_seg import mmseg_metrics
from remotesam_plugins.seg import (
    DeepGlobeLandCoverAdapter,
    DeepGlobeRoadAdapter,
    SemanticSegmentationTask,
    UDD5Adapter,
    read_label,
)


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("ov_synth")
    generate(root, seed=0, n_images=6, image_size=64)
    return root


def _udd5_independent(path: Path) -> np.ndarray:
    """UDD5 gt -> 0 = other, 1..4 = vegetation..vehicle, -1 = ignored (255)."""
    raw = np.asarray(Image.open(path)).astype(np.int64)
    return np.where(raw == 255, -1, np.where(raw == 4, 0, raw + 1))


def _deepglobe_independent(path: Path) -> np.ndarray:
    return (np.asarray(Image.open(path).convert("L")) >= 128).astype(np.int64)


def _predictions(labels: list[np.ndarray], n_classes: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    out = []
    for lab in labels:
        pred = np.where(lab < 0, 0, lab)
        noise = rng.random(lab.shape) < 0.2
        pred = np.where(noise, rng.integers(0, n_classes + 1, lab.shape), pred)
        out.append(pred)
    return out


def _as_prediction(pred: np.ndarray, classes: list[str]) -> dict:
    return {"classes": classes, "net_size": list(pred.shape),
            "masks_net": [mask_to_rle(pred == k + 1) for k in range(len(classes))]}


def _mmseg_reference(labels: list[np.ndarray], preds: list[np.ndarray], n: int,
                     size: int) -> dict[str, float]:
    y = np.concatenate([resize_nearest(lab, size).ravel() for lab in labels])
    p = np.concatenate([resize_nearest(pr, size).ravel() for pr in preds])
    keep = y >= 0
    cm = confusion_matrix(y[keep], p[keep], labels=list(range(n))).astype(float)
    tp = np.diag(cm)
    union = cm.sum(0) + cm.sum(1) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = tp / union
        acc = tp / cm.sum(1)
    return {"mIoU": 100 * np.nanmean(iou), "mPA": 100 * np.nanmean(acc)}


@pytest.mark.parametrize(("cls", "sub", "reader"), [
    (UDD5Adapter, "UDD5", _udd5_independent),
    (DeepGlobeRoadAdapter, "DeepGlobe", _deepglobe_independent),
])
@pytest.mark.parametrize("eval_size", [64, 896])
def test_adapter_and_metric_equal_mmseg(synth_root: Path, cls: type, sub: str, reader,
                                        eval_size: int) -> None:
    ds = cls(synth_root / sub)
    assert ds.split == cls.info.split
    samples = ds.samples()
    assert len(samples) == 6
    labels = [reader(Path(s.target["label_path"])) for s in samples]
    for s, lab in zip(samples, labels):
        np.testing.assert_array_equal(read_label(s.target), lab)
    classes = list(cls.classes)
    preds = _predictions(labels, len(classes), seed=eval_size)
    task = SemanticSegmentationTask({"eval_size": eval_size})
    scores = task.score(samples, [_as_prediction(p, classes) for p in preds])
    ref = _mmseg_reference(labels, preds, len(classes) + 1, eval_size)
    assert scores.metrics["mIoU"] == pytest.approx(ref["mIoU"], abs=1e-9)
    assert scores.metrics["mPA"] == pytest.approx(ref["mPA"], abs=1e-9)
    assert "SegEarth-OV" in scores.tables["protocol"]
    assert scores.tables["per_class"][0]["class"] == ds.background_name


def test_mmseg_metrics_leave_absent_classes_out() -> None:
    hist = np.array([[5, 1, 0], [2, 3, 0], [0, 0, 0]])  # class 2 absent from label and pred
    m = mmseg_metrics(hist)
    assert m["mIoU"] == pytest.approx(np.mean([5 / 8, 3 / 6]))
    assert m["mPA"] == pytest.approx(np.mean([5 / 6, 3 / 5]))


def test_deepglobe_grset_and_release_layouts(synth_root: Path, tmp_path: Path) -> None:
    """synth writes GRSet's DeepGlobe_test_1530/{img,gt} (the folders SegEarth-OV's converter
    reads); the DeepGlobe release layout <split>/<id>_sat.jpg + _mask.png reads the same, and
    data check counts the GRSet tiles (it used to expect test/*_sat.jpg only)."""
    from remotesam.bench.data.check import check_dataset, dataset_entries

    grset = synth_root / "DeepGlobe" / "DeepGlobe_test_1530"
    assert sorted(p.name for p in grset.iterdir()) == ["gt", "img"]
    assert next((grset / "gt").iterdir()).name.endswith("_mask.png")
    ref = DeepGlobeRoadAdapter(synth_root / "DeepGlobe").samples()
    rel = tmp_path / "rel" / "DeepGlobe" / "test"
    rel.mkdir(parents=True)
    for p in (*(grset / "img").iterdir(), *(grset / "gt").iterdir()):
        shutil.copy(p, rel / p.name)
    got = DeepGlobeRoadAdapter(rel.parent).samples()
    assert [s.sample_id for s in got] == [s.sample_id for s in ref]
    for a, b in zip(got, ref):
        np.testing.assert_array_equal(read_label(a.target), read_label(b.target))
    shutil.copytree(grset, tmp_path / "g" / "DeepGlobe" / "DeepGlobe_test_1530")
    (entry,) = dataset_entries("seg.deepglobe")
    items = {it.what: it for it in check_dataset(entry, tmp_path / "g").items}
    (count,) = [it for it in items.values() if it.what.startswith("count ")]
    assert count.found == str(len(ref)) and items["adapter opens the dataset"].ok


def test_deepglobe_converted_layout_and_landcover(synth_root: Path, tmp_path: Path) -> None:
    # SegEarth-OV's converted layout: image_cvt/<id>.jpg + label_cvt/<id>.png with values 0 / 1
    root = tmp_path / "DeepGlobe" / "DeepGlobe_test_1530"
    (root / "image_cvt").mkdir(parents=True)
    (root / "label_cvt").mkdir()
    release = DeepGlobeRoadAdapter(synth_root / "DeepGlobe").samples()
    for s in release[:2]:
        lab = read_label(s.target)
        (root / "image_cvt" / f"{s.sample_id}.jpg").write_bytes(Path(s.image).read_bytes())
        Image.fromarray(lab.astype(np.uint8)).save(root / "label_cvt" / f"{s.sample_id}.png")
    grset = DeepGlobeRoadAdapter(tmp_path / "DeepGlobe").samples()
    assert [s.sample_id for s in grset] == [s.sample_id for s in release[:2]]
    for a, b in zip(grset, release):
        np.testing.assert_array_equal(read_label(a.target), read_label(b.target))
    # land cover: jittered palette colours binarised at 128
    lc = DeepGlobeLandCoverAdapter(synth_root / "DeepGlobe_LandCover").samples()
    lab = read_label(lc[0].target)
    rgb = np.asarray(Image.open(lc[0].target["label_path"]).convert("RGB")) >= 128
    forest = rgb[..., 1] & ~rgb[..., 0] & ~rgb[..., 2]
    np.testing.assert_array_equal(lab == 4, forest)
    assert set(np.unique(lab)) <= {1, 3, 4, 5}


def test_check_task_plugin_and_harness(synth_root: Path, tmp_path: Path) -> None:
    check_plugin_tiny(SemanticSegmentationTask, synth_root / "UDD5", dataset="udd5")
    res = run_harness_tiny(tmp_path, "seg.deepglobe", synth_root / "DeepGlobe", limit=2)
    assert res.dataset == "deepglobe" and res.split == "test" and res.n_failed == 0
    assert 0.0 <= res.metrics["mIoU"].value <= 100.0


# --------------------------------------------------------------------------------------------
# hostile input
# --------------------------------------------------------------------------------------------


def _udd5(root: Path, label: np.ndarray) -> Path:
    (root / "val" / "src").mkdir(parents=True)
    (root / "val" / "gt").mkdir()
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(root / "val" / "src" / "a.JPG",
                                                        format="JPEG")
    Image.fromarray(label).save(root / "val" / "gt" / "a.png")
    return root


def test_udd5_bad_value_and_colour_name_the_file(tmp_path: Path) -> None:
    (s,) = UDD5Adapter(_udd5(tmp_path / "u1", np.full((4, 4), 9, np.uint8))).samples()
    with pytest.raises(DatasetError, match=r"gt[/\\]a\.png: label value\(s\) \[9\]"):
        read_label(s.target)
    rgb = np.zeros((4, 4, 3), np.uint8)
    rgb[0, 0] = (107, 142, 35)
    (s,) = UDD5Adapter(_udd5(tmp_path / "u2", rgb)).samples()
    assert read_label(s.target)[0, 0] == 1  # colour-coded labels: the README palette
    rgb[1, 1] = (1, 2, 3)
    Image.fromarray(rgb).save(tmp_path / "u2" / "val" / "gt" / "a.png")
    with pytest.raises(DatasetError, match=r"a\.png: 1 pixel\(s\) have colour\(s\) outside"):
        read_label(s.target)


def test_missing_image_folder_and_unpaired_label(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"udd5 image folder"):
        UDD5Adapter(tmp_path / "nothing")
    root = _udd5(tmp_path / "u", np.zeros((4, 4), np.uint8))
    (root / "val" / "src" / "a.JPG").unlink()
    with pytest.raises(DatasetError, match=r"without an image: .*src[/\\]a\.JPG"):
        UDD5Adapter(root).samples()


def test_landcover_unknown_colour_names_the_file(tmp_path: Path) -> None:
    d = tmp_path / "lc" / "train"
    d.mkdir(parents=True)
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(d / "1_sat.jpg")
    mask = np.zeros((4, 4, 3), np.uint8)
    mask[0, 0] = (250, 3, 2)  # red, not a land-cover colour
    Image.fromarray(mask).save(d / "1_mask.png")
    (s,) = DeepGlobeLandCoverAdapter(tmp_path / "lc").samples()
    with pytest.raises(DatasetError, match=r"1_mask\.png: 1 pixel\(s\) have colour"):
        read_label(s.target)
    (s,) = DeepGlobeLandCoverAdapter(tmp_path / "lc", unknown_colour="background").samples()
    assert read_label(s.target)[0, 0] == 0
    (d / "1_mask.png").write_bytes(b"not a png")
    with pytest.raises(DatasetError, match=r"1_mask\.png is unreadable"):
        read_label(s.target)


def test_miou_option_official_formula(synth_root: Path) -> None:
    from remotesam_plugins.metrics.segmentation import semantic_metrics

    samples = DeepGlobeLandCoverAdapter(synth_root / "DeepGlobe_LandCover",
                                        miou="official").samples()
    classes = list(DeepGlobeLandCoverAdapter.classes)
    preds = [read_label(s.target) for s in samples]  # perfect; agriculture/barren absent
    scores = SemanticSegmentationTask({"eval_size": 64}).score(
        samples, [_as_prediction(p, classes) for p in preds])
    hist = np.asarray(scores.tables["confusion_matrix"]["matrix"])
    assert scores.metrics["mIoU"] == pytest.approx(100 * semantic_metrics(hist)["mIoU"])
    assert scores.metrics["mIoU"] < 100.0  # absent classes count 0 under the official rule
    mm = SemanticSegmentationTask({"eval_size": 64}).score(
        DeepGlobeLandCoverAdapter(synth_root / "DeepGlobe_LandCover").samples(),
        [_as_prediction(p, classes) for p in preds])
    assert mm.metrics["mIoU"] == pytest.approx(100.0)  # mmseg leaves them out
    with pytest.raises(DatasetError, match="option miou"):
        UDD5Adapter(synth_root / "UDD5", miou="fg")
