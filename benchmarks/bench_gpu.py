"""GPU figures: image-prompts per second of the network, and the real pipeline's busy fraction.

One short prepared script for a lent accelerator (issue 20, item 8), written to run in a few
minutes on one GPU:

1. **Throughput**: forward passes of ``remotesam_parity`` (the golden configuration: Swin depths
   ``(2, 2, 2, 2)``, 2-layer BERT, filled by the parity rule) at 896 px, fp32 and bf16
   (autocast), batch sizes 1, 2, 4, 8, 16, 32: image-prompts per second after warm-up, median of
   ``--reps`` timed calls (CUDA-synchronised), and peak memory. ``--model remotesam_base`` times
   the full-size network instead.
2. **Pipeline busy fraction**: ``det`` and ``ref`` through the harness (``remotesam.bench.
   evaluate``) on 800 px procedural images (``remotesam-bench synth --image-size 800``), the
   network wrapped so that CUDA events bracket every forward; busy fraction = the GPU time
   between those events / the wall time from the model's hand-over to the end of its last
   forward (the start of a run and its tail count against it).

Run on the device machine::

    python benchmarks/bench_gpu.py --out gpu.json            # ~3-5 min on an H100

``--device cpu --quick`` runs the same code on the CPU at toy sizes (what the test suite does, so
the script cannot rot); its numbers mean nothing. Results print as a table and go to ``--out``
as JSON with the device's name, torch and CUDA versions.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

BATCHES = (1, 2, 4, 8, 16, 32)
PRECISIONS = ("fp32", "bf16")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _net(name: str, device: torch.device) -> torch.nn.Module:
    from remotesam.model.parity import fill_parity
    from remotesam.models import create_model

    net = create_model(name)
    if name == "remotesam_parity":
        fill_parity(net)
    return net.eval().to(device)


def throughput(name: str, device: torch.device, size: int, batches: tuple[int, ...],
               reps: int) -> list[dict[str, Any]]:
    """Image-prompts per second of ``name`` at ``size`` px per (precision, batch)."""
    net = _net(name, device)
    rows = []
    for precision in PRECISIONS:
        if precision == "bf16" and device.type == "cpu":
            continue
        for b in batches:
            x = torch.randn(b, 3, size, size, device=device)
            ids = torch.randint(1000, 2000, (b, 20), device=device)
            mask = torch.ones(b, 20, dtype=torch.long, device=device)
            autocast = torch.autocast(device.type, torch.bfloat16, enabled=precision == "bf16")
            times = []
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            try:
                with torch.inference_mode(), autocast:
                    for i in range(reps + 2):  # two warm-up calls
                        _sync(device)
                        t = time.perf_counter()
                        net(x, ids, mask)
                        _sync(device)
                        if i >= 2:
                            times.append(time.perf_counter() - t)
            except torch.OutOfMemoryError:
                rows.append({"model": name, "precision": precision, "batch": b, "oom": True})
                break
            s = statistics.median(times)
            rows.append({
                "model": name, "precision": precision, "batch": b, "size": size,
                "ms_per_call": round(1e3 * s, 2), "image_prompts_per_s": round(b / s, 1),
                "peak_mem_gib": round(torch.cuda.max_memory_allocated(device) / 2**30, 2)
                if device.type == "cuda" else None,
            })
            print(f"{name} {precision} batch {b:2d}: {rows[-1]['image_prompts_per_s']:8.1f} "
                  f"image-prompts/s ({rows[-1]['ms_per_call']} ms/call)", flush=True)
    return rows


class _Timed(torch.nn.Module):
    """A network whose forwards are bracketed by CUDA events (or wall clock on the CPU)."""

    def __init__(self, net: torch.nn.Module, device: torch.device) -> None:
        super().__init__()
        self.net = net
        self.device = device
        self.events: list[tuple[Any, Any]] = []
        self.cpu_busy = 0.0
        self.items = 0
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self.net, name)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        self.items += int(args[0].shape[0])
        if self.device.type == "cuda":
            start, end = (torch.cuda.Event(enable_timing=True) for _ in range(2))
            start.record()
            out = self.net(*args, **kwargs)
            end.record()
            self.events.append((start, end))
            return out
        t = time.perf_counter()
        out = self.net(*args, **kwargs)
        self.cpu_busy += time.perf_counter() - t
        return out

    def busy_s(self) -> float:
        _sync(self.device)
        if self.device.type == "cuda":
            return sum(s.elapsed_time(e) for s, e in self.events) / 1e3
        return self.cpu_busy


def pipeline(name: str, device: torch.device, tasks: tuple[str, ...], n_images: int,
             image_size: int, batch: int, precision: str, net_size: int = 896
             ) -> list[dict[str, Any]]:
    """Busy fraction of the network in real harness runs of ``tasks``."""
    from remotesam.bench import evaluate
    from remotesam.predictor import RemoteSAM
    from remotesam.synth.generator import generate

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        generate(data, seed=0, n_images=n_images, image_size=image_size, n_train=0, n_val=0)
        for task in tasks:
            timed = _Timed(_net(name, device), device)
            model = RemoteSAM(timed, device=str(device), precision=precision, batch_size=batch,
                              image_size=net_size)
            t0 = time.perf_counter()
            doc = evaluate(model, tasks=[task], data_root=data, results_dir=Path(tmp) / task)
            _sync(device)
            wall = time.perf_counter() - t0
            busy = timed.busy_s()
            rows.append({
                "task": task, "model": name, "precision": precision, "batch": batch,
                "image_size": image_size, "images": n_images, "forward_calls": timed.calls,
                "image_prompts": timed.items, "device_busy_s": round(busy, 3),
                "wall_s": round(wall, 3), "busy_fraction": round(busy / wall, 3),
                "failed": sum(r.n_failed for r in doc.results),
            })
            print(f"pipeline {task}: busy {rows[-1]['busy_fraction']:.3f} "
                  f"({busy:.2f} s of {wall:.2f} s, {timed.items} image-prompts)", flush=True)
    return rows


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--model", default="remotesam_parity")
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--images", type=int, default=40, help="procedural images per pipeline run")
    ap.add_argument("--precision", default="bf16", help="precision of the pipeline runs")
    ap.add_argument("--quick", action="store_true", help="toy sizes (a smoke test, e.g. on CPU)")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    device = torch.device(args.device)
    size, batches, image_size = (896, BATCHES, 800) if not args.quick else (224, (1, 2), 96)
    model = args.model if not args.quick else "remotesam_tiny"
    precision = args.precision if device.type == "cuda" else "fp32"
    result = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda"
        else platform.processor() or platform.machine(),
        "torch": torch.__version__, "cuda": torch.version.cuda, "quick": args.quick,
        "throughput": throughput(model, device, size, batches, 1 if args.quick else args.reps),
        "pipeline": pipeline(model, device, ("det", "ref"), 2 if args.quick else args.images,
                             image_size, 8, precision, size),
    }
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    return result


if __name__ == "__main__":
    main()
