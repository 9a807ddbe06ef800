"""The inference engine: requests in, answers out; prefetched, batched, dense work on the device.

A :class:`Request` says what one image needs from the network: the image, its prompts and
which dense outputs of each prompt are wanted (:data:`OUTPUTS`). An :class:`Answer` holds them.
:class:`Engine` computes answers, either for one request in the calling thread
(:meth:`Engine.answer`, used by :class:`remotesam.RemoteSAM`'s task methods) or for a stream of
requests through a pipeline (:meth:`Engine.run`, used by the benchmark harness):

1. **prefetch**: worker threads load, resize and normalise images ahead of the network (a
   bounded queue: memory does not grow with the number of requests); on CUDA the inputs go
   to pinned memory and are copied with ``non_blocking=True``. Images decoded before the run
   by an :class:`ImagePreloader` (the harness starts one for the first images while the model
   loads) are taken from it instead of being read again;
2. **batching**: the (image, prompt) items of consecutive requests fill batches of
   ``batch_size`` (several images per batch when they have few prompts each); in the
   accelerator layout the first batches ramp up (1, 2, 4, ... items) and, for a list of
   requests, the last ones ramp down (..., 4, 2, 1), a fixed rule, so that the device starts
   on the first prompt and little host work is left after its last forward;
3. **forward** in one thread (text features of repeated prompts cached): on an accelerator a
   thread of its own, so that the host work overlaps it; on the CPU the calling thread (see
   *Threads on the CPU* below);
4. **dense post-processing where the logits are**: argmax (ties to background), softmax,
   nearest resize to the original size (``index_select`` with the legacy-nearest source
   indices, bit-identical to the host code), GMP and GAP pooling; only the requested outputs are
   computed and copied to the host.

Both paths share the same functions for steps 2-4, so an answer does not depend on the path,
only on the batch composition (on CPU in fp32 a network's logits may change in their last bits
with the batch composition; every output here is otherwise exact).

Threads on the CPU: PyTorch's intra-op parallelism (OpenMP) gives every thread that runs a
parallel operation its own team of workers, and once the teams hold more threads than there are
cores, libgomp stops spinning between parallel regions: a network of many small operations then
waits for its workers to wake up at every operation (measured here: a forward of the tiny
checkpoint in a helper thread ran 1.6-1.7x slower than in the thread that had loaded the model,
and made that thread slower too). So on the CPU the network runs in the calling thread, with the
calling thread's intra-op thread count, and every helper thread of the pipeline (prefetch,
batching, dense post-processing on an accelerator, the harness's reduce pool) runs PyTorch with
one intra-op thread (:func:`init_worker_thread`).

Dense outputs, for a request of ``K`` prompts on an ``H x W`` image and network size ``S``:

* ``"mask_net"``: ``(K, S, S)`` uint8, ``logits[1] > logits[0]`` (a tie is background);
* ``"prob_net"``: ``(K, S, S)`` float32, ``softmax(logits)[1]``;
* ``"mask"`` / ``"prob"``: the same resized to ``(K, H, W)`` with legacy nearest
  (``src = min(floor(dst * float32(in / out)), in - 1)``), as ``F.interpolate(mode="nearest")``;
* ``"pooled"``: ``gmp`` ``(K,)`` float64 (max of ``prob_net``) and ``gap`` ``(K,)`` float64 (mean of
  ``prob_net``: float64 row sums, then their float64 sum, divided by ``S * S``; deterministic
  whatever the number of threads).
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import os
import queue
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

import numpy as np
import torch
from torch import nn

from remotesam.cpu import cap_torch_threads
from remotesam.image import ImageInput, load_image, normalize, resize_image

__all__ = ["OUTPUTS", "Answer", "Engine", "ImagePreloader", "NonFiniteOutputError", "Request",
           "init_worker_thread", "nearest_index", "resolve_engine_precision",
           "tune_host_allocator"]

#: The dense outputs a request may ask for (see the module docstring).
OUTPUTS: frozenset[str] = frozenset({"mask_net", "prob_net", "mask", "prob", "pooled"})

T = TypeVar("T")


def resolve_engine_precision(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of ``precision`` on ``device``.

    Raises:
        ValueError: unknown name, or ``"fp16"`` on a device other than CUDA (fp16 on CPU is
            hundreds of times slower than fp32 and is never used).
    """
    from remotesam.precision import autocast_dtype, resolve_precision

    return autocast_dtype(resolve_precision(precision, device))


def init_worker_thread(n_threads: int = 1) -> None:
    """Fix the calling thread's PyTorch intra-op thread count at ``n_threads``.

    PyTorch sets a thread's count lazily, at its first parallel operation, from a process-wide
    value that :func:`torch.set_num_threads` in *any* thread changes; this function first forces
    that lazy initialisation (a tiny softmax), then sets the count, so that it stays whatever
    other threads do later. Helper threads call it with 1 (no OpenMP team of their own, see the
    module docstring); :meth:`Engine.run` calls it in the calling thread with its current count
    before starting them.
    """
    torch.softmax(torch.zeros(1, 2), 1)  # at::internal::lazy_init_num_threads in this thread
    torch.set_num_threads(max(1, int(n_threads)))


#: mallopt parameters (glibc's malloc.h) and the values :func:`tune_host_allocator` sets.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_ARENA_MAX = -1, -3, -8
_ALLOCATOR_BYTES = 1 << 30
_allocator_tuned: bool | None = None


