"""The plugin contract of ``remotesam-bench``: what a task plugin and a dataset adapter are.

This package is the contract's public face (a third-party plugin imports from here and from
:mod:`remotesam.bench.kit`): :class:`TaskPlugin`, :class:`DatasetAdapter`, :class:`Sample`,
:class:`Scores`, :class:`MetricSpec`, :class:`DatasetInfo`, :class:`DatasetError` and the
``Prediction`` type. Beside them: :mod:`~remotesam.bench.api.contract` (the checks a plugin
must pass, the JSON form of predictions), :mod:`~remotesam.bench.api.registry` (plugins found
through entry points) and :mod:`~remotesam.bench.api.datasets` (reading a dataset of a task).
The contract never imports the evaluator (:mod:`remotesam.bench.run`).
"""

from remotesam.bench.api.datainfo import DatasetInfo
from remotesam.bench.api.task import (
    DatasetAdapter,
    DatasetError,
    DatasetWarning,
    MetricSpec,
    Prediction,
    Sample,
    Scores,
    TaskPlugin,
    clip_interval,
    metric_bounds,
)

__all__ = [
    "DatasetAdapter",
    "DatasetError",
    "DatasetInfo",
    "DatasetWarning",
    "MetricSpec",
    "Prediction",
    "Sample",
    "Scores",
    "TaskPlugin",
    "clip_interval",
    "metric_bounds",
]
