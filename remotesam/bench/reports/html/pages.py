"""Assembling the self-contained HTML report (see :mod:`remotesam.bench.reports.html`).

The page is rendered from the Jinja2 templates in ``templates/`` (autoescaping on: every
string from a run, a dataset or a plugin is escaped once, by the template engine). This
module gathers what the templates show; the charts are drawn with matplotlib as inline SVG.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2
import numpy as np
from markupsafe import Markup

from remotesam.bench.records.results import RunDocument, TaskResult, format_metric
from remotesam.bench.reports.export import LoadedResult, SampleRecord, load_result
from remotesam.bench.reports.html import data as rdata
from remotesam.bench.reports.html.painters import plugin_context
from remotesam.bench.reports.html.thumbs import ThumbnailCache
from remotesam.bench.reports.leaderboard import (
    FLAG_LETTERS,
    Leaderboard,
    build_leaderboard,
    is_subset,
    is_synthetic,
    result_titles,
)

__all__ = ["MAX_GALLERY_K", "MAX_THUMBNAILS", "ReportStats", "leaderboard_html",
           "leaderboard_page", "radar_svg", "render_report"]

#: Thumbnails in one report at most (gallery and comparison together); what is left out is
#: counted in the report. With thumbnails of at most 256 px (JPEG, ~5-15 kB each) this keeps a
#: report under about 8 MB whatever the number of samples.
MAX_THUMBNAILS = 300
#: ``--gallery-k`` is clipped to this.
MAX_GALLERY_K = 50
#: Rows of a per-class table shown at most.
MAX_TABLE_ROWS = 200


@dataclass
class _Entry:
    """One checkpoint's result on one (task, dataset, split), with its run and row label."""

    row: str
    run: RunDocument
    result: TaskResult
    loaded: LoadedResult | None = None
    error: str | None = None
    measure: rdata.Measure | None = None


@dataclass
class _Budget:
    left: int
    skipped: int = 0

    def take(self) -> bool:
        if self.left <= 0:
            self.skipped += 1
            return False
        self.left -= 1
        return True


@dataclass
class ReportStats:
    """What went into a report: thumbnails drawn / served from the cache / left out."""

    thumbnails: int = 0
    cache_hits: int = 0
    drawn: int = 0
    left_out: int = 0
    load_errors: list[str] = field(default_factory=list)


@lru_cache(maxsize=1)
def _templates() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(Path(__file__).with_name("templates")),
                             autoescape=True, trim_blocks=True, lstrip_blocks=True,
                             undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    env.globals["flag_letters"] = FLAG_LETTERS
    return env


def _render(template: str, **context: Any) -> str:
    return _templates().get_template(template).render(**context)


def _badges(res: TaskResult) -> dict[str, Any]:
    return {"synthetic": is_synthetic(res),
            "subset": (f"{res.n_evaluated + res.n_failed}/{res.n_total}" if is_subset(res)
                       else ""),
            "failed": res.n_failed}


def _num(v: Any, unit: str = "%") -> str:
    """A value as shown in tables: 2 decimals for percentages, 4 significant digits else."""
    if v is None:
        return "–"
    if not isinstance(v, (int, float)) or isinstance(v, bool):
        return str(v)
    if not math.isfinite(v):
        return "n/a"
    if isinstance(v, int):
        return str(v)
    return format_metric(v, unit, inf="n/a")


# ----------------------------------------------------------------------------- charts


def _svg(fig: Any) -> Markup:
    """A matplotlib figure as inline SVG: text kept as text, the same bytes on every run."""
    import matplotlib

    buf = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "remotesam-bench"}):
        fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    text = buf.getvalue()
    return Markup(text[text.index("<svg"):])


@dataclass
class _Line:
    """One line of a chart: ``xs``/``ys`` of equal length (non-finite points are skipped)."""

    name: str
    xs: Sequence[float]
    ys: Sequence[float]
    bold: bool = False
    markers: bool = True


