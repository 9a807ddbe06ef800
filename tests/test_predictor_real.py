"""Every task method on real sample images with the tiny network (remotesam_tiny, fixed seed).

The randomly initialised tiny model's last layer is rescaled and centred on a real image so that
its masks are neither empty nor full (otherwise detection, grounding and captioning would only
ever see empty masks). Numbers are meaningless; shapes, types, conversions and consistency are not.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from remotesam.image import load_image
from remotesam.predictor import RemoteSAM

pytestmark = pytest.mark.realdata


@pytest.fixture(scope="module")
def net(real_data: Path) -> torch.nn.Module:
    from remotesam.models import create_model

    torch.manual_seed(0)
    net = create_model("remotesam_tiny").eval()
    m = RemoteSAM(net)
    r = m.referring_seg(real_data / "dior/JPEGImages/00001.jpg", "airplane in the image")
    # The random model's fg-bg logit is nearly constant (std ~0.01 around 0.2): scale the last
    # layer to make it vary (std ~1) and centre it on this image so that masks are partial.
    d = torch.logit(torch.from_numpy(r.prob_net).double().clamp(1e-12, 1 - 1e-12))
    k = 1.0 / float(d.std())
    with torch.no_grad():
        net.classifier.conv1_1.weight *= k
        net.classifier.conv1_1.bias *= k
        net.classifier.conv1_1.bias[1] -= k * float(d.median())
    return net


@pytest.fixture(scope="module")
def model(net: torch.nn.Module) -> RemoteSAM:
    return RemoteSAM(net, batch_size=4)


def _img(real_data: Path, rel: str) -> Path:
    return real_data / rel


def test_referring_seg_rgba_png(model: RemoteSAM, real_data: Path) -> None:
    p = _img(real_data, "isaid/images_only/PIX_SEG_068_iSAID_P0998-ori.png")
    with Image.open(p) as im:
        assert im.mode == "RGBA"
        h, w = im.height, im.width
    r = model.referring_seg(p, "the ship on the left")
    assert r.mask.shape == r.prob.shape == (h, w)
    assert r.mask_net.shape == (224, 224) and r.prob.dtype == np.float32
    assert np.array_equal(r.mask, (r.prob > 0.5).astype(np.uint8))  # argmax == prob > 0.5
    assert 0 < r.mask.mean() < 1


def test_semantic_seg_odd_size_tif(model: RemoteSAM, real_data: Path) -> None:
    p = _img(real_data, "ucmerced/Images/buildings/buildings96.tif")
    s = model.semantic_seg(p, ["building", "road", "tree"], template="{} in the image.")
    assert s.masks.shape == (3, 247, 247) and s.label_map.shape == (247, 247)
    assert set(np.unique(s.label_map)) <= {0, 1, 2, 3}
    assert np.array_equal(s.label_map > 0, s.masks.any(axis=0))


@pytest.mark.parametrize("box_type", ["hbb", "obb"])
def test_detection_dior_jpg(model: RemoteSAM, real_data: Path, box_type: str) -> None:
    p = _img(real_data, "dior/JPEGImages/00001.jpg")
    d = model.detection(p, ["airplane", "vehicle", "harbor"], box_type=box_type)
    assert d.boxes.shape[1] == (4 if box_type == "hbb" else 8) and len(d) > 0
    assert d.scores.min() >= 0.5  # argmax components always have mean prob > 0.5
    if box_type == "hbb":
        assert (
            d.boxes[:, :2].min() >= 0 and d.boxes[:, 2].max() <= 800 and d.boxes[:, 3].max() <= 800
        )
        assert np.all(d.boxes[:, 2] > d.boxes[:, 0]) and np.all(d.boxes[:, 3] > d.boxes[:, 1])


def test_visual_grounding_rsvg(model: RemoteSAM, real_data: Path) -> None:
    xml = ET.parse(_img(real_data, "dior_rsvg/Annotations/00001.xml"))
    sentence = xml.find(".//description").text  # type: ignore[union-attr]
    g = model.visual_grounding(_img(real_data, "dior_rsvg/JPEGImages/00001.jpg"), sentence)
    assert g.box is not None and g.box.shape == (4,) and 0.5 <= g.score <= 1
    assert g.box[2] > g.box[0] and g.box[3] > g.box[1]


def test_multi_label_dota_png(model: RemoteSAM, real_data: Path) -> None:
    p = _img(real_data, "dota/split_patch/images/P1478__1__853___962.png")
    names = ["airplane", "ship", "small-vehicle"]
    r = model.multi_label_cls(p, names)
    assert r.scores.shape == (3,) and r.scores.dtype == np.float64
    assert np.all((r.scores >= 0) & (r.scores <= 1))
    assert r.labels == tuple(n for n, s in zip(names, r.scores) if s > 0.5)


def test_multi_class_ucm_odd_size(model: RemoteSAM, real_data: Path) -> None:
    p = _img(real_data, "ucmerced/Images/intersection/intersection99.tif")
    names = ["intersection", "runway", "forest"]
    r = model.multi_class_cls(p, names)
    assert r.label is None or r.label == names[int(np.argmax(r.scores))]
    # pure max pooling: a class's score is the max of its referring probability map. The three
    # prompts ran as one batch of 3 and referring_seg as a batch of 1: CPU kernels may block
    # them differently, so the last bits can differ (the documented batch tolerance).
    single = float(model.referring_seg(p, "intersection in the image").prob_net.max())
    assert r.scores[0] == pytest.approx(single, rel=1e-5, abs=1e-6)


def test_captioning_ucm_captions(model: RemoteSAM, real_data: Path) -> None:
    p = _img(real_data, "ucm_captions/Images/191.tif")
    c = model.captioning(p, ["airplane", "road"], region_split=9, seed=7)
    assert c.text[0].isupper() and len(c.detections) > 0
    for k, name in enumerate(["airplane", "road"]):
        if (c.detections.labels == k).any():
            assert name in c.text


def test_counting_png(model: RemoteSAM, real_data: Path) -> None:
    p = next((real_data / "counting").rglob("*.png"))
    names = ["vehicle", "storagetank"]
    c = model.counting(p, names)
    assert set(c.counts) == set(names) and sum(c.counts.values()) > 0
    filtered = model.counting(p, names, prior_areas={"vehicle": 6, "storagetank": 1e9})
    assert filtered.counts["storagetank"] == 0 and filtered.counts["vehicle"] <= c.counts["vehicle"]


def test_16bit_tiff_and_grayscale_inputs(model: RemoteSAM, real_data: Path, tmp_path: Path) -> None:
    rgb = load_image(_img(real_data, "ucmerced/Images/airplane/airplane00.tif"))
    p16 = tmp_path / "airplane16.tif"
    Image.fromarray(rgb[..., 0].astype(np.uint16) << 8).save(p16)  # 16-bit grayscale TIFF
    with Image.open(p16) as im:  # the official loaders' decoding: PIL clips to 255
        official = np.asarray(im.convert("RGB"))
    a = model.referring_seg(p16, "the airplane")
    b = model.referring_seg(official, "the airplane")
    np.testing.assert_array_equal(a.prob, b.prob)
    gray = np.repeat(rgb[..., :1], 3, axis=2)  # the high-byte rule, on request: v << 8 >> 8 == v
    hb = model.referring_seg(load_image(p16, high_depth="high_byte"), "the airplane")
    np.testing.assert_array_equal(hb.prob, model.referring_seg(gray, "the airplane").prob)


@pytest.mark.slow
def test_batch_size_real_network(net: torch.nn.Module, real_data: Path) -> None:
    # With a real network, CPU kernels pick batch-size-dependent blocking (the tiny model's CIM
    # linear layers already differ by ~1e-6 between batch 1 and 2), so logits agree to float
    # rounding, not bit for bit. Masks may differ only where the two logits nearly tie.
    p = _img(real_data, "dior/JPEGImages/00001.jpg")
    names = ["airplane", "vehicle"]
    one = RemoteSAM(net, batch_size=1).semantic_seg(p, names)
    two = RemoteSAM(net, batch_size=2).semantic_seg(p, names)
    np.testing.assert_allclose(two.probs, one.probs, rtol=0, atol=1e-5)
    differ = two.masks != one.masks
    assert np.all(np.abs(one.probs[differ] - 0.5) < 1e-5)


@pytest.mark.slow
def test_bf16_real_network(net: torch.nn.Module, real_data: Path) -> None:
    p = _img(real_data, "dior/JPEGImages/00001.jpg")
    fp32 = RemoteSAM(net).referring_seg(p, "airplane in the image")
    bf = RemoteSAM(net, precision="bf16").referring_seg(p, "airplane in the image")
    assert bf.prob.dtype == np.float32 and bf.prob.shape == fp32.prob.shape
    assert (bf.mask == fp32.mask).mean() > 0.95
    assert np.abs(bf.prob_net - fp32.prob_net).max() < 0.1


@pytest.mark.slow
def test_from_checkpoint(net: torch.nn.Module, real_data: Path, tmp_path: Path) -> None:
    from remotesam.checkpoint import save_checkpoint

    path = save_checkpoint(net, tmp_path / "tiny.safetensors")
    m = RemoteSAM.from_checkpoint(path, device="cpu", precision="fp32", batch_size=2)
    assert m.image_size == 224 and m.settings()["precision"] == "fp32"
    p = _img(real_data, "ucmerced/Images/harbor/harbor00.tif")
    a = m.referring_seg(p, "the boats")
    b = RemoteSAM(net).referring_seg(p, "the boats")
    np.testing.assert_array_equal(a.prob, b.prob)
    with pytest.raises(FileNotFoundError):
        RemoteSAM.from_checkpoint(tmp_path / "missing.pth")


def test_empty_grounding_real(net: torch.nn.Module, real_data: Path) -> None:
    # a network whose logits favour background everywhere gives no box (official: None)
    class Background(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.config = net.config

        def forward(self, image, input_ids, attention_mask, text_features=None):
            out = torch.zeros(image.shape[0], 2, 224, 224)
            out[:, 0] = 1
            return out

    g = RemoteSAM(Background()).visual_grounding(_img(real_data, "dior/JPEGImages/00001.jpg"), "x")
    assert g.box is None and math.isnan(g.score)
