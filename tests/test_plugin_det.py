"""Tests of the ``det`` plugin (DIOR COCO json, DOTA labels) and its metric functions.

Real data used: ``dior/JPEGImages/00001.jpg`` (REAL) with
``dior/Annotations/DIOR_00001_coco_RECONSTRUCTED.json`` (a RECONSTRUCTED container holding the
real DIOR-R box, see SOURCES.md); DOTA label files (REAL) with and without header lines; the
DOTA images that are not public are generated in ``tmp_path`` at the size the labels imply.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from plugin_support import check_plugin_tiny

from remotesam.bench.api import DatasetError, Sample
from remotesam.types import Detections
from remotesam_plugins._detection_common import (
    DIOR_CLASSES,
    DOTA_CLASSES,
    read_coco_detection_json,
    read_dota_label_file,
)
from remotesam_plugins.det import DetectionTask, DIORDetectionAdapter, DOTADetectionAdapter
from remotesam_plugins.metrics.detection import (
    coco_bbox_ap,
    polygon_ap,
    polygon_iou_matrix,
    xyxy_to_polygon,
)

RECON_JSON = "DIOR_00001_coco_RECONSTRUCTED.json"


def _img(path: Path, h: int, w: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.zeros((h, w, 3), np.uint8)).save(path)


@pytest.fixture
def dior_root(real_data: Path, tmp_path: Path) -> Path:
    """Official DIORcoco layout with the REAL image and the RECONSTRUCTED json as DIOR_test.json."""
    root = tmp_path / "DIORcoco"
    (root / "Annotations").mkdir(parents=True)
    shutil.copy(
        real_data / "dior" / "Annotations" / RECON_JSON, root / "Annotations" / "DIOR_test.json"
    )
    shutil.copytree(real_data / "dior" / "JPEGImages", root / "JPEGImages")
    return root


def _coco(images: list[tuple[int, str]], anns: list[tuple[int, int, list[float]]],
          cats: list[tuple[int, str]]) -> dict[str, Any]:
    return {
        "images": [{"id": i, "file_name": f, "width": 800, "height": 800} for i, f in images],
        "annotations": [
            {
                "id": k + 1,
                "image_id": i,
                "category_id": c,
                "bbox": b,
                "area": b[2] * b[3],
                "iscrowd": 0,
            }
            for k, (i, c, b) in enumerate(anns)
        ],
        "categories": [{"id": i, "name": n} for i, n in cats],
    }


class FakeDetModel:
    """Returns the queued Detections of the n-th image (per box type) and records the calls."""

    def __init__(self, responses: list[dict[str, Detections]]) -> None:
        self.responses = list(responses)
        self.calls: list[dict[str, Any]] = []
        self.count: dict[str, int] = {}

    def detection(self, image: np.ndarray, classnames: list[str], box_type: str = "hbb",
                  epoc: bool | None = None) -> Detections:
        self.calls.append(
            {
                "shape": image.shape,
                "classnames": list(classnames),
                "box_type": box_type,
                "epoc": epoc,
            }
        )
        k = self.count.get(box_type, 0)
        self.count[box_type] = k + 1
        return self.responses[k][box_type]


def _predict(task: DetectionTask, model: FakeDetModel, samples: list[Sample]) -> list[dict]:
    """The stored JSON of ``model``'s detections, as the plugin's ``reduce`` encodes them
    (built-in plugins predict through requests and ``reduce``; the fake answers per task
    method, so the scoring tests feed its detections through the same encoder)."""
    from remotesam.bench.api import BoxesPrediction
    from remotesam.bench.api import Detections as Parts

    out = []
    for s in samples:
        with Image.open(s.image) as im:
            w, h = im.size
        classes = list(task._classes(s))
        parts = {}
        for bt in ("hbb", "obb") if task.box_type == "both" else (task.box_type,):
            d = model.detection(np.zeros((h, w, 3), np.uint8), classes, box_type=bt,
                                epoc=task._epoc_for(s))
            parts[bt] = Parts.from_arrays(d.boxes, d.scores, d.labels, d.classnames)
        out.append(BoxesPrediction((h, w), **parts).encode())
    return out


def _dets(
    classnames: tuple[str, ...], box_type: str, rows: list[tuple[str, list[float], float]]
) -> Detections:
    width = 4 if box_type == "hbb" else 8
    boxes = np.array([r[1] for r in rows], np.float64).reshape(-1, width)
    return Detections(classnames=classnames, box_type=box_type, boxes=boxes,
                      scores=np.array([r[2] for r in rows], np.float64),
                      labels=np.array([classnames.index(r[0]) for r in rows], np.int64))


# --------------------------------------------------------------------------------------------
# adapters
# --------------------------------------------------------------------------------------------


@pytest.mark.realdata
def test_dior_reads_real_image_and_reconstructed_json(dior_root: Path) -> None:
    samples = DIORDetectionAdapter(dior_root).samples()
    assert [s.sample_id for s in samples] == ["00001.jpg"]
    s = samples[0]
    assert s.target["bbox_xyxy"] == [[133.0, 237.0, 684.0, 672.0]]  # real DIOR-R golffield box
    assert s.target["labels"] == ["golffield"]
    assert Path(s.image).is_file() and s.meta["width"] == 800


def test_dior_categories_are_mapped_by_name_not_id(tmp_path: Path) -> None:
    # a public converter's order: dam is 9th, ids 0-based, native capitalisation
    cats = [
        (0, "airplane"),
        (8, "dam"),
        (6, "Expressway-Service-area"),
        (7, "Expressway-toll-station"),
    ]
    p = tmp_path / "a.json"
    p.write_text(
        json.dumps(
            _coco(
                [(5, "x.jpg")],
                [(5, 8, [0, 0, 10, 10]), (5, 6, [1, 1, 5, 5]), (5, 0, [2, 2, 3, 3])],
                cats,
            )
        )
    )
    coco = read_coco_detection_json(p, DIOR_CLASSES)
    assert coco.labels[5] == ["dam", "expressway-service-area", "airplane"]
    np.testing.assert_array_equal(coco.boxes[5][0], [0, 0, 10, 10])


def test_unknown_category_name_names_file_and_field(tmp_path: Path) -> None:
    p = tmp_path / "a.json"
    p.write_text(json.dumps(_coco([(1, "x.jpg")], [], [(1, "airplane"), (2, "spaceship")])))
    with pytest.raises(DatasetError, match=r"a\.json: categories\[1\]\.name = 'spaceship'"):
        read_coco_detection_json(p, DIOR_CLASSES)


def test_truncated_json_names_file_and_line(dior_root: Path) -> None:
    ann = dior_root / "Annotations" / "DIOR_test.json"
    ann.write_text(ann.read_text()[:200])
    with pytest.raises(
        DatasetError, match=r"DIOR_test\.json is not valid JSON.*line \d+, column \d+"
    ):
        DIORDetectionAdapter(dior_root).samples()


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        ({"bbox": [1, 2, 3]}, r"annotations\[0\]\.bbox"),
        ({"bbox": [1, 2, -3, 4]}, r"annotations\[0\]\.bbox"),
        ({"category_id": 99}, r"annotations\[0\]\.category_id = 99 is not declared"),
        ({"image_id": 7}, r"annotations\[0\]\.image_id = 7 is not in images"),
    ],
)
def test_malformed_annotation_fields(tmp_path: Path, bad: dict, match: str) -> None:
    data = _coco([(1, "x.jpg")], [(1, 1, [0, 0, 5, 5])], [(1, "airplane")])
    data["annotations"][0].update(bad)
    p = tmp_path / "a.json"
    p.write_text(json.dumps(data))
    with pytest.raises(DatasetError, match=match):
        read_coco_detection_json(p, DIOR_CLASSES)


def test_listed_image_absent(dior_root: Path) -> None:
    (dior_root / "JPEGImages" / "00001.jpg").unlink()
    with pytest.raises(DatasetError, match=r"absent: .*00001\.jpg"):
        DIORDetectionAdapter(dior_root).samples()


def test_missing_dataset_shows_layout(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"Expected layout:\n<root>/ .*DIORcoco"):
        DIORDetectionAdapter(tmp_path)
    with pytest.raises(DatasetError, match="unknown split"):
        DIORDetectionAdapter(tmp_path, "nope")


def test_images_without_annotations_are_skipped(tmp_path: Path) -> None:
    root = tmp_path / "DIORcoco"
    _img(root / "JPEGImages" / "a.jpg", 8, 8)
    _img(root / "JPEGImages" / "b.jpg", 8, 8)
    (root / "Annotations").mkdir()
    (root / "Annotations" / "DIOR_test.json").write_text(
        json.dumps(_coco([(1, "a.jpg"), (2, "b.jpg")], [(2, 1, [0, 0, 2, 2])], [(1, "airplane")])))
    assert [s.sample_id for s in DIORDetectionAdapter(root).samples()] == ["b.jpg"]


@pytest.mark.realdata
def test_dota_patch_without_headers(real_data: Path) -> None:
    samples = DOTADetectionAdapter(real_data / "dota" / "split_patch").samples()
    assert [s.sample_id for s in samples] == ["P1478__1__853___962"]
    t = samples[0].target
    assert len(t["labels"]) == 295 and set(t["difficult"]) == {0, 1, 2}
    assert np.asarray(t["polygons"]).shape == (295, 8)
    assert t["polygons"][0] == [907.0, 127.0, 889.0, 126.0, 890.0, 88.0, 908.0, 89.0]
    assert t["bbox_xyxy"][0] == [889.0, 88.0, 908.0, 127.0]


@pytest.mark.realdata
def test_dota_full_image_with_headers_and_name_mapping(real_data: Path) -> None:
    samples = DOTADetectionAdapter(real_data / "dota" / "v1.0_full_image").samples()
    # only P1888's image is public: images drive the sample list, labels without images are unused
    assert [s.sample_id for s in samples] == ["P1888"]
    assert len(samples[0].target["labels"]) == 64
    objs = read_dota_label_file(
        real_data / "dota" / "v1.0_full_image" / "labelTxt" / "P0706.txt", DOTA_CLASSES
    )
    raw = {o.raw_name for o in objs}
    assert {o.name for o in objs} <= set(DOTA_CLASSES)
    if "plane" in raw:
        assert "airplane" in {o.name for o in objs}


@pytest.mark.realdata
def test_dota_float_labels_with_generated_images(real_data: Path, tmp_path: Path) -> None:
    src = real_data / "dota" / "float_coord_labels" / "labelTxt"
    root = tmp_path / "DOTAv2_patches" / "val"
    shutil.copytree(src, root / "labelTxt")
    for f in sorted(src.glob("*.txt")):
        if f.stem == "P0019":  # 6417 px wide: keep the test light, its parse is checked below
            (root / "labelTxt" / f.name).unlink()
            continue
        polys = np.stack([o.polygon for o in read_dota_label_file(f)])
        _img(
            root / "images" / f"{f.stem}.png",
            int(polys[:, 1::2].max()) + 1,
            int(polys[:, 0::2].max()) + 1,
        )
    samples = DOTADetectionAdapter(tmp_path / "DOTAv2_patches").samples()
    assert [s.sample_id for s in samples] == ["P0003", "P0004", "P0005", "P0007"]
    assert [len(s.target["labels"]) for s in samples] == [55, 107, 130, 158]
    assert len(read_dota_label_file(src / "P0019.txt", DOTA_CLASSES)) == 109


@pytest.mark.parametrize(
    ("line", "match"),
    [
        ("1 2 3 4 5 6 7 8 plane", r"x\.txt, line 3: found 9 fields"),
        ("1 2 3 4 5 6 7 plane 0 0", r"x\.txt, line 3: the first 8 fields must be numbers"),
        ("1 2 3 4 5 6 7 8 spaceship 0", r"x\.txt, line 3: unknown class 'spaceship'"),
        ("1 2 3 4 5 6 7 8 plane hard", r"x\.txt, line 3: difficulty 'hard'"),
    ],
)
def test_malformed_dota_lines(tmp_path: Path, line: str, match: str) -> None:
    p = tmp_path / "x.txt"
    p.write_text(f"imagesource:GoogleEarth\ngsd:null\n{line}\n")
    with pytest.raises(DatasetError, match=match):
        read_dota_label_file(p, DOTA_CLASSES)


def test_dota_image_without_label_file(tmp_path: Path) -> None:
    _img(tmp_path / "images" / "a.png", 4, 4)
    (tmp_path / "annfiles").mkdir()
    with pytest.raises(DatasetError, match=r"image .*a\.png has no label file .*a\.txt"):
        DOTADetectionAdapter(tmp_path).samples()
    with pytest.raises(DatasetError, match="test-dev labels are not public"):
        _img(tmp_path / "x" / "images" / "a.png", 4, 4)
        DOTADetectionAdapter(tmp_path / "x")


# --------------------------------------------------------------------------------------------
# metric parity
# --------------------------------------------------------------------------------------------


def _random_problem(seed: int, n_img: int = 25, K: int = 5):
    rng = np.random.default_rng(seed)
    gtb, gtl = {}, {}
    di, db, ds, dl = [], [], [], []
    for i in range(1, n_img + 1):
        n = int(rng.integers(0, 8))
        xy = rng.uniform(0, 400, (n, 2))
        gtb[i] = np.concatenate([xy, xy + rng.uniform(2, 80, (n, 2))], 1)
        gtl[i] = rng.integers(0, K, n)
        for _ in range(int(rng.integers(0, 12))):
            if n and rng.random() < 0.7:
                g = int(rng.integers(0, n))
                b = gtb[i][g] + rng.normal(0, 6, 4)
                lab = gtl[i][g] if rng.random() < 0.9 else rng.integers(0, K)
            else:
                xy0 = rng.uniform(0, 400, 2)
                b = np.r_[xy0, xy0 + rng.uniform(2, 80, 2)]
                lab = rng.integers(0, K)
            b = np.r_[min(b[0], b[2]), min(b[1], b[3]), max(b[0], b[2]), max(b[1], b[3])]
            di.append(i)
            db.append(b)
            ds.append(round(float(rng.random()), 2))  # ties on purpose
            dl.append(int(lab))
    return (list(range(1, n_img + 1)), gtb, gtl, np.array(di), np.array(db).reshape(-1, 4),
            np.array(ds), np.array(dl), [f"c{k}" for k in range(K)])


def _pycocotools_per_class(ids, gtb, gtl, di, xywh, ds, dl, K) -> np.ndarray:
    """The official way: one COCOeval per class with params.catIds=[c]; returns stats[:3] rows."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    gt = {
        "images": [{"id": i} for i in ids],
        "annotations": [],
        "categories": [{"id": k + 1} for k in range(K)],
    }
    for i in ids:
        for b, lab in zip(gtb[i], gtl[i]):
            w, h = b[2] - b[0], b[3] - b[1]
            gt["annotations"].append(
                {
                    "id": len(gt["annotations"]) + 1,
                    "image_id": i,
                    "category_id": int(lab) + 1,
                    "bbox": [b[0], b[1], w, h],
                    "area": w * h,
                    "iscrowd": 0,
                }
            )
    dets = [
        {
            "image_id": int(di[j]),
            "category_id": int(dl[j]) + 1,
            "bbox": [float(v) for v in xywh[j]],
            "score": float(ds[j]),
        }
        for j in range(len(ds))
    ]
    rows = []
    with contextlib.redirect_stdout(io.StringIO()):
        for k in range(K):
            cg = COCO()
            cg.dataset = copy.deepcopy(gt)
            cg.createIndex()
            ev = COCOeval(cg, cg.loadRes(copy.deepcopy(dets)), "bbox")
            ev.params.catIds = [k + 1]
            ev.evaluate()
            ev.accumulate()
            ev.summarize()
            rows.append(ev.stats[:3])
    return np.array(rows)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_coco_ap_equals_official_per_class_cocoeval(seed: int) -> None:
    ids, gtb, gtl, di, db, ds, dl, classes = _random_problem(seed)
    xywh = np.c_[db[:, :2], db[:, 2:] - db[:, :2]]
    res = coco_bbox_ap(ids, gtb, gtl, di, xywh, ds, dl, classes)
    ref = _pycocotools_per_class(ids, gtb, gtl, di, xywh, ds, dl, len(classes))
    ref = np.where(ref < 0, np.nan, ref)
    np.testing.assert_array_equal(res.ap, ref[:, 0])
    np.testing.assert_array_equal(res.ap50, ref[:, 1])
    np.testing.assert_array_equal(res.ap75, ref[:, 2])
    assert res.overall_ap == pytest.approx(res.stats[0], abs=1e-12)
    assert res.mean_ap50 == pytest.approx(np.nanmean(ref[:, 1]), abs=1e-12)