@dataclass
class _Panel:
    """One chart of a figure; ``x_ticks`` replaces the numeric x ticks by (x, label) pairs."""

    title: str
    lines: Sequence[_Line]
    x_label: str = ""
    y_label: str = ""
    x_range: tuple[float, float] | None = None
    y_range: tuple[float, float] | None = None
    x_ticks: Sequence[tuple[float, str]] | None = None


def _charts_svg(panels: Sequence[_Panel], *, columns: int, size: tuple[float, float],
                shared: bool = False) -> Markup:
    """Line charts side by side in one matplotlib figure (``size``: one panel, in inches).

    ``shared``: the panels have the same axes (precision-recall curves); only the outer ones
    carry tick labels. One figure for many panels, without a layout engine: drawing a chart
    costs a few hundredths of a second.
    """
    from matplotlib.figure import Figure

    columns = max(1, min(columns, len(panels)))
    rows = math.ceil(len(panels) / columns)
    with _chart_style():
        fig = Figure(figsize=(size[0] * columns, size[1] * rows))
        axes = fig.subplots(rows, columns, squeeze=False, sharex=shared, sharey=shared).ravel()
        fig.subplots_adjust(wspace=0.12 if shared else 0.35, hspace=0.45 if shared else 0.75)
        for k, (ax, panel) in enumerate(zip(axes, panels)):
            for line in panel.lines:
                xy = np.array([(x, y) for x, y in zip(line.xs, line.ys)
                               if math.isfinite(x) and math.isfinite(y)]).reshape(-1, 2)
                ax.plot(xy[:, 0], xy[:, 1], linewidth=2.0 if line.bold else 1.2,
                        marker="o" if line.markers else None, markersize=3, label=line.name)
            ax.set_title(panel.title)
            if panel.x_range is not None:
                ax.set_xlim(*panel.x_range)
                ax.set_xticks(np.linspace(*panel.x_range, 3))
            if panel.y_range is not None:
                ax.set_ylim(*panel.y_range)
                ax.set_yticks(np.linspace(*panel.y_range, 3))
            if panel.x_ticks is not None:
                ax.set_xticks([t for t, _ in panel.x_ticks],
                              [label for _, label in panel.x_ticks], rotation=30, ha="right")
            if not shared or k + columns >= len(panels):  # no panel below this one
                ax.xaxis.set_tick_params(labelbottom=True)
                ax.set_xlabel(panel.x_label)
            if not shared or ax.get_subplotspec().is_first_col():
                ax.set_ylabel(panel.y_label)
        for ax in axes[len(panels):]:
            ax.set_axis_off()
        return _svg(fig)


def _chart_style() -> Any:
    import matplotlib

    return matplotlib.rc_context({"font.size": 8, "axes.titlesize": 9, "axes.labelsize": 8,
                                  "xtick.labelsize": 7, "ytick.labelsize": 7})


# ----------------------------------------------------------------------------- leaderboard


def _leaderboard_view(board: Leaderboard, table_id: str) -> dict[str, Any]:
    published = set(board.published_rows)
    rows = []
    for row in board.rows:
        cells: list[dict[str, Any] | None] = []
        for c in board.columns:
            cell = board.cells.get((row, c.label))
            if cell is None:
                cells.append(None)
                continue
            v = cell.value
            cells.append({
                "cls": ("best" if board.best.at[row, c.label] else
                        "second" if board.is_second(row, c.label) else ""),
                "v": v if math.isfinite(v) else "",
                "text": board.fmt(c, v),
                "ci": (None if cell.ci95 is None else
                       (board.fmt(c, cell.ci95[0]), board.fmt(c, cell.ci95[1]))),
                "title": cell.context() or (f"{cell.source}"
                                            + (f"; {cell.note}" if cell.note else "")),
                "flags": list(cell.flags)})
        rows.append({"name": row, "published": row in published, "cells": cells})
    columns = [{"label": c.label, "task": c.task_name,
                "dataset": c.dataset_name, "split": c.split,
                "metric": c.metric, "lower": not c.higher_is_better} for c in board.columns]
    return {"id": table_id, "columns": columns, "rows": rows, "notes": board.footnotes()}


