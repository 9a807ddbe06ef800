"""The gate's verdict (:func:`remotesam.bench.gate.compare`) and its renderings.

A :class:`GateReport` holds one :class:`GateRow` per gated metric and one
:class:`GroupContext` per task/dataset (samples evaluated, failed and selected, subset,
synthetic data), and renders itself as a terminal table (:meth:`GateReport.table`), plain text,
JSON, a Markdown step summary (:meth:`GateReport.to_markdown`), JUnit XML
(:meth:`GateReport.to_junit`) and GitHub Actions annotations
(:meth:`GateReport.github_annotations`).
"""

from __future__ import annotations

import io
import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from remotesam.bench.errors import EXIT_ERROR, EXIT_PASS, EXIT_REGRESSION
from remotesam.bench.gate.baseline import N_FAILED, SampleSet
from remotesam.bench.records.results import format_metric

__all__ = ["EXIT_ERROR", "EXIT_PASS", "EXIT_REGRESSION", "GateReport", "GateRow",
           "GroupContext", "error_annotation", "error_junit", "error_markdown", "fmt_value"]

_CHECKED = ("pass", "improved", "regressed")
_STATUSES = ("regressed", "missing", "not comparable", "unchecked", "improved", "pass")


@dataclass
class GateRow:
    """The verdict on one metric of one task/dataset.

    ``delta = current - baseline``; ``worse`` is the worsening (positive = worse,
    direction-aware); ``ci_low``/``ci_high`` the 95% interval of ``delta`` on the matched
    samples and ``p_value`` the paired test's p (NaN when none ran); ``n_paired`` the matched
    samples the values and the test are computed on (0 when reported values were compared).
    """

    label: str
    metric: str
    higher_is_better: bool
    unit: str
    baseline: float
    current: float
    delta: float
    worse: float
    allowed: float
    hard: float
    p_value: float
    n_paired: int
    status: str  # "pass" | "improved" | "regressed" | "missing" | "not comparable" | "unchecked"
    note: str = ""
    ci_low: float = math.nan
    ci_high: float = math.nan
    test: str = ""
    group: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {k: (v if not isinstance(v, float) or math.isfinite(v) else str(v))
                for k, v in self.__dict__.items()}

    @property
    def interval(self) -> str:
        if not (math.isfinite(self.ci_low) and math.isfinite(self.ci_high)):
            return ""
        low = fmt_value(self.ci_low, self.unit, True)
        high = fmt_value(self.ci_high, self.unit, True)
        return f"[{low}, {high}]"

    @property
    def p_text(self) -> str:
        return "" if math.isnan(self.p_value) else f"{self.p_value:.3f}"


@dataclass
class GroupContext:
    """What a task/dataset's numbers rest on: samples, subset, synthetic data, failures."""

    label: str
    run: SampleSet
    baseline: SampleSet | None
    matched_by: str  # "ids" | "counts" | "not recorded"
    comparable: bool
    n_common: int | None = None
    intersection: bool = False

    @property
    def flags(self) -> list[str]:
        out = []
        if self.run.subset:
            out.append("subset")
        if self.run.synthetic:
            out.append("synthetic")
        if self.run.n_failed:
            out.append(f"{self.run.n_failed} failed")
        return out

    @property
    def samples_text(self) -> str:
        r = self.run
        total = r.n_total if r.n_total else "?"
        return f"{r.n_evaluated}/{total}" + (f" +{r.n_failed} failed" if r.n_failed else "")

    def describe(self) -> str:
        r, b = self.run, self.baseline
        text = f"{self.label}: run evaluated {r.n_evaluated}"
        if r.n_failed:
            text += f", {r.n_failed} failed"
        text += f" of {r.n_total} samples" if r.n_total else " samples"
        flags = [f for f in self.flags if not f.endswith("failed")]
        if flags:
            text += f" ({', '.join(flags)})"
        if b is not None and b.n_evaluated is not None:
            text += f"; baseline evaluated {b.n_evaluated}"
            if b.n_failed:
                text += f", {b.n_failed} failed"
            if b.n_total:
                text += f" of {b.n_total}"
        text += f"; sample sets matched by {self.matched_by}"
        if self.matched_by != "not recorded":
            text += ": same" if self.comparable and not self.intersection else (
                f": {self.n_common} in common" if self.n_common is not None else ": differ")
        return text

    def to_dict(self) -> dict[str, Any]:
        r, b = self.run, self.baseline
        return {"label": self.label, "n_total": r.n_total, "n_evaluated": r.n_evaluated,
                "n_failed": r.n_failed, "subset": r.subset, "synthetic": bool(r.synthetic),
                "baseline_n_evaluated": None if b is None else b.n_evaluated,
                "baseline_n_failed": None if b is None else b.n_failed,
                "matched_by": self.matched_by, "comparable": self.comparable,
                "n_common": self.n_common, "intersection": self.intersection,
                "description": self.describe()}


