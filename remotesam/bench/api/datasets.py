"""Reading one dataset of a task: where it lies and its samples, checked.

The run (:mod:`remotesam.bench.run.jobs`) and everything that re-reads a stored run's
dataset (scoring again, per-sample export, the HTML report) read datasets through these two
functions, so they find the same files and word a bad dataset the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from remotesam.bench.api.task import DatasetAdapter, DatasetError, Sample
from remotesam.bench.errors import InputError, PluginError

__all__ = ["layout_hint", "locate_dataset", "read_samples"]


def layout_hint(adapter: type[DatasetAdapter]) -> str:
    """The adapter's expected layout, as a paragraph to append to an error message."""
    layout = (adapter.layout or "").strip("\n")
    return f"\nExpected layout ({adapter.__name__}):\n{layout}" if layout else ""


def locate_dataset(task: str, ds: str, adapter: type[DatasetAdapter],
                   data_root: str | Path | None,
                   dataset_roots: Mapping[str, str | Path]) -> Path:
    """The directory of dataset ``ds`` of ``task``: ``dataset_roots["task.ds"]``, else
    ``data_root / adapter.default_subdir``.

    Raises:
        InputError: no location is given, or the directory does not exist.
    """
    key = f"{task}.{ds}"
    if key in dataset_roots:
        root = Path(dataset_roots[key])
        how = f"--dataset-root {key}={root}"
    elif data_root is not None:
        root = Path(data_root) / adapter.default_subdir
        how = f"--data-root {data_root} (+ {adapter.default_subdir or '.'})"
    else:
        raise InputError(
            f"{key}: no dataset location; pass --data-root DIR (the dataset is then read from "
            f"DIR/{adapter.default_subdir}) or --dataset-root {key}=PATH" + layout_hint(adapter))
    if not root.is_dir():
        raise InputError(f"{key}: dataset directory {root} does not exist (from {how})"
                         + layout_hint(adapter))
    return root


def read_samples(task: str, ds: str, adapter_cls: type[DatasetAdapter], root: Path,
                 split: str | None, options: Mapping[str, Any]
                 ) -> tuple[DatasetAdapter, list[Sample]]:
    """``(adapter, samples)`` of dataset ``ds`` of ``task`` read from ``root``: every sample of
    the split (``split=None``: the dataset's official one; ``adapter.split`` says which).

    Raises:
        InputError: the adapter rejects the files or options (the message adds the layout).
        PluginError: the adapter returned a sample id twice.
    """
    label = f"{task}.{ds}"
    try:
        adapter = adapter_cls(root, split, **dict(options))
        samples = list(adapter.samples())
    except DatasetError as e:
        msg = str(e)
        shown = adapter_cls.layout and adapter_cls.layout.strip() in msg
        raise InputError(f"{label}: {msg}{'' if shown else layout_hint(adapter_cls)}") from e
    except Exception as e:
        raise InputError(f"{label}: reading {root} failed: {type(e).__name__}: {e}"
                         + layout_hint(adapter_cls)) from e
    ids = [s.sample_id for s in samples]
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise PluginError(f"{label}: {adapter_cls.__name__}.samples() returned the sample_id "
                          f"{dup!r} more than once; sample ids must be unique")
    return adapter, samples
