"""Mask-to-box, inner-box removal, NMS and captions: golden parity with the official code,
fast vs reference equality on random maps, and bad-input errors.

Golden data: ``postprocess_golden.npz`` (see ``postprocess_golden.md`` in the reference folder).
This environment has OpenCV 5.0.0, so oriented boxes are compared exactly with the ``_cv500``
arrays and within the documented +-1 px (unordered corners) with the ``_cv455`` ones.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from remotesam.postprocess import (
    DISTRIBUTION_TEMPLATES,
    EXISTENCE_TEMPLATES,
    box1_in_box2,
    build_caption,
    fixed_chooser,
    masks_to_boxes,
    masks_to_boxes_reference,
    nms,
    remove_inner_boxes,
    seeded_chooser,
)

# --------------------------------------------------------------------------------------------
# fixtures and helpers
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def golden(reference_dir: Path):
    path = reference_dir / "postprocess_golden.npz"
    if not path.is_file():
        pytest.skip(f"golden file {path} not found")
    f = np.load(path)
    arrays = {k: f[k] for k in f.files if k != "results_json"}
    return arrays, json.loads(str(f["results_json"]))


def _golden_map(arrays, i):
    mask = arrays[f"m2b_{i}_mask"]
    probs = arrays[f"m2b_{i}_probs_q"].astype(np.float32) / np.float32(255)
    return mask, probs


def _same_points(a: np.ndarray, b: np.ndarray, tol: int = 1) -> bool:
    """Two 4-corner boxes equal as unordered point sets within ``tol`` px per coordinate."""
    pa, pb = a[:8].reshape(4, 2), b[:8].reshape(4, 2)
    d = np.abs(pa[:, None, :] - pb[None, :, :]).max(-1)
    return bool(d.min(1).max() <= tol and d.min(0).max() <= tol)


def random_map(seed: int, h: int = 150, w: int = 170, n: int = 30):
    """A random 0/1 map of ellipses, rotated rectangles, rings, frames and single pixels, some
    touching the border or nested, with random probabilities (some components fail 0.3)."""
    rng = np.random.default_rng(seed)
    m = np.zeros((h, w), np.uint8)
    for _ in range(n):
        kind = int(rng.integers(0, 5))
        c = (int(rng.integers(-5, w + 5)), int(rng.integers(-5, h + 5)))
        if kind == 0:
            axes = (int(rng.integers(0, 20)), int(rng.integers(0, 20)))
            cv2.ellipse(m, c, axes, float(rng.uniform(0, 180)), 0, 360, 1, -1)
        elif kind == 1:
            size = (float(rng.uniform(1, 40)), float(rng.uniform(1, 40)))
            pts = cv2.boxPoints((c, size, float(rng.uniform(0, 90)))).astype(np.int32)
            cv2.fillPoly(m, [pts], 1)
        elif kind == 2:
            axes = (int(rng.integers(5, 40)), int(rng.integers(5, 40)))
            cv2.ellipse(m, c, axes, float(rng.uniform(0, 180)), 0, 360, 1, int(rng.integers(1, 4)))
        elif kind == 3:
            m[c[1] % h, c[0] % w] = 1
        else:
            c2 = (c[0] + int(rng.integers(0, 30)), c[1] + int(rng.integers(0, 30)))
            cv2.rectangle(m, c, c2, 1, int(rng.choice([-1, 1, 2])))
    probs = rng.integers(0, 256, (h, w)).astype(np.float32) / np.float32(255)
    return m, probs


def _reference_keep(boxes: np.ndarray) -> np.ndarray:
    n = len(boxes)
    return np.array(
        [not any(box1_in_box2(boxes[i], boxes[j]) for j in range(n) if j != i) for i in range(n)],
        dtype=bool,
    )


# --------------------------------------------------------------------------------------------
# golden parity
# --------------------------------------------------------------------------------------------


@pytest.mark.parity
@pytest.mark.parametrize("i", [0, 1, 2])
@pytest.mark.parametrize("remove_inner", [True, False])
@pytest.mark.parametrize("fn", [masks_to_boxes, masks_to_boxes_reference])
def test_m2b_hbb_golden(golden, i, remove_inner, fn):
    arrays, _ = golden
    mask, probs = _golden_map(arrays, i)
    want = arrays[f"m2b_{i}_hbb" + ("" if remove_inner else "_keepinner")]
    got = fn(mask, probs, "hbb", remove_inner=remove_inner)
    assert got.dtype == np.float64
    assert got.shape == want.shape
    np.testing.assert_array_equal(got[:, :4], want[:, :4])
    np.testing.assert_allclose(got[:, 4], want[:, 4], rtol=0, atol=1e-6)


@pytest.mark.parity
@pytest.mark.parametrize("i", [0, 1, 2])
@pytest.mark.parametrize("remove_inner", [True, False])
@pytest.mark.parametrize("fn", [masks_to_boxes, masks_to_boxes_reference])
def test_m2b_obb_golden(golden, i, remove_inner, fn):
    arrays, _ = golden
    mask, probs = _golden_map(arrays, i)
    suffix = "" if remove_inner else "_keepinner"
    got = fn(mask, probs, "obb", remove_inner=remove_inner)
    assert got.shape[1] == 9
    if cv2.__version__.startswith("5.0"):
        want = arrays[f"m2b_{i}_obb{suffix}_cv500"]
        np.testing.assert_array_equal(got[:, :8], want[:, :8])
        np.testing.assert_allclose(got[:, 8], want[:, 8], rtol=0, atol=1e-6)
    # Against the OpenCV 4.5.5 run (closest to the official pin): same boxes as point sets, +-1 px.
    want = arrays[f"m2b_{i}_obb{suffix}_cv455"]
    assert got.shape == want.shape
    for row_got, row_want in zip(got, want):
        assert _same_points(row_got, row_want), (row_got, row_want)
    np.testing.assert_allclose(got[:, 8], want[:, 8], rtol=0, atol=1e-6)


@pytest.mark.parity
def test_m2b_golden_summary_counts(golden):
    arrays, results = golden
    for i, row in enumerate(results["m2b"]["summary"]):
        mask, probs = _golden_map(arrays, i)
        n_comp = cv2.connectedComponents(mask, connectivity=8)[0] - 1
        assert n_comp == row["components"]
        assert len(masks_to_boxes(mask, probs, "hbb")) == row[f"m2b_{i}_hbb"]
        assert len(masks_to_boxes(mask, probs, "obb")) == row[f"m2b_{i}_obb"]


@pytest.mark.parity
@pytest.mark.parametrize("kind", ["hbb", "obb"])
def test_box1_in_box2_golden(golden, kind):
    arrays, _ = golden
    b1, b2 = arrays[f"b1b2_box1_{kind}"], arrays[f"b1b2_box2_{kind}"]
    want = arrays[f"b1b2_result_{kind}"].tolist()
    assert [box1_in_box2(a, b) for a, b in zip(b1, b2)] == want
    # the fast vectorised removal agrees pairwise with the golden answers
    for a, b, w in zip(b1, b2, want):
        keep = remove_inner_boxes(np.stack([a, b]))
        assert bool(not keep[0]) == w


@pytest.mark.parity
def test_perf_map_fast_equals_reference_hbb(golden):
    arrays, results = golden
    mask = np.unpackbits(arrays["perf_mask_896"])[: 896 * 896].reshape(896, 896)
    probs = np.where(mask == 1, 200, 30).astype(np.uint8).astype(np.float32) / np.float32(255)
    fast = masks_to_boxes(mask, probs, "hbb")
    assert len(fast) == results["m2b"]["timing"]["hbb"]["boxes_out"] == 200
    # remove_inner has nothing to remove here, so the reference without it is cheap and exact
    ref = masks_to_boxes_reference(mask, probs, "hbb", remove_inner=False)
    np.testing.assert_array_equal(fast[:, :4], ref[:, :4])
    np.testing.assert_allclose(fast[:, 4], ref[:, 4], rtol=0, atol=1e-6)
    assert remove_inner_boxes(ref).all()


# --------------------------------------------------------------------------------------------
# fast == reference on random inputs
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("box_type", ["hbb", "obb"])
@pytest.mark.parametrize("remove_inner", [True, False])
def test_fast_equals_reference_random_maps(seed, box_type, remove_inner):
    mask, probs = random_map(seed, n=10 + 5 * seed)
    fast = masks_to_boxes(mask, probs, box_type, conf_threshold=0.45, remove_inner=remove_inner)
    ref = masks_to_boxes_reference(
        mask, probs, box_type, conf_threshold=0.45, remove_inner=remove_inner
    )
    assert fast.shape == ref.shape
    np.testing.assert_array_equal(fast[:, :-1], ref[:, :-1])
    np.testing.assert_allclose(fast[:, -1], ref[:, -1], rtol=0, atol=1e-6)


@pytest.mark.parametrize("max_runs", [0, 10**9], ids=["opencv_stats", "run_stats"])
@pytest.mark.parametrize("density", [0.02, 0.5])
def test_component_stats_equal_opencv(max_runs, density):
    """Both statistics paths give OpenCV's labels and stats (label order included)."""
    from remotesam.postprocess.boxes import _component_stats

    rng = np.random.default_rng(int(density * 100))
    mask = (rng.random((97, 131)) < density).astype(np.uint8)
    mask = cv2.dilate(mask, np.ones((3, 3), np.uint8)) if density < 0.1 else mask
    mask[0, :] = 1  # a component along the whole top border
    n, labels, stats = _component_stats(mask, max_runs=max_runs)
    n_cv, labels_cv, stats_cv, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    assert n == n_cv > 2
    np.testing.assert_array_equal(labels, labels_cv)
    np.testing.assert_array_equal(stats[1:], stats_cv[1:])