@dataclass
class GateReport:
    """All rows of a comparison plus the decision."""

    rows: list[GateRow]
    run_id: str
    baseline_path: str = ""
    alpha: float = 0.05
    notes: list[str] = field(default_factory=list)
    groups: list[GroupContext] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(r.status == status for r in self.rows)

    @property
    def n_checked(self) -> int:
        """Metric rows (not ``n_failed``) that were actually compared."""
        return sum(r.status in _CHECKED and r.metric != N_FAILED for r in self.rows)

    @property
    def exit_code(self) -> int:
        """0 pass, 1 regression, 2 missing / not comparable / nothing checked (takes precedence)."""
        if self.count("missing") or self.count("not comparable") or not self.n_checked:
            return EXIT_ERROR
        if self.count("regressed"):
            return EXIT_REGRESSION
        return EXIT_PASS

    @property
    def passed(self) -> bool:
        return self.exit_code == EXIT_PASS

    @property
    def verdict(self) -> str:
        code = self.exit_code
        if code == EXIT_PASS:
            return "PASS"
        if code == EXIT_REGRESSION:
            return "REGRESSION"
        if self.count("missing"):
            return "ERROR"
        if self.count("not comparable"):
            return "NOT COMPARABLE"
        return "NOTHING CHECKED"

    @property
    def context_flags(self) -> list[str]:
        """Run-wide context: ``subset``, ``synthetic data``, ``N failed``."""
        out = []
        subset = [g for g in self.groups if g.run.subset]
        if subset:
            out.append(f"subset run ({len(subset)} of {len(self.groups)} task/datasets)")
        if any(g.run.synthetic for g in self.groups):
            out.append("synthetic data")
        failed = sum(g.run.n_failed or 0 for g in self.groups)
        if failed:
            out.append(f"{failed} failed sample(s)")
        return out

    def summary(self) -> str:
        parts = [f"{self.count(s)} {s}" for s in _STATUSES if self.count(s)]
        text = (f"gate {self.verdict}: run {self.run_id} vs baseline "
                f"{self.baseline_path or '-'}: " + ", ".join(parts or ["no rows"]))
        if not self.n_checked:
            text += " (nothing checked: no baseline metric could be compared)"
        if self.context_flags:
            text += f" [{'; '.join(self.context_flags)}]"
        return text

    def moved(self) -> list[GateRow]:
        """Rows that changed value or did not pass."""
        return [r for r in self.rows if r.status != "pass" or r.delta != 0]

    def problems(self) -> list[GateRow]:
        """Rows that make the gate fail or that could not be checked."""
        return [r for r in self.rows if r.status not in ("pass", "improved")]

    def table(self, show_all: bool = True) -> Any:
        """A ``rich.table.Table``; with ``show_all=False`` only rows that moved or did not pass."""
        from rich.table import Table

        style = {"regressed": "bold red", "missing": "bold magenta",
                 "not comparable": "bold magenta", "unchecked": "yellow", "improved": "green",
                 "pass": ""}
        t = Table(title=self.summary(), title_justify="left")
        columns: tuple[tuple[str, Literal["left", "right"]], ...] = (
            ("task/dataset", "left"), ("samples", "right"), ("metric", "left"),
            ("baseline", "right"), ("run", "right"), ("delta", "right"),
            ("95% CI of delta", "right"), ("allowed", "right"), ("p", "right"),
            ("status", "left"), ("note", "left"))
        for name, just in columns:
            t.add_column(name, justify=just)
        ctx = {g.label: g for g in self.groups}
        hidden = 0
        for r in self.rows:
            if not show_all and r.status == "pass" and r.delta == 0:
                hidden += 1
                continue
            arrow = "" if r.higher_is_better else " ↓"
            g = ctx.get(r.group)
            samples = g.samples_text + "".join(
                f" {f}" for f in g.flags if not f.endswith("failed")) if g else ""
            t.add_row(
                r.label,
                samples,
                r.metric + arrow,
                fmt_value(r.baseline, r.unit),
                fmt_value(r.current, r.unit),
                fmt_value(r.delta, r.unit, signed=True),
                r.interval,
                fmt_value(r.allowed, r.unit),
                r.p_text,
                r.status,
                r.note,
                style=style[r.status],
            )
        if hidden:
            t.caption = f"{hidden} unchanged metric(s) not shown"
        return t

    def to_text(self, show_all: bool = True, width: int = 200) -> str:
        """The table as plain text (no colour), e.g. for a pytest failure message."""
        from rich.console import Console

        buf = io.StringIO()
        console = Console(file=buf, width=width, no_color=True, color_system=None,
                          force_terminal=False)
        if show_all or self.moved():
            console.print(self.table(show_all))
        else:
            console.print(f"{self.summary()} (no metric moved)")
        return (buf.getvalue() + "".join(f"context: {g.describe()}\n" for g in self.groups)
                + "".join(f"note: {n}\n" for n in self.notes))

    def to_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "baseline": self.baseline_path, "alpha": self.alpha,
                "exit_code": self.exit_code, "verdict": self.verdict, "summary": self.summary(),
                "n_checked": self.n_checked, "context": self.context_flags,
                "notes": self.notes, "groups": [g.to_dict() for g in self.groups],
                "rows": [r.to_dict() for r in self.rows]}

    # ---------------------------------------------------------------- CI formats

    def to_markdown(self, show_all: bool = False) -> str:
        """A Markdown report (GitHub step summary): verdict, context, the regression table
        (metric, baseline, run, delta, interval, p) and every other row folded away."""
        icon = {0: "✅", 1: "❌", 2: "⚠️"}[self.exit_code]
        lines = [f"## {icon} remotesam-bench gate: {self.verdict}", "",
                 f"Run `{self.run_id}` against baseline `{self.baseline_path or '-'}`: "
                 + ", ".join(f"{self.count(s)} {s}" for s in _STATUSES if self.count(s)) + "."]
        if not self.n_checked:
            lines.append("Nothing was checked: no baseline metric could be compared.")
        if self.context_flags:
            lines += ["", "**Context:** " + "; ".join(self.context_flags) + "."]
        header = ("| task/dataset | samples | metric | baseline | run | delta | 95% CI of delta "
                  "| p | status | note |\n|---|---:|---|---:|---:|---:|---:|---:|---|---|")

        def md_rows(rows: Iterable[GateRow]) -> list[str]:
            ctx = {g.label: g for g in self.groups}
            out = []
            for r in rows:
                g = ctx.get(r.group)
                samples = (g.samples_text + "".join(
                    f" {f}" for f in g.flags if not f.endswith("failed"))) if g else ""
                cells = [r.label, samples, r.metric + ("" if r.higher_is_better else " ↓"),
                         fmt_value(r.baseline, r.unit), fmt_value(r.current, r.unit),
                         fmt_value(r.delta, r.unit, signed=True), r.interval, r.p_text,
                         f"**{r.status}**" if r.status not in ("pass", "improved") else r.status,
                         r.note]
                out.append("| " + " | ".join(_md_cell(c) for c in cells) + " |")
            return out

        problems = self.problems()
        if problems:
            lines += ["", "### Regressions and unchecked metrics", "", header, *md_rows(problems)]
        rest = [r for r in self.rows if r not in problems and (show_all or r in self.moved())]
        if rest:
            lines += ["", "<details><summary>Other metrics that moved "
                      f"({len(rest)})</summary>", "", header, *md_rows(rest), "", "</details>"]
        if self.groups:
            lines += ["", "<details><summary>Samples behind the numbers</summary>", ""]
            lines += [f"- {_md_cell(g.describe())}" for g in self.groups]
            lines += ["", "</details>"]
        for n in self.notes:
            lines += ["", f"> {_md_cell(n)}"]
        return "\n".join(lines) + "\n"

    def to_junit(self) -> str:
        """JUnit XML: one ``testcase`` per gated row; a regression is a ``failure``, a missing
        or not comparable metric an ``error``, an unchecked one ``skipped``."""
        suite = ET.Element("testsuite", name="remotesam-bench gate",
                           timestamp=datetime.now(UTC).isoformat(timespec="seconds"))
        props = ET.SubElement(suite, "properties")
        for k, v in (("run_id", self.run_id), ("baseline", self.baseline_path),
                     ("verdict", self.verdict), ("exit_code", str(self.exit_code)),
                     ("context", "; ".join(self.context_flags))):
            ET.SubElement(props, "property", name=k, value=v)
        counts = {"failures": 0, "errors": 0, "skipped": 0}
        for r in self.rows:
            case = ET.SubElement(suite, "testcase", name=r.metric, time="0",
                                 classname="remotesam_bench.gate." + r.label.replace("/", "."))
            msg = _row_message(r)
            if r.status == "regressed":
                ET.SubElement(case, "failure", message=msg, type="regression").text = msg
                counts["failures"] += 1
            elif r.status in ("missing", "not comparable"):
                ET.SubElement(case, "error", message=msg, type=r.status).text = msg
                counts["errors"] += 1
            elif r.status == "unchecked":
                ET.SubElement(case, "skipped", message=msg)
                counts["skipped"] += 1
            ET.SubElement(case, "system-out").text = msg
        if not self.n_checked:
            case = ET.SubElement(suite, "testcase", name="nothing checked", time="0",
                                 classname="remotesam_bench.gate")
            msg = "no baseline metric could be compared (all NaN, unchecked or not comparable)"
            ET.SubElement(case, "error", message=msg, type="nothing checked").text = msg
            counts["errors"] += 1
        n_cases = len(suite.findall("testcase"))
        suite.set("tests", str(n_cases))
        for kind, n in counts.items():
            suite.set(kind, str(n))
        ET.SubElement(suite, "system-out").text = "\n".join(
            [self.summary()] + [g.describe() for g in self.groups] + self.notes)
        root = ET.Element("testsuites", {"name": "remotesam-bench gate", "tests": str(n_cases),
                                         **{k: str(v) for k, v in counts.items()}})
        root.append(suite)
        ET.indent(root)
        return '<?xml version="1.0" encoding="utf-8"?>\n' + _xml_text(ET.tostring(
            root, encoding="unicode")) + "\n"

    def github_annotations(self) -> list[str]:
        """GitHub Actions workflow commands: ``::error`` per regressed, missing or not
        comparable row (and when nothing was checked), ``::warning`` per unchecked row and
        for subset or synthetic runs."""
        out = []
        for r in self.rows:
            level = ("error" if r.status in ("regressed", "missing", "not comparable")
                     else "warning" if r.status == "unchecked" else None)
            if level:
                title = f"remotesam-bench gate: {r.label} {r.metric} {r.status}"
                out.append(f"::{level} title={_gh_prop(title)}::{_gh_data(_row_message(r))}")
        if not self.n_checked:
            out.append(f"::error title={_gh_prop('remotesam-bench gate: nothing checked')}::"
                       + _gh_data(self.summary()))
        if self.context_flags:
            out.append(f"::warning title={_gh_prop('remotesam-bench gate: context')}::"
                       + _gh_data("the gated numbers come from a " + "; ".join(
                           self.context_flags)))
        return out