@pytest.mark.parametrize("seed", [3, 4, 5])
def test_faster_coco_eval_agrees_with_pycocotools(seed: int) -> None:
    pytest.importorskip("faster_coco_eval")
    ids, gtb, gtl, di, db, ds, dl, classes = _random_problem(seed, n_img=40)
    xywh = np.c_[db[:, :2], db[:, 2:] - db[:, :2]]
    a = coco_bbox_ap(ids, gtb, gtl, di, xywh, ds, dl, classes)
    b = coco_bbox_ap(ids, gtb, gtl, di, xywh, ds, dl, classes, backend="faster-coco-eval")
    for x, y in ((a.ap50, b.ap50), (a.ap, b.ap), (a.ap75, b.ap75)):
        np.testing.assert_allclose(x, y, atol=1e-6, rtol=0)
    assert abs(a.overall_ap - b.overall_ap) <= 1e-6


@pytest.mark.parametrize("seed", [0, 6])
def test_polygon_ap_equals_cocoeval_on_axis_aligned_boxes(seed: int) -> None:
    ids, gtb, gtl, di, db, ds, dl, classes = _random_problem(seed)
    xywh = np.c_[db[:, :2], db[:, 2:] - db[:, :2]]
    ref = coco_bbox_ap(ids, gtb, gtl, di, xywh, ds, dl, classes)
    res = polygon_ap(
        ids,
        {i: xyxy_to_polygon(b) for i, b in gtb.items()},
        gtl,
        di,
        xyxy_to_polygon(db),
        ds,
        dl,
        classes,
        iou_thresholds=np.linspace(0.5, 0.95, 10),
    )
    np.testing.assert_allclose(res.ap50, ref.ap50, atol=1e-12)
    np.testing.assert_allclose(res.ap, ref.ap, atol=1e-12)


