"""Tests of the ``cnt`` plugin (object counting) and ``metrics.counting``.

Real data: the 3 REAL Falcon IMG_CT DIOR images in ``counting/DIOR/Images``. Their ground-truth
json (``test_IMG_CT.json``) is not public, so the tests write a json **in the documented
format** into ``tmp_path`` (the counts in it are made up for the test, not ground truth).
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

from remotesam.bench.api import DatasetError, Sample
from remotesam.text import prompt
from remotesam_plugins._detection_common import DIOR_PRIOR_AREAS, DOTA_PRIOR_AREAS
from remotesam_plugins.cnt import (
    CountingTask,
    DIORCountingAdapter,
    DOTACountingAdapter,
    map_class_name,
)
from remotesam_plugins.metrics.counting import counting_metrics, filter_by_prior_area

REAL_IMAGES = [
    "IMG_CT_016_DIOR_25156_13931_ori.png",
    "IMG_CT_017_DIOR_26833_14403_ori.png",
    "IMG_CT_027_DIOR_43603_19045_ori.png",
]


def _entry(cls: str, count: int | str, image: str) -> dict:
    return {"conversations": [{"content": f"<image>\n[IMG_CT]\nCount the number of {cls}."},
                              {"content": str(count)}],
            "images": [f"DIOR/test/{image}"], "crop": []}


@pytest.fixture
def counting_root(real_data: Path, tmp_path: Path) -> Path:
    """Official layout: REAL images + a json written here in the documented format."""
    root = tmp_path / "Counting" / "test" / "DIOR"
    shutil.copytree(real_data / "counting" / "DIOR" / "Images", root / "Images")
    (root / "Annotation").mkdir()
    entries = [_entry("ship", 7, REAL_IMAGES[0]), _entry("storage tank", 3, REAL_IMAGES[1]),
               _entry("railway station", 0, REAL_IMAGES[2]), _entry("vehicle", 12, REAL_IMAGES[2])]
    (root / "Annotation" / "test_IMG_CT.json").write_text(json.dumps(entries))
    return root


class FakeCountModel:
    """Answers through a :class:`FakeEngine`: the ``k``-th prompt gets ``counts[k]`` separated
    16x16 squares, which the plugin's ``reduce`` boxes (mask to box) and counts."""

    def __init__(self, counts: list[int]) -> None:
        self.counts = counts
        self.calls: list[dict] = []
        self.engine = FakeEngine(self._painted)
        self.batch_size = 8

    def _painted(self, image: np.ndarray, prompt: str) -> Any:
        self.calls.append({"prompt": prompt, "shape": image.shape})
        n = self.counts[len(self.calls) - 1]
        m = np.zeros(image.shape[:2], np.uint8)
        per_row = image.shape[1] // 32
        for k in range(n):
            y, x = 8 + 32 * (k // per_row), 8 + 32 * (k % per_row)
            m[y:y + 16, x:x + 16] = 1
        return SimpleNamespace(mask=m)


@pytest.mark.realdata
def test_reads_real_images_with_documented_json(counting_root: Path) -> None:
    samples = DIORCountingAdapter(counting_root).samples()
    assert [s.target["class"] for s in samples] == [
        "ship",
        "storagetank",
        "trainstation",
        "vehicle",
    ]
    assert [s.target["count"] for s in samples] == [7, 3, 0, 12]
    assert samples[0].sample_id == "0:IMG_CT_016_DIOR_25156_13931_ori"
    assert samples[1].meta["prior_area"] == DIOR_PRIOR_AREAS["storagetank"] == 4
    assert all(Path(s.image).is_file() for s in samples)
    with Image.open(samples[0].image) as im:
        assert im.size == (448, 448)


def test_class_name_mapping() -> None:
    dior = tuple(DIOR_PRIOR_AREAS)
    assert map_class_name("Storage Tank", dior) == "storagetank"
    assert map_class_name("ground track field", dior) == "groundtrackfield"
    assert map_class_name("expressway toll station", dior) == "expressway-toll-station"
    assert map_class_name("expressway service area", dior) == "expressway-service-area"
    assert map_class_name("railway station", dior) == "trainstation"
    assert map_class_name("airplanes", dior) == "airplane"
    assert map_class_name("swimming pool", tuple(DOTA_PRIOR_AREAS)) == "swimming-pool"
    assert map_class_name("spaceship", dior) is None


@pytest.mark.parametrize(
    ("entry", "match"),
    [
        (
            {
                "conversations": [{"content": "How many ships?"}, {"content": "3"}],
                "images": ["a.png"],
            },
            r"entry \[0\]\.conversations\[0\]\.content: expected a question containing 'the number "
            r"of",
        ),
        (
            _entry("ship", "seven", "a.png"),
            r"entry \[0\]\.conversations\[1\]\.content: expected an integer",
        ),
        (
            _entry("spaceship", 1, "a.png"),
            r"entry \[0\]\.conversations\[0\]\.content: class 'spaceship'",
        ),
        (
            {"conversations": [{"content": "x"}], "images": ["a.png"]},
            r"entry \[0\]\.conversations: expected a list",
        ),
        (
            {**_entry("ship", 1, "a.png"), "images": []},
            r"entry \[0\]\.images: expected a non-empty list",
        ),
    ],
)
def test_malformed_entries(tmp_path: Path, entry: dict, match: str) -> None:
    (tmp_path / "Images").mkdir()
    (tmp_path / "Annotation").mkdir()
    (tmp_path / "Annotation" / "test_IMG_CT.json").write_text(json.dumps([entry]))
    with pytest.raises(DatasetError, match=match):
        DIORCountingAdapter(tmp_path).samples()


def test_truncated_json_absent_image_and_layout(counting_root: Path, tmp_path: Path) -> None:
    ann = counting_root / "Annotation" / "test_IMG_CT.json"
    text = ann.read_text()
    ann.write_text(text[:100])
    with pytest.raises(DatasetError, match=r"test_IMG_CT\.json is not valid JSON.*line 1"):
        DIORCountingAdapter(counting_root).samples()
    ann.write_text(text)
    (counting_root / "Images" / REAL_IMAGES[1]).unlink()
    with pytest.raises(DatasetError, match=r"absent: .*IMG_CT_017"):
        DIORCountingAdapter(counting_root).samples()
    with pytest.raises(DatasetError, match=r"Expected layout:\n<root>/"):
        DIORCountingAdapter(tmp_path / "nowhere")


def test_dota_adapter_uses_dota_priors(tmp_path: Path) -> None:
    (tmp_path / "Images").mkdir()
    (tmp_path / "Annotation").mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "Images" / "a.png")
    (tmp_path / "Annotation" / "test_IMG_CT.json").write_text(
        json.dumps([_entry("vehicle", 2, "a.png")])
    )
    s = DOTACountingAdapter(tmp_path).samples()[0]
    assert s.meta["prior_area"] == 21


