"""Mask-to-box speed: vectorised ``masks_to_boxes`` vs the straightforward official algorithm.

Input: the golden performance map ``perf_mask_896`` (896x896, 200 components of random small
ellipses; probabilities 200/255 inside, 30/255 outside), as in ``postprocess_golden.md``. The
official ``M2B`` takes about 10 s on it (2-core VM), almost all in the O(n^2) rasterised
``remove_inner``.

Run::

    python -m pytest benchmarks/bench_m2b.py --benchmark-columns=min,median,rounds -s

Each case benchmarks the fast implementation with pytest-benchmark and, in the same run, times
the reference once (it takes seconds); the speed-up ratio (reference / fast, best times) is
stored in ``extra_info`` and printed. Both must return identical boxes (coordinates exact,
confidence within 1e-6). No timing is asserted.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from remotesam.postprocess import masks_to_boxes, masks_to_boxes_reference


@pytest.fixture(scope="module")
def perf_map(reference_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    path = reference_dir / "postprocess_golden.npz"
    if not path.is_file():
        pytest.skip(f"golden file {path} not found")
    packed = np.load(path)["perf_mask_896"]
    mask = np.unpackbits(packed)[: 896 * 896].reshape(896, 896)
    probs = np.where(mask == 1, 200, 30).astype(np.uint8).astype(np.float32) / np.float32(255)
    return mask, probs


def _best_time(fn, repeats: int) -> tuple[float, np.ndarray]:
    best, out = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    assert out is not None
    return best, out


@pytest.mark.parametrize("remove_inner", [True, False], ids=["remove_inner", "keep_inner"])
@pytest.mark.parametrize("box_type", ["hbb", "obb"])
def test_m2b_fast_vs_reference(benchmark, perf_map, box_type, remove_inner):
    mask, probs = perf_map

    def fast() -> np.ndarray:
        return masks_to_boxes(mask, probs, box_type, remove_inner=remove_inner)

    def reference() -> np.ndarray:
        return masks_to_boxes_reference(mask, probs, box_type, remove_inner=remove_inner)

    got = benchmark.pedantic(fast, rounds=10, iterations=1, warmup_rounds=1)
    t_fast, _ = _best_time(fast, 10)
    t_ref, want = _best_time(reference, 1)

    assert got.shape == want.shape == (200, 5 if box_type == "hbb" else 9)
    np.testing.assert_array_equal(got[:, :-1], want[:, :-1])
    np.testing.assert_allclose(got[:, -1], want[:, -1], rtol=0, atol=1e-6)

    ratio = t_ref / t_fast
    benchmark.extra_info.update(
        {
            "task": "masks_to_boxes",
            "image_size": [896, 896],
            "components": 200,
            "box_type": box_type,
            "remove_inner": remove_inner,
            "fast_best_s": t_fast,
            "reference_s": t_ref,
            "speedup": ratio,
        }
    )
    print(
        f"\nM2B {box_type} remove_inner={remove_inner}: fast {t_fast * 1e3:.1f} ms, "
        f"reference {t_ref:.2f} s, speed-up {ratio:.0f}x"
    )
