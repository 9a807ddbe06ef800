"""Checkpoint reading / writing: official layout, safetensors, strict keys, bad files."""

from __future__ import annotations

import argparse
import json
import logging
import pickle
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from remotesam.checkpoint import (
    CheckpointError,
    infer_config,
    load_checkpoint,
    read_state_dict,
    safetensors_metadata,
    save_checkpoint,
    save_official,
)
from remotesam.model import RemoteSAMNet, get_config
from remotesam.models import create_model

IDS = torch.tensor([[101, 1996, 13297, 2006, 1996, 2157, 102] + [0] * 13,
                    [101, 4049, 102] + [0] * 17])
MASK = (IDS != 0).long()


@pytest.fixture(scope="module")
def tiny() -> RemoteSAMNet:
    torch.manual_seed(1)
    model = create_model("remotesam_tiny")
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
                m.num_batches_tracked.fill_(7)
    return model.eval()


@pytest.fixture(scope="module")
def image() -> torch.Tensor:
    return torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))


@pytest.fixture(scope="module")
def reference_logits(tiny, image) -> torch.Tensor:
    with torch.inference_mode():
        return tiny(image, IDS, MASK)


def _logits(model: RemoteSAMNet, image: torch.Tensor) -> torch.Tensor:
    with torch.inference_mode():
        return model(image, IDS, MASK)


def test_official_layout_round_trip(tmp_path, tiny, image, reference_logits):
    path = save_official(tiny, tmp_path / "ckpt.pth")
    raw = torch.load(path, weights_only=True)
    assert set(raw) == {"model"}
    model = load_checkpoint(path)  # config inferred from shapes -> the registered tiny config
    assert model.config == tiny.config and not model.training
    assert model.ignored_checkpoint_keys == ()
    torch.testing.assert_close(_logits(model, image), reference_logits, atol=0, rtol=0)
    model2 = load_checkpoint(path, "remotesam_tiny")
    torch.testing.assert_close(_logits(model2, image), reference_logits, atol=0, rtol=0)
    model3 = create_model("remotesam_tiny", checkpoint=path)
    torch.testing.assert_close(_logits(model3, image), reference_logits, atol=0, rtol=0)


