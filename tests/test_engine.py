"""The inference engine: dense outputs exact, order kept, failures isolated, memory bounded."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from remotesam.engine import OUTPUTS, Answer, Engine, Request, nearest_index
from remotesam.predictor import RemoteSAM, _resize_nearest
from remotesam.text import Tokenizer

S = 32


class ContentNet(torch.nn.Module):
    """Logits that depend on each item's image and tokens only (batch-invariant, elementwise)."""

    def __init__(self, fail_id: int | None = None) -> None:
        super().__init__()
        self.calls: list[int] = []
        self.fail_id = fail_id  # a first-token id that makes the forward raise

    def forward(self, image, input_ids, attention_mask, text_features=None):
        self.calls.append(int(image.shape[0]))
        if self.fail_id is not None and bool((input_ids[:, 1] == self.fail_id).any()):
            raise RuntimeError("this prompt breaks the network")
        w = (input_ids.sum(1) % 7).float()[:, None, None] / 7.0 - 0.5
        l1 = image.mean(1) * (1.0 + w) + w
        return torch.stack([torch.full_like(l1, 0.1), l1], dim=1)


def _engine(net: torch.nn.Module, batch_size: int = 4, **kw) -> Engine:
    return Engine(net, device=torch.device("cpu"), image_size=S, image_mean=(0.5, 0.5, 0.5),
                  image_std=(0.25, 0.25, 0.25), tokenizer=Tokenizer(), batch_size=batch_size, **kw)


