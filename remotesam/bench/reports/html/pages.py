"""Assembling the self-contained HTML report (see :mod:`remotesam.bench.reports.html`)."""

from __future__ import annotations

import html
import io
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from remotesam.bench.records.results import RunDocument, TaskResult, format_metric
from remotesam.bench.reports.export import LoadedResult, SampleRecord, load_result
from remotesam.bench.reports.html import data as rdata
from remotesam.bench.reports.html.painters import plugin_context
from remotesam.bench.reports.html.svg import Series, line_chart
from remotesam.bench.reports.html.thumbs import ThumbnailCache
from remotesam.bench.reports.leaderboard import (
    FLAG_LETTERS,
    Leaderboard,
    build_leaderboard,
    dataset_display_name,
    is_subset,
    is_synthetic,
    task_display_name,
)

__all__ = ["MAX_GALLERY_K", "MAX_THUMBNAILS", "ReportStats", "leaderboard_html",
           "leaderboard_page", "radar_svg", "render_report"]

esc = html.escape

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


_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#222;
  background:#fafafa}
header{background:#1f3b57;color:#fff;padding:14px 24px}header h1{margin:0;font-size:20px}
header p{margin:4px 0 0;opacity:.85;font-size:12px}
nav{position:sticky;top:0;background:#fff;border-bottom:1px solid #ddd;padding:6px 24px;z-index:2}
nav a{margin-right:14px;color:#1f3b57;text-decoration:none;font-size:13px}
main{padding:8px 24px 40px}main p,main li{overflow-wrap:anywhere}
table.kv td{white-space:normal;text-align:left;max-width:60em}section{margin:22px 0}
h2{border-bottom:2px solid #1f3b57;padding-bottom:3px}
h3{margin:18px 0 6px}table{border-collapse:collapse;font-size:12.5px;background:#fff}
th,td{border:1px solid #ddd;padding:3px 7px;text-align:right;white-space:nowrap}
th:first-child,td:first-child{text-align:left}th{background:#eef2f6}
table.sortable th{cursor:pointer;user-select:none}
table.sortable th[data-dir=asc]::after{content:" \\25B2"}
table.sortable th[data-dir=desc]::after{content:" \\25BC"}
td.best{font-weight:700;background:#e7f5e9}td.second{text-decoration:underline}
tr.published td{color:#555;font-style:italic}
sup.flag{font-size:9px;color:#b5651d;margin-left:1px;font-weight:700}small.ci{color:#777}
.scroll{overflow-x:auto;max-width:100%}.notes{font-size:12px;color:#555}
.badge{display:inline-block;font-size:11px;padding:1px 6px;border-radius:8px;margin-left:6px;
  background:#eee}
.badge.synthetic{background:#fde8cf}.badge.subset{background:#e5e0fb}
.badge.failed{background:#fbd9d9}
.gallery{display:flex;flex-wrap:wrap;gap:10px}
.card{background:#fff;border:1px solid #ddd;border-radius:4px;padding:6px;margin:0;width:270px}
.card.wide{width:540px}.card img{max-width:100%;display:block;margin:auto}
.card figcaption{font-size:11.5px;margin-top:4px;word-break:break-word}
.card .sid{font-family:monospace;font-weight:600}
.pair{display:flex;gap:4px}.pair div{flex:1;font-size:11px;text-align:center}
.charts{display:flex;flex-wrap:wrap;gap:12px}svg.chart text{font-size:10px;fill:#333}
svg.chart .ct{font-size:11.5px;font-weight:600}
.cm td{min-width:18px;text-align:center;padding:2px}.cm th{font-size:10px;writing-mode:vertical-rl}
.cm th:first-child,.cm td:first-child{writing-mode:horizontal-tb}
details{margin:6px 0}summary{cursor:pointer;font-weight:600}.radar svg{max-width:760px;height:auto}
.err{color:#a40000}.pos{color:#1a7f37}.neg{color:#b3261e}
"""

_JS = """
document.querySelectorAll('table.sortable').forEach(function(t){
  t.querySelectorAll('thead th').forEach(function(th,i){
    th.addEventListener('click',function(){
      var tb=t.tBodies[0],rows=Array.prototype.slice.call(tb.rows),asc=th.dataset.dir!=='asc';
      t.querySelectorAll('thead th').forEach(function(h){delete h.dataset.dir;});
      th.dataset.dir=asc?'asc':'desc';
      rows.sort(function(a,b){
        var x=a.cells[i].dataset.v,y=b.cells[i].dataset.v,nx=parseFloat(x),ny=parseFloat(y);
        if(isNaN(nx)&&isNaN(ny)){
          var c=(x||a.cells[i].textContent).localeCompare(y||b.cells[i].textContent);
          return asc?c:-c;}
        if(isNaN(nx))return 1; if(isNaN(ny))return -1;
        return asc?nx-ny:ny-nx;});
      rows.forEach(function(r){tb.appendChild(r);});
    });
  });
});
"""


def _flags_html(flags: Iterable[str]) -> str:
    return "".join(f'<sup class="flag flag-{f}" title="{f}">{FLAG_LETTERS[f]}</sup>'
                   for f in flags)


def _badges(res: TaskResult) -> str:
    out = []
    if is_synthetic(res):
        out.append('<span class="badge synthetic" title="procedural embedded benchmark, not '
                   'the real dataset">synthetic data</span>')
    if is_subset(res):
        out.append(f'<span class="badge subset" title="--limit">subset '
                   f'{res.n_evaluated + res.n_failed}/{res.n_total}</span>')
    if res.n_failed:
        out.append(f'<span class="badge failed">{res.n_failed} failed</span>')
    return "".join(out)


def _num(v: Any, unit: str = "%") -> str:
    if v is None:
        return "–"
    if not isinstance(v, (int, float)) or isinstance(v, bool):
        return esc(str(v))
    if isinstance(v, int) and math.isfinite(v):
        return str(v)
    return format_metric(v, unit, inf="n/a")


def _cell(v: Any) -> str:
    """One key-value table cell: a number formatted, a list or mapping as text (300 chars)."""
    return _num(v, "") if not isinstance(v, (list, dict)) else esc(str(v))[:300]


# ----------------------------------------------------------------------------- leaderboard


def leaderboard_html(board: Leaderboard, table_id: str = "leaderboard") -> str:
    """A sortable ``<table class="sortable leaderboard">``: best bold, second underlined,
    context flags, 95% intervals; notes below."""
    head = "".join(f"<th title=\"{esc(c.label)}\">{esc(task_display_name(c.task))}<br>"
                   f"{esc(dataset_display_name(c.dataset))}"
                   f"{'' if c.split == 'test' else ' (' + esc(c.split) + ')'}<br>"
                   f"{esc(c.metric)}{'' if c.higher_is_better else ' ↓'}</th>"
                   for c in board.columns)
    body = []
    published = set(board.published_rows)
    for row in board.rows:
        tds = [f'<td data-v="{esc(row)}">{esc(row)}</td>']
        for c in board.columns:
            cell = board.cells.get((row, c.label))
            if cell is None:
                tds.append('<td data-v="">–</td>')
                continue
            cls = ("best" if board.best.at[row, c.label] else
                   "second" if board.is_second(row, c.label) else "")
            v = cell.value
            text = board.fmt(c, v)
            if cell.ci95 is not None:
                text += (f' <small class="ci">[{board.fmt(c, cell.ci95[0])}, '
                         f'{board.fmt(c, cell.ci95[1])}]</small>')
            title = cell.context() or (f"{cell.source}" + (f"; {cell.note}" if cell.note else ""))
            tds.append(f'<td class="{cls}" data-v="{v if math.isfinite(v) else ""}" '
                       f'title="{esc(title)}">{text}{_flags_html(cell.flags)}</td>')
        body.append(f'<tr class="{"published" if row in published else ""}">{"".join(tds)}</tr>')
    notes = board._footnotes()
    return (f'<div class="scroll"><table class="sortable leaderboard" id="{table_id}"><thead>'
            f'<tr><th>checkpoint</th>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'
            f'</div><ul class="notes">{"".join(f"<li>{esc(n)}</li>" for n in notes)}</ul>')


def leaderboard_page(board: Leaderboard, title: str = "remotesam-bench leaderboard") -> str:
    """A standalone, offline HTML page holding the sortable leaderboard (``leaderboard
    --format html``)."""
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f'<link rel="icon" href="data:,"><title>{esc(title)}</title><style>{_CSS}</style>'
            f"</head><body><main><h2>{esc(title)}</h2>{leaderboard_html(board)}</main>"
            f"<script>{_JS}</script></body></html>\n")


def radar_svg(runs: Sequence[RunDocument]) -> str:
    """The radar chart as inline SVG (text kept as text), or a note why there is none."""
    import matplotlib

    from remotesam.bench.reports.radar import build_radar

    try:
        fig = build_radar(runs, published=True)
    except ValueError as e:
        return f'<p class="notes">No radar chart: {esc(str(e))}</p>'
    buf = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "remotesam-bench"}):
        fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    text = buf.getvalue()
    text = text[text.index("<svg"):]
    return f'<div class="radar">{text}</div>'


# ----------------------------------------------------------------------------- tables


def _table_html(name: str, value: Any) -> str:
    """A plugin's ``Scores.tables`` entry as HTML: a list of row dicts, a dict of rows or
    scalars, or a matrix; anything else as text."""
    title = f"<h4>{esc(name)}</h4>"
    if _is_matrix(value):
        return _confusion_html(value["classes"], np.asarray(value["matrix"]),
                               f"{name} ({value.get('rows_are', 'rows')}: rows)")
    if isinstance(value, list) and value and all(isinstance(r, Mapping) for r in value):
        cols = list(dict.fromkeys(k for r in value for k in r))
        rows = "".join("<tr>" + "".join(
            f'<td data-v="{r.get(c) if isinstance(r.get(c), (int, float)) else ""}">'
            f"{_num(r.get(c, ''), '')}</td>" for c in cols) + "</tr>"
            for r in value[:MAX_TABLE_ROWS])
        more = (f'<p class="notes">{len(value) - MAX_TABLE_ROWS} more rows not shown</p>'
                if len(value) > MAX_TABLE_ROWS else "")
        return (f'{title}<div class="scroll"><table class="sortable"><thead><tr>'
                + "".join(f"<th>{esc(str(c))}</th>" for c in cols)
                + f"</tr></thead><tbody>{rows}</tbody></table></div>{more}")
    if isinstance(value, Mapping) and value:
        if all(isinstance(v, Mapping) for v in value.values()):
            cols = list(dict.fromkeys(k for v in value.values() for k in v))
            rows = "".join(f"<tr><td>{esc(str(k))}</td>" + "".join(
                f"<td>{_num(v.get(c, ''), '')}</td>" for c in cols) + "</tr>"
                for k, v in list(value.items())[:MAX_TABLE_ROWS])
            return (f'{title}<div class="scroll"><table><thead><tr><th></th>'
                    + "".join(f"<th>{esc(str(c))}</th>" for c in cols)
                    + f"</tr></thead><tbody>{rows}</tbody></table></div>")
        rows = "".join(
            f"<tr><td>{esc(str(k))}</td><td>{_cell(v)}</td></tr>"
            for k, v in list(value.items())[:MAX_TABLE_ROWS]
        )
        return f'{title}<table class="kv"><tbody>{rows}</tbody></table>'
    if isinstance(value, list) and value and all(isinstance(r, list) for r in value):
        rows = "".join("<tr>" + "".join(f"<td>{_num(v, '')}</td>" for v in r) + "</tr>"
                       for r in value[:MAX_TABLE_ROWS])
        return f"{title}<table><tbody>{rows}</tbody></table>"
    return f"{title}<p>{esc(str(value))[:2000]}</p>"


def _is_matrix(value: Any) -> bool:
    """A ``{"classes": [K names], "matrix": K x K numbers}`` table (a confusion matrix)."""
    if not isinstance(value, Mapping):
        return False
    classes, mat = value.get("classes"), value.get("matrix")
    return (isinstance(classes, list) and isinstance(mat, list) and len(mat) == len(classes)
            and all(isinstance(r, list) and len(r) == len(classes) for r in mat))


def _confusion_html(classes: Sequence[str], mat: np.ndarray,
                    title: str = "confusion matrix (rows: ground truth, columns: prediction)",
                    ) -> str:
    peak = max(int(mat.max()), 1)
    head = "".join(f"<th>{esc(c)}</th>" for c in classes)
    rows = []
    for i, c in enumerate(classes):
        tds = []
        for j in range(len(classes)):
            v = int(mat[i, j])
            alpha = v / peak
            colour = "26,127,55" if i == j else "179,38,30"
            style = f' style="background:rgba({colour},{alpha:.2f})"' if v else ""
            tds.append(f'<td{style} title="{esc(c)} → {esc(classes[j])}: {v}">{v or ""}</td>')
        rows.append(f"<tr><td>{esc(c)}</td>{''.join(tds)}</tr>")
    acc = np.trace(mat) / max(mat.sum(), 1) * 100
    return (f'<h4>{esc(title)}; diagonal {acc:.2f}%</h4>'
            f'<div class="scroll"><table class="cm"><thead><tr><th></th>{head}'
            f'</tr></thead><tbody>{"".join(rows)}</tbody></table></div>')


def _pr_html(curves: Sequence[rdata.PRCurve]) -> str:
    if not curves:
        return ""
    main = [Series(f"{c.name} (AP50 {c.ap50:.1f}, {c.n_gt} gt)", c.recall.tolist(),
                   c.precision.tolist(), bold=c.name == "all", markers=False)
            for c in curves[:1]]
    charts = [line_chart(main, title="all classes, IoU 0.5", x_label="recall",
                         y_label="precision", x_range=(0, 1), y_range=(0, 1), legend=False)]
    for c in curves[1:]:
        charts.append(line_chart([Series(c.name, c.recall.tolist(), c.precision.tolist(),
                                         markers=False)],
                                 title=f"{c.name}: AP50 {c.ap50:.1f} ({c.n_gt} gt)",
                                 x_label="recall", y_label="precision", x_range=(0, 1),
                                 y_range=(0, 1), width=240, height=170, legend=False))
    return ("<h4>precision-recall at IoU 0.5 (greedy matching per class, computed by the report "
            "from the stored predictions)</h4><div class=\"charts\">" + "".join(charts) + "</div>")


# ----------------------------------------------------------------------------- gallery


def _card(thumbs: ThumbnailCache, rec: SampleRecord, ctx: Mapping[str, Any], budget: _Budget,
          stats: ReportStats, value_text: str) -> str:
    if not budget.take():
        return ""
    th = thumbs.get(rec, ctx)
    stats.thumbnails += 1
    uri = th.data_uri()
    img = (f'<img src="{uri}" alt="{esc(rec.sample.sample_id)}" data-kind="{th.kind}" '
           'loading="eager">' if uri else '<p class="err">no image</p>')
    wide = " wide" if th.kind == "masks_net" else ""
    lines = "".join(f"<div>{esc(t)}</div>" for t in th.lines)
    return (f'<figure class="card{wide}">{img}<figcaption><span class="sid">'
            f'{esc(rec.sample.sample_id)}</span> {esc(value_text)}{lines}</figcaption></figure>')


def _gallery_html(entry: _Entry, k: int, seed: int, thumbs: ThumbnailCache, budget: _Budget,
                  stats: ReportStats) -> str:
    loaded = entry.loaded
    if loaded is None or k <= 0:
        return ""
    ctx = plugin_context(loaded.plugin, loaded.classes)
    m = entry.measure
    predicted = loaded.predicted
    worst: list[SampleRecord] = []
    if m is not None and m.values:
        ranked = sorted((r for r in predicted if r.sample.sample_id in m.values),
                        key=lambda r: (m.values[r.sample.sample_id] * (1 if m.higher_is_better
                                                                       else -1),
                                       r.sample.sample_id))
        worst = ranked[:k]
    rest = [r for r in predicted if r not in worst]
    rng = np.random.default_rng(seed)
    pick = (
        sorted(rng.choice(len(rest), size=min(k, len(rest)), replace=False).tolist())
        if rest
        else []
    )
    random_recs = [rest[i] for i in pick]

    def value(r: SampleRecord) -> str:
        if m is None or r.sample.sample_id not in m.values:
            return ""
        return f"{m.name} = {m.values[r.sample.sample_id]:.3g}"

    parts = []
    if worst and m is not None:  # worst is empty without a measure
        parts.append(f"<h4>worst {len(worst)} by {esc(m.name)}"
                     f"{' (computed by the report)' if m.source == 'report' else ''}</h4>"
                     '<div class="gallery">' + "".join(
                         _card(thumbs, r, ctx, budget, stats, value(r)) for r in worst) + "</div>")
    if random_recs:
        parts.append(f"<h4>{len(random_recs)} random samples (seed {seed})</h4>"
                     '<div class="gallery">' + "".join(
                         _card(thumbs, r, ctx, budget, stats, value(r)) for r in random_recs)
                     + "</div>")
    failed = [r for r in loaded.records if r.prediction is None]
    if failed:
        items = "".join(f"<li><code>{esc(r.sample.sample_id)}</code>: {esc(str(r.error))[:300]}"
                        "</li>" for r in failed[:20])
        parts.append(f'<h4 class="err">{len(failed)} sample(s) without a prediction</h4>'
                     f"<ul>{items}</ul>" + ("<p>...</p>" if len(failed) > 20 else ""))
    return "".join(parts)


# ----------------------------------------------------------------------------- sections


def _metrics_html(res: TaskResult) -> str:
    rows = []
    for name, mv in sorted(res.metrics.items(), key=lambda kv: not kv[1].primary):
        ci = (f"[{_num(mv.ci95[0], mv.unit)}, {_num(mv.ci95[1], mv.unit)}]"
              if mv.ci95 is not None else "")
        rows.append(f"<tr><td>{esc(name)}{' (primary)' if mv.primary else ''}"
                    f"{'' if mv.official else ' (not official)'}</td><td>{_num(mv.value, mv.unit)}"
                    f"{'%' if mv.unit == '%' and math.isfinite(mv.value) else ''}</td><td>{ci}</td>"
                    f"<td>{'higher' if mv.higher_is_better else 'lower'}</td></tr>")
    return ('<table><thead><tr><th>metric</th><th>value</th><th>95% interval</th>'
            f'<th>better</th></tr></thead><tbody>{"".join(rows)}</tbody></table>')


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-")


def _task_section(key: tuple[str, str, str], entries: Sequence[_Entry], k: int, seed: int,
                  thumbs: ThumbnailCache, budget: _Budget, stats: ReportStats) -> str:
    task, ds, split = key
    out = [f'<section id="task-{_slug("-".join(key))}"><h2>{esc(task_display_name(task))} · '
           f"{esc(dataset_display_name(ds))} <small>({esc(task)}/{esc(ds)}:{esc(split)})</small>"
           "</h2>"]
    for e in entries:
        res = e.result
        out.append(f"<h3>{esc(e.row)}{_badges(res)}</h3>")
        out.append(f'<p class="notes">run {esc(e.run.run_id)}; evaluated {res.n_evaluated} of '
                   f"{res.n_total} samples, {res.n_failed} failed</p>")
        out.append(_metrics_html(res))
        if e.error:
            out.append(f'<p class="err">Samples could not be read again: {esc(e.error)}</p>')
        details = [_table_html(n, v) for n, v in res.tables.items()]
        if e.loaded is not None:
            cm = None if any(_is_matrix(v) for v in res.tables.values()) else rdata.confusion(
                e.loaded)
            if cm is not None:
                details.append(_confusion_html(*cm))
            details.append(_pr_html(rdata.pr_curves(e.loaded)))
        if any(details):
            out.append("<details open><summary>per-class tables and curves</summary>"
                       + "".join(details) + "</details>")
        gallery = _gallery_html(e, k, seed, thumbs, budget, stats)
        if gallery:
            out.append(f"<details open><summary>failure gallery</summary>{gallery}</details>")
    out.append("</section>")
    return "".join(out)


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


def _compare_html(a: str, b: str, groups: Mapping[tuple[str, str, str], list[_Entry]], k: int,
                  seed: int, thumbs: ThumbnailCache, budget: _Budget,
                  stats: ReportStats) -> str:
    out = [f'<section id="compare"><h2>Checkpoint comparison</h2><p>A = <b>{esc(a)}</b>, '
           f"B = <b>{esc(b)}</b>. Per-sample differences B − A on the samples both scored "
           "(paired); 95% bootstrap interval of the mean difference (2,000 resamples).</p>"]
    summary = []
    blocks = []
    rng = np.random.default_rng(seed)
    for key, entries in groups.items():
        ea = next((e for e in entries if e.row == a), None)
        eb = next((e for e in entries if e.row == b), None)
        if ea is None or eb is None or ea.measure is None or eb.measure is None:
            continue
        if ea.loaded is None or eb.loaded is None:  # a measure comes from loaded predictions
            continue
        ma, mb, la, lb = ea.measure, eb.measure, ea.loaded, eb.loaded
        common = sorted(set(ma.values) & set(mb.values))
        if not common:
            continue
        d = np.array([mb.values[s] - ma.values[s] for s in common])
        boots = rng.integers(0, len(d), size=(2000, len(d)))
        lo, hi = np.percentile(d[boots].mean(axis=1), [2.5, 97.5])
        sign = 1 if ma.higher_is_better else -1
        better = int((sign * d > 0).sum())
        worse = int((sign * d < 0).sum())
        dropped = len(set(ma.values) ^ set(mb.values))
        cls = "pos" if sign * d.mean() > 0 else "neg" if sign * d.mean() < 0 else ""
        label = f"{task_display_name(key[0])} · {dataset_display_name(key[1])}"
        summary.append(f"<tr><td>{esc(label)}</td><td>{esc(ma.name)}</td><td>{len(common)}"
                       f"{f' ({dropped} unpaired left out)' if dropped else ''}</td>"
                       f"<td>{np.mean([ma.values[s] for s in common]):.3g}</td>"
                       f"<td>{np.mean([mb.values[s] for s in common]):.3g}</td>"
                       f'<td class="{cls}" data-v="{d.mean()}">{d.mean():+.3g}</td>'
                       f"<td>[{lo:+.3g}, {hi:+.3g}]</td><td>{better}</td><td>{worse}</td></tr>")
        order = np.argsort(-np.abs(d), kind="stable")[:k]
        if not len(order) or not np.abs(d[order[0]]) > 0:
            continue
        ra = {r.sample.sample_id: r for r in la.records}
        rb = {r.sample.sample_id: r for r in lb.records}
        ctx = plugin_context(la.plugin, la.classes)
        cards = []
        for i in order:
            sid = common[i]
            if d[i] == 0:
                break
            if budget.left < 2:
                budget.skipped += 2
                continue
            ca = _card(thumbs, ra[sid], ctx, budget, stats, f"A: {ma.values[sid]:.3g}")
            cb = _card(thumbs, rb[sid], ctx, budget, stats, f"B: {mb.values[sid]:.3g}")
            cards.append(f'<div><p><code>{esc(sid)}</code> Δ = {d[i]:+.3g}</p>'
                         f'<div class="pair">{ca}{cb}</div></div>')
        if cards:
            blocks.append(f"<h3>{esc(label)}: the {len(cards)} samples that changed most</h3>"
                          '<div class="gallery">' + "".join(cards) + "</div>")
    if not summary:
        out.append('<p class="notes">The two checkpoints share no task with per-sample values.'
                   "</p></section>")
        return "".join(out)
    out.append('<table class="sortable"><thead><tr><th>task</th><th>per-sample measure</th>'
               "<th>paired samples</th><th>mean A</th><th>mean B</th><th>mean B − A</th>"
               "<th>95% interval</th><th>B better</th><th>B worse</th></tr></thead><tbody>"
               + "".join(summary) + "</tbody></table>")
    out += blocks
    out.append("</section>")
    return "".join(out)


def _sweep_html(board: Leaderboard, row_names: Mapping[str, str],
                row_paths: Mapping[str, str]) -> str:
    rows = [r for r in board.rows if r not in set(board.published_rows)]
    if len(rows) < 2:
        return ""
    meta = {row_names[r]: rdata.checkpoint_metadata(row_paths.get(r, "")) for r in rows}
    ordered, unit = rdata.order_checkpoints([row_names[r] for r in rows], meta)
    by_name = {row_names[r]: r for r in rows}
    steps = [rdata.checkpoint_step(n, meta.get(n)) for n in ordered]
    xs = ([s[0] for s in steps if s is not None] if unit != "index"
          else list(range(len(ordered))))
    charts = []
    for c in board.columns:
        ys = [board.values.at[by_name[n], c.label] for n in ordered]
        if sum(1 for y in ys if math.isfinite(y)) < 2:
            continue
        cells = [board.cells.get((by_name[n], c.label)) for n in ordered]
        flags = sorted({f for cell in cells if cell is not None for f in cell.flags})
        title = f"{c.task}/{c.dataset} {c.metric}{'' if c.higher_is_better else ' ↓'}"
        if flags:
            title += " [" + ", ".join(flags) + "]"
        names = [Path(n).name for n in ordered]
        ticks = list(zip(xs, [n[:14] for n in names])) if unit == "index" else None
        charts.append(line_chart([Series(c.metric, xs, ys, labels=names)], title=title,
                                 x_label="checkpoint" if unit == "index" else unit,
                                 y_label=c.unit or c.metric, legend=False, x_ticks=ticks))
    if not charts:
        return ""
    note = ("training step from the checkpoint names or metadata" if unit != "index" else
            "not every checkpoint name carries a training step: checkpoints with one in step "
            "order, then the others")
    return (f'<section id="sweep"><h2>Sweep: metric vs checkpoint</h2><p class="notes">{note}'
            f'</p><div class="charts">{"".join(charts)}</div></section>')


# ----------------------------------------------------------------------------- page


def render_report(runs: Sequence[RunDocument], results_dir: str | Path, *, gallery_k: int = 4,
                  compare: Sequence[str] | None = None, registry: Any = None,
                  data_root: str | Path | None = None, seed: int = 0,
                  max_thumbnails: int = MAX_THUMBNAILS, cache: bool = True,
                  title: str | None = None) -> tuple[str, ReportStats]:
    """The report as one HTML string, and what went into it (see the package docstring)."""
    from remotesam.bench.api.registry import Registry
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
    from remotesam.bench.records.store import ResultsStore

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
    task_html = [_task_section(key, entries, k, seed, thumbs, budget, stats)
                 for key, entries in groups.items()]
    compare_html = ""
    if compare:
        if len(compare) != 2:
            raise ValueError(f"--compare takes two checkpoints, got {len(compare)}")
        all_entries = [e for es in groups.values() for e in es]
        a, b = (_find_checkpoint(s, all_entries) for s in compare)
        compare_html = _compare_html(a, b, groups, max(k, 1), seed, thumbs, budget, stats)
    elif len(row_names) == 2:
        a, b = list(row_names)
        compare_html = _compare_html(a, b, groups, max(k, 1), seed, thumbs, budget, stats)
    sweep = _sweep_html(full, row_names, row_paths)
    stats.cache_hits, stats.drawn, stats.left_out = thumbs.hits, thumbs.drawn, budget.skipped
    nav = ['<a href="#leaderboard-section">leaderboard</a>', '<a href="#radar">radar</a>']
    nav += [f'<a href="#task-{_slug("-".join(key))}">{esc(key[0])}/{esc(key[1])}</a>'
            for key in groups]
    if compare_html:
        nav.append('<a href="#compare">comparison</a>')
    if sweep:
        nav.append('<a href="#sweep">sweep</a>')
    context = []
    if "synthetic" in board.flags_used():
        context.append("Some results are on the <b>synthetic embedded benchmark</b> (procedural "
                       "data), not on the real datasets: they are not comparable with published "
                       "numbers.")
    if "subset" in board.flags_used():
        context.append("Some results cover only a <b>subset</b> of their dataset (--limit).")
    if "failed" in board.flags_used():
        context.append("Some results have <b>failed samples</b> (not scored).")
    if budget.skipped:
        context.append(f"{budget.skipped} thumbnail(s) left out: a report holds at most "
                       f"{max_thumbnails}.")
    for err in stats.load_errors[:5]:
        context.append(f'<span class="err">{esc(err)}</span>')
    title = title or "remotesam-bench report"
    runs_text = ", ".join(f"{r.run_id} ({r.created})" for r in runs)
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            '<link rel="icon" href="data:,">'
            f"<title>{esc(title)}</title><style>{_CSS}</style></head><body>"
            f"<header><h1>{esc(title)}</h1><p>runs: {esc(runs_text)}</p></header>"
            f"<nav>{''.join(nav)}</nav><main>"
            + (f'<section class="context">{"".join(f"<p>{c}</p>" for c in context)}</section>'
               if context else "")
            + f'<section id="leaderboard-section"><h2>Leaderboard</h2>'
              f'<p class="notes">Click a column header to sort. Best value bold, second '
              f"underlined; 95% intervals in brackets; flags: s synthetic, p subset, f failed "
              f"samples.</p>{leaderboard_html(board)}<details><summary>every metric"
              f"</summary>{leaderboard_html(full, 'leaderboard-all')}</details></section>"
            + f'<section id="radar"><h2>Radar</h2>{radar_svg(runs)}</section>'
            + "".join(task_html) + compare_html + sweep
            + f"</main><script>{_JS}</script></body></html>\n"), stats


