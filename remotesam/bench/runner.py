"""The runner: checkpoints x tasks x datasets, cached, resumable, sharded, failure-isolated.

For each checkpoint (identified by the sha256 of its file) the model is loaded once, and only if
some prediction is missing from the store. For each (task, dataset) the samples are read and
looked up in the store (a stored prediction counts only while the sample's input fingerprint,
:func:`sample_fingerprints`, is unchanged); the misses are sharded by index across ``torchrun``
ranks and predicted in batches; every batch is committed as soon as it exists (rank 0 to the
store, the other ranks to their shard stores, sent to rank 0 after each checkpoint:
:mod:`remotesam.bench.shards`). A batch
that raises is retried one sample at a time; a sample that still raises is recorded as failed and
the run goes on. Rank 0 then scores from the store (so an interrupted-and-resumed run scores
exactly the same JSON as an uninterrupted one) and the run document is written to
``<results>/runs/<run_id>.json``.

The pieces live beside it: :mod:`remotesam.bench.plan` (configuration, checkpoints, task
selection, datasets), :mod:`remotesam.bench.identity` (cache identity),
:mod:`remotesam.bench.scoring` and :mod:`remotesam.bench.provenance`; this module keeps the loop
(:func:`predict_misses` predicts and commits one job's cache misses), :func:`run`,
:func:`score_run` and :func:`format_summary`, and re-exports the public names of the others.

Python use::

    from remotesam.bench.runner import RunConfig, run
    outcome = run(RunConfig(tasks=["det"], checkpoints=["ckpt.pth"], data_root="/data/eo"))
    print(outcome.document.results[0].metrics)
"""


from __future__ import annotations

import dataclasses
import datetime as _dt
import math
import os
import socket
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from remotesam.bench.api import Sample, TaskPlugin
from remotesam.bench.contract import encode_prediction, encode_predictions
from remotesam.bench.distributed import DistContext, init_distributed, shard_indices
from remotesam.bench.errors import BenchError, InputError, PluginError, StoreError, is_transient
from remotesam.bench.executor import JobWork, configure_engine, predict_jobs
from remotesam.bench.identity import (
    DEFAULT_FACTORY_SPEC,
    IN_MEMORY_FACTORY,
    describe_model,
    factory_spec,
    model_digest,
    model_key,
    sample_fingerprints,
    settings_hash,
    sha256_file,
)
from remotesam.bench.plan import (
    CHECKPOINT_SUFFIXES,
    ModelFactory,
    RunConfig,
    _build_jobs,
    _check_config,
    _Job,
    _read_dataset,
    check_run_id,
    default_checkpoint,
    default_model_factory,
    load_model_factory,
    resolve_checkpoints,
)
from remotesam.bench.progress import Progress
from remotesam.bench.provenance import _new_run_id, _provenance
from remotesam.bench.registry import Registry
from remotesam.bench.results import CheckpointRef, RunDocument, TaskResult, runs_dir
from remotesam.bench.scoring import _score
from remotesam.bench.shards import collect_leftovers, forward_rows, open_local_store
from remotesam.bench.store import PredictionKey, ResultsStore
from remotesam.precision import drift_note

__all__ = [
    "CHECKPOINT_SUFFIXES",
    "ModelFactory",
    "PrecisionWarning",
    "RunConfig",
    "RunOutcome",
    "SubsetWarning",
    "check_run_id",
    "checkpoint_labels",
    "default_checkpoint",
    "default_model_factory",
    "format_summary",
    "load_model_factory",
    "predict_misses",
    "resolve_checkpoints",
    "run",
    "sample_fingerprints",
    "score_run",
    "settings_hash",
    "sha256_file",
    "subset_warnings",
]


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



# ---------------------------------------------------------------------------------------------
# prediction


#: One prediction as the store keeps it (:func:`remotesam.bench.contract.encode_prediction`).
_encode = encode_prediction


def _error_text(e: BaseException) -> str:
    text = f"{type(e).__name__}: {e}"
    return text if len(text) <= 2000 else text[:2000] + " ..."


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
            return [], [(batch[0].sample_id, _error_text(e), is_transient(e))]
    ok: list[tuple[str, dict[str, Any]]] = []
    bad: list[tuple[str, str, bool]] = []
    for s in batch:
        o, b = _predict_isolated(plugin, model, [s])
        ok += o
        bad += b
    return ok, bad


