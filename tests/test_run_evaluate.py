"""``remotesam.bench.evaluate``: a checkpoint path, a RemoteSAM or a bare network, as a user (or
a training loop) calls it; in-memory models are cached by their weights digest."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import remotesam
from remotesam.bench import EvaluationError, evaluate
from remotesam.bench.cli import main
from remotesam.bench.errors import InputError
from remotesam.bench.records.identity import model_digest
from remotesam.bench.records.results import RunDocument
from remotesam.checkpoint import load_checkpoint

#: runs with --limit here evaluate a subset on purpose; the subset note is tested elsewhere
#: (tests/test_run_runner.py::test_limit_task_options_and_cache_key)
pytestmark = pytest.mark.filterwarnings("ignore:evaluated .* a subset:UserWarning")

BUNDLED = Path(remotesam.__file__).resolve().parent / "checkpoints" / "remotesam_tiny.safetensors"


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from remotesam.synth import generate

    root = tmp_path_factory.mktemp("evaluate-bench") / "synth"
    generate(root, seed=0, n_images=2, image_size=128, n_train=1, n_val=0, landuse_per_class=1)
    return root


def _values(doc: RunDocument) -> dict[tuple[str, str, str], float]:
    return {(r.task, r.dataset, k): m.value for r in doc.results for k, m in r.metrics.items()}


def test_checkpoint_path_gives_the_same_document_as_the_cli(synth_root: Path,
                                                             tmp_path: Path) -> None:
    doc = evaluate(str(BUNDLED), tasks="cnt", data_root=synth_root, limit=2,
                   results_dir=tmp_path / "api", device="cpu", progress=False)
    assert isinstance(doc, RunDocument)
    assert (tmp_path / "api" / "runs" / f"{doc.run_id}.json").is_file()
    (res,) = doc.results
    assert res.task == "cnt" and res.n_evaluated == 2 and res.checkpoint.name == str(BUNDLED)
    assert main(["run", "--ckpt", str(BUNDLED), "--tasks", "cnt", "--limit", "2", "--data-root",
                 str(synth_root), "--results-dir", str(tmp_path / "cli"), "--device", "cpu",
                 "--no-progress", "--no-report", "--run-id", "cli"]) == 0
    cli = RunDocument.load(tmp_path / "cli" / "runs" / "cli.json")
    assert _values(doc) == _values(cli)


def test_remotesam_object_is_cached_by_its_weights_digest(synth_root: Path,
                                                          tmp_path: Path) -> None:
    model = remotesam.RemoteSAM.from_checkpoint(BUNDLED, device="cpu")
    kw = {"tasks": ["cnt"], "data_root": synth_root, "limit": 2, "results_dir": tmp_path / "r",
          "progress": False}
    first = evaluate(model, model_name="tiny-in-memory", **kw)
    assert first is not None
    (res,) = first.results
    assert res.checkpoint.name == "tiny-in-memory"
    assert res.checkpoint.sha256 == model_digest(model)
    assert first.provenance["n_predicted_now"] == 2
    again = evaluate(model, model_name="tiny-in-memory", **kw)
    assert again is not None
    assert again.provenance["n_predicted_now"] == 0 and again.provenance["n_cached"] == 2
    assert _values(again) == _values(first)
    # the same weights from the file score the same
    from_file = evaluate(BUNDLED, device="cpu", **{**kw, "results_dir": tmp_path / "f"})
    assert from_file is not None and _values(from_file) == _values(first)


def test_bare_network_is_wrapped_and_left_in_training_mode(synth_root: Path,
                                                           tmp_path: Path) -> None:
    net = load_checkpoint(BUNDLED)
    net.train()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    kw = {"tasks": "cnt", "data_root": synth_root, "limit": 2, "results_dir": tmp_path / "r",
          "progress": False}
    doc = evaluate(net, **kw)
    assert doc is not None and doc.results[0].checkpoint.name == "RemoteSAMNet"
    assert doc.results[0].n_evaluated == 2
    assert net.training
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k]), k
    # new weights (one value changed) are a new identity: predicted, not taken from the cache
    with torch.no_grad():
        next(net.parameters()).view(-1)[0] += 1.0
    changed = evaluate(net, **kw)
    assert changed is not None
    assert changed.results[0].checkpoint.sha256 != doc.results[0].checkpoint.sha256
    assert changed.provenance["n_predicted_now"] == 2


def test_bad_calls_are_clear_errors(synth_root: Path, tmp_path: Path) -> None:
    with pytest.raises(TypeError, match=r"unknown option\(s\) \['limt'\].*dataset_roots"):
        evaluate(BUNDLED, limt=3)  # type: ignore[call-arg]
    with pytest.raises(InputError, match="expected a checkpoint path or hf:// URI"):
        evaluate(object(), data_root=synth_root, results_dir=tmp_path)
    with pytest.raises(InputError, match="has no `config`"):
        evaluate(torch.nn.Linear(2, 2), data_root=synth_root, results_dir=tmp_path)
    with pytest.raises(InputError, match="limit"):
        evaluate(BUNDLED, limit=0, data_root=synth_root, results_dir=tmp_path)
    with pytest.raises(InputError, match="no such file"):
        evaluate(tmp_path / "missing.pth", data_root=synth_root, results_dir=tmp_path)


def test_errors_raise_after_saving_or_warn(synth_root: Path, tmp_path: Path,
                                           caplog: pytest.LogCaptureFixture) -> None:
    bad = tmp_path / "broken.safetensors"
    bad.write_bytes(b"not a checkpoint at all")
    kw = {"tasks": "cnt", "data_root": synth_root, "limit": 1, "results_dir": tmp_path / "r",
          "device": "cpu", "progress": False}
    with pytest.raises(EvaluationError, match="loading the model failed") as info:
        evaluate(bad, **kw)
    doc = info.value.document
    assert doc is not None and doc.results[0].n_failed == 1
    assert (tmp_path / "r" / "runs" / f"{doc.run_id}.json").is_file()
    with caplog.at_level("WARNING", logger="remotesam.bench.run.evaluate"):
        warned = evaluate(bad, on_error="warn", **kw)
    assert warned is not None and "loading the model failed" in caplog.text


def test_log_to_tensorboard_from_python(synth_root: Path, tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    doc = evaluate(BUNDLED, tasks="cnt", data_root=synth_root, limit=1, device="cpu",
                   results_dir=tmp_path / "r", progress=False, run_id="tb",
                   log_to=f"tensorboard:{tmp_path / 'tb'}")
    assert doc is not None
    acc = EventAccumulator(str(tmp_path / "tb"))
    acc.Reload()
    (res,) = doc.results
    for name, m in res.metrics.items():
        (event,) = acc.Scalars(f"cnt.{res.dataset}/{name}")
        assert event.step == 0 and event.value == pytest.approx(m.value, rel=1e-6, abs=1e-6)


def _zeroed(net: torch.nn.Module) -> torch.nn.Module:
    import copy

    other = copy.deepcopy(net)
    with torch.no_grad():
        for p in other.parameters():
            p.zero_()
    return other


# issue 19 item 10
def test_swapped_net_is_what_predicts_and_what_is_identified(synth_root: Path,
                                                             tmp_path: Path) -> None:
    model = remotesam.RemoteSAM.from_checkpoint(BUNDLED, device="cpu")
    kw = {"tasks": "cnt,vg", "data_root": synth_root, "limit": 2, "results_dir": tmp_path / "r",
          "progress": False}
    first = evaluate(model, model_name="m", **kw)
    assert first is not None
    other = _zeroed(model.net)
    model.net = other
    swapped = evaluate(model, model_name="m", **kw)
    assert swapped is not None
    assert {r.checkpoint.sha256 for r in swapped.results} == {model_digest(other)}
    # what a fresh wrapper around the other network gives, in a results dir of its own
    fresh = evaluate(other, **{**kw, "results_dir": tmp_path / "fresh"})
    assert fresh is not None
    assert _values(swapped) == _values(fresh)
    assert _values(swapped) != _values(first)
    # and a later evaluation of the other network in the shared dir is served the right numbers
    later = evaluate(remotesam.RemoteSAM(other, device="cpu"), model_name="m", **kw)
    assert later is not None and later.provenance["n_predicted_now"] == 0
    assert _values(later) == _values(fresh)


# issue 19 item 10
def test_weights_changed_in_place_are_not_answered_from_stale_text_features(
        synth_root: Path, tmp_path: Path) -> None:
    import copy

    model = remotesam.RemoteSAM.from_checkpoint(BUNDLED, device="cpu")
    kw = {"tasks": "vg", "data_root": synth_root, "limit": 2, "progress": False}
    first = evaluate(model, results_dir=tmp_path / "a", **kw)
    with torch.no_grad():  # a training step that only moves the text encoder
        for p in model.net.text_encoder.parameters():
            p.mul_(-3.0)
    changed = evaluate(model, results_dir=tmp_path / "a", **kw)
    fresh = evaluate(copy.deepcopy(model.net), results_dir=tmp_path / "b", **kw)
    assert first is not None and changed is not None and fresh is not None
    assert changed.provenance["n_predicted_now"] == 2
    assert _values(changed) == _values(fresh)
    assert _values(changed) != _values(first)


# issue 19 item 22
def test_precision_is_applied_to_an_in_memory_remotesam(synth_root: Path,
                                                        tmp_path: Path) -> None:
    model = remotesam.RemoteSAM.from_checkpoint(BUNDLED, device="cpu")
    kw = {"tasks": "cnt", "data_root": synth_root, "limit": 1, "progress": False}
    with pytest.warns(Warning, match="precision bf16"):  # bf16 on purpose
        doc = evaluate(model, precision="bf16", results_dir=tmp_path / "a", **kw)
    assert doc is not None
    assert doc.provenance["config"]["precision"] == "bf16"
    assert model.precision == "fp32" and model.engine.autocast_dtype is None  # left as it was
    with pytest.warns(Warning, match="precision bf16"):
        ref = evaluate(remotesam.RemoteSAM.from_checkpoint(BUNDLED, device="cpu",
                                                           precision="bf16"),
                       results_dir=tmp_path / "b", **kw)
    assert ref is not None and _values(doc) == _values(ref)
    own = evaluate(model, results_dir=tmp_path / "c", **kw)  # no precision: the model's own
    assert own is not None and own.provenance["config"]["precision"] == "fp32"
