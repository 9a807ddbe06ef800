"""Leaderboards: checkpoints x (task, dataset, metric) tables from run documents.

:func:`build_leaderboard` pivots the :class:`~remotesam.bench.records.results.TaskResult` records
of one or more run documents with pandas: one row per checkpoint (``"name (sha256[:8])"``), one
column per (task, dataset, split, metric), each task's primary metric first, then its other metrics
in the order the task reports them. When the same checkpoint was scored on the same (task,
dataset, split) in several runs, the newest run wins.

The best value of each column is marked (bold), direction-aware (``MAE`` is best when lowest),
over every row shown, published reference rows included. Optional:

* 95% bootstrap confidence intervals (``ci=True``): the run's ``ci95`` when the runner stored
  one, else computed from the stored per-sample values
  (:func:`remotesam.bench.records.stats.metric_ci`);
* published reference rows (``published=True``): RemoteSAM and the models it was compared with,
  from ``remotesam/data/published.json``, on the columns where the paper has a number
  (``"RemoteSAM [paper]"``). Values that appear only in the paper's Fig. 1 are marked with a
  dagger. A published percentage shown in a column whose unit is ``""`` is divided by 100.

Context travels with every number. A cell is flagged (and explained in the notes below the
table) when its result was computed on the synthetic embedded benchmark (``ˢ``: the procedural
data of :mod:`remotesam.synth`, not the real dataset), on a subset (``ᵖ``: ``--limit``, i.e.
``n_evaluated + n_failed < n_total``) or with failed samples (``ᶠ``). CSV carries the same as a
``<label> context`` column. Published reference rows are only placed in a column when a measured
result in it is on the real dataset, split and official protocol (official metric); a synthetic
or partial (subset or failed samples) number, or one measured with task/dataset options set
(``--task-opt``/``--dataset-opt``), is never marked best against a published one.

Output formats: markdown, CSV (plain numbers, CI as extra ``ci_lo``/``ci_hi`` columns, no
marking), HTML and LaTeX (a paper-ready ``table``: caption, label, task-grouped booktabs headers,
best in bold and second best underlined, ``--`` for missing values).
"""

from __future__ import annotations

import functools
import html
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from remotesam.bench.api.registry import Registry
from remotesam.bench.records.published import PublishedResult, PublishedTable, load_published
from remotesam.bench.records.results import (
    MetricValue,
    RunDocument,
    TaskResult,
    format_metric,
    short_names,
)
from remotesam.bench.records.stats import metric_ci
from remotesam.precision import drift_note

__all__ = [
    "FORMATS",
    "Cell",
    "Column",
    "Leaderboard",
    "build_leaderboard",
    "collect_results",
    "is_subset",
    "is_synthetic",
    "result_titles",
    "select_columns",
]

#: Output formats and their aliases.
FORMATS = {"md": "md", "markdown": "md", "csv": "csv", "html": "html", "latex": "latex",
           "tex": "latex"}

PUBLISHED_SUFFIX = " [paper]"
_DAGGER = "†"

#: Context markers (plain text, HTML/LaTeX render them as superscripts).
FLAG_MARKS = {"synthetic": "ˢ", "subset": "ᵖ", "failed": "ᶠ"}
FLAG_LETTERS = {"synthetic": "s", "subset": "p", "failed": "f"}


@functools.lru_cache(maxsize=1)
def _registry() -> Registry:
    return Registry()


def result_titles(result: TaskResult) -> tuple[str, str]:
    """``(task title, dataset title)`` of a result: the display names the plugin gave when the
    run was made (stored in the run document), else those of the installed plugin
    (:meth:`~remotesam.bench.api.registry.Registry.titles`), else the keys."""
    if result.task_title and result.dataset_title:
        return result.task_title, result.dataset_title
    task, ds = _registry().titles(result.task, result.dataset)
    return result.task_title or task, result.dataset_title or ds


def is_synthetic(result: TaskResult) -> bool:
    """Whether ``result`` was computed on the synthetic embedded benchmark."""
    return bool(getattr(result, "synthetic", False))


def is_subset(result: TaskResult) -> bool:
    """Whether ``result`` covers only part of its dataset (``--limit``):
    ``n_evaluated + n_failed < n_total``."""
    return result.n_evaluated + result.n_failed < result.n_total


