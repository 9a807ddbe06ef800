"""``remotesam.bench.run.evaluate``: the benchmark from Python, in one call (as lm-eval's
``simple_evaluate``), also inside a training loop.

::

    from remotesam.bench import evaluate

    doc = evaluate("runs/tiny/last.safetensors", tasks=["ref", "det"], data_root="/data/eo",
                   limit=100)
    doc = evaluate("hf://1e12Leon/RemoteSAM/checkpoint.pth", tasks="ref")
    doc = evaluate(model, tasks="ref,det", limit=50)     # a RemoteSAM, or its nn.Module
    print(doc.results[0].metrics["oIoU"].value)

``model`` is one of:

* a checkpoint path, directory, glob or ``hf://OWNER/REPO/FILE[@REVISION]`` URI (or a list of
  them: a sweep), loaded as ``remotesam-bench run --ckpt`` would;
* ``None``: the bundled tiny checkpoint;
* a :class:`remotesam.RemoteSAM` (evaluated on its device, at its precision unless
  ``precision`` is given; always with its current ``net``);
* a ``torch.nn.Module`` with the network's interface (``net(image, input_ids, attention_mask)
  -> logits (B, 2, S, S)`` and a ``config``, i.e. a :class:`remotesam.RemoteSAMNet`), wrapped
  into a ``RemoteSAM`` on the module's own device; its training mode is restored afterwards.

In-memory models are identified in the prediction cache by a digest of their weights
(:func:`remotesam.bench.records.identity.model_digest`) plus their settings, so evaluating the same
weights twice predicts nothing the second time, and new weights are always predicted.

Everything else is the run of ``remotesam-bench run``: the same cache and results directory,
the same run document (returned, and saved under ``<results_dir>/runs/``). Under ``torchrun``
every rank calls ``evaluate`` (samples are sharded); rank 0 gets the document, the others None.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from remotesam.bench.api.registry import Registry
from remotesam.bench.errors import BenchError, InputError
from remotesam.bench.records.results import RunDocument
from remotesam.bench.records.trackers import (
    DEFAULT_TABLE_ROWS,
    log_run_document,
    open_trackers,
    parse_log_to,
    require_extras,
)
from remotesam.bench.run.checkpoints import ModelFactory, default_checkpoint, load_model_factory
from remotesam.bench.run.config import RunConfig, check_run_id
from remotesam.bench.run.embedded import ensure_embedded_benchmark
from remotesam.bench.run.jobs import build_jobs, check_before_work
from remotesam.bench.run.runner import RunOutcome, run

__all__ = ["EvaluationError", "check_evaluation", "evaluate", "evaluate_config"]

logger = logging.getLogger(__name__)

#: RunConfig fields that ``evaluate`` sets from its named arguments (or not at all).
_NAMED = {"tasks", "checkpoints", "data_root", "limit", "results_dir", "device", "batch_size",
          "precision", "options"}


def _run_options() -> tuple[str, ...]:
    """RunConfig fields that ``evaluate`` takes as keyword options (``split``,
    ``dataset_roots``, ``task_options``, ``dataset_options``, ``run_id``, ``progress``, ...)."""
    return tuple(f.name for f in dataclasses.fields(RunConfig) if f.name not in _NAMED)


class EvaluationError(BenchError):
    """The run finished with errors (a broken plugin, a checkpoint that does not load, a
    ``score`` that raised). The run document is saved; ``document`` holds it."""

    def __init__(self, message: str, document: RunDocument | None) -> None:
        super().__init__(message)
        self.document = document


def _is_checkpoint_spec(model: Any) -> bool:
    return isinstance(model, str | os.PathLike)


def _wrap_module(module: Any, precision: str, batch_size: int) -> Any:
    """A ``RemoteSAM`` around ``module`` on the module's own device."""
    import torch

    from remotesam.predictor import RemoteSAM

    try:
        device = next(module.parameters()).device
    except StopIteration:
        device = torch.device("cpu")
    if getattr(module, "config", None) is None:
        raise InputError(f"evaluate(model=...): the {type(module).__name__} has no `config` "
                         "(img_size, max_tokens, image_mean, image_std); pass a "
                         "remotesam.RemoteSAMNet, or wrap it yourself: "
                         "remotesam.RemoteSAM(net, image_size=S)")
    try:
        return RemoteSAM(module, device=device, precision=precision, batch_size=batch_size)
    except (TypeError, ValueError) as e:
        raise InputError(f"evaluate(model=...): cannot wrap the {type(module).__name__} into a "
                         f"RemoteSAM: {e}") from e