def test_difficult_ignore_matches_between_polygon_and_coco_paths() -> None:
    ids, gtb, gtl, di, db, ds, dl, classes = _random_problem(7)
    rng = np.random.default_rng(7)
    ign = {i: rng.random(len(gtl[i])) < 0.3 for i in ids}
    xywh = np.c_[db[:, :2], db[:, 2:] - db[:, :2]]
    a = coco_bbox_ap(ids, gtb, gtl, di, xywh, ds, dl, classes, gt_ignore=ign)
    b = polygon_ap(
        ids,
        {i: xyxy_to_polygon(x) for i, x in gtb.items()},
        gtl,
        di,
        xyxy_to_polygon(db),
        ds,
        dl,
        classes,
        gt_ignore=ign,
    )
    np.testing.assert_allclose(a.ap50, b.ap50, atol=1e-12)
    plain = coco_bbox_ap(ids, gtb, gtl, di, xywh, ds, dl, classes)
    assert not np.allclose(plain.ap50, a.ap50, equal_nan=True)
    with pytest.raises(ValueError, match="only supported by the pycocotools backend"):
        coco_bbox_ap(
            ids, gtb, gtl, di, xywh, ds, dl, classes, gt_ignore=ign, backend="faster-coco-eval"
        )


def test_polygon_iou_values() -> None:
    sq = np.array([[0, 0, 10, 0, 10, 10, 0, 10]], float)
    # a 45-degree diamond |x-5| + |y-5| <= 7.5 (area 112.5); 4 tips of area 6.25 stick out
    diamond = np.array([[5, -2.5, 12.5, 5, 5, 12.5, -2.5, 5]], float)
    shifted = sq + np.array([5, 0] * 4)
    iou = polygon_iou_matrix(np.vstack([sq, shifted]), np.vstack([sq, diamond]))
    assert iou[0, 0] == pytest.approx(1.0)
    assert iou[1, 0] == pytest.approx(50 / 150)
    assert iou[0, 1] == pytest.approx(87.5 / 125.0)
    degenerate = np.array([[1, 187, 1, 187, 1, 219, 1, 219]], float)  # a real zero-area DOTA object
    assert polygon_iou_matrix(degenerate, sq)[0, 0] == 0.0