def leaderboard_html(board: Leaderboard, table_id: str = "leaderboard") -> str:
    """A sortable ``<table class="sortable leaderboard">``: best bold, second underlined,
    context flags, 95% intervals; notes below."""
    macros: Any = _templates().get_template("macros.html.j2").module
    return str(macros.leaderboard(_leaderboard_view(board, table_id)))


def leaderboard_page(board: Leaderboard, title: str = "remotesam-bench leaderboard") -> str:
    """A standalone, offline HTML page holding the sortable leaderboard (``leaderboard
    --format html``)."""
    return _render("leaderboard_page.html.j2", title=title,
                   board=_leaderboard_view(board, "leaderboard"))


def _radar_view(runs: Sequence[RunDocument]) -> dict[str, Any]:
    from remotesam.bench.reports.radar import build_radar

    try:
        fig = build_radar(runs, published=True)
    except ValueError as e:
        return {"svg": None, "reason": str(e)}
    return {"svg": _svg(fig), "reason": ""}


def radar_svg(runs: Sequence[RunDocument]) -> str:
    """The radar chart as inline SVG (text kept as text), or a note why there is none."""
    view = _radar_view(runs)
    if view["svg"] is None:
        return str(Markup('<p class="notes">No radar chart: {}</p>').format(view["reason"]))
    return str(Markup('<div class="radar">{}</div>').format(view["svg"]))


# ----------------------------------------------------------------------------- tables


def _table_view(name: str, value: Any) -> dict[str, Any]:
    """A plugin's ``Scores.tables`` entry for the template: a list of row dicts, a dict of
    rows or scalars, or a matrix; anything else as text."""
    if _is_matrix(value):
        return _confusion_view(value["classes"], np.asarray(value["matrix"]),
                               f"{name} ({value.get('rows_are', 'rows')}: rows)")
    if isinstance(value, list) and value and all(isinstance(r, Mapping) for r in value):
        cols = list(dict.fromkeys(k for r in value for k in r))
        rows = [[(r.get(c) if isinstance(r.get(c), (int, float)) else "",
                  _num(r.get(c, ""), "")) for c in cols] for r in value[:MAX_TABLE_ROWS]]
        return {"kind": "rows", "name": name, "cols": [str(c) for c in cols], "rows": rows,
                "more": max(0, len(value) - MAX_TABLE_ROWS)}
    if isinstance(value, Mapping) and value:
        items = list(value.items())[:MAX_TABLE_ROWS]
        if all(isinstance(v, Mapping) for v in value.values()):
            cols = list(dict.fromkeys(k for v in value.values() for k in v))
            return {"kind": "nested", "name": name, "cols": [str(c) for c in cols],
                    "rows": [(str(k), [_num(v.get(c, ""), "") for c in cols])
                             for k, v in items]}
        return {"kind": "kv", "name": name,
                "rows": [(str(k), str(v)[:300] if isinstance(v, (list, dict)) else _num(v, ""))
                         for k, v in items]}
    if isinstance(value, list) and value and all(isinstance(r, list) for r in value):
        return {"kind": "grid", "name": name,
                "rows": [[_num(v, "") for v in r] for r in value[:MAX_TABLE_ROWS]]}
    return {"kind": "text", "name": name, "text": str(value)[:2000]}


def _is_matrix(value: Any) -> bool:
    """A ``{"classes": [K names], "matrix": K x K numbers}`` table (a confusion matrix)."""
    if not isinstance(value, Mapping):
        return False
    classes, mat = value.get("classes"), value.get("matrix")
    return (isinstance(classes, list) and isinstance(mat, list) and len(mat) == len(classes)
            and all(isinstance(r, list) and len(r) == len(classes) for r in mat))


