"""Leaderboards: checkpoints x (task, dataset, metric) tables from run documents.

:func:`build_leaderboard` pivots the :class:`~remotesam.bench.results.TaskResult` records of one
or more run documents with pandas: one row per checkpoint (``"name (sha256[:8])"``), one column
per (task, dataset, split, metric), each task's primary metric first, then its other metrics in
the order the task reports them. When the same checkpoint was scored on the same (task,
dataset, split) in several runs, the newest run wins.

The best value of each column is marked (bold), direction-aware (``MAE`` is best when lowest),
over every row shown, published reference rows included. Optional:

* 95% bootstrap confidence intervals (``ci=True``): the run's ``ci95`` when the runner stored
  one, else computed from the stored per-sample values (:func:`remotesam.bench.stats.metric_ci`);
* published reference rows (``published=True``): RemoteSAM and the models it was compared with,
  from ``remotesam/data/published.json``, on the columns where the paper has a number
  (``"RemoteSAM [paper]"``). Values that appear only in the paper's Fig. 1 are marked with a
  dagger. A published percentage shown in a column whose unit is ``""`` is divided by 100.

Output formats: markdown, CSV (plain numbers, CI as extra ``ci_lo``/``ci_hi`` columns, no
marking), HTML and LaTeX.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import pandas as pd

from remotesam.bench.published import PublishedResult, PublishedTable, load_published
from remotesam.bench.results import MetricValue, RunDocument, TaskResult
from remotesam.bench.stats import metric_ci

__all__ = [
    "FORMATS",
    "Column",
    "Leaderboard",
    "build_leaderboard",
    "collect_results",
    "select_columns",
]

#: Output formats and their aliases.
FORMATS = {"md": "md", "markdown": "md", "csv": "csv", "html": "html", "latex": "latex",
           "tex": "latex"}

PUBLISHED_SUFFIX = " [paper]"
_DAGGER = "†"


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
    """One value in the table, with what is needed to display it."""

    value: float
    ci95: tuple[float, float] | None = None
    source: str = ""  # published source ("Table 5"); "" for measured values
    note: str = ""


@dataclass
class Leaderboard:
    """A built leaderboard. ``values`` is the numeric pivot (rows x column labels, NaN where
    missing); ``best`` the boolean mask of marked cells; ``cells`` the same cells with CI and
    source; ``published_rows`` the row labels that are reference rows."""

    columns: list[Column]
    values: pd.DataFrame
    best: pd.DataFrame
    cells: dict[tuple[str, str], Cell]
    published_rows: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    show_ci: bool = False

    @property
    def rows(self) -> list[str]:
        return list(self.values.index)

    # ----- formatting -------------------------------------------------------------------
    def _fmt(self, col: Column, v: float) -> str:
        if not math.isfinite(v):
            return "nan" if math.isnan(v) else str(v)
        return f"{v:.2f}" if col.unit == "%" else f"{v:.3f}"

    def _text_frame(self, bold: str, ci_fmt: str, dagger: str,
                    escape: Callable[[str], str]) -> pd.DataFrame:
        data: dict[str, list[str]] = {}
        for col in self.columns:
            out = []
            for row in self.rows:
                cell = self.cells.get((row, col.label))
                if cell is None:
                    out.append("")
                    continue
                s = self._fmt(col, cell.value)
                if cell.source and not cell.source.startswith("Table"):
                    s += dagger
                if bool(self.best.at[row, col.label]):
                    s = bold.format(s)
                if self.show_ci and cell.ci95 is not None:
                    s += ci_fmt.format(self._fmt(col, cell.ci95[0]), self._fmt(col, cell.ci95[1]))
                out.append(s)
            data[escape(col.label)] = out
        return pd.DataFrame({"checkpoint": [escape(r) for r in self.rows], **data})

    def _footnotes(self) -> list[str]:
        notes = list(self.notes)
        if any(c.source and not c.source.startswith("Table") for c in self.cells.values()):
            notes.append(f"{_DAGGER} printed only on the paper's Fig. 1 radar, in no table.")
        return notes

    def to_markdown(self) -> str:
        """GitHub markdown table; best values in ``**bold**``; footnotes below."""
        frame = self._text_frame("**{}**", " [{}, {}]", _DAGGER,
                                 lambda s: s.replace("|", "\\|"))
        text = frame.to_markdown(index=False,
                                 colalign=["left"] + ["right"] * (len(frame.columns) - 1))
        notes = self._footnotes()
        if notes:
            text += "\n\n" + "\n".join(f"- {n}" for n in notes)
        return text + "\n"

    def to_csv(self) -> str:
        """Plain numbers (no marking); with CIs, ``<label> ci_lo`` / ``<label> ci_hi`` columns."""
        data: dict[str, pd.Series | list[float]] = {}
        for col in self.columns:
            data[col.label] = self.values[col.label]
            if self.show_ci:
                lo, hi = [], []
                for row in self.rows:
                    cell = self.cells.get((row, col.label))
                    ci = cell.ci95 if cell is not None else None
                    lo.append(ci[0] if ci else math.nan)
                    hi.append(ci[1] if ci else math.nan)
                data[f"{col.label} ci_lo"] = lo
                data[f"{col.label} ci_hi"] = hi
        frame = pd.DataFrame(data, index=self.values.index)
        frame.index.name = "checkpoint"
        return frame.to_csv(float_format="%.6g", lineterminator="\n")

    def to_html(self) -> str:
        """An HTML ``<table class="remotesam-leaderboard">``; best in ``<strong>``."""
        frame = self._text_frame("<strong>{}</strong>", " <small>[{}, {}]</small>",
                                 f"<sup>{_DAGGER}</sup>", html.escape)
        text = frame.to_html(escape=False, index=False, classes="remotesam-leaderboard",
                             border=0)
        notes = self._footnotes()
        if notes:
            text += "\n<ul class=\"remotesam-leaderboard-notes\">\n" + "".join(
                f"<li>{html.escape(n)}</li>\n" for n in notes) + "</ul>"
        return text + "\n"

    def to_latex(self) -> str:
        """A booktabs ``tabular``; best in ``\\textbf``; special characters escaped."""
        frame = self._text_frame("\\textbf{{{}}}", " {{\\scriptsize [{}, {}]}}",
                                 "$^\\dagger$", _latex_escape)
        text = frame.to_latex(escape=False, index=False,
                              column_format="l" + "r" * (len(frame.columns) - 1))
        notes = self._footnotes()
        if notes:
            text += "".join(f"% {n}\n" for n in notes)
        return text

    def render(self, fmt: str) -> str:
        """Render in ``fmt`` (see :data:`FORMATS`). Raises ``ValueError`` on an unknown format."""
        kind = FORMATS.get(fmt.lower())
        if kind is None:
            raise ValueError(f"unknown leaderboard format {fmt!r}; choose one of {sorted(FORMATS)}")
        return {"md": self.to_markdown, "csv": self.to_csv, "html": self.to_html,
                "latex": self.to_latex}[kind]()


_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
                  "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}",
                  "^": r"\textasciicircum{}", "↓": r"$\downarrow$", "†": r"$^\dagger$"}


def _latex_escape(s: str) -> str:
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in s)


def short_names(names: Iterable[str]) -> dict[str, str]:
    """Shortest trailing path parts that still tell the given checkpoint names apart.

    ``["/runs/a/ckpt.pth", "/runs/b/ckpt.pth"]`` -> ``{..: "a/ckpt.pth", ..: "b/ckpt.pth"}``;
    names without a path separator are kept as they are.
    """
    uniq = list(dict.fromkeys(names))
    parts = {n: [p for p in n.replace("\\", "/").split("/") if p] or [n] for n in uniq}
    depth = {n: 1 for n in uniq}
    while True:
        shown = {n: "/".join(parts[n][-depth[n]:]) for n in uniq}
        groups: dict[str, list[str]] = {}
        for n, s in shown.items():
            groups.setdefault(s, []).append(n)
        grow = [n for g in groups.values() if len(g) > 1 for n in g
                if depth[n] < len(parts[n])]
        if not grow:
            return shown
        for n in grow:
            depth[n] += 1


def checkpoint_label(result: TaskResult, display_name: str | None = None) -> str:
    """Row label of a checkpoint: ``"name (sha256[:8])"`` (just the name without a hash)."""
    name = display_name or result.checkpoint.name
    sha = result.checkpoint.sha256
    return f"{name} ({sha[:8]})" if sha else name


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
            label = checkpoint_label(res, display[res.checkpoint.name])
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
    return Column(task=res.task, dataset=res.dataset, split=res.split, metric=name,
                  higher_is_better=mv.higher_is_better, primary=mv.primary, unit=mv.unit,
                  official=mv.official)


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
        ValueError: no results in ``runs``, or ``metrics``/``tasks`` name nothing present.
    """
    runs = list(runs)
    by_row, all_columns = collect_results(runs)
    if not by_row:
        raise ValueError("no task results in the given run documents; run `remotesam-bench run` "
                         "first (or check --results-dir / --run)")
    columns = select_columns(all_columns, metrics, tasks)
    if not columns:
        raise ValueError(f"no metric column left after selecting metrics={metrics!r}; "
                         f"metrics in these runs: {sorted({c.metric for c in all_columns})}")
    cells: dict[tuple[str, str], Cell] = {}
    notes: list[str] = []
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
            cells[(row, col.label)] = Cell(value=float(mv.value), ci95=interval)
        for res in results.values():
            if res.n_failed:
                notes.append(f"{row}: {res.n_failed} of {res.n_total} samples failed on "
                             f"{res.task}/{res.dataset}:{res.split}")
    rows = list(by_row)
    published_rows: list[str] = []
    if published:
        table = published_table or load_published()
        models = list(published_models) if published_models else table.model_names()
        unknown = sorted(set(models) - set(table.model_names()))
        if unknown:
            raise ValueError(f"unknown published model(s) {unknown}; known: "
                             f"{table.model_names()}")
        sources: dict[str, None] = {}
        for model in models:
            label = model + PUBLISHED_SUFFIX
            hit = False
            for col in columns:
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
        else:
            notes.append("No published numbers exist for the columns shown.")
    long = pd.DataFrame([(row, label, cell.value) for (row, label), cell in cells.items()],
                        columns=["checkpoint", "column", "value"])
    values = (long.pivot(index="checkpoint", columns="column", values="value")
              .reindex(index=rows, columns=[c.label for c in columns]).astype(float))
    values.index.name = "checkpoint"
    values.columns.name = None
    best = pd.DataFrame(False, index=values.index, columns=values.columns)
    for col in columns:
        series = values[col.label]
        finite = series[series.notna() & series.map(math.isfinite)]
        if finite.empty:
            continue
        target = finite.max() if col.higher_is_better else finite.min()
        best[col.label] = series == target
    return Leaderboard(columns=columns, values=values, best=best, cells=cells,
                       published_rows=published_rows, notes=notes, show_ci=ci)
