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
