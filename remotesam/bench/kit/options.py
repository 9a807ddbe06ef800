"""Option checking and ``score()`` plumbing for task plugins and dataset adapters.

Dataset options (``--dataset-opt``) are checked with ``error=DatasetError``; task options
(``--task-opt``) with ``error=ValueError``. Option values arrive as strings from the command line
and as typed values from the Python API; the parsers accept both.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence, Sized
from pathlib import Path
from typing import Any

from remotesam.bench.api import DatasetError

__all__ = [
    "as_str_list",
    "check_options",
    "check_score_lengths",
    "option_path",
    "parse_bool_option",
    "positive_int_option",
    "sample_dataset_classes",
]


def check_options(
    owner: str,
    options: Mapping[str, Any],
    allowed: Iterable[str] = (),
    *,
    error: type[Exception] = DatasetError,
    kind: str = "dataset",
) -> None:
    """Raise ``error`` naming the unknown option names of ``options`` and the allowed ones.

    Args:
        owner: prefix of the message (``"isaid"``, ``"cap task"``...).
        options: the options given.
        allowed: the accepted names; when empty the message says the ``kind`` has no options.
        error: :class:`DatasetError` for dataset adapters, ``ValueError`` for tasks.
        kind: ``"dataset"`` or ``"task"`` (only used when nothing is allowed).
    """
    allowed = frozenset(allowed)
    unknown = set(options) - allowed
    if unknown:
        hint = f"available: {sorted(allowed)}" if allowed else f"this {kind} has no options"
        raise error(f"{owner}: unknown option(s) {sorted(unknown)}; {hint}")


_TRUE = frozenset({"1", "true", "yes", "on"})

_FALSE = frozenset({"0", "false", "no", "off"})


def parse_bool_option(task: str, key: str, value: Any, allow_auto: bool = False) -> bool | None:
    """``true/false`` (bool or string) option -> bool; ``auto`` -> None when allowed.

    Raises:
        ValueError: anything else, naming the task and the option.
    """
    if isinstance(value, bool):
        return value
    v = str(value).strip().lower()
    if allow_auto and v == "auto":
        return None
    if v in _TRUE:
        return True
    if v in _FALSE:
        return False
    choices = "true/false" + ("/auto" if allow_auto else "")
    raise ValueError(f"{task} task: option {key}={value!r}; expected {choices}")


def positive_int_option(task: str, options: Mapping[str, Any], key: str, default: int) -> int:
    """``int(options[key])`` (``default`` when absent), required to be > 0.

    Raises:
        ValueError: not an integer, or not positive (naming the task and the option).
    """
    try:
        value = int(options.get(key, default))
    except (TypeError, ValueError):
        raise ValueError(f"{task} task: option {key}={options[key]!r} is not an integer") from None
    if value <= 0:
        raise ValueError(f"{task} task: option {key} must be positive, got {value}")
    return value


def as_str_list(value: Any, option: str) -> list[str]:
    """A list-of-strings option given as a list or a comma-separated string."""
    if isinstance(value, str):
        items = [v.strip() for v in value.split(",")]
    elif isinstance(value, Sequence):
        items = [str(v).strip() for v in value]
    else:
        raise DatasetError(
            f"option {option!r}: expected a list or a comma-separated string, got {value!r}"
        )
    if not items or any(not v for v in items):
        raise DatasetError(f"option {option!r}: empty name in {value!r}")
    return items


def option_path(options: Mapping[str, Any], key: str, default: Path) -> Path:
    """``Path(options[key])`` when the option is set (non-empty), else ``default``."""
    value = options.get(key)
    return Path(value) if value else default


def check_score_lengths(samples: Sized, predictions: Sized) -> None:
    """Raise ``ValueError`` unless ``score()`` got one prediction per sample."""
    if len(samples) != len(predictions):
        raise ValueError(f"score: {len(samples)} samples but {len(predictions)} predictions")


def sample_dataset_classes(task: Any, sample: Any) -> tuple[str, ...]:
    """Class list of the dataset a sample comes from (``sample.meta["dataset"]``, else the task's
    ``default_dataset``), looked up in ``task.datasets``.

    Raises:
        ValueError: the dataset named in ``meta`` is not one of the task's.
    """
    ds = str(sample.meta.get("dataset", task.default_dataset))
    if ds not in task.datasets:
        raise ValueError(f"sample {sample.sample_id}: unknown dataset {ds!r} in meta")
    return tuple(task.datasets[ds].classes)
