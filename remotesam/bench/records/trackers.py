"""Experiment trackers: every metric of a run, per checkpoint, to TensorBoard and Weights & Biases.

``remotesam-bench run --log-to tensorboard[:DIR],wandb[:PROJECT]`` logs, after the run, one
point per checkpoint for every metric of every (task, dataset): the tag is
``TASK.DATASET/METRIC`` (e.g. ``ref.rrsisd/oIoU``), beside ``TASK.DATASET/n_evaluated`` and
``TASK.DATASET/n_failed`` so that a number never travels without how many samples it covers.
``remotesam-train --eval-every N --log-to ...`` logs the training loss, the validation and the
periodic benchmark evaluation the same way, at the training step.

The x axis (global step) of a checkpoint is, in this order (:func:`checkpoint_steps`):

1. the ``step`` recorded in a safetensors file's metadata (``remotesam-train`` writes it);
2. a step in the file name: ``step_1200``, ``step-1200``, ``iter_5000``, ``global_step800``,
   ``checkpoint-500`` (Hugging Face Trainer), ``model_0004999`` (detectron2);
3. otherwise the checkpoint's index in the run (0, 1, 2, ...), also when two checkpoints would
   share a step.

Trackers are optional extras: ``pip install 'remotesam-bench[tensorboard]'`` (event files written
with ``torch.utils.tensorboard``) and ``pip install 'remotesam-bench[wandb]'``. W&B follows its own
environment (``WANDB_MODE=offline`` writes the run under ``DIR/wandb/`` without a network;
``wandb sync`` uploads it later).
"""

from __future__ import annotations

import json
import math
import re
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from remotesam.bench.errors import InputError

__all__ = [
    "TRACKERS",
    "TensorBoardTracker",
    "Tracker",
    "TrackerError",
    "TrackerSpec",
    "WandbTracker",
    "checkpoint_steps",
    "document_metrics",
    "log_run_document",
    "open_trackers",
    "parse_log_to",
    "require_extras",
    "step_from_checkpoint",
]

#: Tracker kinds accepted by ``--log-to``.
TRACKERS = ("tensorboard", "wandb")

DEFAULT_WANDB_PROJECT = "remotesam-bench"


class TrackerError(InputError):
    """A tracker that cannot be used (extra not installed, bad ``--log-to`` value, a directory
    that cannot be written); the message says what to do."""


class Tracker(Protocol):
    """What the harness and the trainer call: scalars at a step, then close."""

    def log(self, metrics: Mapping[str, float], step: int) -> None: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class TrackerSpec:
    """One ``--log-to`` item: ``kind`` (``tensorboard``/``wandb``) and its optional argument
    (TensorBoard: the log directory; W&B: the project)."""

    kind: str
    arg: str | None = None

    def __str__(self) -> str:
        return self.kind + (f":{self.arg}" if self.arg else "")


def parse_log_to(values: Sequence[str] | str | None) -> list[TrackerSpec]:
    """``["tensorboard:runs/tb,wandb"]`` -> specs. Items are comma-separated and repeatable.

    Raises:
        TrackerError: an unknown tracker (the message lists the known ones) or a tracker named
            twice.
    """
    if values is None:
        return []
    if isinstance(values, str):
        values = [values]
    out: list[TrackerSpec] = []
    for raw in values:
        for item in (s.strip() for s in str(raw).split(",")):
            if not item:
                continue
            kind, _, arg = item.partition(":")
            kind = kind.strip().lower()
            if kind not in TRACKERS:
                raise TrackerError(f"--log-to {item!r}: unknown tracker {kind!r}; expected "
                                   "tensorboard[:DIR] and/or wandb[:PROJECT], comma-separated")
            if any(s.kind == kind for s in out):
                raise TrackerError(f"--log-to: {kind} is named twice")
            out.append(TrackerSpec(kind, arg.strip() or None))
    return out


def _missing_extra(kind: str, exc: ImportError) -> TrackerError:
    return TrackerError(f"--log-to {kind} needs the optional extra {kind!r} ({exc}); install "
                        f"it with: pip install 'remotesam-bench[{kind}]'")


