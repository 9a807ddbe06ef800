"""Keep the accelerator busy: busy fraction of a simulated accelerator, per task.

The simulated accelerator is a network that sleeps ``10 ms`` per image-prompt plus ``1 ms`` per
call (the CPU stays free, as with a real GPU) and returns fixed logits at the network size
(896 px: background everywhere but a few foreground rectangles, so mask-to-box, NMS and RLE do
real work). It is plugged in as a model factory (``--model-factory bench_accelerator:factory``
with ``benchmarks/`` on ``PYTHONPATH``, or ``run(..., model_factory=factory)``), on 800 px
images written by ``remotesam-bench synth --image-size 800``, ``--batch-size 8``.

Busy fraction = simulated device time (the sum of the sleeps asked for) / prediction wall time
(from the model factory's return to the last prediction committed to the store). A ratio within
one run; nothing is asserted about time. The factory first sleeps ``LOAD_S`` (0.5 s, ``--load-s``)
as loading a checkpoint takes time, during which the harness decodes the run's first images
(``remotesam.engine.ImagePreloader``); ``--load-s 0`` measures a run without that head start.

Run (pytest-benchmark)::

    python -m pytest benchmarks/bench_accelerator.py --benchmark-only -s

or as a script, on synth folders it writes (24 and 160 object images) or on an existing one::

    python benchmarks/bench_accelerator.py [--n-images 24,160] [--cache DIR] [--tasks det,mlc]
    python benchmarks/bench_accelerator.py --data /tmp/synth800 [--all]

The data: ``remotesam-bench synth --image-size 800 --n-images N --n-train 0 --n-val 0`` (N object
images and the scene images, 800 px). At N = 160 every task keeps the simulated device busy for
seconds (cnt 4 s, det 32 s, cap 47 s), as at full-benchmark scale; at N = 24 (cnt 0.7 s, det 4.9
s) the start of a run (loading and batching the first images, reported as ``first_forward_s``)
and its tail (the last batches' dense work, reduce and commit) weigh.

Each process first runs one task on the data unmeasured (``--no-warmup`` turns it off), so that
what a process pays once (imports on first use, the first large allocations) falls on no task in
particular; without it, the first task measured pays it.

``REMOTESAM_SYNTH800=DIR`` makes the pytest run keep (and reuse) its synth folders under DIR.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import torch

#: Object images of the synthetic data sets (see the module docstring).
SIZES = (24, 160)
#: Simulated cost of one image-prompt and of one call, in seconds.
PER_ITEM_S = 0.010
PER_CALL_S = 0.001
#: Simulated time to load the model (the factory's), in seconds: reading the official
#: checkpoint's 242 M fp32 parameters (966 MB) at 2 GB/s alone takes this long; a real load to a
#: GPU takes longer. The harness decodes the run's first images meanwhile.
LOAD_S = 0.5
NET_SIZE = 896
BATCH = 8
TASKS = ("det", "mlc", "mcc", "seg", "cnt", "ref", "vg", "cap")
TARGETS = {"det": 0.9, "mlc": 0.9, "mcc": 0.9, "seg": 0.9, "cnt": 0.9, "ref": 0.8, "vg": 0.8,
           "cap": 0.8}


class SimulatedAccelerator(torch.nn.Module):
    """``net(image (B,3,S,S), ids, mask, text_features=None) -> fixed logits (B, 2, S, S)``.

    Sleeps ``PER_CALL_S + PER_ITEM_S * B`` per call (``time.sleep`` releases the GIL: the CPU is
    free while the "accelerator" works) and counts the time it asked for.
    """

    def __init__(self, size: int = NET_SIZE) -> None:
        super().__init__()
        logits = torch.zeros(1, 2, size, size)
        logits[:, 1] = -2.0
        u = size // 16
        for i, (r, c, h, w) in enumerate([(1, 1, 2, 3), (5, 8, 3, 2), (10, 3, 2, 2), (12, 12, 3, 3),
                                          (3, 12, 1, 1), (8, 1, 4, 1)]):
            logits[:, 1, r * u: (r + h) * u, c * u: (c + w) * u] = 1.0 + 0.25 * i
        self.register_buffer("logits", logits)
        self.lock = threading.Lock()
        self.busy_s = 0.0
        self.calls = 0
        self.items = 0
        self.first: float | None = None  # perf_counter of the first call

    def forward(self, image: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                text_features: Any = None) -> torch.Tensor:
        b = int(image.shape[0])
        t = PER_CALL_S + PER_ITEM_S * b
        if self.first is None:
            self.first = time.perf_counter()
        time.sleep(t)
        with self.lock:
            self.busy_s += t
            self.calls += 1
            self.items += b
        return self.logits.expand(b, -1, -1, -1)


_LAST: dict[str, Any] = {}


def factory(path: Any, *, device: str = "cpu", precision: str = "fp32", batch_size: int = BATCH,
            **_: Any) -> Any:
    """Model factory: a ``RemoteSAM`` around :class:`SimulatedAccelerator` (896 px), after
    ``LOAD_S`` seconds of simulated loading."""
    from remotesam.predictor import RemoteSAM

    time.sleep(LOAD_S)

    net = SimulatedAccelerator()
    model = RemoteSAM(net, device="cpu", precision="fp32", batch_size=batch_size,
                      image_size=NET_SIZE)
    # it stands in for an accelerator: the engine's accelerator layout (the network in a thread
    # of its own), which the CPU device would otherwise not get (older versions, measured as
    # "before", have no such option)
    engine = getattr(model, "engine", None)
    if engine is not None and hasattr(engine, "forward_thread"):
        engine.configure(forward_thread=True)
    _LAST.update(net=net, t_ready=time.perf_counter())
    return model


def measure(data: Path, tasks: list[str], results_dir: Path, batch_size: int = BATCH
            ) -> dict[str, Any]:
    """One run of ``tasks`` on ``data`` with the simulated accelerator; the busy fraction."""
    from remotesam.bench.records import store as store_mod
    from remotesam.bench.run import RunConfig, run

    last = {"t": 0.0, "n": 0}
    original = store_mod.ResultsStore.put_predictions

    def put(self: Any, key: Any, items: Any, *a: Any, **k: Any) -> Any:
        out = original(self, key, items, *a, **k)
        last["t"] = time.perf_counter()
        last["n"] += len(list(items)) if not isinstance(items, list) else len(items)
        return out

    _LAST.clear()
    store_mod.ResultsStore.put_predictions = put  # type: ignore[method-assign]
    try:
        t0 = time.perf_counter()
        out = run(RunConfig(tasks=tasks, data_root=data, results_dir=results_dir, device="cpu",
                            batch_size=batch_size, progress=False), model_factory=factory)
        wall = time.perf_counter() - t0
    finally:
        store_mod.ResultsStore.put_predictions = original  # type: ignore[method-assign]
    net = _LAST["net"]
    predict_wall = last["t"] - _LAST["t_ready"]
    return {
        "tasks": ",".join(tasks), "samples": out.n_predicted,
        "failed": sum(r.n_failed for r in out.document.results) if out.document else None,
        "forward_calls": net.calls, "image_prompts": net.items,
        "mean_batch": round(net.items / max(net.calls, 1), 2),
        "device_s": round(net.busy_s, 3), "predict_wall_s": round(predict_wall, 3),
        "busy_fraction": round(net.busy_s / predict_wall, 3) if predict_wall > 0 else None,
        # from the model's return to the first forward: loading and batching the first images
        "first_forward_s": round(net.first - _LAST["t_ready"], 3) if net.first else None,
        "run_wall_s": round(wall, 3), "load_s": LOAD_S, "errors": out.errors,
    }


def synth(n_images: int, cache: Path) -> Path:
    """The 800 px synth folder of ``n_images`` object images under ``cache`` (written once)."""
    root = cache / f"synth800-n{n_images}"
    if not (root / "manifest.json").is_file():
        from remotesam.synth.generator import generate

        generate(root, seed=0, n_images=n_images, image_size=800, n_train=0, n_val=0)
    return root


def warmup(data: Path, results_dir: Path) -> None:
    """One unmeasured run (det), so that one-off process costs fall on no measured task."""
    measure(data, ["det"], results_dir)


try:  # pytest-benchmark entry points (the module also runs as a script)
    import pytest

    @pytest.fixture(scope="module", params=SIZES, ids=[f"n{n}" for n in SIZES])
    def synth800(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
                 ) -> Path:
        env = os.environ.get("REMOTESAM_SYNTH800")
        data = synth(request.param, Path(env) if env else tmp_path_factory.mktemp("synth800"))
        warmup(data, tmp_path_factory.mktemp("warmup"))
        return data

    @pytest.mark.parametrize("task", TASKS)
    def test_busy_fraction(benchmark: Any, synth800: Path, tmp_path: Path, task: str) -> None:
        res: dict[str, Any] = {}

        def once() -> None:
            res.update(measure(synth800, [task], tmp_path / f"results-{time.monotonic_ns()}"))

        benchmark.pedantic(once, rounds=1, iterations=1)
        assert res["errors"] == [] and res["samples"] > 0
        res.update(
            target=TARGETS[task],
            per_item_ms=PER_ITEM_S * 1e3,
            per_call_ms=PER_CALL_S * 1e3,
            net_size=NET_SIZE,
            batch=BATCH,
            image_size=800,
            n_object_images=json.loads((synth800 / "manifest.json").read_text())["counts"][
                "object_scenes"],
            data="synthetic (remotesam.synth)",
        )
        benchmark.extra_info.update(res)
        print(f"\n{task}: {res}")

    def test_busy_fraction_all_tasks_shared(benchmark: Any, synth800: Path, tmp_path: Path) -> None:
        """All eight tasks in one run: DIOR det, mlc and cnt share their forwards."""
        res: dict[str, Any] = {}

        def once() -> None:
            res.update(measure(synth800, list(TASKS), tmp_path / "results-all"))

        benchmark.pedantic(once, rounds=1, iterations=1)
        assert res["errors"] == []
        benchmark.extra_info.update(res)
        print(f"\nall: {res}")
except ImportError:  # pragma: no cover - running as a script without pytest
    pass


def main() -> None:
    global PER_ITEM_S, LOAD_S
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, help="an 800 px remotesam.synth folder (default: "
                    "write one per --n-images)")
    ap.add_argument("--n-images", default=",".join(map(str, SIZES)),
                    help="object images of the synth folders written (without --data)")
    ap.add_argument("--cache", type=Path, help="where to keep the synth folders (default: a "
                    "temporary folder)")
    ap.add_argument("--tasks", default=",".join(TASKS))
    ap.add_argument("--all", action="store_true", help="also all tasks in one run (sharing)")
    ap.add_argument("--no-warmup", action="store_true", help="no unmeasured first run")
    ap.add_argument("--batch-size", type=int, default=BATCH)
    ap.add_argument("--per-item-ms", type=float, default=PER_ITEM_S * 1e3,
                    help="simulated device time per image-prompt; a small value (e.g. 2) makes "
                         "the run host-bound and measures what the host can feed")
    ap.add_argument("--load-s", type=float, default=LOAD_S,
                    help="simulated model loading time in seconds (0: an instant load)")
    args = ap.parse_args()
    PER_ITEM_S = args.per_item_ms / 1e3
    LOAD_S = args.load_s
    with tempfile.TemporaryDirectory() as tmp:
        folders = ([args.data] if args.data else
                   [synth(int(n), args.cache or Path(tmp)) for n in args.n_images.split(",")])
        runs = [(t, [t]) for t in args.tasks.split(",")] + (
            [("all", list(TASKS))] if args.all else []
        )
        for data in folders:
            print(f"{data.name}:", flush=True)
            if not args.no_warmup:
                warmup(data, Path(tmp) / f"warmup-{data.name}")
            for i, (name, tasks) in enumerate(runs):
                r = measure(data, tasks, Path(tmp) / f"{data.name}-{i}-{name}", args.batch_size)
                print(f"{name:4s} busy {r['busy_fraction']:.3f}  device {r['device_s']:7.2f} s  "
                      f"host {1e3 * r['predict_wall_s'] / r['image_prompts']:5.2f} "
                      f"ms/image-prompt  predict wall {r['predict_wall_s']:7.2f} s  first "
                      f"forward {r['first_forward_s']:.2f} s  calls {r['forward_calls']:5d}  "
                      f"image-prompts {r['image_prompts']:6d}  samples {r['samples']}",
                      flush=True)


if __name__ == "__main__":
    main()
