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

Python use::

    from remotesam.bench.runner import RunConfig, run
    outcome = run(RunConfig(tasks=["det"], checkpoints=["ckpt.pth"], data_root="/data/eo"))
    print(outcome.document.results[0].metrics)
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import difflib
import glob
import hashlib
import importlib
import json
import math
import os
import platform
import secrets
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from remotesam.bench.api import DatasetAdapter, DatasetError, Sample, Scores, TaskPlugin
from remotesam.bench.distributed import DistContext, init_distributed, shard_indices
from remotesam.bench.errors import BenchError, InputError, PluginError
from remotesam.bench.progress import Progress
from remotesam.bench.registry import Registry, check_settings
from remotesam.bench.results import CheckpointRef, MetricValue, RunDocument, TaskResult, runs_dir
from remotesam.bench.store import PredictionKey, ResultsStore

__all__ = [
    "CHECKPOINT_SUFFIXES",
    "ModelFactory",
    "RunConfig",
    "RunOutcome",
    "default_checkpoint",
    "default_model_factory",
    "format_summary",
    "load_model_factory",
    "resolve_checkpoints",
    "run",
    "sample_fingerprints",
    "score_run",
    "sha256_file",
]

#: File suffixes taken as checkpoints when ``--ckpt`` names a directory.
CHECKPOINT_SUFFIXES = (".pth", ".pt", ".bin", ".safetensors", ".ckpt")

#: ``factory(path, *, device, precision, batch_size) -> model`` (a ``remotesam.RemoteSAM``).
ModelFactory = Callable[..., Any]

_PRECISIONS = {"fp32": "fp32", "float32": "fp32", "bf16": "bf16", "bfloat16": "bf16",
               "fp16": "fp16", "float16": "fp16"}


