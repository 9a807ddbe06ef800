"""Paper-style radar charts (RemoteSAM Fig. 1) from run documents.

One axis per (task, dataset, split, metric) column -- by default each task's primary metric --,
one closed polygon per checkpoint, and optionally the published models overlaid as dashed
polygons (by default the six models of the paper's Fig. 1 that have a number on the axes
shown). A radar needs at least three axes; fewer is a ``ValueError`` (use the leaderboard).

Axes. Every axis has its own range, labelled along the spoke at four rings, in the metric's own
unit (as in the paper). The range is chosen from the values drawn on that axis:

* one value per axis (a single model): from 0 to a round ceiling (100 for percentages), so a
  single model is drawn at its true magnitude and never as a regular polygon;
* several values: zoomed to a round interval around them (four equal steps of 1, 2, 2.5 or 5
  times a power of ten), so differences between models stay visible.

``zoom=True``/``False`` forces either; ``scale="common"`` (every axis from 0, percentages
0-100, so shapes compare across axes) or ``scale="per-axis"`` (``--scale``) names the choice,
and a line under the chart always states the scale drawn. Lower-is-better axes (``MAE``) are
inverted, so outward
always means better, and marked ``↓``. Axis titles name the task, the dataset and the metric
(``"Detection"`` over ``"DIOR · mAP50"``). The figure carries the chosen axes as
``fig.remotesam_axes`` (a list of :class:`RadarAxis`); :func:`radar_axes` returns them.

Labels never overlap: value labels (drawn for up to :data:`MAX_ANNOTATED` checkpoints) try a
few positions around their vertex and are dropped when none is free; range labels are dropped
where they would overlap anything else; axis titles are pushed outwards. Context is printed
under the chart: results on the synthetic embedded benchmark, subsets (``--limit``) and failed
samples, and published models are never overlaid on synthetic scores (see
:mod:`remotesam.bench.reports.leaderboard`).

Matplotlib is used without pyplot (an explicit ``Figure``), so nothing depends on a display or
on global state. :func:`save_radar` writes PNG, SVG with editable text (``svg.fonttype='none'``)
and PDF (TrueType fonts, ``pdf.fonttype=42``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.text import Text
from matplotlib.transforms import Bbox

from remotesam.bench.records.published import PublishedTable
from remotesam.bench.records.results import RunDocument, format_metric
from remotesam.bench.reports.leaderboard import (
    Column,
    Leaderboard,
    build_leaderboard,
)

__all__ = [
    "FIG1_MODELS",
    "FORMATS",
    "MAX_ANNOTATED",
    "MIN_AXES",
    "SCALES",
    "RadarAxis",
    "axis_label",
    "build_radar",
    "radar_axes",
    "radar_from_leaderboard",
    "save_radar",
]

#: Vertices are labelled with values by default up to this many checkpoints.
MAX_ANNOTATED = 4

#: The fewest axes a radar chart is drawn with.
MIN_AXES = 3

#: The models of the paper's Fig. 1 radar.
FIG1_MODELS = ("RemoteSAM", "Falcon", "GeoChat", "LHRS-Bot", "RingMo", "CroBIM")

#: Axis scales of :func:`radar_from_leaderboard` (``--scale``).
SCALES = ("common", "per-axis")

#: File formats :func:`save_radar` writes.
FORMATS = ("png", "svg", "pdf")

_RINGS = (0.25, 0.5, 0.75, 1.0)


@dataclass(frozen=True)
class RadarAxis:
    """One spoke of the radar.

    Attributes:
        column: the leaderboard column drawn on it.
        label: the title printed at its end (``"Detection\\nDIOR · mAP50"``).
        lo, hi: the value at the centre and at the rim (for an inverted axis the rim is ``lo``).
        ticks: the values labelled at the rings (``len(ticks) == 4``), centre to rim.
        inverted: lower is better, so lower values lie further out.
    """

    column: Column
    label: str
    lo: float
    hi: float
    ticks: tuple[float, ...]
    inverted: bool

    def radius(self, value: float) -> float:
        """Where ``value`` lies on the spoke: 0 (centre) .. 1 (rim), clipped."""
        frac = (value - self.lo) / (self.hi - self.lo)
        if self.inverted:
            frac = 1.0 - frac
        return min(max(frac, 0.0), 1.0)


def axis_label(col: Column) -> str:
    """``"Task\\nDataset · metric"``; ``(split)`` after the dataset when it is not ``test``;
    ``↓`` when lower is better."""
    ds = col.dataset_name
    if col.split != "test":
        ds += f" ({col.split})"
    arrow = " ↓" if not col.higher_is_better else ""
    return f"{col.task_name}\n{ds} · {col.metric}{arrow}"


def _nice_step(raw: float) -> float:
    """The smallest of 1, 2, 2.5, 5 x 10^k that is >= ``raw`` (> 0)."""
    k = math.floor(math.log10(raw))
    for m in (1.0, 2.0, 2.5, 5.0, 10.0):
        if m * 10**k >= raw * (1 - 1e-9):
            return m * 10**k
    return 10.0 ** (k + 1)  # pragma: no cover


def _axis_range(col: Column, values: np.ndarray, zoom: bool | None) -> tuple[float, float, float]:
    """``(lo, hi, step)`` with ``hi = lo + 4 * step`` (see the module docstring)."""
    finite = values[np.isfinite(values)]
    pct = col.unit == "%"
    if finite.size == 0:
        return (0.0, 100.0, 25.0) if pct else (0.0, 1.0, 0.25)
    vmin, vmax = float(finite.min()), float(finite.max())
    distinct = np.unique(np.round(finite, 9)).size
    if zoom is None:
        zoom = distinct >= 2
    if not zoom or vmax <= vmin:
        if pct and vmin >= 0 and vmax <= 100:
            return 0.0, 100.0, 25.0
        top = max(abs(vmax), abs(vmin), 1e-9) * 1.1
        step = _nice_step(top / 4)
        lo = 0.0 if vmin >= 0 else -step * math.ceil(-vmin / step)
        step = _nice_step((max(vmax * 1.1, lo + 1e-9) - lo) / 4)
        return lo, lo + 4 * step, step
    span = vmax - vmin
    lo_raw = vmin - 0.6 * span
    hi_raw = vmax + 0.15 * span
    if vmin >= 0:
        lo_raw = max(lo_raw, 0.0)
    if pct and vmax <= 100:
        hi_raw = min(hi_raw, 100.0)
    step = _nice_step((hi_raw - lo_raw) / 4)
    lo = math.floor(lo_raw / step + 1e-9) * step
    while lo + 4 * step < vmax - 1e-9:  # snapping lo down can leave the maximum outside
        step = _nice_step(step * 1.01)
        lo = math.floor(lo_raw / step + 1e-9) * step
    if vmin >= 0:
        lo = max(lo, 0.0)
    if pct and vmax <= 100 and lo + 4 * step > 100:  # a percentage axis ends at 100
        lo = max(100.0 - 4 * step, 0.0)
    return lo, lo + 4 * step, step


def _fmt(col: Column, v: float) -> str:
    return format_metric(v, col.unit, nan="nan", percent=".1f", general=".3g")


def _tick_fmt(v: float, step: float) -> str:
    decimals = max(0, -math.floor(math.log10(step) + 1e-9)) if step < 1 else 0
    if step >= 1 and abs(step - round(step)) > 1e-9:
        decimals = 1
    return f"{v:.{decimals}f}"


def radar_axes(fig: Figure) -> list[RadarAxis]:
    """The axes a radar figure was drawn with (``fig.remotesam_axes``)."""
    axes = getattr(fig, "remotesam_axes", None)
    if axes is None:
        raise ValueError("this figure was not drawn by remotesam.bench.reports.radar")
    return list(axes)


def _context_lines(board: Leaderboard, published_requested: bool) -> list[str]:
    lines = []
    flags = board.flags_used()
    if "synthetic" in flags:
        lines.append(
            "Synthetic: scores on the procedural embedded benchmark, not on the real datasets."
        )
    subset = sorted(
        {(c.n_evaluated + c.n_failed, c.n_total) for c in board.cells.values() if c.subset}
    )
    if subset:
        lines.append(
            "Subset (--limit): "
            + ", ".join(f"{a} of {n}" for a, n in subset[:5])
            + (" ..." if len(subset) > 5 else "")
            + " samples"
        )
    failed = sum(1 for c in board.cells.values() if not c.published and c.n_failed)
    if failed:
        lines.append(f"Failed samples in {failed} result(s); see the leaderboard notes.")
    if published_requested and any(n.startswith("Published numbers left out") for n in board.notes):
        lines.append("Published models not overlaid where scores are synthetic or non-official.")
    return lines


def radar_from_leaderboard(
    board: Leaderboard,
    *,
    title: str | None = None,
    annotate: bool | None = None,
    zoom: bool | None = None,
    published_requested: bool = False,
    scale: str | None = None,
) -> Figure:
    """Draw a radar from a built :class:`~remotesam.bench.reports.leaderboard.Leaderboard`.

    Returns a ``matplotlib.figure.Figure`` with one polar ``Axes`` whose ``lines`` are one
    ``Line2D`` per row, labelled with the row label (checkpoints solid, published rows dashed),
    and ``fig.remotesam_axes`` (see :class:`RadarAxis`).

    ``scale``: ``"common"`` (every axis zero-based, 0-100 for percentages: shapes compare
    across axes), ``"per-axis"`` (every axis zoomed to its own range) or ``None`` (``zoom``
    decides, by default per axis when it holds several values). A line under the chart says
    which scale was drawn.

    Raises:
        ValueError: fewer than :data:`MIN_AXES` columns, or an unknown ``scale``.
    """
    if scale is not None:
        if scale not in SCALES:
            raise ValueError(f"radar: scale {scale!r}; expected one of {', '.join(SCALES)}")
        zoom = scale == "per-axis"
    cols = board.columns
    if len(cols) < MIN_AXES:
        shown = ", ".join(c.label for c in cols) or "none"
        raise ValueError(
            f"radar: a radar chart needs at least {MIN_AXES} axes, got {len(cols)} ({shown}); "
            "run more tasks, pass --metrics all (several metrics per task) or use "
            "`remotesam-bench leaderboard` for so few numbers"
        )
    n = len(cols)
    theta = np.linspace(0.0, 2.0 * math.pi, n, endpoint=False)
    values = board.values
    axes: list[RadarAxis] = []
    for c in cols:
        lo, hi, step = _axis_range(c, values[c.label].to_numpy(dtype=float), zoom)
        ticks = tuple(lo + k * step for k in range(1, 5))
        axes.append(RadarAxis(c, axis_label(c), lo, hi, ticks, not c.higher_is_better))

    context = _context_lines(board, published_requested)
    if all(a.lo == 0.0 and a.hi == 100.0 for a in axes if a.column.unit == "%") and all(
        a.lo == 0.0 for a in axes
    ):
        context.insert(
            0, "Scale: common, every axis from 0 (percentages 0-100); ticks on each spoke."
        )
    else:
        context.insert(
            0,
            "Scale: per axis, each axis has its own range (ticks on each spoke); "
            "compare values, not shapes (--scale common: every axis from 0).",
        )
    fig = Figure(figsize=(8.5, 9.0 + 0.2 * len(context)))
    canvas = FigureCanvasAgg(fig)
    bottom = 0.2 + 0.02 * len(context)
    ax: Any = fig.add_axes(
        (0.17, bottom, 0.66, 0.66 * 8.5 / fig.get_figheight() * 1.0), projection="polar"
    )
    ax.set_theta_offset(math.pi / 2.0)
    ax.set_theta_direction(-1)
    ax.set_ylim(0.0, 1.0)
    ax.set_yticks(list(_RINGS))
    ax.set_yticklabels([])
    ax.set_xticks(theta)
    ax.set_xticklabels([])
    ax.grid(color="0.85", linewidth=0.6)
    ax.spines["polar"].set_color("0.6")

    palette = [f"C{i}" for i in range(10)]
    published = set(board.published_rows)
    if annotate is None:
        annotate = len(board.rows) - len(published) <= MAX_ANNOTATED
    closed_theta = np.append(theta, theta[0])
    value_labels: list[tuple[Text, float, float]] = []
    for i, row in enumerate(board.rows):
        raw = values.loc[row, [c.label for c in cols]].to_numpy(dtype=float)
        r = np.array([a.radius(v) if math.isfinite(v) else np.nan for a, v in zip(axes, raw)])
        is_pub = row in published
        color = palette[i % len(palette)]
        ax.plot(
            closed_theta,
            np.append(r, r[0]),
            label=row,
            color=color,
            linestyle="--" if is_pub else "-",
            linewidth=1.2 if is_pub else 2.0,
            marker="o",
            markersize=3 if is_pub else 4,
            zorder=3,
        )
        if np.isfinite(r).all():
            ax.fill(closed_theta, np.append(r, r[0]), color=color, alpha=0.05 if is_pub else 0.12)
        if annotate and not is_pub:
            for t, rv, v, a in zip(theta, r, raw, axes):
                if math.isfinite(rv):
                    txt = ax.text(
                        t,
                        rv,
                        _fmt(a.column, v),
                        fontsize=7,
                        color=color,
                        ha="center",
                        va="center",
                        zorder=5,
                        fontweight="bold",
                    )
                    value_labels.append((txt, t, rv))

    renderer = canvas.get_renderer()
    placed: list[Bbox] = []
    # Axis titles: outside the rim, aligned away from the centre, pushed out on overlap.
    for t, a in zip(theta, axes):
        ang = math.pi / 2.0 - t  # screen angle of the spoke
        ha = "center" if abs(math.cos(ang)) < 0.2 else ("left" if math.cos(ang) > 0 else "right")
        va = "center" if abs(math.sin(ang)) < 0.2 else ("bottom" if math.sin(ang) > 0 else "top")
        txt = ax.text(
            t,
            1.1,
            a.label,
            fontsize=9,
            ha=ha,
            va=va,
            clip_on=False,
            multialignment="center",
            gid=f"axis-{a.column.task}-{a.column.dataset}",
        )
        for k in range(12):
            box = txt.get_window_extent(renderer).padded(2)
            if not any(box.overlaps(b) for b in placed):
                break
            txt.set_position((t, 1.1 + 0.05 * (k + 1)))
        placed.append(txt.get_window_extent(renderer).padded(2))
    # Value labels: the first free spot around the vertex, else dropped.
    offsets = [
        (0.0, 0.07),
        (0.0, -0.07),
        (0.09, 0.0),
        (-0.09, 0.0),
        (0.07, 0.07),
        (-0.07, 0.07),
        (0.07, -0.07),
        (-0.07, -0.07),
        (0.0, 0.13),
        (0.0, -0.13),
    ]
    for txt, t, rv in value_labels:
        for dt, dr in offsets:
            txt.set_position((t + dt / max(rv, 0.25), min(max(rv + dr, 0.03), 1.05)))
            box = txt.get_window_extent(renderer).padded(1)
            if not any(box.overlaps(b) for b in placed):
                placed.append(box)
                break
        else:
            txt.remove()
    # Range labels at the rings, beside the spoke; dropped where they would overlap.
    for t, a in zip(theta, axes):
        for ring, value in zip(_RINGS, a.ticks):
            tick = a.hi - (value - a.lo) if a.inverted else value
            txt = ax.text(
                t + 0.045 / ring,
                ring,
                _tick_fmt(tick, a.ticks[1] - a.ticks[0]),
                fontsize=6,
                color="0.45",
                ha="center",
                va="center",
                zorder=4,
            )
            box = txt.get_window_extent(renderer).padded(1)
            if any(box.overlaps(b) for b in placed):
                txt.remove()
            else:
                placed.append(box)
    ax.legend(
        loc="upper center",
        bbox_to_anchor=(0.5, -0.1),
        ncol=min(3, len(board.rows)),
        fontsize=8,
        frameon=False,
    )
    for k, line in enumerate(context):
        fig.text(
            0.5,
            0.02 + 0.022 * (len(context) - 1 - k),
            line,
            ha="center",
            va="bottom",
            fontsize=7.5,
            color="0.3",
        )
    if title:
        fig.suptitle(title, y=0.985)
    fig.remotesam_axes = axes  # type: ignore[attr-defined]
    return fig


def build_radar(
    runs: Iterable[RunDocument],
    *,
    metrics: str | Sequence[str] = "primary",
    tasks: Sequence[str] | None = None,
    published: bool = False,
    published_models: Sequence[str] | None = None,
    published_table: PublishedTable | None = None,
    title: str | None = None,
    annotate: bool | None = None,
    zoom: bool | None = None,
    scale: str | None = None,
) -> Figure:
    """Radar chart of run documents (see the module docstring).

    Args:
        runs: run documents, oldest first (newer results of a checkpoint win).
        metrics: which columns become axes: ``"primary"`` (default), ``"official"``, ``"all"``
            or metric names.
        tasks: keep only these tasks.
        published: overlay published models (default set :data:`FIG1_MODELS`, restricted to
            those with a number on at least one axis that holds a real-data result).
        published_models: which published models to overlay instead of :data:`FIG1_MODELS`.
        title: figure title.
        annotate: print the checkpoints' values at their vertices (default: when there are at
            most :data:`MAX_ANNOTATED` checkpoints; more would be unreadable).
        zoom: force zoomed (True) or zero-based (False) axis ranges; default: zoom when an
            axis holds several distinct values.
        scale: ``"common"`` or ``"per-axis"`` (overrides ``zoom``); see
            :func:`radar_from_leaderboard`. The figure states the scale it drew.

    Raises:
        ValueError: no results, fewer than :data:`MIN_AXES` axes, or
            ``metrics``/``tasks``/``published_models`` name nothing known.
    """
    board = build_leaderboard(
        runs,
        metrics=metrics,
        tasks=tasks,
        published=published,
        published_models=list(published_models or FIG1_MODELS),
        published_table=published_table,
    )
    return radar_from_leaderboard(
        board, title=title, annotate=annotate, zoom=zoom, published_requested=published, scale=scale
    )


def save_radar(
    fig: Figure, out: str | Path, dpi: int = 150, formats: Sequence[str] = FORMATS
) -> list[Path]:
    """Write ``fig`` as PNG, SVG (text kept as text) and PDF next to each other.

    ``out`` may end in ``.png``, ``.svg`` or ``.pdf`` (the others are written beside it with the
    same stem) or have no suffix.

    Returns:
        The paths written, in ``formats`` order.

    Raises:
        ValueError: ``out`` has another suffix, an unknown format is asked for, or the files
            cannot be written (the message names the path and the OS error).
    """
    out = Path(out)
    if out.suffix.lower() not in ("", *(f".{f}" for f in FORMATS)):
        raise ValueError(
            f"radar output {out}: expected a .png, .svg or .pdf file name, "
            f"got suffix {out.suffix!r}"
        )
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise ValueError(f"radar formats {unknown}: choose among {list(FORMATS)}")
    stem = out.with_suffix("") if out.suffix else out
    paths = [stem.with_name(f"{stem.name}.{f}") for f in formats]
    try:
        stem.parent.mkdir(parents=True, exist_ok=True)
        with matplotlib.rc_context(
            {"svg.fonttype": "none", "pdf.fonttype": 42, "svg.hashsalt": "remotesam-bench"}
        ):
            for p in paths:
                fig.savefig(
                    p,
                    dpi=dpi,
                    format=p.suffix[1:],
                    metadata=_metadata(p.suffix),
                    bbox_inches="tight",
                )
    except OSError as e:
        raise ValueError(f"cannot write radar chart {e.filename or out}: {e.strerror}") from e
    return paths


def _metadata(suffix: str) -> dict[str, str | None]:
    # No timestamps, so the same results give byte-identical files.
    if suffix == ".svg":
        return {"Date": None, "Creator": "remotesam-bench"}
    if suffix == ".pdf":
        return {"CreationDate": None, "Creator": "remotesam-bench", "Producer": None}
    return {"Software": "remotesam-bench"}
