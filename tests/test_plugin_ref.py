"""Tests of the ``ref`` plugin (referring segmentation, REFER format) and shared helpers.

The RRSIS-D files used here are the REAL records of ``data/real/rrsisd`` re-packed into
``refs(unc).p`` + ``instances.json`` by the data curators (RECONSTRUCTED containers, see
SOURCES.md); no RRSIS-D image is public, so 800x800 images are generated in ``tmp_path``.
"""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from plugin_support import FakeEngine, run_harness_tiny

from remotesam.bench.api import DatasetError, Sample
from remotesam.bench.kit import masks as kit_masks
from remotesam.types import ReferringMask
from remotesam_plugins._refer import read_refer_pickle
from remotesam_plugins.metrics.segmentation import inter_union, referring_metrics
from remotesam_plugins.ref import (
    RRSISD_CLASSES,
    ReferringSegmentationTask,
    RemoteSAM270KAdapter,
    RRSISDAdapter,
)

# --------------------------------------------------------------------------------------------
# fixtures
# --------------------------------------------------------------------------------------------


def _make_images(folder: Path, names: list[str], size: tuple[int, int] = (800, 800)) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for n in names:
        Image.fromarray(rng.integers(0, 255, (*size, 3), dtype=np.uint8)).save(folder / n)


@pytest.fixture
def rrsisd_root(real_data: Path, tmp_path: Path) -> Path:
    """REFER root with the RECONSTRUCTED RRSIS-D files and generated 800x800 images."""
    src = real_data / "rrsisd" / "refer_reconstructed" / "rrsisd"
    shutil.copytree(src, tmp_path / "rrsisd")
    refs = pickle.loads((src / "refs(unc).p").read_bytes())  # trusted shared fixture
    _make_images(tmp_path / "images" / "rrsisd" / "JPEGImages", [r["file_name"] for r in refs])
    return tmp_path


class FakeRefModel:
    """Returns a fixed mask per sentence at the original size and at network size ``S``."""

    def __init__(self, masks: dict[str, np.ndarray], net_size: int = 64) -> None:
        self.masks = masks
        self.net_size = net_size
        self.calls: list[str] = []
        self.engine = FakeEngine(self.referring_seg, net_size)
        self.batch_size = 8

    def referring_seg(self, image: np.ndarray, sentence: str) -> ReferringMask:
        self.calls.append(sentence)
        h, w = image.shape[:2]
        m = self.masks.get(sentence, np.zeros((h, w), np.uint8)).astype(np.uint8)
        net = kit_masks.resize_nearest(m, self.net_size)
        return ReferringMask(
            mask=m, prob=m.astype(np.float32), mask_net=net, prob_net=net.astype(np.float32)
        )


# --------------------------------------------------------------------------------------------
# adapters on the real (reconstructed) files
# --------------------------------------------------------------------------------------------


@pytest.mark.realdata
def test_rrsisd_reads_real_records(rrsisd_root: Path, real_data: Path) -> None:
    val = RRSISDAdapter(rrsisd_root, "val").samples()
    test = RRSISDAdapter(rrsisd_root, "test").samples()
    assert [s.sample_id for s in val] == ["14636:14636", "7855:7855"]
    assert [s.sample_id for s in test] == ["3600:3600"]
    assert RRSISDAdapter.default_split == "test"
    # The GT RLE equals the real jsonl record (verbatim RRSIS-D values).
    records = {}
    for name in ("rrsisd_val.jsonl", "rrsisd_test.jsonl"):
        for line in (real_data / "rrsisd" / "datainfo_jsonl" / name).read_text().splitlines():
            rec = json.loads(line)
            records[int(rec["ann_id"])] = rec
    for s in val + test:
        rec = records[s.meta["ann_id"]]
        seg = rec["segmentation"]
        seg = seg[0] if isinstance(seg, list) else seg
        assert s.target["mask_rle"]["counts"] == seg["counts"]
        assert s.target["size"] == [800, 800]
        assert s.target["bbox_xyxy"] == [float(v) for v in rec["bbox"]]
        assert s.meta["sentence"] == rec["sent"]
        assert s.target["category"] == RRSISD_CLASSES[rec["category_id"]]
        mask = kit_masks.rle_to_mask(s.target["mask_rle"])
        assert mask.shape == (800, 800) and mask.sum() > 0
    # vehicle 14636: xyxy bbox [499, 34, 510, 61]; the mask lies around it.
    v = val[0]
    ys, xs = np.nonzero(kit_masks.rle_to_mask(v.target["mask_rle"]))
    assert v.target["category"] == "vehicle"
    assert 480 < xs.mean() < 520 and 20 < ys.mean() < 70