def _image(h: int, w: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


@pytest.mark.parametrize("hw", [(S, S), (45, 70), (7, 100), (64, 64), (97, 13)])
def test_dense_outputs_equal_the_host_reference(hw) -> None:
    net = ContentNet()
    eng = _engine(net)
    img = _image(*hw, seed=hw[0])
    prompts = ("a ship", "the road", "a small car", "dam", "a bridge")
    ans = eng.answer(Request(img, prompts, OUTPUTS))
    # reference: the network alone, then the official host post-processing
    from remotesam.image import normalize, resize_image

    x = normalize(resize_image(img, S), (0.5,) * 3, (0.25,) * 3)
    ids, mask = Tokenizer().encode(list(prompts))
    logits = net(x.expand(len(prompts), -1, -1, -1), ids, mask).float()
    fg = (logits[:, 1] > logits[:, 0]).to(torch.uint8).numpy()
    prob = torch.softmax(logits, dim=1)[:, 1].contiguous().numpy()
    np.testing.assert_array_equal(ans.mask_net, fg)
    np.testing.assert_array_equal(ans.prob_net, prob)
    np.testing.assert_array_equal(ans.mask, _resize_nearest(fg, hw))
    np.testing.assert_array_equal(ans.prob, _resize_nearest(prob, hw))
    np.testing.assert_array_equal(ans.gmp, prob.reshape(len(prompts), -1).max(1).astype(np.float64))
    np.testing.assert_allclose(ans.gap, prob.reshape(len(prompts), -1).mean(1, dtype=np.float64),
                               rtol=0, atol=1e-12)
    assert ans.hw == hw and ans.mask.dtype == np.uint8 and ans.prob.dtype == np.float32


def test_nearest_index_is_torch_legacy_nearest() -> None:
    for n_in, n_out in [(32, 45), (32, 7), (896, 800), (896, 1000), (128, 128), (5, 10)]:
        src = torch.arange(n_in, dtype=torch.float32)[None, None, None, :]
        want = torch.nn.functional.interpolate(src, size=(1, n_out), mode="nearest")[0, 0, 0]
        np.testing.assert_array_equal(nearest_index(n_out, n_in), want.numpy().astype(np.intp))


def test_only_requested_outputs_are_computed() -> None:
    eng = _engine(ContentNet())
    ans = eng.answer(Request(_image(40, 50, 0), ("a",), frozenset({"pooled"})))
    assert ans.mask is ans.prob is ans.mask_net is ans.prob_net is None
    assert ans.gmp.shape == ans.gap.shape == (1,)
    with pytest.raises(ValueError, match="subset of"):
        Request(_image(4, 4, 0), ("a",), frozenset({"logits"}))
    with pytest.raises(ValueError, match="non-empty tuple of str"):
        Request(_image(4, 4, 0), (), frozenset({"mask"}))


def test_run_batches_across_images_in_order_with_the_same_answers() -> None:
    net = ContentNet()
    eng = _engine(net, batch_size=8)
    imgs = [_image(30 + i, 40, i) for i in range(5)]
    reqs = [(f"r{i}", Request(im, ("a ship",) if i % 2 else ("a ship", "a dam"),
                              frozenset({"mask", "prob", "pooled"})))
            for i, im in enumerate(imgs)]
    got = list(eng.run(reqs))
    assert [t for t, _ in got] == [t for t, _ in reqs]
    assert net.calls == [8]  # 3 x 2 + 2 x 1 prompts: one forward for all five images
    for (_, r), (_, a) in zip(reqs, got):
        one = eng.answer(r)
        for name in ("mask", "prob", "gmp", "gap"):
            np.testing.assert_array_equal(getattr(a, name), getattr(one, name))


def test_a_bad_image_fails_only_its_request(tmp_path: Path) -> None:
    eng = _engine(ContentNet())
    good = tmp_path / "good.png"
    Image.fromarray(_image(20, 20, 1)).save(good)
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png")
    reqs = [(0, Request(good, ("a",), frozenset({"mask"}))),
            (1, Request(bad, ("a",), frozenset({"mask"}))),
            (2, Request(tmp_path / "missing.png", ("a",), frozenset({"mask"}))),
            (3, Request(good, ("b",), frozenset({"mask"})))]
    out = dict(eng.run(reqs))
    assert isinstance(out[0], Answer) and isinstance(out[3], Answer)
    assert isinstance(out[1], ValueError) and "cannot read" in str(out[1])
    assert isinstance(out[2], FileNotFoundError)


def test_a_failing_forward_fails_only_the_images_of_its_items() -> None:
    net = ContentNet(fail_id=int(Tokenizer().encode("boom")[0][0, 1]))
    eng = _engine(net, batch_size=4)
    reqs = [(i, Request(_image(10, 10, i), (p,), frozenset({"mask"})))
            for i, p in enumerate(["ship", "boom", "dam", "car"])]
    out = dict(eng.run(reqs))
    assert isinstance(out[1], RuntimeError)
    assert all(isinstance(out[i], Answer) for i in (0, 2, 3))


def test_prefetch_runs_in_worker_threads_and_stays_bounded(monkeypatch) -> None:
    import remotesam.engine as engine_mod

    threads: set[str] = set()
    original = engine_mod.load_image

    def spy(image):
        threads.add(threading.current_thread().name)
        return original(image)

    monkeypatch.setattr(engine_mod, "load_image", spy)
    eng = _engine(ContentNet(), batch_size=2)
    taken = []

    def requests():
        for i in range(200):
            taken.append(i)
            yield i, Request(_image(8, 8, i), ("a",), frozenset({"pooled"}))

    it = eng.run(requests(), lookahead=4)
    first = next(it)
    assert first[0] == 0
    # bounded: the lookahead, plus a few batches inside the pipeline's small queues, plus the
    # few finished answers waiting for the caller; never all 200 requests
    assert len(taken) <= 4 + 1 + 7 * 2 + 4
    rest = list(it)
    assert [t for t, _ in rest] == list(range(1, 200))
    assert threads and all(n.startswith("remotesam-prefetch") for n in threads)


def test_fp16_refused_off_cuda_and_answer_select() -> None:
    with pytest.raises(ValueError, match="'fp16' needs a CUDA device"):
        _engine(ContentNet(), precision="fp16")
    eng = _engine(ContentNet())
    ans = eng.answer(Request(_image(9, 9, 0), ("a", "b", "a"), frozenset({"pooled"})))
    assert ans.prompts == ("a", "b", "a") and ans.gmp[0] == ans.gmp[2]
    sub = ans.select(["b"])
    assert sub.prompts == ("b",) and sub.gmp[0] == ans.gmp[1]


def test_predictor_methods_and_engine_agree() -> None:
    net = ContentNet()
    m = RemoteSAM(net, image_size=S, batch_size=3)
    img = _image(50, 60, 3)
    d = m.detection(img, ["ship", "dam"])
    ans = m.answer(
        Request(img, ("ship in the image", "dam in the image"), frozenset({"mask", "prob"}))
    )
    from remotesam import reduce

    again = reduce.detections(ans, ("ship", "dam"))
    np.testing.assert_array_equal(d.boxes, again.boxes)
    np.testing.assert_array_equal(d.scores, again.scores)


def test_channels_last_on_the_bundled_network_stays_within_tolerance() -> None:
    ckpt = (
        Path(__file__).resolve().parents[1]
        / "remotesam"
        / "checkpoints"
        / "remotesam_tiny.safetensors"
    )
    m = RemoteSAM.from_checkpoint(ckpt, batch_size=4)
    img = _image(100, 90, 0)
    a = m.multi_label_cls(img, ["ship", "dam", "airplane"])
    m.engine.configure(channels_last=True)  # the network also holds 5-D tensors: convs only
    assert m.engine.channels_last
    b = m.multi_label_cls(img, ["ship", "dam", "airplane"])
    np.testing.assert_allclose(a.scores, b.scores, rtol=0, atol=1e-4)


def test_identical_unreadable_files_each_fail_under_their_own_name(tmp_path: Path) -> None:
    """Files with the same bytes are read once; each sample's error still names its own file."""
    from remotesam.bench.api import DatasetError, Sample
    from remotesam.bench.run.executor import _stream

    class OnePrompt:
        name = "one"

        def requests(self, sample):
            return [Request(sample.image, ("a",), frozenset({"mask"}))]

        def reduce(self, sample, answers):
            return {"n": len(answers)}

    paths = []
    for k in range(3):
        p = tmp_path / f"{k:05d}.jpg"
        p.write_bytes(b"the same garbage")
        paths.append(p)
    samples = [Sample(str(k), p) for k, p in enumerate(paths)]
    same = {str(p): "0" * 64 for p in paths}  # one content digest: one read for all three
    out = {i: res for _, i, res in _stream([(OnePrompt(), samples)], _engine(ContentNet()), same)}
    assert sorted(out) == [0, 1, 2]
    for i, p in enumerate(paths):
        assert isinstance(out[i], DatasetError)
        assert str(out[i]).startswith(f"image {p} is unreadable")
    assert "the same bytes as" in str(out[1]) and "the same bytes as" not in str(out[0])


class ThreadRecordingNet(ContentNet):
    """A ContentNet that records the thread of each forward and its intra-op thread count."""

    def __init__(self) -> None:
        super().__init__()
        self.threads: set[str] = set()
        self.num_threads: set[int] = set()

    def forward(self, image, input_ids, attention_mask, text_features=None):
        self.threads.add(threading.current_thread().name)
        self.num_threads.add(torch.get_num_threads())
        return super().forward(image, input_ids, attention_mask, text_features)


def test_on_the_cpu_the_network_runs_in_the_calling_thread_and_helpers_use_one_thread() -> None:
    """One OpenMP team only (the caller's): the network in the calling thread with its
    intra-op count; prefetch threads (here, the boundary function) with one."""
    helper_counts: list[int] = []

    def boundary(rgb: np.ndarray) -> np.ndarray:
        helper_counts.append(torch.get_num_threads())
        return np.zeros(rgb.shape[:2], np.float32)

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        net = ThreadRecordingNet()
        eng = _engine(net, batch_size=3, boundary_fn=boundary)
        reqs = [(i, Request(_image(40, 40, i), ("a", "b"), frozenset({"mask"}), boundary=True))
                for i in range(5)]
        seq = [eng.answer(r) for _, r in reqs]
        got = list(eng.run(reqs))
        assert net.threads == {threading.current_thread().name}
        assert net.num_threads == {2}
        assert helper_counts[len(reqs) :] == [1] * len(
            reqs
        )  # the sequential calls ran in this thread
        assert torch.get_num_threads() == 2  # the caller's count is left as it was
        for (_, ans), ref in zip(got, seq):
            np.testing.assert_array_equal(ans.mask, ref.mask)

        # the accelerator layout on request: the network in a thread of its own, same answers
        net2 = ThreadRecordingNet()
        eng2 = _engine(net2, batch_size=3, boundary_fn=boundary)
        eng2.configure(forward_thread=True)
        got2 = list(eng2.run(reqs))
        assert net2.threads == {"remotesam-forwarder"} and net2.num_threads == {2}
        for (_, a), (_, b) in zip(got, got2):
            np.testing.assert_array_equal(a.mask, b.mask)
    finally:
        torch.set_num_threads(before)


def test_host_allocator_tuning_is_on_with_glibc_and_can_be_turned_off() -> None:
    import os
    import platform
    import subprocess
    import sys

    code = "from remotesam.engine import tune_host_allocator as t; print(t(), t())"
    off = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "REMOTESAM_MALLOC_TUNING": "0"})
    assert off.stdout.split() == ["False", "False"]
    on = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    want = "True" if platform.libc_ver()[0] == "glibc" else "False"
    assert on.stdout.split() == [want, want]


