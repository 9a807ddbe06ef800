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
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from remotesam.bench.api import Sample
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
from remotesam.bench.run.executor import JobWork, configure_engine, predict_jobs
from remotesam.bench.run.jobs import Job, build_jobs, read_job
from remotesam.bench.run.progress import Progress
from remotesam.bench.run.provenance import new_run_id, run_provenance
from remotesam.bench.run.scoring import score_job

__all__ = ["RunOutcome", "SubsetWarning", "run", "score_run", "subset_warnings"]


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
        if ctx.is_main:
            for note in notes:
                if on_warning is None:
                    warnings.warn(note, SubsetWarning, stacklevel=2)
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


def subset_warnings(jobs: Sequence[Job]) -> list[str]:
    """One warning per job that ``limit`` cuts to a subset of its split."""
    return [f"evaluated {len(j.samples)} of {j.n_total} samples of {j.task}.{j.dataset}"
            f"/{j.split}: a subset; its numbers are not comparable with full runs"
            for j in jobs if j.subset]


@dataclass
class _Tally:
    """What the run has done so far, for its provenance."""

    n_predicted: int = 0
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
                 in_memory: _InMemoryModel | None) -> None:
        self.config = config
        self.factory = factory
        self.spec = spec
        self.device = device
        self.ctx = ctx
        self.store = store
        self.errors = errors
        self.in_memory = in_memory
        self.tally = _Tally()

    def load(self, ckpt: _Checkpoint) -> None:
        """Load the checkpoint's model (a failure is an error of this checkpoint)."""
        ckpt.model, ckpt.error, dt = _load_model(self.factory, ckpt.path, ckpt.ref,
                                                 self.device, self.config)
        self.tally.model_load_s += dt

    def describe(self, ckpt: _Checkpoint) -> dict[str, Any]:
        """The model description (part of the cache key). The store remembers it, so that a
        fully cached rerun does not load the model."""
        store, spec = self.store, self.spec
        desc: dict[str, Any] | None
        if self.in_memory is not None:
            ckpt.model = self.in_memory.model
            desc = describe_model(ckpt.model, IN_MEMORY_FACTORY, store)
        else:
            mkey = model_key(ckpt.ref.sha256, spec, self.config.precision)
            desc = store.get_model_settings(mkey)
            if desc is None:
                self.load(ckpt)
                desc = (describe_model(ckpt.model, spec, store) if ckpt.model is not None
                        else {"factory": spec, "class": None, "settings": None,
                              "epoc_digest": None})
                if ckpt.model is not None:
                    store.put_model_settings(mkey, desc)
        self.tally.models[ckpt.ref.name] = desc
        return desc

    def plan(self, ckpt: _Checkpoint, job: Job, desc: dict[str, Any]) -> _JobPlan:
        """The job's store key and this rank's cache misses; loads the model at the first
        miss."""
        store, config = self.store, self.config
        jsettings, shash = settings_hash(job.settings["task"], config.precision, desc)
        store.put_settings(shash, jsettings)
        key = job.key(ckpt.ref.sha256, shash)
        mine = [job.samples[i] for i in shard_indices(len(job.samples), self.ctx.rank,
                                                      self.ctx.world_size)]
        fps = job.fingerprints
        done = store.stored_ids(key, fps)
        self.tally.n_cached += sum(s.sample_id in done for s in mine)
        if not config.retry_failed:
            # a recorded permanent failure counts as done; transient ones (out of memory, a
            # timed-out resource) are tried again
            done |= set(store.get_failures(key, fps, transient=False))
        misses = [s for s in mine if s.sample_id not in done]
        local_errors: list[str] = []
        if misses and ckpt.model is None and ckpt.error is None:
            self.load(ckpt)
            if ckpt.model is not None:
                actual = describe_model(ckpt.model, self.spec, store)
                if actual != desc:  # the factory now builds a different model
                    store.put_model_settings(model_key(ckpt.ref.sha256, self.spec,
                                                       config.precision), actual)
                    local_errors.append(
                        f"checkpoint {ckpt.ref.name}: the model's settings differ from the ones "
                        f"the store recorded for it; results of this run before {job.label} "
                        "may be stale: run again")
        if misses and ckpt.error:
            local_errors.append(ckpt.error)
        return _JobPlan(job, key, shash, misses, local_errors)

    def predict(self, ckpt: _Checkpoint, plans: Sequence[_JobPlan], progress: Progress) -> None:
        """One prediction pass over every job's misses (the jobs' requests share forwards)."""
        config = self.config
        works = [JobWork(p.job.plugin, p.key, p.misses, p.job.fingerprints, p.job.label,
                         progress.bar(f"{Path(ckpt.ref.name).name} {p.job.label}",
                                      len(p.misses)).advance)
                 for p in plans if p.misses]
        t_pred = time.perf_counter()
        info = configure_engine(ckpt.model, works, batch_size=config.batch_size,
                                channels_last=config.channels_last, compile=config.compile)
        self.tally.engine[ckpt.ref.name] = info
        predict_jobs(works, ckpt.model, self.store,
                     int(info.get("batch_size") or
                         (8 if config.batch_size == "auto" else config.batch_size)))
        self.tally.predict_s += time.perf_counter() - t_pred
        self.tally.n_predicted += sum(w.n_ok for w in works)

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
        preds = store.get_predictions(plan.key, fingerprints=fps)
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

    def evaluate(self, ckpt: _Checkpoint, jobs: Sequence[Job], progress: Progress
                 ) -> list[TaskResult]:
        """Every job's misses first, then one prediction pass for all of them, then scoring."""
        desc = self.describe(ckpt)
        plans = [self.plan(ckpt, job, desc) for job in jobs]
        if ckpt.model is not None:
            self.predict(ckpt, plans, progress)
        results = [self.score(ckpt, p) for p in plans]
        ckpt.model = None
        return [r for r in results if r is not None]

    def provenance(self, jobs: Sequence[Job], results: Sequence[TaskResult],
                   hub: Mapping[Path, Any], notes: Sequence[str], t_start: float
                   ) -> dict[str, Any]:
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
            "n_predicted_now": t.n_predicted,
            "n_cached": t.n_cached,
            "wall_time_s": wall,
            "model_load_s": t.model_load_s,
            "predict_s": t.predict_s,
            "engine": t.engine,
            "samples_per_s": (n_eval / wall) if wall > 0 else None,
            "predicted_per_s": (t.n_predicted / wall) if wall > 0 else None,
            "hub_checkpoints": [r.provenance() for r in hub.values()],
            "errors": self.errors,
        })
        return prov