@dataclass
class RunConfig:
    """A benchmark run, fully resolved from the command line or built in Python.

    Attributes:
        tasks: task selections: ``"det"`` (its default dataset), ``"det.dior"``, ``"det.*"``
            (all its datasets) or ``"all"`` (every task, default datasets).
        checkpoints: checkpoint files, globs or directories; empty means
            :func:`default_checkpoint`.
        data_root: the root of the official layout; dataset ``d`` of a task is read from
            ``data_root / d.default_subdir``.
        dataset_roots: ``{"task.dataset": path}`` overrides of ``data_root``.
        split: a split for every dataset (default: each dataset's official split).
        limit: evaluate only the first ``limit`` samples of each dataset.
        device: ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"``, ``"cuda:1"``...
        batch_size: samples per ``predict`` call.
        precision: ``"fp32"``, ``"bf16"`` or ``"fp16"`` (fp16 needs CUDA).
        task_options: ``{task: {key: value}}`` passed to the plugin (``--task-opt``).
        dataset_options: ``{"task.dataset": {key: value}}`` passed to the dataset adapter
            (``--dataset-opt``), e.g. ``{"vg.dior_rsvg": {"allow_partial": True}}``.
        results_dir: where ``store.sqlite`` and ``runs/`` live.
        run_id: the run document's id (default: a UTC timestamp plus random suffix).
        progress: progress bars: None = when stderr is a terminal.
        retry_failed: predict again the samples whose failure a previous run recorded
            (by default they stay failed, so a fully cached rerun never loads the model).
    """

    tasks: list[str] = field(default_factory=lambda: ["all"])
    checkpoints: list[str] = field(default_factory=list)
    data_root: str | Path | None = None
    dataset_roots: dict[str, str | Path] = field(default_factory=dict)
    split: str | None = None
    limit: int | None = None
    device: str = "auto"
    batch_size: int = 8
    precision: str = "fp32"
    task_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    dataset_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    results_dir: str | Path = "results"
    run_id: str | None = None
    progress: bool | None = None
    retry_failed: bool = False

    def to_json(self) -> dict[str, Any]:
        """The configuration as it goes into provenance (paths as absolute strings)."""
        d = dataclasses.asdict(self)
        d["data_root"] = None if self.data_root is None else str(Path(self.data_root).resolve())
        d["dataset_roots"] = {k: str(Path(v).resolve()) for k, v in self.dataset_roots.items()}
        d["results_dir"] = str(Path(self.results_dir).resolve())
        return d


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
    """

    document: RunDocument | None
    path: Path | None
    errors: list[str]
    n_predicted: int = 0
    n_cached: int = 0


# ---------------------------------------------------------------------------------------------
# checkpoints


def default_checkpoint() -> Path:
    """The tiny checkpoint shipped in the package (``remotesam/checkpoints/``).

    Raises:
        InputError: it is missing (not built yet, or a stripped install).
    """
    import remotesam

    path = Path(remotesam.__file__).resolve().parent / "checkpoints" / "remotesam_tiny.safetensors"
    if not path.is_file():
        raise InputError(
            f"no --ckpt given and the bundled tiny checkpoint {path} does not exist; pass "
            "--ckpt PATH (a file, a directory or a glob), or build the tiny checkpoint with "
            "remotesam-train"
        )
    return path


def resolve_checkpoints(specs: Sequence[str | Path]) -> list[Path]:
    """Expand ``--ckpt`` values into checkpoint files, in order, without duplicates.

    Each value is a file, a directory (every file below it ending in
    :data:`CHECKPOINT_SUFFIXES`, sorted) or a glob (``*``, ``?``, ``[``; ``**`` recurses).

    Raises:
        InputError: a path does not exist, a glob matches nothing, a directory holds no
            checkpoint.
    """
    out: list[Path] = []
    for spec in specs:
        s = str(spec)
        if any(ch in s for ch in "*?["):
            matches = sorted(Path(p) for p in glob.glob(os.path.expanduser(s), recursive=True))
            files = [p for p in matches if p.is_file()]
            if not files:
                raise InputError(f"--ckpt {s!r}: the glob matches no file (current directory "
                                 f"{Path.cwd()}); quote it so the shell does not expand it, "
                                 "and check the pattern")
        else:
            p = Path(os.path.expanduser(s))
            if p.is_dir():
                files = sorted(q for q in p.rglob("*")
                               if q.is_file() and q.suffix.lower() in CHECKPOINT_SUFFIXES)
                if not files:
                    raise InputError(f"--ckpt {s!r} is a directory without checkpoint files "
                                     f"(looked for {', '.join(CHECKPOINT_SUFFIXES)} below it)")
            elif p.is_file():
                files = [p]
            else:
                raise InputError(f"--ckpt {s!r}: no such file or directory "
                                 f"(current directory {Path.cwd()})")
        for f in files:
            if f.resolve() not in {o.resolve() for o in out}:
                out.append(f)
    return out


def sha256_file(path: str | Path, store: ResultsStore | None = None,
                chunk_size: int = 1 << 20) -> str:
    """Hex sha256 of a file, streamed in ``chunk_size`` pieces.

    With a ``store``, the digest is cached under (resolved path, size, mtime) and reused while
    those are unchanged.
    """
    if store is not None:
        cached = store.cached_sha256(path)
        if cached:
            return cached
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(chunk_size):
            h.update(chunk)
    digest = h.hexdigest()
    if store is not None:
        store.put_sha256(path, digest)
    return digest


def default_model_factory(path: str | Path, *, device: str, precision: str,
                          batch_size: int) -> Any:
    """Load ``remotesam.RemoteSAM.from_checkpoint(path, ...)``."""
    try:
        from remotesam.predictor import RemoteSAM
    except ImportError as e:
        raise BenchError(f"cannot import remotesam.predictor.RemoteSAM ({e}); the predictor is "
                         "needed to run the model") from e
    return RemoteSAM.from_checkpoint(path, device=device, precision=precision,
                                     batch_size=batch_size)


def load_model_factory(spec: str) -> ModelFactory:
    """Import ``"package.module:function"`` as a model factory (``--model-factory``).

    Raises:
        InputError: malformed spec, module not importable or attribute missing/not callable.
    """
    mod_name, sep, attr = spec.partition(":")
    if not sep or not mod_name or not attr:
        raise InputError(f"--model-factory {spec!r}: expected 'package.module:function'")
    try:
        mod = importlib.import_module(mod_name)
    except ImportError as e:
        raise InputError(f"--model-factory {spec!r}: cannot import {mod_name!r} ({e})") from e
    fn = getattr(mod, attr, None)
    if not callable(fn):
        raise InputError(f"--model-factory {spec!r}: {mod_name} has no callable {attr!r}")
    return fn


# ---------------------------------------------------------------------------------------------
# jobs


@dataclass
class _Job:
    """One (task, dataset, split) with its samples; the same for every checkpoint."""

    task: str
    plugin: TaskPlugin
    dataset: str
    split: str
    root: Path
    samples: list[Sample]
    n_total: int
    settings: dict[str, Any]
    settings_hash: str
    fingerprints: dict[str, str] = field(default_factory=dict)

    def key(self, ckpt_sha256: str) -> PredictionKey:
        return PredictionKey(ckpt_sha256, self.task, int(self.plugin.version), self.dataset,
                             self.split, self.settings_hash)

    @property
    def label(self) -> str:
        return f"{self.task}.{self.dataset}/{self.split}"


def _feed(h: Any, obj: Any) -> None:
    """Feed a canonical, type-tagged encoding of ``obj`` into the hash ``h``."""
    if isinstance(obj, Mapping):
        h.update(b"{")
        for k in sorted(obj, key=str):
            _feed(h, str(k))
            _feed(h, obj[k])
        h.update(b"}")
    elif isinstance(obj, list | tuple):
        h.update(b"[")
        for v in obj:
            _feed(h, v)
        h.update(b"]")
    elif isinstance(obj, np.ndarray):
        a = np.ascontiguousarray(obj)
        h.update(f"a{a.dtype.str}{a.shape}".encode())
        h.update(a.tobytes())
    elif isinstance(obj, os.PathLike) or (isinstance(obj, str) and os.path.isabs(obj)):
        # file paths by name: a dataset moved or copied elsewhere keeps its cache
        h.update(b"p" + os.path.basename(os.fspath(obj)).encode() + b"\0")
    elif isinstance(obj, str):
        h.update(b"s" + obj.encode() + b"\0")
    elif isinstance(obj, np.generic):
        _feed(h, obj.item())
    else:  # numbers, bools, None
        h.update(f"{type(obj).__name__}:{obj!r}".encode() + b"\0")


def sample_fingerprints(samples: Sequence[Sample], store: ResultsStore | None = None,
                        ) -> dict[str, str]:
    """The input fingerprint of every sample: ``{sample_id: 32 hex chars}``.

    It covers the image file's bytes (sha256, cached in ``store`` by path, size and mtime so an
    unchanged dataset is not read twice) and the sample's ``target`` and ``meta`` (file paths in
    them compared by name only, so a dataset moved elsewhere keeps its cache). A stored
    prediction is reused and scored only while its sample's fingerprint is unchanged: a dataset
    regenerated or edited in place is predicted again, never scored with stale predictions.
    An image that cannot be read gets a fingerprint from its name (its prediction then fails
    and is recorded as before).
    """
    paths = [str(s.image) for s in samples if isinstance(s.image, str | os.PathLike)]
    digests = store.cached_sha256_many(paths) if store is not None else {}
    fresh: dict[str, str] = {}
    for p in paths:
        if p in digests or p in fresh:
            continue
        try:
            fresh[p] = sha256_file(p)
        except OSError:
            continue
    if store is not None and fresh:
        store.put_sha256_many(fresh)
    digests.update(fresh)
    out: dict[str, str] = {}
    for s in samples:
        h = hashlib.sha256()
        if isinstance(s.image, str | os.PathLike):
            p = str(s.image)
            _feed(h, ("image", digests.get(p) or f"unreadable:{os.path.basename(p)}"))
        else:
            _feed(h, ("image", s.image))
        _feed(h, ("target", s.target))
        _feed(h, ("meta", s.meta))
        out[s.sample_id] = h.hexdigest()[:32]
    return out


def settings_hash(task_settings: Mapping[str, Any], precision: str) -> tuple[dict[str, Any], str]:
    """``(settings, hash)``: the plugin's settings plus the precision, hashed (16 hex chars)."""
    settings = {"task": dict(task_settings), "precision": precision}
    text = json.dumps(settings, sort_keys=True, separators=(",", ":"))
    return settings, hashlib.sha256(text.encode()).hexdigest()[:16]


