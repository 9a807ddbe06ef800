"""The plugin contract of remotesam-bench.

A *task plugin* is a subclass of :class:`TaskPlugin` registered under the entry-point group
``remotesam_bench.tasks`` (built-ins are registered in our own ``pyproject.toml`` exactly the
same way). It owns dataset adapters for the benchmarks' original file formats, the prediction
step (calling :class:`remotesam.RemoteSAM` task methods) and the metrics. The harness owns
everything else: looping, sharding, caching, failure isolation, printing, reports.

Life of a run, per (checkpoint, task, dataset):

1. ``adapter = plugin.datasets[name](root, split)``; ``samples = adapter.samples()``.
2. The harness shards samples by index, looks each ``sample_id`` up in the cache, and predicts
   the misses: for a plugin with :meth:`TaskPlugin.requests` / :meth:`TaskPlugin.reduce`, the
   requests of every task of the run go through one engine pass (each distinct image-prompt
   computed once, prefetched and batched; :mod:`remotesam.bench.run.executor`); otherwise
   ``plugin.predict(model, batch)`` is called. If a batch raises, each of its samples is
   retried alone; a sample that still raises is recorded as *failed* (with the message) and the
   run goes on.
3. Every prediction (a JSON-serialisable ``dict``) is stored as soon as it exists.
4. ``plugin.score(samples, predictions)`` runs once, on the successfully predicted samples.

Plugins never print, loop over datasets, shard or cache.
"""

from __future__ import annotations

import abc
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

import numpy as np

from remotesam.bench.api.datainfo import DatasetInfo
from remotesam.bench.errors import PluginError

if TYPE_CHECKING:
    from remotesam.engine import Answer, Request

__all__ = [
    "DatasetAdapter",
    "DatasetError",
    "DatasetInfo",
    "DatasetWarning",
    "EngineLike",
    "MetricSpec",
    "ModelLike",
    "Prediction",
    "Sample",
    "Scores",
    "TaskPlugin",
    "clip_interval",
    "image_error",
    "metric_bounds",
]

#: A prediction: a JSON-serialisable dict (numbers, strings, lists, dicts; masks as COCO RLE
#: ``{"size": [h, w], "counts": str}``). It must round-trip through ``json.dumps``/``loads``
#: unchanged, so stored predictions can be re-scored without the model.
Prediction = dict[str, Any]


class EngineLike(Protocol):
    """What the contract calls on a model's engine (:class:`remotesam.engine.Engine`)."""

    def resolve_boundary(self, flag: bool | None) -> bool:
        """Whether a request's ``boundary`` flag (None: the engine's default) asks for the EPOC
        boundary map with this engine."""
        ...

    def answer(self, request: Request) -> Answer:
        """The dense outputs of one request, computed in the calling thread."""
        ...


@runtime_checkable
class ModelLike(Protocol):
    """The model handed to :meth:`TaskPlugin.predict` (a :class:`remotesam.RemoteSAM`, or any
    object with an ``engine``): the contract's default ``predict`` calls ``model.engine``'s
    :meth:`~EngineLike.resolve_boundary` and :meth:`~EngineLike.answer` only. A plugin that
    implements ``predict`` itself may call the predictor's task methods (``referring``,
    ``detection``, ...); those are the predictor's API, not the contract's."""

    @property
    def engine(self) -> EngineLike:
        """The engine that answers requests."""
        ...


class DatasetError(Exception):
    """A dataset is missing, laid out wrongly or malformed.

    The message names the file (and line or field), what was found, what was expected and what
    to do; for a missing dataset it shows the expected directory layout.
    """


class DatasetWarning(UserWarning):
    """A dataset is read as the official code reads it, but holds something a user must know
    about (an image listed twice, duplicate ids): the message says what, how many and which
    option refuses it instead. The CLI prints it as one ``remotesam-bench: warning:`` line."""
def image_error(image: Any, e: BaseException) -> BaseException:
    """An image that cannot be loaded, worded as the dataset adapters word it: a
    :class:`DatasetError` naming the file for a missing or unreadable one, else ``e``."""
    if not isinstance(image, str | os.PathLike):
        return e
    if isinstance(e, FileNotFoundError):
        return DatasetError(f"image {os.fspath(image)} not found (listed by the annotations but "
                            "absent)")
    if isinstance(e, (ValueError, TypeError, IsADirectoryError, OSError)):
        return DatasetError(f"image {os.fspath(image)} is unreadable: {e}")
    return e


