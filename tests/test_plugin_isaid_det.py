"""iSAID detection (``det.isaid``): the devkit's patch json, HBB and OBB AP50 (paper Tables 12-13).

Data: the procedural benchmark's ``iSAID_patches/val`` (written in the iSAID devkit's format;
the real samples in ``shared/data/real/isaid`` hold one image and no instance json, so no real
annotation can be read). Scores are compared with independent computations on the json file
itself: ``pycocotools`` ``COCOeval`` (bbox, the devkit's ``maxDets=1000``) for HBB, and for OBB
``COCOeval`` with its IoU replaced by ``shapely`` polygon IoU and the ground-truth rectangles
taken from ``shapely``'s ``minimum_rotated_rectangle`` of the json polygons.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from remotesam.bench.api import DatasetError
from remotesam.bench.records.published import load_published
from remotesam.classes import ISAID_CLASSES, ISAID_DEVKIT_NAMES
from remotesam.synth import generate
from remotesam_plugins._isaid_det import ISAIDDetectionAdapter, isaid_obb
from remotesam_plugins.det import DetectionTask


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synth")
    generate(out, seed=3, n_images=10, image_size=96, object_scale=1.6)
    return out


@pytest.fixture
def isaid_root(synth_root: Path, tmp_path: Path) -> Path:
    root = tmp_path / "iSAID_patches"
    shutil.copytree(synth_root / "iSAID_patches", root)
    return root


def _json(root: Path) -> dict[str, Any]:
    return json.loads((root / "val" / "instancesonly_filtered_val.json").read_text())


def test_adapter_reads_the_devkit_json(isaid_root: Path) -> None:
    data = _json(isaid_root)
    assert data["images"][0]["id"] == 0 and data["annotations"][0]["id"] == 0  # devkit numbering
    samples = ISAIDDetectionAdapter(isaid_root).samples()
    assert [s.sample_id for s in samples] == [im["file_name"] for im in data["images"]]
    devkit = dict(zip(ISAID_DEVKIT_NAMES, ISAID_CLASSES, strict=True))
    cat = {c["id"]: devkit[c["name"]] for c in data["categories"]}
    first = [a for a in data["annotations"] if a["image_id"] == 0]
    s0 = samples[0]
    assert s0.target["labels"] == [cat[a["category_id"]] for a in first]
    x, y, w, h = first[0]["bbox"]
    assert s0.target["bbox_xyxy"][0] == [x, y, x + w, y + h]
    assert np.asarray(s0.target["polygons"]).shape == (len(first), 8)
    assert s0.meta["image_id"] == 0 and s0.meta["dataset"] == "isaid"
    assert sum(len(s.target["labels"]) for s in samples) == len(data["annotations"])


def test_obb_is_the_minimum_area_rectangle_of_the_polygon() -> None:
    cv2 = pytest.importorskip("cv2")
    poly = np.array([[10, 10], [40, 20], [35, 35], [5, 25]], dtype=np.float64)
    obb = isaid_obb(poly).reshape(4, 2)
    rect = cv2.minAreaRect(poly.astype(np.float32))
    assert cv2.contourArea(obb.astype(np.float32)) == pytest.approx(
        rect[1][0] * rect[1][1], rel=1e-5
    )
    # every polygon vertex lies inside (or on) the rectangle
    for p in poly:
        assert (
            cv2.pointPolygonTest(obb.astype(np.float32), (float(p[0]), float(p[1])), True) >= -1e-3
        )


def _predictions(samples: list[Any], seed: int) -> list[dict[str, Any]]:
    """Jittered copies of the ground truth (some dropped, some false positives), HBB and OBB."""
    rng = np.random.default_rng(seed)
    preds = []
    for s in samples:
        hb, ob, sc, lb = [], [], [], []
        h, w = s.meta["height"], s.meta["width"]
        for box, poly, lab in zip(s.target["bbox_xyxy"], s.target["polygons"], s.target["labels"]):
            if rng.random() < 0.15:
                continue
            d = rng.normal(0, 1.5, 2)
            hb.append((np.asarray(box) + np.r_[d, d + rng.normal(0, 1.0, 2)]).tolist())
            ob.append(
                (np.asarray(poly).reshape(4, 2) + d + rng.normal(0, 0.8, (4, 2)))
                .reshape(8)
                .tolist()
            )
            sc.append(float(rng.random()))
            lb.append(lab)
        for _ in range(int(rng.integers(0, 3))):
            x0, y0 = rng.uniform(0, w - 20), rng.uniform(0, h - 20)
            bw, bh = rng.uniform(5, 20, 2)
            hb.append([x0, y0, x0 + bw, y0 + bh])
            ob.append([x0, y0, x0 + bw, y0, x0 + bw, y0 + bh, x0, y0 + bh])
            sc.append(float(rng.random()))
            lb.append(str(rng.choice(ISAID_CLASSES)))
        preds.append({"size": [h, w], "hbb": {"boxes": hb, "scores": sc, "labels": lb},
                      "obb": {"boxes": ob, "scores": sc, "labels": lb}})  # fmt: skip
    return preds


def _ids_from_one(root: Path, data: dict[str, Any]) -> Path:
    """The json with annotation ids + 1: pycocotools records a match as the matched
    annotation's id, so the devkit's annotation id 0 could never count as matched (the
    plugin numbers ground truth from 1; see the adapter's docstring)."""
    for a in data["annotations"]:
        a["id"] += 1
    path = root / "ids_from_one.json"
    path.write_text(json.dumps(data))
    return path


def _cocoeval_per_class_ap50(gt_file: Path, dets: list[dict[str, Any]], iou: Any = None) -> float:
    """Mean over categories with ground truth of COCOeval's AP50, maxDets 1000 (iSAID devkit)."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    class _Eval(COCOeval):
        def computeIoU(self, imgId: int, catId: int) -> Any:
            if iou is None:
                return super().computeIoU(imgId, catId)
            gt = self._gts[imgId, catId]
            dt = self._dts[imgId, catId]
            if not gt or not dt:
                return []
            inds = np.argsort([-d["score"] for d in dt], kind="mergesort")
            dt = [dt[i] for i in inds][: self.params.maxDets[-1]]
            return np.array([[iou(d, g) for g in gt] for d in dt])

    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(gt_file))
        dt = gt.loadRes(dets)
        ev = _Eval(gt, dt, "bbox")
        ev.params.maxDets = [1, 10, 1000]
        ev.evaluate()
        ev.accumulate()
    prec = ev.eval["precision"][0, :, :, 0, -1]  # IoU 0.5, area all, maxDets 1000
    has_gt = {a["category_id"] for a in gt.dataset["annotations"]}
    aps = [
        prec[:, k][prec[:, k] > -1].mean() for k, c in enumerate(ev.params.catIds) if c in has_gt
    ]
    return 100.0 * float(np.mean(aps))


@pytest.mark.parametrize("seed", [0, 1])
def test_hbb_ap50_equals_cocoeval_on_the_json(isaid_root: Path, seed: int) -> None:
    samples = ISAIDDetectionAdapter(isaid_root).samples()
    preds = _predictions(samples, seed)
    sc = DetectionTask({"box_type": "both"}).score(samples, preds)
    data = _json(isaid_root)
    devkit = dict(zip(ISAID_CLASSES, ISAID_DEVKIT_NAMES, strict=True))
    cid = {c["name"]: c["id"] for c in data["categories"]}
    dets = []
    for s, p in zip(samples, preds):
        for (x0, y0, x1, y1), score, lab in zip(
            p["hbb"]["boxes"], p["hbb"]["scores"], p["hbb"]["labels"]
        ):
            if devkit[lab] not in cid:
                continue  # a class absent from the json cannot be scored by COCOeval there
            # the official writer's integer truncation
            dets.append({"image_id": s.meta["image_id"], "category_id": cid[devkit[lab]],
                         "score": score,
                         "bbox": [int(x0), int(y0), int(x1 - x0), int(y1 - y0)]})  # fmt: skip
    want = _cocoeval_per_class_ap50(_ids_from_one(isaid_root, data), dets)
    assert sc.metrics["mAP50"] == pytest.approx(want, abs=1e-9)
    assert sc.tables["settings"]["max_dets"] == 1000


@pytest.mark.parametrize("seed", [0, 1])
def test_obb_ap50_equals_cocoeval_with_shapely_iou(isaid_root: Path, seed: int) -> None:
    shapely = pytest.importorskip("shapely")
    from shapely.geometry import MultiPoint, Polygon

    samples = ISAIDDetectionAdapter(isaid_root).samples()
    preds = _predictions(samples, seed)
    sc = DetectionTask({"box_type": "both"}).score(samples, preds)
    data = _json(isaid_root)
    gt_file = isaid_root / "indep.json"
    for a in data["annotations"]:  # independent OBB: shapely's minimum rotated rectangle
        pts = np.concatenate([np.asarray(p).reshape(-1, 2) for p in a["segmentation"]])
        a["obb"] = list(
            MultiPoint([tuple(p) for p in pts]).minimum_rotated_rectangle.exterior.coords
        )[:4]
        a["id"] += 1  # see _ids_from_one
    gt_file.write_text(json.dumps(data))
    devkit = dict(zip(ISAID_CLASSES, ISAID_DEVKIT_NAMES, strict=True))
    cid = {c["name"]: c["id"] for c in data["categories"]}
    dets = []
    for s, p in zip(samples, preds):
        for poly, score, lab in zip(p["obb"]["boxes"], p["obb"]["scores"], p["obb"]["labels"]):
            if devkit[lab] in cid:
                xy = np.asarray(poly).reshape(4, 2)
                x0, y0 = xy.min(0)
                x1, y1 = xy.max(0)
                dets.append({"image_id": s.meta["image_id"], "category_id": cid[devkit[lab]],
                             "score": score, "bbox": [x0, y0, x1 - x0, y1 - y0],
                             "obb": [tuple(v) for v in xy]})  # fmt: skip

    def iou(d: dict[str, Any], g: dict[str, Any]) -> float:
        a, b = Polygon(d["obb"]).convex_hull, Polygon(g["obb"])
        inter = a.intersection(b).area
        union = a.area + b.area - inter
        return inter / union if union > 0 else 0.0

    want = _cocoeval_per_class_ap50(gt_file, dets, iou=iou)
    assert shapely.__version__ and sc.metrics["mAP50_obb"] == pytest.approx(want, abs=1e-6)
    assert 0.0 < sc.metrics["mAP50_obb"] < 100.0


def test_full_image_layout_option(synth_root: Path, tmp_path: Path) -> None:
    root = tmp_path / "iSAID"
    (root / "val" / "Annotations").mkdir(parents=True)
    shutil.copytree(synth_root / "iSAID" / "val" / "images", root / "val" / "images")
    shutil.copy(
        synth_root / "iSAID_patches" / "val" / "instancesonly_filtered_val.json",
        root / "val" / "Annotations" / "iSAID_val.json",
    )
    samples = ISAIDDetectionAdapter(root, layout="full").samples()
    assert samples and all(Path(s.image).parent == root / "val" / "images" for s in samples)
    with pytest.raises(DatasetError, match=r"instancesonly_filtered_val\.json"):
        ISAIDDetectionAdapter(root).samples()  # the default patch layout is not there
    with pytest.raises(DatasetError, match="layout='tiles'"):
        ISAIDDetectionAdapter(root, layout="tiles")


def _edit(root: Path, fn: Any) -> Path:
    path = root / "val" / "instancesonly_filtered_val.json"
    data = json.loads(path.read_text())
    fn(data)
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (
            lambda d: d["categories"][0].update(name="windmill"),
            r"categories\[0\].name = 'windmill'",
        ),
        (
            lambda d: d["annotations"][0].update(bbox=[1, 2, float("nan"), 4]),
            r"annotations\[0\].bbox",
        ),
        (
            lambda d: d["annotations"][0].update(segmentation=[[1, 2, 3]]),
            r"annotations\[0\].segmentation\[0\]",
        ),
        (
            lambda d: d["annotations"][0].update(category_id=99),
            r"annotations\[0\].category_id = 99",
        ),
        (
            lambda d: d["annotations"][0].update(image_id=12345),
            r"annotations\[0\].image_id = 12345",
        ),
        (lambda d: d["images"].append(dict(d["images"][0])), r"images\[\d+\].id = 0 appears twice"),
        (lambda d: d.pop("annotations"), "missing or non-list field 'annotations'"),
    ],
)
def test_hostile_json_names_file_and_field(isaid_root: Path, edit: Any, match: str) -> None:
    path = _edit(isaid_root, edit)
    with pytest.raises(DatasetError, match=match) as e:
        ISAIDDetectionAdapter(isaid_root).samples()
    assert str(path) in str(e.value)


def test_missing_json_and_missing_image(isaid_root: Path) -> None:
    (isaid_root / "val" / "images" / "P0002.png").unlink()
    with pytest.raises(DatasetError, match=r"P0002\.png"):
        ISAIDDetectionAdapter(isaid_root).samples()
    (isaid_root / "val" / "instancesonly_filtered_val.json").unlink()
    with pytest.raises(DatasetError, match=r"instancesonly_filtered_val\.json") as e:
        ISAIDDetectionAdapter(isaid_root)
    assert "iSAID devkit" in str(e.value)  # the expected layout is shown


def test_category_names_of_other_copies(isaid_root: Path) -> None:
    """Copies renamed for mmdetection's iSAIDDataset say ``store_tank``; lower-case
    ``large_vehicle`` / ``ground_track_field`` spellings are the same classes."""
    data = _json(isaid_root)
    want = [s.target["labels"] for s in ISAIDDetectionAdapter(isaid_root).samples()]
    other = {"storage_tank": "store_tank", "Large_Vehicle": "large_vehicle",
             "Ground_Track_Field": "ground_track_field", "Small_Vehicle": "small_vehicle"}
    renamed = [c["name"] for c in data["categories"] if c["name"] in other]
    assert "storage_tank" in renamed  # the synth set has storage tanks
    _edit(isaid_root, lambda d: [c.update(name=other.get(c["name"], c["name"]))
                                 for c in d["categories"]])
    assert [s.target["labels"] for s in ISAIDDetectionAdapter(isaid_root).samples()] == want


def test_val_json_of_train_patches_names_the_devkit_step(isaid_root: Path) -> None:
    """The devkit's preprocess.py run with ``--set val`` alone pairs ``val`` with
    ``train/images``: a json whose images are all absent from val/images says so."""
    _edit(isaid_root, lambda d: [im.update(file_name=f"P0{900 + k:03d}_0_800_0_800.png")
                                 for k, im in enumerate(d["images"])])
    with pytest.raises(DatasetError, match=r"--set train,val") as e:
        ISAIDDetectionAdapter(isaid_root).samples()
    assert "none of its" in str(e.value)
    info = ISAIDDetectionAdapter.info
    assert info is not None and "preprocess.py --set train,val" in info.how_to_get


def test_cli_missing_annotation_exits_2(tmp_path: Path) -> None:
    import subprocess
    import sys

    (tmp_path / "iSAID_patches" / "val" / "images").mkdir(parents=True)
    r = subprocess.run([sys.executable, "-m", "remotesam.bench", "run", "--tasks", "det.isaid",
                        "--data-root", str(tmp_path), "--results-dir", str(tmp_path / "r"),
                        "--model-factory", "remotesam.testing:constant_background_model",
                        "--no-progress"], capture_output=True, text=True, timeout=300)  # fmt: skip
    assert r.returncode == 2, r.stderr
    assert "instancesonly_filtered_val.json" in r.stderr and "Traceback" not in r.stderr


def test_published_rows_sit_beside_the_default_split() -> None:
    table = load_published()
    split = DetectionTask.datasets["isaid"].default_split
    hbb = table.lookup("det", "isaid", split, "mAP50", protocol="unstated")
    obb = table.lookup("det", "isaid", split, "mAP50_obb", protocol="unstated")
    assert {r.model: r.value for r in hbb} == {
        "MiniGPT-v2": 2.54, "Florence-2-L": 16.67, "Qwen-VL-Chat": 4.29, "Sphinx": 0.11,
        "Falcon": 33.85, "RemoteSAM": 34.41}  # fmt: skip
    assert {r.model: r.value for r in obb} == {"Falcon": 28.83, "RemoteSAM": 34.58}
    assert {r.source for r in hbb} == {"Table 12"} and {r.source for r in obb} == {"Table 13"}


def test_harness_scores_the_synth_set(isaid_root: Path, tmp_path: Path) -> None:
    from plugin_support import run_harness_tiny

    res = run_harness_tiny(tmp_path, "det.isaid", isaid_root, limit=2)
    assert res.dataset == "isaid" and res.split == "val"
    assert set(res.metrics) >= {"mAP50", "mAP50_obb"}