def _parse_selection(registry: Registry, spec: Sequence[str]) -> list[tuple[str, str | None]]:
    """``[(task, dataset | None | "*")]`` from ``["det", "vg.rsvg", "cap.*", "all"]``."""
    out: list[tuple[str, str | None]] = []
    for raw in spec:
        for item in (s.strip() for s in str(raw).split(",")):
            if not item:
                continue
            task, _, ds = item.partition(".")
            for t in registry.resolve(task):
                entry = (t, ds or None)
                if entry not in out:
                    out.append(entry)
    if not out:
        raise InputError("no task given; pass --tasks NAME[,NAME...] (or 'all'); "
                         "`remotesam-bench list` shows the tasks")
    return out


def _layout_hint(adapter: type[DatasetAdapter]) -> str:
    layout = (adapter.layout or "").strip("\n")
    return f"\nExpected layout ({adapter.__name__}):\n{layout}" if layout else ""


def _dataset_root(config: RunConfig, task: str, ds: str, adapter: type[DatasetAdapter]) -> Path:
    key = f"{task}.{ds}"
    if key in config.dataset_roots:
        root = Path(config.dataset_roots[key])
        how = f"--dataset-root {key}={root}"
    elif config.data_root is not None:
        root = Path(config.data_root) / adapter.default_subdir
        how = f"--data-root {config.data_root} (+ {adapter.default_subdir or '.'})"
    else:
        raise InputError(
            f"{key}: no dataset location; pass --data-root DIR (the dataset is then read from "
            f"DIR/{adapter.default_subdir}) or --dataset-root {key}=PATH" + _layout_hint(adapter))
    if not root.is_dir():
        raise InputError(f"{key}: dataset directory {root} does not exist (from {how})"
                         + _layout_hint(adapter))
    return root