# --------------------------------------------------------------------------------------------
# predict / score
# --------------------------------------------------------------------------------------------


def _dior_samples(tmp_path: Path) -> list[Sample]:
    root = tmp_path / "DIORcoco"
    (root / "Annotations").mkdir(parents=True)
    images = [(1, "1.jpg"), (2, "2.jpg")]
    anns = [(1, 1, [10, 10, 50, 40]), (1, 14, [100, 100, 20, 20]), (2, 14, [5, 5, 30, 30])]
    cats = [(k + 1, c) for k, c in enumerate(DIOR_CLASSES)]
    (root / "Annotations" / "DIOR_test.json").write_text(json.dumps(_coco(images, anns, cats)))
    for _, f in images:
        _img(root / "JPEGImages" / f, 800, 800)
    return DIORDetectionAdapter(root).samples()


def test_predict_score_perfect_and_official_truncation(tmp_path: Path) -> None:
    samples = _dior_samples(tmp_path)
    C = DIOR_CLASSES
    model = FakeDetModel(
        [
            {
                "hbb": _dets(
                    C,
                    "hbb",
                    [
                        ("airplane", [10.7, 10.2, 60.9, 50.5], 0.9),
                        ("ship", [100, 100, 120, 120], 0.8),
                    ],
                )
            },
            {
                "hbb": _dets(
                    C, "hbb", [("ship", [5, 5, 35, 35], 0.7), ("ship", [300, 300, 330, 330], 0.6)]
                )
            },
        ]
    )
    task = DetectionTask()
    preds = _predict(task, model, samples)
    assert json.loads(json.dumps(preds)) == preds
    assert (
        model.calls[0]["classnames"] == list(C) and model.calls[0]["epoc"] is None
    )  # auto -> predictor default
    sc = task.score(samples, preds)
    rows = {r["class"]: r for r in sc.tables["per_class"]}
    # [10.7, 10.2, 60.9, 50.5] -> int truncation [10, 10, 50, 40]: exactly the GT box
    assert rows["airplane"]["AP50"] == pytest.approx(100.0)
    assert rows["airplane"]["AP"] == pytest.approx(100.0)
    assert rows["ship"]["AP50"] == pytest.approx(100.0)  # the FP scores below both TPs
    assert rows["dam"]["AP50"] is None and rows["dam"]["n_gt"] == 0
    assert sc.metrics["mAP50"] == pytest.approx(100.0)
    assert (
        np.isnan(sc.metrics["mAP50_obb"])
        and "no oriented ground truth" in sc.tables["notes"]["mAP50_obb"]
    )
    assert set(sc.metrics) == {m.name for m in DetectionTask.metrics}