def test_accelerator_layout_ramps_the_first_batches_up_with_the_same_answers() -> None:
    """The accelerator layout starts with batches of 1, 2, 4, ... items (the device starts on the
    first prompt instead of waiting for a whole batch of images) and, when the total is known,
    halves the last ones; a fixed rule, so the same in every run; the answers equal the
    calling-thread layout's for a batch-invariant network."""
    reqs = [(i, Request(_image(40, 40, i), tuple(f"p{j}" for j in range(3)), frozenset({"mask"})))
            for i in range(6)]
    here = ContentNet()
    got = list(_engine(here, batch_size=8).run(reqs))
    assert here.calls == [8, 8, 2]  # the calling-thread layout: full batches from the start
    for _ in range(2):
        net = ContentNet()
        eng = _engine(net, batch_size=8)
        eng.configure(forward_thread=True)
        got2 = list(eng.run(reqs))  # a list: the total is known, the last batches halve
        assert net.calls == [1, 2, 4, 5, 3, 1, 1, 1]
        assert [t for t, _ in got2] == list(range(6))
        for (_, a), (_, b) in zip(got, got2):
            np.testing.assert_array_equal(a.mask, b.mask)
    net = ContentNet()
    eng = _engine(net, batch_size=8)
    eng.configure(forward_thread=True)
    got3 = list(eng.run(iter(reqs)))  # a stream of unknown length: no tail ramp
    assert net.calls == [1, 2, 4, 8, 3]
    for (_, a), (_, b) in zip(got, got3):
        np.testing.assert_array_equal(a.mask, b.mask)


