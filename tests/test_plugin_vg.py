"""Tests of the ``vg`` plugin (visual grounding, DIOR-RSVG).

Uses the REAL ``data/real/dior_rsvg`` sample (one XML + its image + the complete official split
files); multi-file index counting and malformed files use XMLs written in ``tmp_path``.
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

from remotesam.bench.api import DatasetError, Sample
from remotesam.types import Grounding
from remotesam_plugins.metrics.grounding import box_iou, box_iou_pairs, grounding_metrics
from remotesam_plugins.vg import DIORRSVGAdapter, VisualGroundingTask, read_split_file


class FakeVGModel:
    """Returns the given boxes (or None) in call order."""

    def __init__(self, boxes: list[list[float] | None]) -> None:
        self.boxes = list(boxes)
        self.calls: list[str] = []
        self.engine = FakeEngine(self._painted)
        self.batch_size = 8

    def _painted(self, image: np.ndarray, sentence: str) -> Any:
        """The box as a mask, for the plugin's ``reduce`` (mask to box) through the engine."""
        g = self.visual_grounding(image, sentence)
        m = np.zeros(image.shape[:2], np.uint8)
        if g.box is not None:
            x0, y0, x1, y1 = (round(float(v)) for v in g.box)
            m[y0:y1 + 1, x0:x1 + 1] = 1
        return SimpleNamespace(mask=m)


    def visual_grounding(self, image: np.ndarray, sentence: str) -> Grounding:
        self.calls.append(sentence)
        b = self.boxes.pop(0)
        if b is None:
            return Grounding(box=None, score=float("nan"))
        return Grounding(box=np.asarray(b, dtype=np.float64), score=0.9)


def _predict(model: FakeVGModel, samples: list) -> list[dict]:
    """The stored JSON of the fake's boxes, as the plugin's ``reduce`` encodes a box (the
    scoring tests use exact float boxes, which a mask cannot carry)."""
    from remotesam.bench.api import BoxPrediction

    out = []
    for smp in samples:
        g = model.visual_grounding(np.zeros((1, 1, 3), np.uint8), str(smp.meta["description"]))
        out.append(BoxPrediction.from_array(g.box, None if g.box is None else g.score).encode())
    return out


def _xml(objects: list[dict], filename: str | None) -> str:
    parts = ["<annotation>"]
    if filename:
        parts.append(f"<filename>{filename}</filename>")
    parts.append("<size><width>64</width><height>48</height><depth>3</depth></size>")
    for o in objects:
        parts.append(f"<object><name>{o.get('name', 'ship')}</name><pose>Unspecified</pose>")
        if "box" in o:
            x1, y1, x2, y2 = o["box"]
            parts.append(
                f"<bndbox><xmin>{x1}</xmin><ymin>{y1}</ymin>"
                f"<xmax>{x2}</xmax><ymax>{y2}</ymax></bndbox>"
            )
        if "desc" in o:
            parts.append(f"<description>{o['desc']}</description>")
        parts.append("</object>")
    parts.append("</annotation>")
    return "\n".join(parts)


def _rsvg(
    tmp_path: Path, files: dict[str, list[dict]], test: list[int], images: bool = True
) -> Path:
    (tmp_path / "Annotations").mkdir()
    (tmp_path / "JPEGImages").mkdir()
    for stem, objs in files.items():
        (tmp_path / "Annotations" / f"{stem}.xml").write_text(_xml(objs, f"{stem}.jpg"))
        if images:
            Image.new("RGB", (64, 48)).save(tmp_path / "JPEGImages" / f"{stem}.jpg")
    (tmp_path / "test.txt").write_text("".join(f"{i}\n" for i in test))
    (tmp_path / "train.txt").write_text("")
    return tmp_path


def _obj(i: int) -> dict:
    return {"box": [i, i, i + 10, i + 8], "desc": f"object {i}"}


# --------------------------------------------------------------------------------------------
# real data
# --------------------------------------------------------------------------------------------


