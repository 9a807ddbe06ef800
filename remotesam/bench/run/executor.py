"""Request-based prediction for a whole run: each distinct forward once, streamed, overlapped.

For one checkpoint, the runner hands :func:`predict_jobs` every job's cache misses. For a task
plugin that states its needs as requests (:meth:`TaskPlugin.requests
<remotesam.bench.api.TaskPlugin.requests>` / :meth:`~remotesam.bench.api.TaskPlugin.reduce`)
and a model with a :class:`remotesam.engine.Engine` (a :class:`remotesam.RemoteSAM`):

1. the requests of every miss of every such job are gathered (small objects: an image path,
   prompts, flags) and merged per image *content* (the file's sha256, known from the input
   fingerprints): one merged request per image asks the union of the prompts and outputs, so
   DIOR's det, mlc and cnt, which ask the same class prompts of the same images, share one
   forward per (image, prompt);
2. the merged requests stream through :meth:`Engine.run <remotesam.engine.Engine.run>`
   (prefetch threads, batches across images, dense post-processing where the logits are), in
   order of first appearance; only a bounded number of images is in flight;
3. each answer is cut back to every sample's own request (:meth:`Answer.select
   <remotesam.engine.Answer.select>`) and the sample's ``reduce`` runs in a pool of threads
   (mask-to-box, NMS, RLE, captions), overlapping the next forwards;
4. finished predictions are committed to the store in order, per job, every ``batch_size``
   samples or every second, whichever comes first (a killed run keeps them).

Failure isolation as before: a sample whose ``requests`` or ``reduce`` raises fails alone; an
image that cannot be loaded (or whose forward raises) fails the samples that asked for it.
Other plugins (``predict`` only), and models without an engine, go through
:func:`predict_misses` (batches of ``plugin.predict``). Store keys and fingerprints are the
runner's; nothing here changes what is cached or how it is found.
"""

from __future__ import annotations

import collections
import os
import time
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from remotesam.bench.api import DatasetError, Sample, TaskPlugin
from remotesam.bench.api.contract import encode_prediction, encode_predictions
from remotesam.bench.api.task import image_error
from remotesam.bench.errors import PluginError, error_text, is_transient
from remotesam.bench.records.store import PredictionKey, ResultsStore

if TYPE_CHECKING:
    from remotesam.engine import ImagePreloader

__all__ = ["JobWork", "configure_engine", "first_images", "plugin_uses_requests", "predict_jobs",
           "predict_misses", "predict_with_requests", "uses_engine"]


def uses_engine(model: Any) -> bool:
    """Whether ``model`` answers requests (it has a :class:`remotesam.engine.Engine`)."""
    from remotesam.engine import Engine

    return isinstance(getattr(model, "engine", None), Engine)


def plugin_uses_requests(plugin: TaskPlugin) -> bool:
    """Whether the plugin implements ``requests`` and ``reduce``."""
    return plugin.uses_requests()


@dataclass
class JobWork:
    """One job's misses for one checkpoint.

    Attributes:
        plugin: the task plugin.
        key: where its predictions are stored.
        misses: the samples to predict, in order.
        fingerprints: the job's input fingerprints (stored with each prediction).
        label: for messages (``task.dataset/split``).
        advance: called with the number of samples finished (a progress bar); where the
            plugin states requests, with their image-prompts too: ``advance(n, items)``.
    """

    plugin: TaskPlugin
    key: PredictionKey
    misses: Sequence[Sample]
    fingerprints: dict[str, str]
    label: str = ""
    advance: Callable[[int, int], None] | None = None
    n_ok: int = 0
    n_bad: int = 0
    ok: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    bad: list[tuple[str, str, bool]] = field(default_factory=list)


class _Entry:
    """One sample in flight: its requests and the answers received so far."""

    __slots__ = ("answers", "error", "index", "remaining", "requests", "sample", "work")

    def __init__(self, work: int, index: int, sample: Sample) -> None:
        self.work = work
        self.index = index
        self.sample = sample
        self.requests: list[Any] = []
        self.answers: list[Any] = []
        self.remaining = 0
        self.error: BaseException | None = None


