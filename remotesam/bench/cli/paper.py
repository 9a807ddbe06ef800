"""``remotesam-bench paper``: the RemoteSAM paper's evaluation as one suite, and its tables.

The suite is every (task, dataset) pair of the paper's Tables 2-13 and Fig. 7, read from the
published numbers (:mod:`remotesam.bench.records.published`: each record names its table), and
the pairs of figures without a table (:data:`FIGURE_ONLY_PAIRS`: UC Merced scene classification,
Fig. 22): 22 pairs. ``remotesam-bench run`` evaluates the same suite by default. Before it
starts, the command prints the plan: per pair, whether an adapter exists and the data root holds
the dataset, its samples and image-prompts (``plugin.requests``), and an estimated time
(image-prompts x ``--ms-per-prompt``; the default 6 ms is the measured cost of the bundled tiny
checkpoint on a CPU at batch 8, docs/SCALING.md; pass your own rate for a GPU). Then it runs the
available pairs (cached and resumable as every run) and writes, under ``<results>/paper/``:

* ``table_N.md`` / ``table_N.tex`` for each table (Table 3 = the oIoU/mIoU columns of Tables
  8-10): the paper's rows as published, our row beside them (``ours``), one column per
  (dataset, metric) in the paper's order; pairs without an adapter or without data show ``n/a``
  and are listed under the table;
* ``fig1_radar.png``: Fig. 1's eight axes with the paper's six models and ours, on a common
  0-100 scale (``--scale per-axis`` draws each axis's own range, labelled on the axis);
* ``plan.json`` and ``README.md`` (what ran, what is not available and why).

Without ``--data-root`` the suite runs on the embedded procedural benchmark; its numbers are
marked synthetic and are not comparable with the paper's.
"""

from __future__ import annotations

import argparse
import json
import math
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from remotesam.bench.errors import EXIT_OK, InputError

__all__ = [
    "FIG1_AXES",
    "FIGURE_ONLY_PAIRS",
    "PAPER_TASK_OPTIONS",
    "PaperPair",
    "PaperTable",
    "add_subcommand",
    "paper_plan",
    "paper_tables",
    "render_latex",
    "render_markdown",
    "save_fig1_radar",
    "suite_task_options",
    "suite_tasks",
]

#: Documented cost per image-prompt (ms): the tiny checkpoint on a CPU at batch 8 (SCALING.md).
DEFAULT_MS_PER_PROMPT = 6.0

#: Fig. 1: (axis label, task, dataset, metric, factor to %) and the values printed on the chart
#: (PROTOCOLS.md section 5; ``None`` = no value on that axis).
FIG1_AXES: tuple[tuple[str, str, str, str, float], ...] = (
    ("iSAID-Seg.", "seg", "isaid", "mIoU", 1.0),
    ("Potsdam-Seg.", "seg", "potsdam", "mF1", 1.0),
    ("RRSISD-Ref.", "ref", "rrsisd", "mIoU", 1.0),
    ("RisBench-Ref.", "ref", "risbench", "mIoU", 1.0),
    ("RSVG-Ground.", "vg", "dior_rsvg", "Acc@0.5", 1.0),
    ("DIOR-Cou.", "cnt", "dior", "accuracy", 1.0),
    ("DOTA-Cls.", "mlc", "dotav2", "accuracy", 1.0),
    ("DIOR-Cls.", "mlc", "dior", "accuracy", 1.0),
)
#: Pairs the paper evaluates in a figure but in no table: (task, dataset, split, figure).
#: Scene classification on UC Merced appears only in Fig. 22 (PROTOCOLS.md 2.6).
FIGURE_ONLY_PAIRS: tuple[tuple[str, str, str, str], ...] = (
    ("mcc", "ucmerced", "all", "Fig. 22"),
)
#: Task options of the paper suite: detection predicts horizontal and oriented boxes, so Table
#: 12 (HBB) and Table 13 (OBB) come from one run; the HBB metrics are those of ``box_type=hbb``.
PAPER_TASK_OPTIONS: dict[str, dict[str, Any]] = {"det": {"box_type": "both"}}
FIG1_VALUES: dict[str, tuple[float | None, ...]] = {
    "RemoteSAM": (64.72, 91.80, 71.75, 71.46, 74.36, 62.0, 95.0, 94.0),
    "Falcon": (51.70, None, None, None, 56.87, 77.0, 95.0, 87.0),
    "GeoChat": (None, None, None, None, None, 45.3, 60.0, 65.0),
    "LHRS-Bot": (None, None, None, None, 73.45, 45.5, 20.0, 35.0),
    "RingMo": (67.20, 91.27, None, None, None, None, None, None),
    "CroBIM": (None, None, 64.46, 69.33, None, None, None, None),
}


