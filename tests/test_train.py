"""remotesam-train: the recipe learns, resume is exact, DDP (gloo, 2 processes) equals one
process on the same global batch, and bad data gives clear errors."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from remotesam.synth import generate
from remotesam.train import (
    TrainConfig,
    TrainDataError,
    TrainError,
    read_refer,
    safe_load_refs,
    train,
)
from remotesam.train.cli import main as train_main
from remotesam.train.data import _augment
from remotesam.train.loss import segmentation_loss

#: runs with --limit here evaluate a subset on purpose; the subset note is tested elsewhere
#: (tests/test_run_runner.py::test_limit_task_options_and_cache_key)
pytestmark = pytest.mark.filterwarnings("ignore:evaluated .* a subset:UserWarning")

# the tiny config at 64 px, no stochastic layers: fast and exactly reproducible
FAST = {"img_size": 64, "drop_path_rate": 0.0, "text_dropout": 0.0, "arc_dropout": 0.0}


@pytest.fixture(autouse=True)
def _one_thread() -> object:
    # the tiny model is far faster on one thread on a shared 2-core machine (no OpenMP spinning)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("train") / "synth"
    generate(root, seed=0, n_images=2, image_size=128, n_train=2, n_val=1, landuse_per_class=1)
    return root


def _cfg(root: Path, out: Path, **kw: object) -> TrainConfig:
    base: dict[str, object] = {
        "data_root": str(root),
        "output_dir": str(out),
        "model_overrides": dict(FAST),
        "batch_size": 2,
        "val_interval": 0,
        "progress": False,
        "log_interval": 1,
        "text_trainable": "all",
    }
    base.update(kw)
    return TrainConfig(**base)  # type: ignore[arg-type]


def test_loss_function_matches_its_definition() -> None:
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 2, 8, 8, generator=g)
    target = (torch.rand(3, 8, 8, generator=g) > 0.6).long()
    w = torch.tensor([0.9, 1.1])
    per = []
    for b in range(3):
        ce = torch.nn.functional.cross_entropy(logits[b : b + 1], target[b : b + 1], weight=w)
        p = logits[b].softmax(0)[1]
        gt = target[b].float()
        dice = 1 - (2 * (p * gt).sum() + 1) / (p.sum() + gt.sum() + 1)
        per.append(0.9 * ce + 0.1 * dice)
    torch.testing.assert_close(segmentation_loss(logits, target), torch.stack(per).mean())
    with pytest.raises(ValueError, match="logits must be"):
        segmentation_loss(logits[:, :1], target)


@pytest.mark.slow
def test_loss_decreases_on_the_tiny_config(data_root: Path, tmp_path: Path) -> None:
    res = train(
        _cfg(data_root, tmp_path / "run", max_steps=8, lr=1e-3, val_interval=8, max_val_samples=4)
    )
    losses = [v for _, v in res.losses]
    assert len(res.val) == 1 and res.val[0][0] == 8 and 0.0 <= res.val[0][1] <= 1.0
    assert (tmp_path / "run" / "best.safetensors").is_file()
    assert len(losses) == 8 and all(np.isfinite(losses))
    assert np.mean(losses[-3:]) < np.mean(losses[:3]) - 0.02, losses
    # both checkpoint layouts load through the public loader and agree
    from remotesam.checkpoint import load_checkpoint

    a = load_checkpoint(res.checkpoint)
    b = load_checkpoint(res.official_checkpoint, a.config)
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb and torch.equal(va, vb)
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log if "loss" in r] == list(range(1, 9))
    # the state file is weights_only-safe
    st = torch.load(res.state_file, weights_only=True)
    assert st["step"] == 8


@pytest.mark.slow
def test_resume_continues_with_the_same_state(data_root: Path, tmp_path: Path) -> None:
    kw = {
        "max_steps": 4,
        "lr": 5e-4,
        "model_overrides": {**FAST, "drop_path_rate": 0.2, "text_dropout": 0.1},
    }
    full = train(_cfg(data_root, tmp_path / "full", **kw))
    first = train(_cfg(data_root, tmp_path / "part", stop_at_step=2, **kw))
    assert first.step == 2
    rest = train(_cfg(data_root, tmp_path / "part", resume=str(tmp_path / "part"), **kw))
    assert rest.step == 4 and [s for s, _ in rest.losses] == [3, 4]
    np.testing.assert_allclose(
        [v for _, v in first.losses + rest.losses], [v for _, v in full.losses], rtol=0, atol=1e-6
    )
    from safetensors.torch import load_file

    a = load_file(str(full.checkpoint))
    b = load_file(str(rest.checkpoint))
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=1e-6, msg=k)
    # a resume with another batch size is refused, with the reason
    with pytest.raises(TrainError, match="batch_size"):
        train(
            _cfg(
                data_root,
                tmp_path / "part",
                resume=str(tmp_path / "part"),
                **{**kw, "batch_size": 3},
            )
        )


@pytest.mark.slow
@pytest.mark.distributed
def test_two_process_gloo_matches_one_process(data_root: Path, tmp_path: Path) -> None:
    common = [
        "--data-root",
        str(data_root),
        "--steps",
        "2",
        "--val-split",
        "none",
        "--log-interval",
        "1",
        "--no-progress",
        "--text-trainable",
        "all",
        "--threads",
        "1",
    ]
    for k, v in FAST.items():
        common += ["--model-override", f"{k}={v}"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    one = subprocess.run(
        [
            sys.executable,
            "-m",
            "remotesam.train",
            *common,
            "--batch-size",
            "4",
            "--output-dir",
            str(tmp_path / "one"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert one.returncode == 0, one.stderr[-3000:]
    two = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node",
            "2",
            "-m",
            "remotesam.train",
            *common,
            "--batch-size",
            "2",
            "--output-dir",
            str(tmp_path / "two"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert two.returncode == 0, two.stderr[-3000:]

    def losses(d: Path) -> list[float]:
        return [
            json.loads(x)["loss"]
            for x in (d / "log.jsonl").read_text().splitlines()
            if '"loss"' in x
        ]

    l1, l2 = losses(tmp_path / "one"), losses(tmp_path / "two")
    assert len(l1) == len(l2) == 2
    assert l2[0] == pytest.approx(l1[0], rel=1e-5, abs=1e-6)  # same global batch, synced BatchNorm
    assert l2[1] == pytest.approx(l1[1], rel=1e-3)  # after one data-parallel update


def test_data_is_identical_with_worker_processes(data_root: Path) -> None:
    from remotesam.model import get_config
    from remotesam.text import Tokenizer
    from remotesam.train.data import ReferTrainDataset, locate_refer
    from remotesam.train.distributed import DistInfo
    from remotesam.train.trainer import _epoch_batches, _loader

    refs, inst, images = locate_refer(data_root)
    cfg = get_config("remotesam_tiny", img_size=64)
    ds = ReferTrainDataset(
        read_refer(refs, inst, "train"),
        images,
        64,
        Tokenizer(),
        cfg.image_mean,
        cfg.image_std,
        augment=True,
        seed=3,
    )
    batches = _epoch_batches(len(ds), 1, 3, 2, DistInfo())[:3]
    a = list(_loader(ds, batches, 0))
    b = list(_loader(ds, batches, 2))
    for x, y in zip(a, b, strict=True):
        for k in x:
            assert torch.equal(x[k], y[k]), k
    # two ranks split the epoch's permutation without overlap
    r0 = [i for bt in _epoch_batches(len(ds), 1, 3, 2, DistInfo(0, 2)) for i, _ in bt]
    r1 = [i for bt in _epoch_batches(len(ds), 1, 3, 2, DistInfo(1, 2)) for i, _ in bt]
    assert len(r0) == len(r1) and set(r0) | set(r1) == set(range(len(ds)))


def test_bf16_autocast_step(data_root: Path, tmp_path: Path) -> None:
    res = train(
        _cfg(data_root, tmp_path / "bf16", max_steps=1, precision="bf16", save_dtype="bf16")
    )
    assert res.step == 1 and np.isfinite(res.losses[0][1])
    from safetensors.torch import load_file

    weights = load_file(str(res.checkpoint))
    assert all(v.dtype == torch.bfloat16 for v in weights.values() if v.dtype.is_floating_point)
    # bf16 weights cannot seed an exact resume: refused with the reason
    with pytest.raises(TrainError, match="fp32"):
        train(_cfg(data_root, tmp_path / "bf16", max_steps=2, resume="auto"))


def test_zero_training_samples_is_a_clear_error(data_root: Path, tmp_path: Path) -> None:
    with pytest.raises(TrainError, match="zero samples"):
        train(_cfg(data_root, tmp_path / "r", train_split="nosuchsplit", max_steps=1))
    assert (
        train_main(
            [
                "--data-root",
                str(data_root),
                "--train-split",
                "nosuchsplit",
                "--no-progress",
                "--output-dir",
                str(tmp_path / "c"),
            ]
        )
        == 2
    )


def test_missing_data_root_and_bad_knobs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(TrainError, match="no REFER dataset"):
        train(TrainConfig(data_root=str(tmp_path), progress=False))
    with pytest.raises(TrainError, match="batch_size"):
        train(TrainConfig(data_root=str(tmp_path), batch_size=0))
    with pytest.raises(TrainError, match="precision"):
        train(TrainConfig(data_root=str(tmp_path), precision="fp16"))
    assert train_main(["--data-root", str(tmp_path)]) == 2
    assert "no REFER dataset" in capsys.readouterr().err


def _read_tensorboard(log_dir: Path) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(log_dir), size_guidance={"scalars": 0})
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


@pytest.mark.slow
def test_eval_every_logs_benchmark_metrics_to_tensorboard(
    data_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from remotesam.bench.records.results import RunDocument
    from remotesam.bench.records.trackers import step_from_checkpoint

    out, tb = tmp_path / "run", tmp_path / "tb"
    overrides = [x for k, v in FAST.items() for x in ("--model-override", f"{k}={v}")]
    code = train_main(["--data-root", str(data_root), "--output-dir", str(out), "--steps", "4",
                       "--batch-size", "2", "--val-interval", "0", "--log-interval", "1",
                       "--text-trainable", "all", "--no-progress", *overrides,
                       "--eval-every", "2", "--eval-tasks", "ref,det", "--eval-limit", "2",
                       "--log-to", f"tensorboard:{tb}"])
    text = capsys.readouterr()
    assert code == 0, text.err
    assert "evaluation at step 4" in text.out
    scalars = _read_tensorboard(tb)
    assert [s for s, _ in scalars["train/loss"]] == [1, 2, 3, 4]
    evals = {t: v for t, v in scalars.items() if t.startswith("eval/")}
    assert any(t.startswith("eval/ref.") and t.endswith("/oIoU") for t in evals), sorted(scalars)
    assert any(t.startswith("eval/det.") and t.endswith("/mAP50") for t in evals), sorted(scalars)
    for tag, points in evals.items():
        assert [s for s, _ in points] == [2, 4], tag
    # the training log holds the same numbers; every evaluation is a run document
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    logged = {r["step"]: r for r in log if any(k.startswith("eval/") for k in r)}
    assert sorted(logged) == [2, 4]
    for tag, points in evals.items():
        for step, value in points:
            assert value == pytest.approx(logged[step][tag], rel=1e-6, abs=1e-6), (tag, step)
    docs = [RunDocument.load(p) for p in sorted((out / "eval" / "runs").glob("*.json"))]
    assert sorted(d.results[0].checkpoint.name for d in docs) == ["step_2", "step_4"]
    assert all(r.n_evaluated == 2 for d in docs for r in d.results)
    assert {r.task for r in docs[0].results} == {"ref", "det"}
    # the saved weights record their step (the x axis of a later `run --log-to` sweep)
    assert step_from_checkpoint("last.safetensors", out / "last.safetensors") == 4


@pytest.mark.slow
@pytest.mark.distributed
def test_eval_every_under_two_gloo_processes_equals_evaluating_the_saved_weights(
        data_root: Path, tmp_path: Path) -> None:
    from remotesam.bench import evaluate

    out = tmp_path / "two"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "remotesam.train",
        "--data-root",
        str(data_root),
        "--steps",
        "2",
        "--val-split",
        "none",
        "--no-progress",
        "--text-trainable",
        "all",
        "--threads",
        "1",
        "--batch-size",
        "2",
        "--output-dir",
        str(out),
        "--eval-every",
        "2",
        "--eval-tasks",
        "cnt,ref",
        "--eval-limit",
        "3",
    ]
    for k, v in FAST.items():
        cmd += ["--model-override", f"{k}={v}"]
    two = subprocess.run(
        cmd, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True, timeout=900
    )
    assert two.returncode == 0, two.stderr[-3000:]
    (rec,) = [json.loads(x) for x in (out / "log.jsonl").read_text().splitlines() if '"eval/' in x]
    assert rec["step"] == 2
    # the samples were sharded over both ranks and gathered: every one is scored, on rank 0 only
    assert len(list((out / "eval" / "runs").glob("*.json"))) == 1
    # step 2 was saved before it was evaluated: one process on the saved weights agrees exactly
    doc = evaluate(
        out / "last.safetensors",
        tasks="cnt,ref",
        data_root=data_root,
        limit=3,
        device="cpu",
        results_dir=tmp_path / "check",
        progress=False,
    )
    assert doc is not None
    for r in doc.results:
        assert rec[f"eval/{r.task}.{r.dataset}/n_evaluated"] == r.n_evaluated == 3
        for name, m in r.metrics.items():
            if np.isfinite(m.value):  # NaN (undefined) values are not logged
                assert rec[f"eval/{r.task}.{r.dataset}/{name}"] == pytest.approx(
                    m.value, rel=1e-9, abs=1e-12
                ), name


def test_eval_and_tracker_mistakes_fail_before_training(data_root: Path, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    base = ["--data-root", str(data_root), "--steps", "1", "--no-progress"]
    assert train_main([*base, "--output-dir", str(tmp_path / "a"), "--eval-every", "1",
                       "--eval-tasks", "nosuchtask"]) == 2
    assert "nosuchtask" in capsys.readouterr().err
    assert not (tmp_path / "a" / "log.jsonl").exists()
    assert train_main([*base, "--output-dir", str(tmp_path / "b"), "--log-to", "nosuch"]) == 2
    assert "unknown tracker 'nosuch'" in capsys.readouterr().err
    assert train_main([*base, "--output-dir", str(tmp_path / "c"), "--eval-every", "0"]) == 2
    assert "eval_every must be an integer >= 1" in capsys.readouterr().err


def _copy_refer(src: Path, dst: Path) -> Path:
    shutil.copytree(src / "rrsisd", dst / "rrsisd")
    (dst / "images" / "rrsisd").mkdir(parents=True)
    (dst / "images" / "rrsisd" / "JPEGImages").symlink_to(src / "images" / "rrsisd" / "JPEGImages")
    return dst


class _Evil:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, ("echo pwned",))


def test_corrupt_refer_files_are_clear_errors(data_root: Path, tmp_path: Path) -> None:
    root = _copy_refer(data_root, tmp_path / "d")
    refs = root / "rrsisd" / "refs(unc).p"
    good = refs.read_bytes()
    refs.write_bytes(good[: len(good) // 2])
    with pytest.raises(TrainDataError, match=r"refs\(unc\)\.p: corrupt or truncated"):
        train(_cfg(root, tmp_path / "o", max_steps=1))
    refs.write_bytes(pickle.dumps([_Evil()], protocol=2))
    with pytest.raises(TrainDataError, match="refused to load global"):
        safe_load_refs(refs)
    refs.write_bytes(pickle.dumps({"not": "a list"}, protocol=2))
    with pytest.raises(TrainDataError, match="expected a pickled list"):
        safe_load_refs(refs)
    refs.write_bytes(good)
    inst = root / "rrsisd" / "instances.json"
    inst.write_text("{not json")
    with pytest.raises(TrainDataError, match=r"instances\.json: not valid JSON"):
        read_refer(refs, inst, "train")
    inst.write_text(json.dumps({"annotations": [{"id": 1, "segmentation": {"bad": 1}}]}))
    with pytest.raises(TrainDataError, match=r"ann_id|segmentation"):
        read_refer(refs, inst, "train")
    assert (
        train_main(["--data-root", str(root), "--no-progress", "--output-dir", str(tmp_path / "c")])
        == 2
    )


@pytest.mark.realdata
def test_reads_the_real_rrsisd_refer_files(real_data: Path) -> None:
    d = (
        real_data / "rrsisd" / "refer_reconstructed" / "rrsisd"
    )  # RECONSTRUCTED container, real records
    refs = safe_load_refs(d / "refs(unc).p")
    assert len(refs) == 3
    val = read_refer(d / "refs(unc).p", d / "instances.json", "val")
    assert [r.file_name for r in val] == ["14636.jpg", "07855.jpg"]
    assert val[0].sentence == "The vehicle is above the chimney at the bottom"
    assert (val[0].height, val[0].width) == (800, 800)
    assert len(read_refer(d / "refs(unc).p", d / "instances.json", "test")) == 1


def test_augmentation_keeps_directional_expressions_valid() -> None:
    img = np.zeros((16, 16, 3), np.uint8)
    mask = np.zeros((16, 16), np.uint8)
    mask[2:5, 1:4] = 1  # upper left corner
    hflip = mask[:, ::-1]
    vflip = mask[::-1]
    seen_h = False
    for s in range(40):
        _, m = _augment(img, mask, "the car on the left", np.random.default_rng(s))
        assert not np.array_equal(m, hflip) and not np.array_equal(m, hflip[::-1])
        _, m = _augment(img, mask, "the topmost car", np.random.default_rng(s))
        assert not np.array_equal(m, vflip) and not np.array_equal(m, vflip[:, ::-1])
        _, m = _augment(img, mask, "the red car", np.random.default_rng(s))
        seen_h |= np.array_equal(m, hflip)
    assert seen_h