def test_obb_scoring_on_dota_and_difficult_option(tmp_path: Path) -> None:
    root = tmp_path / "dota"
    _img(root / "images" / "p.png", 64, 64)
    (root / "annfiles").mkdir()
    (root / "annfiles" / "p.txt").write_text(
        "0 0 10 0 10 10 0 10 plane 0\n20 20 30 20 30 30 20 30 plane 1\n"
    )
    samples = DOTADetectionAdapter(root).samples()
    C = DOTA_CLASSES
    resp = {"hbb": _dets(C, "hbb", [("airplane", [0, 0, 10, 10], 0.9)]),
            "obb": _dets(C, "obb", [("airplane", [0, 0, 10, 0, 10, 10, 0, 10], 0.9)])}
    model = FakeDetModel([resp])
    task = DetectionTask({"box_type": "both"})
    preds = _predict(task, model, samples)
    assert [c["box_type"] for c in model.calls] == ["hbb", "obb"] and model.calls[0][
        "epoc"
    ] is False
    keep = task.score(samples, preds)
    half = 100.0 * 51 / 101  # recall 0.5 at precision 1: 51 of the 101 COCO recall points
    assert keep.metrics["mAP50"] == pytest.approx(half)  # the difficult object is missed
    assert keep.metrics["mAP50_obb"] == pytest.approx(half)
    ign = DetectionTask({"box_type": "both", "difficult": "ignore"}).score(samples, preds)
    assert ign.metrics["mAP50"] == pytest.approx(100.0)
    assert ign.metrics["mAP50_obb"] == pytest.approx(100.0)
    obb_only = DetectionTask({"box_type": "obb"}).score(
        samples, [{"obb": preds[0]["obb"], "size": [64, 64]}]
    )
    assert (
        obb_only.metrics["mAP50"] == pytest.approx(half)
        and "envelopes" in obb_only.tables["notes"]["hbb"]
    )


def test_corrupt_image_fails_the_sample(tmp_path: Path) -> None:
    samples = _dior_samples(tmp_path)
    Path(samples[0].image).write_bytes(b"not a jpeg")
    from remotesam import RemoteSAM
    from remotesam.bench.run import default_checkpoint

    model = RemoteSAM.from_checkpoint(default_checkpoint())
    with pytest.raises(DatasetError, match=r"1\.jpg"):
        DetectionTask().predict(model, samples[:1])


def test_bad_options_and_predictions(tmp_path: Path) -> None:
    for opts, match in (
        ({"box_type": "xyz"}, "box_type"),
        ({"nope": 1}, "unknown option"),
        ({"epoc": "maybe"}, "epoc"),
        ({"coco_backend": "x"}, "coco_backend"),
        ({"difficult": "ignore", "coco_backend": "faster-coco-eval"}, "pycocotools"),
    ):
        with pytest.raises(ValueError, match=match):
            DetectionTask(opts)
    samples = _dior_samples(tmp_path)
    with pytest.raises(ValueError, match="no 'hbb' or 'obb' field"):
        DetectionTask().score(samples[:1], [{}])
    bad = {"hbb": {"boxes": [[0, 0, 1, 1]], "scores": [0.5], "labels": ["spaceship"]}}
    with pytest.raises(ValueError, match="malformed boxes"):
        DetectionTask().score(samples[:1], [bad])
    assert DetectionTask({"epoc": "false"}).settings() == {"box_type": "hbb", "epoc": False}


def test_check_task_plugin() -> None:
    from remotesam import testing

    testing.check_task_plugin(DetectionTask)


@pytest.mark.slow
def test_end_to_end_tiny_model(tmp_path: Path) -> None:
    """predict + score through check_task_plugin with the tiny random model on a small
    DIOR-format set."""
    root = tmp_path / "DIORcoco"
    (root / "Annotations").mkdir(parents=True)
    data = _coco(
        [(1, "1.jpg")], [(1, 1, [10, 10, 30, 20])], [(k + 1, c) for k, c in enumerate(DIOR_CLASSES)]
    )
    data["images"][0].update(width=96, height=96)
    (root / "Annotations" / "DIOR_test.json").write_text(json.dumps(data))
    rng = np.random.default_rng(0)
    (root / "JPEGImages").mkdir()
    Image.fromarray(rng.integers(0, 255, (96, 96, 3), dtype=np.uint8)).save(
        root / "JPEGImages" / "1.jpg"
    )
    check_plugin_tiny(DetectionTask, root)


