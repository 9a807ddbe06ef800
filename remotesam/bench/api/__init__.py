"""The plugin contract of ``remotesam-bench``: what a task plugin and a dataset adapter are.

This package is the contract's public face (a third-party plugin imports from here and from
:mod:`remotesam.bench.kit`): :class:`TaskPlugin`, :class:`DatasetAdapter`, :class:`Sample`,
:class:`Scores`, :class:`MetricSpec`, :class:`DatasetInfo`, :class:`DatasetError` and the
``Prediction`` type, the typed predictions of :mod:`~remotesam.bench.api.predictions` (one
type per kind, each with its encoder and decoder) and :class:`ModelLike`, what the contract
calls on a model. Beside them: :mod:`~remotesam.bench.api.contract` (the checks a plugin
must pass, the JSON form of predictions), :mod:`~remotesam.bench.api.registry` (plugins found
through entry points) and :mod:`~remotesam.bench.api.datasets` (reading a dataset of a task).
The contract never imports the evaluator (:mod:`remotesam.bench.run`).
"""

from remotesam.bench.api.datainfo import DatasetInfo
from remotesam.bench.api.predictions import (
    BoxesPrediction,
    BoxPrediction,
    CaptionPrediction,
    ClassMasks,
    CountPrediction,
    Detections,
    MaskPrediction,
    MultiLabels,
    PredictionFormatError,
    SceneLabel,
    TypedPrediction,
    decode_prediction,
)
from remotesam.bench.api.task import (
    DatasetAdapter,
    DatasetError,
    DatasetWarning,
    EngineLike,
    MetricSpec,
    ModelLike,
    Prediction,
    Sample,
    Scores,
    TaskPlugin,
    clip_interval,
    metric_bounds,
)

__all__ = [
    "BoxPrediction",
    "BoxesPrediction",
    "CaptionPrediction",
    "ClassMasks",
    "CountPrediction",
    "DatasetAdapter",
    "DatasetError",
    "DatasetInfo",
    "DatasetWarning",
    "Detections",
    "EngineLike",
    "MaskPrediction",
    "MetricSpec",
    "ModelLike",
    "MultiLabels",
    "Prediction",
    "PredictionFormatError",
    "Sample",
    "SceneLabel",
    "Scores",
    "TaskPlugin",
    "TypedPrediction",
    "clip_interval",
    "decode_prediction",
    "metric_bounds",
]
