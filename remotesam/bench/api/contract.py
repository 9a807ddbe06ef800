"""The task-plugin contract, checked in one place.

:mod:`remotesam.bench.api` describes what a task plugin is; this module decides whether one
conforms, for everyone who needs to know: the registry when a plugin loads
(:func:`validate_plugin_class`, :func:`check_settings`), the runner on every batch and every
score (:func:`encode_predictions`, :func:`scores_problems`) and
:func:`remotesam.testing.check_task_plugin`, which reports the same problems in the same words.

The rules:

- the class: see :func:`validate_plugin_class`;
- ``settings()``: a dict that is JSON-serialisable (no NaN) and the same on every call;
- ``predict(model, samples)``: a list (or tuple) with one prediction per sample, each a ``dict``
  that is JSON-serialisable; numpy scalars and arrays are stored as numbers and lists, tuples as
  lists; anything else that a JSON round trip would change (non-str keys) is refused, because
  ``score`` always receives predictions as they come back from the store;
- ``score(samples, predictions)``: a :class:`~remotesam.bench.api.Scores` holding every metric of
  ``plugin.metrics`` as a real number; ``sample_ids`` (when given) name the rows of the
  per-sample arrays, unique and each one of the scored samples (captioning scores per image);
  every ``per_sample`` array and both ``per_sample_ratio`` arrays are 1-D with one value per row
  (``len(sample_ids)``, or the number of scored samples when ``sample_ids`` is empty);
  ``tables`` JSON-serialisable.
"""

from __future__ import annotations

import inspect
import json
import numbers
from collections.abc import Mapping, Sequence
from pathlib import PurePath
from typing import Any

import numpy as np

from remotesam.bench.api.task import DatasetAdapter, MetricSpec, Scores, TaskPlugin
from remotesam.bench.errors import PluginError

__all__ = [
    "check_settings",
    "encode_prediction",
    "encode_predictions",
    "json_default",
    "scores_problems",
    "settings_problems",
    "validate_plugin_class",
]