@dataclass
class PaperPair:
    """One (task, dataset) pair of the paper's evaluation and whether we can run it."""

    task: str
    dataset: str
    split: str  # the paper's split
    tables: list[str] = field(default_factory=list)
    status: str = "ok"  # ok | no adapter | data missing | error | not selected
    reason: str = ""
    root: str = ""
    samples: int = 0
    image_prompts: int = 0
    our_split: str = ""  # the split we evaluate (the adapter's official default)

    @property
    def key(self) -> str:
        return f"{self.task}.{self.dataset}"


@dataclass
class PaperTable:
    """One table of the paper: columns ``(task, dataset, split, metric)``, rows = models."""

    name: str
    columns: list[tuple[str, str, str, str]]
    rows: dict[str, dict[int, float]]  # model -> column index -> value (paper's unit)
    ours: dict[int, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _table_ids(source: str) -> list[str]:
    """``"Table 8 (oIoU/mIoU also Table 3)"`` -> ``["Table 8", "Table 3"]``."""
    return [f"{kind} {num}" for kind, num in re.findall(r"(Table|Fig\.)\s*(\d+)", source)]


def _published() -> Any:
    from remotesam.bench.records.published import load_published

    return load_published()


def paper_tables() -> list[PaperTable]:
    """The paper's tables as the published file holds them, Table 2 first, Fig. 7 last.

    Table 3 holds the oIoU / mIoU columns of Tables 8-10's datasets. Fig. 1 records are the
    radar's (:data:`FIG1_AXES`) and not a table.
    """
    pub = _published()
    tables: dict[str, PaperTable] = {}
    for r in pub.results:
        for tid in _table_ids(r.source):
            if tid.startswith("Fig.") and tid != "Fig. 7":
                continue
            if tid == "Table 3" and r.metric not in ("oIoU", "mIoU"):
                continue
            t = tables.setdefault(tid, PaperTable(tid, [], {}))
            col = (r.task, r.dataset, r.split, r.metric)
            if col not in t.columns:
                t.columns.append(col)
            t.rows.setdefault(r.model, {})[t.columns.index(col)] = r.value
            if r.note and r.note not in t.notes:
                t.notes.append(r.note)

    def order(t: PaperTable) -> tuple[int, int]:
        kind, num = t.name.split()
        return (1 if kind == "Fig." else 0, int(num))

    return sorted(tables.values(), key=order)


def paper_pairs() -> list[PaperPair]:
    """Every (task, dataset) pair of the paper's evaluation: those of its tables in
    first-appearance order, then :data:`FIGURE_ONLY_PAIRS`."""
    out: dict[tuple[str, str], PaperPair] = {}
    for t in paper_tables():
        for task, ds, split, _ in t.columns:
            p = out.setdefault((task, ds), PaperPair(task, ds, split))
            if t.name not in p.tables:
                p.tables.append(t.name)
    for task, ds, split, fig in FIGURE_ONLY_PAIRS:
        out.setdefault((task, ds), PaperPair(task, ds, split, [fig]))
    return list(out.values())


def suite_tasks(name: str) -> list[str]:
    """The ``task.dataset`` selections of a named suite (``"paper"``: :func:`paper_pairs`,
    grouped by task in name order, each task's datasets in the paper's order).

    Raises:
        InputError: an unknown suite name.
    """
    if name != "paper":
        raise InputError(f"--suite {name!r}: unknown suite; the suites: paper")
    return [p.key for p in sorted(paper_pairs(), key=lambda p: p.task)]


def suite_task_options(name: str) -> dict[str, dict[str, Any]]:
    """The task options a named suite runs with (:data:`PAPER_TASK_OPTIONS` for ``"paper"``).

    Raises:
        InputError: an unknown suite name.
    """
    suite_tasks(name)
    return {task: dict(opts) for task, opts in PAPER_TASK_OPTIONS.items()}


def paper_plan(data_root: str | Path) -> list[PaperPair]:
    """Check each pair: adapter installed, dataset under ``data_root``, samples, image-prompts.

    Image-prompts are counted with the task plugin's own ``requests`` (default options).
    """
    from remotesam.bench.api import DatasetError
    from remotesam.bench.api.registry import Registry
    from remotesam.bench.errors import BenchError

    reg = Registry()
    pairs = paper_pairs()
    for p in pairs:
        if p.task not in reg:
            p.status, p.reason = "no adapter", f"no task plugin {p.task!r} installed"
            continue
        try:
            plugin_cls = reg.get(p.task)
        except BenchError as e:
            p.status, p.reason = "error", str(e)
            continue
        adapter = plugin_cls.datasets.get(p.dataset)
        if adapter is None:
            p.status, p.reason = "no adapter", f"task {p.task!r} has no dataset {p.dataset!r}"
            continue
        root = Path(data_root) / adapter.default_subdir
        p.root = str(root)
        p.our_split = adapter.default_split
        if not root.is_dir():
            p.status = "data missing"
            p.reason = f"{root} not found (see `remotesam-bench data list`)"
            continue
        try:
            samples = adapter(root).samples()
            plugin = plugin_cls()
            p.samples = len(samples)
            if hasattr(plugin, "requests"):
                try:
                    p.image_prompts = sum(
                        len(r.prompts) for s in samples for r in plugin.requests(s)
                    )
                except NotImplementedError:
                    p.image_prompts = p.samples
        except DatasetError as e:
            p.status, p.reason = "data missing", str(e).splitlines()[0]
    return pairs


# -- rendering ------------------------------------------------------------------------------------


def _fmt(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.2f}"


def _titles() -> dict[tuple[str, str], str]:
    """(task, dataset) -> the adapter's ``info.title`` (installed tasks that load)."""
    from remotesam.bench.data.check import dataset_entries
    from remotesam.bench.errors import BenchError

    try:
        return {
            (e.task, e.dataset): e.info.title for e in dataset_entries(None) if e.info is not None
        }
    except BenchError:
        return {}


def _header(t: PaperTable) -> list[str]:

    titles = _titles()
    return [
        f"{titles.get((task, ds)) or ds} {m}" for task, ds, _, m in t.columns
    ]


def render_markdown(t: PaperTable, ours_label: str = "ours") -> str:
    """The table in Markdown: the paper's rows, then ours (``n/a`` where not run)."""
    head = ["Model", *_header(t)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for model, vals in t.rows.items():
        lines.append(
            "| " + " | ".join([model] + [_fmt(vals.get(i)) for i in range(len(t.columns))]) + " |"
        )
    lines.append(
        "| "
        + " | ".join(
            [f"**{ours_label}**"]
            + [
                f"**{_fmt(t.ours.get(i))}**" if i in t.ours else "n/a"
                for i in range(len(t.columns))
            ]
        )
        + " |"
    )
    out = f"### {t.name}\n\n" + "\n".join(lines) + "\n"
    if t.notes:
        out += "\n" + "\n".join(f"- {n}" for n in t.notes) + "\n"
    return out


def _tex(s: str) -> str:
    return re.sub(r"([&%$#_{}])", r"\\\1", s).replace("~", r"\textasciitilde{}")


def render_latex(t: PaperTable, ours_label: str = "ours") -> str:
    """The table as a LaTeX ``table`` that fits ``\\linewidth``: the tabular is scaled with
    ``\\resizebox`` (only down) and notes are a left-aligned ``\\parbox`` below it."""
    head = ["Model", *_header(t)]
    body = [" & ".join(_tex(h) for h in head) + r" \\ \hline"]
    for model, vals in t.rows.items():
        body.append(
            " & ".join([_tex(model)] + [_fmt(vals.get(i)) for i in range(len(t.columns))]) + r" \\"
        )
    body.append(
        r"\hline "
        + " & ".join(
            [r"\textbf{" + _tex(ours_label) + "}"]
            + [
                r"\textbf{" + _fmt(t.ours[i]) + "}" if i in t.ours else "n/a"
                for i in range(len(t.columns))
            ]
        )
        + r" \\"
    )
    tab = (
        "\\begin{tabular}{l"
        + "r" * len(t.columns)
        + "}\n\\hline\n"
        + "\n".join(body)
        + "\n\\hline\n\\end{tabular}"
    )
    notes = ""
    if t.notes:
        notes = (
            "\n\\par\\smallskip\\parbox{\\linewidth}{\\raggedright\\footnotesize "
            + r" \\ ".join(_tex(n) for n in t.notes)
            + "}"
        )
    return (
        "\\begin{table}[t]\n\\centering\n\\caption{" + _tex(t.name) + "}\n"
        "\\resizebox{\\ifdim\\width>\\linewidth\\linewidth\\else\\width\\fi}{!}{%\n"
        + tab
        + "}"
        + notes
        + "\n\\end{table}\n"
    )


def save_fig1_radar(
    ours: Sequence[float | None] | None,
    out: str | Path,
    scale: str = "common",
    ours_label: str = "ours",
) -> Path:
    """Fig. 1: eight axes, the paper's six models (values printed on the chart) and ours.

    Args:
        ours: our value per axis of :data:`FIG1_AXES` (``None`` = not run).
        scale: ``"common"`` (every axis 0-100) or ``"per-axis"`` (each axis from 10 below its
            smallest to its largest value, rounded to tens, with tick labels on the axis).
            The figure's subtitle names the scale.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    if scale not in ("common", "per-axis"):
        raise InputError(f"--scale {scale!r}: expected 'common' or 'per-axis'")
    series: dict[str, Sequence[float | None]] = dict(FIG1_VALUES)
    if ours is not None:
        series[ours_label] = tuple(ours)
    n = len(FIG1_AXES)
    ranges = []
    for i in range(n):
        vals = [float(x) for v in series.values() if (x := v[i]) is not None]
        if scale == "common" or not vals:
            ranges.append((0.0, 100.0))
        else:
            lo = max(0.0, 10.0 * np.floor(min(vals) / 10.0) - 10.0)
            hi = min(100.0, 10.0 * np.ceil(max(vals) / 10.0))
            ranges.append((lo, hi if hi > lo else lo + 10.0))
    ang = np.linspace(0, 2 * np.pi, n, endpoint=False)
    fig = plt.figure(figsize=(7.5, 7.5))
    ax = fig.add_subplot(111, polar=True)
    ax.set_xticks(ang)
    ax.set_xticklabels([a[0] for a in FIG1_AXES], fontsize=9)
    ax.tick_params(axis="x", pad=14)
    ax.set_ylim(0, 1)
    ax.set_yticks([0.25, 0.5, 0.75, 1.0])
    ax.set_yticklabels([])
    for i, (lo, hi) in enumerate(ranges):  # tick labels on each axis
        for f in (0.25, 0.5, 0.75, 1.0):
            ax.text(
                ang[i],
                f,
                f"{lo + f * (hi - lo):.0f}",
                fontsize=6,
                color="0.4",
                ha="center",
                va="center",
            )
    for name, row in series.items():
        r = [
            np.nan if v is None else (v - ranges[i][0]) / (ranges[i][1] - ranges[i][0])
            for i, v in enumerate(row)
        ]
        rr = np.array([*r, r[0]])
        aa = np.array([*ang, ang[0]])
        style = {"linewidth": 2.5, "color": "k"} if name == ours_label else {"linewidth": 1.2}
        ax.plot(aa, rr, marker="o", markersize=3, label=name, **style)
    ax.legend(loc="upper right", bbox_to_anchor=(1.3, 1.1), fontsize=8)
    what = (
        "common scale: every axis 0-100"
        if scale == "common"
        else "per-axis scale: each axis has its own range (tick labels on the axis)"
    )
    fig.suptitle(f"Fig. 1 (RemoteSAM paper): eight axes; {what}", fontsize=10)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return out


# -- command ---------------------------------------------------------------------------------------


def _our_values(document: Any, tables: list[PaperTable]) -> dict[tuple[str, str, str], float]:
    """(task, dataset, canonical metric) -> our value, from a run document."""
    pub = _published()
    out: dict[tuple[str, str, str], float] = {}
    for res in document.results:
        for name, mv in res.metrics.items():
            v = float(mv.value)
            if math.isfinite(v):  # undefined metrics (no ground truth of a kind) stay n/a
                out[
                    (
                        res.task,
                        pub.canonical_dataset(res.dataset),
                        pub.canonical_metric(res.task, name),
                    )
                ] = v
    return out


def _cmd_paper(args: argparse.Namespace) -> int:
    from remotesam.bench.run import ensure_embedded_benchmark

    results = Path(args.results_dir)
    from remotesam.bench.run import is_synthetic_data

    data_root = Path(args.data_root) if args.data_root else ensure_embedded_benchmark(results)
    if not data_root.is_dir():
        raise InputError(f"--data-root {data_root}: not a folder")
    synthetic = is_synthetic_data(data_root)
    pairs = paper_plan(data_root)
    if args.tasks:
        wanted = {t.strip() for t in args.tasks.split(",") if t.strip()}
        for p in pairs:
            if p.status == "ok" and not ({p.task, p.key} & wanted):
                p.status, p.reason = "not selected", f"not in --tasks {args.tasks}"
    ok = [p for p in pairs if p.status == "ok"]
    n_s = sum(p.samples for p in ok)
    n_p = sum(p.image_prompts for p in ok)
    est = n_p * args.ms_per_prompt / 1000.0
    print(
        f"paper suite: {len(pairs)} (task, dataset) pairs in the paper's tables and figures; "
        f"{len(ok)} available: {n_s:,} samples, {n_p:,} image-prompts, about {est:,.0f} s at "
        f"{args.ms_per_prompt:g} ms per image-prompt"
        + (" (procedural benchmark)" if synthetic else "")
    )
    for p in pairs:
        what = (
            f"{p.samples:,} samples, {p.image_prompts:,} image-prompts"
            if p.status == "ok"
            else f"{p.status}: {p.reason}"
        )
        print(f"  {p.key:<22} {', '.join(p.tables):<28} {what}")
    out = results / "paper"
    out.mkdir(parents=True, exist_ok=True)
    (out / "plan.json").write_text(json.dumps([asdict(p) for p in pairs], indent=1) + "\n")
    if args.dry_run:
        return EXIT_OK
    ours: dict[tuple[str, str, str], float] = {}
    label = "ours (synthetic data)" if synthetic else "ours"
    if ok:
        from remotesam.bench.run import RunConfig, run

        cfg = RunConfig(
            tasks=[p.key for p in ok],
            checkpoints=list(args.ckpt or []),
            data_root=data_root,
            results_dir=results,
            device=args.device,
            task_options={
                t: o for t, o in suite_task_options("paper").items() if t in {p.task for p in ok}
            },
        )
        outcome = run(cfg)
        for e in outcome.errors:
            print(f"error: {e}")
        if outcome.document is not None:
            ours = _our_values(outcome.document, [])
            print(f"run document: {outcome.path}")
    pub = _published()
    missing = {p.key: f"{p.status}: {p.reason}" for p in pairs if p.status != "ok"}
    ran = {p.key for p in pairs if p.status == "ok"}
    md = [f"# The RemoteSAM paper's tables, {label}\n"]
    for t in paper_tables():
        for i, (task, ds, _, metric) in enumerate(t.columns):
            v = ours.get((task, pub.canonical_dataset(ds), pub.canonical_metric(task, metric)))
            if v is not None:
                t.ours[i] = v
        absent = sorted(
            {f"{task}.{ds}" for task, ds, _, _ in t.columns if f"{task}.{ds}" in missing}
        )
        t.notes += [f"not run: {k} ({missing[k]})" for k in absent]
        undefined = sorted(
            {
                f"{task}.{ds} {m}"
                for i, (task, ds, _, m) in enumerate(t.columns)
                if i not in t.ours and f"{task}.{ds}" in ran
            }
        )
        t.notes += [f"ours: {u} undefined on this data (n/a)" for u in undefined]
        for p in pairs:
            if p.status == "ok" and p.our_split and p.our_split != p.split and t.name in p.tables:
                t.notes.append(
                    f"ours: {p.key} on split {p.our_split!r}; the paper's rows: {p.split!r}"
                )
        if synthetic:
            t.notes.append("our row: procedural benchmark, not comparable with the paper's rows")
        slug = t.name.lower().replace(". ", "_").replace(" ", "_")
        (out / f"{slug}.md").write_text(render_markdown(t, label))
        (out / f"{slug}.tex").write_text(render_latex(t, label))
        md.append(render_markdown(t, label))
    fig1 = [
        ours.get((task, pub.canonical_dataset(ds), pub.canonical_metric(task, m)))
        for _, task, ds, m, _ in FIG1_AXES
    ]
    save_fig1_radar(fig1, out / "fig1_radar.png", args.scale, label)
    (out / "README.md").write_text("\n".join(md))
    print(f"wrote {len(paper_tables())} tables (Markdown + LaTeX) and fig1_radar.png to {out}")
    return EXIT_OK


def add_subcommand(sub: Any) -> argparse.ArgumentParser:
    """Register ``paper`` on the ``remotesam-bench`` sub-parsers."""
    p = sub.add_parser(
        "paper",
        help="the paper's evaluation as one suite; its tables and Fig. 1",
        description=__doc__.split("\n\n")[0],
    )
    p.add_argument(
        "--ckpt",
        action="append",
        default=None,
        help="checkpoint (default: the bundled tiny checkpoint)",
    )
    p.add_argument(
        "--data-root",
        default=None,
        metavar="DIR",
        help="data root (default: the embedded procedural benchmark)",
    )
    p.add_argument("--results-dir", default="results", metavar="DIR")
    p.add_argument("--device", default="auto")
    p.add_argument(
        "--tasks",
        default=None,
        help="run only these pairs (task or task.dataset, "
        "comma-separated); the others are listed as not selected",
    )
    p.add_argument("--dry-run", action="store_true", help="print the plan and estimate only")
    p.add_argument(
        "--ms-per-prompt",
        type=float,
        default=DEFAULT_MS_PER_PROMPT,
        help="cost per image-prompt for the estimate (default %(default)s ms: the "
        "tiny checkpoint on a CPU, docs/SCALING.md)",
    )
    p.add_argument(
        "--scale",
        choices=("common", "per-axis"),
        default="common",
        help="Fig. 1 radar scale (default: common 0-100)",
    )
    p.set_defaults(func=_cmd_paper)
    return p
