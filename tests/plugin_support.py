"""Helpers shared by the task-plugin tests (``tests/test_plugin_*.py``).

* :func:`tiny_predictor`: a :class:`remotesam.RemoteSAM` around a random-init ``remotesam_tiny``
  network (seeded, CPU);
* :func:`check_plugin_tiny`: ``remotesam.testing.check_task_plugin`` (predict + score) of a
  plugin class with that predictor on one sample;
* :func:`run_harness_tiny`: a whole run through the harness (``remotesam.bench.run``) with the
  tiny model saved as a checkpoint; returns the one task result.

Our own modules are imported plainly: an import error in them fails the calling test.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest


def tiny_predictor() -> Any:
    """``RemoteSAM(create_model("remotesam_tiny"))`` with weights drawn after ``manual_seed(0)``."""
    torch = pytest.importorskip("torch")
    from remotesam import RemoteSAM, create_model

    torch.manual_seed(0)
    return RemoteSAM(create_model("remotesam_tiny"))


def check_plugin_tiny(task_cls: type, dataset_root: Path, **kwargs: Any) -> None:
    """``check_task_plugin(task_cls, dataset_root, model=<tiny predictor>, n_samples=1,
    **kwargs)``."""
    from remotesam import testing
    model = tiny_predictor()
    testing.check_task_plugin(
        task_cls, dataset_root=dataset_root, model=model, n_samples=1, **kwargs
    )


def run_harness_tiny(
    tmp_path: Path, task: str, root: Path, split: str | None = None, limit: int | None = None
) -> Any:
    """Run ``task`` (``"<task>.<dataset>"``) through the harness with a random-init tiny model.

    The checkpoint and the results go under ``tmp_path``; asserts the run had no task-level
    error and returns its only :class:`remotesam.bench.records.results` task result.
    """
    torch = pytest.importorskip("torch")
    from remotesam import create_model, save_checkpoint
    from remotesam.bench import run as runner

    torch.manual_seed(0)
    ckpt = save_checkpoint(create_model("remotesam_tiny"), tmp_path / "ckpt" / "tiny.safetensors")
    config = runner.RunConfig(
        tasks=[task], checkpoints=[str(ckpt)], dataset_roots={task: root}, split=split, limit=limit,
        results_dir=tmp_path / "results", device="cpu", batch_size=1, progress=False,
    )
    # a limit is a deliberate subset: its note stays in the outcome, not a Python warning
    out = runner.run(config, on_warning=lambda note: None)
    assert out.errors == []
    (res,) = out.document.results
    return res


class FakeEngine:
    """An engine for test fakes that answer per prompt: ``dense(image, prompt)`` returns an
    object with ``mask`` ``(H, W)`` uint8 and, optionally, ``prob`` ``(H, W)`` float32,
    ``mask_net`` ``(S, S)`` uint8 and ``prob_net`` ``(S, S)`` float32 (a
    :class:`remotesam.types.ReferringMask`); missing network-size outputs are resized from the
    original-size ones (nearest). Built-in plugins predict through requests and ``reduce``, so
    a fake model that implements a task method gets an ``engine = FakeEngine(...)`` and the
    plugins' own ``reduce`` turns its masks into predictions, as with the real network.
    """

    batch_size = 8
    prefetch_workers = 1
    channels_last = False
    compiled = False
    precision = "fp32"
    device = "cpu"

    def __init__(self, dense: Any, net_size: int = 64) -> None:
        self.dense = dense
        self.net_size = net_size

    def configure(self, **_: Any) -> None:
        """Nothing to configure (the harness applies its GPU options here)."""

    def resolve_boundary(self, boundary: bool | None) -> bool:
        return bool(boundary)

    def clear_text_cache(self) -> None:
        """No text features are cached."""

    def answer(self, request: Any) -> Any:
        import numpy as np

        from remotesam.bench.kit import resize_nearest
        from remotesam.engine import Answer
        from remotesam.image import load_image

        image = load_image(request.image)
        h, w = image.shape[:2]
        s = self.net_size
        outs = [self.dense(image, p) for p in request.prompts]
        mask = np.stack([np.asarray(o.mask, np.uint8) for o in outs])
        prob = np.stack([np.asarray(getattr(o, "prob", None) if getattr(o, "prob", None)
                                    is not None else o.mask, np.float32) for o in outs])
        mask_net = np.stack([np.asarray(o.mask_net, np.uint8)
                             if getattr(o, "mask_net", None) is not None
                             else resize_nearest(np.asarray(o.mask, np.uint8), s) for o in outs])
        prob_net = np.stack([np.asarray(o.prob_net, np.float32)
                             if getattr(o, "prob_net", None) is not None
                             else mask_net[i].astype(np.float32) for i, o in enumerate(outs)])
        return Answer(prompts=tuple(request.prompts), hw=(h, w), net_size=s,
                      mask_net=mask_net, prob_net=prob_net, mask=mask, prob=prob,
                      gmp=prob_net.reshape(len(outs), -1).max(1).astype(np.float64),
                      gap=prob_net.reshape(len(outs), -1).mean(1).astype(np.float64))

    def run(self, requests: Any, lookahead: int | None = None) -> Any:
        for token, request in requests:
            try:
                yield token, self.answer(request)
            except Exception as e:  # that request fails alone, as in the real engine
                yield token, e
