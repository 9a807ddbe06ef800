"""remotesam-bench: the benchmark harness (plugin contract, runner, store, reports, gate, CLI).

Python API::

    from remotesam.bench import evaluate
    doc = evaluate("checkpoint.pth", tasks="ref,det", data_root="/data/eo", limit=100)

The harness is cut into layers (docs/ARCHITECTURE.md): :mod:`remotesam.bench.api` (the plugin
contract), :mod:`~remotesam.bench.kit`, :mod:`~remotesam.bench.records`,
:mod:`~remotesam.bench.run` (the evaluator), :mod:`~remotesam.bench.reports`,
:mod:`~remotesam.bench.gate` and :mod:`~remotesam.bench.cli`. ``evaluate`` is imported when first
asked for, so that a plugin importing the contract does not load the evaluator.
"""

from typing import Any

__all__ = ["EvaluationError", "evaluate"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from remotesam.bench.run import EvaluationError, evaluate

        return {"EvaluationError": EvaluationError, "evaluate": evaluate}[name]
    raise AttributeError(f"module 'remotesam.bench' has no attribute {name!r}")
