"""The evaluator: a run of checkpoints x tasks x datasets, cached, resumable, sharded.

This package's face is the Python API of a run; the CLI and ``remotesam.bench.evaluate``
call it:

* :func:`evaluate` (models, checkpoints or the bundled tiny one, from Python) and
  :func:`evaluate_config` (a :class:`RunConfig`, as ``remotesam-bench run`` builds it): one
  orchestration (data root, trackers, run);
* :func:`run` / :func:`score_run` (the runner itself) and what a caller needs to build a run.

Modules, in the order a run goes through them: :mod:`~remotesam.bench.run.config`,
:mod:`~remotesam.bench.run.checkpoints`, :mod:`~remotesam.bench.run.embedded`,
:mod:`~remotesam.bench.run.jobs`, :mod:`~remotesam.bench.run.runner`,
:mod:`~remotesam.bench.run.distributed`, :mod:`~remotesam.bench.run.executor`,
:mod:`~remotesam.bench.run.scoring`, :mod:`~remotesam.bench.run.provenance`.
"""

from remotesam.bench.run.checkpoints import (
    CHECKPOINT_SUFFIXES,
    ModelFactory,
    default_checkpoint,
    default_model_factory,
    load_model_factory,
    resolve_checkpoints,
)
from remotesam.bench.run.config import RunConfig, check_run_id
from remotesam.bench.run.embedded import ensure_embedded_benchmark
from remotesam.bench.run.evaluate import (
    EvaluationError,
    check_evaluation,
    evaluate,
    evaluate_config,
)
from remotesam.bench.run.jobs import check_before_work, is_synthetic_data
from remotesam.bench.run.provenance import version_text
from remotesam.bench.run.runner import RunOutcome, SubsetWarning, run, score_run, subset_warnings

__all__ = [
    "CHECKPOINT_SUFFIXES",
    "EvaluationError",
    "ModelFactory",
    "RunConfig",
    "RunOutcome",
    "SubsetWarning",
    "check_before_work",
    "check_evaluation",
    "check_run_id",
    "default_checkpoint",
    "default_model_factory",
    "ensure_embedded_benchmark",
    "evaluate",
    "evaluate_config",
    "is_synthetic_data",
    "load_model_factory",
    "resolve_checkpoints",
    "run",
    "score_run",
    "subset_warnings",
    "version_text",
]
