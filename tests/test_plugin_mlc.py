"""Tests of the ``mlc`` plugin (multi-label classification) and ``metrics.multilabel``.

Real data: the REAL DIOR image 00001 with the RECONSTRUCTED one-box COCO json (SOURCES.md), the
REAL DOTA patch and full image with their label files. Official parity: the golden outputs of
``MultiLabelRunningScore`` in ``postprocess_golden.npz``.
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
from plugin_support import FakeEngine, check_plugin_tiny
from sklearn.metrics import accuracy_score, average_precision_score, f1_score, hamming_loss

from remotesam.bench.api import DatasetError
from remotesam.text import prompt
from remotesam_plugins._detection_common import DIOR_CLASSES, DOTA_CLASSES
from remotesam_plugins.metrics.multilabel import (
    binary_average_precision,
    labelwise_accuracy,
    multilabel_confusion,
    multilabel_metrics,
    per_sample_multilabel,
)
from remotesam_plugins.mlc import (
    DIORMultiLabelAdapter,
    DOTAMultiLabelAdapter,
    MultiLabelClassificationTask,
)


@pytest.fixture
def dior_root(real_data: Path, tmp_path: Path) -> Path:
    """Official layout with the REAL image and the RECONSTRUCTED json as DIOR_test.json."""
    root = tmp_path / "DIORcoco"
    (root / "Annotations").mkdir(parents=True)
    shutil.copy(real_data / "dior" / "Annotations" / "DIOR_00001_coco_RECONSTRUCTED.json",
                root / "Annotations" / "DIOR_test.json")
    shutil.copytree(real_data / "dior" / "JPEGImages", root / "JPEGImages")
    return root


class FakeMLCModel:
    """Answers through a :class:`FakeEngine`: each class prompt gets a constant probability map
    equal to the class's wanted score (so GMP = GAP = that score, and the plugin's ``reduce``
    pools it back); ``classes`` maps the prompts back to their class names."""

    def __init__(self, scores: list[dict[str, float]], classes: tuple[str, ...]) -> None:
        self.scores = scores
        self.calls = 0
        self.by_prompt = {prompt(c): c for c in classes}
        self.engine = FakeEngine(self._painted)
        self.batch_size = 8

    def _painted(self, image: np.ndarray, text: str) -> Any:
        v = self.scores[self.calls // len(self.by_prompt)].get(self.by_prompt[text], 0.0)
        self.calls += 1
        s = self.engine.net_size
        return SimpleNamespace(mask=np.zeros(image.shape[:2], np.uint8),
                               prob_net=np.full((s, s), v, np.float32))


@pytest.mark.realdata
def test_dior_real_sample(dior_root: Path) -> None:
    s = DIORMultiLabelAdapter(dior_root).samples()
    assert [x.target["labels"] for x in s] == [["golffield"]]


@pytest.mark.realdata
def test_dota_real_samples_with_name_mapping(real_data: Path) -> None:
    s = DOTAMultiLabelAdapter(real_data / "dota" / "v1.0_full_image").samples()
    assert s[0].sample_id == "P1888"
    assert set(s[0].target["labels"]) <= set(DOTA_CLASSES)
    assert s[0].target["labels"] == sorted(s[0].target["labels"], key=DOTA_CLASSES.index)
    patch = DOTAMultiLabelAdapter(real_data / "dota" / "split_patch").samples()[0]
    raw = (real_data / "dota" / "split_patch" / "annfiles" / "P1478__1__853___962.txt").read_text()
    expected = {{"plane": "airplane"}.get(w, w) for w in (ln.split()[8] for ln in raw.splitlines())}
    assert set(patch.target["labels"]) == expected


def test_dior_mlc_dedupes_and_orders_classes(tmp_path: Path) -> None:
    root = tmp_path / "DIORcoco"
    (root / "Annotations").mkdir(parents=True)
    (root / "JPEGImages").mkdir()
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(root / "JPEGImages" / "a.jpg")
    cats = [{"id": 20, "name": "windmill"}, {"id": 1, "name": "airplane"}]
    anns = [{"image_id": 1, "category_id": c, "bbox": [0, 0, 1, 1]} for c in (20, 1, 20)]
    (root / "Annotations" / "DIOR_test.json").write_text(json.dumps(
        {"images": [{"id": 1, "file_name": "a.jpg"}], "annotations": anns, "categories": cats}))
    assert DIORMultiLabelAdapter(root).samples()[0].target["labels"] == ["airplane", "windmill"]


def test_dota_unknown_class_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    (tmp_path / "annfiles").mkdir()
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "images" / "a.png")
    (tmp_path / "annfiles" / "a.txt").write_text("0 0 1 0 1 1 0 1 ufo 0\n")
    with pytest.raises(DatasetError, match=r"a\.txt, line 1: unknown class 'ufo'"):
        DOTAMultiLabelAdapter(tmp_path).samples()


@pytest.mark.parity
def test_official_golden_multilabel(reference_dir: Path) -> None:
    f = np.load(reference_dir / "postprocess_golden.npz")
    R = json.loads(str(f["results_json"]))["multilabel"]
    y_true, y_pred, y_prob = f["ml_true"], f["ml_pred"], f["ml_prob_f32"]
    assert multilabel_confusion(y_true, y_pred).tolist() == R["confusion"]
    acc, per_class = labelwise_accuracy(y_true, y_pred)
    assert acc == pytest.approx(R["accuracy"]["Accuracy"], abs=1e-12)
    np.testing.assert_allclose(per_class, R["accuracy"]["Accuracy per Class"], atol=1e-12)
    m = multilabel_metrics(y_true, y_pred, y_prob)
    # the official F1 carries 1e-15 epsilons: equal to ~1e-13
    assert m["f1_micro"] == pytest.approx(R["f1"]["F1_score Micro"], abs=1e-12)
    assert m["f1_macro"] == pytest.approx(R["f1"]["F1_score Macro"], abs=1e-12)
    assert m["precision_micro"] == pytest.approx(R["precision"]["Precision Micro"], abs=1e-12)
    assert m["recall_micro"] == pytest.approx(R["recall"]["Recall Micro"], abs=1e-12)
    assert m["mAP"] == pytest.approx(R["map"]["mAP"], abs=1e-12)
    assert R["MLC_eval_printed"][1] == f"Accuracy: {100 * acc:.2f}%"


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_multilabel_metrics_equal_sklearn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n, K = 60, 7
    y_true = rng.random((n, K)) < 0.3
    y_true[:, 0] = False  # a class without positives
    y_score = np.clip(y_true * 0.3 + rng.random((n, K)) * 0.7, 0, 1)
    y_pred = y_score > 0.5
    y_pred[:3] = y_true[:3]  # a few exact matches
    m = multilabel_metrics(y_true, y_pred, y_score)
    assert m["accuracy"] == pytest.approx(1 - hamming_loss(y_true, y_pred), abs=1e-12)
    assert m["exact_match"] == pytest.approx(accuracy_score(y_true, y_pred), abs=1e-12)
    assert m["f1_micro"] == pytest.approx(
        f1_score(y_true, y_pred, average="micro", zero_division=0), abs=1e-12
    )
    assert m["f1_macro"] == pytest.approx(
        f1_score(y_true, y_pred, average="macro", zero_division=0), abs=1e-12
    )
    aps = [average_precision_score(y_true[:, k], y_score[:, k]) for k in range(1, K)]
    assert m["mAP"] == pytest.approx(np.mean(aps), abs=1e-12)
    ps = per_sample_multilabel(y_true, y_pred)
    assert ps["accuracy"].mean() == pytest.approx(m["accuracy"], abs=1e-12)
    num, den = ps["f1_micro"]
    assert num.sum() / den.sum() == pytest.approx(m["f1_micro"], abs=1e-12)


@pytest.mark.realdata
def test_predict_and_score(dior_root: Path) -> None:
    samples = DIORMultiLabelAdapter(dior_root).samples()
    task = MultiLabelClassificationTask()
    (req,) = task.requests(samples[0])
    assert req.prompts == tuple(prompt(c) for c in DIOR_CLASSES)
    model = FakeMLCModel([{"golffield": 0.6, "airplane": 0.55, "dam": 0.2}], DIOR_CLASSES)
    preds = task.predict(model, samples)
    assert json.loads(json.dumps(preds)) == preds
    assert preds[0]["labels"] == ["airplane", "golffield"]
    assert dict(zip(preds[0]["classnames"], preds[0]["scores"]))["dam"] == pytest.approx(0.2)
    sc = task.score(samples, preds)
    assert sc.metrics["accuracy"] == pytest.approx(100 * 19 / 20)  # one FP out of 20 pairs
    assert sc.metrics["exact_match"] == 0.0
    assert sc.metrics["f1_micro"] == pytest.approx(100 * 2 / 3)
    assert sc.metrics["mAP"] == pytest.approx(100.0)
    assert sc.per_sample["accuracy"].tolist() == [95.0]
    assert set(sc.metrics) == {m.name for m in MultiLabelClassificationTask.metrics}
    assert len(DIOR_CLASSES) == len(sc.tables["per_class"])


def test_bad_predictions_and_options(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown option"):
        MultiLabelClassificationTask({"x": 1})
    from remotesam.bench.api import Sample

    s = Sample("a", "a.jpg", {"labels": ["golffield"]}, {"dataset": "dior"})
    with pytest.raises(ValueError, match="malformed ground truth or prediction"):
        MultiLabelClassificationTask().score(
            [s], [{"classnames": ["ufo"], "scores": [1.0], "labels": []}]
        )


def test_check_task_plugin_if_available() -> None:
    from remotesam import testing
    testing.check_task_plugin(MultiLabelClassificationTask)


@pytest.mark.slow
def test_end_to_end_tiny_model(tmp_path: Path) -> None:
    """predict + score via check_task_plugin with the tiny random model, small DOTA-format set."""
    root = tmp_path / "DOTAv2_patches" / "val"
    (root / "images").mkdir(parents=True)
    (root / "annfiles").mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(
        root / "images" / "p.png"
    )
    (root / "annfiles" / "p.txt").write_text("1 1 9 1 9 9 1 9 plane 0\n")
    check_plugin_tiny(MultiLabelClassificationTask, root.parent, dataset="dotav2")


@pytest.mark.parametrize("seed", range(6))
def test_average_precision_is_sklearn_bit_for_bit(seed: int) -> None:
    """The numpy AP (scikit-learn is not a run-time dependency) equals sklearn exactly, with
    tied scores (rounded) and float32 scores."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 200))
    y = rng.integers(0, 2, n)
    y[0] = 1
    scores = np.round(rng.random(n), seed % 3 + 1) if seed % 2 else rng.random(n).astype(np.float32)
    assert binary_average_precision(y, scores) == average_precision_score(y, scores)
