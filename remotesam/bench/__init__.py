"""remotesam-bench: the benchmark harness (plugin contract, runner, store, reports, gate, CLI).

Python API::

    from remotesam.bench import evaluate
    doc = evaluate("checkpoint.pth", tasks="ref,det", data_root="/data/eo", limit=100)
"""

from remotesam.bench.run import EvaluationError, evaluate

__all__ = ["EvaluationError", "evaluate"]
