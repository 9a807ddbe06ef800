"""Models that output NaN: a checkpoint with non-finite weights is an input error before any
prediction (exit 2, naming the file and the first such tensor); non-finite logits of a model
in memory fail their samples with a clear reason instead of being scored as predictions."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

import remotesam
from remotesam.bench.cli import main
from remotesam.bench.run.evaluate import evaluate
from remotesam.bench.run.runner import default_checkpoint
from remotesam.checkpoint import CheckpointError, load_checkpoint
from remotesam.engine import NonFiniteOutputError

BUNDLED = default_checkpoint()


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from remotesam.synth import generate

    root = tmp_path_factory.mktemp("nonfinite-bench") / "synth"
    generate(root, seed=0, n_images=2, image_size=128, n_train=1, n_val=0, landuse_per_class=1)
    return root


def _nan_checkpoint(path: Path, key_prefix: str) -> str:
    """The bundled checkpoint with NaN in the first tensor whose name starts with the prefix."""
    with safe_open(str(BUNDLED), "pt") as f:
        meta = f.metadata()
        sd = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open, not a dict)
    key = next(k for k in sd if k.startswith(key_prefix))
    sd[key] = torch.full_like(sd[key], float("nan"))
    save_file(sd, str(path), metadata=meta)
    return key


def test_checkpoint_with_nan_weights_is_an_input_error_before_any_prediction(
        synth_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ckpt = tmp_path / "nan.safetensors"
    key = _nan_checkpoint(ckpt, "classifier.")
    with pytest.raises(CheckpointError,
                       match=rf"nan\.safetensors: tensor '{key}' holds \d+ non-finite"):
        load_checkpoint(ckpt)
    rc = main(["run", "--tasks", "det", "--ckpt", str(ckpt), "--data-root", str(synth_root),
               "--results-dir", str(tmp_path / "r"), "--device", "cpu", "--no-progress",
               "--no-report"])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert "nan.safetensors" in err and key in err and "non-finite" in err
    assert "Traceback" not in err
    from remotesam.bench.records.store import ResultsStore

    with ResultsStore(tmp_path / "r", readonly=True) as store:
        assert store.count_predictions() == 0


def test_nan_logits_fail_their_samples_with_the_reason(synth_root: Path, tmp_path: Path) -> None:
    model = remotesam.RemoteSAM.from_checkpoint(BUNDLED, device="cpu")
    with torch.no_grad():
        model.net.classifier.conv2_4.weight.fill_(float("nan"))  # in memory: no load check
    with pytest.raises(NonFiniteOutputError, match=r"non-finite values .* for the prompt"):
        model.detection(str(next((synth_root / "DIORcoco" / "JPEGImages").iterdir())),
                        ["airplane"])
    doc = evaluate(model, tasks="det", data_root=synth_root, results_dir=tmp_path / "r",
                   progress=False, on_error="warn")
    (res,) = doc.results
    assert res.n_evaluated == 0 and res.n_failed == res.n_total > 0
    assert all("the model returned non-finite values (NaN or inf)" in f["error"]
               for f in res.failures)
    assert all(f["kind"] == "permanent" for f in res.failures)