@dataclass(frozen=True)
class Column:
    """One leaderboard column: a metric of a task on one dataset split."""

    task: str
    dataset: str
    split: str
    metric: str
    higher_is_better: bool = True
    primary: bool = False
    unit: str = "%"
    official: bool = True
    task_title: str = field(default="", compare=False)
    dataset_title: str = field(default="", compare=False)

    @property
    def task_name(self) -> str:
        """The task's display name (its ``title``; the key when none is known)."""
        return self.task_title or self.task

    @property
    def dataset_name(self) -> str:
        """The dataset's display name (its ``title``; the key when none is known)."""
        return self.dataset_title or self.dataset

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.task, self.dataset, self.split, self.metric)

    @property
    def label(self) -> str:
        """``"task/dataset metric"``; ``":split"`` added when the split is not ``test``;
        ``" ↓"`` when lower is better."""
        ds = self.dataset if self.split == "test" else f"{self.dataset}:{self.split}"
        arrow = "" if self.higher_is_better else " ↓"
        return f"{self.task}/{ds} {self.metric}{arrow}"


@dataclass
class Cell:
    """One value in the table, with what is needed to display it.

    Attributes:
        value: the metric value (NaN when undefined).
        ci95: 95% interval or None.
        source: published source (``"Table 5"``); ``""`` for measured values.
        note: the published record's caveat.
        synthetic: measured on the synthetic embedded benchmark.
        n_evaluated, n_total, n_failed: sample counts of the measured result (0 for published).
        custom_protocol: the run set task or dataset options (``--task-opt``/``--dataset-opt``)
            for this result, so it may not follow the official protocol.
    """

    value: float
    ci95: tuple[float, float] | None = None
    source: str = ""
    note: str = ""
    synthetic: bool = False
    n_evaluated: int = 0
    n_total: int = 0
    n_failed: int = 0
    custom_protocol: bool = False

    @property
    def published(self) -> bool:
        return bool(self.source)

    @property
    def subset(self) -> bool:
        return not self.published and self.n_evaluated + self.n_failed < self.n_total

    @property
    def partial(self) -> bool:
        """Scored on fewer samples than the dataset has (subset or failed samples)."""
        return not self.published and self.n_evaluated < self.n_total

    @property
    def flags(self) -> list[str]:
        """Context flags: ``"synthetic"``, ``"subset"``, ``"failed"`` (in that order)."""
        out = []
        if self.synthetic:
            out.append("synthetic")
        if self.subset:
            out.append("subset")
        if not self.published and self.n_failed:
            out.append("failed")
        return out

    def context(self) -> str:
        """One line of context, e.g. ``"synthetic; subset 12/48; 2 failed"`` (``""`` if none)."""
        parts = []
        if self.synthetic:
            parts.append("synthetic")
        if self.subset:
            parts.append(f"subset {self.n_evaluated + self.n_failed}/{self.n_total}")
        if not self.published and self.n_failed:
            parts.append(f"{self.n_failed} failed")
        return "; ".join(parts)