@dataclass(frozen=True)
class MetricSpec:
    """Describes one metric a task reports.

    Attributes:
        name: metric key, e.g. ``"oIoU"``, ``"AP50"``, ``"mae"``.
        higher_is_better: direction, used by leaderboards (best marked) and the gate.
        primary: the task's headline metric (exactly one per task); shown first.
        unit: ``"%"`` for percentages on a 0-100 scale, ``""`` for plain numbers.
        official: True only when this reproduces the official RemoteSAM evaluation code (say it
            explicitly; the default False labels a metric as the plugin's own). Leaderboards'
            "official" views and the published-number comparison show only official metrics.
        description: one line shown by ``remotesam-bench list``.
        lower, upper: the metric's natural bounds (``lower=0.0`` for an error or a count);
            confidence intervals are clipped to them. ``None``: unbounded on that side, except
            that a ``"%"`` metric defaults to [0, 100] (see :meth:`bounds`).
    """

    name: str
    higher_is_better: bool = True
    primary: bool = False
    unit: str = "%"
    official: bool = False
    description: str = ""
    lower: float | None = None
    upper: float | None = None

    def bounds(self) -> tuple[float | None, float | None]:
        """``(lower, upper)``: the given bounds, [0, 100] filling in for a ``"%"`` metric."""
        return metric_bounds(self.unit, self.lower, self.upper)


def metric_bounds(unit: str, lower: float | None = None, upper: float | None = None,
                  ) -> tuple[float | None, float | None]:
    """A metric's natural bounds: ``lower`` / ``upper`` where given, else 0 / 100 for a
    percentage (``unit == "%"``), else unbounded (None)."""
    if unit == "%":
        return (0.0 if lower is None else lower, 100.0 if upper is None else upper)
    return (lower, upper)


def clip_interval(lo: float, hi: float, bounds: tuple[float | None, float | None],
                  ) -> tuple[float, float]:
    """``(lo, hi)`` clipped to ``bounds`` (an interval of a bounded metric never leaves its
    range: a Student t interval at small n may overshoot it)."""
    lower, upper = bounds
    if lower is not None:
        lo, hi = max(lo, lower), max(hi, lower)
    if upper is not None:
        lo, hi = min(lo, upper), min(hi, upper)
    return (float(lo), float(hi))


@dataclass(frozen=True)
class Sample:
    """One evaluation item.

    Attributes:
        sample_id: stable, unique within (dataset, split); used as the cache key, so it must not
            depend on the order of files on disk or on the number of processes.
        image: path of the primary image file (preferred: images are loaded lazily in
            ``predict``). Reports and single-image tools use it; for a multi-image sample it is
            normally one of ``images`` (e.g. the later date of a change-detection pair).
        target: ground truth in the task's canonical, documented form (boxes ``bbox_xyxy`` in
            absolute pixels, masks uint8 HxW or COCO RLE, labels as class names ...).
        meta: anything else the plugin wants to carry (source file, line, sentence id, ...).
        images: further named images of a multi-image sample, name -> path, e.g. a bitemporal
            pair ``{"t1": "A/0001.png", "t2": "B/0001.png"}``; empty for single-image tasks.
            Names are non-empty strings other than ``"image"``. Every image (``image`` and
            each of ``images``) is part of the sample's input fingerprint: editing any of them
            invalidates its cached prediction.

    Raises:
        TypeError: ``images`` is not a mapping of str names to ``str``/``Path``/array values.
        ValueError: an empty name, or the reserved name ``"image"``.
    """

    sample_id: str
    image: Path | str
    target: Mapping[str, Any] = field(default_factory=dict)
    meta: Mapping[str, Any] = field(default_factory=dict)
    images: Mapping[str, Path | str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.images, Mapping):
            raise TypeError(f"Sample {self.sample_id!r}: images must be a mapping name -> path, "
                            f"got {type(self.images).__name__}")
        for name, value in self.images.items():
            if not isinstance(name, str) or not name:
                raise ValueError(f"Sample {self.sample_id!r}: image names must be non-empty str, "
                                 f"got {name!r}")
            if name == "image":
                raise ValueError(f"Sample {self.sample_id!r}: the name 'image' is reserved for the "
                                 "primary image (Sample.image); pick another name in images")
            if not isinstance(value, str | Path | np.ndarray):
                raise TypeError(f"Sample {self.sample_id!r}: images[{name!r}] is "
                                f"{type(value).__name__}; expected a path (str or Path)")
        object.__setattr__(self, "images", dict(self.images))

    def all_images(self) -> dict[str, Path | str]:
        """Every image of the sample by name: ``{"image": image, **images}`` (primary first)."""
        return {"image": self.image, **self.images}