def _build_jobs(config: RunConfig, registry: Registry, errors: list[str]) -> list[_Job]:
    """Load the selected plugins and read every dataset's samples, before any work starts."""
    selection = _parse_selection(registry, config.tasks)
    tasks_run = {t for t, _ in selection}
    for t in config.task_options:
        if t not in tasks_run:
            raise InputError(f"--task-opt names task {t!r}, which is not in this run "
                             f"({', '.join(sorted(tasks_run))})")
    plugins: dict[str, TaskPlugin | None] = {}
    jobs: list[_Job] = []
    for task, ds_sel in selection:
        if task not in plugins:
            try:
                cls = registry.get(task)
                plugin = cls(dict(config.task_options.get(task, {})))
                check_settings(plugin)
            except PluginError as e:
                errors.append(str(e))
                plugins[task] = None
                continue
            except Exception as e:  # the plugin's own constructor rejected the options
                raise InputError(f"task {task!r} rejected its options "
                                 f"{config.task_options.get(task, {})}: {type(e).__name__}: {e}"
                                 ) from e
            plugins[task] = plugin
        plugin = plugins[task]
        if plugin is None:
            continue
        available = list(plugin.datasets)
        if ds_sel is None:
            names = [plugin.default_dataset]
        elif ds_sel in ("*", "all"):
            names = available
        elif ds_sel in plugin.datasets:
            names = [ds_sel]
        else:
            close = difflib.get_close_matches(ds_sel, available, n=3, cutoff=0.5)
            hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
            raise InputError(f"task {task!r} has no dataset {ds_sel!r}.{hint} "
                             f"Its datasets: {', '.join(available)}")
        for ds in names:
            if any(j.task == task and j.dataset == ds for j in jobs):
                continue
            jobs.append(_read_dataset(config, task, plugin, ds))
    for flag, keys in (("--dataset-root", config.dataset_roots),
                       ("--dataset-opt", config.dataset_options)):
        for key in keys:
            task, dot, ds = key.partition(".")
            if not dot or not ds:
                raise InputError(f"{flag} {key!r}: expected TASK.DATASET, e.g. det.dior")
            if task in plugins and plugins[task] is not None and ds not in plugins[task].datasets:  # type: ignore[union-attr]
                raise InputError(f"{flag} {key!r}: task {task!r} has no dataset {ds!r}; "
                                 f"its datasets: {', '.join(plugins[task].datasets)}")  # type: ignore[union-attr]
            if flag == "--dataset-opt" and not any(j.task == task and j.dataset == ds for j in jobs):
                raise InputError(f"--dataset-opt {key!r}: dataset {key} is not in this run "
                                 f"({', '.join(sorted(j.task + '.' + j.dataset for j in jobs))})")
    return jobs