def test_the_network_package_does_not_import_the_checkpoint_loader():
    """Layers: remotesam.model (network) < remotesam.checkpoint < remotesam.models."""
    import subprocess
    import sys
    from pathlib import Path

    import remotesam.model

    pkg = Path(remotesam.model.__file__).parent
    for f in sorted(pkg.glob("*.py")):
        imports = [ln for ln in f.read_text().splitlines()
                   if ln.lstrip().startswith(("import ", "from "))]
        assert not [ln for ln in imports if "remotesam.checkpoint" in ln], f
        # remotesam.models only inside the lazy compatibility __getattr__, never at import time
        assert not [ln for ln in imports if "remotesam.models" in ln and ln == ln.lstrip()], f
    probe = ("import sys, remotesam.model; import remotesam.model.network; "
             "print('remotesam.checkpoint' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True, timeout=300)
    assert out.stdout.strip() == "False"
    # the public names keep working
    import remotesam
    import remotesam.model

    assert create_model is remotesam.create_model and not hasattr(remotesam.model, "create_model")
    assert not create_model("remotesam_tiny").training


def test_safetensors_round_trip(tmp_path, tiny, image, reference_logits):
    path = save_checkpoint(tiny, tmp_path / "w.safetensors")
    assert json.loads((tmp_path / "w.json").read_text())["name"] == "remotesam_tiny"
    model = load_checkpoint(path)
    assert model.config == tiny.config
    torch.testing.assert_close(_logits(model, image), reference_logits, atol=0, rtol=0)
    sd = read_state_dict(path)
    assert set(sd) == set(tiny.state_dict())


def test_safetensors_bf16_is_half_size_and_close(tmp_path, tiny, image, reference_logits):
    p32 = save_checkpoint(tiny, tmp_path / "f32.safetensors")
    p16 = save_checkpoint(tiny, tmp_path / "bf16.safetensors", dtype=torch.bfloat16)
    assert p16.stat().st_size < 0.55 * p32.stat().st_size
    model = load_checkpoint(p16)
    assert next(model.parameters()).dtype == torch.float32
    bf = {k: v.to(torch.bfloat16).float() if v.is_floating_point() else v
          for k, v in tiny.state_dict().items()}
    for k, v in model.state_dict().items():
        assert torch.equal(v, bf[k]), k


def test_bare_state_dict_and_training_extras(tmp_path, tiny, image, reference_logits, caplog):
    sd = dict(tiny.state_dict())
    torch.save(sd, tmp_path / "bare.pth")
    torch.testing.assert_close(
        _logits(load_checkpoint(tmp_path / "bare.pth"), image), reference_logits
    )
    # HF-transformers BERT keys and the official training extras (argparse args, optimizer)
    sd["text_encoder.embeddings.position_ids"] = torch.arange(64)[None]
    sd["text_encoder.pooler.dense.weight"] = torch.zeros(64, 64)
    sd["text_encoder.pooler.dense.bias"] = torch.zeros(64)
    torch.save({"model": sd, "args": argparse.Namespace(lr=1e-4), "epoch": 3,
                "optimizer": {"state": {}, "param_groups": [{"lr": 0.1}]}}, tmp_path / "full.pth")
    with caplog.at_level(logging.INFO, logger="remotesam.checkpoint"):
        model = load_checkpoint(tmp_path / "full.pth")
    assert model.ignored_checkpoint_keys == (
        "text_encoder.embeddings.position_ids", "text_encoder.pooler.dense.bias",
        "text_encoder.pooler.dense.weight",
    )
    assert "ignored 3 BERT-version key(s)" in caplog.text
    torch.testing.assert_close(_logits(model, image), reference_logits, atol=0, rtol=0)


def test_ddp_prefix_is_stripped(tmp_path, tiny, image, reference_logits):
    torch.save(
        {"model": {f"module.{k}": v for k, v in tiny.state_dict().items()}}, tmp_path / "ddp.pth"
    )
    torch.testing.assert_close(
        _logits(load_checkpoint(tmp_path / "ddp.pth"), image), reference_logits
    )


def test_infer_config_base_and_parity():
    for name in ("remotesam_base", "remotesam_parity", "remotesam_tiny"):
        with torch.device("meta"):
            sd = create_model(name).state_dict()
        assert infer_config(sd) == get_config(name)
    with torch.device("meta"):
        sd = create_model("remotesam_base", depths=(2, 2, 6, 2)).state_dict()
    cfg = infer_config(sd)
    assert cfg.name == "inferred" and cfg.depths == (2, 2, 6, 2) and cfg.text_heads == 12


# --- bad input ------------------------------------------------------------------------------------


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nope\.pth"):
        load_checkpoint(tmp_path / "nope.pth")


def test_not_a_checkpoint(tmp_path):
    p = tmp_path / "notes.pth"
    p.write_text("these are not weights\n")
    with pytest.raises(CheckpointError, match="not a checkpoint file"):
        load_checkpoint(p)
    q = tmp_path / "broken.pth"
    q.write_bytes(b"PK\x03\x04" + b"\x00" * 50)
    with pytest.raises(CheckpointError, match="not a readable torch checkpoint"):
        read_state_dict(q)
    r = tmp_path / "list.pth"
    torch.save([torch.zeros(2)], r)
    with pytest.raises(CheckpointError, match="not a state dict"):
        read_state_dict(r)
    s = tmp_path / "nontensor.pth"
    torch.save({"model": {"a": 1, "b": torch.zeros(1)}}, s)
    with pytest.raises(CheckpointError, match="non-tensor"):
        read_state_dict(s)


class _Evil:
    marker: Path

    def __reduce__(self):
        return (Path.touch, (self.marker,))


@pytest.mark.parametrize("how", ["torch.save", "raw pickle"])
def test_malicious_pickle_is_refused(tmp_path, how):
    marker = tmp_path / "pwned"
    evil = _Evil()
    evil.marker = marker
    p = tmp_path / "evil.pth"
    payload = {"model": {"x": torch.zeros(1)}, "payload": evil}
    if how == "torch.save":
        torch.save(payload, p)
    else:
        p.write_bytes(pickle.dumps(payload, protocol=2))
    with pytest.raises(CheckpointError, match="refused to unpickle"):
        load_checkpoint(p, "remotesam_tiny")
    assert not marker.exists()


def _expect_arch_error(tmp_path, sd, *patterns):
    p = tmp_path / "arch.pth"
    torch.save({"model": sd}, p)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(p, "remotesam_tiny")
    msg = str(info.value)
    assert "Nothing was loaded" in msg and "remotesam_tiny" in msg
    for pat in patterns:
        assert pat in msg, (pat, msg)
    return msg


def test_missing_keys(tmp_path, tiny):
    sd = dict(tiny.state_dict())
    for k in [k for k in sd if k.startswith("classifier.conv2_4.")]:
        del sd[k]
    _expect_arch_error(tmp_path, sd, "missing keys: 7 (classifier.conv2_4.weight")


def test_unexpected_keys(tmp_path, tiny):
    sd = dict(tiny.state_dict())
    sd["backbone.layers.0.blocks.0.attn.qkv.weight_renamed"] = sd.pop(
        "backbone.layers.0.blocks.0.attn.qkv.weight"
    )
    sd["text_encoder.embeddings.token_type_ids"] = torch.zeros(1, 64, dtype=torch.long)
    _expect_arch_error(
        tmp_path, sd, "missing keys: 1 (backbone.layers.0.blocks.0.attn.qkv.weight)",
        "unexpected keys: 2", "qkv.weight_renamed", "text_encoder.embeddings.token_type_ids",
    )


def test_mis_shaped_keys(tmp_path, tiny):
    sd = dict(tiny.state_dict())
    sd["classifier.conv1_1.weight"] = torch.zeros(3, 64, 1, 1)
    sd["classifier.bn1_4.num_batches_tracked"] = torch.tensor(1.5)
    _expect_arch_error(tmp_path, sd, "mis-shaped tensors: 2",
                       "classifier.conv1_1.weight: checkpoint [3, 64, 1, 1] vs model [2, 64, 1, 1]")


def test_wrong_architecture_never_half_loads(tmp_path, tiny):
    """A base-model layout loaded as tiny fails before any copy; many errors are summarised."""
    with torch.device("meta"):
        base = create_model("remotesam_parity").state_dict()
    sd = {k: torch.zeros(1) for k in list(base)[:40]}
    msg = _expect_arch_error(tmp_path, sd, "missing keys:", "unexpected keys:", ", ...")
    assert len(msg) < 3000


def test_safetensors_without_config_infers_it(tmp_path, tiny, image, reference_logits):
    p = tmp_path / "plain.safetensors"
    save_file({k: v.contiguous() for k, v in tiny.state_dict().items()}, str(p))
    model = load_checkpoint(p)
    assert model.config.name == "remotesam_tiny"
    torch.testing.assert_close(_logits(model, image), reference_logits, atol=0, rtol=0)


def test_corrupt_safetensors(tmp_path, tiny):
    p = save_checkpoint(tiny, tmp_path / "c.safetensors")
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"c\.safetensors"):
        load_checkpoint(p)