def predict_misses(job: _Job, model: Any, misses: Sequence[Sample], key: PredictionKey,
                   store: ResultsStore, batch_size: int,
                   advance: Callable[[int], None] | None = None) -> tuple[int, int]:
    """Predict the samples ``misses`` of ``job`` with ``model`` and commit them to ``store``.

    The samples go to ``plugin.predict`` in batches of ``batch_size``; each batch is committed
    (predictions and failures under ``key``, with the job's input fingerprints) as soon as it
    exists, so an interrupted run loses at most one batch. ``advance(n)`` is called after each
    batch (a progress bar).

    Returns:
        ``(n_predicted, n_failed)``.
    """
    n_ok = n_bad = 0
    for b in range(0, len(misses), batch_size):
        batch = misses[b: b + batch_size]
        ok, bad = _predict_isolated(job.plugin, model, batch)
        store.put_predictions(key, ok, job.fingerprints)
        store.put_failures(key, bad, job.fingerprints)
        n_ok += len(ok)
        n_bad += len(bad)
        if advance is not None:
            advance(len(batch))
    return n_ok, n_bad


# ---------------------------------------------------------------------------------------------
# the run


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
            by :func:`remotesam.bench.identity.model_digest` of its weights plus its
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
    registry = registry or Registry()
    factory = model_factory or default_model_factory
    spec = factory_spec(model_factory)
    if model is not None:
        if model_factory is not None or config.checkpoints:
            raise InputError("run(model=...) evaluates the given model: pass neither "
                             "config.checkpoints nor model_factory with it")
        config = dataclasses.replace(config, precision=_model_precision(model, config.precision))
    precision, device = _check_config(config)
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
    jobs = _build_jobs(config, registry, errors)

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
        outcome = _run(config, registry, factory, ckpt_paths, jobs, errors, ctx, device,
                       t_start, hub=hub, spec=spec, in_memory=in_memory, notes=notes)
        outcome.warnings[:0] = notes
        return outcome
    finally:
        ctx.close()


class SubsetWarning(UserWarning):
    """``limit`` evaluates part of a dataset: the numbers are not comparable with full runs."""


class PrecisionWarning(UserWarning):
    """A reduced precision (bf16, fp16): the numbers drift from fp32's (docs/SCALING.md)."""


def subset_warnings(jobs: Sequence[_Job]) -> list[str]:
    """One warning per job that ``limit`` cuts to a subset of its split."""
    return [f"evaluated {len(j.samples)} of {j.n_total} samples of {j.task}.{j.dataset}"
            f"/{j.split}: a subset; its numbers are not comparable with full runs"
            for j in jobs if j.subset]


def _same_inputs(misses: Sequence[Sample], main_fps: Sequence[str],
                 own: Mapping[str, str]) -> tuple[list[Sample], list[str]]:
    """``(samples whose input fingerprint here equals rank 0's, ids of the others)``."""
    keep = [s for s, fp in zip(misses, main_fps) if own.get(s.sample_id) == fp]
    return keep, [s.sample_id for s, fp in zip(misses, main_fps) if own.get(s.sample_id) != fp]


