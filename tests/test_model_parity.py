"""Parity with the official RemoteSAM network (golden outputs in
../shared/reference/parity_tiny.npz).

The ``remotesam_parity`` configuration is filled with the torch-free hash rule of
``parity_tiny.md`` section 3 (``remotesam.model.parity``, vectorised numpy), fed the stored
inputs, and compared with the official code's logits, decoder output, BERT output, routing
angles and 51 forward-hook statistics. The 896x896 forward runs once per test session (module
fixture).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from remotesam.model.parity import fill_parity, hash_uniform
from remotesam.models import create_model

pytestmark = [pytest.mark.parity]


def _stats(t: torch.Tensor) -> np.ndarray:
    d = t.detach().double()
    return np.array(
        [d.mean().item(), d.std().item(), d.abs().mean().item(), d.min().item(), d.max().item()]
    )


def normalise(u8: np.ndarray) -> torch.Tensor:
    """(H,W,3) uint8 RGB -> (1,3,H,W) float32 exactly as the official ToTensor+Normalize."""
    mean = np.array([0.485, 0.456, 0.406], np.float32).reshape(3, 1, 1)
    std = np.array([0.229, 0.224, 0.225], np.float32).reshape(3, 1, 1)
    x = (u8.transpose(2, 0, 1).astype(np.float32) / np.float32(255) - mean) / std
    return torch.from_numpy(x)[None]


@pytest.fixture(scope="module")
def golden(reference_dir: Path):
    return dict(np.load(reference_dir / "parity_tiny.npz", allow_pickle=False))


@pytest.fixture(scope="module")
def parity_model():
    """The parity configuration filled by the hash rule (built once per module)."""
    model = create_model("remotesam_parity")
    names = fill_parity(model)
    return model, names


@pytest.fixture(scope="module")
def parity_run(golden, parity_model):
    """Run the filled parity model once on the stored inputs; collect hook statistics."""
    model, names = parity_model
    modules = dict(model.named_modules())
    stats: dict[str, np.ndarray] = {}
    first8: dict[str, np.ndarray] = {}
    keep: dict[str, torch.Tensor] = {}

    def hook(name: str, index: int | None = None):
        def fn(_mod, _inp, out):
            o = out[index] if index is not None else out
            if isinstance(o, (tuple, list)):
                o = o[0]
            stats[name] = _stats(o)
            first8[name] = o.detach().double().flatten()[:8].numpy()
            if name in ("classifier.conv1_1", "text_encoder.encoder.layer.1"):
                keep[name] = o.detach().clone()

        return fn

    handles = []
    for raw in golden["stat_names"]:
        name = str(raw)
        if name.endswith(".out_x_down_or_x"):
            handles.append(modules[name.rsplit(".", 1)[0]].register_forward_hook(hook(name, 3)))
        else:
            handles.append(modules[name].register_forward_hook(hook(name)))
    x = normalise(golden["image_resized_uint8"])
    ids = torch.from_numpy(golden["input_ids"])
    mask = torch.from_numpy(golden["attention_mask"])
    with torch.inference_mode():
        logits = model(x, ids, mask)
    for h in handles:
        h.remove()
    routing = {k: getattr(model.classifier, f"conv2_{k}").last_routing for k in (4, 3, 2)}
    return {
        "names": names, "x": x, "logits": logits, "stats": stats, "first8": first8,
        "keep": keep, "routing": routing,
    }


def test_fill_rule_matches_reference(golden, parity_model):
    model, names = parity_model
    assert names == [str(n) for n in golden["param_names_sorted"]]
    params = dict(model.named_parameters())
    for i, name in enumerate(names):
        v = params[name].detach().numpy()
        assert v.astype(np.float64).sum() == golden["param_sum_f64"][i], name
        n = min(4, v.size)
        np.testing.assert_array_equal(v.ravel()[:n], golden["param_first4"][i][:n], err_msg=name)


def test_hash_stream_known_values():
    """fmix32 of a few inputs, computed by hand with Python integers."""

    def fmix(x: int) -> int:
        x ^= x >> 16
        x = (x * 0x85EBCA6B) & 0xFFFFFFFF
        x ^= x >> 13
        x = (x * 0xC2B2AE35) & 0xFFFFFFFF
        return x ^ (x >> 16)

    for index in (0, 7, 501):
        u = hash_uniform(index, 5)
        ref = [fmix((k + (index + 1) * 0x9E3779B9) % 2**32) / 2**31 - 1.0 for k in range(5)]
        assert u.tolist() == ref


def test_input_tensor_matches(golden):
    x = normalise(golden["image_resized_uint8"])
    d = x.double()
    assert d.sum().item() == pytest.approx(golden["input_tensor_checksum"][0], abs=1e-6)
    assert d.abs().sum().item() == pytest.approx(golden["input_tensor_checksum"][1], abs=1e-6)
    np.testing.assert_array_equal(x.flatten()[:16].numpy(), golden["input_tensor_first16"])


@pytest.mark.slow
def test_logits_match(parity_run, golden):
    logits = parity_run["logits"]
    assert logits.shape == (1, 2, 896, 896)
    np.testing.assert_allclose(
        logits[:, :, ::8, ::8].numpy(), golden["logits_sub8"], atol=1e-4, rtol=0
    )
    rows = logits[0][:, [0, 1, 447, 448, 895], :].numpy()
    cols = logits[0][:, :, [0, 1, 447, 448, 895]].numpy()
    np.testing.assert_allclose(rows, golden["logits_rows"], atol=1e-4, rtol=0)
    np.testing.assert_allclose(cols, golden["logits_cols"], atol=1e-4, rtol=0)
    d = logits.double()
    st = [d.mean(), d.std(unbiased=False), d[:, 0].mean(), d[:, 0].std(unbiased=False),
          d[:, 1].mean(), d[:, 1].std(unbiased=False), d.min(), d.max()]
    np.testing.assert_allclose([s.item() for s in st], golden["logits_stats"], atol=1e-5, rtol=1e-4)


@pytest.mark.slow
def test_decoder_and_bert_outputs(parity_run, golden):
    dec = parity_run["keep"]["classifier.conv1_1"]
    np.testing.assert_allclose(dec.numpy(), golden["decoder_out"], atol=1e-4, rtol=0)
    bert = parity_run["keep"]["text_encoder.encoder.layer.1"]
    np.testing.assert_allclose(bert.numpy(), golden["bert_last_hidden"], atol=1e-4, rtol=0)
    # The final logits are the align_corners=True bilinear upsampling of the decoder output.
    up = F.interpolate(dec, size=(896, 896), mode="bilinear", align_corners=True)
    torch.testing.assert_close(up, parity_run["logits"], atol=1e-6, rtol=0)


@pytest.mark.slow
def test_masks_match(parity_run, golden):
    logits = parity_run["logits"]
    mask = logits.argmax(1)[0].numpy().astype(np.uint8)
    gold = np.unpackbits(golden["mask896_packed"])[: 896 * 896].reshape(896, 896)
    assert (mask != gold).mean() <= 1e-4
    assert mask.mean() == pytest.approx(golden["fg_fraction"][0], abs=1e-4)
    m800 = F.interpolate(logits.argmax(1, keepdim=True).float(), size=(800, 800))[0, 0]
    gold800 = np.unpackbits(golden["mask800_packed"])[: 800 * 800].reshape(800, 800)
    assert (m800.numpy().astype(np.uint8) != gold800).mean() <= 1e-4
    prob = F.interpolate(logits.softmax(1)[:, 1:2], size=(800, 800))[0, 0, ::8, ::8]
    np.testing.assert_allclose(prob.numpy(), golden["prob800_sub8"], atol=1e-4, rtol=0)


@pytest.mark.slow
def test_hook_statistics(parity_run, golden):
    stats, first8 = parity_run["stats"], parity_run["first8"]
    for i, raw in enumerate(golden["stat_names"]):
        name = str(raw)
        assert name in stats, f"hook {name} never fired"
        got, ref = stats[name], golden["stat_values"][i]
        scale = np.array([ref[1], abs(ref[1]), abs(ref[2]), abs(ref[3]), abs(ref[4])])
        assert np.all(np.abs(got - ref) <= 1e-3 * scale + 1e-6), (name, got, ref)
        np.testing.assert_allclose(first8[name], golden["stat_first8"][i], atol=2e-4, rtol=0,
                                   err_msg=name)


@pytest.mark.slow
def test_routing_angles(parity_run, golden):
    for k, (alpha, theta) in parity_run["routing"].items():
        np.testing.assert_allclose(alpha.numpy(), golden[f"routing_conv2_{k}_alpha"], atol=1e-5)
        np.testing.assert_allclose(theta.numpy(), golden[f"routing_conv2_{k}_theta"], atol=1e-5)
    # both rotation branches are exercised
    assert parity_run["routing"][4][1].item() < 0 < parity_run["routing"][3][1].item()