class HugeNet(ContentNet):
    """Finite logits so large that their sum overflows float32, and inf for prompt "bad"."""

    def forward(self, image, input_ids, attention_mask, text_features=None):
        out = super().forward(image, input_ids, attention_mask) * 3e37
        bad = Tokenizer().encode(["bad"])[0][0, 1]
        out[input_ids[:, 1] == bad] = float("inf")
        return out


def test_non_finite_screen_fails_only_non_finite_items_and_keeps_huge_finite_ones() -> None:
    eng = _engine(HugeNet(), batch_size=4)
    reqs = [(0, Request(_image(40, 40, 0), ("a ship", "bad"), frozenset({"mask"}))),
            (1, Request(_image(40, 40, 1), ("a ship", "the road"), frozenset({"mask"})))]
    (_, r0), (_, r1) = list(eng.run(reqs))
    from remotesam.engine import NonFiniteOutputError

    assert isinstance(r0, NonFiniteOutputError) and "'bad'" in str(r0)
    assert isinstance(r1, Answer) and r1.mask.shape == (2, 40, 40)  # sums overflow, values finite


def _png_files(tmp_path: Path, n: int) -> list[Path]:
    paths = []
    for i in range(n):
        p = tmp_path / f"im{i}.png"
        Image.fromarray(_image(20 + i, 30, i)).save(p)
        paths.append(p)
    return paths


