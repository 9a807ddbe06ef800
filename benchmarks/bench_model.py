"""CPU performance of the RemoteSAM network (pytest-benchmark).

Run:  python -m pytest benchmarks/bench_model.py --benchmark-only -s

* ``test_matmul_fp32``: a 2048^3 float32 matmul, the machine's reference GEMM rate.
* ``test_forward_parity_fp32``: one forward pass of ``remotesam_parity`` at 896x896 (the golden
  configuration, filled by the parity rule so that its logits are non-degenerate); its FLOPs are
  counted with ``torch.utils.flop_counter.FlopCounterMode`` and the achieved GFLOP/s is reported
  as a fraction of the matmul rate measured in the same run (``extra_info``).
* ``test_forward_parity_bf16``: the same under ``torch.autocast("cpu", torch.bfloat16)``; reports
  the speed-up over fp32 and the fraction of mask pixels that change. Skipped on CPUs without
  native bf16 arithmetic (AVX512-BF16 / AMX), where bf16 runs emulated and is 10-50x slower.
* ``test_forward_tiny``: the tiny config at batch 1 and 4.

Numbers are only comparable within one run (ratios); nothing here asserts a time.
"""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from remotesam.model.network import build_text_encoder
from remotesam.model.parity import fill_parity
from remotesam.models import create_model

PARITY_IDS = [101, 1996, 13297, 2006, 1996, 2157, 102] + [0] * 13
ROUNDS = int(os.environ.get("REMOTESAM_BENCH_ROUNDS", "1"))
_RESULTS: dict[str, float] = {}


def _cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def native_bf16() -> bool:
    if os.environ.get("REMOTESAM_BENCH_FORCE_BF16") == "1":
        return True
    flags = _cpu_flags()
    return bool(flags & {"avx512_bf16", "amx_bf16"}) or platform.machine() in ("arm64", "aarch64")


def _image(size: int, batch: int = 1) -> torch.Tensor:
    """A smooth deterministic test pattern, normalised like an RGB photo."""
    yy, xx = torch.meshgrid(torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing="ij")
    chans = [torch.sin(9 * xx + 4 * yy), torch.cos(7 * yy - 3 * xx), torch.sin(5 * (xx * yy) + 1)]
    img = torch.stack(chans)[None].repeat(batch, 1, 1, 1)
    return img * 1.5