# --------------------------------------------------------------------------------------------
# faithful edge cases (COCOeval on the original file; DOTA protocol)
# --------------------------------------------------------------------------------------------


def _write_dior(tmp_path: Path, data: dict[str, Any]) -> Path:
    root = tmp_path / "DIORcoco"
    (root / "Annotations").mkdir(parents=True, exist_ok=True)
    path = root / "Annotations" / "DIOR_test.json"
    path.write_text(json.dumps(data))
    for im in data["images"]:
        _img(root / "JPEGImages" / im["file_name"], 8, 8)
    return root


def _hbb_pred(rows: list[tuple[str, list[float], float]]) -> dict[str, Any]:
    """A stored det prediction: boxes xyxy, scores, class names."""
    return {"hbb": {"boxes": [list(map(float, r[1])) for r in rows], "scores": [r[2] for r in rows],
                    "labels": [r[0] for r in rows]}, "size": [800, 800]}


def _cocoeval_map50_on_file(ann_file: Path, dets: list[dict[str, Any]]) -> float:
    """The official way on the ORIGINAL json: COCOeval per class (catIds=[c]), mean of AP50s."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    aps = []
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(ann_file))
        for cid in sorted(gt.getCatIds()):
            if not gt.getAnnIds(catIds=[cid], iscrowd=False):
                continue
            ev = COCOeval(gt, gt.loadRes(copy.deepcopy(dets)), "bbox")
            ev.params.catIds = [cid]
            ev.evaluate()
            ev.accumulate()
            ev.summarize()
            aps.append(ev.stats[1])
    return 100.0 * float(np.mean(aps))


def _official_dets(
    samples: list[Sample], preds: list[dict[str, Any]], cat_ids: dict[str, int]
) -> list[dict]:
    """What the official DET.py writes: the file's image id, int-truncated xywh, the score."""
    out = []
    for s, p in zip(samples, preds):
        for b, sc, lab in zip(p["hbb"]["boxes"], p["hbb"]["scores"], p["hbb"]["labels"]):
            out.append({"image_id": s.meta["image_id"], "category_id": cat_ids[lab], "score": sc,
                        "bbox": [int(b[0]), int(b[1]), int(b[2] - b[0]), int(b[3] - b[1])]})
    return out


def test_scoring_keeps_the_json_image_ids_so_ties_rank_as_cocoeval(tmp_path: Path) -> None:
    # file order 30, 7, 12: renumbering them 1, 2, 3 would rank the tied detections of images
    # 30 and 7 the other way round from COCOeval (which sorts ties by image id)
    cats = [(k + 1, c) for k, c in enumerate(DIOR_CLASSES)]
    images = [(30, "a.jpg"), (7, "b.jpg"), (12, "c.jpg")]
    anns = [(30, 1, [10, 10, 40, 40]), (7, 1, [100, 100, 40, 40]), (12, 14, [50, 50, 20, 20])]
    root = _write_dior(tmp_path, _coco(images, anns, cats))
    samples = DIORDetectionAdapter(root).samples()
    assert [s.meta["image_id"] for s in samples] == [30, 7, 12]
    preds = [
        _hbb_pred([("airplane", [10, 10, 50, 50], 0.5)]),                      # TP, tied
        _hbb_pred([("airplane", [400, 400, 440, 440], 0.5),                    # FP, tied
                   ("airplane", [100, 100, 140, 140], 0.3)]),                  # TP
        _hbb_pred([("ship", [50, 50, 70, 70], 0.9), ("ship", [0, 0, 5, 5], 0.9)]),
    ]
    ours = DetectionTask().score(samples, preds)
    ref = _cocoeval_map50_on_file(root / "Annotations" / "DIOR_test.json",
                                  _official_dets(samples, preds, {c: k for k, c in cats}))
    assert ours.metrics["mAP50"] == pytest.approx(ref, abs=1e-9)
    rows = {r["class"]: r for r in ours.tables["per_class"]}
    assert rows["airplane"]["AP50"] == pytest.approx(100.0 * (2 / 3))  # FP ranked first (id 7 < 30)
    # the previous behaviour (images numbered in file order) stays available, and differs
    seq = DetectionTask({"image_ids": "sequential"}).score(samples, preds)
    assert seq.metrics["mAP50"] != pytest.approx(ref, abs=1e-6)
    assert seq.tables["settings"]["image_ids"] == "sequential"