@pytest.mark.realdata
def test_rrsisd_root_may_be_the_rrsisd_folder(rrsisd_root: Path) -> None:
    a = RRSISDAdapter(rrsisd_root / "rrsisd", "val")
    assert a.image_dir == rrsisd_root / "images" / "rrsisd" / "JPEGImages"
    assert len(a.samples()) == 2


@pytest.mark.realdata
def test_remotesam270k_flat_layout(real_data: Path, tmp_path: Path) -> None:
    """RemoteSAM-270K has no public sample; the RRSIS-D RECONSTRUCTED files are its format proxy."""
    src = real_data / "rrsisd" / "refer_reconstructed" / "rrsisd"
    shutil.copy(src / "refs(unc).p", tmp_path / "refs(unc)_RemoteSAM.p")
    inst = json.loads((src / "instances.json").read_text())
    inst["images"] = inst["images"][:1]  # 270K lists fewer images than it uses: size from the RLE
    (tmp_path / "instances.json").write_text(json.dumps(inst))
    _make_images(tmp_path / "JPEGImages", ["14636.jpg", "07855.jpg", "03600.jpg"])
    samples = RemoteSAM270KAdapter(tmp_path, "val").samples()
    assert len(samples) == 2 and all(s.target["size"] == [800, 800] for s in samples)
    with pytest.raises(
        DatasetError, match=r"no ref of split 'train'.*splits present: \['test', 'val'\]"
    ):
        RemoteSAM270KAdapter(tmp_path, "train").samples()


def test_missing_dataset_shows_layout(tmp_path: Path) -> None:
    with pytest.raises(
        DatasetError, match=r"(?s)refs\(unc\)\.p not found.*Expected layout.*JPEGImages"
    ):
        RRSISDAdapter(tmp_path)
    with pytest.raises(DatasetError, match="unknown split"):
        RRSISDAdapter(tmp_path, "dev")
    with pytest.raises(DatasetError, match="unknown option"):
        RRSISDAdapter(tmp_path, image_folder="x")


# --------------------------------------------------------------------------------------------
# malformed files
# --------------------------------------------------------------------------------------------


def _write_refer(
    root: Path, refs: list, instances: dict | str, images: list[str] | None = None
) -> None:
    (root / "rrsisd").mkdir(parents=True, exist_ok=True)
    (root / "rrsisd" / "refs(unc).p").write_bytes(pickle.dumps(refs, protocol=2))
    text = instances if isinstance(instances, str) else json.dumps(instances, indent=1)
    (root / "rrsisd" / "instances.json").write_text(text)
    _make_images(root / "images" / "rrsisd" / "JPEGImages", images or [], size=(32, 32))


def _ref(i: int, split: str = "test", sents: int = 1) -> dict:
    return {
        "image_id": i,
        "split": split,
        "sentences": [
            {"raw": f"object {i} s{k}", "sent": f"object {i} s{k}", "sent_id": 100 * i + k}
            for k in range(sents)
        ],
        "file_name": f"{i:05d}.jpg",
        "category_id": 2,
        "ann_id": i,
        "sent_ids": [100 * i + k for k in range(sents)],
        "ref_id": i,
    }