def _with_precision(model: Any, precision: str | None) -> Any:
    """``model`` itself, or (``precision`` given and not the model's own) a ``RemoteSAM`` over
    the same network, tokenizer and EPOC model at ``precision``; ``model`` is left as it is."""
    from remotesam.precision import PrecisionError, resolve_precision
    from remotesam.predictor import RemoteSAM

    if precision is None:
        return model
    try:
        wanted = resolve_precision(precision, model.device)
    except PrecisionError as e:
        raise InputError(f"evaluate(precision={precision!r}): {e}") from e
    if wanted == model.precision:
        return model
    return RemoteSAM(model.net, device=model.device, precision=wanted,
                     batch_size=model.batch_size, image_size=model.image_size,
                     tokenizer=model.tokenizer, epoc_model=model.epoc_model)


def check_evaluation(tasks: str | Sequence[str], data_root: str | os.PathLike[str] | None,
                     **options: Any) -> list[str]:
    """Check, without a model, that ``tasks`` can be evaluated on ``data_root``: the plugins
    load and every selected dataset is found and read (as :func:`evaluate` would, before any
    prediction). For a training loop that evaluates later: bad names or paths fail at once.

    Returns:
        ``["task.dataset/split", ...]`` that an evaluation would run.

    Raises:
        InputError: an unknown task or dataset, a missing or malformed dataset, a broken
            plugin (the message names it).
    """
    task_list = [tasks] if isinstance(tasks, str) else list(tasks)
    root = None if data_root is None else os.fspath(data_root)
    config = RunConfig(tasks=task_list, data_root=root, **options)
    errors: list[str] = []
    jobs = build_jobs(config, Registry(), errors)
    if errors:
        raise InputError("; ".join(errors))
    return [j.label for j in jobs]