def test_iscrowd_objects_are_coco_crowd_regions(tmp_path: Path) -> None:
    cats = [(k + 1, c) for k, c in enumerate(DIOR_CLASSES)]
    data = _coco(
        [(5, "a.jpg"), (9, "b.jpg")],
        [(5, 1, [10, 10, 30, 30]), (5, 1, [200, 200, 200, 200]), (9, 1, [20, 20, 30, 30])],
        cats,
    )
    data["annotations"][1]["iscrowd"] = 1  # a parking apron of aircraft marked as a crowd
    root = _write_dior(tmp_path, data)
    samples = DIORDetectionAdapter(root).samples()
    assert samples[0].target["iscrowd"] == [0, 1]
    preds = [
        _hbb_pred(
            [
                ("airplane", [10, 10, 40, 40], 0.6),
                ("airplane", [210, 210, 250, 250], 0.95),
                ("airplane", [300, 300, 340, 340], 0.9),
                ("airplane", [250, 350, 290, 390], 0.85),
            ]
        ),
        _hbb_pred([("airplane", [20, 20, 50, 50], 0.7)]),
    ]
    ours = DetectionTask().score(samples, preds)
    ref = _cocoeval_map50_on_file(root / "Annotations" / "DIOR_test.json",
                                  _official_dets(samples, preds, {c: k for k, c in cats}))
    assert ours.metrics["mAP50"] == pytest.approx(ref, abs=1e-9)
    assert ours.metrics["mAP50"] == pytest.approx(100.0)  # detections inside the crowd are ignored
    rows = {r["class"]: r for r in ours.tables["per_class"]}
    assert rows["airplane"]["n_gt"] == 2 and "iscrowd" in ours.tables["notes"]


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("bbox", [1, 2, float("nan"), 4], r"annotations\[0\]\.bbox = \[1, 2, nan, 4\].*finite"),
        ("bbox", [float("inf"), 2, 3, 4], r"annotations\[0\]\.bbox .*finite"),
        ("bbox", [10, 10, -5, 4], r"annotations\[0\]\.bbox .*inverted"),
        ("bbox", [True, 2, 3, 4], r"annotations\[0\]\.bbox"),
        ("iscrowd", 2, r"annotations\[0\]\.iscrowd = 2; expected 0 or 1"),
        ("area", float("nan"), r"annotations\[0\]\.area = nan"),
        ("area", -3, r"annotations\[0\]\.area = -3"),
    ],
)
def test_hostile_dior_annotation_values(tmp_path: Path, field: str, value: Any, match: str) -> None:
    data = _coco([(1, "x.jpg")], [(1, 1, [0, 0, 5, 5])], [(1, "airplane")])
    data["annotations"][0][field] = value
    p = tmp_path / "a.json"
    p.write_text(json.dumps(data))  # json writes NaN / Infinity, which Python's reader accepts
    with pytest.raises(DatasetError, match=r"a\.json: " + match):
        read_coco_detection_json(p, DIOR_CLASSES)


@pytest.mark.parametrize(
    ("key", "value"), [("width", float("nan")), ("height", -800), ("width", 12.5)]
)
def test_hostile_dior_image_sizes(tmp_path: Path, key: str, value: Any) -> None:
    data = _coco([(1, "x.jpg")], [(1, 1, [0, 0, 5, 5])], [(1, "airplane")])
    data["images"][0][key] = value
    p = tmp_path / "a.json"
    p.write_text(json.dumps(data))
    with pytest.raises(DatasetError, match=rf"a\.json: images\[0\]\.{key} = .*positive integer"):
        read_coco_detection_json(p, DIOR_CLASSES)


@pytest.mark.parametrize(
    ("line", "match"),
    [
        ("nan 2 3 4 5 6 7 8 plane 0", r"line 3: non-finite coordinate"),
        ("1 2 3 inf 5 6 7 8 plane 0", r"line 3: non-finite coordinate"),
        ("1 2 3 4 5 6 7 8 plane inf", r"line 3: difficulty 'inf' is not an integer 0, 1 or 2"),
        ("1 2 3 4 5 6 7 8 plane nan", r"line 3: difficulty 'nan'"),
        ("1 2 3 4 5 6 7 8 plane -1", r"line 3: difficulty '-1'"),
        ("1 2 3 4 5 6 7 8 plane 0.5", r"line 3: difficulty '0.5'"),
        ("1 2 3 4 5 6 7 8 plane 7", r"line 3: difficulty '7'"),
    ],
)
def test_hostile_dota_values(tmp_path: Path, line: str, match: str) -> None:
    p = tmp_path / "x.txt"
    p.write_text(f"imagesource:GoogleEarth\ngsd:null\n{line}\n")
    with pytest.raises(DatasetError, match=r"x\.txt, " + match):
        read_dota_label_file(p, DOTA_CLASSES)


def test_dota_coordinates_are_truncated_like_the_official_loader(tmp_path: Path) -> None:
    root = tmp_path / "dota"
    _img(root / "images" / "p.png", 32, 32)
    (root / "annfiles").mkdir()
    # a 3x3 vehicle at fractional coordinates (v2.0 labels carry floats)
    (root / "annfiles" / "p.txt").write_text(
        "10.9 10.9 13.9 10.9 13.9 13.9 10.9 13.9 small-vehicle 0\n"
    )
    official = DOTADetectionAdapter(root).samples()
    assert official[0].target["polygons"] == [[10.0, 10.0, 13.0, 10.0, 13.0, 13.0, 10.0, 13.0]]
    assert official[0].target["bbox_xyxy"] == [[10.0, 10.0, 13.0, 13.0]]
    floats = DOTADetectionAdapter(root, coords="float").samples()
    assert floats[0].target["bbox_xyxy"] == [[10.9, 10.9, 13.9, 13.9]]
    pred = [_hbb_pred([("small-vehicle", [10, 10, 13, 13], 0.9)])]
    assert DetectionTask().score(official, pred).metrics["mAP50"] == pytest.approx(100.0)
    assert DetectionTask().score(floats, pred).metrics["mAP50"] == pytest.approx(0.0)  # IoU 0.32
    with pytest.raises(DatasetError, match="coords='round'"):
        DOTADetectionAdapter(root, coords="round")