def _read_dataset(config: RunConfig, task: str, plugin: TaskPlugin, ds: str) -> _Job:
    adapter_cls = plugin.datasets[ds]
    root = _dataset_root(config, task, ds, adapter_cls)
    label = f"{task}.{ds}"
    try:
        adapter = adapter_cls(root, config.split, **dict(config.dataset_options.get(label, {})))
        samples = list(adapter.samples())
    except DatasetError as e:
        msg = str(e)
        hint = "" if (adapter_cls.layout and adapter_cls.layout.strip() in msg) else _layout_hint(adapter_cls)
        raise InputError(f"{label}: {msg}{hint}") from e
    except Exception as e:
        raise InputError(f"{label}: reading {root} failed: {type(e).__name__}: {e}"
                         + _layout_hint(adapter_cls)) from e
    ids = [s.sample_id for s in samples]
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise PluginError(f"{label}: {adapter_cls.__name__}.samples() returned the sample_id "
                          f"{dup!r} more than once; sample ids must be unique")
    n_total = len(samples)
    if config.limit is not None:
        samples = samples[: config.limit]
    settings, shash = settings_hash(plugin.settings(), config.precision)
    return _Job(task, plugin, ds, adapter.split, root, samples, n_total, settings, shash)


# ---------------------------------------------------------------------------------------------
# prediction


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"{type(obj).__name__} is not JSON-serialisable")


def _encode(pred: Any) -> dict[str, Any]:
    """The prediction as the store will give it back (a JSON round trip)."""
    if not isinstance(pred, dict):
        raise TypeError(f"a prediction must be a dict, got {type(pred).__name__}")
    return json.loads(json.dumps(pred, default=_json_default))


def _error_text(e: BaseException) -> str:
    text = f"{type(e).__name__}: {e}"
    return text if len(text) <= 2000 else text[:2000] + " ..."


def _predict_isolated(plugin: TaskPlugin, model: Any, batch: Sequence[Sample],
                      ) -> tuple[list[tuple[str, dict[str, Any]]], list[tuple[str, str]]]:
    """Predict a batch; on failure retry each sample alone. Returns (successes, failures)."""
    try:
        preds = plugin.predict(model, batch)
        if not isinstance(preds, list | tuple) or len(preds) != len(batch):
            n = len(preds) if isinstance(preds, list | tuple) else type(preds).__name__
            raise PluginError(f"{plugin.name}.predict returned {n} predictions for "
                              f"{len(batch)} samples")
        return [(s.sample_id, _encode(p)) for s, p in zip(batch, preds)], []
    except Exception as e:
        if len(batch) == 1:
            return [], [(batch[0].sample_id, _error_text(e))]
    ok: list[tuple[str, dict[str, Any]]] = []
    bad: list[tuple[str, str]] = []
    for s in batch:
        o, b = _predict_isolated(plugin, model, [s])
        ok += o
        bad += b
    return ok, bad


# ---------------------------------------------------------------------------------------------
# scoring


