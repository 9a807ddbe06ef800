"""The runner: checkpoints x tasks x datasets, cached, resumable, sharded, failure-isolated.

For each checkpoint (identified by the sha256 of its file) the model is loaded once, and only if
some prediction is missing from the store. For each (task, dataset) the samples are read,
sharded by index across ``torchrun`` ranks, looked up in the store (a stored prediction counts
only while the sample's input fingerprint, :func:`sample_fingerprints`, is unchanged), and the
misses predicted in batches; every batch is committed to the store as soon as it exists. A batch
that raises is retried one sample at a time; a sample that still raises is recorded as failed and
the run goes on. Rank 0 then scores from the store (so an interrupted-and-resumed run scores
exactly the same JSON as an uninterrupted one) and the run document is written to
``<results>/runs/<run_id>.json``.

The pieces live beside it: :mod:`~remotesam.bench.run.config`,
:mod:`~remotesam.bench.run.checkpoints`, :mod:`~remotesam.bench.run.jobs` (before any work),
:mod:`remotesam.bench.records.identity` (cache identity), :mod:`~remotesam.bench.run.executor`
(prediction), :mod:`~remotesam.bench.run.scoring` and :mod:`~remotesam.bench.run.provenance`;
this module keeps the order of the steps: :func:`run` and :func:`score_run`.

Python use::

    from remotesam.bench.run import RunConfig, run
    outcome = run(RunConfig(tasks=["det"], checkpoints=["ckpt.pth"], data_root="/data/eo"))
    print(outcome.document.results[0].metrics)
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import os
import socket
import time
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from remotesam.bench.api import Sample, TaskPlugin
from remotesam.bench.api.registry import Registry
from remotesam.bench.errors import BenchError, InputError, PluginError, StoreError
from remotesam.bench.records.identity import (
    IN_MEMORY_FACTORY,
    describe_model,
    factory_spec,
    model_digest,
    model_key,
    sample_fingerprints,
    settings_hash,
    sha256_file,
)
from remotesam.bench.records.results import CheckpointRef, RunDocument, TaskResult, runs_dir
from remotesam.bench.records.store import PredictionKey, ResultsStore
from remotesam.bench.run.checkpoints import (
    ModelFactory,
    default_checkpoint,
    default_model_factory,
    resolve_checkpoints,
)
from remotesam.bench.run.config import RunConfig, check_config, check_run_id
from remotesam.bench.run.distributed import DistContext, init_distributed, shard_indices
from remotesam.bench.run.executor import JobWork, configure_engine, first_images, predict_jobs
from remotesam.bench.run.jobs import Job, build_jobs, read_job
from remotesam.bench.run.progress import Progress
from remotesam.bench.run.provenance import new_run_id, run_provenance
from remotesam.bench.run.scoring import score_job
from remotesam.bench.run.shards import collect_leftovers, forward_rows, open_local_store
from remotesam.precision import drift_note

if TYPE_CHECKING:
    from remotesam.engine import ImagePreloader

__all__ = ["PrecisionWarning", "RunOutcome", "SubsetWarning", "run", "score_run",
           "subset_warnings"]


@dataclass
class RunOutcome:
    """What :func:`run` returns.

    Attributes:
        document: the run document (rank 0; None on other ranks).
        path: where it was written (rank 0).
        errors: problems that did not stop the run (broken plugins, unloadable checkpoints,
            plugins whose ``score`` failed); the CLI exits 2 when non-empty.
        n_predicted: predictions computed by this process (cache misses that succeeded).
        n_cached: predictions reused from the store by this process.
        warnings: facts the user must know about the numbers that are not errors (a
            ``limit`` subset, a document that could not be saved in a read-only directory).
    """

    document: RunDocument | None
    path: Path | None
    errors: list[str]
    n_predicted: int = 0
    n_cached: int = 0
    warnings: list[str] = field(default_factory=list)


@dataclass
class _InMemoryModel:
    """A model object given to :func:`run` instead of checkpoints."""

    model: Any
    name: str
    digest: str = ""

    def __post_init__(self) -> None:
        try:
            self.digest = model_digest(self.model)
        except TypeError as e:
            raise InputError(f"run(model=...): {e}") from e


def _load_model(factory: ModelFactory, path: Path, ckpt: CheckpointRef, device: str,
                config: RunConfig) -> tuple[Any, str | None, float]:
    """``(model or None, error message or None, seconds)``: a checkpoint that cannot be loaded
    is an error of this checkpoint, not of the run (a :class:`BenchError` still stops it)."""
    t0 = time.perf_counter()
    try:
        model = factory(path, device=device, precision=config.precision,
                        batch_size=8 if config.batch_size == "auto" else config.batch_size)
    except BenchError:
        raise
    except Exception as e:
        return None, (f"checkpoint {ckpt.name}: loading the model failed: "
                      f"{type(e).__name__}: {e}"), time.perf_counter() - t0
    return model, None, time.perf_counter() - t0


def _model_precision(model: Any, default: str) -> str:
    """The precision an in-memory model reports in ``settings()`` (else ``default``)."""
    fn = getattr(model, "settings", None)
    if callable(fn):
        try:
            p = fn().get("precision")
        except Exception:
            return default
        if isinstance(p, str):
            return p
    return default


def run(config: RunConfig, *, registry: Registry | None = None,
        model_factory: ModelFactory | None = None, model: Any = None,
        model_name: str | None = None,
        on_warning: Callable[[str], None] | None = None) -> RunOutcome:
    """Run the benchmark described by ``config``; see the module docstring.

    Args:
        config: what to run.
        registry: the task registry (default: installed entry points).
        model_factory: ``factory(path, *, device, precision, batch_size) -> model``; default
            :func:`default_model_factory`. Its import spec (``module:qualname``) is part of
            the cache identity.
        model: an already built model (a :class:`remotesam.RemoteSAM`, or anything the task
            plugins can call) to evaluate instead of ``config.checkpoints``. It is identified
            by :func:`remotesam.bench.records.identity.model_digest` of its weights plus its
            ``settings()``; ``config.checkpoints``, ``config.precision`` and ``model_factory``
            are then not used (the model already has its device and precision).
        model_name: the name it gets in the run document (default: its class name).
        on_warning: called at once with each warning about the numbers (a ``limit`` subset);
            default: :func:`warnings.warn` with a :class:`SubsetWarning`. The warnings are
            also in the outcome and in the run document's provenance.

    Returns:
        A :class:`RunOutcome`; the run document is also saved under ``<results>/runs/``.

    Raises:
        InputError: bad paths, names or options (before any work starts).
        StoreError: the results directory cannot be written (before work starts, or while
            writing; everything stored so far is kept and a rerun resumes).
    """
    t_start = time.perf_counter()
    from remotesam.engine import tune_host_allocator

    # before the fingerprinting and engine threads exist: a thread that has a malloc arena of
    # its own keeps it (see tune_host_allocator)
    tune_host_allocator()
    registry = registry or Registry()
    factory = model_factory or default_model_factory
    spec = factory_spec(model_factory)
    if model is not None:
        if model_factory is not None or config.checkpoints:
            raise InputError("run(model=...) evaluates the given model: pass neither "
                             "config.checkpoints nor model_factory with it")
        config = dataclasses.replace(config, precision=_model_precision(model, config.precision))
    precision, device = check_config(config)
    config = dataclasses.replace(config, precision=precision)
    hub: dict[Path, Any] = {}
    in_memory: _InMemoryModel | None = None
    if model is not None:
        in_memory = _InMemoryModel(model, model_name or type(model).__name__)
        ckpt_paths = [Path(IN_MEMORY_FACTORY)]
    else:
        ckpt_paths = resolve_checkpoints(config.checkpoints, hub=hub) if config.checkpoints else [
            default_checkpoint()]
    errors: list[str] = []
    jobs = build_jobs(config, registry, errors)

    ctx, device = init_distributed(device)
    try:
        notes = subset_warnings(jobs)
        categories: list[type[Warning]] = [SubsetWarning] * len(notes)
        if (note := drift_note(config.precision)) is not None:
            notes.append(f"precision {config.precision}: {note}")
            categories.append(PrecisionWarning)
        if ctx.is_main:
            for note, category in zip(notes, categories):
                if on_warning is None:
                    warnings.warn(note, category, stacklevel=2)
                else:
                    on_warning(note)
        outcome = _run(config, factory, ckpt_paths, jobs, errors, ctx, device, t_start,
                       hub=hub, spec=spec, in_memory=in_memory, notes=notes)
        outcome.warnings[:0] = notes
        return outcome
    finally:
        ctx.close()


class SubsetWarning(UserWarning):
    """``limit`` evaluates part of a dataset: the numbers are not comparable with full runs."""


class PrecisionWarning(UserWarning):
    """A reduced precision (bf16, fp16): the numbers drift from fp32's (docs/SCALING.md)."""