@pytest.mark.realdata
def test_dense_dota_patch_is_not_cut_at_100_detections(real_data: Path) -> None:
    samples = DOTADetectionAdapter(real_data / "dota" / "split_patch").samples()
    t = samples[0].target
    rng = np.random.default_rng(0)
    boxes = np.asarray(t["bbox_xyxy"])
    pred = [_hbb_pred([(lab, list(b), float(sc)) for lab, b, sc in
                       zip(t["labels"], boxes, rng.uniform(0.3, 1.0, len(boxes)))])]
    n_sv = t["labels"].count("small-vehicle")
    assert n_sv > 100  # a dense real patch
    default = DetectionTask().score(samples, pred)
    capped = DetectionTask({"max_dets": "100"}).score(samples, pred)
    sv = {r["class"]: r for r in default.tables["per_class"]}["small-vehicle"]
    sv_capped = {r["class"]: r for r in capped.tables["per_class"]}["small-vehicle"]
    # perfect boxes: only the real patch's zero-area objects (IoU 0 with anything) are missed
    assert sv["AP50"] > 98.0
    assert sv_capped["AP50"] < 40.0  # recall <= 100 / 263: the cap cuts the dense class
    assert (
        default.tables["settings"]["max_dets"] == "none"
        and capped.tables["settings"]["max_dets"] == 100
    )
    obb = DetectionTask({"box_type": "obb"}).score(samples, [{"obb": {
        "boxes": t["polygons"], "scores": pred[0]["hbb"]["scores"], "labels": t["labels"]}}])
    assert obb.metrics["mAP50_obb"] == pytest.approx(default.metrics["mAP50"])


def test_dior_keeps_the_coco_cap_of_100(tmp_path: Path) -> None:
    cats = [(k + 1, c) for k, c in enumerate(DIOR_CLASSES)]
    anns = [(1, 19, [10 * (k % 20), 10 * (k // 20), 8, 8]) for k in range(150)]
    root = _write_dior(tmp_path, _coco([(1, "a.jpg")], anns, cats))
    samples = DIORDetectionAdapter(root).samples()
    pred = [_hbb_pred([("vehicle", [b[0], b[1], b[0] + 8, b[1] + 8], 0.5 + k / 1000)
                       for k, (_, _, b) in enumerate(anns)])]
    sc = DetectionTask().score(samples, pred)
    assert sc.tables["settings"]["max_dets"] == 100
    ref = _cocoeval_map50_on_file(root / "Annotations" / "DIOR_test.json",
                                  _official_dets(samples, pred, {c: k for k, c in cats}))
    assert sc.metrics["mAP50"] == pytest.approx(ref, abs=1e-9) and ref < 70.0
    assert DetectionTask({"max_dets": "none"}).score(samples, pred).metrics[
        "mAP50"
    ] == pytest.approx(100.0)
    for bad in ("0", "-3", "many"):
        with pytest.raises(ValueError, match="max_dets"):
            DetectionTask({"max_dets": bad})


def test_file_name_under_two_image_ids_is_evaluated_per_id_as_cocoeval(tmp_path: Path) -> None:
    """Official DET.py walks the json's image ids: a file listed under two ids is two images,
    each with its own annotations (pycocotools COCOeval on the original json). The harness
    evaluates the same, warns with the count; ``duplicates=error`` refuses the file."""
    from remotesam.bench.api import DatasetWarning
    from remotesam_plugins.mlc import DIORMultiLabelAdapter

    cats = [(k + 1, c) for k, c in enumerate(DIOR_CLASSES)]
    images = [(5, "a.jpg"), (9, "a.jpg"), (12, "c.jpg")]
    anns = [(5, 1, [10, 10, 40, 40]), (9, 14, [100, 100, 40, 40]), (12, 14, [50, 50, 20, 20])]
    root = _write_dior(tmp_path, _coco(images, anns, cats))
    with pytest.warns(DatasetWarning, match=r"1 image entr\(y/ies\) repeat a file_name"):
        samples = DIORDetectionAdapter(root).samples()
    assert [s.sample_id for s in samples] == ["a.jpg", "a.jpg#9", "c.jpg"]
    assert [s.meta["image_id"] for s in samples] == [5, 9, 12]
    assert samples[0].image == samples[1].image
    # the same predictions for the same file under both ids, as the official loop makes them
    both = [("airplane", [10, 10, 50, 50], 0.8), ("ship", [100, 100, 140, 140], 0.6)]
    preds = [_hbb_pred(both), _hbb_pred(both), _hbb_pred([("ship", [50, 50, 70, 70], 0.9)])]
    ours = DetectionTask().score(samples, preds)
    ref = _cocoeval_map50_on_file(root / "Annotations" / "DIOR_test.json",
                                  _official_dets(samples, preds, {c: k for k, c in cats}))
    assert ours.metrics["mAP50"] == pytest.approx(ref, abs=1e-9)
    with pytest.warns(DatasetWarning):
        ml = DIORMultiLabelAdapter(root).samples()
    assert [(s.sample_id, s.target["labels"]) for s in ml] == [
        ("a.jpg", ["airplane"]), ("a.jpg#9", ["ship"]), ("c.jpg", ["ship"])]
    with pytest.raises(DatasetError, match=r"file_name 'a\.jpg' appears for two image ids "
                                           r"\(5 and 9\); drop the option duplicates=error"):
        DIORDetectionAdapter(root, duplicates="error").samples()
    with pytest.raises(DatasetError, match="option duplicates='drop'"):
        DIORDetectionAdapter(root, duplicates="drop")
