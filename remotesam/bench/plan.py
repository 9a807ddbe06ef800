"""Planning a run: the configuration, checkpoints, model factories, task selection, datasets.

Everything here happens before any prediction: bad paths, names and options are
:class:`~remotesam.bench.errors.InputError` s raised before work starts.
"""

from __future__ import annotations

import dataclasses
import difflib
import glob
import importlib
import os
import re
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from remotesam.bench.api import DatasetAdapter, DatasetError, Sample, TaskPlugin
from remotesam.bench.errors import BenchError, InputError, PluginError
from remotesam.bench.identity import settings_hash
from remotesam.bench.registry import Registry, check_settings
from remotesam.bench.store import PredictionKey
from remotesam.precision import PrecisionError, canonical_precision, resolve_precision

__all__ = [
    "CHECKPOINT_SUFFIXES",
    "ModelFactory",
    "RunConfig",
    "default_checkpoint",
    "default_model_factory",
    "load_model_factory",
    "resolve_checkpoints",
]

#: File suffixes taken as checkpoints when ``--ckpt`` names a directory.
CHECKPOINT_SUFFIXES = (".pth", ".pt", ".bin", ".safetensors", ".ckpt")

#: ``factory(path, *, device, precision, batch_size) -> model`` (a ``remotesam.RemoteSAM``).
ModelFactory = Callable[..., Any]



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
        batch_size: samples per ``predict`` call, and image-prompt items per forward pass
            of a request-based run; ``"auto"``: the largest power of two that fits in CUDA
            memory, found once on the first image (8 off CUDA), recorded in provenance.
        precision: ``"fp32"``, ``"bf16"`` or ``"fp16"`` (fp16 needs CUDA).
        task_options: ``{task: {key: value}}`` passed to the plugin (``--task-opt``).
        dataset_options: ``{"task.dataset": {key: value}}`` passed to the dataset adapter
            (``--dataset-opt``), e.g. ``{"vg.dior_rsvg": {"allow_partial": True}}``.
        results_dir: where ``store.sqlite`` and ``runs/`` live.
        run_id: the run document's id (default: a UTC timestamp plus random suffix).
        progress: progress bars: None = when stderr is a terminal (else progress lines every
            ``progress_interval`` seconds); False: neither.
        progress_interval: seconds between progress lines when stderr is not a terminal
            (None: ``$REMOTESAM_PROGRESS_INTERVAL``, else 30; 0: no lines), see
            :mod:`remotesam.bench.progress`.
        retry_failed: predict again the samples whose failure a previous run recorded
            (by default they stay failed, so a fully cached rerun never loads the model).
        compile: ``torch.compile`` the network (``--compile``).
        channels_last: NHWC memory format for the network (``--channels-last``).
        options: the ``remotesam-bench run`` options this config was made from (a config
            file merged with the command line, :mod:`remotesam.bench.config`); recorded in
            provenance, never read by the runner.
    """

    tasks: list[str] = field(default_factory=lambda: ["all"])
    checkpoints: list[str] = field(default_factory=list)
    data_root: str | Path | None = None
    dataset_roots: dict[str, str | Path] = field(default_factory=dict)
    split: str | None = None
    limit: int | None = None
    device: str = "auto"
    batch_size: int | str = 8
    precision: str = "fp32"
    task_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    dataset_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    results_dir: str | Path = "results"
    run_id: str | None = None
    progress: bool | None = None
    progress_interval: float | None = None
    retry_failed: bool = False
    options: dict[str, Any] = field(default_factory=dict)
    compile: bool = False
    channels_last: bool = False

    def to_json(self) -> dict[str, Any]:
        """The configuration as it goes into provenance (paths as absolute strings)."""
        d = dataclasses.asdict(self)
        d["data_root"] = None if self.data_root is None else str(Path(self.data_root).resolve())
        d["dataset_roots"] = {k: str(Path(v).resolve()) for k, v in self.dataset_roots.items()}
        d["results_dir"] = str(Path(self.results_dir).resolve())
        return d



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


def _is_regular(path: Path) -> bool:
    """A regular file (a FIFO or device named like a checkpoint would hang or mislead)."""
    try:
        return stat.S_ISREG(path.stat().st_mode)
    except OSError:
        return False


def _is_checkpoint_name(path: Path) -> bool:
    """Ends in a checkpoint suffix: ``x.safetensors`` yes; ``x.safetensors.json``,
    ``config.json`` and other side-car files no."""
    return path.suffix.lower() in CHECKPOINT_SUFFIXES


def _explicit_suffix(pattern: str) -> bool:
    """The pattern's last component names a suffix itself (``*.json``, ``ckpt-?.pt``): then the
    user chose the files; ``dir/*`` or ``dir/ckpt*`` keep only checkpoint suffixes."""
    suffix = Path(pattern).suffix
    return bool(suffix) and not any(ch in suffix for ch in "*?[")


#: What a run id may hold: it names one file ``<results>/runs/<run_id>.json``.
_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def check_run_id(run_id: str) -> str:
    """Return ``run_id`` when it can name a run document, else raise.

    A run id is the file name of ``<results>/runs/<run_id>.json``: letters, digits, ``.``,
    ``_`` and ``-``, starting with a letter or digit, at most 128 characters. A ``/`` is refused
    (``pr/123`` would be written into a subfolder that ``gate`` and ``leaderboard`` do not
    read), and so is anything that could leave the results directory (``../x``).

    Raises:
        InputError: the id is not allowed; the message suggests one that is.
    """
    if not isinstance(run_id, str) or not _RUN_ID.fullmatch(run_id) or ".." in run_id:
        suggestion = re.sub(r"[^A-Za-z0-9._-]+", "-", str(run_id)).replace("..", ".").strip(".-_")
        hint = f" e.g. --run-id {suggestion}" if suggestion and _RUN_ID.fullmatch(suggestion) else ""
        raise InputError(
            f"--run-id {run_id!r}: a run id names one file in <results>/runs, so it may hold only "
            "letters, digits, '.', '_' and '-' (no '/', no '..', not starting with '.' or "
            f"'-', at most 128 characters);{hint}")
    return run_id


def resolve_checkpoints(specs: Sequence[str | Path], *,
                        hub: dict[Path, Any] | None = None) -> list[Path]:
    """Expand ``--ckpt`` values into checkpoint files, in order, without duplicates.

    Each value is a file, a directory (every file below it ending in
    :data:`CHECKPOINT_SUFFIXES`, sorted), a glob (``*``, ``?``, ``[``; ``**`` recurses) or a
    Hugging Face Hub URI ``hf://OWNER/REPO/FILE[@REVISION]`` (fetched into the Hugging Face
    cache, or read from it with ``HF_HUB_OFFLINE=1``; see :mod:`remotesam.hub`). For a Hub URI
    the returned path is the cached file and, when ``hub`` is given, ``hub[path]`` receives its
    :class:`remotesam.hub.ResolvedCheckpoint` (revision, commit, sha256).

    Raises:
        InputError: a path does not exist, a glob matches nothing, a directory holds no
            checkpoint, a Hub URI is malformed or cannot be fetched.
    """
    out: list[Path] = []
    for spec in specs:
        s = str(spec)
        if isinstance(spec, str) and s.startswith("hf://"):
            from remotesam.hub import HubError, resolve_hf_uri

            try:
                resolved = resolve_hf_uri(s)
            except HubError as e:
                raise InputError(f"--ckpt {e}") from e
            files = [resolved.path]
            if hub is not None:
                hub[resolved.path] = resolved
        elif any(ch in s for ch in "*?["):
            matches = sorted(Path(p) for p in glob.glob(os.path.expanduser(s), recursive=True))
            files = [p for p in matches if _is_regular(p)]
            if not _explicit_suffix(s):  # 'dir/*': checkpoints only, never their side-car JSON
                files = [p for p in files if _is_checkpoint_name(p)]
            if not files and matches:
                raise InputError(f"--ckpt {s!r}: the glob matches no checkpoint file, only "
                                 f"others ({', '.join(p.name for p in matches[:5])}); without "
                                 "an explicit suffix in the pattern only "
                                 f"{', '.join(CHECKPOINT_SUFFIXES)} files count")
            if not files:
                raise InputError(f"--ckpt {s!r}: the glob matches no file (current directory "
                                 f"{Path.cwd()}); quote it so the shell does not expand it, "
                                 "and check the pattern")
        else:
            p = Path(os.path.expanduser(s))
            if p.is_dir():
                files = sorted(q for q in p.rglob("*")
                               if _is_regular(q) and _is_checkpoint_name(q))
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
    synthetic: bool = False

    @property
    def subset(self) -> bool:
        """Only part of the split is evaluated (``limit``)."""
        return len(self.samples) < self.n_total

    def key(self, ckpt_sha256: str, settings_hash: str | None = None) -> PredictionKey:
        """The store key of this job's predictions by the model with weights ``ckpt_sha256``;
        ``settings_hash`` (default: the job's own) includes the model description."""
        return PredictionKey(ckpt_sha256, self.task, int(self.plugin.version), self.dataset,
                             self.split, settings_hash or self.settings_hash)

    @property
    def label(self) -> str:
        return f"{self.task}.{self.dataset}/{self.split}"



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
    return _Job(task, plugin, ds, adapter.split, root, samples, n_total, settings, shash,
                synthetic=is_synthetic_data(root))


def is_synthetic_data(root: str | Path, levels: int = 3) -> bool:
    """Whether ``root`` lies in data written by :func:`remotesam.synth.generate` (the embedded
    procedural benchmark, or ``remotesam-synth`` output): a synth ``manifest.json`` in ``root``
    or one of its ``levels`` parents."""
    import json

    p = Path(root).resolve()
    for d in [p, *list(p.parents)[:levels]]:
        m = d / "manifest.json"
        try:
            if not m.is_file() or m.stat().st_size > 64 * 1024 * 1024:
                continue
            data = json.loads(m.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and data.get("generator") == "remotesam.synth":
            return True
    return False



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
    """``(precision, device)`` resolved; bad values are input errors before any work."""
    try:
        canonical_precision(config.precision)
    except PrecisionError as e:
        raise InputError(f"--precision: {e}") from e
    if config.batch_size != "auto" and (not isinstance(config.batch_size, int)
                                        or isinstance(config.batch_size, bool)
                                        or config.batch_size < 1):
        raise InputError(f"--batch-size {config.batch_size!r}: expected an integer >= 1 or "
                         "'auto'")
    if config.limit is not None and (not isinstance(config.limit, int) or config.limit < 1):
        raise InputError(f"--limit {config.limit!r}: expected an integer >= 1")
    if config.run_id is not None:
        check_run_id(config.run_id)
    from remotesam.bench.progress import progress_interval

    progress_interval(config.progress_interval)  # a bad value fails before any work
    device = _resolve_device(config.device)
    try:
        precision = resolve_precision(config.precision, device)
    except PrecisionError as e:
        raise InputError(f"--precision {config.precision} --device {config.device}: {e}") from e
    return precision, device