def evaluate(
    model: Any = None,
    *,
    tasks: str | Sequence[str] = "all",
    data_root: str | os.PathLike[str] | None = None,
    limit: int | None = None,
    results_dir: str | os.PathLike[str] = "results",
    device: str = "auto",
    batch_size: int = 8,
    precision: str | None = None,
    model_name: str | None = None,
    model_factory: Any = None,
    log_to: str | Sequence[str] | None = None,
    on_error: str = "raise",
    **options: Any,
) -> RunDocument | None:
    """Evaluate ``model`` on ``tasks`` and return the run document.

    Args:
        model: checkpoint path / directory / glob / ``hf://`` URI (or a list: a sweep),
            ``None`` (the bundled tiny checkpoint), a :class:`remotesam.RemoteSAM` or a
            ``torch.nn.Module`` with the network's interface (see the module docstring).
        tasks: ``"ref,det"``, ``["ref", "det.dior"]``, ``"det.*"`` or ``"all"``.
        data_root: the datasets in their official layout; ``None``: the embedded procedural
            benchmark (written once under ``results_dir/embedded``).
        limit: only the first ``limit`` samples of each dataset (a subset: reports say so).
        results_dir: the prediction cache and ``runs/``.
        device: for checkpoints (an in-memory model keeps its own device).
        batch_size: for checkpoints.
        precision: ``"fp32"``, ``"bf16"`` or ``"fp16"`` (CUDA). ``None``: fp32 for checkpoints
            and a wrapped ``nn.Module``, a :class:`remotesam.RemoteSAM`'s own precision; given,
            a ``RemoteSAM`` is evaluated at it (through a second predictor over the same
            network: the model object itself is not changed).
        model_name: the name of an in-memory model in the run document (default: its class).
        model_factory: ``factory(path, *, device, precision, batch_size)`` or
            ``"module:function"`` to load checkpoints (as ``--model-factory``).
        log_to: trackers, as ``--log-to`` (``"tensorboard:DIR,wandb"``).
        on_error: ``"raise"`` (default) raises :class:`EvaluationError` when the run reports
            errors (the document is saved first); ``"warn"`` logs them and returns the document.
        **options: further run settings: ``dataset_roots``, ``split``, ``task_options``,
            ``dataset_options``, ``run_id``, ``progress``, ``retry_failed``
            (see :class:`remotesam.bench.run.config.RunConfig`).

    Returns:
        The :class:`~remotesam.bench.records.results.RunDocument` (rank 0; None on other ranks of a
        ``torchrun`` job).

    Raises:
        TypeError: an unknown keyword option (the message lists the valid ones).
        InputError: bad paths, names or options, a model that cannot be evaluated, a
            tracker whose extra is missing (before any work).
        EvaluationError: the run reported errors and ``on_error="raise"``.
    """
    valid = _run_options()
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise TypeError(f"evaluate() got unknown option(s) {unknown}; valid keyword options: "
                        "tasks, data_root, limit, results_dir, device, batch_size, precision, "
                        "model_name, model_factory, log_to, on_error, " + ", ".join(valid))
    if on_error not in ("raise", "warn"):
        raise ValueError(f"on_error must be 'raise' or 'warn', got {on_error!r}")
    require_extras(parse_log_to(log_to))
    if isinstance(limit, bool) or (limit is not None and (not isinstance(limit, int)
                                                          or limit < 1)):
        raise InputError(f"evaluate(limit={limit!r}): expected an integer >= 1 or None")
    task_list = [tasks] if isinstance(tasks, str) else list(tasks)
    from_files = model is None or _is_checkpoint_spec(model) or (
        isinstance(model, list | tuple) and all(map(_is_checkpoint_spec, model)))
    factory = (load_model_factory(model_factory) if isinstance(model_factory, str)
               else model_factory)

    config = RunConfig(tasks=task_list,
                       data_root=None if data_root is None else os.fspath(data_root),
                       limit=limit, results_dir=os.fspath(results_dir), device=device,
                       batch_size=batch_size,
                       precision=precision or "fp32", **options)
    restore_training: Any = None
    in_memory: Any = None
    if from_files:
        specs = [] if model is None else (
            [model] if _is_checkpoint_spec(model) else list(model))
        config = dataclasses.replace(config, checkpoints=[
            s if isinstance(s, str) else str(Path(s)) for s in specs])
    else:
        import torch

        from remotesam.predictor import RemoteSAM

        if isinstance(model, RemoteSAM):
            in_memory = _with_precision(model, precision)
        elif isinstance(model, torch.nn.Module):
            restore_training = (model, model.training)
            in_memory = _wrap_module(model, precision or "fp32", batch_size)
        else:
            raise InputError(f"evaluate(model=...): expected a checkpoint path or hf:// URI, "
                             f"a remotesam.RemoteSAM or a torch.nn.Module, got "
                             f"{type(model).__name__}")
        if factory is not None:
            raise InputError("evaluate(model=...): model_factory loads checkpoints; it cannot "
                             "be used with an in-memory model")
        # the model stays where it is; the device only selects the distributed backend
        config = dataclasses.replace(config, device=str(in_memory.device))
    try:
        outcome = evaluate_config(config, model=in_memory,
                                  model_name=model_name or type(model).__name__,
                                  model_factory=factory, log_to=log_to)
    finally:
        if restore_training is not None:
            module, was_training = restore_training
            module.train(was_training)
    doc = outcome.document
    if outcome.errors:
        text = "; ".join(outcome.errors)
        where = f" (run document: {outcome.path})" if outcome.path else ""
        if on_error == "raise":
            raise EvaluationError(f"the evaluation reported {len(outcome.errors)} error(s)"
                                  f"{where}: {text}", doc)
        logger.warning("evaluation errors%s: %s", where, text)
    return doc