@pytest.mark.realdata
def test_real_dior_rsvg_sample(real_data: Path) -> None:
    root = real_data / "dior_rsvg"
    with pytest.raises(
        DatasetError, match=r"lists object index 1 .* holds only 1 objects.*allow_partial"
    ):
        DIORRSVGAdapter(root).samples()
    samples = DIORRSVGAdapter(root, allow_partial=True).samples()
    assert len(samples) == 1
    s = samples[0]
    assert s.sample_id == "0"
    assert s.target["bbox_xyxy"] == [133.0, 237.0, 684.0, 672.0]
    assert s.meta["description"] == "A green and brown golf field"
    assert s.meta["class"] == "golffield"
    assert Path(s.image).name == "00001.jpg" and Path(s.image).is_file()
    # official split files partition 0..38319
    idx = [read_split_file(root / f"{n}.txt") for n in ("train", "val", "test")]
    assert [len(i) for i in idx] == [26991, 3829, 7500]
    assert sorted(i for part in idx for i in part) == list(range(38320))
    with pytest.raises(DatasetError, match="no object of split 'val'"):
        DIORRSVGAdapter(root, "val", allow_partial=True).samples()


@pytest.mark.realdata
def test_real_sample_end_to_end(real_data: Path) -> None:
    samples = DIORRSVGAdapter(real_data / "dior_rsvg", allow_partial=True).samples()
    task = VisualGroundingTask()
    model = FakeVGModel([[133, 237, 684, 600]])
    preds = _predict(model, samples)
    assert model.calls == ["A green and brown golf field"]
    assert json.loads(json.dumps(preds)) == preds
    s = task.score(samples, preds)
    iou = (551 * 363) / (551 * 435)
    assert s.metrics["mIoU"] == pytest.approx(100 * iou)
    assert s.metrics["Acc@0.8"] == 100.0 and s.metrics["Acc@0.9"] == 0.0


# --------------------------------------------------------------------------------------------
# index counting and malformed files
# --------------------------------------------------------------------------------------------


def test_object_index_counts_across_sorted_xml_files(tmp_path: Path) -> None:
    # written out of order; sorted by name: 00002 (2 objects), 00003 (1), 00010 (3)
    files = {"00010": [_obj(5), _obj(6), _obj(7)], "00002": [_obj(1), _obj(2)], "00003": [_obj(3)]}
    root = _rsvg(tmp_path, files, test=[4, 0, 3])
    samples = DIORRSVGAdapter(root).samples()
    assert [s.sample_id for s in samples] == ["0", "3", "4"]
    assert [s.meta["description"] for s in samples] == ["object 1", "object 5", "object 6"]
    assert [s.meta["xml"] for s in samples] == ["00002.xml", "00010.xml", "00010.xml"]
    assert samples[2].meta["object_in_xml"] == 1


def test_xml_without_bndbox(tmp_path: Path) -> None:
    root = _rsvg(tmp_path, {"00001": [_obj(1), {"desc": "no box"}]}, test=[0])
    with pytest.raises(DatasetError, match=r"00001\.xml, <object> #2: element <bndbox> missing"):
        DIORRSVGAdapter(root).samples()


def test_xml_without_description_or_coordinate(tmp_path: Path) -> None:
    root = _rsvg(tmp_path, {"00001": [{"box": [1, 2, 3, 4]}]}, test=[0])
    with pytest.raises(DatasetError, match=r"<object> #1: element <description> missing"):
        DIORRSVGAdapter(root).samples()
    (root / "Annotations" / "00001.xml").write_text(
        _xml([{"box": [1, 2, "x", 4], "desc": "d"}], "00001.jpg")
    )
    with pytest.raises(DatasetError, match=r"<bndbox>: <xmax> = 'x' is not a number"):
        DIORRSVGAdapter(root).samples()


