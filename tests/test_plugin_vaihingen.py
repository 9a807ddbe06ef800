"""ISPRS Vaihingen (``seg.vaihingen``) under SegEarth-OV's protocol, on the procedural benchmark.

The label check reads the converter's values (mmsegmentation ``tools/dataset_converters/
vaihingen.py``: 0 boundary, 1 impervious surface .. 5 car, 6 clutter) with PIL and maps them as
``ISPRSDataset(reduce_zero_label=True)`` does, then clutter to the background class. The metric
check recomputes mIoU / mAcc as mmsegmentation's ``IoUMetric`` does (SegEarth-OV's
``test_evaluator``) from scikit-learn's confusion matrix: per class I / U, NaN where U = 0,
nanmean; ignored pixels left out. ``protocol=isprs6`` is checked against RemoteSAM ``SEG.py``'s
formula written out here (diag / max(union, 1), absent classes 0, mean over all classes).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from plugin_support import check_plugin_tiny, run_harness_tiny
from sklearn.metrics import confusion_matrix

from remotesam.bench.api import DatasetError
from remotesam.bench.kit.masks import mask_to_rle, resize_nearest
from remotesam.classes import POTSDAM_CLASSES
from remotesam.synth import generate
from remotesam_plugins.seg import SemanticSegmentationTask, VaihingenAdapter, read_label


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("vaihingen_synth")
    generate(root, seed=3, n_images=6, image_size=64)
    return root


def _raw(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path)).astype(np.int64)


def _segearth_independent(path: Path) -> np.ndarray:
    """reduce_zero_label (0 -> ignored, v -> v - 1), then clutter (5) -> background 0,
    impervious .. car (0..4) -> 1..5; -1 = ignored."""
    red = _raw(path) - 1
    return np.where((red < 0) | (red >= 254), -1, np.where(red == 5, 0, red + 1))


def _isprs6_independent(path: Path) -> np.ndarray:
    raw = _raw(path)
    return np.where((raw == 0) | (raw == 255), -1, raw)


def _predictions(labels: list[np.ndarray], n_classes: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    out = []
    for lab in labels:
        pred = np.where(lab < 0, 0, lab)
        noise = rng.random(lab.shape) < 0.25
        out.append(np.where(noise, rng.integers(0, n_classes + 1, lab.shape), pred))
    return out


def _as_prediction(pred: np.ndarray, classes: list[str]) -> dict:
    return {"classes": classes, "net_size": list(pred.shape),
            "masks_net": [mask_to_rle(pred == k + 1) for k in range(len(classes))]}


def _hist(labels: list[np.ndarray], preds: list[np.ndarray], n: int, size: int) -> np.ndarray:
    y = np.concatenate([resize_nearest(lab, size).ravel() for lab in labels])
    p = np.concatenate([resize_nearest(pr, size).ravel() for pr in preds])
    keep = y >= 0
    return confusion_matrix(y[keep], p[keep], labels=list(range(n))).astype(float)


def _mmseg(cm: np.ndarray) -> dict[str, float]:
    tp = np.diag(cm)
    union = cm.sum(0) + cm.sum(1) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        return {"mIoU": 100 * np.nanmean(tp / union), "mPA": 100 * np.nanmean(tp / cm.sum(1))}


def _official(cm: np.ndarray) -> dict[str, float]:
    tp = np.diag(cm)
    union = cm.sum(0) + cm.sum(1) - tp
    return {"mIoU": 100 * np.mean(tp / np.maximum(union, 1)),
            "mPA": 100 * np.mean(tp / np.maximum(cm.sum(1), 1))}


def test_synth_layout_is_mmseg_converter_output(synth_root: Path) -> None:
    root = synth_root / "vaihingen"
    labels = sorted((root / "ann_dir" / "val").glob("*.png"))
    images = sorted((root / "img_dir" / "val").glob("*.png"))
    assert len(labels) == 6 and [p.name for p in labels] == [p.name for p in images]
    assert labels[0].name == "area1_0_0_64_64.png"
    values = set(np.unique(np.concatenate([_raw(p).ravel() for p in labels])).tolist())
    assert values <= set(range(7)) and {2, 6} <= values  # building, clutter
    assert Image.open(labels[0]).mode == "L"
    for pattern in VaihingenAdapter.info.layout:  # what ``DatasetInfo`` promises is there
        assert list(root.glob(pattern)), pattern


@pytest.mark.parametrize("eval_size", [64, 896])
def test_default_protocol_labels_and_metric_equal_mmseg(synth_root: Path, eval_size: int) -> None:
    ds = VaihingenAdapter(synth_root / "vaihingen")
    assert ds.split == VaihingenAdapter.info.split == "val"
    assert list(ds.classes) == ["impervious surface", "building", "low vegetation", "tree", "car"]
    samples = ds.samples()
    labels = [_segearth_independent(Path(s.target["label_path"])) for s in samples]
    for s, lab in zip(samples, labels):
        np.testing.assert_array_equal(read_label(s.target), lab)
    classes = list(ds.classes)
    preds = _predictions(labels, len(classes), seed=eval_size)
    scores = SemanticSegmentationTask({"eval_size": eval_size}).score(
        samples, [_as_prediction(p, classes) for p in preds])
    ref = _mmseg(_hist(labels, preds, len(classes) + 1, eval_size))
    assert scores.metrics["mIoU"] == pytest.approx(ref["mIoU"], abs=1e-9)
    assert scores.metrics["mPA"] == pytest.approx(ref["mPA"], abs=1e-9)
    assert "SegEarth-OV" in scores.tables["protocol"]
    assert scores.tables["per_class"][0]["class"] == "clutter"
    assert scores.tables["per_class"][0]["gt_pixels"] > 0  # clutter is labelled and scored


def test_protocol_option_switches_to_six_prompts(synth_root: Path) -> None:
    root = synth_root / "vaihingen"
    old = VaihingenAdapter(root, protocol="isprs6")
    assert tuple(old.classes) == POTSDAM_CLASSES and VaihingenAdapter.classes != POTSDAM_CLASSES
    samples = old.samples()
    labels = [_isprs6_independent(Path(s.target["label_path"])) for s in samples]
    for s, lab in zip(samples, labels):
        np.testing.assert_array_equal(read_label(s.target), lab)
        assert s.target["classes"] == list(POTSDAM_CLASSES)
    task = SemanticSegmentationTask({"eval_size": 64})
    perfect = task.score(samples, [_as_prediction(lab.clip(0), list(POTSDAM_CLASSES))
                                   for lab in labels])
    hist = _hist(labels, [lab.clip(0) for lab in labels], 7, 64)
    assert hist[0].sum() == 0  # the extra background class is never labelled ...
    assert perfect.metrics["mIoU"] == pytest.approx(_official(hist)["mIoU"])
    assert perfect.metrics["mIoU"] <= 100 * 6 / 7 + 1e-9  # ... and caps mIoU at 6/7
    assert "ISPRS six classes" in perfect.tables["protocol"]
    new = VaihingenAdapter(root).samples()
    new_labels = [read_label(s.target) for s in new]
    best = task.score(new, [_as_prediction(lab.clip(0), list(VaihingenAdapter.classes))
                            for lab in new_labels])
    assert best.metrics["mIoU"] == pytest.approx(100.0)
    # isprs6 with mmseg's formula on request
    mm = VaihingenAdapter(root, protocol="isprs6", miou="mmseg").samples()
    noisy = _predictions(labels, 6, seed=1)
    sc = task.score(mm, [_as_prediction(p, list(POTSDAM_CLASSES)) for p in noisy])
    assert sc.metrics["mIoU"] == pytest.approx(_mmseg(_hist(labels, noisy, 7, 64))["mIoU"])
    # SegEarth-OV's six queries: clutter prompted, and "none fired" scored as clutter
    q = VaihingenAdapter(root, protocol="segearth_ov_queries").samples()
    assert q[0].target["classes"] == list(POTSDAM_CLASSES)
    for s, lab in zip(q, labels):
        np.testing.assert_array_equal(read_label(s.target), lab)
    noisy = _predictions(labels, 6, seed=2)  # holds 0 = no class fired
    assert any((p == 0).any() for p in noisy)
    sc = task.score(q, [_as_prediction(p, list(POTSDAM_CLASSES)) for p in noisy])
    as_clutter = [np.where(p == 0, 6, p) - 1 for p in noisy]
    six = _hist([np.where(lab < 0, -1, lab - 1) for lab in labels], as_clutter, 6, 64)
    assert sc.metrics["mIoU"] == pytest.approx(_mmseg(six)["mIoU"], abs=1e-9)
    assert sc.metrics["mPA"] == pytest.approx(_mmseg(six)["mPA"], abs=1e-9)
    with pytest.raises(DatasetError, match=r"option protocol must be 'segearth_ov'"):
        VaihingenAdapter(root, protocol="potsdam")
    with pytest.raises(DatasetError, match=r"unknown_colour"):
        VaihingenAdapter(root, unknown_colour="error")


def test_plugin_check_and_harness_run(synth_root: Path, tmp_path: Path) -> None:
    check_plugin_tiny(SemanticSegmentationTask, synth_root / "vaihingen", dataset="vaihingen")
    res = run_harness_tiny(tmp_path, "seg.vaihingen", synth_root / "vaihingen", limit=2)
    assert res.dataset == "vaihingen" and res.split == "val" and res.n_failed == 0
    assert 0.0 <= res.metrics["mIoU"].value <= 100.0


# --------------------------------------------------------------------------------------------
# hostile input
# --------------------------------------------------------------------------------------------


def _vaihingen(root: Path, label: np.ndarray) -> Path:
    (root / "img_dir" / "val").mkdir(parents=True)
    (root / "ann_dir" / "val").mkdir(parents=True)
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(root / "img_dir" / "val" / "a.png")
    Image.fromarray(label).save(root / "ann_dir" / "val" / "a.png")
    return root


@pytest.mark.parametrize("value", [7, 128, 254])
def test_hostile_label_values_name_the_file(tmp_path: Path, value: int) -> None:
    lab = np.full((4, 4), 6, np.uint8)
    lab[1, 2] = value
    (s,) = VaihingenAdapter(_vaihingen(tmp_path / "v", lab)).samples()
    with pytest.raises(DatasetError, match=rf"ann_dir[/\\]val[/\\]a\.png: label value\(s\) "
                                           rf"\[{value}\] are neither.*converter output"):
        read_label(s.target)
    ok = lab.copy()
    ok[1, 2], ok[0, 0], ok[3, 3] = 255, 0, 1  # 0 and 255 ignored, as after reduce_zero_label
    Image.fromarray(ok).save(tmp_path / "v" / "ann_dir" / "val" / "a.png")
    got = read_label(s.target)
    assert got[1, 2] == got[0, 0] == -1 and got[3, 3] == 1 and got[2, 2] == 0  # clutter = bg


def test_colour_label_and_broken_files_name_the_file(tmp_path: Path) -> None:
    root = _vaihingen(tmp_path / "v", np.full((4, 4, 3), 255, np.uint8))  # an unconverted RGB GT
    (s,) = VaihingenAdapter(root).samples()
    with pytest.raises(DatasetError, match=r"a\.png: label image has PIL mode RGB"):
        read_label(s.target)
    (root / "ann_dir" / "val" / "a.png").write_bytes(b"not a png")
    with pytest.raises(DatasetError, match=r"a\.png is unreadable"):
        read_label(s.target)
    (root / "img_dir" / "val" / "a.png").unlink()
    with pytest.raises(DatasetError, match=r"without an image: .*img_dir[/\\]val[/\\]a\.png"):
        VaihingenAdapter(root).samples()
    with pytest.raises(DatasetError, match=r"vaihingen image folder"):
        VaihingenAdapter(tmp_path / "nothing")


def test_table2_rows_sit_beside_the_default_split() -> None:
    from remotesam.bench.records.published import load_published

    rows = load_published().lookup("seg", "vaihingen", VaihingenAdapter.info.split, "mIoU")
    values = {r.model: r.value for r in rows}
    assert values["RemoteSAM"] == 46.0 and values["SegEarth-OV"] == 29.1 and len(values) == 8
    assert all("cls_vaihingen.txt" in r.note for r in rows)