class _Group:
    """All requests on one image, merged."""

    __slots__ = ("boundary", "consumers", "image", "outputs", "prompts")

    def __init__(self, image: Any) -> None:
        self.image = image
        self.prompts: dict[str, None] = {}
        self.outputs: set[str] = set()
        self.boundary = False
        self.consumers: list[tuple[_Entry, int]] = []


def _stream(works: Sequence[tuple[TaskPlugin, Sequence[Sample]]], engine: Any,
            digests: dict[str, str] | None = None, reduce_workers: int = 2,
            prompt_counts: list[list[int]] | None = None,
            preload: ImagePreloader | None = None,
            ) -> Generator[tuple[int, int, dict[str, Any] | BaseException], None, None]:
    """``(work index, sample index, encoded prediction or exception)`` for every sample, as
    they finish (works interleaved as their images come through). ``prompt_counts``, when
    given, receives each sample's number of image-prompts (``[work][sample]``, for progress);
    ``preload``, an :class:`~remotesam.engine.ImagePreloader` of the first images."""
    from remotesam.engine import Request

    digests = digests or {}
    entries: list[list[_Entry]] = []
    groups: collections.OrderedDict[str, _Group] = collections.OrderedDict()
    for w, (plugin, samples) in enumerate(works):
        row = []
        for i, s in enumerate(samples):
            e = _Entry(w, i, s)
            row.append(e)
            try:
                reqs = plugin.requests(s)
                if not isinstance(reqs, list | tuple) or not reqs or not all(
                        isinstance(r, Request) for r in reqs):
                    raise PluginError(f"{plugin.name}.requests returned {reqs!r}; expected a "
                                      "non-empty list of remotesam.engine.Request")
            except Exception as exc:
                e.error = exc
                continue
            e.requests = list(reqs)
            if prompt_counts is not None:
                prompt_counts[w][i] = sum(len(r.prompts) for r in reqs)
            e.answers = [None] * len(reqs)
            e.remaining = len(reqs)
            for j, r in enumerate(reqs):
                img = r.image
                d = digests.get(os.fspath(img)) if isinstance(img, str | os.PathLike) else None
                gkey = f"sha256:{d}" if d else r.key()
                g = groups.get(gkey)
                if g is None:
                    g = groups[gkey] = _Group(img)
                g.prompts.update(dict.fromkeys(r.prompts))
                g.outputs |= r.outputs
                g.boundary = g.boundary or engine.resolve_boundary(r.boundary)
                g.consumers.append((e, j))
        entries.append(row)

    # a list, not a stream: the engine then knows the number of items (its ramp's tail)
    merged = [(gkey, Request(g.image, tuple(g.prompts), frozenset(g.outputs),
                             boundary=g.boundary)) for gkey, g in groups.items()]

    def reduce(e: _Entry) -> dict[str, Any]:
        plugin = works[e.work][0]
        answers, e.answers = list(e.answers), []  # the answers live only until reduced
        return encode_prediction(plugin.reduce(e.sample, answers))

    pending: collections.deque[tuple[_Entry, Future[Any]]] = collections.deque()
    limit = max(4, 4 * reduce_workers)

    def settle(e: _Entry, result: Any) -> Iterator[tuple[int, int, Any]]:
        yield e.work, e.index, result

    def drain(block: bool) -> Iterator[tuple[int, int, Any]]:
        while pending and (block or pending[0][1].done()):
            e, f = pending.popleft()
            try:
                res: Any = f.result()
            except Exception as exc:
                res = exc
            yield from settle(e, res)
            block = block and len(pending) > limit

    # samples that failed before any request, in order
    for row in entries:
        for e in row:
            if e.error is not None:
                yield from settle(e, e.error)
    from remotesam.engine import init_worker_thread

    # one intra-op thread per reduce worker: no OpenMP team beside the network's own
    pool = ThreadPoolExecutor(max(1, reduce_workers), thread_name_prefix="remotesam-reduce",
                              initializer=init_worker_thread, initargs=(1,))
    try:
        for gkey, res in engine.run(merged, preload=preload):
            g = groups.pop(gkey)
            for e, j in g.consumers:
                if e.error is not None:
                    continue
                if isinstance(res, BaseException):
                    own = e.requests[j].image
                    e.error = image_error(own, res)
                    if (isinstance(e.error, DatasetError) and isinstance(g.image, str | os.PathLike)
                            and os.fspath(own) != os.fspath(g.image)):
                        # identical bytes are read once: say which file the reading was of
                        e.error = DatasetError(f"{e.error} (the same bytes as "
                                               f"{os.fspath(g.image)}, read once for both)")
                    e.answers = []
                    yield from settle(e, e.error)
                    continue
                req = e.requests[j]
                try:
                    e.answers[j] = res.select(req.prompts,
                                              boundary=engine.resolve_boundary(req.boundary))
                except Exception as exc:
                    e.error = exc
                    e.answers = []
                    yield from settle(e, exc)
                    continue
                e.remaining -= 1
                if e.remaining == 0:
                    pending.append((e, pool.submit(reduce, e)))
            yield from drain(block=False)
            if len(pending) > limit:
                yield from drain(block=True)
        while pending:
            yield from drain(block=True)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def predict_with_requests(plugin: TaskPlugin, model: Any, samples: Sequence[Sample]
                          ) -> list[dict[str, Any]]:
    """``plugin.predict(model, samples)`` through the engine: requests, answers, reduce.

    Raises:
        the first sample's error when any sample fails (the harness then retries each sample
        alone and records the failures, as for any ``predict``).
    """
    out: list[Any] = [None] * len(samples)
    for _w, i, res in _stream([(plugin, samples)], model.engine, reduce_workers=1):
        out[i] = res
    for res in out:
        if isinstance(res, BaseException):
            raise res
    return out