def evaluate_config(config: RunConfig, *, model: Any = None, model_name: str | None = None,
                    model_factory: ModelFactory | None = None,
                    log_to: str | Sequence[str] | None = None,
                    tracker_config: Mapping[str, Any] | None = None,
                    tracker_rows: int = DEFAULT_TABLE_ROWS,
                    tracker_files: Callable[[RunDocument], Sequence[Path]] | None = None,
                    on_warning: Callable[[str], None] | None = None,
                    on_info: Callable[[str], None] | None = None) -> RunOutcome:
    """Run ``config``: the one orchestration behind :func:`evaluate` and
    ``remotesam-bench run``.

    Checks what can fail before any work (trackers' extras, the bundled checkpoint when none is
    given, the run id), writes the embedded procedural benchmark when no data location is
    given, runs (:func:`remotesam.bench.run.runner.run`) and logs the run document to the
    trackers.

    Args:
        config: the run.
        model: an in-memory model (a :class:`remotesam.RemoteSAM`) instead of checkpoints.
        model_name: its name in the run document.
        model_factory: loads ``config.checkpoints`` (default: ``RemoteSAM.from_checkpoint``).
        log_to: trackers, as ``--log-to`` (``"tensorboard:DIR,wandb"``).
        tracker_config: the configuration the trackers record (default:
            ``config.to_json()``); the run id is added.
        tracker_rows: at most this many rows per per-sample table sent to a tracker (0: none).
        tracker_files: makes the files logged as the run's artefact (the HTML report, the
            leaderboard) from the run document; called only when a tracker is open.
        on_warning: called at once with each warning about the numbers (a ``limit`` subset).
        on_info: called with notes for the user (the embedded benchmark's location).

    Returns:
        The runner's :class:`~remotesam.bench.run.runner.RunOutcome`.

    Raises:
        InputError: bad paths, names or options, a tracker whose extra is missing.
    """
    trackers = parse_log_to(log_to)
    require_extras(trackers)  # a missing extra fails before any work
    if model is None and not config.checkpoints and model_factory is None:
        default_checkpoint()  # fail before any work when the bundled checkpoint is missing
    if config.run_id is not None:  # a bad run id fails before the embedded benchmark is written
        check_run_id(config.run_id)
    # bad task names or options (and, for checkpoints, precision / device) fail before anything
    # is written; an in-memory model brings its own device and precision
    check_before_work(config, model_options=model is None)
    if config.data_root is None and not config.dataset_roots:
        data_root = ensure_embedded_benchmark(config.results_dir)
        config = dataclasses.replace(config, data_root=data_root)
        if on_info is not None:
            on_info(f"no --data-root: evaluating the embedded procedural benchmark in "
                    f"{data_root}")
    if model is not None:
        outcome = run(config, model=model, model_name=model_name, on_warning=on_warning)
    else:
        outcome = run(config, model_factory=model_factory, on_warning=on_warning)
    doc = outcome.document
    if doc is not None and trackers:
        opened = open_trackers(trackers, base_dir=config.results_dir, name=doc.run_id,
                               config={"run_id": doc.run_id,
                                       **(config.to_json() if tracker_config is None
                                          else tracker_config)})
        try:
            log_run_document(doc, opened, results_dir=config.results_dir,
                             max_rows=tracker_rows,
                             files=tracker_files(doc) if tracker_files is not None else ())
        finally:
            for t in opened:
                t.close()
    return outcome