def _row_message(r: GateRow) -> str:
    parts = [f"{r.label} {r.metric}: {r.status}",
             f"baseline {fmt_value(r.baseline, r.unit)}", f"run {fmt_value(r.current, r.unit)}",
             f"delta {fmt_value(r.delta, r.unit, signed=True)}"]
    if r.interval:
        parts.append(f"95% CI {r.interval}")
    if r.p_text:
        parts.append(f"p = {r.p_text}" + (f" ({r.test})" if r.test else ""))
    if math.isfinite(r.allowed):
        parts.append(f"allowed {fmt_value(r.allowed, r.unit)}")
    text = ", ".join(p for p in parts if not p.endswith(" "))
    return text + (f"; {r.note}" if r.note else "")


#: What XML 1.0 cannot hold, even as a character reference: C0 controls but tab, newline and
#: carriage return; lone surrogates (not encodable as UTF-8); U+FFFE and U+FFFF.
_XML_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _xml_text(xml: str) -> str:
    """``xml`` with every character XML 1.0 forbids written as its Python escape (``\\x1b``),
    so that a name holding one stays readable and the document parses."""
    return _XML_FORBIDDEN.sub(lambda m: repr(m.group())[1:-1], xml)


def error_junit(message: str) -> str:
    """JUnit XML for a gate that could not run (bad baseline, no run): one erroring testcase."""
    root = ET.Element("testsuites", name="remotesam-bench gate", tests="1", failures="0",
                      errors="1", skipped="0")
    suite = ET.SubElement(root, "testsuite", name="remotesam-bench gate", tests="1",
                          failures="0", errors="1", skipped="0",
                          timestamp=datetime.now(UTC).isoformat(timespec="seconds"))
    case = ET.SubElement(suite, "testcase", name="gate could not run", time="0",
                         classname="remotesam_bench.gate")
    ET.SubElement(case, "error", message=message, type="input error").text = message
    ET.indent(root)
    return ('<?xml version="1.0" encoding="utf-8"?>\n'
            + _xml_text(ET.tostring(root, encoding="unicode")) + "\n")


def error_annotation(message: str) -> str:
    """A GitHub ``::error`` line for a gate that could not run."""
    return f"::error title={_gh_prop('remotesam-bench gate could not run')}::{_gh_data(message)}"


def error_markdown(message: str) -> str:
    """The step summary of a gate that could not run."""
    return f"## ⚠️ remotesam-bench gate: could not run\n\n{_md_cell(message)}\n"


def _gh_data(s: str) -> str:
    return s.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _gh_prop(s: str) -> str:
    return _gh_data(s).replace(":", "%3A").replace(",", "%2C")


def _md_cell(s: str) -> str:
    return str(s).replace("|", "\\|").replace("\n", " ")


def fmt_value(v: float, unit: str, signed: bool = False) -> str:
    """A value of the gate's tables (:func:`remotesam.bench.records.results.format_metric`;
    an undefined one is left blank)."""
    return format_metric(v, unit, signed=signed, nan="")