@dataclass
class Leaderboard:
    """A built leaderboard. ``values`` is the numeric pivot (rows x column labels, NaN where
    missing); ``best`` / ``second`` the boolean masks of the best and second-best cells (see the
    module docstring for which cells compete); ``cells`` the same cells with CI, source and
    context; ``published_rows`` the row labels that are reference rows."""

    columns: list[Column]
    values: pd.DataFrame
    best: pd.DataFrame
    cells: dict[tuple[str, str], Cell]
    published_rows: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    show_ci: bool = False
    second: pd.DataFrame | None = None

    @property
    def rows(self) -> list[str]:
        return list(self.values.index)

    def flags_used(self) -> list[str]:
        """The context flags that occur in some cell, in :data:`FLAG_MARKS` order."""
        seen = {f for c in self.cells.values() for f in c.flags}
        return [f for f in FLAG_MARKS if f in seen]

    def is_second(self, row: str, label: str) -> bool:
        return self.second is not None and bool(self.second.at[row, label])

    # ----- formatting -------------------------------------------------------------------
    def fmt(self, col: Column, v: float) -> str:
        """A value of column ``col`` as the tables show it."""
        return format_metric(v, col.unit, general=".3f")

    def _text_frame(self, bold: str, ci_fmt: str, dagger: str,
                    escape: Callable[[str], str], marks: Mapping[str, str] = FLAG_MARKS,
                    second: str = "{}", missing: str = "") -> pd.DataFrame:
        data: dict[str, list[str]] = {}
        for col in self.columns:
            out = []
            for row in self.rows:
                cell = self.cells.get((row, col.label))
                if cell is None:
                    out.append(missing)
                    continue
                s = self.fmt(col, cell.value)
                if not math.isfinite(cell.value):
                    s = missing or s
                if cell.source and not cell.source.startswith("Table"):
                    s += dagger
                if bool(self.best.at[row, col.label]):
                    s = bold.format(s)
                elif self.is_second(row, col.label):
                    s = second.format(s)
                s += "".join(marks[f] for f in cell.flags)
                if self.show_ci and cell.ci95 is not None:
                    s += ci_fmt.format(self.fmt(col, cell.ci95[0]), self.fmt(col, cell.ci95[1]))
                out.append(s)
            data[escape(col.label)] = out
        return pd.DataFrame({"checkpoint": [escape(r) for r in self.rows], **data})

    def footnotes(self) -> list[str]:
        notes = []
        used = self.flags_used()
        if "synthetic" in used:
            notes.append(f"{FLAG_MARKS['synthetic']} synthetic: measured on the procedural "
                         "embedded benchmark (remotesam.synth), not on the real dataset; not "
                         "comparable with published numbers.")
        if "subset" in used:
            notes.append(f"{FLAG_MARKS['subset']} subset: only part of the dataset was "
                         "evaluated (--limit); see the counts below.")
        if "failed" in used:
            notes.append(f"{FLAG_MARKS['failed']} some samples failed and are not scored; see "
                         "the counts below.")
        notes += list(self.notes)
        if any(c.source and not c.source.startswith("Table") for c in self.cells.values()):
            notes.append(f"{_DAGGER} printed only on the paper's Fig. 1 radar, in no table.")
        return notes

    def to_markdown(self) -> str:
        """GitHub markdown table; best values in ``**bold**``, context flags as superscript
        letters; footnotes below."""
        frame = self._text_frame("**{}**", " [{}, {}]", _DAGGER,
                                 lambda s: s.replace("|", "\\|"))
        text = frame.to_markdown(index=False,
                                 colalign=["left"] + ["right"] * (len(frame.columns) - 1))
        notes = self.footnotes()
        if notes:
            text += "\n\n" + "\n".join(f"- {n}" for n in notes)
        return text + "\n"

    def to_csv(self) -> str:
        """Plain numbers (no marking); with CIs, ``<label> ci_lo`` / ``<label> ci_hi`` columns;
        a ``<label> context`` column (``"synthetic; subset 12/48; 2 failed"``) for every column
        with a flagged cell."""
        data: dict[str, pd.Series | list[Any]] = {}
        for col in self.columns:
            data[col.label] = self.values[col.label]
            cells = [self.cells.get((row, col.label)) for row in self.rows]
            if self.show_ci:
                cis = [c.ci95 if c is not None else None for c in cells]
                data[f"{col.label} ci_lo"] = [ci[0] if ci else math.nan for ci in cis]
                data[f"{col.label} ci_hi"] = [ci[1] if ci else math.nan for ci in cis]
            if any(c is not None and c.flags for c in cells):
                data[f"{col.label} context"] = [c.context() if c is not None else ""
                                                for c in cells]
        frame = pd.DataFrame(data, index=self.values.index)
        frame.index.name = "checkpoint"
        return frame.to_csv(float_format="%.6g", lineterminator="\n")

    def to_html(self) -> str:
        """An HTML ``<table class="remotesam-leaderboard">``; best in ``<strong>``, second
        underlined, context flags as ``<sup>`` with a tooltip."""
        marks = {f: (f'<sup class="flag flag-{f}" title="{f}">{FLAG_LETTERS[f]}</sup>')
                 for f in FLAG_MARKS}
        frame = self._text_frame("<strong>{}</strong>", " <small>[{}, {}]</small>",
                                 f"<sup>{_DAGGER}</sup>", html.escape, marks=marks,
                                 second="<u>{}</u>")
        text = frame.to_html(escape=False, index=False, classes="remotesam-leaderboard",
                             border=0)
        notes = self.footnotes()
        if notes:
            text += "\n<ul class=\"remotesam-leaderboard-notes\">\n" + "".join(
                f"<li>{html.escape(n)}</li>\n" for n in notes) + "</ul>"
        return text + "\n"

    def to_latex(self, caption: str | None = None, label: str = "tab:remotesam-bench") -> str:
        """A paper-ready booktabs ``table`` (needs ``\\usepackage{booktabs}``).

        Columns are grouped by (task, dataset, split) under ``\\multicolumn`` headers with
        ``\\cmidrule``; best values are ``\\textbf``, second best ``\\underline``; missing or
        undefined values are ``--``; context flags are ``\\textsuperscript`` letters explained
        in the notes under the table; published rows follow a ``\\midrule``. The tabular is
        scaled down to ``\\linewidth`` when it is wider (never up; needs
        ``\\usepackage{graphicx}``), and the notes are a left-aligned ``\\parbox`` of the line
        width, so the table fits the text width at any number of tasks.
        """
        marks = {f: f"\\textsuperscript{{{FLAG_LETTERS[f]}}}" for f in FLAG_MARKS}
        frame = self._text_frame("\\textbf{{{}}}", " {{\\scriptsize [{}, {}]}}",
                                 "$^\\dagger$", _latex_escape, marks=marks,
                                 second="\\underline{{{}}}", missing="--")
        groups: list[tuple[tuple[str, str, str], int]] = []
        names: dict[tuple[str, str, str], tuple[str, str]] = {}
        for col in self.columns:
            g = (col.task, col.dataset, col.split)
            names.setdefault(g, (col.task_name, col.dataset_name))
            if groups and groups[-1][0] == g:
                groups[-1] = (g, groups[-1][1] + 1)
            else:
                groups.append((g, 1))
        n = len(self.columns)
        head1, rules, pos = ["Model"], [], 2
        for (task, ds, split), width in groups:
            tname, dname = names[(task, ds, split)]
            name = f"{tname} ({dname}"
            name += ")" if split == "test" else f", {split})"
            head1.append(f"\\multicolumn{{{width}}}{{c}}{{{_latex_escape(name)}}}")
            rules.append(f"\\cmidrule(lr){{{pos}-{pos + width - 1}}}")
            pos += width
        head2 = [""] + [_latex_escape(c.metric + ("" if c.higher_is_better else " ↓"))
                        for c in self.columns]
        lines = ["\\begin{table}[t]", "\\centering"]
        if caption is None:
            caption = ("Results of remotesam-bench. Best in bold, second best underlined"
                       + ("; $\\downarrow$: lower is better" if any(
                           not c.higher_is_better for c in self.columns) else "") + ".")
        else:
            caption = _latex_escape(caption)
        lines += [f"\\caption{{{caption}}}", f"\\label{{{label}}}"]
        # scaled down only: inside \resizebox, \width is the tabular's natural width
        lines.append("\\resizebox{\\ifdim\\width>\\linewidth\\linewidth\\else\\width\\fi}{!}{%")
        lines += [f"\\begin{{tabular}}{{l{'r' * n}}}", "\\toprule",
                  " & ".join(head1) + " \\\\", " ".join(rules), " & ".join(head2) + " \\\\",
                  "\\midrule"]
        published = set(self.published_rows)
        first_pub = True
        for i, row in enumerate(self.rows):
            if row in published and first_pub and i > 0:
                lines.append("\\midrule")
                first_pub = False
            values = [str(v) for v in frame.iloc[i].tolist()]
            lines.append(" & ".join(values) + " \\\\")
        lines += ["\\bottomrule", "\\end{tabular}}"]
        notes = self.footnotes()
        if notes:
            lines.append("\\par\\smallskip\\parbox{\\linewidth}{\\raggedright\\footnotesize")
            notes = [_latex_escape(t).replace("--", "-{}-") for t in notes]  # --limit, not "–limit"
            lines += [t + "\\\\" for t in notes[:-1]] + [notes[-1] + "}"]
        lines.append("\\end{table}")
        return "\n".join(lines) + "\n"

    def render(self, fmt: str, **options: Any) -> str:
        """Render in ``fmt`` (see :data:`FORMATS`); ``options`` go to the LaTeX writer
        (``caption``, ``label``). Raises ``ValueError`` on an unknown format."""
        kind = FORMATS.get(fmt.lower())
        if kind is None:
            raise ValueError(f"unknown leaderboard format {fmt!r}; choose one of {sorted(FORMATS)}")
        if kind == "latex":
            return self.to_latex(**options)
        return {"md": self.to_markdown, "csv": self.to_csv, "html": self.to_html}[kind]()