def _run(config: RunConfig, registry: Registry, factory: ModelFactory, ckpt_paths: list[Path],
         jobs: list[_Job], errors: list[str], ctx: DistContext, device: str,
         t_start: float, hub: Mapping[Path, Any] | None = None,
         spec: str = DEFAULT_FACTORY_SPEC, in_memory: _InMemoryModel | None = None,
         notes: Sequence[str] = ()) -> RunOutcome:
    hub = hub or {}
    # rank 0 writes the one store; the other ranks their shard stores, sent to rank 0
    store = open_local_store(config.results_dir, ctx)
    main = store if ctx.is_main else None
    try:
        collect_leftovers(ctx, main, store, config.results_dir)
        if in_memory is not None:
            ckpts = [CheckpointRef(name=in_memory.name, path="", sha256=in_memory.digest)]
        else:
            # a Hub checkpoint is named by its URI; its sha256 was taken when it was resolved
            ckpts = [CheckpointRef(name=hub[p].uri, path=str(p.resolve()), sha256=hub[p].sha256)
                     if p in hub else
                     CheckpointRef(name=str(p), path=str(p.resolve()),
                                   sha256=sha256_file(p, store))
                     for p in ckpt_paths]
        seen: set[str] = set()
        unique: list[tuple[Path, CheckpointRef]] = []
        for p, c in zip(ckpt_paths, ckpts):
            if c.sha256 not in seen:  # the same file under two names is evaluated once
                seen.add(c.sha256)
                unique.append((p, c))
        if ctx.is_main:  # the other ranks fingerprint only the samples they predict
            for job in jobs:
                job.fingerprints = sample_fingerprints(job.samples, store)
        model_descriptions: dict[str, dict[str, Any]] = {}

        results: list[TaskResult] = []
        n_pred = n_cached = n_failed_now = 0
        t_model = t_predict = 0.0
        engine_info: dict[str, dict[str, Any]] = {}
        with Progress(config.progress, interval=config.progress_interval,
                      ctx=ctx) as progress:
            for path, ckpt in unique:
                model: Any = None
                model_error: str | None = None
                mkey = model_key(ckpt.sha256, spec, config.precision)

                # The model description is part of the key; the store remembers it so that a
                # fully cached rerun does not load the model.
                if in_memory is not None:
                    model = in_memory.model
                    # its weights may have changed in place since its engine last ran (a
                    # training step): text features cached from the old weights must not answer
                    clear = getattr(getattr(model, "engine", None), "clear_text_cache", None)
                    if callable(clear):
                        clear()
                    desc = describe_model(model, IN_MEMORY_FACTORY, store)
                else:
                    desc = store.get_model_settings(mkey)
                    if desc is None:
                        model, model_error, dt = _load_model(factory, path, ckpt, device, config)
                        t_model += dt
                        desc = (describe_model(model, spec, store) if model is not None
                                else {"factory": spec, "class": None, "settings": None,
                                      "epoc_digest": None})
                        if model is not None:
                            store.put_model_settings(mkey, desc)
                if in_memory is None:  # the description (part of the key) is rank 0's
                    desc = ctx.broadcast_object(desc if ctx.is_main else None)
                model_descriptions[ckpt.name] = desc
                # Every job's misses first, then one prediction pass for all of them
                # (executor.predict_jobs: the jobs' requests share forwards), then scoring.
                plans: list[tuple[_Job, PredictionKey, str, list[Sample], list[str]]] = []
                # Rank 0 finds what its store lacks; every rank predicts its share of that.
                todo: list[tuple[list[int], list[str]]] = []
                for job in jobs:
                    jsettings, shash = settings_hash(job.settings["task"], config.precision, desc)
                    store.put_settings(shash, jsettings)
                    if not ctx.is_main:
                        continue
                    key = job.key(ckpt.sha256, shash)
                    fps = job.fingerprints
                    done = store.stored_ids(key, fps)
                    n_cached += sum(s.sample_id in done for s in job.samples)
                    if not config.retry_failed:
                        # a recorded permanent failure counts as done; transient ones (out of
                        # memory, a timed-out resource) are tried again
                        done |= set(store.get_failures(key, fps, transient=False))
                    idx = [i for i, s in enumerate(job.samples) if s.sample_id not in done]
                    todo.append((idx, [fps.get(job.samples[i].sample_id, "") for i in idx]
                                 if ctx.distributed else []))
                todo = ctx.broadcast_object(todo if ctx.is_main else None)
                totals = {job.label: len(idx) for job, (idx, _) in zip(jobs, todo)}
                for job, (idx, main_fps) in zip(jobs, todo):
                    _, shash = settings_hash(job.settings["task"], config.precision, desc)
                    key = job.key(ckpt.sha256, shash)
                    mine = list(shard_indices(len(idx), ctx.rank, ctx.world_size))
                    misses = [job.samples[idx[i]] for i in mine]
                    local_errors: list[str] = []
                    if not ctx.is_main:
                        job.fingerprints.update(sample_fingerprints(
                            [s for s in misses if s.sample_id not in job.fingerprints], store))
                        misses, other = _same_inputs(misses, [main_fps[i] for i in mine],
                                                     job.fingerprints)
                        if other:
                            local_errors.append(
                                f"rank {ctx.rank} on {socket.gethostname()} reads other bytes "
                                f"than rank 0 for {len(other)} sample(s) of {job.label} "
                                f"(first: {other[0]}): the dataset differs between nodes; give "
                                "every node the same data (a shared file system or identical "
                                "copies) and run again")
                    if misses and model is None and model_error is None:
                        model, model_error, dt = _load_model(factory, path, ckpt, device, config)
                        t_model += dt
                        if model is not None:
                            actual = describe_model(model, spec, store)
                            if actual != desc:  # the factory now builds a different model
                                store.put_model_settings(mkey, actual)
                                local_errors.append(
                                    f"checkpoint {ckpt.name}: the model's settings differ from "
                                    "the ones the store recorded for it; results of this run "
                                    f"before {job.label} may be stale: run again")
                    if misses and model_error:
                        local_errors.append(model_error)
                    plans.append((job, key, shash, misses, local_errors))
                if model is not None:
                    works = [JobWork(job.plugin, key, misses, job.fingerprints, job.label,
                                     progress.bar(f"{job.label} [{Path(ckpt.name).name}]",
                                                  len(misses), totals[job.label],
                                                  f"{ckpt.sha256[:16]}/{job.label}").advance)
                             for job, key, _, misses, _ in plans if misses]
                    t_pred = time.perf_counter()
                    engine_info[ckpt.name] = configure_engine(
                        model, works, batch_size=config.batch_size,
                        channels_last=config.channels_last, compile=config.compile)
                    predict_jobs(works, model, store,
                                 int(engine_info[ckpt.name].get("batch_size") or
                                     (8 if config.batch_size == "auto" else config.batch_size)))
                    t_predict += time.perf_counter() - t_pred
                    n_pred += sum(w.n_ok for w in works)
                    n_failed_now += sum(w.n_bad for w in works)
                if ctx.distributed:  # every rank's predictions into rank 0's store
                    forward_rows(ctx, main, [] if ctx.is_main else [store])
                for job, key, shash, _misses, local_errors in plans:
                    fps = job.fingerprints
                    gathered = ctx.all_gather_object(local_errors)  # also a barrier
                    if not ctx.is_main:
                        continue
                    for errs in gathered:
                        for err in errs:
                            if err not in errors:
                                errors.append(err)
                    unreadable: list[str] = []
                    preds = store.get_predictions(key, fingerprints=fps, unreadable=unreadable)
                    if unreadable:  # predicted again, as missing ones are
                        store.delete_predictions(key, unreadable)
                        if model is None and model_error is None:
                            model, model_error, dt = _load_model(factory, path, ckpt, device,
                                                                 config)
                            t_model += dt
                        if model is not None:
                            again = set(unreadable)
                            work = JobWork(job.plugin, key,
                                           [s for s in job.samples if s.sample_id in again],
                                           fps, job.label)
                            predict_jobs([work], model, store, model.batch_size if isinstance(
                                getattr(model, "batch_size", None), int) else 8)
                            n_pred += work.n_ok
                            n_failed_now += work.n_bad
                            n_cached -= len(again)
                            preds = store.get_predictions(key, fingerprints=fps)
                    failures = store.get_failures(key, fps)
                    transient = set(store.get_failures(key, fps, transient=True))
                    ckpt_errors = [e for errs in gathered for e in errs]
                    reason = ckpt_errors[0] if ckpt_errors else "no prediction stored"
                    try:
                        results.append(_score(job, ckpt, preds, failures, reason, shash,
                                              transient))
                    except PluginError as e:
                        errors.append(f"checkpoint {ckpt.name}: {e}")
                del model
        # the job's counts (each rank predicted its share); rank 0 counted the cached ones
        job_pred, job_failed = map(sum, zip(*ctx.all_gather_object((n_pred, n_failed_now))))
        if not ctx.is_main:
            return RunOutcome(None, None, errors, n_pred, n_cached)
        wall = time.perf_counter() - t_start
        prov = _provenance(config, device, ctx)
        n_total = sum(r.n_total for r in results)
        n_eval = sum(r.n_evaluated for r in results)
        prov.update({
            "task_versions": {j.task: int(j.plugin.version) for j in jobs},
            "task_settings": {f"{j.task}.{j.dataset}": j.settings for j in jobs},
            "model_factory": spec if in_memory is None else IN_MEMORY_FACTORY,
            "synthetic": any(j.synthetic for j in jobs),
            "subset": any(j.subset for j in jobs),
            "warnings": list(notes),
            "models": model_descriptions,
            "datasets": {f"{j.task}.{j.dataset}": {"root": str(j.root.resolve()),
                                                    "split": j.split, "n_total": j.n_total,
                                                    "n_selected": len(j.samples)}
                         for j in jobs},
            "n_total": n_total,
            "n_evaluated": n_eval,
            "n_failed": sum(r.n_failed for r in results),
            "n_predicted_now": job_pred,
            "n_failed_now": job_failed,
            "n_cached": n_cached,
            "wall_time_s": wall,
            "model_load_s": t_model,
            "predict_s": t_predict,
            "engine": engine_info,
            "samples_per_s": (n_eval / wall) if wall > 0 else None,
            "predicted_per_s": (job_pred / wall) if wall > 0 else None,
            "hub_checkpoints": [r.provenance() for r in hub.values()],
            "errors": errors,
        })
        doc = RunDocument(run_id=config.run_id or _new_run_id(),
                          created=_dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
                          provenance=prov, results=results)
        out = _save(doc, config.results_dir)
        return RunOutcome(doc, out, errors, n_pred, n_cached)
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
    jobs: dict[tuple[str, str, str], _Job | None] = {}
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
                jobs[jk] = _read_dataset(cfg, r.task, plugin, r.dataset)
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
                res = _score(job, r.checkpoint, preds, failures,
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
    doc = RunDocument(run_id=run_id or _new_run_id(),
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


# ---------------------------------------------------------------------------------------------
# summary


def _fmt(v: float, unit: str) -> str:
    if not math.isfinite(v):
        return "n/a"
    return f"{v:.2f}" if unit == "%" else f"{v:.4g}"


def checkpoint_labels(doc: RunDocument) -> dict[str, str]:
    """``{checkpoint name: label}`` for display: the shortest trailing part of the path that
    tells the run's checkpoints apart, and the first 8 hex digits of the sha256
    (``"remotesam_tiny.safetensors (3f2a1b4c)"``), as the leaderboard, radar and report label
    their rows. The full path stays in the run document."""
    from remotesam.bench.leaderboard import checkpoint_label, short_names

    display = short_names(r.checkpoint.name for r in doc.results)
    return {r.checkpoint.name: checkpoint_label(r, display[r.checkpoint.name], doc.provenance)
            for r in doc.results}


def format_summary(doc: RunDocument) -> Any:
    """A rich ``Table`` of the run: one row per result, primary metric first, failures counted,
    context (synthetic data, ``--limit`` subset) named; checkpoints by :func:`checkpoint_labels`
    (file name and short hash, never a cut path)."""
    from rich.table import Table

    table = Table(title=f"run {doc.run_id}", show_lines=False)
    for col in ("checkpoint", "task", "dataset", "split", "evaluated", "failed", "context",
                "primary", "other metrics"):
        table.add_column(col, justify="right" if col in ("evaluated", "failed") else "left",
                         no_wrap=col != "other metrics")
    labels = checkpoint_labels(doc)
    for r in doc.results:
        prim = [(n, m) for n, m in r.metrics.items() if m.primary]
        rest = [(n, m) for n, m in r.metrics.items() if not m.primary]
        ptxt = ", ".join(f"{n}={_fmt(m.value, m.unit)}" for n, m in prim)
        if prim and prim[0][1].ci95 is not None:
            lo, hi = prim[0][1].ci95
            ptxt += f" [{_fmt(lo, prim[0][1].unit)}, {_fmt(hi, prim[0][1].unit)}]"
        context = [c for c, on in (("synthetic", getattr(r, "synthetic", False)),
                                   ("subset", r.n_evaluated + r.n_failed < r.n_total)) if on]
        table.add_row(labels[r.checkpoint.name], r.task, r.dataset, r.split,
                      f"{r.n_evaluated}/{r.n_evaluated + r.n_failed}"
                      + (f" (of {r.n_total})" if r.n_total != r.n_evaluated + r.n_failed else ""),
                      str(r.n_failed), ", ".join(context) or "-", ptxt,
                      ", ".join(f"{n}={_fmt(m.value, m.unit)}" for n, m in rest))
    return table