class TensorBoardTracker:
    """Scalars to TensorBoard event files in ``log_dir`` (``torch.utils.tensorboard``).

    Raises:
        TrackerError: the ``tensorboard`` package is not installed.
    """

    def __init__(self, log_dir: str | Path, *, config: Mapping[str, Any] | None = None) -> None:
        try:
            import tensorboard  # noqa: F401  (torch.utils.tensorboard needs it)
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as e:
            raise _missing_extra("tensorboard", e) from e
        self.log_dir = Path(log_dir)
        try:
            self.log_dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise TrackerError(f"--log-to tensorboard: cannot create {self.log_dir} ({e})") from e
        self._writer = SummaryWriter(log_dir=str(self.log_dir))
        if config:
            text = json.dumps(config, indent=1, sort_keys=True, default=str)
            # markdown code block, as TensorBoard renders text summaries as markdown
            self._writer.add_text("config", "```\n" + text + "\n```", 0)

    def log(self, metrics: Mapping[str, float], step: int) -> None:
        for tag, value in metrics.items():
            self._writer.add_scalar(tag, float(value), global_step=int(step))
        self._writer.flush()

    def close(self) -> None:
        self._writer.close()


class WandbTracker:
    """Scalars to a Weights & Biases run (its own environment decides online/offline:
    ``WANDB_MODE=offline`` writes ``<dir>/wandb/offline-run-*`` without a network).

    Raises:
        TrackerError: the ``wandb`` package is not installed, or ``wandb.init`` failed.
    """

    def __init__(self, *, project: str | None, name: str | None, directory: str | Path,
                 config: Mapping[str, Any] | None = None) -> None:
        try:
            import wandb
        except ImportError as e:
            raise _missing_extra("wandb", e) from e
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        try:
            self._run = wandb.init(project=project or DEFAULT_WANDB_PROJECT, name=name,
                                   dir=str(self.dir), config=dict(config or {}))
        except Exception as e:  # wandb raises its own error types (auth, network, usage)
            raise TrackerError(f"--log-to wandb: wandb.init failed ({type(e).__name__}: {e}); "
                               "log in with `wandb login`, or set WANDB_MODE=offline to write "
                               "the run locally and `wandb sync` it later") from e

    def log(self, metrics: Mapping[str, float], step: int) -> None:
        self._run.log({k: float(v) for k, v in metrics.items()}, step=int(step))

    def close(self) -> None:
        self._run.finish()


def require_extras(specs: Sequence[TrackerSpec]) -> None:
    """Check that the extra of every tracker in ``specs`` is installed (before a long run).

    Raises:
        TrackerError: naming the missing extra and the ``pip install`` line.
    """
    for spec in specs:
        try:
            if spec.kind == "tensorboard":
                import tensorboard  # noqa: F401
                from torch.utils.tensorboard import SummaryWriter  # noqa: F401
            else:
                import wandb  # noqa: F401
        except ImportError as e:
            raise _missing_extra(spec.kind, e) from e


def open_trackers(specs: Sequence[TrackerSpec], *, base_dir: str | Path, name: str,
                  config: Mapping[str, Any] | None = None) -> list[Tracker]:
    """Open every tracker of ``specs``.

    Args:
        base_dir: TensorBoard writes to ``base_dir/tensorboard/<name>`` unless its spec names a
            directory; W&B writes its local files under ``base_dir``.
        name: the run's name (run id, or the training output folder's name).
        config: recorded with the run (TensorBoard text ``config``, W&B ``config``).

    Raises:
        TrackerError: a missing extra (nothing is left open).
    """
    opened: list[Tracker] = []
    try:
        for spec in specs:
            if spec.kind == "tensorboard":
                log_dir = Path(spec.arg) if spec.arg else Path(base_dir) / "tensorboard" / name
                opened.append(TensorBoardTracker(log_dir, config=config))
            else:
                opened.append(WandbTracker(project=spec.arg, name=name, directory=base_dir,
                                           config=config))
    except BaseException:
        for t in opened:
            t.close()
        raise
    return opened


# ---------------------------------------------------------------------------------------------
# steps of checkpoints

_NAME_STEP = (
    re.compile(r"(?<![a-z])(?:global[_-]?step|step|iter(?:ation)?)[_-]?(\d+)", re.IGNORECASE),
    re.compile(r"checkpoint-(\d+)", re.IGNORECASE),
    re.compile(r"model_(\d{5,})", re.IGNORECASE),
)