def _confusion_view(classes: Sequence[str], mat: np.ndarray,
                    title: str = "confusion matrix (rows: ground truth, columns: prediction)",
                    ) -> dict[str, Any]:
    peak = max(int(mat.max()), 1)
    rows = []
    for i, c in enumerate(classes):
        cells = []
        for j in range(len(classes)):
            v = int(mat[i, j])
            colour = "26,127,55" if i == j else "179,38,30"
            cells.append((v, f"{colour},{v / peak:.2f}" if v else "",
                          f"{c} → {classes[j]}: {v}"))
        rows.append((str(c), cells))
    acc = np.trace(mat) / max(mat.sum(), 1) * 100
    return {"kind": "confusion", "title": title, "accuracy": f"{acc:.2f}",
            "classes": [str(c) for c in classes], "rows": rows}


def _curves_view(curves: Sequence[rdata.PRCurve]) -> dict[str, Any] | None:
    if not curves:
        return None
    first = curves[0]
    charts = [_charts_svg([_Panel("all classes, IoU 0.5", [
        _Line(f"{first.name} (AP50 {first.ap50:.1f}, {first.n_gt} gt)", first.recall.tolist(),
              first.precision.tolist(), bold=first.name == "all", markers=False)],
        x_label="recall", y_label="precision", x_range=(0, 1), y_range=(0, 1))],
        columns=1, size=(5.0, 3.0))]
    if len(curves) > 1:
        charts.append(_charts_svg([
            _Panel(f"{c.name}: AP50 {c.ap50:.1f} ({c.n_gt} gt)",
                   [_Line(c.name, c.recall.tolist(), c.precision.tolist(), markers=False)],
                   x_label="recall", y_label="precision", x_range=(0, 1), y_range=(0, 1))
            for c in curves[1:]], columns=4, size=(3.0, 2.2), shared=True))
    return {"kind": "curves", "charts": charts}


# ----------------------------------------------------------------------------- gallery


def _card(thumbs: ThumbnailCache, rec: SampleRecord, ctx: Mapping[str, Any], budget: _Budget,
          stats: ReportStats, value_text: str) -> dict[str, Any] | None:
    if not budget.take():
        return None
    th = thumbs.get(rec, ctx)
    stats.thumbnails += 1
    return {"uri": th.data_uri(), "sid": rec.sample.sample_id, "kind": th.kind,
            "wide": th.kind == "masks_net", "value": value_text, "lines": list(th.lines)}


def _gallery_view(entry: _Entry, k: int, seed: int, thumbs: ThumbnailCache, budget: _Budget,
                  stats: ReportStats) -> dict[str, Any] | None:
    loaded = entry.loaded
    if loaded is None or k <= 0:
        return None
    ctx = plugin_context(loaded.plugin, loaded.classes)
    m = entry.measure
    predicted = loaded.predicted
    worst: list[SampleRecord] = []
    if m is not None and m.values:
        sign = 1 if m.higher_is_better else -1
        ranked = sorted((r for r in predicted if r.sample.sample_id in m.values),
                        key=lambda r: (m.values[r.sample.sample_id] * sign, r.sample.sample_id))
        worst = ranked[:k]
    rest = [r for r in predicted if r not in worst]
    rng = np.random.default_rng(seed)
    pick = (sorted(rng.choice(len(rest), size=min(k, len(rest)), replace=False).tolist())
            if rest else [])
    random_recs = [rest[i] for i in pick]

    def value(r: SampleRecord) -> str:
        if m is None or r.sample.sample_id not in m.values:
            return ""
        return f"{m.name} = {m.values[r.sample.sample_id]:.3g}"

    failed = [r for r in loaded.records if r.prediction is None]
    view = {"measure": m.name if m is not None else "",
            "by_report": m is not None and m.source == "report",
            "worst": [_card(thumbs, r, ctx, budget, stats, value(r)) for r in worst],
            "random": [_card(thumbs, r, ctx, budget, stats, value(r)) for r in random_recs],
            "seed": seed, "n_failed": len(failed),
            "failed": [(r.sample.sample_id, str(r.error)[:300]) for r in failed[:20]]}
    return view if view["worst"] or view["random"] or view["failed"] else None