def test_xml_syntax_error_names_line(tmp_path: Path) -> None:
    root = _rsvg(tmp_path, {"00001": [_obj(1)]}, test=[0])
    p = root / "Annotations" / "00001.xml"
    p.write_text(p.read_text()[:-20])
    with pytest.raises(DatasetError, match=r"00001\.xml: XML syntax error at line \d+, column \d+"):
        DIORRSVGAdapter(root).samples()


def test_split_file_with_bad_line(tmp_path: Path) -> None:
    root = _rsvg(tmp_path, {"00001": [_obj(1)]}, test=[0])
    (root / "test.txt").write_text("0\n\nfoo\n")
    with pytest.raises(DatasetError, match=r"test\.txt, line 3: 'foo' is not an integer"):
        DIORRSVGAdapter(root).samples()


def test_listed_image_absent(tmp_path: Path) -> None:
    root = _rsvg(tmp_path, {"00001": [_obj(1)]}, test=[0], images=False)
    with pytest.raises(DatasetError, match=r"absent: .*JPEGImages/00001\.jpg"):
        DIORRSVGAdapter(root).samples()


def test_missing_layout(tmp_path: Path) -> None:
    with pytest.raises(
        DatasetError, match=r"(?s)Annotations not found.*Expected layout.*test\.txt"
    ):
        DIORRSVGAdapter(tmp_path)


def test_filename_falls_back_to_xml_stem(tmp_path: Path) -> None:
    root = _rsvg(tmp_path, {"00001": [_obj(1)]}, test=[0])
    (root / "Annotations" / "00001.xml").write_text(_xml([_obj(1)], None))
    assert Path(DIORRSVGAdapter(root).samples()[0].image).name == "00001.jpg"


# --------------------------------------------------------------------------------------------
# metrics
# --------------------------------------------------------------------------------------------


@pytest.mark.parity
def test_box_iou_equals_official_golden(reference_dir: Path) -> None:
    g = np.load(reference_dir / "postprocess_golden.npz")
    cases = json.loads(str(g["results_json"]))["vg_computeIoU"]
    assert len(cases) == 7
    for c in cases:
        assert box_iou(c["pred"], c["gt"]) == c["iou"]
    vec = box_iou_pairs(
        np.array([c["pred"] for c in cases], float), np.array([c["gt"] for c in cases], float)
    )
    np.testing.assert_array_equal(vec, [c["iou"] for c in cases])


def test_no_box_counts_zero_not_previous_iou(tmp_path: Path) -> None:
    """The official stale-IoU bug is not reproduced: a missing box is a miss for every metric."""
    files = {f"{i:05d}": [_obj(i)] for i in range(1, 5)}
    root = _rsvg(tmp_path, files, test=[0, 1, 2, 3])
    samples = DIORRSVGAdapter(root).samples()
    gts = [s.target["bbox_xyxy"] for s in samples]
    boxes = [gts[0], None, [3, 3, 13, 7], None]  # perfect, none, IoU 0.5, none
    task = VisualGroundingTask()
    s = task.score(samples, _predict(FakeVGModel(boxes), samples))
    assert s.metrics["Acc@0.5"] == pytest.approx(50.0)  # official bug would report 100
    assert s.metrics["Acc@0.6"] == pytest.approx(25.0)
    assert s.metrics["mIoU"] == pytest.approx(100 * 1.5 / 4)
    assert s.metrics["no_box_rate"] == pytest.approx(50.0)
    assert set(s.metrics) == {m.name for m in task.metrics}
    for name, arr in s.per_sample.items():
        assert arr.mean() == pytest.approx(s.metrics[name])


