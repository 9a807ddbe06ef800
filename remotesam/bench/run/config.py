"""The configuration of a run (:class:`RunConfig`) and its checks before any work starts.

Bad values are :class:`~remotesam.bench.errors.InputError` s raised before work starts.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from remotesam.bench.errors import InputError
from remotesam.precision import PrecisionError, canonical_precision, resolve_precision

__all__ = ["RunConfig", "check_config", "check_run_id"]


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
            :mod:`remotesam.bench.run.progress`.
        retry_failed: predict again the samples whose failure a previous run recorded
            (by default they stay failed, so a fully cached rerun never loads the model).
        compile: ``torch.compile`` the network (``--compile``).
        channels_last: NHWC memory format for the network (``--channels-last``).
        options: the ``remotesam-bench run`` options this config was made from (a config
            file merged with the command line, :mod:`remotesam.bench.cli.config_file`); recorded in
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
        hint = (
            f" e.g. --run-id {suggestion}" if suggestion and _RUN_ID.fullmatch(suggestion) else ""
        )
        raise InputError(
            f"--run-id {run_id!r}: a run id names one file in <results>/runs, so it may hold only "
            "letters, digits, '.', '_' and '-' (no '/', no '..', not starting with '.' or "
            f"'-', at most 128 characters);{hint}")
    return run_id


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


def check_config(config: RunConfig) -> tuple[str, str]:
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
    from remotesam.bench.run.progress import progress_interval

    progress_interval(config.progress_interval)  # a bad value fails before any work
    device = _resolve_device(config.device)
    try:
        precision = resolve_precision(config.precision, device)
    except PrecisionError as e:
        raise InputError(f"--precision {config.precision} --device {config.device}: {e}") from e
    return precision, device