# ----------------------------------------------------------------------------- sections


def _metrics_view(res: TaskResult) -> list[dict[str, Any]]:
    rows = []
    for name, mv in sorted(res.metrics.items(), key=lambda kv: not kv[1].primary):
        rows.append({
            "name": name, "primary": mv.primary, "official": mv.official,
            "value": _num(mv.value, mv.unit) + ("%" if mv.unit == "%" and math.isfinite(mv.value)
                                                else ""),
            "ci": (f"[{_num(mv.ci95[0], mv.unit)}, {_num(mv.ci95[1], mv.unit)}]"
                   if mv.ci95 is not None else ""),
            "higher": mv.higher_is_better})
    return rows


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-")


def _task_view(key: tuple[str, str, str], entries: Sequence[_Entry], k: int, seed: int,
               thumbs: ThumbnailCache, budget: _Budget, stats: ReportStats) -> dict[str, Any]:
    task, ds, split = key
    views = []
    for e in entries:
        res = e.result
        details = [_table_view(n, v) for n, v in res.tables.items()]
        if e.loaded is not None:
            cm = None if any(_is_matrix(v) for v in res.tables.values()) else rdata.confusion(
                e.loaded)
            if cm is not None:
                details.append(_confusion_view(*cm))
            curves = _curves_view(rdata.pr_curves(e.loaded))
            if curves is not None:
                details.append(curves)
        views.append({"row": e.row, "badges": _badges(res), "run_id": e.run.run_id,
                      "n_evaluated": res.n_evaluated, "n_total": res.n_total,
                      "n_failed": res.n_failed, "metrics": _metrics_view(res), "error": e.error,
                      "details": details,
                      "gallery": _gallery_view(e, k, seed, thumbs, budget, stats)})
    tname, dname = result_titles(entries[0].result) if entries else (task, ds)
    return {"id": f"task-{_slug('-'.join(key))}", "task_name": tname,
            "dataset_name": dname, "task": task, "dataset": ds,
            "split": split, "entries": views}


def _find_checkpoint(spec: str, entries: Sequence[_Entry]) -> str:
    rows = list(dict.fromkeys(e.row for e in entries))
    names = {e.row: e.result.checkpoint for e in entries}
    for test in (lambda r: names[r].name == spec or r == spec,
                 lambda r: Path(names[r].name).name == spec,
                 lambda r: names[r].sha256.startswith(spec) and len(spec) >= 6,
                 lambda r: spec in names[r].name):
        hits = [r for r in rows if test(r)]
        if len(hits) == 1:
            return hits[0]
        if len(hits) > 1:
            raise ValueError(f"--compare {spec!r} matches several checkpoints: {hits}")
    raise ValueError(f"--compare {spec!r} matches no checkpoint of these runs; checkpoints: "
                     f"{rows}")