def tune_host_allocator() -> bool:
    """Let glibc's malloc keep freed blocks of up to 1 GiB for reuse (once per process).

    By default glibc serves every block above 32 MiB with a fresh ``mmap`` and gives it back on
    ``free``, so each batch's inputs, logits and dense outputs (tens of MiB at 896 px) are
    new pages that the kernel must fault in and zero, every batch; measured on the simulated
    accelerator (``benchmarks/bench_accelerator.py``, det at 800 px) that page traffic cost a
    fifth of the prediction time. Raising ``M_MMAP_THRESHOLD`` and ``M_TRIM_THRESHOLD`` to 1 GiB
    makes malloc reuse the freed blocks: resident memory stays at the run's peak instead of
    going up and down. ``M_ARENA_MAX`` is set to 1: glibc gives each new thread an arena of its
    own whose heaps hold at most 64 MiB, so a batch of 8 images at 896 px (77 MiB) assembled in a
    helper thread, or its dense outputs, were fresh ``mmap`` s again whatever the threshold
    (measured: a batch assembly and softmax took 62-73 ms in a helper thread and 28-32 ms in the
    main thread; 28-38 ms in both with one arena). Threads that already have an arena keep it,
    so the earlier in a process this runs the better (``remotesam-bench run`` calls it at
    start). :meth:`Engine.run` calls this; ``REMOTESAM_MALLOC_TUNING=0`` in the
    environment turns it off. Returns whether the settings are in effect (False off glibc).
    """
    global _allocator_tuned
    if _allocator_tuned is not None:
        return _allocator_tuned
    _allocator_tuned = False
    # the spellings of remotesam.bench.kit.options' booleans (this layer does not import it)
    if os.environ.get("REMOTESAM_MALLOC_TUNING", "1").strip().lower() in (
        "0",
        "false",
        "no",
        "off",
    ):
        return _allocator_tuned
    try:
        import ctypes

        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc (macOS, Windows, musl)
        return _allocator_tuned
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    _allocator_tuned = bool(mallopt(_M_MMAP_THRESHOLD, _ALLOCATOR_BYTES)) and bool(
        mallopt(_M_TRIM_THRESHOLD, _ALLOCATOR_BYTES)) and bool(mallopt(_M_ARENA_MAX, 1))
    return _allocator_tuned


def nearest_index(out_size: int, in_size: int) -> np.ndarray:
    """Source indices of PyTorch's legacy ``nearest`` resize from ``in_size`` to ``out_size``.

    ``src = min(floor(dst * (float32(in) / out)), in - 1)`` computed in float32, as
    ``F.interpolate(mode="nearest")`` does (the ``2x`` and identity shortcuts give the same).
    Returns an ``(out_size,)`` intp array.
    """
    if out_size == in_size:
        return np.arange(out_size, dtype=np.intp)
    scale = np.float32(in_size) / np.float32(out_size)
    src = np.floor(np.arange(out_size, dtype=np.float32) * scale).astype(np.intp)
    return np.minimum(src, in_size - 1)