def test_random_maps_exercise_removal_and_threshold():
    """Guard against the random-map test passing trivially."""
    removed = dropped = 0
    for seed in range(8):
        mask, probs = random_map(seed, n=10 + 5 * seed)
        for box_type in ("hbb", "obb"):
            allb = masks_to_boxes(mask, probs, box_type, conf_threshold=0.0, remove_inner=False)
            kept = masks_to_boxes(mask, probs, box_type, conf_threshold=0.45, remove_inner=False)
            dropped += len(allb) - len(kept)
            removed += len(kept) - len(masks_to_boxes(mask, probs, box_type, conf_threshold=0.45))
    assert removed > 10
    assert dropped > 5


def _random_boxes(rng: np.random.Generator, kind: int) -> np.ndarray:
    n = int(rng.integers(2, 25))
    if kind == 0:
        x1, y1 = rng.integers(-3, 20, n), rng.integers(-3, 20, n)
        w, h = rng.integers(0, 15, n), rng.integers(0, 15, n)
        return np.stack([x1, y1, x1 + w, y1 + h, rng.random(n)], 1).astype(np.float64)
    rows = []
    for _ in range(n):
        c = (float(rng.uniform(-5, 30)), float(rng.uniform(-5, 30)))
        size = (float(rng.uniform(0, 25)), float(rng.uniform(0, 25)))
        pts = cv2.boxPoints((c, size, float(rng.uniform(0, 90)))).astype(int).reshape(-1)
        rows.append([*pts, 0.5])
    boxes = np.array(rows, np.float64)
    if kind == 2 and n > 3:  # duplicates and one-column shifts (the clipping quirk)
        boxes[1] = boxes[0]
        boxes[2, :8] = boxes[0, :8] + np.tile([1, 0], 4)
        boxes[3, :8] = boxes[0, :8] + np.tile([0, 1], 4)
    return boxes