_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
                  "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}",
                  "^": r"\textasciicircum{}", "↓": r"$\downarrow$", "†": r"$^\dagger$",
                  "ˢ": r"\textsuperscript{s}", "ᵖ": r"\textsuperscript{p}",
                  "ᶠ": r"\textsuperscript{f}", "…": r"\ldots{}", "–": "--", "—": "---",
                  "≥": r"$\geq$", "≤": r"$\leq$", "×": r"$\times$"}


def _latex_escape(s: str) -> str:
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in s)


def checkpoint_label(result: TaskResult, display_name: str | None = None,
                     provenance: Mapping[str, Any] | None = None) -> str:
    """Row label of a model: ``"name (sha256[:8])"`` (just the name without a hash).

    The same weights loaded another way are another model: with the run's ``provenance``, a
    model factory other than the default loader and a precision other than fp32 are added
    (``"ckpt.pth (1a2b3c4d) [constant_foreground_model, bf16]"``), so such runs get rows of
    their own instead of replacing the default model's numbers.
    """
    from remotesam.bench.records.identity import DEFAULT_FACTORY_SPEC

    name = display_name or result.checkpoint.name
    sha = result.checkpoint.sha256
    label = f"{name} ({sha[:8]})" if sha else name
    prov = provenance or {}
    extra = []
    factory = prov.get("model_factory")
    if isinstance(factory, str) and factory and factory != DEFAULT_FACTORY_SPEC:
        extra.append(factory.rsplit(":", 1)[-1])
    precision = prov.get("precision")
    if isinstance(precision, str) and precision not in ("", "fp32"):
        extra.append(precision)
    return f"{label} [{', '.join(extra)}]" if extra else label