def subset_warnings(jobs: Sequence[Job]) -> list[str]:
    """One warning per job that ``limit`` cuts to a subset of its split."""
    return [f"evaluated {len(j.samples)} of {j.n_total} samples of {j.task}.{j.dataset}"
            f"/{j.split}: a subset; its numbers are not comparable with full runs"
            for j in jobs if j.subset]


def _same_inputs(misses: Sequence[Sample], main_fps: Sequence[str],
                 own: Mapping[str, str]) -> tuple[list[Sample], list[str]]:
    """``(samples whose input fingerprint here equals rank 0's, ids of the others)``."""
    keep = [s for s, fp in zip(misses, main_fps) if own.get(s.sample_id) == fp]
    return keep, [s.sample_id for s, fp in zip(misses, main_fps) if own.get(s.sample_id) != fp]


@dataclass
class _Tally:
    """What the run has done so far, for its provenance."""

    n_predicted: int = 0
    n_failed_now: int = 0
    n_cached: int = 0
    model_load_s: float = 0.0
    predict_s: float = 0.0
    engine: dict[str, dict[str, Any]] = field(default_factory=dict)
    models: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass
class _JobPlan:
    """One job for one checkpoint: its store key, settings hash, this rank's misses."""

    job: Job
    key: PredictionKey
    settings_hash: str
    misses: list[Sample]
    errors: list[str]
    total: int = 0  # the job's misses over all ranks