@pytest.mark.parametrize("kind", [0, 1, 2])
def test_remove_inner_boxes_equals_rasterised_loop(kind):
    """Dense random boxes and polygons in a small area, negative coordinates included."""
    rng = np.random.default_rng(100 + kind)
    removed = 0
    for _ in range(60):
        boxes = _random_boxes(rng, kind)
        want = _reference_keep(boxes)
        np.testing.assert_array_equal(remove_inner_boxes(boxes), want)
        removed += int((~want).sum())
    assert removed > 50


def test_remove_inner_identical_boxes_remove_each_other():
    boxes = np.array([[10, 10, 20, 20, 0.9], [10, 10, 20, 20, 0.8], [30, 30, 40, 40, 0.7]])
    np.testing.assert_array_equal(remove_inner_boxes(boxes), [False, False, True])
    assert remove_inner_boxes(np.zeros((0, 5))).shape == (0,)
    assert remove_inner_boxes(np.array([[1, 1, 5, 5, 1.0]])).tolist() == [True]


def test_label_order_is_opencv_block_order():
    """A pixel at (y=1, x=0) comes before one at (y=0, x=5): OpenCV scans 2x2 blocks."""
    mask = np.zeros((4, 8), np.uint8)
    mask[1, 0] = 1
    mask[0, 5] = 1
    probs = np.full(mask.shape, 0.9, np.float32)
    boxes = masks_to_boxes(mask, probs, "hbb", remove_inner=False)
    np.testing.assert_array_equal(boxes[:, :4], [[0, 1, 1, 2], [5, 0, 6, 1]])


