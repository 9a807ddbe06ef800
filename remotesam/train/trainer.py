"""``train(config)``: the official RemoteSAM training recipe on REFER-format data.

Recipe (PROTOCOLS.md section 3, the official ``train.py``/``args.py``): AdamW, lr 3e-5, weight
decay 0.01 (0 for norms, biases of norms, position embeddings and relative-position tables),
poly schedule ``(1 - step/total) ** 0.9`` per iteration, loss ``0.9 * CE(class weights 0.9/1.1)
+ 0.1 * Dice``, synchronised BatchNorm, one expression per mask (``sentences[0]``), no
augmentation, BERT embeddings and BERT layers >= 10 left out of the optimizer. Per-process
batch 2. Every knob is a :class:`TrainConfig` field.

Determinism and resuming: the data order of epoch ``e`` is a permutation seeded by
``(seed, e)``; the augmentation of an item by ``(seed, e, index)``; the torch RNG (dropout,
DropPath) is re-seeded from ``(seed, step, rank)`` before every step. A checkpoint therefore
holds everything needed to continue bit-for-bit: model weights (safetensors), optimizer and
scheduler state, the step, the seed and the torch RNG state (``train_state.pt``, tensors and
plain containers only: ``torch.load(weights_only=True)`` reads it).

Outputs in ``output_dir``: ``last.safetensors`` (+ ``last.json``, our format, via
``remotesam.checkpoint.save_checkpoint``), ``last_official.pth`` (``{'model': state_dict}``),
``best.safetensors`` (best validation oIoU), ``train_state.pt``, ``log.jsonl`` (one JSON
object per logged step / validation / evaluation), ``config.json``.

Benchmark evaluation while training: with ``eval_every=N`` the network is evaluated every ``N``
steps by :func:`remotesam.bench.run.evaluate` on ``eval_tasks`` (any benchmark task, e.g. ``ref``
and ``det``) of ``eval_data_root`` (default: the training data root, which for the procedural
benchmark holds every task), the first ``eval_limit`` samples of each dataset; the in-memory
network is identified by its weights digest, predictions are cached in ``eval_results_dir``
(default ``output_dir/eval``, one run document per evaluation). The metrics go to ``log.jsonl``
as ``eval/TASK.DATASET/METRIC`` and, with ``log_to`` (``tensorboard[:DIR]``, ``wandb[:PROJECT]``,
see :mod:`remotesam.bench.records.trackers`), to the trackers at the training step, beside
``train/loss``, ``train/lr`` and ``val/oIoU``, ``val/mIoU``. Saved safetensors weights record the
step in their metadata (``step``), which ``remotesam-bench run --log-to`` uses as the x axis.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import torch
import torch.distributed as dist
from torch import nn

from .data import ReferTrainDataset, TrainDataError, locate_refer, read_refer
from .distributed import DistInfo, convert_sync_batchnorm, setup_distributed
from .loss import segmentation_loss

if TYPE_CHECKING:
    from remotesam.model import RemoteSAMNet

__all__ = ["TrainConfig", "TrainError", "TrainResult", "train"]

STATE_FILE = "train_state.pt"
_STATE_VERSION = 1


class TrainError(ValueError):
    """Bad training configuration or data (the message names the field or file)."""


@dataclass
class TrainConfig:
    """Everything ``remotesam-train`` can set. Defaults are the official recipe.

    Data: ``data_root`` (a REFER root, see :func:`remotesam.train.data.locate_refer`) or the
    three paths ``refs_file``, ``instances_file``, ``image_dir``; ``train_split`` / ``val_split``
    (None: no validation); ``sentences`` ``first`` (official) or ``all``; ``augment``.
    Model: ``model`` (registered config name), ``model_overrides`` (config fields),
    ``init_checkpoint`` (weights to start from, strict), ``text_trainable`` ``official``
    (embeddings and BERT layers >= 10 frozen) or ``all``.
    Schedule: ``epochs`` or ``max_steps`` (wins when set), ``batch_size`` (per process), ``lr``,
    ``weight_decay``, ``poly_power``, ``class_weights``, ``ce_weight``, ``dice_weight``.
    Run: ``output_dir``, ``resume`` (a ``train_state.pt`` or the directory holding it; ``auto``
    = ``output_dir`` if it has one), ``seed``, ``workers``, ``precision`` ``fp32``/``bf16``,
    ``device`` ``auto``/``cpu``/``cuda``, ``log_interval`` (steps), ``val_interval`` (steps;
    None = every epoch, 0 = never), ``save_interval`` (steps; None = every epoch),
    ``max_val_samples``, ``progress`` (a progress bar on rank 0), ``threads`` (torch CPU
    threads; None = leave as is), ``save_dtype`` (``fp32`` or ``bf16`` for the safetensors
    weights; resuming needs fp32), ``stop_at_step`` (end this call after that global step, with
    a checkpoint, as if interrupted: split a long run into jobs and ``resume`` each).
    Evaluation and trackers (module docstring): ``eval_every`` (steps; None = never),
    ``eval_tasks`` (task selections as ``remotesam-bench run --tasks``), ``eval_limit``,
    ``eval_data_root`` (default ``data_root``), ``eval_results_dir`` (default
    ``output_dir/eval``), ``log_to`` (``["tensorboard[:DIR]", "wandb[:PROJECT]"]``).
    """

    data_root: str | None = None
    refs_file: str | None = None
    instances_file: str | None = None
    image_dir: str | None = None
    train_split: str = "train"
    val_split: str | None = "val"
    sentences: str = "first"
    augment: bool = False
    model: str = "remotesam_tiny"
    model_overrides: dict[str, Any] = field(default_factory=dict)
    init_checkpoint: str | None = None
    text_trainable: str = "official"
    epochs: int = 40
    max_steps: int | None = None
    batch_size: int = 2
    lr: float = 3e-5
    weight_decay: float = 0.01
    poly_power: float = 0.9
    class_weights: tuple[float, float] = (0.9, 1.1)
    ce_weight: float = 0.9
    dice_weight: float = 0.1
    output_dir: str = "runs/train"
    resume: str | None = None
    seed: int = 0
    workers: int = 0
    precision: str = "fp32"
    device: str = "auto"
    log_interval: int = 10
    val_interval: int | None = None
    save_interval: int | None = None
    max_val_samples: int | None = None
    progress: bool = True
    threads: int | None = None
    save_dtype: str = "fp32"
    stop_at_step: int | None = None
    eval_every: int | None = None
    eval_tasks: list[str] = field(default_factory=lambda: ["ref"])
    eval_limit: int | None = None
    eval_data_root: str | None = None
    eval_results_dir: str | None = None
    log_to: list[str] = field(default_factory=list)

    def validate(self) -> None:
        """Raise :class:`TrainError` naming the first bad field."""
        def pos_int(name: str, v: Any, zero: bool = False) -> None:
            if isinstance(v, bool) or not isinstance(v, int) or v < (0 if zero else 1):
                raise TrainError(f"{name} must be an integer >= {0 if zero else 1}, got {v!r}")

        pos_int("epochs", self.epochs)
        pos_int("batch_size", self.batch_size)
        pos_int("workers", self.workers, zero=True)
        pos_int("log_interval", self.log_interval)
        for name in ("max_steps", "save_interval", "max_val_samples", "threads", "stop_at_step",
                     "eval_every", "eval_limit"):
            v = getattr(self, name)
            if v is not None:
                pos_int(name, v)
        if self.val_interval is not None:
            pos_int("val_interval", self.val_interval, zero=True)
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise TrainError(f"seed must be a non-negative integer, got {self.seed!r}")
        for name in ("lr", "weight_decay", "poly_power", "ce_weight", "dice_weight"):
            v = getattr(self, name)
            if (
                not isinstance(v, (int, float))
                or isinstance(v, bool)
                or not math.isfinite(v)
                or v < 0
            ):
                raise TrainError(f"{name} must be a finite number >= 0, got {v!r}")
        if self.lr <= 0:
            raise TrainError(f"lr must be > 0, got {self.lr}")
        if len(self.class_weights) != 2 or any(w <= 0 for w in self.class_weights):
            raise TrainError(
                f"class_weights must be two positive numbers, got {self.class_weights!r}"
            )
        choices = {
            "precision": ("fp32", "bf16"),
            "device": ("auto", "cpu", "cuda"),
            "sentences": ("first", "all"),
            "text_trainable": ("official", "all"),
            "save_dtype": ("fp32", "bf16"),
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise TrainError(
                    f"{name} must be one of {list(allowed)}, got {getattr(self, name)!r}"
                )
        if self.data_root is None and not (
            self.refs_file and self.instances_file and self.image_dir
        ):
            raise TrainError(
                "give data_root (--data-root) or all of refs_file, instances_file, image_dir "
                "(--refs, --instances, --images)"
            )
        if self.eval_every is not None:
            if not self.eval_tasks or not all(
                isinstance(t, str) and t.strip() for t in self.eval_tasks
            ):
                raise TrainError(
                    "eval_tasks must name at least one task (e.g. ref,det), got "
                    f"{self.eval_tasks!r}"
                )
            if self.eval_data_root is None and self.data_root is None:
                raise TrainError(
                    "eval_every needs the benchmark's data root: give eval_data_root "
                    "(--eval-data-root DIR)"
                )
        from remotesam.bench.records.trackers import TrackerError, parse_log_to

        try:
            parse_log_to(self.log_to)
        except TrackerError as e:
            raise TrainError(f"log_to: {e}") from None

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["class_weights"] = list(self.class_weights)
        d["eval_tasks"] = list(self.eval_tasks)
        d["log_to"] = list(self.log_to)
        return d


@dataclass
class TrainResult:
    """What :func:`train` returns (on every rank; files are written by rank 0).

    Attributes:
        step: optimizer steps done in total (including those before a resume).
        total_steps: planned steps.
        losses: ``(step, loss)`` of every step run in this call (loss averaged over processes,
            before the optimizer update of that step; ``step`` is 1-based).
        val: ``(step, oIoU, mIoU)`` of every validation.
        evals: ``(step, {"eval/TASK.DATASET/METRIC": value})`` of every benchmark evaluation
            (rank 0; empty on the other ranks).
        best_oiou: best validation oIoU (NaN without validation).
        checkpoint: our-format weights (``last.safetensors``), official checkpoint, state file.
    """

    step: int
    total_steps: int
    losses: list[tuple[int, float]] = field(default_factory=list)
    val: list[tuple[int, float, float]] = field(default_factory=list)
    evals: list[tuple[int, dict[str, float]]] = field(default_factory=list)
    best_oiou: float = float("nan")
    checkpoint: Path | None = None
    official_checkpoint: Path | None = None
    state_file: Path | None = None


# ---------------------------------------------------------------------------------------------


def _device(cfg: TrainConfig, info: DistInfo) -> torch.device:
    if cfg.device == "cuda" or (cfg.device == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise TrainError("device 'cuda' requested but CUDA is not available; use --device cpu")
        return torch.device("cuda", info.local_rank)
    return torch.device("cpu")


def _data_paths(cfg: TrainConfig) -> tuple[Path, Path, Path]:
    if cfg.refs_file and cfg.instances_file and cfg.image_dir:
        return Path(cfg.refs_file), Path(cfg.instances_file), Path(cfg.image_dir)
    try:
        refs, inst, imgs = locate_refer(cfg.data_root)  # type: ignore[arg-type]
    except TrainDataError as e:
        raise TrainError(str(e)) from None
    return (
        Path(cfg.refs_file) if cfg.refs_file else refs,
        Path(cfg.instances_file) if cfg.instances_file else inst,
        Path(cfg.image_dir) if cfg.image_dir else imgs,
    )


def _param_groups(model: nn.Module, cfg: TrainConfig, text_layers: int) -> list[dict[str, Any]]:
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        frozen = (
            cfg.text_trainable == "official"
            and name.startswith("text_encoder.")
            and (
                name.startswith("text_encoder.embeddings.")
                or any(
                    name.startswith(f"text_encoder.encoder.layer.{i}.")
                    for i in range(10, max(text_layers, 10))
                )
            )
        )
        if frozen:
            p.requires_grad_(False)
            continue
        if not p.requires_grad:
            continue
        if (p.ndim <= 1 and _is_norm_param(model, name)) or any(
            k in name
            for k in ("relative_position_bias_table", "position_embeddings", "absolute_pos_embed")
        ):
            no_decay.append(p)
        else:
            decay.append(p)
    return [
        {"params": decay, "weight_decay": cfg.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def _is_norm_param(model: nn.Module, name: str) -> bool:
    mod_name = name.rsplit(".", 1)[0]
    try:
        mod = model.get_submodule(mod_name)
    except AttributeError:
        return False
    return isinstance(
        mod, (nn.modules.batchnorm._BatchNorm, nn.LayerNorm, nn.GroupNorm, nn.InstanceNorm1d)
    )


def _epoch_batches(
    n: int, epoch: int, seed: int, batch: int, info: DistInfo
) -> list[list[tuple[int, int]]]:
    """This rank's batches of one epoch: a seeded permutation padded to a multiple of the world
    size (as ``DistributedSampler``), rank ``r`` taking positions ``r::world``."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    perm = torch.randperm(n, generator=g).tolist()
    per_rank = math.ceil(n / info.world_size)
    total = per_rank * info.world_size
    perm += perm[: total - n]
    mine = perm[info.rank : total : info.world_size]
    return [[(i, epoch) for i in mine[k : k + batch]] for k in range(0, len(mine), batch)]


