"""pytest plugin: assert that a benchmark run did not regress against a baseline.

Registered under the ``pytest11`` entry point as ``remotesam_bench``, so installing the package
makes the fixture available in any test suite (or load it explicitly with
``-p remotesam.bench.pytest_plugin``). A CI job can be one pytest step: the fixture runs a
limited evaluation itself and gates it::

    def test_no_regression(remotesam_gate):
        # evaluate the bundled checkpoint (or ckpt=...) on 8 samples of two tasks of the
        # embedded benchmark (or data_root=...), then gate against the baseline
        remotesam_gate(baseline="ci/baseline.json", tasks=["mlc", "mcc"], limit=8)

    def test_gate_an_existing_run(remotesam_gate):
        remotesam_gate("results/runs/latest.json", "ci/baseline.json")

    @pytest.mark.remotesam_gate(baseline="ci/baseline.json", tasks="mcc", limit=8)
    def test_gate_via_marker():
        pass  # the marker runs the same check before the test body

``run`` is a run document path, a results folder (its newest run is used), a
:class:`~remotesam.bench.records.results.RunDocument`, or None to evaluate with
:func:`remotesam.bench.run.evaluate.evaluate` (``tasks``, ``limit``, ``ckpt`` (checkpoint paths,
default the bundled one) or ``model`` (an in-memory ``RemoteSAM`` or network, e.g. in a
training test), ``data_root`` (default the embedded benchmark), ``device``...; results go to
``results_dir``, by default a folder shared by the tests of the session so the embedded
benchmark is written once and predictions are cached). ``baseline`` is a baseline path or a
:class:`~remotesam.bench.gate.Baseline`. When the evaluation is limited to some ``tasks``,
only those entries of the baseline are gated; a ``limit`` run against a baseline of more
samples needs ``intersection=True`` (else the gate says "not comparable"), or a baseline
written from a run with the same ``limit``. The check is :func:`remotesam.bench.gate.compare`;
a regression (exit 1) or an error (exit 2: missing or not comparable metric, nothing checked,
bad baseline) fails the test with the table in the message. ``junit=`` and ``summary=`` also
write the JUnit XML and Markdown reports. Heavy imports happen only when the check runs.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from remotesam.bench.gate import Baseline, GateReport
    from remotesam.bench.records.results import RunDocument

__all__ = ["check_gate", "remotesam_gate"]

MARKER = "remotesam_gate"


def _names(value: str | Sequence[str] | None) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [t.strip() for t in value.split(",") if t.strip()]
    return [str(t) for t in value]


def _evaluate(model: Any, *, tasks: str | Sequence[str] | None, limit: int | None,
              data_root: str | Path | None, results_dir: str | Path, device: str,
              batch_size: int, precision: str) -> RunDocument:
    """:func:`remotesam.bench.run.evaluate.evaluate`, failing the test (not erroring) when the run
    cannot start or reports errors."""
    from remotesam.bench.errors import BenchError
    from remotesam.bench.run import evaluate

    try:
        doc = evaluate(model, tasks=_names(tasks) or "all", data_root=data_root, limit=limit,
                       results_dir=results_dir, device=device, batch_size=batch_size,
                       precision=precision, progress=False)
    except BenchError as e:
        pytest.fail(f"remotesam-bench run failed: {e}", pytrace=False)
    if doc is None:
        pytest.fail("remotesam-bench run returned no run document (not rank 0)", pytrace=False)
    return doc


def check_gate(run: str | Path | RunDocument | None = None,
               baseline: str | Path | Baseline | None = None, *,
               checkpoint: str | None = None, alpha: float | None = None,
               n_perm: int = 10000, intersection: bool = False,
               tasks: str | Sequence[str] | None = None, limit: int | None = None,
               ckpt: str | Path | Sequence[str | Path] | None = None, model: Any = None,
               data_root: str | Path | None = None, results_dir: str | Path | None = None,
               device: str = "auto", batch_size: int = 8, precision: str = "fp32",
               junit: str | Path | None = None, summary: str | Path | None = None,
               n_boot: int | None = None) -> GateReport:
    """Gate a run (or evaluate one first) and call ``pytest.fail`` (with the table) unless it
    passes. See the module docstring for the arguments.

    Returns:
        The :class:`~remotesam.bench.gate.GateReport` when every gated metric passed.
    """
    from remotesam.bench.gate import Baseline, GateError, compare
    from remotesam.bench.records.results import RunDocument, latest_run

    if baseline is None:
        pytest.fail("remotesam gate: give baseline= (a baseline file written by "
                    "`remotesam-bench baseline`)", pytrace=False)
    tmp: tempfile.TemporaryDirectory[str] | None = None
    try:
        if run is None:
            if results_dir is None:
                tmp = tempfile.TemporaryDirectory(prefix="remotesam-bench-")
                results_dir = tmp.name
            if model is not None and ckpt is not None:
                pytest.fail("remotesam gate: give ckpt= (checkpoint paths) or model= (an "
                            "in-memory model), not both", pytrace=False)
            doc = _evaluate(model if model is not None else ckpt, tasks=tasks, limit=limit,
                            data_root=data_root, results_dir=results_dir, device=device,
                            batch_size=batch_size, precision=precision)
        elif isinstance(run, RunDocument):
            doc = run
        else:
            p = Path(run)
            doc = latest_run(p) if p.is_dir() else RunDocument.load(p)
        if isinstance(baseline, Baseline):
            base, base_path = baseline, "<Baseline>"
        else:
            base, base_path = Baseline.load(baseline), str(baseline)
        report = compare(doc, base, checkpoint=checkpoint, alpha=alpha, n_perm=n_perm,
                         n_boot=n_boot, baseline_path=base_path, intersection=intersection,
                         tasks=_names(tasks) or None)
    except (GateError, ValueError, FileNotFoundError) as e:
        pytest.fail(f"remotesam gate error: {e}", pytrace=False)
    finally:
        if tmp is not None:
            tmp.cleanup()
    for path, text in ((junit, report.to_junit), (summary, report.to_markdown)):
        if path is not None:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            Path(path).write_text(text(), encoding="utf-8")
    if not report.passed:
        pytest.fail(f"{report.summary()}\n{report.to_text(show_all=False)}", pytrace=False)
    return report


@pytest.fixture
def remotesam_gate(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Any]:
    """A callable ``(run=None, baseline=None, **options) -> GateReport`` that fails the test
    on a regression or gate error (see :func:`check_gate`). Evaluations (``run=None``) share
    one results folder per test session unless ``results_dir=`` is given."""
    shared: list[Path] = []

    def gate(run: Any = None, baseline: Any = None, **options: Any) -> GateReport:
        if run is None and options.get("results_dir") is None:
            if not shared:
                shared.append(tmp_path_factory.getbasetemp() / "remotesam-bench-results")
            options["results_dir"] = shared[0]
        return check_gate(run, baseline, **options)

    return gate


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(run=None, baseline, tasks=None, limit=None, ckpt=None, intersection=False, "
        "checkpoint=None, alpha=None): evaluate (when run is None) and fail the test when the "
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
    if baseline is None:
        pytest.fail(f"@pytest.mark.{MARKER} needs baseline= (a path) and run= or tasks=",
                    pytrace=False)
    if run is None and "tasks" not in kwargs and "limit" not in kwargs:
        pytest.fail(f"@pytest.mark.{MARKER} needs run= (a run document or results folder) or "
                    "tasks=/limit= to evaluate", pytrace=False)
    check_gate(run, baseline, **kwargs)
