"""``remotesam-bench run --log-to tensorboard[:DIR],wandb[:PROJECT]``: every metric per
checkpoint, at the checkpoint's training step, read back from the TensorBoard event files and
from the W&B offline run directory (``WANDB_MODE=offline``: nothing leaves the machine)."""

from __future__ import annotations

import json
import shutil
import struct
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

import remotesam
from remotesam.bench.cli import main
from remotesam.bench.records.results import RunDocument
from remotesam.bench.records.trackers import (
    TrackerError,
    TrackerSpec,
    checkpoint_steps,
    parse_log_to,
    step_from_checkpoint,
)
from remotesam.checkpoint import load_checkpoint, save_checkpoint

#: runs with --limit here evaluate a subset on purpose; the subset note is tested elsewhere
#: (tests/test_run_runner.py::test_limit_task_options_and_cache_key)
pytestmark = pytest.mark.filterwarnings("ignore:evaluated .* a subset:UserWarning")

BUNDLED = Path(remotesam.__file__).resolve().parent / "checkpoints" / "remotesam_tiny.safetensors"


def read_tensorboard(log_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """``{tag: [(step, value), ...]}`` of every scalar in the event files under ``log_dir``."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(log_dir), size_guidance={"scalars": 0})
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def _wandb_records(path: Path) -> list[bytes]:
    """The records of a ``.wandb`` file: a 7-byte header (``:W&B``, magic, version), then
    LevelDB-log blocks of 32 KiB holding records of (crc32, length, type) + payload."""
    data = path.read_bytes()
    assert data[:4] == b":W&B", data[:8]
    out: list[bytes] = []
    pos, block, buf = 7, 32768, b""
    while pos + 7 <= len(data):
        left = block - pos % block
        if left < 7:  # a block's tail too short for a header is zero padding
            pos += left
            continue
        _, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        chunk = data[pos + 7:pos + 7 + length]
        pos += 7 + length
        if kind == 1:  # FULL
            out.append(chunk)
        elif kind == 2:  # FIRST
            buf = chunk
        elif kind == 3:  # MIDDLE
            buf += chunk
        elif kind == 4:  # LAST
            out.append(buf + chunk)
            buf = b""
    return out


def read_wandb_offline(wandb_dir: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """``(run info, history rows)`` of the single offline run under ``wandb_dir``."""
    from wandb.proto import wandb_internal_pb2 as pb

    (run_file,) = list(wandb_dir.glob("offline-run-*/run-*.wandb"))
    info: dict[str, Any] = {}
    rows: list[dict[str, Any]] = []
    for raw in _wandb_records(run_file):
        rec = pb.Record()
        rec.ParseFromString(raw)
        kind = rec.WhichOneof("record_type")
        if kind == "run":
            info = {"project": rec.run.project, "name": rec.run.display_name,
                    "config": {i.key: json.loads(i.value_json) for i in rec.run.config.update}}
        elif kind == "history":
            rows.append({(i.key or "/".join(i.nested_key)): json.loads(i.value_json)
                         for i in rec.history.item})
        elif kind == "config":
            info.setdefault("config_updates", {}).update(
                {i.key: json.loads(i.value_json) for i in rec.config.update})
        elif kind == "artifact":
            info.setdefault("artifacts", []).append(
                {"name": rec.artifact.name, "type": rec.artifact.type,
                 "files": {c.path: (c.digest, c.size) for c in rec.artifact.manifest.contents}})
    return info, rows


def test_parse_log_to() -> None:
    assert parse_log_to(["tensorboard:tb/x,wandb"]) == [TrackerSpec("tensorboard", "tb/x"),
                                                       TrackerSpec("wandb", None)]
    assert parse_log_to(["wandb:proj", "TensorBoard"]) == [TrackerSpec("wandb", "proj"),
                                                           TrackerSpec("tensorboard", None)]
    assert parse_log_to([]) == [] and parse_log_to(None) == []
    assert parse_log_to(["mlflow:file:/tmp/x"]) == [TrackerSpec("mlflow", "file:/tmp/x")]
    with pytest.raises(TrackerError, match="unknown tracker 'neptune'"):
        parse_log_to(["neptune"])
    with pytest.raises(TrackerError, match="named twice"):
        parse_log_to(["wandb,wandb:x"])


def test_step_from_names_and_metadata(tmp_path: Path) -> None:
    for name, step in [("runs/a/step_1200.pth", 1200), ("iter-5000.safetensors", 5000),
                       ("global_step800/mp_rank_00_model_states.pt", 800),
                       ("out/checkpoint-500/model.safetensors", 500),
                       ("model_0004999.pth", 4999), ("ckpt_step3.pt", 3),
                       ("split3.pth", None), ("best.safetensors", None)]:
        assert step_from_checkpoint(name) == step, name
    net = load_checkpoint(BUNDLED)
    p = save_checkpoint(net, tmp_path / "step_5.safetensors", dtype=torch.bfloat16,
                        metadata={"step": "42"})
    assert step_from_checkpoint(str(p), p) == 42  # metadata wins over the name
    assert checkpoint_steps([("a/step_2.pt", None), ("a/step_1.pt", None)]) == (
        [2, 1],
        "checkpoint",
    )
    # a missing or repeated step: every checkpoint by index
    assert checkpoint_steps([("step_2.pt", None), ("best.pt", None)]) == ([0, 1], "index")
    assert checkpoint_steps([("a/step_2.pt", None), ("b/step_2.pt", None)]) == ([0, 1], "index")
    with pytest.raises(ValueError, match="written by save_checkpoint itself"):
        save_checkpoint(net, tmp_path / "x.safetensors", metadata={"format": "x"})


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from remotesam.synth import generate

    root = tmp_path_factory.mktemp("trackers-bench") / "synth"
    generate(root, seed=0, n_images=2, image_size=128, n_train=1, n_val=0, landuse_per_class=1)
    return root


@pytest.mark.slow
def test_sweep_logs_every_metric_per_checkpoint_to_tensorboard_and_wandb(
        synth_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    sweep = tmp_path / "sweep"
    sweep.mkdir()
    # step 200 from the file name; step 100 from the metadata (a name without a step)
    shutil.copyfile(BUNDLED, sweep / "step_200.safetensors")
    save_checkpoint(load_checkpoint(BUNDLED), sweep / "early.safetensors", dtype=torch.bfloat16,
                    metadata={"step": "100"})
    results, tb = tmp_path / "results", tmp_path / "tb"
    code = main(["run", "--ckpt", str(sweep / "step_200.safetensors"), "--ckpt",
                 str(sweep / "early.safetensors"), "--tasks", "cnt,mcc", "--limit", "2",
                 "--data-root", str(synth_root), "--results-dir", str(results), "--device",
                 "cpu", "--no-progress", "--no-report", "--run-id", "sweep",
                 "--log-to", f"tensorboard:{tb},wandb:remotesam-test"])
    assert code == 0, capsys.readouterr().err
    doc = RunDocument.load(results / "runs" / "sweep.json")
    expected: dict[str, dict[int, float]] = {}
    for r in doc.results:
        step = 200 if r.checkpoint.name.endswith("step_200.safetensors") else 100
        for name, m in r.metrics.items():
            expected.setdefault(f"{r.task}.{r.dataset}/{name}", {})[step] = m.value
        expected.setdefault(f"{r.task}.{r.dataset}/n_evaluated", {})[step] = r.n_evaluated
        expected.setdefault(f"{r.task}.{r.dataset}/n_failed", {})[step] = r.n_failed
    assert len(doc.results) == 4 and len(expected) > 6

    scalars = read_tensorboard(tb)
    for tag, by_step in expected.items():
        assert [s for s, _ in scalars[tag]] == [100, 200], tag
        for s, v in scalars[tag]:
            assert v == pytest.approx(by_step[s], rel=1e-6, abs=1e-6), (tag, s)

    info, rows = read_wandb_offline(results / "wandb")
    assert info["project"] == "remotesam-test" and info["name"] == "sweep"
    assert info["config"]["run_id"] == "sweep" and info["config"]["limit"] == 2
    assert [row["_step"] for row in rows] == [100, 200]
    for row in rows:
        for tag, by_step in expected.items():
            assert row[tag] == pytest.approx(by_step[row["_step"]], rel=1e-6, abs=1e-6), tag


@pytest.mark.parametrize("kind", ["tensorboard", "wandb", "mlflow"])
def test_missing_extra_is_a_clear_error_before_any_work(
        kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, kind, None)  # import fails as if not installed
    code = main(["run", "--log-to", kind, "--results-dir", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 2
    assert f"optional extra '{kind}'" in err and f"pip install 'remotesam-bench[{kind}]'" in err
    assert not (tmp_path / "r").exists()  # nothing was written: it failed before the run


def _md5_b64(path: Path) -> str:
    import base64
    import hashlib

    return base64.b64encode(hashlib.md5(path.read_bytes()).digest()).decode()


@pytest.mark.slow
def test_per_sample_tables_report_and_leaderboard_to_wandb_and_mlflow(
        synth_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("mlflow", reason="the optional extra remotesam-bench[mlflow] is not "
                        "installed (pip install 'remotesam-bench[mlflow]')")
    from mlflow.tracking import MlflowClient

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "wandb_dir"))
    monkeypatch.setenv("WANDB_DATA_DIR", str(tmp_path / "wandb_data"))
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)
    results = tmp_path / "results"
    code = main(["run", "--tasks", "cnt,mcc", "--limit", "2", "--data-root", str(synth_root),
                 "--results-dir", str(results), "--device", "cpu", "--no-progress",
                 "--no-report", "--run-id", "tables", "--tracker-rows", "1",
                 "--log-to", "wandb,mlflow"])
    assert code == 0, capsys.readouterr().err
    doc = RunDocument.load(results / "runs" / "tables.json")
    files = {n: results / "runs" / f"tables.{n}"
             for n in ("report.html", "leaderboard.md", "leaderboard.html")}
    assert all(p.is_file() for p in files.values())
    first_id = {f"{r.task}.{r.dataset}": r.per_sample[next(iter(r.per_sample))]["sample_ids"][0]
                for r in doc.results}

    # W&B: its files under $WANDB_DIR, not the results directory
    assert not (results / "wandb").exists()
    info, rows = read_wandb_offline(tmp_path / "wandb_dir" / "wandb")
    run_dir = next((tmp_path / "wandb_dir" / "wandb").glob("offline-run-*"))
    for task, sid in first_id.items():
        ref = rows[0][f"samples/{task}/path"]
        assert rows[0][f"samples/{task}/nrows"] == 1  # capped by --tracker-rows
        table = json.loads((run_dir / "files" / ref).read_text())
        assert table["columns"][:5] == ["sample_id", "image", "target", "prediction", "error"]
        assert [row[0] for row in table["data"]] == [sid]
        assert table["data"][0][3] is not None  # the stored prediction, as JSON
    (report,) = [a for a in info["artifacts"] if a["type"] == "report"]
    assert report["name"] == "remotesam-bench-tables"
    assert report["files"] == {p.name: (_md5_b64(p), p.stat().st_size) for p in files.values()}
    params = info["config_updates"]
    assert "sha256" in params["model"] and params["n_failed"] == 0
    assert params["data"].startswith("synthetic")

    # MLflow: the file store under the results directory, read back with MlflowClient
    client = MlflowClient(tracking_uri=(results / "mlruns").resolve().as_uri())
    exp = client.get_experiment_by_name("remotesam-bench")
    (run,) = client.search_runs([exp.experiment_id])
    assert run.info.run_name == "tables" and run.info.status == "FINISHED"
    for r in doc.results:
        for name, m in r.metrics.items():
            assert run.data.metrics[f"{r.task}.{r.dataset}/{name}"] == pytest.approx(
                m.value, rel=1e-9, abs=1e-12)
    assert run.data.params["n_evaluated"] == str(sum(r.n_evaluated for r in doc.results))
    assert "sha256" in run.data.params["model"] and run.data.params["n_failed"] == "0"
    assert run.data.params["option.limit"] == "2"
    arts = {a.path for a in client.list_artifacts(run.info.run_id, "reports")}
    assert arts == {f"reports/tables.{n}" for n in files}
    for task, sid in first_id.items():
        local = client.download_artifacts(run.info.run_id, f"samples/{task}.json",
                                          str(tmp_path / "dl"))
        table = json.loads(Path(local).read_text())
        assert [row[0] for row in table["data"]] == [sid]
