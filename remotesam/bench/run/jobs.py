"""The jobs of a run: the selected (task, dataset, split)s with their samples, read once.

Everything here happens before any prediction: bad names, paths and options are
:class:`~remotesam.bench.errors.InputError` s raised before work starts.
"""

from __future__ import annotations

import contextlib
import difflib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from remotesam.bench.api import Sample, TaskPlugin
from remotesam.bench.api.datasets import locate_dataset, read_samples
from remotesam.bench.api.registry import Registry, check_settings
from remotesam.bench.errors import InputError, PluginError
from remotesam.bench.records.identity import settings_hash
from remotesam.bench.records.store import PredictionKey
from remotesam.bench.run.config import RunConfig, check_config

__all__ = ["Job", "build_jobs", "check_before_work", "is_synthetic_data", "read_job"]


@dataclass
class Job:
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


def _selection(config: RunConfig, registry: Registry) -> list[tuple[str, str | None]]:
    """The selected ``(task, dataset)`` pairs; ``--task-opt`` may only name selected tasks."""
    selection = _parse_selection(registry, config.tasks)
    tasks_run = {t for t, _ in selection}
    for t in config.task_options:
        if t not in tasks_run:
            raise InputError(f"--task-opt names task {t!r}, which is not in this run "
                             f"({', '.join(sorted(tasks_run))})")
    return selection


def _make_plugin(config: RunConfig, registry: Registry, task: str) -> TaskPlugin:
    """The plugin of ``task`` built with its ``--task-opt`` options.

    Raises:
        PluginError: a broken plugin (an error of the run, not of the user's input).
        InputError: the plugin rejected its options.
    """
    try:
        cls = registry.get(task)
        plugin = cls(dict(config.task_options.get(task, {})))
        check_settings(plugin)
    except PluginError:
        raise
    except Exception as e:  # the plugin's own constructor rejected the options
        raise InputError(f"task {task!r} rejected its options "
                         f"{config.task_options.get(task, {})}: {type(e).__name__}: {e}") from e
    return plugin


def check_before_work(config: RunConfig, registry: Registry | None = None, *,
                      model_options: bool = True) -> None:
    """Check what can be checked before anything is written (the embedded benchmark, the
    store): task names, ``--task-opt`` options (each plugin is built with them) and, with
    ``model_options``, ``--precision`` / ``--device`` / ``--batch-size`` / ``--limit`` /
    ``--run-id``. No dataset is read and no model is loaded.

    Raises:
        InputError: the first bad value, named as on the command line.
    """
    registry = registry or Registry()
    if model_options:
        check_config(config)
    for task in dict.fromkeys(t for t, _ in _selection(config, registry)):
        with contextlib.suppress(PluginError):  # a broken plugin is reported by the run
            _make_plugin(config, registry, task)


def build_jobs(config: RunConfig, registry: Registry, errors: list[str]) -> list[Job]:
    """Load the selected plugins and read every dataset's samples, before any work starts."""
    selection = _selection(config, registry)
    plugins: dict[str, TaskPlugin | None] = {}
    jobs: list[Job] = []
    for task, ds_sel in selection:
        if task not in plugins:
            try:
                plugin = _make_plugin(config, registry, task)
            except PluginError as e:
                errors.append(str(e))
                plugins[task] = None
                continue
            plugins[task] = plugin
        chosen = plugins[task]
        if chosen is None:
            continue
        plugin = chosen
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
            jobs.append(read_job(config, task, plugin, ds))
    for flag, keys in (("--dataset-root", config.dataset_roots),
                       ("--dataset-opt", config.dataset_options)):
        for key in keys:
            task, dot, ds = key.partition(".")
            if not dot or not ds:
                raise InputError(f"{flag} {key!r}: expected TASK.DATASET, e.g. det.dior")
            known = plugins.get(task)
            if known is not None and ds not in known.datasets:
                raise InputError(f"{flag} {key!r}: task {task!r} has no dataset {ds!r}; "
                                 f"its datasets: {', '.join(known.datasets)}")
            if flag == "--dataset-opt" and not any(
                j.task == task and j.dataset == ds for j in jobs
            ):
                raise InputError(f"--dataset-opt {key!r}: dataset {key} is not in this run "
                                 f"({', '.join(sorted(j.task + '.' + j.dataset for j in jobs))})")
    return jobs


def read_job(config: RunConfig, task: str, plugin: TaskPlugin, ds: str) -> Job:
    """The job of dataset ``ds`` of ``task``: its samples (the first ``config.limit``), read
    from the location ``config`` gives, and the task's settings hash.

    Raises:
        InputError: the dataset is missing or malformed.
        PluginError: the adapter returned a sample id twice.
    """
    adapter_cls = plugin.datasets[ds]
    root = locate_dataset(task, ds, adapter_cls, config.data_root, config.dataset_roots)
    adapter, samples = read_samples(task, ds, adapter_cls, root, config.split,
                                    config.dataset_options.get(f"{task}.{ds}", {}))
    n_total = len(samples)
    if config.limit is not None:
        samples = samples[: config.limit]
    settings, shash = settings_hash(plugin.settings(), config.precision)
    return Job(task, plugin, ds, adapter.split, root, samples, n_total, settings, shash,
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