class ImagePreloader:
    """Decode image files in a background thread before the pipeline asks for them.

    The harness starts one for the first images of a run while the model loads (seconds for a
    real checkpoint), so that the first batches do not wait for decoding and the host has less
    work once the device is running. :meth:`Engine.run` takes the decoded arrays
    (``preload=``); an image it has not reached is loaded by the engine as usual, never twice.

    Args:
        images: image files (``str`` or ``os.PathLike``) in the order the run will need them;
            anything else, and repeats, are ignored.
        max_images: at most this many are decoded.
        max_bytes: decoding stops once the arrays not yet taken hold this many bytes.

    The decoded arrays are exactly :func:`~remotesam.image.load_image`'s (``(H, W, 3)`` uint8
    RGB); an image that cannot be read keeps the exception ``load_image`` raised, for
    :meth:`take` to raise. Thread-safe; :meth:`close` stops the thread and drops what was not
    taken.
    """

    def __init__(self, images: Iterable[Any], *, max_images: int = 16,
                 max_bytes: int = 512 << 20) -> None:
        planned: dict[str, None] = {}
        limit = max(0, int(max_images))
        for image in images:
            if len(planned) >= limit:
                break
            if isinstance(image, str | os.PathLike):
                planned.setdefault(os.fspath(image))
        self._planned = planned
        self._max_bytes = int(max_bytes)
        self._done: dict[str, Any] = {}  # path -> array or exception, until taken
        self._taken: set[str] = set()
        self._current: str | None = None
        self._bytes = 0
        self._closed = False
        self._stopped = False
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._decode, name="remotesam-preload",
                                        daemon=True)
        if planned:
            self._thread.start()

    def __len__(self) -> int:
        """The number of images planned (decoded or not)."""
        return len(self._planned)

    @property
    def planned(self) -> tuple[str, ...]:
        """The image files to decode, in order (``os.fspath`` of each)."""
        return tuple(self._planned)

    def _decode(self) -> None:
        for key in self._planned:
            with self._cond:
                if self._closed or self._stopped or self._bytes >= self._max_bytes:
                    break
                if key in self._taken:  # the engine got there first
                    continue
                self._current = key
            value: Any
            try:
                value = load_image(key)
            except Exception as e:  # kept for take() to raise, as load_image would have
                value = e
            with self._cond:
                self._current = None
                if not self._closed:  # also when take() is waiting for it
                    self._done[key] = value
                    self._bytes += value.nbytes if isinstance(value, np.ndarray) else 0
                self._cond.notify_all()

    def take(self, image: Any) -> np.ndarray | None:
        """The decoded array of ``image`` (once), waiting if it is being decoded now; None when
        it was not planned, not reached yet, or already taken (the caller loads it itself).

        Raises:
            what :func:`~remotesam.image.load_image` raised for this file.
        """
        if not isinstance(image, str | os.PathLike):
            return None
        key = os.fspath(image)
        with self._cond:
            if key not in self._planned or key in self._taken:
                return None
            self._taken.add(key)
            while self._current == key:
                self._cond.wait()
            value = self._done.pop(key, None)
            if isinstance(value, np.ndarray):
                self._bytes -= value.nbytes
        if isinstance(value, BaseException):
            raise value
        return value

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the thread has decoded all it will (or ``timeout`` seconds); whether it
        has."""
        if self._thread.is_alive():
            self._thread.join(timeout)
        return not self._thread.is_alive()

    def stop(self) -> None:
        """Decode no further image; what is decoded (or being decoded) stays to be taken.

        :meth:`Engine.run` calls this when it starts: from then on its own prefetch threads
        load images in the order the batches need them, and a preloader decoding images further
        ahead would only compete with them for the CPU."""
        with self._cond:
            self._stopped = True

    def close(self) -> None:
        """Stop decoding and drop the arrays not taken (a decode in progress is discarded)."""
        with self._cond:
            self._closed = True
            self._done.clear()
            self._bytes = 0
            self._cond.notify_all()

    def __enter__(self) -> ImagePreloader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class NonFiniteOutputError(RuntimeError):
    """The network returned NaN or inf for a request: that request fails (permanently)."""


@dataclass(frozen=True, eq=False)
class Request:
    """What one image needs from the network.

    Attributes:
        image: an ``(H, W, 3)`` uint8 RGB array, a PIL image or an image file path (anything
            :func:`remotesam.image.load_image` accepts).
        prompts: the K sentences, in order (duplicates allowed; each is computed once).
        outputs: which dense outputs are wanted, a subset of :data:`OUTPUTS`.
        boundary: also compute the EPOC boundary map of the image: True, False, or None (when
            the engine has an EPOC model).
        image_key: identity of the image's content (e.g. the file's sha256) used to merge
            requests on the same image; default: the path, or the object's id for arrays.
    """

    image: ImageInput
    prompts: tuple[str, ...]
    outputs: frozenset[str]
    boundary: bool | None = False
    image_key: str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.prompts, str) or not isinstance(self.prompts, tuple | list):
            raise TypeError(f"Request.prompts must be a tuple of str, got {self.prompts!r}")
        object.__setattr__(self, "prompts", tuple(self.prompts))
        if not self.prompts or not all(isinstance(p, str) for p in self.prompts):
            raise ValueError(
                f"Request.prompts must be a non-empty tuple of str, got {self.prompts!r}"
            )
        outs = frozenset(self.outputs)
        if not outs or not outs <= OUTPUTS:
            raise ValueError(f"Request.outputs must be a non-empty subset of {sorted(OUTPUTS)}, "
                             f"got {sorted(outs)}")
        object.__setattr__(self, "outputs", outs)

    def key(self) -> str:
        """The image identity used to merge requests (see ``image_key``)."""
        if self.image_key is not None:
            return self.image_key
        if isinstance(self.image, str | os.PathLike):
            return "path:" + os.fspath(self.image)
        return f"object:{id(self.image)}"


@dataclass(frozen=True, eq=False)
class Answer:
    """The dense outputs of one request (``None`` where not asked for).

    Attributes:
        prompts: the K prompts, in the request's order.
        hw: original image size ``(H, W)``.
        net_size: network size ``S``.
        mask_net: ``(K, S, S)`` uint8; prob_net: ``(K, S, S)`` float32.
        mask: ``(K, H, W)`` uint8; prob: ``(K, H, W)`` float32 (legacy-nearest resized).
        gmp, gap: ``(K,)`` float64 max / mean of ``prob_net``.
        boundary: ``(H, W)`` float32 EPOC boundary map, or None.
    """

    prompts: tuple[str, ...]
    hw: tuple[int, int]
    net_size: int
    mask_net: np.ndarray | None = None
    prob_net: np.ndarray | None = None
    mask: np.ndarray | None = None
    prob: np.ndarray | None = None
    gmp: np.ndarray | None = None
    gap: np.ndarray | None = None
    boundary: np.ndarray | None = None

    def scores(self, factor: float) -> np.ndarray:
        """``factor * GMP + (1 - factor) * GAP`` per prompt, ``(K,)`` float64."""
        if self.gmp is None or self.gap is None:
            raise ValueError("this answer has no pooled scores; request outputs={'pooled'}")
        return np.array([factor * float(m) + (1.0 - factor) * float(a)
                         for m, a in zip(self.gmp, self.gap)], dtype=np.float64)

    def select(self, prompts: Sequence[str], *, boundary: bool = True) -> Answer:
        """The answer restricted (and reordered) to ``prompts`` (each must be in this answer)."""
        pos = {p: i for i, p in reversed(list(enumerate(self.prompts)))}
        try:
            idx = [pos[p] for p in prompts]
        except KeyError as e:
            raise KeyError(f"prompt {e.args[0]!r} is not in this answer") from None

        def take(a: np.ndarray | None) -> np.ndarray | None:
            if a is None:
                return None
            if idx == list(range(len(self.prompts))):
                return a
            return a[idx]

        return Answer(tuple(prompts), self.hw, self.net_size, take(self.mask_net),
                      take(self.prob_net), take(self.mask), take(self.prob), take(self.gmp),
                      take(self.gap), self.boundary if boundary else None)


# ------------------------------------------------------------------------------------ internals


class _Image:
    """One request in flight: its prepared input and the outputs filled batch by batch."""

    __slots__ = (
        "arrays",
        "boundary",
        "error",
        "hw",
        "prompts",
        "remaining",
        "req",
        "rgb",
        "seq",
        "token",
        "x",
        "x_dev",
    )

    def __init__(self, seq: int, token: Any, req: Request) -> None:
        self.seq = seq
        self.token = token
        self.req = req
        # each distinct prompt once, in first-appearance order
        self.prompts: tuple[str, ...] = tuple(dict.fromkeys(req.prompts))
        self.hw: tuple[int, int] = (0, 0)
        self.x: torch.Tensor | None = None
        self.x_dev: torch.Tensor | None = None
        self.rgb: np.ndarray | None = None
        self.boundary: np.ndarray | None = None
        self.error: BaseException | None = None
        self.remaining = len(self.prompts)
        self.arrays: dict[str, np.ndarray] = {}


@dataclass
class _Batch:
    """Items ``(image, prompt index)`` and their assembled inputs."""

    items: list[tuple[_Image, int]]
    x: torch.Tensor | None = None
    ids: torch.Tensor | None = None
    mask: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    dropped: set[int] = field(default_factory=set)  # items whose forward failed


_STOP = object()


class Engine:
    """Computes :class:`Answer` s for :class:`Request` s with one network.

    Args:
        net: ``net(image (B,3,S,S) float32, input_ids (B,L) int64, attention_mask (B,L) int64,
            text_features=None) -> logits (B,2,S,S)``; optionally ``net.encode_text``.
        device: where ``net`` lives (it is not moved here).
        image_size: network input side ``S``.
        image_mean, image_std: normalisation constants.
        tokenizer: a :class:`remotesam.text.Tokenizer`.
        precision: ``"fp32"``, ``"bf16"`` (autocast) or ``"fp16"`` (autocast, CUDA only).
        batch_size: image-prompt items per forward pass.
        text_cache_size: prompts whose text features are kept on the device.
        boundary_fn: ``fn(rgb (H,W,3) uint8) -> (H,W) float32`` EPOC boundary map, or None.
        prefetch_workers: threads that load and resize images ahead of the network.

    Not thread-safe: one :meth:`run` or :meth:`answer` at a time.
    """

    def __init__(self, net: nn.Module, *, device: torch.device, image_size: int,
                 image_mean: Sequence[float], image_std: Sequence[float], tokenizer: Any,
                 precision: str = "fp32", batch_size: int = 8, text_cache_size: int = 256,
                 boundary_fn: Callable[[np.ndarray], np.ndarray] | None = None,
                 prefetch_workers: int = 2) -> None:
        self.net = net
        self.device = torch.device(device)
        self.image_size = int(image_size)
        self.image_mean = tuple(float(v) for v in image_mean)
        self.image_std = tuple(float(v) for v in image_std)
        self.tokenizer = tokenizer
        self.autocast_dtype = resolve_engine_precision(precision, self.device)
        self.precision = precision
        self.batch_size = int(batch_size)
        self.boundary_fn = boundary_fn
        self.prefetch_workers = max(1, int(prefetch_workers))
        self.channels_last = False
        self.compiled = False
        #: where :meth:`run` calls the network: True a thread of its own, False the calling
        #: thread, None by device (a thread on accelerators, the calling thread on the CPU).
        self.forward_thread: bool | None = None
        self._call: Callable[..., Any] = net
        self._has_encode_text = callable(getattr(net, "encode_text", None))
        self._text_cache: OrderedDict[str, Any] = OrderedDict()
        self._text_cache_size = max(int(text_cache_size), 0)
        self._tok_cache: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        self._index_cache: dict[tuple[int, int], tuple[torch.Tensor, torch.Tensor]] = {}
        self.stats = {"forward_calls": 0, "items": 0}

    # ---------------------------------------------------------------------------- options
    def set_net(self, net: nn.Module) -> None:
        """Answer every later request with ``net`` (already on :attr:`device`): the text
        features, the compiled network and the channels-last layout of the previous network
        are dropped (they belong to it); ``configure`` options are applied to ``net`` again."""
        compiled, channels_last = self.compiled, self.channels_last
        self.net = net
        self._call = net
        self._has_encode_text = callable(getattr(net, "encode_text", None))
        self.compiled = self.channels_last = False
        self.clear_text_cache()
        self.configure(channels_last=channels_last or None, compile=compiled or None)

    def clear_text_cache(self) -> None:
        """Forget the cached text features: call after the network's weights changed in place
        (e.g. a training step), so that no answer uses features of the old weights."""
        self._text_cache.clear()

    def configure(self, *, channels_last: bool | None = None, compile: bool | None = None,
                  batch_size: int | None = None, forward_thread: bool | None = None) -> None:
        """GPU options: ``channels_last`` memory format, ``torch.compile`` of the network,
        another ``batch_size``. Results stay within the documented tolerance (compile and
        channels_last may change the last bits of the logits). ``forward_thread``: run the
        network of :meth:`run` in a thread of its own even on the CPU (the accelerator layout;
        e.g. for a network that only waits on a remote device); the answers do not change."""
        if forward_thread is not None:
            self.forward_thread = bool(forward_thread)
        if channels_last is not None and channels_last != self.channels_last:
            fmt = torch.channels_last if channels_last else torch.contiguous_format
            for mod in self.net.modules():  # 4-D conv weights only (the net has 5-D tensors too)
                if isinstance(mod, nn.Conv2d):
                    mod.weight.data = mod.weight.data.contiguous(memory_format=fmt)
            self.channels_last = bool(channels_last)
        if compile and not self.compiled:
            self._call = torch.compile(self.net)
            self.compiled = True
        if batch_size is not None:
            if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
                raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
            self.batch_size = batch_size

    def autotune_batch_size(self, request: Request, max_batch: int = 256) -> int:
        """Set and return the largest power-of-two batch size (at most ``max_batch``) whose
        forward pass and dense post-processing fit in CUDA memory, tried on ``request``'s image
        and first prompt (``torch.cuda.OutOfMemoryError`` caught). Off CUDA there is no memory
        limit to find: the batch size is kept and returned."""
        if self.device.type != "cuda":
            return self.batch_size
        im = _Image(0, None, request)
        self._prepare(im)
        best, b = 0, 1
        while b <= max_batch:
            try:
                batch = _Batch([(im, 0)] * b)
                with torch.inference_mode():
                    self._assemble(batch)
                    assert batch.x is not None and batch.ids is not None
                    assert batch.mask is not None
                    logits = self._forward(batch.x, batch.ids, batch.mask, [im.prompts[0]] * b)
                    torch.softmax(logits, dim=1)
                torch.cuda.synchronize(self.device)
                best = b
            except torch.cuda.OutOfMemoryError:
                break
            finally:
                batch = logits = None  # type: ignore[assignment]
                torch.cuda.empty_cache()
            b *= 2
        self.batch_size = max(best, 1)
        self.stats = {"forward_calls": 0, "items": 0}
        return self.batch_size

    def resolve_boundary(self, flag: bool | None) -> bool:
        """Whether a request's ``boundary`` flag asks for the EPOC map with this engine."""
        if flag is None:
            return self.boundary_fn is not None
        return bool(flag)

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.autocast_dtype)

    # ---------------------------------------------------------------------------- steps
    def _prepare(self, im: _Image, pin: bool = False, preload: ImagePreloader | None = None
                 ) -> _Image:
        """Load (or take from ``preload``), resize and normalise the image (``x``:
        ``(1, 3, S, S)`` float32 on the host)."""
        rgb = preload.take(im.req.image) if preload is not None else None
        if rgb is None:
            rgb = load_image(im.req.image)
        im.hw = (int(rgb.shape[0]), int(rgb.shape[1]))
        x = normalize(resize_image(rgb, self.image_size), self.image_mean, self.image_std)
        if pin:
            x = x.pin_memory()
        im.x = x
        if self.resolve_boundary(im.req.boundary):
            if self.boundary_fn is None:
                raise ValueError("this request asks for the EPOC boundary map but the predictor "
                                 "has no EPOC model: build RemoteSAM(..., epoc_model="
                                 "'path/to/DirectSAM-directory')")
            with torch.inference_mode():
                im.boundary = self.boundary_fn(rgb)
        return im

    def _tokens(self, prompts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        missing = [p for p in dict.fromkeys(prompts) if p not in self._tok_cache]
        if missing:
            ids, mask = self.tokenizer.encode(missing)
            if len(self._tok_cache) > 4096:
                self._tok_cache.clear()
            for i, p in enumerate(missing):
                self._tok_cache[p] = (ids[i], mask[i])
        rows = [self._tok_cache[p] for p in prompts]
        return torch.stack([r[0] for r in rows]), torch.stack([r[1] for r in rows])

    def _assemble(self, batch: _Batch) -> _Batch:
        """Inputs of a batch on the device: images (one copy per image), token ids and masks."""
        runs: list[tuple[_Image, int]] = []
        for im, _k in batch.items:
            if runs and runs[-1][0] is im:
                runs[-1] = (im, runs[-1][1] + 1)
            else:
                runs.append((im, 1))
        parts = []
        for im, n in runs:
            if im.x_dev is None:
                assert im.x is not None
                im.x_dev = im.x.to(self.device, non_blocking=True)
            parts.append(im.x_dev.expand(n, -1, -1, -1))
        x = parts[0].contiguous() if len(parts) == 1 else torch.cat(parts)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        ids, mask = self._tokens([im.prompts[k] for im, k in batch.items])
        batch.x = x
        batch.ids = ids.to(self.device, non_blocking=True)
        batch.mask = mask.to(self.device, non_blocking=True)
        return batch

    def _text_features(
        self, sentences: Sequence[str], ids: torch.Tensor, mask: torch.Tensor
    ) -> Any:
        parts = []
        for i, s in enumerate(sentences):
            feats = self._text_cache.get(s)
            if feats is None:
                # a network with encode_text (checked in __init__); nn.Module's __getattr__
                # types the attribute as Tensor | Module
                encode_text = cast("Callable[..., Any]", self.net.encode_text)
                feats = encode_text(ids[i: i + 1], mask[i: i + 1])
                if self._text_cache_size:
                    self._text_cache[s] = feats
                    while len(self._text_cache) > self._text_cache_size:
                        self._text_cache.popitem(last=False)
            else:
                self._text_cache.move_to_end(s)
            parts.append(feats)
        return _cat(parts)

    def _forward(self, x: torch.Tensor, ids: torch.Tensor, mask: torch.Tensor,
                 sentences: Sequence[str]) -> torch.Tensor:
        """Logits ``(B, 2, S, S)`` float32 on the device."""
        b, s = int(x.shape[0]), self.image_size
        with torch.inference_mode(), self._autocast():
            if self._has_encode_text:
                feats = self._text_features(sentences, ids, mask)
                logits = self._call(x, ids, mask, text_features=feats)
            else:
                logits = self._call(x, ids, mask)
        if not isinstance(logits, torch.Tensor) or tuple(logits.shape) != (b, 2, s, s):
            found = (
                tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
            )
            raise RuntimeError(
                f"the network returned {found}; expected logits of shape ({b}, 2, {s}, {s})"
            )
        self.stats["forward_calls"] += 1
        self.stats["items"] += b
        return logits.float()

    def _run_forward(self, batch: _Batch) -> _Batch:
        """Forward a batch; when it raises, each item alone (failing items fail their image)."""
        assert batch.x is not None and batch.ids is not None and batch.mask is not None
        sentences = [im.prompts[k] for im, k in batch.items]
        try:
            batch.logits = self._forward(batch.x, batch.ids, batch.mask, sentences)
            return batch
        except Exception as e:
            if len(batch.items) == 1:
                batch.items[0][0].error = batch.items[0][0].error or e
                batch.dropped.add(0)
                return batch
        parts = []
        for i in range(len(batch.items)):
            try:
                parts.append(self._forward(batch.x[i: i + 1], batch.ids[i: i + 1],
                                           batch.mask[i: i + 1], sentences[i: i + 1]))
            except Exception as e:
                im = batch.items[i][0]
                im.error = im.error or e
                batch.dropped.add(i)
        batch.logits = torch.cat(parts) if parts else None
        return batch

    def _indices(self, hw: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        idx = self._index_cache.get(hw)
        if idx is None:
            rows = torch.from_numpy(nearest_index(hw[0], self.image_size).astype(np.int64))
            cols = torch.from_numpy(nearest_index(hw[1], self.image_size).astype(np.int64))
            idx = (rows.to(self.device), cols.to(self.device))
            self._index_cache[hw] = idx
        return idx

    def _dense(self, batch: _Batch) -> list[_Image]:
        """Dense post-processing of a forwarded batch into its images' arrays.

        Returns the images completed by this batch (every prompt accounted for).
        """
        done: list[_Image] = []
        kept = [it for i, it in enumerate(batch.items) if i not in batch.dropped]
        logits = batch.logits
        if logits is not None and kept:
            kept, logits = self._drop_non_finite(kept, logits)
        with torch.inference_mode():
            fg = prob = None
            if logits is not None and kept:
                wants = set().union(*(it[0].req.outputs for it in kept if it[0].error is None))
                if wants & {"mask_net", "mask"}:
                    # argmax over 2 classes with ties to background == strict comparison
                    fg = (logits[:, 1] > logits[:, 0]).to(torch.uint8)
                if wants & {"prob_net", "prob", "pooled"}:
                    prob = torch.softmax(logits, dim=1)[:, 1]
            pos = 0
            while pos < len(kept):
                im = kept[pos][0]
                end = pos
                while end < len(kept) and kept[end][0] is im:
                    end += 1
                if im.error is None:
                    try:
                        self._dense_image(im, [k for _, k in kept[pos:end]], pos, end, fg, prob)
                    except Exception as e:
                        im.error = e
                pos = end
        for im, _k in batch.items:
            im.remaining -= 1
            if im.remaining == 0:
                done.append(im)
        return done

    def _dense_image(self, im: _Image, ks: list[int], a: int, b: int, fg: torch.Tensor | None,
                     prob: torch.Tensor | None) -> None:
        outs = im.req.outputs
        n_k, (h, w), s = len(im.prompts), im.hw, self.image_size
        arrays = im.arrays
        if not arrays:
            if "mask_net" in outs:
                arrays["mask_net"] = np.empty((n_k, s, s), np.uint8)
            if "prob_net" in outs:
                arrays["prob_net"] = np.empty((n_k, s, s), np.float32)
            if "mask" in outs:
                arrays["mask"] = np.empty((n_k, h, w), np.uint8)
            if "prob" in outs:
                arrays["prob"] = np.empty((n_k, h, w), np.float32)
            if "pooled" in outs:
                arrays["gmp"] = np.empty(n_k, np.float64)
                arrays["gap"] = np.empty(n_k, np.float64)
        contiguous = ks == list(range(ks[0], ks[0] + len(ks)))
        sel = slice(ks[0], ks[0] + len(ks)) if contiguous else ks

        def put(name: str, t: torch.Tensor) -> None:
            dst = arrays[name]
            if contiguous:
                torch.from_numpy(dst[sel]).copy_(t)
            else:
                dst[sel] = t.cpu().numpy()

        def put_resized(name: str, src: torch.Tensor) -> None:
            rows, cols = self._indices((h, w))
            if self.device.type != "cpu":  # gather on the device, copy the result
                put(name, src.index_select(1, rows).index_select(2, cols))
                return
            # on the CPU, numpy's take is the faster gather (same indices, same values)
            tmp = np.take(src.numpy(), rows.numpy(), axis=1)
            if contiguous:
                np.take(tmp, cols.numpy(), axis=2, out=arrays[name][sel])
            else:
                arrays[name][sel] = np.take(tmp, cols.numpy(), axis=2)

        if fg is not None:
            if "mask_net" in outs:
                put("mask_net", fg[a:b])
            if "mask" in outs:
                put_resized("mask", fg[a:b])
        if prob is not None:
            p = prob[a:b]
            if "prob_net" in outs:
                put("prob_net", p)
            if "prob" in outs:
                put_resized("prob", p)
            if "pooled" in outs:
                gmp = p.amax(dim=(1, 2)).double()
                gap = p.sum(dim=2, dtype=torch.float64).sum(dim=1) / float(s * s)
                put("gmp", gmp)
                put("gap", gap)

    @staticmethod
    def _drop_non_finite(kept: list[tuple[_Image, int]], logits: torch.Tensor
                         ) -> tuple[list[tuple[_Image, int]], torch.Tensor]:
        """Fail the images whose logits hold NaN or inf (a broken model, an fp16 overflow):
        their masks and scores would be garbage scored as real predictions. One reduction per
        batch; the rest of the batch goes on."""
        with torch.inference_mode():
            # a NaN or inf anywhere makes its item's sum NaN or inf: one sum per item (a tenth
            # of the time of an elementwise isfinite over B x 2 x S x S) clears a healthy batch;
            # the elementwise test runs only where a sum is not finite (also a finite overflow)
            sums = logits.sum(dim=tuple(range(1, logits.dim())))
            if bool(torch.isfinite(sums).all()):
                return kept, logits
            flags = (~torch.isfinite(logits).flatten(1).all(1)).tolist()
        for (im, k), is_bad in zip(kept, flags):
            if is_bad and im.error is None:
                im.error = NonFiniteOutputError(
                    f"the model returned non-finite values (NaN or inf) for the prompt "
                    f"{im.prompts[k]!r}: its logits cannot be scored (broken weights, or an "
                    "overflow in reduced precision: try --precision fp32)")
        good = [i for i, f in enumerate(flags) if not f]
        return [kept[i] for i in good], logits[good]

    def _answer_of(self, im: _Image) -> Answer:
        a = im.arrays
        ans = Answer(im.prompts, im.hw, self.image_size, a.get("mask_net"), a.get("prob_net"),
                     a.get("mask"), a.get("prob"), a.get("gmp"), a.get("gap"), im.boundary)
        if im.prompts != im.req.prompts:
            ans = ans.select(im.req.prompts)
        return ans

    def _batches(self, images: Iterable[_Image], ramp: bool = False, total: int | None = None
                 ) -> Iterator[_Batch | _Image]:
        """Items of consecutive images in batches of ``batch_size``; failed images pass through.

        ``ramp``: the first batches hold 1, 2, 4, ... items, up to ``batch_size``, and, when
        ``total`` (the number of items of all requests) is known, the batches of the last
        ``2 * batch_size`` items hold half of what remains each (..., 4, 2, 1): the device
        starts on the first image's first prompt instead of waiting for the images of a whole
        batch, and after its last forward only one item's dense work and reduce are left. A
        fixed rule, so the composition, and with it every number, is the same in every run.
        """
        pending: list[tuple[_Image, int]] = []
        size = 1  # the ramp's next size before its tail
        seen = 0  # items taken from the images so far
        target = self._target(size, total, seen) if ramp else self.batch_size
        for im in images:
            if im.error is not None:
                yield im
                continue
            for k in range(len(im.prompts)):
                pending.append((im, k))
                seen += 1
                if len(pending) >= target:
                    yield _Batch(pending)
                    pending = []
                    if ramp:
                        size *= 2
                        target = self._target(size, total, seen)
        if pending:
            yield _Batch(pending)

    def _target(self, size: int, total: int | None, seen: int) -> int:
        """The ramp's size of the next batch (see :meth:`_batches`)."""
        target = min(size, self.batch_size)
        if total is not None and total - seen < 2 * self.batch_size:
            target = min(target, max(1, (total - seen) // 2))
        return target

    # ---------------------------------------------------------------------------- synchronous
    def answer(self, request: Request) -> Answer:
        """The answer to one request, computed in the calling thread (prompts batched).

        Raises:
            whatever loading the image raises (FileNotFoundError, ValueError, TypeError), or
            the network's error.
        """
        im = _Image(0, None, request)
        self._prepare(im)
        for item in self._batches([im]):
            assert isinstance(item, _Batch)
            with torch.inference_mode():
                self._assemble(item)
            self._run_forward(item)
            self._dense(item)
            if im.error is not None:
                raise im.error
        im.x = im.x_dev = None
        return self._answer_of(im)

    # ---------------------------------------------------------------------------- pipeline
    def run(self, requests: Iterable[tuple[T, Request]], *, lookahead: int | None = None,
            preload: ImagePreloader | None = None
            ) -> Iterator[tuple[T, Answer | BaseException]]:
        """Answers for a stream of ``(token, request)``, in input order: ``(token, answer)``, or
        ``(token, exception)`` for a request whose image could not be loaded or whose forward
        failed (only that request fails).

        Images are prepared ``lookahead`` requests ahead (default ``2 * batch_size``) by
        ``prefetch_workers`` threads and batched in another. On an accelerator the forward pass
        and the dense post-processing run in threads of their own, so the caller's work on one
        answer overlaps the next forwards; on the CPU they run in the calling thread, between
        the answers it takes (see the module docstring; :attr:`forward_thread` overrides).
        Memory is bounded by the lookahead and small queues, whatever the number of requests.
        ``preload``: images already decoded (or being decoded) ahead of the run, taken instead
        of loading them again (the caller closes it).
        """
        look = max(2, int(lookahead) if lookahead else 2 * self.batch_size)
        if preload is not None:
            preload.stop()  # from here the prefetch threads load in the order batches need
        total = None  # the items of all requests, when they are a sequence (the ramp's tail)
        if isinstance(requests, Sequence):
            total = sum(len(r.prompts) for _, r in requests if isinstance(r, Request))
        pin = self.device.type == "cuda"
        threaded = (self.device.type != "cpu" if self.forward_thread is None
                    else self.forward_thread)
        n_threads = cap_torch_threads() if self.device.type == "cpu" else torch.get_num_threads()
        init_worker_thread(n_threads)  # fix the caller's count before the helpers set theirs
        tune_host_allocator()
        stop = threading.Event()
        futures: queue.Queue[Any] = queue.Queue(maxsize=look)
        to_forward: queue.Queue[Any] = queue.Queue(maxsize=2)
        to_dense: queue.Queue[Any] = queue.Queue(maxsize=2)
        finished: queue.Queue[Any] = queue.Queue(maxsize=4)
        pool = ThreadPoolExecutor(
            self.prefetch_workers,
            thread_name_prefix="remotesam-prefetch",
            initializer=init_worker_thread,
            initargs=(1,),
        )
        errors: list[BaseException] = []

        def put(q: queue.Queue[Any], item: Any) -> bool:
            while not stop.is_set():
                try:
                    q.put(item, timeout=0.1)
                    return True
                except queue.Full:
                    continue
            return False

        def get(q: queue.Queue[Any]) -> Any:
            while not stop.is_set():
                try:
                    return q.get(timeout=0.1)
                except queue.Empty:
                    continue
            return _STOP

        def prepared(im: _Image) -> _Image:
            try:
                with torch.inference_mode():
                    return self._prepare(im, pin, preload)
            except Exception as e:
                im.error = e
                return im

        def feeder() -> None:
            try:
                for seq, (token, req) in enumerate(requests):
                    if not isinstance(req, Request):
                        raise TypeError(
                            f"Engine.run expects (token, Request) pairs, got {type(req).__name__}"
                        )
                    if not put(futures, pool.submit(prepared, _Image(seq, token, req))):
                        return
            except BaseException as e:  # the caller's iterable raised
                errors.append(e)
            put(futures, _STOP)

        def images() -> Iterator[_Image]:
            while True:
                f = get(futures)
                if f is _STOP:
                    return
                yield f.result() if isinstance(f, Future) else f

        def batcher() -> None:
            init_worker_thread(1)
            try:
                with torch.inference_mode():
                    for item in self._batches(images(), ramp=threaded, total=total):
                        if isinstance(item, _Batch):
                            self._assemble(item)
                        if not put(to_forward, item):
                            return
            except BaseException as e:
                errors.append(e)
            put(to_forward, _STOP)

        def forwarder() -> None:
            init_worker_thread(n_threads)
            try:
                while True:
                    item = get(to_forward)
                    if item is _STOP:
                        break
                    if isinstance(item, _Batch):
                        self._run_forward(item)
                    if not put(to_dense, item):
                        return
            except BaseException as e:
                errors.append(e)
            put(to_dense, _STOP)

        def dense(item: _Batch | _Image) -> list[_Image]:
            """The images a forwarded batch (or a failed image passing through) completes."""
            if isinstance(item, _Image):
                return [item]
            done = self._dense(item)
            for im in done:
                im.x = im.x_dev = None
            item.x = item.logits = None
            return done

        def densifier() -> None:
            init_worker_thread(1)
            try:
                while True:
                    item = get(to_dense)
                    if item is _STOP:
                        break
                    for im in dense(item):
                        if not put(finished, im):
                            return
            except BaseException as e:
                errors.append(e)
            put(finished, _STOP)

        def densified() -> Iterator[_Image]:
            """Images as the densifier thread completes them (accelerator layout)."""
            while (im := get(finished)) is not _STOP:
                yield im

        def forwarded_here() -> Iterator[_Image]:
            """Images completed by forwarding and densifying here, in the calling thread."""
            while (item := get(to_forward)) is not _STOP:
                if isinstance(item, _Batch):
                    self._run_forward(item)
                yield from dense(item)

        stages: tuple[Callable[[], None], ...]
        if threaded:
            stages, completed = (feeder, batcher, forwarder, densifier), densified
        else:
            stages, completed = (feeder, batcher), forwarded_here
        threads = [
            threading.Thread(target=fn, name=f"remotesam-{fn.__name__}", daemon=True)
            for fn in stages
        ]
        for t in threads:
            t.start()
        heap: list[tuple[int, int, _Image]] = []
        tie = itertools.count()
        next_seq = 0
        try:
            for im in completed():
                heapq.heappush(heap, (im.seq, next(tie), im))
                while heap and heap[0][0] == next_seq:
                    _, _, ready = heapq.heappop(heap)
                    next_seq += 1
                    if ready.error is not None:
                        yield ready.token, ready.error
                    else:
                        yield ready.token, self._answer_of(ready)
            if errors:
                raise errors[0]
            while heap:  # cannot happen unless a stage stopped early
                _, _, ready = heapq.heappop(heap)
                yield ready.token, ready.error or RuntimeError("the engine stopped early")
        finally:
            stop.set()
            for t in threads:
                t.join(timeout=5)
            pool.shutdown(wait=False, cancel_futures=True)
            torch.set_num_threads(n_threads)  # the process-wide value the helpers changed


def _cat(parts: list[Any]) -> Any:
    """Concatenate cached per-sentence text features along the batch axis (tensor/tuple/dict)."""
    first = parts[0]
    if isinstance(first, torch.Tensor):
        return torch.cat(parts, dim=0)
    if isinstance(first, tuple | list):
        return type(first)(_cat([p[i] for p in parts]) for i in range(len(first)))
    if isinstance(first, Mapping):
        return {k: _cat([p[k] for p in parts]) for k in first}
    raise TypeError(
        f"net.encode_text returned {type(first).__name__}; expected a tensor, tuple or dict of "
        "tensors"
    )