def test_safetensors_metadata_reads_the_header_and_tolerates_bad_files(tmp_path, tiny):
    p = save_checkpoint(tiny, tmp_path / "m.safetensors", metadata={"step": "42"})
    meta = safetensors_metadata(p)
    assert meta["step"] == "42" and json.loads(meta["remotesam_config"])["name"] == "remotesam_tiny"
    plain = tmp_path / "plain.safetensors"
    save_file({"w": torch.zeros(2)}, str(plain))
    assert safetensors_metadata(plain) == {}
    data = p.read_bytes()
    for name, content in [("trunc.safetensors", data[:6]), ("header.safetensors", data[:40]),
                          ("text.safetensors", b"not a safetensors file at all"),
                          ("huge.safetensors", (2**62).to_bytes(8, "little") + b"{}")]:
        (tmp_path / name).write_bytes(content)
        assert safetensors_metadata(tmp_path / name) == {}, name
    assert safetensors_metadata(tmp_path / "missing.safetensors") == {}


def test_legacy_torch_format_and_error_type(tmp_path, tiny, image, reference_logits):
    p = tmp_path / "legacy.pth"
    torch.save({"model": tiny.state_dict()}, p, _use_new_zipfile_serialization=False)
    torch.testing.assert_close(_logits(load_checkpoint(p), image), reference_logits, atol=0, rtol=0)
    assert issubclass(CheckpointError, ValueError)