def _dota_counting(tmp_path: Path, entries: list[dict]) -> Path:
    (tmp_path / "Images").mkdir(exist_ok=True)
    (tmp_path / "Annotation").mkdir(exist_ok=True)
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "Images" / "a.png")
    (tmp_path / "Annotation" / "test_IMG_CT.json").write_text(json.dumps(entries))
    return tmp_path


def test_dota_crane_maps_to_container_crane_like_the_official_code(tmp_path: Path) -> None:
    # one "crane" question used to make the whole DOTA counting set fail to load
    root = _dota_counting(
        tmp_path,
        [
            _entry("ship", 3, "a.png"),
            _entry("crane", 2, "a.png"),
            _entry("small vehicle", 40, "a.png"),
            _entry("large-vehicle", 5, "a.png"),
        ],
    )
    samples = DOTACountingAdapter(root).samples()
    assert [s.target["class"] for s in samples] == ["ship", "container-crane", "vehicle", "vehicle"]
    assert samples[1].meta["prior_area"] == DOTA_PRIOR_AREAS["container-crane"] == 187
    dota = tuple(DOTA_PRIOR_AREAS)
    assert (
        map_class_name("container crane", dota)
        == map_class_name("cranes", dota)
        == "container-crane"
    )
    assert map_class_name("crane", tuple(DIOR_PRIOR_AREAS)) is None  # DIOR has no crane class


