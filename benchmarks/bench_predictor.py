"""Predictor speed: class prompts batched into forward passes vs one prompt per forward pass.

The official wrapper runs one full forward pass per class prompt. ``RemoteSAM`` batches the
prompts of one image (``batch_size``) and caches text features of repeated prompts. This suite
runs ``detection`` with the 8 first DIOR classes on the real DIOR sample image with the tiny
network (``remotesam_tiny``, seed 0, 224x224), batched (``batch_size=8``) and one prompt per
forward pass (``batch_size=1``, no text cache), checks that both give the same boxes, and
reports the ratio of the best times (stored in ``extra_info`` and printed). No timing is
asserted.

Run::

    python -m pytest benchmarks/bench_predictor.py --benchmark-columns=min,median,rounds -s
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import torch

from remotesam.image import load_image
from remotesam.predictor import RemoteSAM

CLASSES = ["airplane", "airport", "baseballfield", "basketballcourt", "bridge", "chimney", "dam",
           "expressway-service-area"]


@pytest.fixture(scope="module")
def net() -> torch.nn.Module:
    from remotesam.models import create_model

    torch.manual_seed(0)
    return create_model("remotesam_tiny").eval()


@pytest.fixture(scope="module")
def image(real_data: Path) -> np.ndarray:
    return load_image(real_data / "dior/JPEGImages/00001.jpg")


@pytest.mark.parametrize("precision", ["fp32"])
def test_detection_batched_vs_per_prompt(benchmark, net, image, precision: str) -> None:
    batched = RemoteSAM(net, batch_size=8, precision=precision)
    single = RemoteSAM(net, batch_size=1, precision=precision, text_cache_size=0)

    def run_batched():
        return batched.detection(image, CLASSES)

    def run_single():
        return single.detection(image, CLASSES)

    got = benchmark.pedantic(run_batched, rounds=3, iterations=1, warmup_rounds=1)
    t_batched = float(benchmark.stats.stats.min)
    want, t_single = None, float("inf")
    for _ in range(2):
        t0 = time.perf_counter()
        want = run_single()
        t_single = min(t_single, time.perf_counter() - t0)
    assert want is not None
    # same boxes; logits may differ in the last float bits with the batch size (CPU kernels)
    assert got.boxes.shape == want.boxes.shape
    np.testing.assert_array_equal(got.labels, want.labels)

    ratio = t_single / t_batched
    benchmark.extra_info.update({
        "model": "remotesam_tiny",
        "task": "detection",
        "classes": len(CLASSES),
        "image_size": [int(image.shape[0]), int(image.shape[1])],
        "net_input": batched.image_size,
        "batch": 8,
        "precision": precision,
        "threads": torch.get_num_threads(),
        "batched_best_s": t_batched,
        "per_prompt_best_s": t_single,
        "speedup": ratio,
    })
    print(
        f"\ndetection x{len(CLASSES)} classes ({precision}, {torch.get_num_threads()} threads): "
        f"batched {t_batched:.2f} s, one prompt per pass {t_single:.2f} s, speed-up {ratio:.2f}x"
    )


def test_stream_vs_method_calls(benchmark, net, image) -> None:
    """Eight images (shifted copies of the DIOR sample), detection of 8 classes: the engine's
    stream (``engine.run``: prefetch threads, batches across images, reduce beside the next
    forwards) against one ``model.detection`` call per image. Same boxes; ratio reported."""
    from remotesam import reduce
    from remotesam.engine import Request
    from remotesam.text import prompt

    images = [np.ascontiguousarray(np.roll(image, 37 * i, axis=1)) for i in range(8)]
    model = RemoteSAM(net, batch_size=8)
    names = tuple(CLASSES)
    prompts = tuple(prompt(c) for c in names)

    def stream():
        reqs = [
            (i, Request(im, prompts, frozenset({"mask", "prob"}))) for i, im in enumerate(images)
        ]
        return [reduce.detections(a, names) for _, a in model.engine.run(reqs)]

    def calls():
        return [model.detection(im, CLASSES) for im in images]

    got = benchmark.pedantic(stream, rounds=2, iterations=1, warmup_rounds=0)
    t_stream = float(benchmark.stats.stats.min)
    t0 = time.perf_counter()
    want = calls()
    t_calls = time.perf_counter() - t0
    for g, w in zip(got, want):
        assert g.boxes.shape == w.boxes.shape
    benchmark.extra_info.update({"model": "remotesam_tiny", "images": 8, "classes": len(CLASSES),
                                 "stream_best_s": t_stream, "calls_s": t_calls,
                                 "speedup": t_calls / t_stream})
    print(f"\n8 images x {len(CLASSES)} classes: stream {t_stream:.2f} s, calls {t_calls:.2f} s, "
          f"speed-up {t_calls / t_stream:.2f}x")