def row_precisions(runs: Iterable[RunDocument]) -> dict[str, str]:
    """Row label -> the precision its run recorded (``"fp32"`` when none)."""
    runs = list(runs)
    display = short_names(r.checkpoint.name for run in runs for r in run.results)
    out: dict[str, str] = {}
    for run in runs:
        p = run.provenance.get("precision")
        for res in run.results:
            label = checkpoint_label(res, display[res.checkpoint.name], run.provenance)
            out[label] = p if isinstance(p, str) and p else "fp32"
    return out


def collect_results(runs: Iterable[RunDocument],
                    ) -> tuple[dict[str, dict[tuple[str, str, str], TaskResult]], list[Column]]:
    """Newest result per (checkpoint, task, dataset, split), and every column seen.

    Returns ``(by_row, columns)``: ``by_row[row_label][(task, dataset, split)]`` is the
    TaskResult (later runs override earlier ones; row labels use the shortest trailing part of
    the checkpoint paths that tells them apart), ``columns`` every metric column in order of
    first appearance with each (task, dataset, split)'s primary metric first.
    """
    runs = list(runs)
    display = short_names(r.checkpoint.name for run in runs for r in run.results)
    by_row: dict[str, dict[tuple[str, str, str], TaskResult]] = {}
    col_order: dict[tuple[str, str, str], dict[str, Column]] = {}
    for run in runs:
        for res in run.results:
            label = checkpoint_label(res, display[res.checkpoint.name], run.provenance)
            by_row.setdefault(label, {})[(res.task, res.dataset, res.split)] = res
            group = col_order.setdefault((res.task, res.dataset, res.split), {})
            for name, mv in res.metrics.items():
                if name not in group:
                    group[name] = _column(res, name, mv)
    columns: list[Column] = []
    for group in col_order.values():
        cols = list(group.values())
        columns.extend(sorted(cols, key=lambda c: not c.primary))  # stable: primary first
    return by_row, columns


def _column(res: TaskResult, name: str, mv: MetricValue) -> Column:
    task_title, dataset_title = result_titles(res)
    return Column(task=res.task, dataset=res.dataset, split=res.split, metric=name,
                  higher_is_better=mv.higher_is_better, primary=mv.primary, unit=mv.unit,
                  official=mv.official, task_title=task_title, dataset_title=dataset_title)