def configure_engine(model: Any, works: Sequence[JobWork], *, batch_size: int | str = 8,
                     channels_last: bool = False, compile: bool = False) -> dict[str, Any]:
    """Apply the GPU options to ``model.engine`` and resolve ``batch_size="auto"``.

    ``"auto"`` tries powers of two on the first image the run will predict (see
    :meth:`remotesam.engine.Engine.autotune_batch_size`; off CUDA the model's batch size is
    kept). Returns what was applied, for the run document's provenance (with PyTorch's intra-op
    thread count and the OpenMP wait policy); ``{}`` for a model without an engine.
    """
    if not uses_engine(model):
        return {}
    engine = model.engine
    engine.configure(channels_last=channels_last, compile=compile,
                     batch_size=None if batch_size == "auto" else int(batch_size))
    if batch_size == "auto":
        first = next((w.plugin.requests(w.misses[0]) for w in works
                      if w.misses and plugin_uses_requests(w.plugin)), None)
        if first:
            engine.autotune_batch_size(first[0])
    import torch

    from remotesam.cpu import cap_torch_threads

    # the CPU thread count can change the last bits of CPU logits: it travels with the numbers
    threads = cap_torch_threads() if engine.device.type == "cpu" else torch.get_num_threads()
    return {"batch_size": engine.batch_size, "batch_size_option": batch_size,
            "channels_last": engine.channels_last, "compile": engine.compiled,
            "device": str(engine.device), "precision": engine.precision,
            "prefetch_workers": engine.prefetch_workers, "intra_op_threads": threads,
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY")}


def first_images(works: Iterable[tuple[TaskPlugin, Iterable[Sample]]], limit: int
                 ) -> list[str]:
    """The first ``limit`` distinct image files the request stream of ``works`` will load, in
    order (what :class:`~remotesam.engine.ImagePreloader` decodes while the model loads).

    Plugins without requests are skipped, and so are samples whose ``requests`` raise (they
    fail later, where their error is recorded)."""
    out: dict[str, None] = {}
    for plugin, samples in works:
        if not plugin_uses_requests(plugin):
            continue
        for s in samples:
            if len(out) >= limit:
                break
            try:
                reqs = plugin.requests(s)
            except Exception:
                continue
            for r in reqs if isinstance(reqs, list | tuple) else ():
                img = getattr(r, "image", None)
                if isinstance(img, str | os.PathLike):
                    out.setdefault(os.fspath(img))
    return list(out)[:limit]


def predict_jobs(works: Sequence[JobWork], model: Any, store: ResultsStore, batch_size: int,
                 *, flush_s: float = 1.0, reduce_workers: int = 2,
                 preload: ImagePreloader | None = None) -> None:
    """Predict every work's misses with ``model`` and commit them to ``store``.

    Request-based plugins share one engine stream (see the module docstring); the others go
    through :func:`predict_misses` one job at a time. Counts end up in each work's ``n_ok`` /
    ``n_bad``. ``preload``: an :class:`~remotesam.engine.ImagePreloader` of the stream's first
    images (decoded while the model loaded).
    """
    streamed = [w for w in works if w.misses and uses_engine(model)
                and plugin_uses_requests(w.plugin)]
    for w in works:
        if w.misses and w not in streamed:
            predict_misses(w, model, store, batch_size)
    if not streamed:
        return
    paths = sorted({os.fspath(s.image) for w in streamed for s in w.misses
                    if isinstance(s.image, str | os.PathLike)})
    digests = store.cached_sha256_many(paths) if paths else {}
    last = time.monotonic()
    prompts = [[0] * len(w.misses) for w in streamed]
    unreported = [0] * len(streamed)

    def flush(w: JobWork) -> None:
        if w.ok:
            store.put_predictions(w.key, w.ok, w.fingerprints)
        if w.bad:
            store.put_failures(w.key, w.bad, w.fingerprints)
        n = len(w.ok) + len(w.bad)
        w.n_ok += len(w.ok)
        w.n_bad += len(w.bad)
        w.ok, w.bad = [], []
        if w.advance is not None and n:
            wi = streamed.index(w)
            items, unreported[wi] = unreported[wi], 0
            w.advance(n, items)

    stream = _stream([(w.plugin, w.misses) for w in streamed], model.engine, digests,
                     reduce_workers, prompts, preload)
    try:
        for wi, i, res in stream:
            w = streamed[wi]
            unreported[wi] += prompts[wi][i]
            sid = w.misses[i].sample_id
            if isinstance(res, BaseException):
                if not isinstance(res, Exception):
                    raise res
                w.bad.append((sid, error_text(res), is_transient(res)))
            else:
                w.ok.append((sid, res))
            now = time.monotonic()
            if len(w.ok) + len(w.bad) >= batch_size:
                flush(w)
            elif now - last >= flush_s:
                for x in streamed:
                    flush(x)
                last = now
    finally:
        stream.close()  # stops the engine's threads when the loop ended early
        for w in streamed:  # whatever finished is kept, even when the run stops here
            flush(w)


def _predict_isolated(plugin: TaskPlugin, model: Any, batch: Sequence[Sample],
                      ) -> tuple[list[tuple[str, dict[str, Any]]], list[tuple[str, str, bool]]]:
    """Predict a batch; on failure retry each sample alone.

    Returns ``(successes, failures)``: ``[(sample_id, prediction)]`` and ``[(sample_id, error
    text, transient)]`` (:func:`~remotesam.bench.errors.is_transient`). A ``KeyboardInterrupt``
    (any ``BaseException`` that is not an ``Exception``) is never recorded: it stops the run.
    """
    try:
        ids = [s.sample_id for s in batch]
        encoded = encode_predictions(plugin.name, ids, plugin.predict(model, batch))
        return list(zip(ids, encoded)), []
    except Exception as e:
        if len(batch) == 1:
            return [], [(batch[0].sample_id, error_text(e), is_transient(e))]
    ok: list[tuple[str, dict[str, Any]]] = []
    bad: list[tuple[str, str, bool]] = []
    for s in batch:
        o, b = _predict_isolated(plugin, model, [s])
        ok += o
        bad += b
    return ok, bad


def predict_misses(work: JobWork, model: Any, store: ResultsStore, batch_size: int) -> None:
    """Predict the misses of ``work`` with ``plugin.predict`` and commit them to ``store``.

    The samples go to ``plugin.predict`` in batches of ``batch_size``; each batch is committed
    (predictions and failures under ``work.key``, with the work's input fingerprints) as soon as
    it exists, so an interrupted run loses at most one batch. ``work.advance(n)`` is called
    after each batch (a progress bar); the counts end up in ``work.n_ok`` / ``work.n_bad``.
    """
    misses = work.misses
    for b in range(0, len(misses), batch_size):
        batch = misses[b: b + batch_size]
        ok, bad = _predict_isolated(work.plugin, model, batch)
        store.put_predictions(work.key, ok, work.fingerprints)
        store.put_failures(work.key, bad, work.fingerprints)
        work.n_ok += len(ok)
        work.n_bad += len(bad)
        if work.advance is not None:
            work.advance(len(batch), 0)