def _collate(items: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    return {k: torch.stack([it[k] for it in items]) for k in items[0]}


def _loader(
    ds: ReferTrainDataset, batches: list[list[tuple[int, int]]], workers: int
) -> Iterator[dict[str, torch.Tensor]]:
    if workers == 0:
        for b in batches:
            yield _collate([ds[k] for k in b])
        return
    dl = torch.utils.data.DataLoader(
        ds,
        batch_sampler=batches,
        num_workers=workers,
        collate_fn=_collate,
        persistent_workers=False,
    )
    yield from dl


def _all_mean(x: float, info: DistInfo, device: torch.device) -> float:
    if info.world_size == 1:
        return x
    t = torch.tensor([x], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return float(t.item()) / info.world_size


@torch.no_grad()
def _validate(
    model: nn.Module,
    ds: ReferTrainDataset,
    cfg: TrainConfig,
    info: DistInfo,
    device: torch.device,
    autocast: Any,
) -> tuple[float, float]:
    n = len(ds) if cfg.max_val_samples is None else min(len(ds), cfg.max_val_samples)
    idx = list(range(info.rank, n, info.world_size))
    inter = union = iou_sum = 0.0
    count = 0
    was_training = model.training
    model.eval()
    for k in range(0, len(idx), cfg.batch_size):
        b = _collate([ds[i] for i in idx[k : k + cfg.batch_size]])
        with autocast():
            logits = model(
                b["image"].to(device), b["input_ids"].to(device), b["attention_mask"].to(device)
            )
        pred = logits.float().argmax(1)
        tgt = b["target"].to(device)
        i = (pred.bool() & tgt.bool()).flatten(1).sum(1).double()
        u = (pred.bool() | tgt.bool()).flatten(1).sum(1).double()
        inter += float(i.sum())
        union += float(u.sum())
        iou_sum += float(torch.where(u > 0, i / u.clamp(min=1), torch.zeros_like(u)).sum())
        count += len(u)
    model.train(was_training)
    t = torch.tensor([inter, union, iou_sum, float(count)], dtype=torch.float64, device=device)
    if info.world_size > 1:
        dist.all_reduce(t)
    inter, union, iou_sum, n_masks = (float(v) for v in t)
    oiou = inter / union if union > 0 else float("nan")
    miou = iou_sum / n_masks if n_masks > 0 else float("nan")
    return oiou, miou


class _Progress:
    def __init__(self, total: int, start: int, enabled: bool) -> None:
        self.bar = None
        self.lines = enabled and not sys.stderr.isatty()
        if not enabled or self.lines:
            return
        try:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
            )
        except ImportError:  # pragma: no cover - rich is a dependency
            return
        self.bar = Progress(
            TextColumn("train"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"),
            TimeRemainingColumn(),
            transient=False,
            console=Console(stderr=True),
        )
        self.task = self.bar.add_task("train", total=total, completed=start, info="")
        self.bar.start()

    def update(self, step: int, info: str) -> None:
        if self.bar is not None:
            self.bar.update(self.task, completed=step, info=info)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def _fmt(v: Any) -> str:
    return f"{v:.5g}" if isinstance(v, float) else str(v)


def _resolve_resume(cfg: TrainConfig) -> Path | None:
    if cfg.resume is None:
        return None
    if cfg.resume == "auto":
        p = Path(cfg.output_dir) / STATE_FILE
        return p if p.is_file() else None
    p = Path(cfg.resume)
    if p.is_dir():
        p = p / STATE_FILE
    if not p.is_file():
        raise TrainError(
            f"resume: no training state at {p}; pass the {STATE_FILE} file or the output directory "
            "of an earlier run"
        )
    return p


def _unwrapped(model: nn.Module) -> RemoteSAMNet:
    """The network inside a ``DistributedDataParallel`` wrapper, or ``model`` itself."""
    return cast("RemoteSAMNet", model.module if hasattr(model, "module") else model)


def _save(
    model: nn.Module,
    opt: torch.optim.Optimizer,
    sched: Any,
    step: int,
    best: float,
    cfg: TrainConfig,
    out: Path,
    info: DistInfo,
    name: str = "last",
) -> tuple[Path, Path, Path]:
    from remotesam.checkpoint import save_checkpoint, save_official

    ours, official, state = (
        out / f"{name}.safetensors",
        out / f"{name}_official.pth",
        out / STATE_FILE,
    )
    if info.is_main:
        # synchronised BatchNorm keeps the parameter names, so this is the plain layout
        net = _unwrapped(model)
        save_checkpoint(net, ours, dtype=torch.bfloat16 if cfg.save_dtype == "bf16" else None,
                        metadata={"step": str(step)})
        if name == "last":
            save_official(net, official)
            payload = {
                "version": _STATE_VERSION,
                "step": step,
                "seed": cfg.seed,
                "world_size": info.world_size,
                "batch_size": cfg.batch_size,
                "best_oiou": best,
                "optimizer": opt.state_dict(),
                "scheduler": sched.state_dict(),
                "torch_rng": torch.get_rng_state(),
                "weights": ours.name,
                "config": json.dumps(cfg.to_dict(), sort_keys=True),
            }
            tmp = state.with_suffix(".tmp")
            torch.save(payload, tmp)
            os.replace(tmp, state)
    if info.world_size > 1:
        dist.barrier()
    return ours, official, state


def _benchmark(model: nn.Module, cfg: TrainConfig, step: int, out: Path) -> dict[str, float] | None:
    """Evaluate the network on the benchmark tasks (every rank takes part; rank 0 gets the
    metrics ``{"eval/TASK.DATASET/METRIC": value}``, the others None)."""
    from remotesam.bench import evaluate
    from remotesam.bench.errors import BenchError
    from remotesam.bench.records.trackers import document_metrics

    net = _unwrapped(model)
    try:
        doc = evaluate(
            net,
            tasks=list(cfg.eval_tasks),
            data_root=cfg.eval_data_root or cfg.data_root,
            limit=cfg.eval_limit,
            results_dir=cfg.eval_results_dir or out / "eval",
            precision=cfg.precision,
            model_name=f"step_{step}",
            progress=False,
            on_error="warn",
        )
    except BenchError as e:
        raise TrainError(
            f"evaluation at step {step} (the checkpoints so far are saved): {e}"
        ) from e
    if doc is None:
        return None
    metrics: dict[str, float] = {}
    for _, _, values in document_metrics(doc):
        metrics.update({f"eval/{k}": v for k, v in values.items()})
    return metrics


def train(config: TrainConfig) -> TrainResult:
    """Train a RemoteSAM network on REFER data; see the module docstring.

    Works as a single process or under ``torchrun`` (one process per device; gloo on CPU).

    Raises:
        TrainError: bad configuration, zero training samples, an incompatible resume state.
        remotesam.train.data.TrainDataError: missing or corrupt REFER files or images.
    """
    from remotesam.checkpoint import read_state_dict
    from remotesam.model import get_config
    from remotesam.models import create_model
    from remotesam.text import Tokenizer

    cfg = config
    cfg.validate()
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    refs_file, inst_file, image_dir = _data_paths(cfg)
    if cfg.eval_every is not None:  # bad task names or a missing dataset fail now, not at step N
        from remotesam.bench.errors import BenchError
        from remotesam.bench.run import check_evaluation

        try:
            check_evaluation(cfg.eval_tasks, cfg.eval_data_root or cfg.data_root)
        except BenchError as e:
            raise TrainError(f"eval_tasks / eval_data_root: {e}") from None
    try:
        net_cfg = get_config(cfg.model, **cfg.model_overrides)
    except KeyError as e:
        raise TrainError(f"model: {e}") from None
    except (TypeError, ValueError) as e:
        raise TrainError(f"model_overrides: {e}") from None
    records = read_refer(refs_file, inst_file, cfg.train_split, cfg.sentences)
    if not records:
        raise TrainError(
            f"the training split {cfg.train_split!r} of {refs_file} has zero samples; check the "
            "split name "
            "(refs carry 'train', 'val' or 'test') or the data root"
        )
    if not image_dir.is_dir():
        raise TrainError(f"image folder not found: {image_dir}")
    val_records = (
        read_refer(refs_file, inst_file, cfg.val_split, "first")
        if cfg.val_split and cfg.val_interval != 0
        else []
    )

    info = setup_distributed(
        "cuda"
        if cfg.device == "cuda" or (cfg.device == "auto" and torch.cuda.is_available())
        else "cpu"
    )
    try:
        return _train(
            cfg,
            info,
            records,
            val_records,
            image_dir,
            net_cfg,
            create_model,
            read_state_dict,
            Tokenizer,
        )
    finally:
        if info.owns_group and dist.is_initialized():
            dist.destroy_process_group()


def _train(
    cfg: TrainConfig,
    info: DistInfo,
    records: list,
    val_records: list,
    image_dir: Path,
    net_cfg: Any,
    create_model: Any,
    read_state_dict: Any,
    tokenizer_cls: Any,
) -> TrainResult:
    device = _device(cfg, info)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    tok = tokenizer_cls(max_tokens=net_cfg.max_tokens)
    S = net_cfg.img_size
    ds = ReferTrainDataset(
        records, image_dir, S, tok, net_cfg.image_mean, net_cfg.image_std, cfg.augment, cfg.seed
    )
    val_ds = ReferTrainDataset(
        val_records, image_dir, S, tok, net_cfg.image_mean, net_cfg.image_std, False, cfg.seed
    )

    torch.manual_seed(cfg.seed)  # identical initial weights on every rank
    model = create_model(net_cfg)
    if cfg.init_checkpoint:
        from remotesam.checkpoint import load_state_dict_strict

        load_state_dict_strict(model, read_state_dict(cfg.init_checkpoint), cfg.init_checkpoint)
    model.to(device)
    model.train()
    groups = _param_groups(model, cfg, net_cfg.text_layers)
    bn_group: dist.ProcessGroup | None = None
    if info.world_size > 1:
        if device.type == "cpu":  # every rank joins, so new_group returns a ProcessGroup
            bn_group = cast(dist.ProcessGroup, dist.new_group(backend="gloo"))
        model = convert_sync_batchnorm(model, device.type, bn_group)
        ddp_kwargs: dict[str, Any] = {"find_unused_parameters": True}
        if device.type == "cuda":
            ddp_kwargs["device_ids"] = [device.index]
        model = nn.parallel.DistributedDataParallel(model, **ddp_kwargs)
    opt = torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)

    steps_per_epoch = len(_epoch_batches(len(ds), 0, cfg.seed, cfg.batch_size, info))
    total = cfg.max_steps if cfg.max_steps is not None else cfg.epochs * steps_per_epoch
    power = cfg.poly_power
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda it: max(0.0, 1.0 - it / total) ** power)
    val_every = steps_per_epoch if cfg.val_interval is None else cfg.val_interval
    save_every = steps_per_epoch if cfg.save_interval is None else cfg.save_interval

    out = Path(cfg.output_dir)
    start, best = 0, float("nan")
    state_path = _resolve_resume(cfg)
    if state_path is not None:
        st = torch.load(state_path, map_location="cpu", weights_only=True)
        if not isinstance(st, dict) or st.get("version") != _STATE_VERSION:
            raise TrainError(
                f"{state_path}: not a training state written by remotesam-train (version "
                f"{_STATE_VERSION})"
            )
        for key, now in (
            ("world_size", info.world_size),
            ("batch_size", cfg.batch_size),
            ("seed", cfg.seed),
        ):
            if st[key] != now:
                raise TrainError(
                    f"{state_path}: saved with {key}={st[key]}, this run has {key}={now}; resume "
                    "with the same setting"
                )
        weights = state_path.parent / st["weights"]
        sd = read_state_dict(weights)
        if any(v.dtype == torch.bfloat16 for v in sd.values()):
            raise TrainError(
                f"{weights}: saved in bf16; resuming needs fp32 weights (save_dtype='fp32')"
            )
        net = _unwrapped(model)
        from remotesam.checkpoint import load_state_dict_strict

        load_state_dict_strict(net, sd, str(weights))
        opt.load_state_dict(st["optimizer"])
        sched.load_state_dict(st["scheduler"])
        torch.set_rng_state(st["torch_rng"])
        start, best = int(st["step"]), float(st["best_oiou"])
        if start > total:
            raise TrainError(
                f"{state_path}: already at step {start}, beyond the planned {total} steps"
            )
    if info.is_main:
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.json").write_text(
            json.dumps(
                {"train": cfg.to_dict(), "model": net_cfg.to_dict()}, indent=1, sort_keys=True
            )
            + "\n"
        )
    trackers: list[Any] = []
    if cfg.log_to and info.is_main:
        from remotesam.bench.records.trackers import TrackerError, open_trackers, parse_log_to

        try:
            trackers = open_trackers(
                parse_log_to(cfg.log_to),
                base_dir=out,
                name=out.resolve().name,
                config={"train": cfg.to_dict(), "model": net_cfg.to_dict()},
            )
        except TrackerError as e:
            raise TrainError(f"log_to: {e}") from None
    log = open(out / "log.jsonl", "a", encoding="utf-8") if info.is_main else None  # noqa: SIM115

    def autocast() -> Any:
        if cfg.precision == "bf16":
            return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    end = total if cfg.stop_at_step is None else min(total, max(cfg.stop_at_step, start))
    result = TrainResult(step=start, total_steps=total, best_oiou=best)
    bar = _Progress(total, start, cfg.progress and info.is_main)

    def emit(rec: dict[str, Any], tracked: dict[str, float] | None = None) -> None:
        for t in trackers:
            if tracked:
                t.log(tracked, rec["step"])
        if log is not None:
            log.write(json.dumps(rec, sort_keys=True) + "\n")
            log.flush()
            if bar.lines:  # no live bar (not a terminal): one line per record instead
                print(
                    "remotesam-train: "
                    + " ".join(f"{k}={_fmt(v)}" for k, v in sorted(rec.items())),
                    file=sys.stderr,
                    flush=True,
                )

    t0 = time.perf_counter()
    step = start
    try:
        while step < end:
            epoch, offset = divmod(step, steps_per_epoch)
            batches = _epoch_batches(len(ds), epoch, cfg.seed, cfg.batch_size, info)[offset:]
            batches = batches[: end - step]
            for batch in _loader(ds, batches, cfg.workers):
                # dropout / DropPath randomness is a function of (seed, step, rank)
                torch.manual_seed((cfg.seed * 1_000_003 + step) * 64 + info.rank)
                with autocast():
                    logits = model(
                        batch["image"].to(device),
                        batch["input_ids"].to(device),
                        batch["attention_mask"].to(device),
                    )
                loss = segmentation_loss(
                    logits,
                    batch["target"].to(device),
                    cfg.class_weights,
                    cfg.ce_weight,
                    cfg.dice_weight,
                )
                if not torch.isfinite(loss):
                    raise TrainError(
                        f"loss is {float(loss)} at step {step + 1}; lower the learning rate or "
                        "check the data"
                    )
                lr_now = opt.param_groups[0]["lr"]
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                step += 1
                lv = _all_mean(float(loss.detach()), info, device)
                result.losses.append((step, lv))
                if step % cfg.log_interval == 0 or step == end:
                    emit({"step": step, "epoch": epoch, "loss": lv, "lr": lr_now,
                          "seconds": round(time.perf_counter() - t0, 3)},
                         {"train/loss": lv, "train/lr": lr_now})
                bar.update(step, f"loss {lv:.4f}")
                if val_ds.records and val_every and (step % val_every == 0 or step == total):
                    oiou, miou = _validate(model, val_ds, cfg, info, device, autocast)
                    result.val.append((step, oiou, miou))
                    emit(
                        {"step": step, "val_oIoU": oiou, "val_mIoU": miou},
                        {"val/oIoU": oiou, "val/mIoU": miou},
                    )
                    if not math.isnan(oiou) and (math.isnan(best) or oiou > best):
                        best = oiou
                        _save(model, opt, sched, step, best, cfg, out, info, name="best")
                if step % save_every == 0 or step == end:
                    result.checkpoint, result.official_checkpoint, result.state_file = _save(
                        model, opt, sched, step, best, cfg, out, info)
                if cfg.eval_every and step % cfg.eval_every == 0:
                    metrics = _benchmark(model, cfg, step, out)
                    if metrics is not None:
                        result.evals.append((step, metrics))
                        emit({"step": step, **metrics}, metrics)
        if result.checkpoint is None:  # resumed at the end: still report the files
            result.checkpoint, result.official_checkpoint, result.state_file = _save(
                model, opt, sched, step, best, cfg, out, info)
    finally:
        bar.close()
        if log is not None:
            log.close()
        for t in trackers:
            t.close()
    result.step = step
    result.best_oiou = best
    return result