def _bootstrap(per_sample: np.ndarray | None = None,
               ratio: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[float, float] | None:
    try:
        from remotesam.bench.stats import bootstrap_ci
    except ImportError:
        return None
    try:
        lo, hi = bootstrap_ci(per_sample=per_sample, ratio=ratio, n_boot=1000, seed=0)
    except Exception:  # an undefined interval (empty, all-NaN) is simply not shown
        return None
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return None
    return (float(lo), float(hi))


def _score(job: _Job, ckpt: CheckpointRef, preds: Mapping[str, dict[str, Any]],
           failures: Mapping[str, str],
           missing_reason: str = "no prediction stored (not predicted)") -> TaskResult:
    """Score the stored predictions of ``job``'s samples; failures are the samples without one.

    Raises:
        PluginError: ``score`` raised or returned something off-contract.
    """
    plugin = job.plugin
    ok = [s for s in job.samples if s.sample_id in preds]
    failed = [{"sample_id": s.sample_id,
               "error": failures.get(s.sample_id, missing_reason)}
              for s in job.samples if s.sample_id not in preds]
    result = TaskResult(checkpoint=ckpt, task=job.task, task_version=int(plugin.version),
                        dataset=job.dataset, split=job.split, settings_hash=job.settings_hash,
                        n_total=job.n_total, n_evaluated=len(ok), n_failed=len(failed),
                        failures=failed)
    specs = {m.name: m for m in plugin.metrics}
    if not ok:
        for name, m in specs.items():
            result.metrics[name] = MetricValue(float("nan"), m.higher_is_better, m.primary,
                                               m.unit, m.official)
        return result
    try:
        scores = plugin.score(ok, [preds[s.sample_id] for s in ok])
    except Exception as e:
        raise PluginError(f"{job.label}: {type(plugin).__name__}.score raised "
                          f"{type(e).__name__}: {e}") from e
    if not isinstance(scores, Scores):
        raise PluginError(f"{job.label}: score() must return remotesam.bench.api.Scores, got "
                          f"{type(scores).__name__}")
    missing = [n for n in specs if n not in scores.metrics]
    if missing:
        raise PluginError(f"{job.label}: score() did not return the metrics {missing}")
    ids = list(scores.sample_ids) or [s.sample_id for s in ok]
    for name, m in specs.items():
        value = float(scores.metrics[name])
        ci = None
        if name in scores.per_sample:
            values = np.asarray(scores.per_sample[name], dtype=np.float64).reshape(-1)
            if values.shape[0] != len(ids):
                raise PluginError(f"{job.label}: per_sample[{name!r}] has {values.shape[0]} "
                                  f"values for {len(ids)} scored samples")
            ci = _bootstrap(per_sample=values)
        elif name in scores.per_sample_ratio:
            num, den = (np.asarray(a, dtype=np.float64).reshape(-1)
                        for a in scores.per_sample_ratio[name])
            if num.shape[0] != len(ids) or den.shape[0] != len(ids):
                raise PluginError(f"{job.label}: per_sample_ratio[{name!r}] is not aligned with "
                                  f"the {len(ids)} scored samples")
            ci = _bootstrap(ratio=(num, den))
        result.metrics[name] = MetricValue(value, m.higher_is_better, m.primary, m.unit,
                                           m.official, ci)
    for name, arr in scores.per_sample.items():
        vals = np.asarray(arr, dtype=np.float64).reshape(-1)
        result.per_sample[name] = {"sample_ids": ids, "values": vals.tolist()}
    for name, (num, den) in scores.per_sample_ratio.items():
        result.per_sample_ratio[name] = {
            "sample_ids": ids,
            "num": np.asarray(num, dtype=np.float64).reshape(-1).tolist(),
            "den": np.asarray(den, dtype=np.float64).reshape(-1).tolist()}
    try:
        result.tables = json.loads(json.dumps(scores.tables, default=_json_default))
    except (TypeError, ValueError) as e:
        raise PluginError(f"{job.label}: score().tables is not JSON-serialisable ({e})") from e
    return result


# ---------------------------------------------------------------------------------------------
# provenance


def _git_revision() -> tuple[str | None, bool | None]:
    here = Path(__file__).resolve().parent
    try:
        rev = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True,
                             text=True, timeout=5, check=False)
        if rev.returncode != 0:
            return None, None
        st = subprocess.run(["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"],
                            capture_output=True, text=True, timeout=5, check=False)
        return rev.stdout.strip(), bool(st.stdout.strip()) if st.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None, None


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _torch_info(device: str) -> dict[str, Any]:
    """torch/CUDA versions. torch is imported only if the run already did (a model was loaded)
    or the device is CUDA: a fully cached rerun on CPU does not pay for importing it."""
    torch = sys.modules.get("torch")
    if torch is None and device.startswith("cuda"):
        import torch
    if torch is None:
        from importlib.metadata import PackageNotFoundError, version

        try:
            return {"torch": version("torch"), "cuda": None, "cuda_available": None,
                    "device_name": _cpu_name()}
        except PackageNotFoundError:
            return {"torch": None, "cuda": None, "cuda_available": None,
                    "device_name": _cpu_name()}
    name = _cpu_name()
    if device.startswith("cuda") and torch.cuda.is_available():
        name = torch.cuda.get_device_name(torch.device(device))
    return {"torch": torch.__version__, "cuda": torch.version.cuda,
            "cuda_available": torch.cuda.is_available(), "device_name": name}


def _provenance(config: RunConfig, device: str, ctx: DistContext) -> dict[str, Any]:
    import remotesam

    rev, dirty = _git_revision()
    return {
        "package_version": remotesam.__version__,
        "git_revision": rev,
        "git_dirty": dirty,
        "python": platform.python_version(),
        "platform": platform.platform(),
        **_torch_info(device),
        "device": device,
        "precision": config.precision,
        "batch_size": config.batch_size,
        "world_size": ctx.world_size,
        "backend": ctx.backend or None,
        "command": sys.argv[:],
        "config": config.to_json(),
    }


def _new_run_id() -> str:
    now = _dt.datetime.now(_dt.UTC)
    return now.strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


def _resolve_device(device: str) -> str:
    if device == "auto":
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise InputError(f"--device {device}: CUDA is not available on this machine; "
                             "use --device cpu")
    elif device not in ("cpu", "mps"):
        raise InputError(f"--device {device!r}: expected auto, cpu, cuda, cuda:N or mps")
    return device