@dataclass
class _Checkpoint:
    """One checkpoint of the run: where it is, how it is named, and its model once loaded."""

    path: Path
    ref: CheckpointRef
    model: Any = None
    error: str | None = None


def _checkpoint_refs(ckpt_paths: list[Path], hub: Mapping[Path, Any], store: ResultsStore,
                     in_memory: _InMemoryModel | None) -> list[_Checkpoint]:
    """The run's checkpoints, named and hashed; the same weights under two names once."""
    if in_memory is not None:
        refs = [CheckpointRef(name=in_memory.name, path="", sha256=in_memory.digest)]
    else:
        # a Hub checkpoint is named by its URI; its sha256 was taken when it was resolved
        refs = [CheckpointRef(name=hub[p].uri, path=str(p.resolve()), sha256=hub[p].sha256)
                if p in hub else
                CheckpointRef(name=str(p), path=str(p.resolve()), sha256=sha256_file(p, store))
                for p in ckpt_paths]
    seen: set[str] = set()
    unique: list[_Checkpoint] = []
    for p, c in zip(ckpt_paths, refs):
        if c.sha256 not in seen:  # the same file under two names is evaluated once
            seen.add(c.sha256)
            unique.append(_Checkpoint(p, c))
    return unique


class _Runner:
    """The steps of one run over its checkpoints (see the module docstring)."""

    def __init__(self, config: RunConfig, factory: ModelFactory, spec: str, device: str,
                 ctx: DistContext, store: ResultsStore, errors: list[str],
                 in_memory: _InMemoryModel | None, main: ResultsStore | None = None) -> None:
        self.config = config
        self.factory = factory
        self.spec = spec
        self.device = device
        self.ctx = ctx
        self.store = store
        self.main = main  # rank 0's store (None on the other ranks)
        self.errors = errors
        self.in_memory = in_memory
        self.tally = _Tally()
        # the first images, decoded while a model loads
        self.preload: ImagePreloader | None = None

    def start_preload(self, works: Iterable[tuple[TaskPlugin, Iterable[Sample]]]) -> None:
        """Decode the first images the engine will ask for (``2 * batch_size``) in a thread
        while the model loads; :meth:`predict` hands them over. Once per checkpoint."""
        if self.preload is not None:
            return
        from remotesam.engine import ImagePreloader

        bs = self.config.batch_size
        limit = 2 * bs if isinstance(bs, int) else 16
        self.preload = ImagePreloader(first_images(works, limit), max_images=limit)

    def stop_preload(self) -> None:
        """Drop what the preloader decoded and was not used (end of a checkpoint)."""
        if self.preload is not None:
            self.preload.close()
            self.preload = None

    def load(self, ckpt: _Checkpoint) -> None:
        """Load the checkpoint's model (a failure is an error of this checkpoint)."""
        ckpt.model, ckpt.error, dt = _load_model(self.factory, ckpt.path, ckpt.ref,
                                                 self.device, self.config)
        self.tally.model_load_s += dt

    def describe(self, ckpt: _Checkpoint, jobs: Sequence[Job]) -> dict[str, Any]:
        """The model description (part of the cache key). The store remembers it, so that a
        fully cached rerun does not load the model."""
        store, spec = self.store, self.spec
        desc: dict[str, Any] | None
        if self.in_memory is not None:
            ckpt.model = self.in_memory.model
            # its weights may have changed in place since its engine last ran (a training
            # step): text features cached from the old weights must not answer
            clear = getattr(getattr(ckpt.model, "engine", None), "clear_text_cache", None)
            if callable(clear):
                clear()
            desc = describe_model(ckpt.model, IN_MEMORY_FACTORY, store)
        else:
            mkey = model_key(ckpt.ref.sha256, spec, self.config.precision)
            desc = store.get_model_settings(mkey)
            if desc is None:
                # a model never described in this store has nothing stored: every sample of
                # this rank's share is a miss
                ctx = self.ctx
                self.start_preload((j.plugin, (j.samples[i] for i in shard_indices(
                    len(j.samples), ctx.rank, ctx.world_size))) for j in jobs)
                self.load(ckpt)
                desc = (describe_model(ckpt.model, spec, store) if ckpt.model is not None
                        else {"factory": spec, "class": None, "settings": None,
                              "epoc_digest": None})
                if ckpt.model is not None:
                    store.put_model_settings(mkey, desc)
            # the description (part of the key) is rank 0's
            desc = self.ctx.broadcast_object(desc if self.ctx.is_main else None)
        self.tally.models[ckpt.ref.name] = desc
        return desc

    def plan(self, ckpt: _Checkpoint, jobs: Sequence[Job], desc: dict[str, Any]
             ) -> list[_JobPlan]:
        """Every job's store key and this rank's share of the cache misses; loads the model at
        the first miss. Rank 0 finds what its store lacks; every rank predicts its share."""
        store, config, ctx = self.store, self.config, self.ctx
        keys: list[tuple[PredictionKey, str]] = []
        todo: list[tuple[list[int], list[str]]] = []
        for job in jobs:
            jsettings, shash = settings_hash(job.settings["task"], config.precision, desc)
            store.put_settings(shash, jsettings)
            key = job.key(ckpt.ref.sha256, shash)
            keys.append((key, shash))
            if not ctx.is_main:
                continue
            fps = job.fingerprints
            done = store.stored_ids(key, fps)
            self.tally.n_cached += sum(s.sample_id in done for s in job.samples)
            if not config.retry_failed:
                # a recorded permanent failure counts as done; transient ones (out of memory,
                # a timed-out resource) are tried again
                done |= set(store.get_failures(key, fps, transient=False))
            idx = [i for i, s in enumerate(job.samples) if s.sample_id not in done]
            todo.append((idx, [fps.get(job.samples[i].sample_id, "") for i in idx]
                         if ctx.distributed else []))
        todo = ctx.broadcast_object(todo if ctx.is_main else None)
        plans = []
        for job, (key, shash), (idx, main_fps) in zip(jobs, keys, todo):
            mine = list(shard_indices(len(idx), ctx.rank, ctx.world_size))
            misses = [job.samples[idx[i]] for i in mine]
            local_errors: list[str] = []
            if not ctx.is_main:  # only the samples this rank predicts are fingerprinted here
                job.fingerprints.update(sample_fingerprints(
                    [s for s in misses if s.sample_id not in job.fingerprints], store))
                misses, other = _same_inputs(misses, [main_fps[i] for i in mine],
                                             job.fingerprints)
                if other:
                    local_errors.append(
                        f"rank {ctx.rank} on {socket.gethostname()} reads other bytes than "
                        f"rank 0 for {len(other)} sample(s) of {job.label} (first: {other[0]}): "
                        "the dataset differs between nodes; give every node the same data (a "
                        "shared file system or identical copies) and run again")
            if misses and ckpt.model is None and ckpt.error is None:
                self.start_preload([(job.plugin, misses)])
                self.load(ckpt)
                if ckpt.model is not None:
                    actual = describe_model(ckpt.model, self.spec, store)
                    if actual != desc:  # the factory now builds a different model
                        store.put_model_settings(model_key(ckpt.ref.sha256, self.spec,
                                                           config.precision), actual)
                        local_errors.append(
                            f"checkpoint {ckpt.ref.name}: the model's settings differ from the "
                            "ones the store recorded for it; results of this run before "
                            f"{job.label} may be stale: run again")
            if misses and ckpt.error:
                local_errors.append(ckpt.error)
            plans.append(_JobPlan(job, key, shash, misses, local_errors, len(idx)))
        return plans

    def predict(self, ckpt: _Checkpoint, plans: Sequence[_JobPlan], progress: Progress) -> None:
        """One prediction pass over every job's misses (the jobs' requests share forwards)."""
        config = self.config
        works = [JobWork(p.job.plugin, p.key, p.misses, p.job.fingerprints, p.job.label,
                         progress.bar(f"{p.job.label} [{Path(ckpt.ref.name).name}]",
                                      len(p.misses), p.total,
                                      f"{ckpt.ref.sha256[:16]}/{p.job.label}").advance)
                 for p in plans if p.misses]
        t_pred = time.perf_counter()
        info = configure_engine(ckpt.model, works, batch_size=config.batch_size,
                                channels_last=config.channels_last, compile=config.compile)
        self.tally.engine[ckpt.ref.name] = info
        predict_jobs(works, ckpt.model, self.store,
                     int(info.get("batch_size") or
                         (8 if config.batch_size == "auto" else config.batch_size)),
                     preload=self.preload)
        self.tally.predict_s += time.perf_counter() - t_pred
        self.tally.n_predicted += sum(w.n_ok for w in works)
        self.tally.n_failed_now += sum(w.n_bad for w in works)

    def score(self, ckpt: _Checkpoint, plan: _JobPlan) -> TaskResult | None:
        """Gather every rank's errors (a barrier) and, on rank 0, score the job from the
        store."""
        store, fps = self.store, plan.job.fingerprints
        gathered = self.ctx.all_gather_object(plan.errors)  # also a barrier
        if not self.ctx.is_main:
            return None
        for errs in gathered:
            for err in errs:
                if err not in self.errors:
                    self.errors.append(err)
        unreadable: list[str] = []
        preds = store.get_predictions(plan.key, fingerprints=fps, unreadable=unreadable)
        if unreadable:  # predicted again, as missing ones are
            preds = self.predict_again(ckpt, plan, unreadable) or preds
        failures = store.get_failures(plan.key, fps)
        transient = set(store.get_failures(plan.key, fps, transient=True))
        ckpt_errors = [e for errs in gathered for e in errs]
        reason = ckpt_errors[0] if ckpt_errors else "no prediction stored"
        try:
            return score_job(plan.job, ckpt.ref, preds, failures, reason, plan.settings_hash,
                             transient)
        except PluginError as e:
            self.errors.append(f"checkpoint {ckpt.ref.name}: {e}")
            return None

    def predict_again(self, ckpt: _Checkpoint, plan: _JobPlan, ids: Sequence[str]
                      ) -> dict[str, Any] | None:
        """Predict the samples whose stored prediction cannot be read (edited or corrupted
        rows, dropped first); the job's predictions read again, or None without a model."""
        store, fps = self.store, plan.job.fingerprints
        store.delete_predictions(plan.key, list(ids))
        if ckpt.model is None and ckpt.error is None:
            self.load(ckpt)
        if ckpt.model is None:
            return None
        again = set(ids)
        work = JobWork(plan.job.plugin, plan.key,
                       [s for s in plan.job.samples if s.sample_id in again], fps,
                       plan.job.label)
        bs = getattr(ckpt.model, "batch_size", None)
        predict_jobs([work], ckpt.model, store, bs if isinstance(bs, int) else 8)
        self.tally.n_predicted += work.n_ok
        self.tally.n_failed_now += work.n_bad
        self.tally.n_cached -= len(again)
        return store.get_predictions(plan.key, fingerprints=fps)

    def evaluate(self, ckpt: _Checkpoint, jobs: Sequence[Job], progress: Progress
                 ) -> list[TaskResult]:
        """Every job's misses first, then one prediction pass for all of them, then scoring."""
        try:
            desc = self.describe(ckpt, jobs)
            plans = self.plan(ckpt, jobs, desc)
            if ckpt.model is not None:
                self.predict(ckpt, plans, progress)
        finally:
            self.stop_preload()
        if self.ctx.distributed:  # every rank's predictions into rank 0's store
            forward_rows(self.ctx, self.main, [] if self.ctx.is_main else [self.store])
        results = [self.score(ckpt, p) for p in plans]
        ckpt.model = None
        return [r for r in results if r is not None]

    def provenance(self, jobs: Sequence[Job], results: Sequence[TaskResult],
                   hub: Mapping[Path, Any], notes: Sequence[str], t_start: float,
                   job_counts: tuple[int, int]) -> dict[str, Any]:
        """The run document's provenance: where and how, what was read, what it cost."""
        config, t = self.config, self.tally
        wall = time.perf_counter() - t_start
        prov = run_provenance(config, self.device, self.ctx)
        n_eval = sum(r.n_evaluated for r in results)
        prov.update({
            "task_versions": {j.task: int(j.plugin.version) for j in jobs},
            "task_settings": {f"{j.task}.{j.dataset}": j.settings for j in jobs},
            "model_factory": self.spec if self.in_memory is None else IN_MEMORY_FACTORY,
            "synthetic": any(j.synthetic for j in jobs),
            "subset": any(j.subset for j in jobs),
            "warnings": list(notes),
            "models": t.models,
            "datasets": {f"{j.task}.{j.dataset}": {"root": str(j.root.resolve()),
                                                    "split": j.split, "n_total": j.n_total,
                                                    "n_selected": len(j.samples)}
                         for j in jobs},
            "n_total": sum(r.n_total for r in results),
            "n_evaluated": n_eval,
            "n_failed": sum(r.n_failed for r in results),
            # the job's counts (each rank predicted its share); rank 0 counted the cached ones
            "n_predicted_now": job_counts[0],
            "n_failed_now": job_counts[1],
            "n_cached": t.n_cached,
            "wall_time_s": wall,
            "model_load_s": t.model_load_s,
            "predict_s": t.predict_s,
            "engine": t.engine,
            "samples_per_s": (n_eval / wall) if wall > 0 else None,
            "predicted_per_s": (job_counts[0] / wall) if wall > 0 else None,
            "hub_checkpoints": [r.provenance() for r in hub.values()],
            "errors": self.errors,
        })
        return prov