def test_preloader_hands_each_planned_image_once_and_keeps_load_errors(tmp_path: Path) -> None:
    from remotesam.engine import ImagePreloader
    from remotesam.image import load_image

    paths = _png_files(tmp_path, 3)
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png")
    missing = tmp_path / "missing.png"
    planned = [*paths, paths[0], bad, missing, np.zeros((4, 4, 3), np.uint8)]
    with ImagePreloader(planned, max_images=10) as pre:
        assert len(pre) == 5  # repeats and arrays are not planned
        assert pre.planned == tuple(str(x) for x in [*paths, bad, missing])
        assert pre.wait(10)  # decoded "while the model loaded"
        got = pre.take(str(paths[1]))  # str and Path name the same file
        assert got is not None and np.array_equal(got, load_image(paths[1]))
        assert pre.take(paths[1]) is None  # once
        assert pre.take(tmp_path / "other.png") is None and pre.take(np.zeros(3)) is None
        with pytest.raises(ValueError, match="cannot read"):
            pre.take(bad)
        with pytest.raises(FileNotFoundError):
            pre.take(missing)
        assert np.array_equal(pre.take(paths[0]), load_image(paths[0]))
    assert pre.take(paths[2]) is None  # closed: dropped


def test_preloader_stops_at_its_bounds_and_when_stopped(tmp_path: Path, monkeypatch) -> None:
    import remotesam.engine as engine_mod
    from remotesam.engine import ImagePreloader

    paths = _png_files(tmp_path, 4)
    assert len(ImagePreloader(paths, max_images=2)) == 2
    one = int(np.asarray(Image.open(paths[0])).nbytes)
    pre = ImagePreloader(paths, max_bytes=one)  # the first image reaches the bound
    assert pre.wait(10)
    assert pre.take(paths[0]) is not None and pre.take(paths[1]) is None
    # stop() while the first image is being decoded: that one is kept, no other is decoded
    started, gate = threading.Event(), threading.Event()
    original = engine_mod.load_image

    def slow(image):
        started.set()
        gate.wait(10)
        return original(image)

    monkeypatch.setattr(engine_mod, "load_image", slow)
    stopped = ImagePreloader(paths)
    assert started.wait(10)
    stopped.stop()
    threading.Timer(0.05, gate.set).start()
    assert stopped.take(paths[0]) is not None  # waits for the decode in progress
    assert stopped.wait(10)
    assert [stopped.take(p) for p in paths[1:]] == [None] * 3


def test_engine_takes_preloaded_images_instead_of_loading_them_again(tmp_path: Path,
                                                                     monkeypatch) -> None:
    import remotesam.engine as engine_mod
    from remotesam.engine import ImagePreloader

    paths = _png_files(tmp_path, 6)
    reqs = [(i, Request(p, ("a ship", "a dam"), frozenset({"mask", "prob", "pooled"})))
            for i, p in enumerate(paths)]
    plain = list(_engine(ContentNet()).run(reqs))
    pre = ImagePreloader(paths[:3])
    assert pre.wait(10)  # decoded "while the model loaded"
    loads: list[str] = []
    original = engine_mod.load_image

    def spy(image):
        loads.append(Path(image).name)
        return original(image)

    monkeypatch.setattr(engine_mod, "load_image", spy)
    with pre:
        got = list(_engine(ContentNet()).run(reqs, preload=pre))
    assert sorted(loads) == ["im3.png", "im4.png", "im5.png"]  # the others came preloaded
    for (t0, a0), (t1, a1) in zip(plain, got):
        assert t0 == t1
        for name in ("mask", "prob", "gmp", "gap"):
            np.testing.assert_array_equal(getattr(a0, name), getattr(a1, name))