def _check_config(config: RunConfig) -> tuple[str, str]:
    precision = _PRECISIONS.get(str(config.precision).lower())
    if precision is None:
        raise InputError(f"--precision {config.precision!r}: expected fp32, bf16 or fp16")
    if not isinstance(config.batch_size, int) or config.batch_size < 1:
        raise InputError(f"--batch-size {config.batch_size!r}: expected an integer >= 1")
    if config.limit is not None and (not isinstance(config.limit, int) or config.limit < 1):
        raise InputError(f"--limit {config.limit!r}: expected an integer >= 1")
    device = _resolve_device(config.device)
    if precision == "fp16" and not device.startswith("cuda"):
        raise InputError("--precision fp16 needs a CUDA device (fp16 on CPU is hundreds of times "
                         "slower); use --precision bf16 or fp32 on CPU")
    return precision, device


# ---------------------------------------------------------------------------------------------
# the run


def run(config: RunConfig, *, registry: Registry | None = None,
        model_factory: ModelFactory | None = None) -> RunOutcome:
    """Run the benchmark described by ``config``; see the module docstring.

    Args:
        config: what to run.
        registry: the task registry (default: installed entry points).
        model_factory: ``factory(path, *, device, precision, batch_size) -> model``; default
            :func:`default_model_factory`.

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
    precision, device = _check_config(config)
    config = dataclasses.replace(config, precision=precision)
    ckpt_paths = resolve_checkpoints(config.checkpoints) if config.checkpoints else [
        default_checkpoint()]
    errors: list[str] = []
    jobs = _build_jobs(config, registry, errors)

    ctx, device = init_distributed(device)
    try:
        return _run(config, registry, factory, ckpt_paths, jobs, errors, ctx, device, t_start)
    finally:
        ctx.close()


def _run(config: RunConfig, registry: Registry, factory: ModelFactory, ckpt_paths: list[Path],
         jobs: list[_Job], errors: list[str], ctx: DistContext, device: str,
         t_start: float) -> RunOutcome:
    store = ResultsStore(config.results_dir)
    try:
        ckpts = [CheckpointRef(name=str(p), path=str(p.resolve()), sha256=sha256_file(p, store))
                 for p in ckpt_paths]
        seen: set[str] = set()
        unique: list[tuple[Path, CheckpointRef]] = []
        for p, c in zip(ckpt_paths, ckpts):
            if c.sha256 not in seen:  # the same file under two names is evaluated once
                seen.add(c.sha256)
                unique.append((p, c))
        for job in jobs:
            store.put_settings(job.settings_hash, job.settings)
            job.fingerprints = sample_fingerprints(job.samples, store)

        results: list[TaskResult] = []
        n_pred = n_cached = n_failed_now = 0
        t_model = 0.0
        with Progress(config.progress if ctx.is_main else False) as progress:
            for path, ckpt in unique:
                model: Any = None
                model_error: str | None = None
                for job in jobs:
                    key = job.key(ckpt.sha256)
                    mine = [job.samples[i] for i in shard_indices(len(job.samples), ctx.rank,
                                                                  ctx.world_size)]
                    fps = job.fingerprints
                    done = store.stored_ids(key, fps)
                    n_cached += sum(s.sample_id in done for s in mine)
                    if not config.retry_failed:  # a recorded failure counts as done
                        done |= set(store.get_failures(key, fps))
                    misses = [s for s in mine if s.sample_id not in done]
                    local_errors: list[str] = []
                    if misses and model is None and model_error is None:
                        t0 = time.perf_counter()
                        try:
                            model = factory(path, device=device, precision=config.precision,
                                            batch_size=config.batch_size)
                        except BenchError:
                            raise
                        except Exception as e:
                            model_error = (f"checkpoint {ckpt.name}: loading the model failed: "
                                           f"{type(e).__name__}: {e}")
                        t_model += time.perf_counter() - t0
                    if misses and model_error:
                        local_errors.append(model_error)
                    if misses and model is not None:
                        bar = progress.bar(f"{Path(ckpt.name).name} {job.label}", len(misses))
                        for b in range(0, len(misses), config.batch_size):
                            batch = misses[b: b + config.batch_size]
                            ok, bad = _predict_isolated(job.plugin, model, batch)
                            store.put_predictions(key, ok, fps)
                            store.put_failures(key, bad, fps)
                            n_pred += len(ok)
                            n_failed_now += len(bad)
                            bar.advance(len(batch))
                    gathered = ctx.all_gather_object(local_errors)  # also a barrier
                    if not ctx.is_main:
                        continue
                    for errs in gathered:
                        for err in errs:
                            if err not in errors:
                                errors.append(err)
                    preds = store.get_predictions(key, fingerprints=fps)
                    failures = store.get_failures(key, fps)
                    ckpt_errors = [e for errs in gathered for e in errs]
                    reason = ckpt_errors[0] if ckpt_errors else "no prediction stored"
                    try:
                        results.append(_score(job, ckpt, preds, failures, reason))
                    except PluginError as e:
                        errors.append(f"checkpoint {ckpt.name}: {e}")
                del model
        if not ctx.is_main:
            return RunOutcome(None, None, errors, n_pred, n_cached)
        wall = time.perf_counter() - t_start
        prov = _provenance(config, device, ctx)
        n_total = sum(r.n_total for r in results)
        n_eval = sum(r.n_evaluated for r in results)
        prov.update({
            "task_versions": {j.task: int(j.plugin.version) for j in jobs},
            "task_settings": {f"{j.task}.{j.dataset}": j.settings for j in jobs},
            "datasets": {f"{j.task}.{j.dataset}": {"root": str(j.root.resolve()),
                                                    "split": j.split, "n_total": j.n_total,
                                                    "n_selected": len(j.samples)}
                         for j in jobs},
            "n_total": n_total,
            "n_evaluated": n_eval,
            "n_failed": sum(r.n_failed for r in results),
            "n_predicted_now": n_pred,
            "n_cached": n_cached,
            "wall_time_s": wall,
            "model_load_s": t_model,
            "samples_per_s": (n_eval / wall) if wall > 0 else None,
            "predicted_per_s": (n_pred / wall) if wall > 0 else None,
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
    from remotesam.bench.errors import StoreError

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
              tasks: Sequence[str] | None = None, run_id: str | None = None) -> RunOutcome:
    """Re-score the stored predictions behind ``source`` without a model.

    The samples (targets) are read again from the datasets: the run's own data locations unless
    ``data_root``/``dataset_roots`` override them. Scoring uses the plugins' *current* code, so
    a metric fix shows up. A new run document is written.

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
    wanted = None if not tasks else set(registry.resolve(list(tasks)))
    store = ResultsStore(results_dir, readonly=not os.access(results_dir, os.W_OK))
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
                res = _score(job, r.checkpoint, store.get_predictions(key, fingerprints=fps),
                             store.get_failures(key, fps),
                             "no prediction stored for the sample's current inputs (the "
                             "dataset changed since the run; run it again)")
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
    return RunOutcome(doc, _save(doc, results_dir), errors)