def select_columns(columns: Sequence[Column], metrics: str | Sequence[str] = "all",
                   tasks: Sequence[str] | None = None) -> list[Column]:
    """Filter columns: ``metrics`` is ``"all"``, ``"primary"``, ``"official"`` or a list of
    metric names; ``tasks`` keeps only those task names.

    Raises:
        ValueError: a named metric or task matches no column (the message lists what exists).
    """
    cols = list(columns)
    if tasks:
        unknown = sorted(set(tasks) - {c.task for c in cols})
        if unknown:
            raise ValueError(f"no results for task(s) {unknown}; tasks in these runs: "
                             f"{sorted({c.task for c in cols})}")
        cols = [c for c in cols if c.task in set(tasks)]
    if isinstance(metrics, str):
        if metrics == "all":
            return cols
        if metrics == "primary":
            return [c for c in cols if c.primary]
        if metrics == "official":
            return [c for c in cols if c.official]
        metrics = [m.strip() for m in metrics.split(",") if m.strip()]
    wanted = list(metrics)
    unknown = sorted(set(wanted) - {c.metric for c in cols})
    if unknown:
        raise ValueError(f"no column has metric(s) {unknown}; metrics in these runs: "
                         f"{sorted({c.metric for c in cols})}")
    return [c for c in cols if c.metric in set(wanted)]


def _published_value(col: Column, rec: PublishedResult) -> float:
    if rec.unit == "%" and col.unit == "":
        return rec.value / 100.0
    return rec.value


def build_leaderboard(
    runs: Iterable[RunDocument],
    *,
    metrics: str | Sequence[str] = "all",
    tasks: Sequence[str] | None = None,
    ci: bool = False,
    published: bool = False,
    published_models: Sequence[str] | None = None,
    published_table: PublishedTable | None = None,
    n_boot: int = 1000,
    seed: int = 0,
) -> Leaderboard:
    """Pivot run documents into a :class:`Leaderboard`.

    Args:
        runs: run documents, oldest first (newer results of the same checkpoint win).
        metrics: ``"all"`` (default), ``"primary"``, ``"official"`` or metric names.
        tasks: keep only these tasks.
        ci: show 95% bootstrap intervals where per-sample values (or stored ``ci95``) exist.
        published: add reference rows from the paper for the columns shown.
        published_models: restrict reference rows to these model names.
        published_table: use this table instead of the packaged one (tests, custom numbers).
        n_boot, seed: bootstrap settings for intervals not stored in the run.

    Raises:
        ValueError: no results in ``runs``, ``metrics``/``tasks`` name nothing present, or
            ``n_boot < 1``.
    """
    if isinstance(n_boot, bool) or not isinstance(n_boot, int) or n_boot < 1:
        raise ValueError(f"--n-boot {n_boot!r}: expected an integer >= 1 (bootstrap resamples; "
                         "the minimum is 1, the default 1000)")
    runs = list(runs)
    by_row, all_columns = collect_results(runs)
    custom = {id(r) for run in runs for r in run.results if _custom_protocol(run, r)}
    if not by_row:
        raise ValueError("no task results in the given run documents; run `remotesam-bench run` "
                         "first (or check --results-dir / --run)")
    columns = select_columns(all_columns, metrics, tasks)
    if not columns:
        raise ValueError(f"no metric column left after selecting metrics={metrics!r}; "
                         f"metrics in these runs: {sorted({c.metric for c in all_columns})}")
    cells: dict[tuple[str, str], Cell] = {}
    notes: list[str] = []
    precisions = row_precisions(runs)
    for row, results in by_row.items():
        for col in columns:
            res = results.get((col.task, col.dataset, col.split))
            if res is None or col.metric not in res.metrics:
                continue
            mv = res.metrics[col.metric]
            interval = None
            if ci:
                interval = mv.ci95 if mv.ci95 is not None else metric_ci(
                    res, col.metric, n_boot=n_boot, seed=seed)
            cells[(row, col.label)] = Cell(value=float(mv.value), ci95=interval,
                                           synthetic=is_synthetic(res),
                                           n_evaluated=res.n_evaluated, n_total=res.n_total,
                                           n_failed=res.n_failed,
                                           custom_protocol=id(res) in custom)
        subsets = [f"{r.n_evaluated + r.n_failed} of {r.n_total} on "
                   f"{r.task}/{r.dataset}:{r.split}" for r in results.values() if is_subset(r)]
        if subsets:
            notes.append(f"{row}: subset (--limit), samples selected: " + ", ".join(subsets))
        if (drift := drift_note(precisions.get(row, "fp32"))) is not None:
            notes.append(f"{row}: {drift}")
        for res in results.values():
            where = f"{res.task}/{res.dataset}:{res.split}"
            if res.n_failed:
                notes.append(f"{row}: {res.n_failed} of {res.n_total} samples failed on "
                             f"{where}")
    rows = list(by_row)
    published_rows: list[str] = []
    if published:
        table = published_table or load_published()
        models = ([table.canonical_model(m) or m for m in published_models]
                  if published_models else table.model_names())
        unknown = sorted(set(models) - set(table.model_names()))
        if unknown:
            raise ValueError(f"unknown published model(s) {unknown}; known: "
                             f"{table.model_names()}")
        comparable = _comparable_columns(columns, cells)
        skipped = [c for c in columns if c not in comparable and table.lookup(
            c.task, c.dataset, c.split, c.metric, models)]
        sources: dict[str, None] = {}
        for model in models:
            label = model + PUBLISHED_SUFFIX
            hit = False
            for col in comparable:
                recs = table.lookup(col.task, col.dataset, col.split, col.metric, [model])
                if recs:
                    rec = recs[0]
                    cells[(label, col.label)] = Cell(value=_published_value(col, rec),
                                                     source=rec.source, note=rec.note)
                    sources.setdefault(rec.source, None)
                    hit = True
            if hit:
                published_rows.append(label)
        rows += published_rows
        if published_rows:
            notes.append("Rows marked [paper]: numbers published in the RemoteSAM paper "
                         f"(arXiv 2505.18022), {', '.join(sources)}; other data and protocols "
                         "than your runs may apply.")
        if skipped:
            notes.append("Published numbers left out for "
                         + ", ".join(sorted({f"{c.task}/{c.dataset}" for c in skipped}))
                         + ": no result there is on the real dataset with the official "
                         "protocol (synthetic data, a non-official metric, or task/dataset "
                         "options set).")
        if not published_rows and not skipped:
            notes.append("No published numbers exist for the columns shown.")
    long = pd.DataFrame([(row, label, cell.value) for (row, label), cell in cells.items()],
                        columns=["checkpoint", "column", "value"])
    values = (long.pivot(index="checkpoint", columns="column", values="value")
              .reindex(index=rows, columns=[c.label for c in columns]).astype(float))
    values.index.name = "checkpoint"
    values.columns.name = None
    best = pd.DataFrame(False, index=values.index, columns=values.columns)
    second = pd.DataFrame(False, index=values.index, columns=values.columns)
    for col in columns:
        ranked = _ranked(col, rows, cells)
        if ranked:
            top = ranked[0][1]
            for row, v in ranked:
                if v == top:
                    best.at[row, col.label] = True
            rest = [(row, v) for row, v in ranked if v != top]
            if rest:
                for row, v in rest:
                    if v == rest[0][1]:
                        second.at[row, col.label] = True
    return Leaderboard(columns=columns, values=values, best=best, cells=cells,
                       published_rows=published_rows, notes=notes, show_ci=ci, second=second)