def _tokens(batch: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    ids = torch.tensor([PARITY_IDS] * batch)
    return ids, (ids != 0).long()


def count_flops(name: str, size: int, batch: int = 1) -> int:
    """FLOPs of one forward pass (visual part on the meta device, BERT on CPU)."""
    with torch.device("meta"):
        model = create_model(name)
        x = torch.empty(batch, 3, size, size)
        feats = torch.empty(batch, model.config.text_hidden, 20)
        ids, mask = (
            torch.zeros(batch, 20, dtype=torch.long),
            torch.ones(batch, 20, dtype=torch.long),
        )
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(x, ids, mask, text_features=feats)
    visual = counter.get_total_flops()
    text_model = build_text_encoder(model.config).eval()
    counter = FlopCounterMode(display=False)
    ids, mask = _tokens(batch)
    with counter, torch.no_grad():
        text_model(input_ids=ids, attention_mask=mask)
    return visual + counter.get_total_flops()


@pytest.fixture(scope="module")
def parity_model():
    torch.manual_seed(0)
    model = create_model("remotesam_parity")
    fill_parity(model)
    return model.eval()


@pytest.fixture(scope="module")
def parity_flops() -> int:
    return count_flops("remotesam_parity", 896)


def _matmul_rate(n: int = 2048, reps: int = 3) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best / 1e9


def test_matmul_fp32(benchmark):
    n = 2048
    a, b = torch.randn(n, n), torch.randn(n, n)
    benchmark.pedantic(lambda: a @ b, rounds=5, iterations=1, warmup_rounds=1)
    rate = 2 * n**3 / benchmark.stats.stats.min / 1e9
    _RESULTS["matmul_gflops"] = rate
    benchmark.extra_info.update(
        {"op": "matmul", "n": n, "dtype": "float32", "gflops_per_s": rate,
         "threads": torch.get_num_threads()}
    )


def _timed_forward(model, x, ids, mask, times: list[float], autocast: bool = False):
    t = time.perf_counter()
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        out = model(x, ids, mask)
    times.append(time.perf_counter() - t)
    return out


def test_forward_parity_fp32(benchmark, parity_model, parity_flops):
    x, (ids, mask) = _image(896), _tokens()
    before = _matmul_rate()
    times: list[float] = []
    out = benchmark.pedantic(
        _timed_forward, args=(parity_model, x, ids, mask, times), rounds=ROUNDS, iterations=1,
        warmup_rounds=0,
    )
    after = _matmul_rate()
    seconds = min(times)
    mm = max(before, after, _RESULTS.get("matmul_gflops", 0.0))
    rate = parity_flops / seconds / 1e9
    _RESULTS["fp32_seconds"] = seconds
    _RESULTS["fp32_mask"] = out.argmax(1)
    benchmark.extra_info.update({
        "model": "remotesam_parity", "image_size": 896, "batch": 1, "precision": "fp32",
        "threads": torch.get_num_threads(), "gflop": parity_flops / 1e9, "seconds": seconds,
        "gflops_per_s": rate, "matmul_gflops_per_s": mm, "fraction_of_matmul": rate / mm,
    })
    print(f"\nparity fp32: {parity_flops / 1e9:.1f} GFLOP in {seconds:.2f} s = {rate:.1f} GFLOP/s, "
          f"{100 * rate / mm:.0f}% of matmul ({mm:.1f} GFLOP/s)")


@pytest.mark.skipif(not native_bf16(), reason="this CPU has no native bf16 (AVX512-BF16/AMX); "
                    "bf16 would run emulated, 10-50x slower than fp32. "
                    "Set REMOTESAM_BENCH_FORCE_BF16=1 to run anyway.")
def test_forward_parity_bf16(benchmark, parity_model, parity_flops):
    x, (ids, mask) = _image(896), _tokens()
    times: list[float] = []
    out = benchmark.pedantic(
        _timed_forward, args=(parity_model, x, ids, mask, times, True), rounds=ROUNDS,
        iterations=1, warmup_rounds=1,
    )
    seconds = min(times)
    info = {
        "model": "remotesam_parity",
        "image_size": 896,
        "batch": 1,
        "precision": "bf16-autocast",
        "threads": torch.get_num_threads(),
        "seconds": seconds,
        "gflops_per_s": parity_flops / seconds / 1e9,
    }
    if "fp32_mask" in _RESULTS:
        changed = (out.argmax(1) != _RESULTS["fp32_mask"]).float().mean().item()
        info.update({"speedup_vs_fp32": _RESULTS["fp32_seconds"] / seconds,
                     "mask_pixels_changed": changed})
        print(f"\nparity bf16: {seconds:.2f} s, x{info['speedup_vs_fp32']:.2f} vs fp32, "
              f"{100 * changed:.3f}% mask pixels changed")
    benchmark.extra_info.update(info)


@pytest.mark.parametrize("batch", [1, 4])
def test_forward_tiny(benchmark, batch):
    torch.manual_seed(0)
    model = create_model("remotesam_tiny").eval()
    x, (ids, mask) = _image(224, batch), _tokens(batch)
    times: list[float] = []
    benchmark.pedantic(_timed_forward, args=(model, x, ids, mask, times), rounds=5,
                       iterations=1, warmup_rounds=1)
    flops = count_flops("remotesam_tiny", 224, batch)
    benchmark.extra_info.update({
        "model": "remotesam_tiny", "image_size": 224, "batch": batch, "precision": "fp32",
        "threads": torch.get_num_threads(), "gflop": flops / 1e9,
        "seconds_per_image": min(times) / batch,
    })