def json_default(obj: Any) -> Any:
    """``json.dumps(default=...)`` of the harness: numpy scalars and arrays become numbers and
    lists, paths strings (predictions, score tables, per-sample exports)."""
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, PurePath):
        return str(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON-serialisable")


def validate_plugin_class(obj: object, name: str | None = None) -> list[str]:
    """Check a loaded object against the :class:`~remotesam.bench.api.TaskPlugin` contract.

    Static checks only (no dataset, no model): class attributes present and well typed,
    exactly one primary metric, unique metric names, dataset adapters that are
    :class:`~remotesam.bench.api.DatasetAdapter` subclasses, ``default_dataset`` among them,
    ``predict``/``score`` implemented.

    Args:
        obj: what the entry point loaded.
        name: the entry-point name; when given, ``obj.name`` must equal it.

    Returns:
        A list of problems, each a sentence naming the attribute; empty when valid.
    """
    if not inspect.isclass(obj) or not issubclass(obj, TaskPlugin):
        kind = f"class {obj.__module__}.{obj.__qualname__}" if inspect.isclass(obj) else (
            f"a {type(obj).__name__} object")
        return [f"expected a subclass of remotesam.bench.api.TaskPlugin, got {kind}"]
    problems: list[str] = []
    cls: type[TaskPlugin] = obj
    pname = getattr(cls, "name", None)
    if (
        not isinstance(pname, str)
        or not pname
        or not pname.replace("_", "").replace("-", "").isalnum()
    ):
        problems.append(
            f"class attribute 'name' must be a non-empty identifier-like str, got {pname!r}"
        )
    elif name is not None and pname != name:
        problems.append(
            f"class attribute name={pname!r} differs from the entry-point name {name!r}; "
            "make them equal"
        )
    version = getattr(cls, "version", None)
    if not isinstance(version, int) or isinstance(version, bool) or version < 0:
        problems.append(f"class attribute 'version' must be an int >= 0, got {version!r}")
    if not isinstance(getattr(cls, "description", ""), str):
        problems.append("class attribute 'description' must be a str")
    if not isinstance(getattr(cls, "title", ""), str):
        problems.append("class attribute 'title' (the display name) must be a str")
    metrics = getattr(cls, "metrics", None)
    if not isinstance(metrics, (tuple, list)) or not metrics:
        problems.append(
            f"class attribute 'metrics' must be a non-empty tuple of MetricSpec, got {metrics!r}"
        )
    else:
        bad = [m for m in metrics if not isinstance(m, MetricSpec)]
        if bad:
            problems.append(f"'metrics' holds non-MetricSpec items: {bad!r}")
        else:
            names = [m.name for m in metrics]
            dupes = sorted({n for n in names if names.count(n) > 1})
            if dupes:
                problems.append(f"'metrics' has duplicate names {dupes}")
            if any(not isinstance(n, str) or not n for n in names):
                problems.append("every MetricSpec.name must be a non-empty str")
            primaries = [m.name for m in metrics if m.primary]
            if len(primaries) != 1:
                problems.append(
                    f"exactly one metric must have primary=True, found {len(primaries)}: "
                    f"{primaries}"
                )
    datasets = getattr(cls, "datasets", None)
    if not isinstance(datasets, Mapping) or not datasets:
        problems.append(f"class attribute 'datasets' must be a non-empty mapping name -> "
                        f"DatasetAdapter subclass, got {datasets!r}")
    else:
        for key, adapter in datasets.items():
            if not isinstance(key, str) or not key:
                problems.append(f"'datasets' key {key!r} must be a non-empty str")
            if not inspect.isclass(adapter) or not issubclass(adapter, DatasetAdapter):
                problems.append(
                    f"'datasets'[{key!r}] must be a DatasetAdapter subclass, got {adapter!r}"
                )
                continue
            splits = getattr(adapter, "splits", ())
            if (
                not isinstance(splits, tuple)
                or not splits
                or not all(isinstance(s, str) for s in splits)
            ):
                problems.append(f"{adapter.__name__}.splits must be a non-empty tuple of str")
            elif adapter.default_split not in splits:
                problems.append(f"{adapter.__name__}.default_split={adapter.default_split!r} "
                                f"is not in splits {splits}")
            if not isinstance(getattr(adapter, "default_subdir", ""), str):
                problems.append(f"{adapter.__name__}.default_subdir must be a str")
            if getattr(adapter, "__abstractmethods__", None):
                problems.append(f"{adapter.__name__} does not implement "
                                f"{sorted(adapter.__abstractmethods__)}")
        default = getattr(cls, "default_dataset", None)
        if not isinstance(default, str) or default not in datasets:
            problems.append(f"class attribute 'default_dataset'={default!r} must be one of "
                            f"{sorted(datasets)}")
    abstract = sorted(getattr(cls, "__abstractmethods__", ()) or ())
    if abstract:
        problems.append(f"does not implement {abstract}")
    if cls.predict is TaskPlugin.predict and (cls.requests is TaskPlugin.requests
                                             or cls.reduce is TaskPlugin.reduce):
        problems.append("does not implement ['predict'] (or both 'requests' and 'reduce')")
    return problems


def settings_problems(plugin: TaskPlugin) -> list[str]:
    """Problems of ``plugin.settings()`` (empty when it conforms): a JSON-serialisable dict,
    without NaN, equal on two calls."""
    try:
        s1, s2 = plugin.settings(), plugin.settings()
    except Exception as e:
        return [f"settings() raised {type(e).__name__}: {e}"]
    if not isinstance(s1, dict):
        return [f"settings() must return a dict, got {type(s1).__name__}"]
    try:
        json.dumps(s1, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as e:
        return [f"settings() must be JSON-serialisable ({e})"]
    if s1 != s2:
        return ["settings() differs between two calls (it must be deterministic)"]
    return []


def check_settings(plugin: TaskPlugin) -> dict:
    """``plugin.settings()`` validated (:func:`settings_problems`); raises :class:`PluginError`
    naming the task otherwise."""
    problems = settings_problems(plugin)
    if problems:
        raise PluginError(f"task {plugin.name!r}: " + "; ".join(problems))
    return plugin.settings()


def _non_str_keys(obj: Any) -> bool:
    if isinstance(obj, Mapping):
        return any(not isinstance(k, str) or _non_str_keys(v) for k, v in obj.items())
    if isinstance(obj, list | tuple):
        return any(_non_str_keys(v) for v in obj)
    return False


def encode_prediction(pred: Any) -> dict[str, Any]:
    """One prediction as the store keeps it and ``score`` receives it (a JSON round trip).

    Raises:
        PluginError: not a dict, not JSON-serialisable, or changed by the round trip in a way
            that matters (non-str dict keys).
    """
    if not isinstance(pred, dict):
        raise PluginError(f"a prediction must be a dict, got {type(pred).__name__}")
    if _non_str_keys(pred):
        raise PluginError("a prediction has a dict key that is not a str; JSON would turn it "
                          "into a string and score() would not find it")
    try:
        return json.loads(json.dumps(pred, default=json_default))
    except (TypeError, ValueError) as e:
        raise PluginError(f"a prediction is not JSON-serialisable ({e})") from e


def encode_predictions(plugin_name: str, sample_ids: Sequence[str], preds: Any,
                       ) -> list[dict[str, Any]]:
    """Check what ``predict`` returned for the samples ``sample_ids`` and encode each one
    (:func:`encode_prediction`).

    Raises:
        PluginError: not one prediction per sample, or a prediction off-contract (the message
            names the sample).
    """
    if not isinstance(preds, list | tuple) or len(preds) != len(sample_ids):
        n = len(preds) if isinstance(preds, list | tuple) else type(preds).__name__
        raise PluginError(f"{plugin_name}.predict returned {n} predictions for "
                          f"{len(sample_ids)} samples; expected a list, one per sample")
    out = []
    for sid, p in zip(sample_ids, preds):
        try:
            out.append(encode_prediction(p))
        except PluginError as e:
            raise PluginError(f"{plugin_name}.predict, sample {sid!r}: {e}") from e
    return out


def _real(v: Any) -> bool:
    return isinstance(v, numbers.Real | np.floating | np.integer) and not isinstance(
        v, bool | np.bool_)


def scores_problems(plugin: TaskPlugin, scored_ids: Sequence[str], scores: Any) -> list[str]:
    """Problems of what ``score`` returned for the samples ``scored_ids`` (empty when it
    conforms); see the module docstring for the rules."""
    if not isinstance(scores, Scores):
        return [f"score() must return remotesam.bench.api.Scores, got {type(scores).__name__}"]
    problems: list[str] = []
    for m in plugin.metrics:
        if m.name not in scores.metrics:
            problems.append(f"score() did not return the metric {m.name!r}")
        elif not _real(scores.metrics[m.name]):
            problems.append(f"metric {m.name!r} is {type(scores.metrics[m.name]).__name__}, "
                            "expected a float")
    rows = list(scores.sample_ids) if scores.sample_ids else list(scored_ids)
    if scores.sample_ids:
        known = set(scored_ids)
        if len(set(rows)) != len(rows):
            problems.append("Scores.sample_ids has duplicates")
        strangers = [r for r in rows if r not in known]
        if strangers:
            problems.append(f"Scores.sample_ids names samples that were not scored: "
                            f"{strangers[:3]}")
    n = len(rows)
    for name, arr in scores.per_sample.items():
        a = np.asarray(arr)
        if a.ndim != 1 or a.shape[0] != n:
            problems.append(f"per_sample[{name!r}] has shape {a.shape}, expected ({n},), one "
                            "value per scored sample")
    for name, pair in scores.per_sample_ratio.items():
        if not isinstance(pair, tuple | list) or len(pair) != 2:
            problems.append(f"per_sample_ratio[{name!r}] must be a (num, den) pair")
            continue
        for part, arr in zip(("num", "den"), pair):
            a = np.asarray(arr)
            if a.ndim != 1 or a.shape[0] != n:
                problems.append(f"per_sample_ratio[{name!r}] {part} has shape {a.shape}, "
                                f"expected ({n},)")
    try:
        json.dumps(scores.tables, default=json_default)
    except (TypeError, ValueError) as e:
        problems.append(f"Scores.tables is not JSON-serialisable ({e})")
    return problems
