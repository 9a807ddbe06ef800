"""The regression gate: a run compared with a stored baseline, metric by metric.

:mod:`~remotesam.bench.gate.baseline` (the baseline file), :mod:`~remotesam.bench.gate.compare`
(matching samples, paired tests, tolerances) and :mod:`~remotesam.bench.gate.verdict` (the
report: text, Markdown, JSON, JUnit). This face exports what a caller needs; the gate reads
run documents (:mod:`remotesam.bench.records`) and never imports the evaluator.
"""

from remotesam.bench.gate.baseline import (
    BASELINE_SCHEMA,
    N_FAILED,
    Baseline,
    BaselineMetric,
    GateError,
    SampleSet,
    Tolerance,
    write_baseline,
)
from remotesam.bench.gate.compare import compare
from remotesam.bench.gate.verdict import (
    EXIT_ERROR,
    EXIT_PASS,
    EXIT_REGRESSION,
    GateReport,
    GateRow,
    GroupContext,
)

__all__ = [
    "BASELINE_SCHEMA",
    "EXIT_ERROR",
    "EXIT_PASS",
    "EXIT_REGRESSION",
    "N_FAILED",
    "Baseline",
    "BaselineMetric",
    "GateError",
    "GateReport",
    "GateRow",
    "GroupContext",
    "SampleSet",
    "Tolerance",
    "compare",
    "write_baseline",
]