# ---------------------------------------------------------------------------------------------
# summary


def _fmt(v: float, unit: str) -> str:
    if not math.isfinite(v):
        return "n/a"
    return f"{v:.2f}" if unit == "%" else f"{v:.4g}"


def format_summary(doc: RunDocument) -> Any:
    """A rich ``Table`` of the run: one row per result, primary metric first, failures counted."""
    from rich.table import Table

    table = Table(title=f"run {doc.run_id}", show_lines=False)
    for col in ("checkpoint", "task", "dataset", "split", "evaluated", "failed", "primary",
                "other metrics"):
        table.add_column(col, justify="right" if col in ("evaluated", "failed") else "left")
    for r in doc.results:
        prim = [(n, m) for n, m in r.metrics.items() if m.primary]
        rest = [(n, m) for n, m in r.metrics.items() if not m.primary]
        ptxt = ", ".join(f"{n}={_fmt(m.value, m.unit)}" for n, m in prim)
        if prim and prim[0][1].ci95 is not None:
            lo, hi = prim[0][1].ci95
            ptxt += f" [{_fmt(lo, prim[0][1].unit)}, {_fmt(hi, prim[0][1].unit)}]"
        table.add_row(r.checkpoint.name, r.task, r.dataset, r.split,
                      f"{r.n_evaluated}/{r.n_evaluated + r.n_failed}"
                      + (f" (of {r.n_total})" if r.n_total != r.n_evaluated + r.n_failed else ""),
                      str(r.n_failed), ptxt,
                      ", ".join(f"{n}={_fmt(m.value, m.unit)}" for n, m in rest))
    return table