def _safetensors_metadata(path: Path) -> dict[str, str]:
    try:
        with path.open("rb") as f:
            head = f.read(8)
            if len(head) < 8:
                return {}
            (n,) = struct.unpack("<Q", head)
            if n > 100_000_000:
                return {}
            header = json.loads(f.read(n))
    except (OSError, ValueError, struct.error):
        return {}
    meta = header.get("__metadata__") if isinstance(header, dict) else None
    return dict(meta) if isinstance(meta, dict) else {}


def step_from_checkpoint(name: str, path: str | Path | None = None) -> int | None:
    """The training step of a checkpoint: safetensors metadata ``step``, else a step in the
    file name (``step_1200``, ``iter-5000``, ``checkpoint-500``, ``model_0004999``), else None.
    """
    if path is not None and str(path).endswith(".safetensors"):
        raw = _safetensors_metadata(Path(path)).get("step")
        if raw is not None and str(raw).isdigit():
            return int(raw)
    stem = Path(str(name)).name
    parents = [Path(str(name)).parent.name]
    for text in (stem, *parents):
        for rx in _NAME_STEP:
            m = rx.search(text)
            if m:
                return int(m.group(1))
    return None


def checkpoint_steps(checkpoints: Sequence[tuple[str, str | Path | None]]) -> tuple[list[int], str]:
    """Global steps of ``[(name, path), ...]`` in order, and where they came from
    (``"checkpoint"``: metadata or names; ``"index"``: the position, used when a step is
    missing for any checkpoint or two checkpoints share one)."""
    steps = [step_from_checkpoint(n, p) for n, p in checkpoints]
    if steps and all(s is not None for s in steps) and len(set(steps)) == len(steps):
        return [int(s) for s in steps if s is not None], "checkpoint"
    return list(range(len(checkpoints))), "index"


# ---------------------------------------------------------------------------------------------
# a run document to trackers


def document_metrics(doc: Any) -> list[tuple[str, str, dict[str, float]]]:
    """``[(checkpoint name, path, {tag: value})]`` of a run document, one entry per checkpoint in
    the order of first appearance. Tags are ``TASK.DATASET/METRIC`` (plus ``/n_evaluated`` and
    ``/n_failed``); NaN values (no sample evaluated) are left out."""
    out: dict[str, tuple[str, dict[str, float]]] = {}
    for r in doc.results:
        key = r.checkpoint.sha256 or r.checkpoint.name
        _, metrics = out.setdefault(key, (r.checkpoint.name, {}))
        prefix = f"{r.task}.{r.dataset}" + (f"@{r.split}" if _nonstandard_split(doc, r) else "")
        for name, m in r.metrics.items():
            if m.value is not None and math.isfinite(float(m.value)):
                metrics[f"{prefix}/{name}"] = float(m.value)
        metrics[f"{prefix}/n_evaluated"] = float(r.n_evaluated)
        metrics[f"{prefix}/n_failed"] = float(r.n_failed)
    paths = {r.checkpoint.sha256 or r.checkpoint.name: r.checkpoint.path for r in doc.results}
    return [(name, paths[k], m) for k, (name, m) in out.items()]


def _nonstandard_split(doc: Any, r: Any) -> bool:
    """Two results of one checkpoint on the same task.dataset differ by split: tag it."""
    same = [x for x in doc.results if x.checkpoint == r.checkpoint and x.task == r.task
            and x.dataset == r.dataset]
    return len({x.split for x in same}) > 1


def log_run_document(doc: Any, trackers: Sequence[Tracker]) -> list[tuple[str, int]]:
    """Log every metric of ``doc`` per checkpoint (see the module docstring for the step).

    Returns:
        ``[(checkpoint name, step)]`` in logging order (ascending step).
    """
    entries = document_metrics(doc)
    steps, _ = checkpoint_steps([(name, path) for name, path, _ in entries])
    order = sorted(range(len(entries)), key=lambda i: steps[i])
    logged = []
    for i in order:
        name, _, metrics = entries[i]
        for t in trackers:
            t.log(metrics, steps[i])
        logged.append((name, steps[i]))
    return logged