def _inst(ids: list[int], masks: dict[int, np.ndarray] | None = None) -> dict:
    anns = []
    for i in ids:
        m = masks[i] if masks else np.zeros((32, 32), np.uint8)
        anns.append({"bbox": [0, 0, 4, 4], "categories_id": 2, "id": i, "image_id": i,
                     "segmentation": [kit_masks.mask_to_rle(m)], "area": 1})
    return {
        "images": [{"file_name": f"{i:05d}.jpg", "height": 32, "width": 32, "id": i} for i in ids],
        "annotations": anns,
        "categories": [{"name": n, "id": k} for k, n in enumerate(RRSISD_CLASSES)],
    }


def test_truncated_instances_json_names_file_and_line(tmp_path: Path) -> None:
    text = json.dumps(_inst([1]), indent=1)
    _write_refer(tmp_path, [_ref(1)], text[: len(text) // 2], ["00001.jpg"])
    with pytest.raises(
        DatasetError, match=r"instances\.json is not valid JSON: .* line \d+, column \d+"
    ):
        RRSISDAdapter(tmp_path).samples()


def test_truncated_pickle(tmp_path: Path) -> None:
    _write_refer(tmp_path, [_ref(1)], _inst([1]), ["00001.jpg"])
    p = tmp_path / "rrsisd" / "refs(unc).p"
    p.write_bytes(p.read_bytes()[:40])
    with pytest.raises(DatasetError, match=r"refs\(unc\)\.p: cannot unpickle"):
        RRSISDAdapter(tmp_path).samples()


class _Evil:
    def __reduce__(self):  # pragma: no cover - only pickled, never executed
        import os

        return (os.system, ("echo pwned",))


def test_pickle_with_code_is_refused(tmp_path: Path) -> None:
    _write_refer(tmp_path, [_ref(1)], _inst([1]), ["00001.jpg"])
    (tmp_path / "rrsisd" / "refs(unc).p").write_bytes(pickle.dumps([_Evil()]))
    with pytest.raises(DatasetError, match=r"refused to load global (posix|os|nt)\.system"):
        RRSISDAdapter(tmp_path).samples()


def test_ref_without_sentences_names_ref_and_field(tmp_path: Path) -> None:
    bad = _ref(1)
    del bad["sentences"]
    _write_refer(tmp_path, [bad], _inst([1]), ["00001.jpg"])
    with pytest.raises(DatasetError, match=r"ref #0 \(ref_id 1\): field 'sentences' missing"):
        RRSISDAdapter(tmp_path).samples()


def test_unknown_ann_id(tmp_path: Path) -> None:
    _write_refer(tmp_path, [_ref(1)], _inst([2]), ["00001.jpg"])
    with pytest.raises(DatasetError, match=r"ann_id 1 not found in .*instances\.json"):
        RRSISDAdapter(tmp_path).samples()


def test_rle_size_mismatch(tmp_path: Path) -> None:
    inst = _inst([1])
    inst["annotations"][0]["segmentation"] = [kit_masks.mask_to_rle(np.zeros((16, 16), np.uint8))]
    _write_refer(tmp_path, [_ref(1)], inst, ["00001.jpg"])
    with pytest.raises(
        DatasetError, match=r"annotation id 1\.segmentation: RLE size \[16, 16\] differs"
    ):
        RRSISDAdapter(tmp_path).samples()


def test_listed_image_absent(tmp_path: Path) -> None:
    _write_refer(tmp_path, [_ref(1), _ref(2)], _inst([1, 2]), ["00001.jpg"])
    with pytest.raises(
        DatasetError, match=r"1 image\(s\) listed in the annotations are absent: .*00002\.jpg"
    ):
        RRSISDAdapter(tmp_path).samples()


def test_every_sentence_and_refer_split_rule(tmp_path: Path) -> None:
    refs = [_ref(1, "test", sents=3), _ref(2, "testA"), _ref(3, "val"), _ref(4, "trainval")]
    _write_refer(tmp_path, refs, _inst([1, 2, 3, 4]), [f"{i:05d}.jpg" for i in (1, 2, 3, 4)])
    ids = [s.sample_id for s in RRSISDAdapter(tmp_path, "test").samples()]
    assert ids == ["1:100", "1:101", "1:102", "2:200"]  # 'test' matches testA by substring
    assert [s.sample_id for s in RRSISDAdapter(tmp_path, "val").samples()] == ["3:300"]  # exact
    with pytest.raises(DatasetError, match="no ref of split 'train'"):
        RRSISDAdapter(tmp_path, "train").samples()


def test_model_is_fed_the_raw_sentence_like_the_official_refer_dataset(tmp_path: Path) -> None:
    # REFER's 'sent' is normalised (lower case, no punctuation); the official ReferDataset feeds
    # el['raw'] to the tokenizer
    ref = _ref(1)
    ref["sentences"] = [
        {
            "raw": "The Baseball-field on the TOP.",
            "sent": "the baseball field on the top",
            "sent_id": 100,
        }
    ]
    ref2 = _ref(2)
    ref2["sentences"] = [{"sent": "only a sent field", "sent_id": 200}]
    _write_refer(tmp_path, [ref, ref2], _inst([1, 2]), ["00001.jpg", "00002.jpg"])
    official = RRSISDAdapter(tmp_path).samples()
    assert [s.meta["sentence"] for s in official] == [
        "The Baseball-field on the TOP.",
        "only a sent field",
    ]
    model = FakeRefModel({})
    ReferringSegmentationTask().predict(model, official)
    assert model.calls == ["The Baseball-field on the TOP.", "only a sent field"]
    sent = RRSISDAdapter(tmp_path, sentence_field="sent").samples()
    assert [s.meta["sentence"] for s in sent] == [
        "the baseball field on the top",
        "only a sent field",
    ]
    with pytest.raises(DatasetError, match="sentence_field='tokens'"):
        RRSISDAdapter(tmp_path, sentence_field="tokens")


def test_gt_is_pixels_covered_exactly_once(tmp_path: Path) -> None:
    """Official getMask: sum of the decoded RLE list, then ``== 1``."""
    a = np.zeros((32, 32), np.uint8)
    a[0:10, 0:10] = 1
    b = np.zeros((32, 32), np.uint8)
    b[5:15, 5:15] = 1
    inst = _inst([1])
    inst["annotations"][0]["segmentation"] = [kit_masks.mask_to_rle(a), kit_masks.mask_to_rle(b)]
    _write_refer(tmp_path, [_ref(1)], inst, ["00001.jpg"])
    gt = kit_masks.rle_to_mask(RRSISDAdapter(tmp_path).samples()[0].target["mask_rle"])
    np.testing.assert_array_equal(gt, ((a.astype(int) + b) == 1).astype(np.uint8))


def test_polygon_and_uncompressed_segmentation() -> None:
    rle = kit_masks.segmentation_to_rle([[2, 2, 10, 2, 10, 10, 2, 10]], 16, 16, "x")
    m = kit_masks.rle_to_mask(rle)
    assert m.shape == (16, 16) and 60 <= m.sum() <= 90
    from pycocotools import mask as mu

    un = {"size": [16, 16], "counts": [5, 3, 248]}
    m2 = kit_masks.rle_to_mask(kit_masks.segmentation_to_rle(un, 16, 16, "x"))
    np.testing.assert_array_equal(m2, mu.decode(mu.frPyObjects(un, 16, 16)))
    with pytest.raises(DatasetError, match="x: expected a polygon list"):
        kit_masks.segmentation_to_rle(42, 16, 16, "x")


# --------------------------------------------------------------------------------------------
# metric parity with the official REF.py (golden)
# --------------------------------------------------------------------------------------------


@pytest.mark.parity
def test_ref_metrics_equal_official_golden(reference_dir: Path) -> None:
    g = np.load(reference_dir / "postprocess_golden.npz")
    r = json.loads(str(g["results_json"]))["ref_eval"]
    rows = np.asarray(r["per_sample_I_U"])
    # I, U from the golden masks with our functional core
    for (k, j, i_gold, u_gold), pred in zip(rows, g["ref_preds"]):
        assert inter_union(pred, g["ref_targets"][k]) == (i_gold, u_gold)
        assert j >= 0
    m = referring_metrics(rows[:, 2], rows[:, 3])
    assert m["mIoU"] == pytest.approx(0.3012094809036571, abs=1e-15)
    assert m["oIoU"] == pytest.approx(0.34934640522875815, abs=1e-15)
    printed = {"Pr@0.5": 20.0, "Pr@0.6": 10.0, "Pr@0.7": 10.0, "Pr@0.8": 10.0, "Pr@0.9": 0.0}
    for key, value in printed.items():
        assert round(100 * m[key], 2) == value
    assert r["printed"][0] == f"Mean IoU is {100 * m['mIoU']:.2f}"
    assert r["printed"][-1] == f"    overall IoU = {100 * m['oIoU']:.2f}"


# --------------------------------------------------------------------------------------------
# predict / score
# --------------------------------------------------------------------------------------------


def _synthetic_dataset(tmp_path: Path, n: int = 6) -> tuple[list[Sample], dict[str, np.ndarray]]:
    rng = np.random.default_rng(1)
    masks = {}
    for i in range(1, n + 1):
        m = np.zeros((32, 32), np.uint8)
        if i != 3:  # ref 3: empty target
            y, x = rng.integers(0, 20, 2)
            m[y : y + 10, x : x + 12] = 1
        masks[i] = m
    _write_refer(
        tmp_path,
        [_ref(i, sents=2 if i == 2 else 1) for i in masks],
        _inst(list(masks), masks),
        [f"{i:05d}.jpg" for i in masks],
    )
    samples = RRSISDAdapter(tmp_path).samples()
    preds = {}
    for s in samples:
        gt = kit_masks.rle_to_mask(s.target["mask_rle"])
        preds[s.meta["sentence"]] = np.roll(gt, s.meta["ref_id"] % 3, axis=1)  # 0/1/2-px shifts
    return samples, preds


def test_predict_score_end_to_end(tmp_path: Path) -> None:
    samples, pred_masks = _synthetic_dataset(tmp_path)
    task = ReferringSegmentationTask({"eval_size": 96})
    model = FakeRefModel(pred_masks, net_size=64)
    preds = task.predict(model, samples)
    assert model.calls == [s.meta["sentence"] for s in samples]
    assert json.loads(json.dumps(preds)) == preds  # JSON round trip
    scores = task.score(samples, preds)
    assert set(scores.metrics) == {m.name for m in task.metrics}
    # Independent computation at eval_size (GT 32 -> 96, prediction 32 -> 64 -> 96, PIL nearest).
    inter, union, inter_o, union_o = [], [], [], []
    for s in samples:
        gt = kit_masks.rle_to_mask(s.target["mask_rle"])
        p = pred_masks[s.meta["sentence"]]
        pe = np.asarray(
            Image.fromarray(np.asarray(Image.fromarray(p).resize((64, 64), Image.NEAREST))).resize(
                (96, 96), Image.NEAREST
            )
        )
        ge = np.asarray(Image.fromarray(gt).resize((96, 96), Image.NEAREST))
        inter.append((pe & ge).sum())
        union.append((pe | ge).sum())
        inter_o.append((p & gt).sum())
        union_o.append((p | gt).sum())
    iou = np.where(np.array(union) > 0, np.array(inter) / np.maximum(union, 1), 0)
    assert scores.metrics["oIoU"] == pytest.approx(100 * sum(inter) / sum(union))
    assert scores.metrics["mIoU"] == pytest.approx(100 * iou.mean())
    assert scores.metrics["Pr@0.7"] == pytest.approx(100 * (iou >= 0.7).mean())
    assert scores.metrics["oIoU_orig"] == pytest.approx(100 * sum(inter_o) / sum(union_o))
    # per-sample arrays reproduce the metrics
    assert scores.sample_ids == [s.sample_id for s in samples]
    for name, arr in scores.per_sample.items():
        assert arr.shape == (len(samples),)
        assert arr.mean() == pytest.approx(scores.metrics[name])
    num, den = scores.per_sample_ratio["oIoU"]
    assert num.sum() / den.sum() == pytest.approx(scores.metrics["oIoU"])
    assert scores.tables["summary"]["empty_union"] == 1
    assert task.settings() == {}


def test_perfect_prediction_at_network_size_896(tmp_path: Path) -> None:
    samples, _ = _synthetic_dataset(tmp_path)
    masks = {s.meta["sentence"]: kit_masks.rle_to_mask(s.target["mask_rle"]) for s in samples}
    task = ReferringSegmentationTask()
    scores = task.score(samples, task.predict(FakeRefModel(masks, net_size=896), samples))
    # 6 of 7 expressions perfect; the empty-target one is IoU 0 (official U = 0 rule)
    assert scores.metrics["mIoU"] == pytest.approx(600 / 7)
    assert scores.metrics["oIoU"] == pytest.approx(100.0)
    assert scores.metrics["Pr@0.9"] == pytest.approx(600 / 7)


def test_image_size_mismatch_fails_the_sample(tmp_path: Path) -> None:
    samples, masks = _synthetic_dataset(tmp_path, n=2)
    Image.new("RGB", (40, 32)).save(samples[0].image)
    with pytest.raises(
        DatasetError, match=r"size 32x40 \(HxW\) differs from the annotation's 32x32"
    ):
        ReferringSegmentationTask().predict(FakeRefModel(masks), samples[:1])


def test_corrupt_image_fails_the_sample(tmp_path: Path) -> None:
    samples, masks = _synthetic_dataset(tmp_path, n=2)
    Path(samples[0].image).write_bytes(b"\xff\xd8\xff garbage")
    with pytest.raises(DatasetError, match=r"00001\.jpg is unreadable"):
        ReferringSegmentationTask().predict(FakeRefModel(masks), samples[:1])


def test_bad_options_and_predictions(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown option"):
        ReferringSegmentationTask({"eval_sz": 1})
    with pytest.raises(ValueError, match="not an integer"):
        ReferringSegmentationTask({"eval_size": "big"})
    samples, _masks = _synthetic_dataset(tmp_path, n=1)
    task = ReferringSegmentationTask()
    with pytest.raises(ValueError, match=r"field 'mask_net' is not a COCO RLE"):
        task.score(samples, [{"mask": None}])


@pytest.mark.realdata
def test_check_task_plugin(rrsisd_root: Path) -> None:
    from remotesam import testing

    testing.check_task_plugin(ReferringSegmentationTask)
    testing.check_task_plugin(
        ReferringSegmentationTask, dataset_root=rrsisd_root, model=FakeRefModel({})
    )


# --------------------------------------------------------------------------------------------
# RLE helpers (used by scoring; must equal decode -> PIL nearest -> encode)
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rle_resize_and_inter_union_equal_decoded_masks(seed: int) -> None:
    rng = np.random.default_rng(seed)
    for t in range(60):
        h, w = (int(v) for v in rng.integers(1, 70, 2))
        m = (rng.random((h, w)) < rng.uniform(0, 1)).astype(np.uint8)
        if t % 10 == 0:
            m[:] = t % 20 == 0  # all background / all foreground
        rle = kit_masks.mask_to_rle(m)
        assert kit_masks.rle_counts(rle).sum() == h * w
        for oh, ow in ((int(rng.integers(1, 100)), int(rng.integers(1, 100))), (h, w), (96, 96)):
            out = kit_masks.rle_resize_nearest(rle, (oh, ow))
            assert out == kit_masks.mask_to_rle(kit_masks.resize_nearest(m, (oh, ow)))
        other = (rng.random((h, w)) < 0.5).astype(np.uint8)
        assert kit_masks.rle_inter_union(rle, kit_masks.mask_to_rle(other)) == inter_union(m, other)
    # PIL's fixed-point nearest picks other pixels than a float formula for 1024 -> 896
    m = (rng.random((1024, 1024)) < 0.5).astype(np.uint8)
    expected = np.asarray(Image.fromarray(m).resize((896, 896), Image.NEAREST))
    np.testing.assert_array_equal(
        kit_masks.rle_to_mask(kit_masks.rle_resize_nearest(kit_masks.mask_to_rle(m), 896)), expected
    )


def test_malformed_rle_is_rejected() -> None:
    with pytest.raises(ValueError, match="do not describe a 4x4 mask"):
        kit_masks.rle_counts({"size": [4, 4], "counts": "03"})
    with pytest.raises(ValueError, match="truncated"):
        kit_masks.rle_counts({"size": [4, 4], "counts": "0P"})
    samples = [
        Sample("1:1", "x.jpg", {"mask_rle": kit_masks.mask_to_rle(np.ones((4, 4))), "size": [4, 4]})
    ]
    bad = {
        "mask_net": {"size": [8, 8], "counts": "0;"},
        "mask": kit_masks.mask_to_rle(np.ones((4, 4))),
    }
    with pytest.raises(ValueError, match=r"sample 1:1: field 'mask_net' is not a COCO RLE"):
        ReferringSegmentationTask().score(samples, [bad])


@pytest.mark.slow
@pytest.mark.realdata
def test_harness_end_to_end_with_tiny_model(rrsisd_root: Path, tmp_path: Path) -> None:
    """Official layout, tiny model, harness: one corrupt image becomes a recorded failure."""
    (rrsisd_root / "images" / "rrsisd" / "JPEGImages" / "07855.jpg").write_bytes(b"not a jpeg")
    res = run_harness_tiny(tmp_path, "ref.rrsisd", rrsisd_root, split="val")
    assert (res.n_total, res.n_evaluated, res.n_failed) == (2, 1, 1)
    assert "07855.jpg" in json.dumps(res.failures)
    assert set(res.metrics) == {m.name for m in ReferringSegmentationTask.metrics}
    assert res.metrics["oIoU"].primary


def test_python2_pickle_strings(tmp_path: Path) -> None:
    """REFER pickles written by Python 2 hold byte strings: decoded as UTF-8, else latin-1."""
    p = tmp_path / "refs.p"
    # protocol 2: [ 'abc' (py2 str), u'x' ]  /  [ '\xe9\xe9' (not UTF-8) ]
    p.write_bytes(b"\x80\x02]q\x00(U\x03abcq\x01X\x01\x00\x00\x00xq\x02e.")
    assert read_refer_pickle(p) == ["abc", "x"]
    p.write_bytes(b"\x80\x02]q\x00U\x02\xe9\xe9q\x01a.")
    assert read_refer_pickle(p) == ["\xe9\xe9"]


def test_duplicate_sent_id_is_evaluated_as_the_official_refer_dataset(tmp_path: Path) -> None:
    """The official evaluation (``ReferDataset``) walks every sentence of every ref, so a
    repeated ``sent_id`` is evaluated again: as many samples as sentences, one warning with the
    count; ``duplicates=error`` refuses the file."""
    from remotesam.bench.api import DatasetWarning

    r1, r2 = _ref(1, sents=2), _ref(2, sents=1)
    r1["sentences"][1]["sent_id"] = 100  # twice inside ref 1
    r2["sentences"][0]["sent_id"] = 100  # and once more in ref 2
    _write_refer(tmp_path, [r1, r2], _inst([1, 2]), ["00001.jpg", "00002.jpg"])
    with pytest.warns(DatasetWarning, match=r"2 sentence\(s\) of split 'test' repeat a sent_id"):
        samples = RRSISDAdapter(tmp_path).samples()
    n_official = sum(len(r["sentences"]) for r in (r1, r2))
    assert len(samples) == n_official == 3
    assert [s.sample_id for s in samples] == ["1:100", "1:100#1", "2:100"]
    assert [s.meta["sentence"] for s in samples] == ["object 1 s0", "object 1 s1", "object 2 s0"]
    with pytest.raises(DatasetError, match=r"duplicate sent_id 100 \(refused by the option "
                                           r"duplicates=error"):
        RRSISDAdapter(tmp_path, duplicates="error").samples()
    with pytest.raises(DatasetError, match="option duplicates='merge'"):
        RRSISDAdapter(tmp_path, duplicates="merge")
