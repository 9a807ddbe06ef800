"""The constant reference predictors of remotesam.testing (floors for the embedded benchmark)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from remotesam.checkpoint import save_checkpoint
from remotesam.models import create_model
from remotesam.testing import constant_background_model, constant_foreground_model


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "tiny.safetensors"
    save_checkpoint(create_model("remotesam_tiny", img_size=64), path)
    return path


def test_constant_models_ignore_the_image(ckpt):
    image = np.random.default_rng(0).integers(0, 256, (50, 70, 3), dtype=np.uint8)
    fg = constant_foreground_model(ckpt, device="cpu")
    bg = constant_background_model(ckpt, device="cpu")
    assert fg.referring_seg(image, "the red car").mask.all()
    assert not bg.referring_seg(image, "the red car").mask.any()
    det = fg.detection(image, ["airplane", "ship"])
    np.testing.assert_array_equal(det.boxes, [[0, 0, 70, 50], [0, 0, 70, 50]])
    assert len(bg.detection(image, ["airplane"])) == 0
    assert fg.multi_label_cls(image, ["a", "b"]).labels == ("a", "b")
    assert bg.multi_class_cls(image, ["a", "b"]).label is None