def test_new_mask_components_with_conf_from_probs():
    mask = np.zeros((20, 20), np.uint8)
    mask[2:10, 2:18] = 1
    new_mask = mask.copy()
    new_mask[:, 9:11] = 0  # split in two
    probs = np.zeros(mask.shape, np.float32)
    probs[:, :10] = 0.8
    probs[:, 10:] = 0.6
    got = masks_to_boxes(mask, probs, "hbb", new_mask=new_mask)
    np.testing.assert_array_equal(got[:, :4], [[2, 2, 9, 10], [11, 2, 18, 10]])
    np.testing.assert_allclose(got[:, 4], [0.8, 0.6], atol=1e-6)
    assert len(masks_to_boxes(mask, probs, "hbb")) == 1


def test_empty_and_bool_masks():
    probs = np.zeros((8, 8), np.float32)
    assert masks_to_boxes(np.zeros((8, 8), np.uint8), probs, "hbb").shape == (0, 5)
    assert masks_to_boxes(np.zeros((8, 8), np.uint8), probs, "obb").shape == (0, 9)
    mask = np.zeros((8, 8), bool)
    mask[2:4, 3:6] = True
    out = masks_to_boxes(mask, probs + 0.5, "hbb")
    np.testing.assert_array_equal(out, [[3, 2, 6, 4, 0.5]])
    assert masks_to_boxes(mask, probs, "hbb").shape == (0, 5)  # conf 0 < 0.01: dropped


def test_nan_confidence_is_kept_like_the_official_code():
    mask = np.zeros((6, 6), np.uint8)
    mask[1:3, 1:3] = 1
    probs = np.full(mask.shape, np.nan, np.float32)
    for fn in (masks_to_boxes, masks_to_boxes_reference):
        out = fn(mask, probs, "hbb")  # NaN < 0.01 is False, so nothing is dropped
        assert out.shape == (1, 5) and np.isnan(out[0, 4])