@dataclass
class Scores:
    """What ``TaskPlugin.score`` returns.

    Attributes:
        metrics: metric name -> value (every name in ``plugin.metrics`` must be present; NaN when
            undefined, e.g. no positives).
        per_sample: metric name -> ``(n,)`` float array aligned with the scored samples, whose
            mean is the metric (e.g. per-expression IoU for mIoU, 0/1 hit for Acc@0.5). Used for
            bootstrap confidence intervals and the gate's paired test.
        per_sample_ratio: metric name -> ``(numerator, denominator)`` ``(n,)`` arrays whose
            ``sum(num) / sum(den)`` is the metric (e.g. oIoU = sum I / sum U), for the same uses.
        tables: free-form JSON-serialisable tables (per-class AP, confusion matrix, ...).
        sample_ids: ids of the scored samples, in the order of the per-sample arrays.
        deviations: metric name -> reason, for metrics that this time were *not* computed the
            official way although their :class:`MetricSpec` says ``official=True`` (e.g.
            captioning without Java tokenises in Python). The harness then records them as
            not official, with the reason in ``tables["notes"]``.
    """

    metrics: dict[str, float]
    per_sample: dict[str, np.ndarray] = field(default_factory=dict)
    per_sample_ratio: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    tables: dict[str, Any] = field(default_factory=dict)
    sample_ids: list[str] = field(default_factory=list)
    deviations: dict[str, str] = field(default_factory=dict)


class DatasetAdapter(abc.ABC):
    """Reads one benchmark in its original file format (torchgeo-style).

    Subclasses set the class attributes and implement :meth:`samples`. The constructor must
    validate the layout and raise :class:`DatasetError` (showing ``layout``) when it is wrong.

    Attributes:
        name: dataset key within its task, e.g. ``"dior"``.
        splits: the splits this dataset offers; ``default_split`` is the official one.
        default_subdir: where it lives under ``--data-root`` in the official layout.
        layout: a short text drawing of the expected directory layout, shown in errors.
        classes: official class names, in official order.
        info: provenance, official split and size, and the files the adapter reads
            (:class:`~remotesam.bench.api.datainfo.DatasetInfo`); ``None`` when undescribed.
        title: display name in tables, radar and report when ``info`` is None (``info.title``
            wins); empty: the dataset key (see :meth:`display_title`).
    """

    name: ClassVar[str]
    info: ClassVar[DatasetInfo | None] = None
    title: ClassVar[str] = ""
    splits: ClassVar[tuple[str, ...]] = ("test",)
    default_split: ClassVar[str] = "test"
    default_subdir: ClassVar[str] = ""
    layout: ClassVar[str] = ""
    classes: ClassVar[tuple[str, ...]] = ()

    def __init__(self, root: str | Path, split: str | None = None, **options: Any) -> None:
        self.root = Path(root)
        self.split = split or self.default_split
        if self.split not in self.splits:
            raise DatasetError(
                f"{type(self).__name__}: unknown split {self.split!r}; available: "
                f"{list(self.splits)}"
            )
        self.options = dict(options)

    @abc.abstractmethod
    def samples(self) -> list[Sample]:
        """All samples of the split, in a deterministic order, with unique ``sample_id``."""

    @classmethod
    def display_title(cls, key: str | None = None) -> str:
        """The dataset's display name: ``info.title``, else the class attribute ``title``, else
        ``key`` (the dataset key the task registers the adapter under), else ``name``."""
        info = getattr(cls, "info", None)
        if isinstance(info, DatasetInfo) and info.title:
            return str(info.title)
        title = getattr(cls, "title", "")
        if isinstance(title, str) and title:
            return title
        return key or str(getattr(cls, "name", cls.__name__))