def test_grounding_metrics_random() -> None:
    rng = np.random.default_rng(0)
    for _ in range(3):
        p = (
            np.sort(rng.uniform(0, 100, (200, 2, 2)), axis=1)
            .transpose(0, 2, 1)
            .reshape(200, 4)[:, [0, 2, 1, 3]]
        )
        g = (
            np.sort(rng.uniform(0, 100, (200, 2, 2)), axis=1)
            .transpose(0, 2, 1)
            .reshape(200, 4)[:, [0, 2, 1, 3]]
        )
        iou = box_iou_pairs(p, g)
        ref = [box_iou(a, b) for a, b in zip(p, g)]
        np.testing.assert_allclose(iou, ref)
        import torch
        import torchvision

        tv = torchvision.ops.box_iou(torch.from_numpy(p), torch.from_numpy(g)).diagonal().numpy()
        np.testing.assert_allclose(iou, tv, atol=1e-12)
        m = grounding_metrics(iou)
        assert m["Acc@0.7"] == pytest.approx((iou >= 0.7).mean())


def test_bad_prediction_and_options() -> None:
    s = Sample("0", "x.jpg", {"bbox_xyxy": [0, 0, 1, 1]})
    with pytest.raises(ValueError, match=r"'box' must be \[x1, y1, x2, y2\] or null"):
        VisualGroundingTask().score([s], [{"box": [1, 2]}])
    with pytest.raises(ValueError, match="no options"):
        VisualGroundingTask({"x": 1})


@pytest.mark.realdata
def test_real_xml_complete_split_and_check_task_plugin(real_data: Path, tmp_path: Path) -> None:
    """The real XML in a layout whose Annotations folder is complete for a one-index split."""
    shutil.copytree(real_data / "dior_rsvg" / "Annotations", tmp_path / "Annotations")
    shutil.copytree(real_data / "dior_rsvg" / "JPEGImages", tmp_path / "JPEGImages")
    (tmp_path / "test.txt").write_text("0\n")
    assert len(DIORRSVGAdapter(tmp_path).samples()) == 1
    from remotesam import testing

    testing.check_task_plugin(VisualGroundingTask)
    testing.check_task_plugin(
        VisualGroundingTask, dataset_root=tmp_path, model=FakeVGModel([[130, 230, 680, 670]])
    )


@pytest.mark.slow
@pytest.mark.realdata
def test_harness_end_to_end_with_tiny_model(real_data: Path, tmp_path: Path) -> None:
    root = tmp_path / "RSVG"
    shutil.copytree(real_data / "dior_rsvg" / "Annotations", root / "Annotations")
    shutil.copytree(real_data / "dior_rsvg" / "JPEGImages", root / "JPEGImages")
    (root / "test.txt").write_text("0\n")
    res = run_harness_tiny(tmp_path, "vg.dior_rsvg", root)
    assert (res.n_evaluated, res.n_failed) == (1, 0)
    assert set(res.metrics) == {m.name for m in VisualGroundingTask.metrics}


@pytest.mark.parametrize(
    ("box", "match"),
    [
        (["nan", 1, 10, 10], r"<xmin> = 'nan' is not a finite number"),
        ([1, 1, "inf", 10], r"<xmax> = 'inf' is not a finite number"),
        ([1, "-Infinity", 10, 10], r"<ymin> = '-Infinity' is not a finite number"),
        ([20, 1, 10, 10], r"inverted box xmin=20 ymin=1 xmax=10 ymax=10"),
        ([1, 30, 10, 10], r"inverted box"),
    ],
)
def test_hostile_bndbox_values_name_file_and_object(tmp_path: Path, box: list, match: str) -> None:
    root = _rsvg(tmp_path, {"00001": [_obj(0), {"box": box, "desc": "bad"}]}, [0, 1])
    with pytest.raises(DatasetError, match=r"00001\.xml, <object> #2 <bndbox>: " + match):
        DIORRSVGAdapter(root).samples()


def test_zero_width_box_is_kept_as_officially(tmp_path: Path) -> None:
    root = _rsvg(tmp_path, {"00001": [{"box": [5, 5, 5, 9], "desc": "a line"}]}, [0])
    assert DIORRSVGAdapter(root).samples()[0].target["bbox_xyxy"] == [5.0, 5.0, 5.0, 9.0]
