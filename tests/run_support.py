"""Run documents built in code for the report and gate tests (no model needed): one checkpoint
scored on ref/rrsisd (oIoU ratio + mIoU mean), vg/dior_rsvg (Acc@0.5 hits) and cnt/dior, with
per-sample values where a real plugin would store them."""

from __future__ import annotations

import hashlib

import numpy as np

from remotesam.bench.records.results import CheckpointRef, MetricValue, RunDocument, TaskResult

N = 60
IDS = [f"img{i:03d}" for i in range(N)]


def ckpt(name: str = "ckpt_a") -> CheckpointRef:
    """A checkpoint reference whose sha256 is that of its name."""
    return CheckpointRef(name=name, path=f"/ckpts/{name}.pth",
                         sha256=hashlib.sha256(name.encode()).hexdigest())


def result(ckpt: CheckpointRef, task: str, dataset: str, metrics: dict, per_sample=None,
           ratio=None, split: str = "test", n: int = N) -> TaskResult:
    """A TaskResult; ``metrics`` maps name -> (value, higher_is_better, primary, unit)."""
    mvs = {name: MetricValue(value=v, higher_is_better=hib, primary=prim, unit=unit)
           for name, (v, hib, prim, unit) in metrics.items()}
    return TaskResult(checkpoint=ckpt, task=task, task_version=1, dataset=dataset, split=split,
                      n_total=n, n_evaluated=n, metrics=mvs, per_sample=per_sample or {},
                      per_sample_ratio=ratio or {})


def make_run(name: str = "ckpt_a", quality: float = 0.6, run_id: str | None = None,
             created: str = "2026-01-01T00:00:00", seed: int = 0, iou_shift: float = 0.0,
             mae: float = 1.2) -> RunDocument:
    """A run of one checkpoint on ref/rrsisd, vg/dior_rsvg and cnt/dior."""
    rng = np.random.default_rng(seed)
    ck = ckpt(name)
    iou = np.clip(rng.normal(quality, 0.15, N) + iou_shift, 0.0, 1.0)
    inter = rng.uniform(10, 100, N)
    union = inter + rng.uniform(5, 60, N)
    hits = (iou >= 0.5).astype(float)
    ref = result(ck, "ref", "rrsisd",
                 {"oIoU": (100 * inter.sum() / union.sum(), True, True, "%"),
                  "mIoU": (100 * iou.mean(), True, False, "%")},
                 per_sample={"mIoU": {"sample_ids": IDS, "values": iou.tolist()}},
                 ratio={"oIoU": {"sample_ids": IDS, "num": inter.tolist(),
                                 "den": union.tolist()}})
    vg = result(ck, "vg", "dior_rsvg",
                {"Acc@0.5": (100 * hits.mean(), True, True, "%"),
                 "mIoU": (100 * iou.mean(), True, False, "%")},
                per_sample={"Acc@0.5": {"sample_ids": IDS, "values": hits.tolist()}})
    cnt = result(ck, "cnt", "dior",
                 {"accuracy": (100 * quality * 0.8, True, True, "%"),
                  "mae": (mae, False, False, "")})
    return RunDocument(run_id=run_id or f"run-{name}", created=created,
                       provenance={"package_version": "test"}, results=[ref, vg, cnt])


def reports_cli_main(argv: list[str]) -> int:
    """Run one reports subcommand (leaderboard, radar, gate, baseline, ...) as the CLI does."""
    import argparse

    from remotesam.bench.cli import reports as reports_cli

    parser = argparse.ArgumentParser(prog="remotesam-bench")
    reports_cli.add_subcommands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)