def _comparable_columns(columns: Sequence[Column], cells: Mapping[tuple[str, str], Cell],
                        ) -> list[Column]:
    """Columns where published numbers may be shown: an official metric with at least one
    measured result on the real (not synthetic) dataset under the default (official) task and
    dataset options."""
    real = {label for (_, label), c in cells.items()
            if not c.published and not c.synthetic and not c.custom_protocol}
    return [c for c in columns if c.official and c.label in real]


def _custom_protocol(run: RunDocument, res: TaskResult) -> bool:
    """Whether ``run`` passed task or dataset options for ``res`` (a possible deviation)."""
    config = run.provenance.get("config", {}) if isinstance(run.provenance, dict) else {}
    task_opts = (config.get("task_options") or {}).get(res.task)
    ds_opts = (config.get("dataset_options") or {}).get(f"{res.task}.{res.dataset}")
    return bool(task_opts) or bool(ds_opts)


def _ranked(col: Column, rows: Sequence[str], cells: Mapping[tuple[str, str], Cell],
            ) -> list[tuple[str, float]]:
    """``[(row, value)]`` of the cells competing for best/second in ``col``, best first.

    In a column holding a published number, synthetic and partial (subset or failed samples)
    results do not compete: they were not measured like the published one.
    """
    present = [(r, cells[(r, col.label)]) for r in rows if (r, col.label) in cells]
    has_published = any(c.published for _, c in present)
    cands = [(r, c.value) for r, c in present if math.isfinite(c.value)
             and not (has_published and (c.synthetic or c.partial or c.custom_protocol))]
    return sorted(cands, key=lambda rv: -rv[1] if col.higher_is_better else rv[1])