def _run(config: RunConfig, factory: ModelFactory, ckpt_paths: list[Path], jobs: list[Job],
         errors: list[str], ctx: DistContext, device: str, t_start: float,
         hub: Mapping[Path, Any], spec: str, in_memory: _InMemoryModel | None,
         notes: Sequence[str]) -> RunOutcome:
    # rank 0 writes the one store; the other ranks their shard stores, sent to rank 0
    store = open_local_store(config.results_dir, ctx)
    main = store if ctx.is_main else None
    try:
        collect_leftovers(ctx, main, store, config.results_dir)
        runner = _Runner(config, factory, spec, device, ctx, store, errors, in_memory, main)
        ckpts = _checkpoint_refs(ckpt_paths, hub, store, in_memory)
        if ctx.is_main:  # the other ranks fingerprint only the samples they predict
            for job in jobs:
                job.fingerprints = sample_fingerprints(job.samples, store)
        results: list[TaskResult] = []
        with Progress(config.progress, interval=config.progress_interval, ctx=ctx) as progress:
            for ckpt in ckpts:
                results += runner.evaluate(ckpt, jobs, progress)
        tally = runner.tally
        counts = ctx.all_gather_object((tally.n_predicted, tally.n_failed_now))
        job_counts = (sum(c[0] for c in counts), sum(c[1] for c in counts))
        if not ctx.is_main:
            return RunOutcome(None, None, errors, tally.n_predicted, tally.n_cached)
        doc = RunDocument(run_id=config.run_id or new_run_id(),
                          created=_dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
                          provenance=runner.provenance(jobs, results, hub, notes, t_start,
                                                       job_counts),
                          results=results)
        out = _save(doc, config.results_dir)
        return RunOutcome(doc, out, errors, tally.n_predicted, tally.n_cached)
    finally:
        store.close()