# --------------------------------------------------------------------------------------------
# errors
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mask", "probs", "kwargs", "exc", "match"),
    [
        (np.zeros((4, 4, 1), np.uint8), np.zeros((4, 4), np.float32), {}, ValueError, "shape"),
        (np.zeros((4, 4), np.int32), np.zeros((4, 4), np.float32), {}, ValueError, "uint8"),
        (np.full((4, 4), 255, np.uint8), np.zeros((4, 4), np.float32), {}, ValueError, "0 and 1"),
        (np.zeros((4, 4), np.uint8), np.zeros((4, 5), np.float32), {}, ValueError, "probs"),
        (np.zeros((4, 4), np.uint8), np.zeros((4, 4), np.uint8), {}, ValueError, "floating"),
        (np.zeros((4, 4), np.uint8), np.zeros((4, 4), np.float32), {"box_type": "xyxy"},
         ValueError, "box_type"),
        (np.zeros((4, 4), np.uint8), np.zeros((4, 4), np.float32),
         {"new_mask": np.zeros((3, 3), np.uint8)}, ValueError, "new_mask"),
        ([[0, 1]], np.zeros((1, 2), np.float32), {}, TypeError, "numpy array"),
        (np.zeros((4, 4), np.uint8), np.zeros((4, 4), np.float32), {"conf_threshold": "x"},
         TypeError, "conf_threshold"),
    ],
)
@pytest.mark.parametrize("fn", [masks_to_boxes, masks_to_boxes_reference])
def test_m2b_bad_input(fn, mask, probs, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        fn(mask, probs, **kwargs)


def test_box_helpers_bad_input():
    with pytest.raises(ValueError, match=r"\(n, 4\|5\)"):
        remove_inner_boxes(np.zeros((3, 6)))
    with pytest.raises(ValueError, match="box1"):
        box1_in_box2([1, 2, 3], [0, 0, 5, 5])
    with pytest.raises(ValueError, match="non-finite"):
        remove_inner_boxes(np.array([[0, 0, np.nan, 4]]))


# --------------------------------------------------------------------------------------------
# NMS
# --------------------------------------------------------------------------------------------


@pytest.mark.parity
def test_nms_golden_wrapper_detection(golden):
    _, results = golden
    wrapper = results["wrapper"]
    for cls, before in wrapper["m2b_before_nms"].items():
        want = wrapper["detection"][cls]
        if not before:
            assert want is None
            continue
        arr = np.asarray(before, np.float64)
        keep = nms(arr[:, :4], arr[:, 4], 0.5)
        np.testing.assert_array_equal(arr[keep], np.asarray(want, np.float64))


def _greedy_nms_reference(boxes: np.ndarray, scores: np.ndarray, thr: float) -> list[int]:
    """The official wrapper's NMS written out plainly: highest score first (stable on ties),
    keep it, drop every remaining box whose IoU with it (areas without +1) is > thr."""
    order = sorted(range(len(scores)), key=lambda i: -scores[i])
    keep: list[int] = []
    while order:
        i = order.pop(0)
        keep.append(i)
        rest = []
        for j in order:
            iw = min(boxes[i, 2], boxes[j, 2]) - max(boxes[i, 0], boxes[j, 0])
            ih = min(boxes[i, 3], boxes[j, 3]) - max(boxes[i, 1], boxes[j, 1])
            inter = max(iw, 0.0) * max(ih, 0.0)
            area_i = (boxes[i, 2] - boxes[i, 0]) * (boxes[i, 3] - boxes[i, 1])
            area_j = (boxes[j, 2] - boxes[j, 0]) * (boxes[j, 3] - boxes[j, 1])
            union = area_i + area_j - inter
            if not (union > 0 and inter / union > thr):
                rest.append(j)
        order = rest
    return keep


def test_nms_matches_the_plain_greedy_definition():
    rng = np.random.default_rng(0)
    for _ in range(30):
        n = int(rng.integers(1, 60))
        xy = rng.integers(0, 100, (n, 2))
        wh = rng.integers(1, 40, (n, 2))
        boxes = np.concatenate([xy, xy + wh], 1).astype(np.float64)
        scores = rng.permutation(n).astype(np.float64) / n  # distinct scores
        for thr in (0.3, 0.5, 0.7):
            assert nms(boxes, scores, thr).tolist() == _greedy_nms_reference(boxes, scores, thr)


def test_nms_equals_torchvision_kernel():
    """Same kept indices as torchvision.ops.nms (float64, CPU) on float boxes with tied scores,
    duplicates, zero-area boxes and IoUs near the threshold."""
    import torch
    from torchvision.ops import nms as tv_nms

    rng = np.random.default_rng(1)
    for trial in range(200):
        n = int(rng.integers(1, 80))
        xy = rng.uniform(0, 100, (n, 2)).round(int(rng.integers(0, 3)))
        wh = rng.uniform(0, 30, (n, 2)).round(int(rng.integers(0, 3)))
        if trial % 5 == 0:
            wh[rng.random(n) < 0.2] = 0.0  # zero-area boxes
        boxes = np.concatenate([xy, xy + wh], 1)
        if trial % 3 == 0:
            boxes[rng.integers(0, n, n // 3)] = boxes[0]  # duplicates
        scores = rng.integers(0, 6, n).astype(np.float64) / 5  # many ties
        for thr in (0.0, 0.3, 0.5, 1.0):
            want = tv_nms(torch.from_numpy(boxes), torch.from_numpy(scores), thr).numpy()
            np.testing.assert_array_equal(nms(boxes, scores, thr), want)


def test_nms_edge_cases():
    assert nms(np.zeros((0, 4)), np.zeros(0)).tolist() == []
    boxes = np.array([[0, 0, 10, 10], [0, 0, 10, 10], [20, 20, 30, 30]], np.float64)
    assert nms(boxes, np.array([0.5, 0.5, 0.9])).tolist() == [2, 0]  # ties: lower index first
    # IoU exactly 0.5 is not suppressed (strictly greater)
    boxes = np.array([[0, 0, 10, 10], [0, 0, 10, 5]], np.float64)
    assert nms(boxes, np.array([0.9, 0.8]), 0.5).tolist() == [0, 1]
    with pytest.raises(ValueError, match=r"\(n, 4\)"):
        nms(np.zeros((3, 5)), np.zeros(3))
    with pytest.raises(ValueError, match="scores"):
        nms(np.zeros((3, 4)), np.zeros(2))


# --------------------------------------------------------------------------------------------
# captions
# --------------------------------------------------------------------------------------------


@pytest.mark.parity
def test_caption_templates_golden(golden):
    _, results = golden
    assert list(EXISTENCE_TEMPLATES) == results["caption_templates"]["object_existence"]
    assert list(DISTRIBUTION_TEMPLATES) == results["caption_templates"]["object_distribution"]


@pytest.mark.parity
def test_caption_cases_golden(golden):
    _, results = golden
    cases = results["captioning_cases"]
    assert {c["region_count"] for c in cases} == {4, 9}
    for case in cases:
        outs = case["outputs_by_template_index"]
        assert len(outs) == 6
        for t, want in enumerate(outs):
            got = build_caption(
                case["pred"], tuple(case["shape"]), case["region_count"], fixed_chooser(t)
            )
            assert got == want, (case["name"], case["region_count"], t)


@pytest.mark.parity
def test_caption_wrapper_golden(golden):
    """The wrapper's captions: detection output (None for a class without boxes), shape (H, W)."""
    _, results = golden
    wrapper = results["wrapper"]
    w, h = wrapper["image_size_WH"]
    for rc in (4, 9):
        got = build_caption(wrapper["detection"], (h, w), rc, fixed_chooser(0))
        assert got == wrapper[f"captioning_region{rc}_template0"]


def test_caption_seeded_is_deterministic_and_varies():
    pred = {
        "airplane": [[10, 10, 50, 50, 0.9], [700, 700, 760, 760, 0.8]],
        "ship": [[1, 700, 9, 790]],
    }
    a = build_caption(pred, (800, 800), 9, seeded_chooser(3))
    assert a == build_caption(pred, (800, 800), 9, seeded_chooser(3))
    variants = {build_caption(pred, (800, 800), 9, seeded_chooser(s)) for s in range(20)}
    assert len(variants) > 3
    assert fixed_chooser(7)(["a", "b", "c"]) == "b"


def test_caption_bad_input():
    ok = {"ship": [[1, 1, 3, 3]]}
    with pytest.raises(ValueError, match="region_count"):
        build_caption(ok, (10, 10), 16, fixed_chooser(0))
    with pytest.raises(ValueError, match="shape_hw"):
        build_caption(ok, (0, 10), 4, fixed_chooser(0))
    with pytest.raises(ValueError, match="4 finite numbers"):
        build_caption({"ship": [[1, 2]]}, (10, 10), 4, fixed_chooser(0))
    with pytest.raises(TypeError, match="pred"):
        build_caption([("ship", [])], (10, 10), 4, fixed_chooser(0))
    with pytest.raises(TypeError, match="seed"):
        seeded_chooser("1")