@pytest.mark.parametrize(
    ("entry", "match"),
    [
        (
            _entry("ship", "nan", "a.png"),
            r"entry \[0\]\.conversations\[1\]\.content: expected an integer count, found 'nan'",
        ),
        (
            _entry("ship", "inf", "a.png"),
            r"entry \[0\]\.conversations\[1\]\.content: expected an integer count",
        ),
        (
            _entry("ship", "7.5", "a.png"),
            r"entry \[0\]\.conversations\[1\]\.content: expected an integer count",
        ),
        (
            _entry("ship", -2, "a.png"),
            r"entry \[0\]\.conversations\[1\]\.content: negative count -2",
        ),
        (
            {**_entry("ship", 1, "a.png"), "crop": [0, 0, float("nan"), 5]},
            r"entry \[0\]\.crop = \[0, 0, nan, 5\]",
        ),
        (
            {**_entry("ship", 1, "a.png"), "crop": [0, 0, float("inf"), 5]},
            r"entry \[0\]\.crop = .*finite",
        ),
        (
            {**_entry("ship", 1, "a.png"), "crop": [10, 10, 5, 50]},
            r"entry \[0\]\.crop = \[10, 10, 5, 50\].*inverted",
        ),
        ({**_entry("ship", 1, "a.png"), "crop": [1, 2]}, r"entry \[0\]\.crop = \[1, 2\]"),
    ],
)
def test_hostile_counting_values(tmp_path: Path, entry: dict, match: str) -> None:
    root = _dota_counting(tmp_path, [entry])
    with pytest.raises(DatasetError, match=r"test_IMG_CT\.json: " + match):
        DOTACountingAdapter(root).samples()


def test_valid_crop_is_accepted(tmp_path: Path) -> None:
    root = _dota_counting(tmp_path, [{**_entry("ship", 1, "a.png"), "crop": [0, 0, 4, 4.5]}])
    assert DOTACountingAdapter(root).samples()[0].target == {"count": 1, "class": "ship"}


def test_counting_metrics_and_prior_filter() -> None:
    rng = np.random.default_rng(0)
    gt = rng.integers(0, 10, 200)
    pred = gt + rng.integers(-2, 3, 200)
    m = counting_metrics(pred, gt)
    assert m["accuracy"] == pytest.approx(np.mean(pred == gt))
    assert m["mae"] == pytest.approx(np.abs(pred - gt).mean())
    assert m["rmse"] == pytest.approx(np.sqrt(((pred - gt) ** 2).mean()))
    boxes = np.array([[0, 0, 2, 2], [0, 0, 2, 3], [0, 0, 10, 10]], float)
    # official: keep if (x2-x1)*(y2-y1) > prior * 0.8; storagetank prior 4 -> 3.2 (areas 4, 6, 100)
    assert filter_by_prior_area(boxes, 4).tolist() == [True, True, True]
    assert filter_by_prior_area(boxes, 5).tolist() == [False, True, True]  # 4 > 4.0 is False
    with pytest.raises(ValueError, match="differ in shape"):
        counting_metrics([1], [1, 2])


@pytest.mark.realdata
def test_predict_and_score(counting_root: Path) -> None:
    samples = DIORCountingAdapter(counting_root).samples()
    model = FakeCountModel([7, 2, 0, 15])
    task = CountingTask()
    preds = task.predict(model, samples)
    assert json.loads(json.dumps(preds)) == preds
    assert [p["count"] for p in preds] == [7, 2, 0, 15]
    assert model.calls[1] == {"prompt": prompt("storagetank"), "shape": (448, 448, 3)}
    (req,) = task.requests(samples[1])
    assert req.prompts == (prompt("storagetank"),) and req.boundary is None
    assert samples[1].meta["prior_area"] == 4
    sc = task.score(samples, preds)
    assert sc.metrics["accuracy"] == pytest.approx(50.0)
    assert sc.metrics["mae"] == pytest.approx(1.0)
    assert sc.metrics["rmse"] == pytest.approx(np.sqrt(10 / 4))
    assert sc.per_sample["accuracy"].tolist() == [100.0, 0.0, 100.0, 0.0]
    assert sc.tables["per_class"]["vehicle"] == {"n": 1, "accuracy": 0.0, "mae": 3.0}
    assert set(sc.metrics) == {m.name for m in CountingTask.metrics}


def test_options_and_bad_predictions() -> None:
    assert CountingTask({"epoc": "true"}).settings() == {"area_factor": 0.8, "epoc": True}
    for opts in ({"epoc": "x"}, {"area_factor": "big"}, {"area_factor": -1}, {"foo": 1}):
        with pytest.raises(ValueError):
            CountingTask(opts)
    s = Sample("a", "a.png", {"count": 1, "class": "ship"}, {"prior_area": 14})
    with pytest.raises(ValueError, match="no integer 'count'"):
        CountingTask().score([s], [{"count": "many"}])


def test_check_task_plugin() -> None:
    from remotesam import testing

    testing.check_task_plugin(CountingTask)


@pytest.mark.slow
@pytest.mark.realdata
def test_end_to_end_tiny_model(counting_root: Path) -> None:
    """predict + score via check_task_plugin with the tiny random model on the real images."""
    check_plugin_tiny(CountingTask, counting_root)