def _save(doc: RunDocument, results_dir: str | Path) -> Path:
    path = runs_dir(results_dir) / f"{doc.run_id}.json"
    try:
        return doc.save(path)
    except OSError as e:
        raise StoreError(f"cannot write the run document {path} ({e}); every prediction is "
                         "stored: free space / fix permissions and run `remotesam-bench score` "
                         "(or the same run command) to write it again") from e


# ---------------------------------------------------------------------------------------------
# re-scoring


def score_run(source: RunDocument, *, results_dir: str | Path,
              registry: Registry | None = None, data_root: str | Path | None = None,
              dataset_roots: Mapping[str, str | Path] | None = None,
              tasks: Sequence[str] | None = None, run_id: str | None = None,
              out: str | Path | None = None) -> RunOutcome:
    """Re-score the stored predictions behind ``source`` without a model.

    The samples (targets) are read again from the datasets: the run's own data locations unless
    ``data_root``/``dataset_roots`` override them. Scoring uses the plugins' *current* code, so
    a metric fix shows up. A new run document is written to ``out``, or else to
    ``<results>/runs/``. The store is only read (opened read-only), so a read-only copy of a
    results directory can be scored: there, without ``out``, the document is not saved and
    the outcome's ``warnings`` say so.

    Raises:
        InputError: a dataset is missing, a task unknown.
        StoreError: no store in ``results_dir``.
    """
    t_start = time.perf_counter()
    registry = registry or Registry()
    cfg_src = dict(source.provenance.get("config", {}))
    roots = dict(cfg_src.get("dataset_roots", {}))
    roots.update({k: str(v) for k, v in (dataset_roots or {}).items()})
    config = RunConfig(
        tasks=[f"{r.task}.{r.dataset}" for r in source.results],
        checkpoints=[r.checkpoint.path for r in source.results],
        data_root=data_root if data_root is not None else cfg_src.get("data_root"),
        dataset_roots=roots,
        split=cfg_src.get("split"), limit=cfg_src.get("limit"),
        precision=cfg_src.get("precision", "fp32"),
        task_options=cfg_src.get("task_options", {}) or {},
        dataset_options=cfg_src.get("dataset_options", {}) or {},
        results_dir=results_dir, run_id=run_id)
    if run_id is not None:
        check_run_id(run_id)
    wanted = None if not tasks else set(registry.resolve(list(tasks)))
    store = ResultsStore(results_dir, readonly=True)
    errors: list[str] = []
    results: list[TaskResult] = []
    jobs: dict[tuple[str, str, str], Job | None] = {}
    try:
        for r in source.results:
            if wanted is not None and r.task not in wanted:
                continue
            jk = (r.task, r.dataset, r.split)
            if jk not in jobs:
                try:
                    plugin = registry.get(r.task)(dict(config.task_options.get(r.task, {})))
                except PluginError as e:
                    errors.append(str(e))
                    jobs[jk] = None
                    continue
                if r.dataset not in plugin.datasets:
                    raise InputError(f"run {source.run_id}: task {r.task!r} no longer has a "
                                     f"dataset {r.dataset!r}")
                cfg = dataclasses.replace(config, split=r.split)
                jobs[jk] = read_job(cfg, r.task, plugin, r.dataset)
            job = jobs[jk]
            if job is None:
                continue
            # Predictions are looked up under the key they were stored with.
            job.settings_hash = r.settings_hash
            key = PredictionKey(r.checkpoint.sha256, r.task, r.task_version, r.dataset, r.split,
                                r.settings_hash)
            try:
                if not job.fingerprints:
                    job.fingerprints = sample_fingerprints(job.samples, store)
                fps = job.fingerprints
                unreadable: list[str] = []
                preds = store.get_predictions(key, fingerprints=fps, unreadable=unreadable)
                failures = store.get_failures(key, fps)
                failures.update({sid: "the stored prediction is not valid JSON (edited or "
                                 "corrupted); run the same `run` command to predict it again"
                                 for sid in unreadable})
                res = score_job(job, r.checkpoint, preds, failures,
                             "no prediction stored for the sample's current inputs (the "
                             "dataset changed since the run; run it again)",
                             transient=set(store.get_failures(key, fps, transient=True)))
            except PluginError as e:
                errors.append(f"checkpoint {r.checkpoint.name}: {e}")
                continue
            res.task_version = r.task_version
            results.append(res)
    finally:
        store.close()
    prov = dict(source.provenance)
    prov.update({
        "rescored_from": source.run_id,
        "rescored_wall_time_s": time.perf_counter() - t_start,
        "scoring_task_versions": {t: int(j.plugin.version) for (t, _, _), j in jobs.items()
                                  if j is not None},
        "errors": errors,
    })
    doc = RunDocument(run_id=run_id or new_run_id(),
                      created=_dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
                      provenance=prov, results=results)
    notes: list[str] = []
    path: Path | None
    if out is not None:
        try:
            path = doc.save(out)
        except OSError as e:
            raise StoreError(f"cannot write the run document {out} ({e}); pass another --out"
                             ) from e
    elif _can_write(runs_dir(results_dir)):
        path = _save(doc, results_dir)
    else:
        path = None
        notes.append(f"{results_dir} cannot be written (read-only): the re-scored run document "
                     "was not saved; pass --out FILE to save it elsewhere")
    return RunOutcome(doc, path, errors, warnings=notes)


def _can_write(folder: Path) -> bool:
    """Whether ``folder`` (or, if it does not exist yet, its nearest existing parent) can be
    written: ``os.access`` honours read-only mounts and permissions."""
    p = Path(folder)
    while not p.exists() and p != p.parent:
        p = p.parent
    return os.access(p, os.W_OK)
