"""pytest plugin: assert that a benchmark run did not regress against a baseline.

Registered under the ``pytest11`` entry point as ``remotesam_bench``, so installing the package
makes the fixture available in any test suite (or load it explicitly with
``-p remotesam.bench.pytest_plugin``). Usage::

    def test_no_regression(remotesam_gate):
        report = remotesam_gate("results/runs/latest.json", "ci/baseline.json")
        # fails the test with the gate's table when a metric regressed or is missing

    @pytest.mark.remotesam_gate(run="results", baseline="ci/baseline.json")
    def test_gate_via_marker():
        pass  # the marker runs the same check before the test body

``run`` is a run document path, a results folder (its newest run is used) or a
:class:`~remotesam.bench.results.RunDocument`; ``baseline`` a baseline path or a
:class:`~remotesam.bench.gate.Baseline`. The check is :func:`remotesam.bench.gate.compare`;
a regression (exit 1) or an error (exit 2: missing metric, bad baseline) fails the test with
the table in the message. Heavy imports happen only when the check runs.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from remotesam.bench.gate import Baseline, GateReport
    from remotesam.bench.results import RunDocument

__all__ = ["check_gate", "remotesam_gate"]

MARKER = "remotesam_gate"


def check_gate(run: str | Path | RunDocument, baseline: str | Path | Baseline, *,
               checkpoint: str | None = None, alpha: float | None = None,
               n_boot: int = 1000) -> GateReport:
    """Run the gate and call ``pytest.fail`` (with the table) unless it passes.

    Returns:
        The :class:`~remotesam.bench.gate.GateReport` when every metric passed.
    """
    from remotesam.bench.gate import Baseline, GateError, compare
    from remotesam.bench.results import RunDocument, latest_run

    try:
        if isinstance(run, RunDocument):
            doc = run
        else:
            p = Path(run)
            doc = latest_run(p) if p.is_dir() else RunDocument.load(p)
        if isinstance(baseline, Baseline):
            base, base_path = baseline, "<Baseline>"
        else:
            base, base_path = Baseline.load(baseline), str(baseline)
        report = compare(doc, base, checkpoint=checkpoint, alpha=alpha, n_boot=n_boot,
                         baseline_path=base_path)
    except (GateError, ValueError, FileNotFoundError) as e:
        pytest.fail(f"remotesam gate error: {e}", pytrace=False)
    if not report.passed:
        pytest.fail(f"{report.summary()}\n{report.to_text(show_all=False)}", pytrace=False)
    return report


@pytest.fixture
def remotesam_gate() -> Callable[..., Any]:
    """A callable ``(run, baseline, *, checkpoint=None, alpha=None, n_boot=1000) -> GateReport``
    that fails the test on a regression or gate error (see :func:`check_gate`)."""
    return check_gate


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(run, baseline, checkpoint=None, alpha=None): fail the test when the "
        "remotesam-bench run regressed against the baseline file",
    )


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_call(item: pytest.Item) -> None:
    marker = item.get_closest_marker(MARKER)
    if marker is None:
        return
    kwargs = dict(marker.kwargs)
    args = list(marker.args)
    run = kwargs.pop("run", args[0] if args else None)
    baseline = kwargs.pop("baseline", args[1] if len(args) > 1 else None)
    if run is None or baseline is None:
        pytest.fail(f"@pytest.mark.{MARKER} needs run= and baseline= (paths)", pytrace=False)
    check_gate(run, baseline, **kwargs)
