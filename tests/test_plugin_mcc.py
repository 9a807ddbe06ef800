"""Tests of the ``mcc`` plugin (scene classification, UC Merced LandUse).

Uses the 44 REAL, checksum-verified UC Merced images of ``data/real/ucmerced``.
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
from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score
from sklearn.metrics import confusion_matrix as sk_confusion

from remotesam.bench.api import DatasetError, Sample
from remotesam.text import prompt
from remotesam_plugins.mcc import UCM_CLASSES, UCM_FOLDERS, SceneClassificationTask, UCMercedAdapter
from remotesam_plugins.metrics.classification import (
    confusion_matrix,
    multiclass_metrics,
    per_class_accuracy,
    scores_to_labels,
)

# UC Merced's released TIFFs carry truncated EXIF blocks; PIL warns on reading them (the pixels
# are intact): a fact of the data, not of the code under test
_UCM_EXIF = pytest.mark.filterwarnings("ignore:Corrupt EXIF data:UserWarning")


class FakeMCCModel:
    """Answers through a :class:`FakeEngine` with the given score vectors in image order: each
    class prompt gets a constant probability map equal to its score (GMP = GAP = the score), and
    the plugin's ``reduce`` pools it back (argmax, ``None`` below the 0.5 floor)."""

    def __init__(self, scores: list[np.ndarray]) -> None:
        self.scores = list(scores)
        self.calls = 0
        self.shapes: list[tuple[int, ...]] = []
        self.index = {prompt(c): k for k, c in enumerate(UCM_CLASSES)}
        self.engine = FakeEngine(self._painted)
        self.batch_size = 8

    def _painted(self, image: np.ndarray, text: str) -> Any:
        i, k = divmod(self.calls, len(UCM_CLASSES))
        self.calls += 1
        if k == 0:
            self.shapes.append(image.shape)
        v = float(np.asarray(self.scores[i])[self.index[text]])
        s = self.engine.net_size
        return SimpleNamespace(mask=np.zeros(image.shape[:2], np.uint8),
                               prob_net=np.full((s, s), v, np.float32))


@pytest.mark.realdata
def test_real_ucmerced_folders(real_data: Path) -> None:
    a = UCMercedAdapter(real_data / "ucmerced")
    samples = a.samples()
    assert len(samples) == 44 and a.split == "all"
    assert len(UCM_CLASSES) == 21 and a.classes == UCM_CLASSES
    assert {UCM_FOLDERS[c] for c in UCM_CLASSES} == {
        p.name for p in (real_data / "ucmerced" / "Images").iterdir()
    }
    by_id = {s.sample_id: s for s in samples}
    assert by_id["baseballdiamond/baseballdiamond00.tif"].target == {
        "label": "baseballfield",
        "label_index": 2,
    }
    assert by_id["golfcourse/golfcourse90.tif"].target["label"] == "golffield"
    assert by_id["storagetanks/storagetanks00.tif"].target["label"] == "storagetank"
    assert [s.target["label_index"] for s in samples] == sorted(
        s.target["label_index"] for s in samples
    )
    # root may also be the Images folder itself
    assert len(UCMercedAdapter(real_data / "ucmerced" / "Images").samples()) == 44


@pytest.mark.realdata
def test_real_end_to_end_with_off_size_images(real_data: Path) -> None:
    samples = UCMercedAdapter(real_data / "ucmerced").samples()
    rng = np.random.default_rng(0)
    scores = []
    for s in samples:
        v = rng.uniform(0, 0.4, 21)
        if s.meta["folder"] != "river":
            v[s.target["label_index"]] = 0.9  # correct, above the floor
        scores.append(v)
    scores[0] = np.full(
        21, 0.3
    )  # tie at 0.3 -> argmax = class 0 = agricultural (correct), floor -> None
    model = FakeMCCModel(scores)
    task = SceneClassificationTask()
    preds = task.predict(model, samples)
    (req,) = task.requests(samples[0])
    assert req.prompts == tuple(prompt(c) for c in UCM_CLASSES)
    assert model.calls == 21 * len(samples)
    shapes = dict(zip((s.sample_id for s in samples), model.shapes))
    assert shapes["buildings/buildings96.tif"] == (247, 247, 3)
    assert shapes["intersection/intersection99.tif"] == (256, 249, 3)  # W x H = 249 x 256
    assert json.loads(json.dumps(preds)) == preds
    r = task.score(samples, preds)
    assert set(r.metrics) == {m.name for m in task.metrics}
    n_river = sum(s.meta["folder"] == "river" for s in samples)
    y_true = [s.target["label_index"] for s in samples]
    y_pred = scores_to_labels(np.asarray(scores))
    assert r.metrics["accuracy"] == pytest.approx(100 * accuracy_score(y_true, y_pred))
    assert r.metrics["accuracy"] == pytest.approx(100 * (44 - n_river) / 44)
    assert r.metrics["accuracy_floor"] == pytest.approx(100 * (43 - n_river) / 44)
    river = next(row for row in r.tables["per_class"] if row["class"] == "river")
    assert river["accuracy"] == 0.0 and river["samples"] == n_river
    np.testing.assert_array_equal(
        np.asarray(r.tables["confusion_matrix"]["matrix"]),
        sk_confusion(y_true, y_pred, labels=range(21)),
    )
    for name, arr in r.per_sample.items():
        assert arr.mean() == pytest.approx(r.metrics[name])


