"""The RemoteSAM network: configs, official state-dict layout, input checking, batching, ARC."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from remotesam.model import (
    RemoteSAMConfig,
    RemoteSAMNet,
    get_config,
    list_models,
    register_model,
)
from remotesam.model.cim import CrossScaleInteraction
from remotesam.model.decoder import rotate_kernels, rotation_matrix
from remotesam.models import create_model

# "the airplane on the right" and two other prompts, [CLS] ... [SEP] padded to 20 (from the
# golden fixture and bert-base-uncased ids).
IDS = [
    [101, 1996, 13297, 2006, 1996, 2157, 102] + [0] * 13,
    [101, 4049, 102] + [0] * 17,
    [101, 1037, 2317, 2482, 2379, 1996, 2314, 2006, 1996, 2187, 2217, 1997, 1996, 3746, 102]
    + [0] * 5,
]


def _tokens(rows: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    ids = torch.tensor(rows, dtype=torch.long)
    return ids, (ids != 0).long()


@pytest.fixture(scope="module")
def tiny() -> RemoteSAMNet:
    torch.manual_seed(0)
    model = create_model("remotesam_tiny")
    # Non-trivial BatchNorm statistics so that eval-mode BN is really exercised.
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    return model.eval()


def _image(b: int, size: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, 3, size, size, generator=g)


# --- configs -----------------------------------------------------------------------------------


def test_registry_has_the_three_configs():
    assert {"remotesam_base", "remotesam_parity", "remotesam_tiny"} <= set(list_models())
    base = get_config("remotesam_base")
    assert (base.img_size, base.embed_dim, base.window_size, base.decoder_hidden) == (
        896,
        128,
        12,
        512,
    )
    assert base.depths == (2, 2, 18, 2) and base.num_heads == (4, 8, 16, 32)
    assert (base.vocab_size, base.text_hidden, base.text_layers, base.max_tokens) == (
        30522,
        768,
        12,
        20,
    )
    parity = get_config("remotesam_parity")
    assert parity.depths == (2, 2, 2, 2) and parity.text_layers == 2
    assert parity.replace(name="x", depths=(2, 2, 18, 2), text_layers=12) == base.replace(name="x")


def test_config_round_trip_json():
    for name in list_models():
        cfg = get_config(name)
        again = RemoteSAMConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
        assert again == cfg


def test_config_errors():
    with pytest.raises(KeyError, match="remotesam_tiny"):
        get_config("remotesam_tyni")
    with pytest.raises(ValueError, match="unknown field"):
        RemoteSAMConfig.from_dict({"name": "x", "embed_dimm": 3})
    with pytest.raises(ValueError, match="num_heads"):
        RemoteSAMConfig(name="bad", num_heads=(3, 8, 16, 32))
    with pytest.raises(ValueError, match="img_size"):
        RemoteSAMConfig(name="bad", img_size=900)
    with pytest.raises(ValueError, match="already registered"):
        register_model(RemoteSAMConfig(name="remotesam_tiny"))
    with pytest.raises(TypeError):
        create_model(3)  # type: ignore[arg-type]


def test_cim_numbers_derive_to_official_constants():
    base = get_config("remotesam_base")
    assert base.stage_widths == (128, 256, 512, 1024)
    assert base.cim_map_size == 28 and base.cim_token_counts == (784, 196, 100)
    assert sum(base.cim_token_counts) == 1080
    assert base.cim_in_channels == 1920 and base.cim_dim == 480
    assert base.cim_splits == (32, 64, 128, 256)


def test_tiny_config_fits_budget():
    with torch.device("meta"):
        model = create_model("remotesam_tiny")
    assert model.num_parameters() <= 4_500_000
    assert model.text_encoder.embeddings.word_embeddings.weight.shape[0] == 30522


# --- official layout ------------------------------------------------------------------------


def test_base_state_dict_equals_official_layout(reference_dir: Path):
    ref = json.loads((reference_dir / "remotesam_base_state_dict.json").read_text())
    with torch.device("meta"):
        model = create_model("remotesam_base")
    mine = [
        [k, list(v.shape), str(v.dtype).removeprefix("torch.")]
        for k, v in model.state_dict().items()
    ]
    assert len(mine) == ref["num_state_dict_entries"] == 1107
    assert mine == ref["keys"]  # same names, order, shapes and dtypes
    assert model.num_parameters() == ref["num_params"] == 241_590_421
    for top, n in ref["num_params_per_top_level"].items():
        assert sum(p.numel() for p in getattr(model, top).parameters()) == n, top
    params = dict(model.named_parameters())
    for prefix, n in ref["num_params_per_submodule"].items():
        assert sum(p.numel() for k, p in params.items() if k.startswith(prefix + ".")) == n, prefix


def test_cim_generalises_to_other_widths_and_sizes():
    cfg = get_config("remotesam_tiny")
    cim = CrossScaleInteraction(cfg).eval()
    feats = [torch.randn(2, w, s, s) for w, s in zip(cfg.stage_widths, cfg.stage_sizes)]
    with torch.no_grad():
        outs = cim(feats)
    assert [tuple(o.shape) for o in outs] == [tuple(f.shape) for f in feats]
    att = cim.block[0].csa1.m.attention
    assert att.proj.weight.shape == (cfg.cim_map_size**2, sum(cfg.cim_token_counts))


# --- ARC rotation ------------------------------------------------------------------------------


def test_arc_rotation_matrices_match_official(reference_dir: Path):
    z = np.load(reference_dir / "parity_tiny.npz")
    mats = rotation_matrix(torch.from_numpy(z["arc_thetas"]))
    np.testing.assert_allclose(mats.numpy(), z["arc_rotmats"], atol=1e-6, rtol=0)
    assert torch.equal(rotation_matrix(torch.zeros(1))[0], torch.eye(9))
    rotated = rotate_kernels(
        torch.from_numpy(z["arc_w"]), torch.from_numpy(z["arc_lambdas"]),
        torch.from_numpy(z["arc_thetas_b"]),
    )
    np.testing.assert_allclose(rotated.numpy(), z["arc_rotated_w"], atol=1e-5, rtol=0)


# --- forward -----------------------------------------------------------------------------------


def test_tiny_forward_shapes_and_determinism(tiny):
    ids, mask = _tokens(IDS[:1])
    x = _image(1, 224)
    with torch.inference_mode():
        a = tiny(x, ids, mask)
        b = tiny(x, ids, mask)
    assert a.shape == (1, 2, 224, 224) and a.dtype == torch.float32
    assert torch.isfinite(a).all()
    assert torch.equal(a, b)
    assert tiny.encode_text(ids, mask).shape == (1, 64, 20)


def test_batched_equals_per_sample(tiny):
    ids, mask = _tokens(IDS)
    x = _image(3, 224, seed=1)
    with torch.inference_mode():
        batched = tiny(x, ids, mask)
        single = torch.cat([tiny(x[i : i + 1], ids[i : i + 1], mask[i : i + 1]) for i in range(3)])
    torch.testing.assert_close(batched, single, atol=1e-4, rtol=0)
    # the prompts really differ in effect
    assert (batched[0] - batched[1]).abs().max() > 1e-4


def test_cached_text_features_give_same_logits(tiny):
    ids, mask = _tokens(IDS[:2])
    x = _image(2, 224, seed=2)
    with torch.inference_mode():
        feats = tiny.encode_text(ids, mask)
        a = tiny(x, ids, mask)
        b = tiny(x, ids, mask, text_features=feats)
    torch.testing.assert_close(a, b, atol=0, rtol=0)


def test_padding_tokens_do_not_change_the_words_effect(tiny):
    """Longer zero padding (mask 0) leaves the logits unchanged up to float noise."""
    ids, mask = _tokens(IDS[:1])
    ids2 = torch.cat([ids, torch.zeros(1, 5, dtype=torch.long)], 1)
    mask2 = torch.cat([mask, torch.zeros(1, 5, dtype=torch.long)], 1)
    x = _image(1, 224, seed=3)
    with torch.inference_mode():
        a = tiny(x, ids, mask)
        b = tiny(x, ids2, mask2)
    torch.testing.assert_close(a, b, atol=1e-4, rtol=0)


# --- bad input -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("image", "exc", "match"),
    [
        (torch.randn(3, 224, 224), ValueError, r"shape \(B, 3, 224, 224\)"),
        (torch.randn(1, 1, 3, 224, 224), ValueError, "shape"),
        (torch.randn(1, 4, 224, 224), ValueError, "shape"),
        (torch.randn(1, 3, 256, 256), ValueError, "resize it to 224x224"),
        (torch.zeros(1, 3, 224, 224, dtype=torch.uint8), TypeError, "floating-point"),
        (np.zeros((1, 3, 224, 224), np.float32), TypeError, "torch.Tensor"),
    ],
)
def test_bad_images(tiny, image, exc, match):
    ids, mask = _tokens(IDS[:1])
    with pytest.raises(exc, match=match):
        tiny(image, ids, mask)


@pytest.mark.parametrize(
    ("ids", "mask", "exc", "match"),
    [
        (
            torch.ones(20, dtype=torch.long),
            torch.ones(20, dtype=torch.long),
            ValueError,
            r"\(B, L\)",
        ),
        (
            torch.ones(1, 1, 20, dtype=torch.long),
            torch.ones(1, 1, 20, dtype=torch.long),
            ValueError,
            r"\(B, L\)",
        ),
        (torch.ones(1, 20), torch.ones(1, 20, dtype=torch.long), TypeError, "integer"),
        (
            torch.ones(1, 20, dtype=torch.long),
            torch.ones(1, 19, dtype=torch.long),
            ValueError,
            "same shape",
        ),
        (
            torch.ones(2, 20, dtype=torch.long),
            torch.ones(2, 20, dtype=torch.long),
            ValueError,
            "batch size",
        ),
        (torch.full((1, 20), 40000), torch.ones(1, 20, dtype=torch.long), ValueError, "30522"),
        (
            torch.ones(1, 100, dtype=torch.long),
            torch.ones(1, 100, dtype=torch.long),
            ValueError,
            "max_position",
        ),
        ([[101, 102]], torch.ones(1, 2, dtype=torch.long), TypeError, "torch.Tensor"),
    ],
)
def test_bad_tokens(tiny, ids, mask, exc, match):
    with pytest.raises(exc, match=match):
        tiny(_image(1, 224), ids, mask)


def test_bad_text_features(tiny):
    ids, mask = _tokens(IDS[:1])
    with pytest.raises(ValueError, match="text_features"):
        tiny(_image(1, 224), ids, mask, text_features=torch.zeros(1, 20, 64))


def test_receptive_gate_needs_square_grid():
    from remotesam.model.swin import VariousReceptive

    with pytest.raises(ValueError, match="square"):
        VariousReceptive()(torch.zeros(1, 12, 4))


def test_rotation_matrix_is_bilinear_rotation():
    """Rows sum to 1 (bilinear weights) and small angles approach the identity."""
    thetas = torch.linspace(-0.69, 0.69, 11)
    mats = rotation_matrix(thetas)
    torch.testing.assert_close(mats.sum(-1), torch.ones(11, 9))
    assert (mats >= -1e-7).all()
    small = rotation_matrix(torch.tensor([1e-6]))[0]
    torch.testing.assert_close(small, torch.eye(9), atol=1e-5, rtol=0)
    assert math.isclose(get_config("remotesam_base").arc_max_angle_deg, 40.0)


def test_custom_config_with_padded_windows_runs_batched():
    """A config whose stage maps (80, 40, 20, 10) are not multiples of the window (12): every
    stage pads, shifted blocks use the padded-grid mask, and the CIM works on a 10x10 map."""
    cfg = get_config("remotesam_tiny").replace(
        name="padded", img_size=320, embed_dim=16, depths=(2, 2, 2, 2), num_heads=(1, 1, 2, 2),
        window_size=12, cim_num_heads=2, cim_key_dim=8, decoder_hidden=32,
    )
    assert cfg.stage_sizes == (80, 40, 20, 10) and cfg.cim_token_counts == (100, 25, 16)
    torch.manual_seed(0)
    model = create_model(cfg)
    ids, mask = _tokens(IDS[:2])
    x = _image(2, 320, seed=4)
    with torch.inference_mode():
        both = model(x, ids, mask)
        one = model(x[1:], ids[1:], mask[1:])
    assert both.shape == (2, 2, 320, 320)
    torch.testing.assert_close(both[1:], one, atol=1e-4, rtol=0)
