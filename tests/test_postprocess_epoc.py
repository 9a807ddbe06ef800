"""EPOC: contour cutting and piece filtering (hand-made and random inputs against a plain loop),
and the DirectSAM loader / boundary map with a tiny randomly initialised Segformer saved to a
temporary directory (no download)."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch

from remotesam.postprocess import (
    COUNTING_EPOC_THRESHOLD,
    DETECTION_EPOC_THRESHOLD,
    EPOC_AREA_RATIO,
    BoundaryModel,
    boundary_map,
    epoc_refine,
    load_boundary_model,
    masks_to_boxes,
)


def _loop_epoc(mask, prob, threshold, area_ratio):
    """Plain per-component transcription of the EPOC rule, for comparison."""
    cut = ((mask > 0) & (prob <= threshold)).astype(np.uint8)
    n_old, old = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    out = np.zeros_like(mask, dtype=np.uint8)
    for k in range(1, n_old):
        piece_mask = (cut * (old == k)).astype(np.uint8)
        n, lab, stats, _ = cv2.connectedComponentsWithStats(piece_mask, connectivity=8)
        if n <= 1:
            continue
        largest = stats[1:, cv2.CC_STAT_AREA].max()
        for p in range(1, n):
            if stats[p, cv2.CC_STAT_AREA] > area_ratio * largest:
                out[lab == p] = 1
    return out


def test_constants():
    assert (DETECTION_EPOC_THRESHOLD, COUNTING_EPOC_THRESHOLD, EPOC_AREA_RATIO) == (0.25, 0.15, 0.2)


def test_epoc_splits_touching_objects():
    # two 10x10 squares joined by a 2-pixel bridge; the boundary model sees a contour on the
    # bridge column, so EPOC splits them into two components -> two boxes
    mask = np.zeros((20, 40), np.uint8)
    mask[5:15, 5:15] = 1
    mask[9:11, 15:25] = 1
    mask[5:15, 25:35] = 1
    prob = np.zeros(mask.shape, np.float32)
    prob[:, 19:21] = 0.9
    refined = epoc_refine(mask, prob, DETECTION_EPOC_THRESHOLD)
    assert refined.dtype == np.uint8
    assert not np.any(refined & ~mask.astype(bool))
    probs = np.full(mask.shape, 0.8, np.float32)
    boxes = masks_to_boxes(mask, probs, "hbb", new_mask=refined)
    np.testing.assert_array_equal(boxes[:, :4], [[5, 5, 19, 15], [21, 5, 35, 15]])
    assert len(masks_to_boxes(mask, probs, "hbb")) == 1


def test_epoc_drops_small_pieces_relative_to_their_own_parent():
    mask = np.zeros((30, 60), np.uint8)
    mask[0:20, 0:20] = 1  # object A: cut into a 20x15 piece and a 20x3 piece (60 <= 0.2*300)
    mask[25:30, 40:50] = 1  # object B: a small object that stays (largest piece of its own)
    prob = np.zeros(mask.shape, np.float32)
    prob[:, 15:17] = 0.5
    prob[:, 45] = 0.1  # below the threshold: not cut
    out = epoc_refine(mask, prob, 0.25)
    assert out[0:20, 0:15].all() and not out[:, 15:20].any()  # the 20x3 sliver is dropped
    assert out[25:30, 40:50].all()
    # strictness: a piece of exactly area_ratio x largest is dropped, a larger one is kept
    mask2 = np.zeros((10, 40), np.uint8)
    mask2[0:10, 0:31] = 1
    prob2 = np.zeros(mask2.shape, np.float32)
    prob2[:, 25] = 1.0  # pieces of 250 and 50 pixels: 50 == 0.2 * 250
    assert epoc_refine(mask2, prob2, 0.25)[:, 26:].sum() == 0
    assert epoc_refine(mask2, prob2, 0.25, area_ratio=0.19)[:, 26:].sum() == 50


def test_epoc_counting_threshold_cuts_more():
    mask = np.ones((10, 30), np.uint8)
    prob = np.zeros(mask.shape, np.float32)
    prob[:, 14:16] = 0.2  # between the counting (0.15) and detection (0.25) thresholds
    assert cv2.connectedComponents(epoc_refine(mask, prob, DETECTION_EPOC_THRESHOLD))[0] == 2
    assert cv2.connectedComponents(epoc_refine(mask, prob, COUNTING_EPOC_THRESHOLD))[0] == 3


@pytest.mark.parametrize("seed", range(6))
def test_epoc_vectorised_equals_loop(seed):
    rng = np.random.default_rng(seed)
    mask = np.zeros((120, 140), np.uint8)
    for _ in range(12):
        c = (int(rng.integers(0, 140)), int(rng.integers(0, 120)))
        axes = (int(rng.integers(3, 30)), int(rng.integers(3, 30)))
        cv2.ellipse(mask, c, axes, float(rng.uniform(0, 180)), 0, 360, 1, -1)
    prob = np.zeros(mask.shape, np.float32)
    for _ in range(15):  # random contour lines
        p1 = (int(rng.integers(0, 140)), int(rng.integers(0, 120)))
        p2 = (int(rng.integers(0, 140)), int(rng.integers(0, 120)))
        cv2.line(prob, p1, p2, float(rng.uniform(0, 1)), int(rng.integers(1, 3)))
    prob += rng.uniform(0, 0.2, prob.shape).astype(np.float32)
    for thr in (0.15, 0.25):
        for ratio in (0.2, 0.5):
            want = _loop_epoc(mask, prob, thr, ratio)
            np.testing.assert_array_equal(epoc_refine(mask, prob, thr, ratio), want)
    assert _loop_epoc(mask, prob, 0.15, 0.2).sum() < (mask & (prob <= 0.15)).sum()


def test_epoc_empty_and_bad_input():
    z = np.zeros((5, 5), np.uint8)
    assert epoc_refine(z, np.zeros((5, 5), np.float32), 0.25).sum() == 0
    with pytest.raises(ValueError, match="mask"):
        epoc_refine(np.zeros((5, 5, 1), np.uint8), np.zeros((5, 5), np.float32), 0.25)
    with pytest.raises(ValueError, match="uint8"):
        epoc_refine(np.full((5, 5), 3, np.uint8), np.zeros((5, 5), np.float32), 0.25)
    with pytest.raises(ValueError, match="boundary_prob"):
        epoc_refine(z, np.zeros((4, 5), np.float32), 0.25)
    with pytest.raises(ValueError, match="floating"):
        epoc_refine(z, np.zeros((5, 5), np.uint8), 0.25)
    with pytest.raises(TypeError, match="threshold"):
        epoc_refine(z, np.zeros((5, 5), np.float32), "0.25")
    with pytest.raises(ValueError, match="area_ratio"):
        epoc_refine(z, np.zeros((5, 5), np.float32), 0.25, area_ratio=-1)


# --------------------------------------------------------------------------------------------
# DirectSAM loader with a tiny random Segformer
# --------------------------------------------------------------------------------------------


def _tiny_segformer(num_labels: int = 1):
    from transformers import SegformerConfig, SegformerForSemanticSegmentation

    torch.manual_seed(0)
    cfg = SegformerConfig(
        num_labels=num_labels,
        num_encoder_blocks=2,
        depths=[1, 1],
        sr_ratios=[2, 1],
        hidden_sizes=[8, 16],
        patch_sizes=[7, 3],
        strides=[4, 2],
        num_attention_heads=[1, 1],
        mlp_ratios=[2, 2],
        decoder_hidden_size=16,
        image_size=64,
    )
    return SegformerForSemanticSegmentation(cfg).eval()


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("directsam_tiny")
    _tiny_segformer().save_pretrained(str(d))
    return d


def test_boundary_map_from_saved_tiny_model(tiny_dir):
    bm = load_boundary_model(tiny_dir)
    assert isinstance(bm, BoundaryModel)
    assert bm.processor is None and bm.size_hw == (64, 64)
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (37, 53, 3), dtype=np.uint8)
    prob = boundary_map(bm, img)
    assert prob.shape == (37, 53) and prob.dtype == np.float32
    assert np.all((prob >= 0) & (prob <= 1))
    np.testing.assert_array_equal(prob, boundary_map(bm, img))  # deterministic
    # same numbers as running the saved network by hand
    x = torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255.0
    x = torch.nn.functional.interpolate(x, size=(64, 64), mode="bilinear", align_corners=False)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    with torch.no_grad():
        logits = _tiny_segformer()(pixel_values=(x - mean) / std).logits
    up = torch.nn.functional.interpolate(
        logits, size=(37, 53), mode="bilinear", align_corners=False
    )
    np.testing.assert_allclose(prob, torch.sigmoid(up)[0, 0].numpy(), atol=1e-6)
    # the map plugs into EPOC
    mask = np.ones((37, 53), np.uint8)
    refined = epoc_refine(mask, prob, float(np.median(prob)))
    assert 0 < refined.sum() < mask.sum()


def test_boundary_model_with_processor_config(tmp_path):
    from transformers import SegformerImageProcessor

    _tiny_segformer().save_pretrained(str(tmp_path))
    SegformerImageProcessor(size={"height": 32, "width": 32}).save_pretrained(str(tmp_path))
    bm = load_boundary_model(tmp_path)
    assert bm.processor is not None and bm.size_hw == (32, 32)
    img = np.random.default_rng(1).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    prob = boundary_map(bm, img)
    assert prob.shape == (20, 30) and np.isfinite(prob).all()


def test_load_boundary_model_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_boundary_model(tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match=r"config\.json"):
        load_boundary_model(tmp_path)
    two = tmp_path / "two"
    _tiny_segformer(num_labels=2).save_pretrained(str(two))
    with pytest.raises(ValueError, match="num_labels=1"):
        load_boundary_model(two)
    bad = tmp_path / "bad_pp"
    _tiny_segformer().save_pretrained(str(bad))
    (bad / "preprocessor_config.json").write_text(json.dumps({"size": {"h": 3}}))
    with pytest.raises(ValueError, match="preprocessor_config"):
        load_boundary_model(bad)


def test_boundary_map_bad_input(tiny_dir):
    bm = load_boundary_model(tiny_dir)
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        boundary_map(bm, np.zeros((8, 8), np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        boundary_map(bm, np.zeros((8, 8, 3), np.float32))
    with pytest.raises(TypeError, match="BoundaryModel"):
        boundary_map(object(), np.zeros((8, 8, 3), np.uint8))