def _compare_view(a: str, b: str, groups: Mapping[tuple[str, str, str], list[_Entry]], k: int,
                  seed: int, thumbs: ThumbnailCache, budget: _Budget,
                  stats: ReportStats) -> dict[str, Any]:
    rows = []
    blocks = []
    rng = np.random.default_rng(seed)
    for entries in groups.values():
        ea = next((e for e in entries if e.row == a), None)
        eb = next((e for e in entries if e.row == b), None)
        if ea is None or eb is None or ea.measure is None or eb.measure is None:
            continue
        if ea.loaded is None or eb.loaded is None:  # a measure comes from loaded predictions
            continue
        ma, mb = ea.measure, eb.measure
        common = sorted(set(ma.values) & set(mb.values))
        if not common:
            continue
        d = np.array([mb.values[s] - ma.values[s] for s in common])
        boots = rng.integers(0, len(d), size=(2000, len(d)))
        lo, hi = np.percentile(d[boots].mean(axis=1), [2.5, 97.5])
        sign = 1 if ma.higher_is_better else -1
        label = " · ".join(result_titles(ea.result))
        rows.append({
            "label": label, "measure": ma.name, "n": len(common),
            "unpaired": len(set(ma.values) ^ set(mb.values)),
            "mean_a": f"{np.mean([ma.values[s] for s in common]):.3g}",
            "mean_b": f"{np.mean([mb.values[s] for s in common]):.3g}",
            "cls": "pos" if sign * d.mean() > 0 else "neg" if sign * d.mean() < 0 else "",
            "diff_v": d.mean(), "diff": f"{d.mean():+.3g}", "interval": f"[{lo:+.3g}, {hi:+.3g}]",
            "better": int((sign * d > 0).sum()), "worse": int((sign * d < 0).sum())})
        order = np.argsort(-np.abs(d), kind="stable")[:k]
        if not len(order) or not np.abs(d[order[0]]) > 0:
            continue
        ra = {r.sample.sample_id: r for r in ea.loaded.records}
        rb = {r.sample.sample_id: r for r in eb.loaded.records}
        ctx = plugin_context(ea.loaded.plugin, ea.loaded.classes)
        pairs = []
        for i in order:
            sid = common[i]
            if d[i] == 0:
                break
            if budget.left < 2:
                budget.skipped += 2
                continue
            pairs.append({"sid": sid, "delta": f"{d[i]:+.3g}",
                          "a": _card(thumbs, ra[sid], ctx, budget, stats,
                                     f"A: {ma.values[sid]:.3g}"),
                          "b": _card(thumbs, rb[sid], ctx, budget, stats,
                                     f"B: {mb.values[sid]:.3g}")})
        if pairs:
            blocks.append({"label": label, "pairs": pairs})
    return {"a": a, "b": b, "rows": rows, "blocks": blocks}


def _sweep_view(board: Leaderboard, row_names: Mapping[str, str],
                row_paths: Mapping[str, str]) -> dict[str, Any] | None:
    rows = [r for r in board.rows if r not in set(board.published_rows)]
    if len(rows) < 2:
        return None
    meta = {row_names[r]: rdata.checkpoint_metadata(row_paths.get(r, "")) for r in rows}
    ordered, unit = rdata.order_checkpoints([row_names[r] for r in rows], meta)
    by_name = {row_names[r]: r for r in rows}
    steps = [rdata.checkpoint_step(n, meta.get(n)) for n in ordered]
    xs = ([s[0] for s in steps if s is not None] if unit != "index"
          else list(range(len(ordered))))
    names = [Path(n).name for n in ordered]
    panels = []
    for c in board.columns:
        ys = [board.values.at[by_name[n], c.label] for n in ordered]
        if sum(1 for y in ys if math.isfinite(y)) < 2:
            continue
        cells = [board.cells.get((by_name[n], c.label)) for n in ordered]
        flags = sorted({f for cell in cells if cell is not None for f in cell.flags})
        title = f"{c.task}/{c.dataset} {c.metric}{'' if c.higher_is_better else ' ↓'}"
        if flags:
            title += " [" + ", ".join(flags) + "]"
        ticks = list(zip(xs, [n[:14] for n in names])) if unit == "index" else None
        panels.append(_Panel(title, [_Line(c.metric, xs, ys)],
                             x_label="checkpoint" if unit == "index" else unit,
                             y_label=c.unit or c.metric, x_ticks=ticks))
    if not panels:
        return None
    note = ("training step from the checkpoint names or metadata" if unit != "index" else
            "not every checkpoint name carries a training step: checkpoints with one in step "
            "order, then the others")
    return {"note": note, "svg": _charts_svg(panels, columns=3, size=(3.6, 2.4))}


# ----------------------------------------------------------------------------- page