def test_missing_folder_and_stray_files(real_data: Path, tmp_path: Path) -> None:
    shutil.copytree(real_data / "ucmerced" / "Images", tmp_path / "Images")
    (tmp_path / "Images" / "beach" / "Thumbs.db").write_bytes(b"junk")
    (tmp_path / "Images" / "beach" / ".hidden.tif").write_bytes(b"junk")
    (tmp_path / "Images" / "not_a_class").mkdir()
    samples = UCMercedAdapter(tmp_path).samples()
    assert len(samples) == 44  # non-images, hidden files and unknown folders ignored
    shutil.rmtree(tmp_path / "Images" / "golfcourse")
    with pytest.raises(
        DatasetError, match=r"(?s)1 class folder\(s\) missing under .*: golfcourse.*Expected layout"
    ):
        UCMercedAdapter(tmp_path)


def test_empty_class_folder(tmp_path: Path) -> None:
    for f in UCM_FOLDERS.values():
        (tmp_path / "Images" / f).mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (8, 8)).save(tmp_path / "Images" / f / f"{f}00.tif")
    (tmp_path / "Images" / "beach" / "beach00.tif").unlink()
    with pytest.raises(DatasetError, match=r"class folder .*beach holds no image"):
        UCMercedAdapter(tmp_path).samples()


@_UCM_EXIF
def test_corrupt_image_fails_the_sample(tmp_path: Path) -> None:
    from remotesam import RemoteSAM
    from remotesam.bench.run import default_checkpoint

    p = tmp_path / "x.tif"
    p.write_bytes(b"II*\x00 broken")
    s = Sample("beach/x.tif", p, {"label": "beach", "label_index": 3})
    model = RemoteSAM.from_checkpoint(default_checkpoint())
    with pytest.raises(DatasetError, match=r"x\.tif is unreadable"):
        SceneClassificationTask().predict(model, [s])


@pytest.mark.parity
def test_multiclass_equals_official_golden(reference_dir: Path) -> None:
    g = np.load(reference_dir / "postprocess_golden.npz")
    r = json.loads(str(g["results_json"]))["multiclass"]
    pred = scores_to_labels(g["mc_prob"])
    assert pred[0] == 0  # row 0 is a tie: first index wins
    cm = confusion_matrix(g["mc_true"], pred, 5)
    np.testing.assert_array_equal(cm, np.asarray(r["confusion"]))
    m = multiclass_metrics(cm)
    assert m["accuracy"] == r["accuracy"]["Accuracy"]
    assert r["MCC_eval_printed"][-1] == f"Accuracy: {100 * m['accuracy']:.3f}%"
    # official per-class recall carries a 1e-15 epsilon: equal to ~1e-15
    np.testing.assert_allclose(per_class_accuracy(cm), r["recall"]["Recall per Class"], atol=1e-14)
    assert m["mean_class_accuracy"] == pytest.approx(r["recall"]["Recall Macro"], abs=1e-14)
    assert m["macro_f1"] == pytest.approx(r["f1"]["F1_score Macro"], abs=1e-12)


@pytest.mark.filterwarnings("ignore:y_pred contains classes not in y_true")
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_multiclass_equals_sklearn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    k = 7
    y = rng.integers(0, k - 1, 300)  # class k-1 never true
    scores = rng.random((300, k))
    scores[np.arange(300), y] += rng.random(300) * 0.5
    p = scores_to_labels(scores)
    cm = confusion_matrix(y, p, k)
    np.testing.assert_array_equal(cm, sk_confusion(y, p, labels=range(k)))
    m = multiclass_metrics(cm)
    assert m["accuracy"] == pytest.approx(accuracy_score(y, p))
    assert m["mean_class_accuracy"] == pytest.approx(balanced_accuracy_score(y, p))
    assert m["macro_f1"] == pytest.approx(f1_score(y, p, average="macro"))


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="outside"):
        confusion_matrix(np.array([0, 5]), np.array([0, 1]), 3)
    s = Sample("a/b.tif", "b.tif", {"label": "beach", "label_index": 3})
    with pytest.raises(ValueError, match="'scores' must be a list of 21 numbers"):
        SceneClassificationTask().score(
            [s], [{"classes": list(UCM_CLASSES), "scores": [0.1], "label": None}]
        )
    with pytest.raises(ValueError, match="field 'classes' missing"):
        SceneClassificationTask().score([s], [{"scores": [0.1] * 21}])
    with pytest.raises(ValueError, match="no options"):
        SceneClassificationTask({"k": 1})


@pytest.mark.realdata
def test_check_task_plugin(real_data: Path) -> None:
    from remotesam import testing
    testing.check_task_plugin(SceneClassificationTask)
    model = FakeMCCModel([np.linspace(0, 1, 21)] * 4)
    testing.check_task_plugin(
        SceneClassificationTask, dataset_root=real_data / "ucmerced", model=model
    )
    # a run-wide --split test reaches this adapter too: same images
    assert len(UCMercedAdapter(real_data / "ucmerced", "test").samples()) == 44


@_UCM_EXIF
@pytest.mark.slow
@pytest.mark.realdata
def test_harness_end_to_end_with_tiny_model(real_data: Path, tmp_path: Path) -> None:
    """A corrupt .tif among the real images is a per-sample failure recorded by the harness."""
    root = tmp_path / "UCMerced_LandUse"
    (root / "Images").mkdir(parents=True)
    for folder in UCM_FOLDERS.values():
        (root / "Images" / folder).mkdir()
        shutil.copy(
            real_data / "ucmerced" / "Images" / folder / f"{folder}00.tif", root / "Images" / folder
        )
    (root / "Images" / "agricultural" / "agricultural01.tif").write_bytes(b"II*\x00 broken")
    res = run_harness_tiny(tmp_path, "mcc.ucmerced", root, limit=2)  # 21 prompts per image
    assert (res.n_total, res.n_evaluated, res.n_failed) == (22, 1, 1)
    assert "agricultural01.tif" in json.dumps(res.failures)
    assert set(res.metrics) == {m.name for m in SceneClassificationTask.metrics}