def _run(config: RunConfig, factory: ModelFactory, ckpt_paths: list[Path], jobs: list[Job],
         errors: list[str], ctx: DistContext, device: str, t_start: float,
         hub: Mapping[Path, Any], spec: str, in_memory: _InMemoryModel | None,
         notes: Sequence[str]) -> RunOutcome:
    store = ResultsStore(config.results_dir)
    try:
        runner = _Runner(config, factory, spec, device, ctx, store, errors, in_memory)
        ckpts = _checkpoint_refs(ckpt_paths, hub, store, in_memory)
        for job in jobs:
            job.fingerprints = sample_fingerprints(job.samples, store)
        results: list[TaskResult] = []
        with Progress(config.progress if ctx.is_main else False) as progress:
            for ckpt in ckpts:
                results += runner.evaluate(ckpt, jobs, progress)
        tally = runner.tally
        if not ctx.is_main:
            return RunOutcome(None, None, errors, tally.n_predicted, tally.n_cached)
        doc = RunDocument(run_id=config.run_id or new_run_id(),
                          created=_dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
                          provenance=runner.provenance(jobs, results, hub, notes, t_start),
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
                res = score_job(job, r.checkpoint, store.get_predictions(key, fingerprints=fps),
                             store.get_failures(key, fps),
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