class TaskPlugin(abc.ABC):
    """A downstream task: datasets, prediction and metrics.

    Class attributes (validated when the plugin is loaded):
        name: short task key used on the command line (``"det"``).
        title: display name in tables, radar and report (``"Detection"``); defaults to
            ``name``.
        version: bump whenever stored predictions or scores could change (part of the cache key).
        description: one line for ``remotesam-bench list``.
        metrics: the metrics reported; exactly one is ``primary``.
        datasets: dataset key -> adapter class; ``default_dataset`` is run when none is named.

    Instances take ``options`` (task settings such as thresholds, from ``--task-opt``); every
    setting that can change a prediction must appear in :meth:`settings`, which is hashed into
    the cache key.
    """

    name: ClassVar[str]
    title: ClassVar[str]
    version: ClassVar[int]
    description: ClassVar[str] = ""
    metrics: ClassVar[tuple[MetricSpec, ...]]
    datasets: ClassVar[Mapping[str, type[DatasetAdapter]]]
    default_dataset: ClassVar[str]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """A class that sets ``name`` but no ``title`` of its own is titled by its name."""
        super().__init_subclass__(**kwargs)
        if "title" not in cls.__dict__ and "name" in cls.__dict__:
            cls.title = str(cls.name)

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        self.options: dict[str, Any] = dict(options or {})

    @classmethod
    def display_title(cls) -> str:
        """The task's display name: ``title``, else ``name``."""
        title = getattr(cls, "title", "")
        return title if isinstance(title, str) and title else str(getattr(cls, "name", ""))

    @classmethod
    def dataset_title(cls, dataset: str) -> str:
        """The display name of the task's dataset ``dataset``
        (:meth:`DatasetAdapter.display_title`; the key for a dataset the task does not have)."""
        adapter = dict(getattr(cls, "datasets", {}) or {}).get(dataset)
        if isinstance(adapter, type) and issubclass(adapter, DatasetAdapter):
            return adapter.display_title(dataset)
        return dataset

    def settings(self) -> dict[str, Any]:
        """Prediction settings (JSON-serialisable) that go into the cache key."""
        return dict(sorted(self.options.items()))

    def predict(self, model: ModelLike, samples: Sequence[Sample]) -> list[Prediction]:
        """Predict a batch. ``model`` is a :class:`remotesam.RemoteSAM`.

        Returns one JSON-serialisable prediction per sample, in order. May raise for a bad
        sample (unreadable image ...); the harness then isolates and records the failure.

        Implement :meth:`requests` and :meth:`reduce` (the harness then gathers the requests
        of every task of the run, computes each distinct forward once, batched and prefetched,
        and overlaps ``reduce`` with the next forwards), or else this method alone (calling the
        predictor's task methods: simple, one sample after the other). This default derives
        the prediction from :meth:`requests` / :meth:`reduce`: each request answered by
        ``model.engine`` (:meth:`remotesam.engine.Engine.answer`), one after the other; the
        harness's own path gives the same predictions, faster.
        """
        if not self.uses_requests():
            raise NotImplementedError(f"{type(self).__name__} implements neither predict nor "
                                      "requests and reduce")
        from remotesam.engine import Request

        engine = model.engine
        out: list[Prediction] = []
        for s in samples:
            reqs = self.requests(s)
            if not isinstance(reqs, list | tuple) or not reqs or not all(
                    isinstance(r, Request) for r in reqs):
                raise PluginError(f"{self.name}.requests returned {reqs!r}; expected a "
                                  "non-empty list of remotesam.engine.Request")
            answers = []
            for r in reqs:
                boundary = engine.resolve_boundary(r.boundary)
                try:
                    answer = engine.answer(Request(r.image, tuple(dict.fromkeys(r.prompts)),
                                                   frozenset(r.outputs), boundary=boundary))
                except Exception as e:
                    err = image_error(r.image, e)
                    if err is e:
                        raise
                    raise err from e
                answers.append(answer.select(r.prompts, boundary=boundary))
            out.append(self.reduce(s, answers))
        return out

    @classmethod
    def uses_requests(cls) -> bool:
        """Whether the plugin implements :meth:`requests` and :meth:`reduce`."""
        return cls.requests is not TaskPlugin.requests and cls.reduce is not TaskPlugin.reduce

    def requests(self, sample: Sample) -> list[Request]:
        """What the network must compute for ``sample``: one or more
        :class:`remotesam.engine.Request` (an image, its prompts, the dense outputs wanted:
        ``mask_net``, ``prob_net``, ``mask``, ``prob``, ``pooled``; optionally the EPOC
        boundary map). Optional; implement it together with :meth:`reduce`.

        Must not load the image (the harness prefetches it) and may raise for a malformed
        sample (that sample then fails alone).
        """
        raise NotImplementedError

    def reduce(self, sample: Sample, answers: Sequence[Answer]) -> Prediction:
        """The prediction of ``sample`` from the :class:`remotesam.engine.Answer` of each of its
        requests (same order; each holds exactly the request's prompts, in its order, with at
        least the outputs asked for). Runs in a worker thread beside the next forwards: it must
        not touch shared mutable state. May raise (the sample then fails alone)."""
        raise NotImplementedError

    @abc.abstractmethod
    def score(self, samples: Sequence[Sample], predictions: Sequence[Prediction]) -> Scores:
        """Compute every metric in ``metrics`` from aligned samples and predictions."""

    @classmethod
    def primary_metric(cls) -> MetricSpec:
        """The task's headline metric."""
        return next(m for m in cls.metrics if m.primary)