def render_report(runs: Sequence[RunDocument], results_dir: str | Path, *, gallery_k: int = 4,
                  compare: Sequence[str] | None = None, registry: Any = None,
                  data_root: str | Path | None = None, seed: int = 0,
                  max_thumbnails: int = MAX_THUMBNAILS, cache: bool = True,
                  title: str | None = None) -> tuple[str, ReportStats]:
    """The report as one HTML string, and what went into it (see the package docstring)."""
    from remotesam.bench.api.registry import Registry
    from remotesam.bench.records.store import ResultsStore
    from remotesam.bench.reports.leaderboard import collect_results

    runs = list(runs)
    if gallery_k < 0:
        raise ValueError(f"--gallery-k {gallery_k}: expected 0 or more")
    k = min(gallery_k, MAX_GALLERY_K)
    board = build_leaderboard(runs, ci=True, published=True, metrics="primary")
    full = build_leaderboard(runs, ci=True, published=True)
    by_row, _ = collect_results(runs)
    owner = {id(r): run for run in runs for r in run.results}
    registry = registry or Registry()
    stats = ReportStats()
    groups: dict[tuple[str, str, str], list[_Entry]] = {}
    row_names: dict[str, str] = {}
    row_paths: dict[str, str] = {}
    try:
        store: Any = ResultsStore(results_dir, readonly=True)
    except Exception as e:  # no store: the report shows numbers without samples
        store = None
        stats.load_errors.append(str(e))
    try:
        for row, results in by_row.items():
            for key, res in results.items():
                entry = _Entry(row, owner[id(res)], res)
                row_names[row] = res.checkpoint.name
                row_paths[row] = res.checkpoint.path
                if store is not None:
                    try:
                        entry.loaded = load_result(entry.run, res, results_dir,
                                                   registry=registry, data_root=data_root,
                                                   store=store)
                        entry.measure = rdata.sample_measure(entry.loaded)
                    except Exception as e:  # a missing dataset costs its pictures, not the report
                        entry.error = f"{type(e).__name__}: {e}"
                        stats.load_errors.append(f"{row} {key}: {entry.error}")
                else:
                    entry.error = stats.load_errors[0]
                groups.setdefault(key, []).append(entry)
    finally:
        if store is not None:
            store.close()
    cache_dir = Path(results_dir) / "report_cache" / "thumbs" if cache else None
    thumbs = ThumbnailCache(cache_dir)
    budget = _Budget(max_thumbnails)
    tasks = [_task_view(key, entries, k, seed, thumbs, budget, stats)
             for key, entries in groups.items()]
    compared = None
    if compare:
        if len(compare) != 2:
            raise ValueError(f"--compare takes two checkpoints, got {len(compare)}")
        all_entries = [e for es in groups.values() for e in es]
        a, b = (_find_checkpoint(s, all_entries) for s in compare)
        compared = _compare_view(a, b, groups, max(k, 1), seed, thumbs, budget, stats)
    elif len(row_names) == 2:
        a, b = list(row_names)
        compared = _compare_view(a, b, groups, max(k, 1), seed, thumbs, budget, stats)
    sweep = _sweep_view(full, row_names, row_paths)
    stats.cache_hits, stats.drawn, stats.left_out = thumbs.hits, thumbs.drawn, budget.skipped
    nav = [("leaderboard-section", "leaderboard"), ("radar", "radar")]
    nav += [(t["id"], f"{t['task']}/{t['dataset']}") for t in tasks]
    if compared is not None:
        nav.append(("compare", "comparison"))
    if sweep is not None:
        nav.append(("sweep", "sweep"))
    used = board.flags_used()
    context: list[tuple[str, Any]] = [(f, None) for f in ("synthetic", "subset", "failed")
                                      if f in used]
    if budget.skipped:
        context.append(("left_out", (budget.skipped, max_thumbnails)))
    context += [("error", err) for err in stats.load_errors[:5]]
    text = _render("report.html.j2", title=title or "remotesam-bench report",
                   runs_text=", ".join(f"{r.run_id} ({r.created})" for r in runs), nav=nav,
                   context=context, board=_leaderboard_view(board, "leaderboard"),
                   full_board=_leaderboard_view(full, "leaderboard-all"),
                   radar=_radar_view(runs), tasks=tasks, compare=compared, sweep=sweep)
    return text, stats
