"""``remotesam-train``: train a RemoteSAM network on REFER-format data.

Examples::

    remotesam-train --data-root synth/ --model remotesam_tiny --steps 2000 --output-dir runs/tiny
    torchrun --nproc_per_node 2 -m remotesam.train --data-root synth/ --batch-size 2
    remotesam-train --data-root /data/RemoteSAM-270K --model remotesam_base --precision bf16
    remotesam-train ... --resume runs/tiny            # continue from its train_state.pt
    remotesam-train ... --eval-every 500 --eval-tasks ref,det --eval-limit 50 --log-to tensorboard
                                                      # benchmark while training, to trackers
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from .data import TrainDataError
from .trainer import TrainConfig, TrainError, train

__all__ = ["build_parser", "main"]


def _override(text: str) -> tuple[str, Any]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    k, v = text.split("=", 1)
    try:
        return k.strip(), json.loads(v)
    except ValueError:
        return k.strip(), v


def build_parser() -> argparse.ArgumentParser:
    d = TrainConfig()
    p = argparse.ArgumentParser(
        prog="remotesam-train",
        description="Train RemoteSAM on REFER-format data (RRSIS-D, RemoteSAM-270K, the synthetic "
        "benchmark) with the official recipe by default. Resumable; data parallel under torchrun "
        "(gloo on CPU, nccl on CUDA).",
        epilog=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    g = p.add_argument_group("data")
    g.add_argument(
        "--data-root", help="REFER root: <root>/rrsisd/refs(unc).p ... or a RemoteSAM-270K folder"
    )
    g.add_argument("--refs", dest="refs_file", help="refs pickle (overrides the data root)")
    g.add_argument(
        "--instances", dest="instances_file", help="instances.json (overrides the data root)"
    )
    g.add_argument("--images", dest="image_dir", help="image folder (overrides the data root)")
    g.add_argument("--train-split", default=d.train_split)
    g.add_argument(
        "--val-split", default=d.val_split, help="'none' for no validation (default: val)"
    )
    g.add_argument("--sentences", choices=["first", "all"], default=d.sentences,
                   help="first (official: sentences[0] of each ref) or all")
    g.add_argument(
        "--augment",
        action="store_true",
        help="flips that keep the expression valid, jitter, black-out boxes",
    )
    g = p.add_argument_group("model")
    g.add_argument("--model", default=d.model, help=f"registered config name (default {d.model})")
    g.add_argument(
        "--model-override",
        action="append",
        type=_override,
        default=[],
        metavar="KEY=VALUE",
        help="replace a config field, e.g. drop_path_rate=0.0 (repeatable)",
    )
    g.add_argument(
        "--init-checkpoint", help="start from these weights (official .pth or safetensors, strict)"
    )
    g.add_argument(
        "--text-trainable",
        choices=["official", "all"],
        default=d.text_trainable,
        help="official: BERT embeddings and layers >= 10 frozen; all: train the whole text encoder",
    )
    g = p.add_argument_group("schedule")
    g.add_argument("--epochs", type=int, default=d.epochs)
    g.add_argument(
        "--steps", dest="max_steps", type=int, help="total optimizer steps (overrides --epochs)"
    )
    g.add_argument("--batch-size", type=int, default=d.batch_size, help="per process (official 2)")
    g.add_argument("--lr", type=float, default=d.lr)
    g.add_argument("--weight-decay", type=float, default=d.weight_decay)
    g.add_argument("--poly-power", type=float, default=d.poly_power)
    g.add_argument(
        "--class-weights", type=float, nargs=2, default=list(d.class_weights), metavar=("BG", "FG")
    )
    g.add_argument("--ce-weight", type=float, default=d.ce_weight)
    g.add_argument("--dice-weight", type=float, default=d.dice_weight)
    g = p.add_argument_group("run")
    g.add_argument("--output-dir", default=d.output_dir)
    g.add_argument(
        "--resume", help="train_state.pt or a run directory; 'auto' = --output-dir if it holds one"
    )
    g.add_argument("--seed", type=int, default=d.seed)
    g.add_argument("--workers", type=int, default=d.workers, help="data-loader processes")
    g.add_argument("--precision", choices=["fp32", "bf16"], default=d.precision)
    g.add_argument("--device", choices=["auto", "cpu", "cuda"], default=d.device)
    g.add_argument(
        "--log-interval", type=int, default=d.log_interval, help="steps between log lines"
    )
    g.add_argument(
        "--val-interval",
        type=int,
        help="steps between validations (default: every epoch; 0 = never)",
    )
    g.add_argument(
        "--save-interval", type=int, help="steps between checkpoints (default: every epoch)"
    )
    g.add_argument("--max-val-samples", type=int, help="validate on the first N val samples only")
    g.add_argument("--threads", type=int, help="torch CPU threads per process")
    g.add_argument("--save-dtype", choices=["fp32", "bf16"], default=d.save_dtype,
                   help="dtype of the saved safetensors weights (resume needs fp32)")
    g.add_argument(
        "--stop-at-step",
        type=int,
        help="end this job after that global step (checkpoint saved); resume later",
    )
    g.add_argument("--no-progress", action="store_true", help="no progress bar")
    g = p.add_argument_group("benchmark evaluation and trackers")
    g.add_argument("--eval-every", type=int, metavar="N",
                   help="evaluate the network on the benchmark every N steps "
                        "(remotesam.bench.run.evaluate)")
    g.add_argument(
        "--eval-tasks",
        default=",".join(d.eval_tasks),
        metavar="T[,T...]",
        help="benchmark tasks to evaluate, as remotesam-bench run --tasks (default: %(default)s)",
    )
    g.add_argument(
        "--eval-limit", type=int, metavar="K", help="only the first K samples of each dataset"
    )
    g.add_argument(
        "--eval-data-root",
        metavar="DIR",
        help="the benchmark's data root (default: --data-root; the procedural benchmark holds "
             "every task)",
    )
    g.add_argument(
        "--eval-results-dir",
        metavar="DIR",
        help="prediction cache and run documents (default: OUTPUT_DIR/eval)",
    )
    g.add_argument(
        "--log-to",
        action="append",
        default=[],
        metavar="tensorboard[:DIR],wandb[:PROJECT]",
        help="log train loss, validation and evaluation metrics at the training step "
        "(default TensorBoard dir OUTPUT_DIR/tensorboard/<name>; extras "
        "remotesam-bench[tensorboard], [wandb])",
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``remotesam-train``; returns the exit code (0 ok, 2 bad input)."""
    args = build_parser().parse_args(argv)
    kw = vars(args)
    overrides = dict(kw.pop("model_override"))
    no_progress = kw.pop("no_progress")
    if kw["val_split"] in ("none", "None", ""):
        kw["val_split"] = None
    kw["class_weights"] = tuple(kw["class_weights"])
    kw["eval_tasks"] = [t.strip() for t in kw["eval_tasks"].split(",") if t.strip()]
    cfg = TrainConfig(**kw, model_overrides=overrides, progress=not no_progress)
    try:
        res = train(cfg)
    except (TrainError, TrainDataError) as e:
        print(f"remotesam-train: error: {e}", file=sys.stderr)
        return 2
    last = res.losses[-1][1] if res.losses else float("nan")
    print(
        f"remotesam-train: {res.step}/{res.total_steps} steps, last loss {last:.4f}, best val oIoU "
        f"{res.best_oiou:.4f}; weights: {res.checkpoint} (official: {res.official_checkpoint})"
    )
    if res.evals:
        step, metrics = res.evals[-1]
        shown = ", ".join(
            f"{k[5:]}={v:.4g}"
            for k, v in metrics.items()
            if not k.endswith(("/n_evaluated", "/n_failed"))
        )
        print(f"remotesam-train: evaluation at step {step}: {shown}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
