"""Paper-style radar charts (RemoteSAM Fig. 1) from run documents.

One axis per (task, dataset, split, metric) column -- by default each task's primary metric --,
one closed polygon per checkpoint, and optionally the published models overlaid as dashed
polygons (by default the six models of the paper's Fig. 1 that have a number on the axes
shown). Values keep the metric's own unit: each axis is scaled on its own from 0 to a ceiling
slightly above the largest value drawn on it (100 at most for percentages), as the paper does,
and the ceiling is printed at the rim. Axes whose metric is lower-is-better (``MAE``) are
inverted, so outward always means better, and marked ``↓``. Checkpoint vertices are labelled
with their values. A model without a value on an axis has a gap there.

Matplotlib is used without pyplot (an explicit ``Figure``), so nothing depends on a display or
on global state; files are written with the Agg (PNG) and SVG backends.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from remotesam.bench.leaderboard import Column, Leaderboard, build_leaderboard
from remotesam.bench.published import PublishedTable
from remotesam.bench.results import RunDocument

__all__ = ["FIG1_MODELS", "MAX_ANNOTATED", "axis_label", "build_radar", "radar_from_leaderboard", "save_radar"]

#: Vertices are labelled with values by default up to this many checkpoints.
MAX_ANNOTATED = 4

#: The models of the paper's Fig. 1 radar.
FIG1_MODELS = ("RemoteSAM", "Falcon", "GeoChat", "LHRS-Bot", "RingMo", "CroBIM")


def axis_label(col: Column) -> str:
    """``"task/dataset\\nmetric"`` (``:split`` when not test; ``↓`` when lower is better)."""
    ds = col.dataset if col.split == "test" else f"{col.dataset}:{col.split}"
    arrow = "" if col.higher_is_better else " ↓"
    return f"{col.task}/{ds}\n{col.metric}{arrow}"


def _ceiling(col: Column, vmax: float) -> float:
    if not math.isfinite(vmax) or vmax <= 0:
        return 1.0 if col.unit != "%" else 100.0
    hi = vmax * 1.1
    if col.unit == "%":
        hi = min(100.0, hi) if vmax <= 100.0 else hi
    return hi


def _fmt(col: Column, v: float) -> str:
    return f"{v:.1f}" if col.unit == "%" else f"{v:.3g}"


def radar_from_leaderboard(board: Leaderboard, *, title: str | None = None,
                           annotate: bool | None = None) -> Figure:
    """Draw a radar from a built :class:`~remotesam.bench.leaderboard.Leaderboard`.

    Returns a ``matplotlib.figure.Figure`` with one polar ``Axes`` whose x tick labels are the
    axis labels (:func:`axis_label`) and whose ``lines`` are one ``Line2D`` per row, labelled
    with the row label (checkpoints solid, published rows dashed).

    Raises:
        ValueError: the leaderboard has no column.
    """
    cols = board.columns
    if not cols:
        raise ValueError("radar: no metric columns to draw; check --tasks/--metrics")
    n = len(cols)
    theta = np.linspace(0.0, 2.0 * math.pi, n, endpoint=False)
    values = board.values
    ceilings = []
    for c in cols:
        series = values[c.label].to_numpy(dtype=float)
        finite = series[np.isfinite(series)]
        ceilings.append(_ceiling(c, float(finite.max()) if finite.size else math.nan))

    fig = Figure(figsize=(8.0, 8.0))
    ax = fig.add_axes((0.14, 0.2, 0.72, 0.68), projection="polar")
    ax.set_theta_offset(math.pi / 2.0)
    ax.set_theta_direction(-1)
    ax.set_ylim(0.0, 1.0)
    ax.set_yticks([0.25, 0.5, 0.75, 1.0])
    ax.set_yticklabels([])
    ax.set_xticks(theta)
    ax.set_xticklabels([axis_label(c) for c in cols], fontsize=8)
    ax.tick_params(axis="x", pad=10)
    for t, c, hi in zip(theta, cols, ceilings):
        # The axis ceiling (the value at the rim), just inside the rim beside the axis line.
        ax.text(t + 0.06, 0.95, _fmt(c, hi) + (c.unit if c.unit == "%" else ""), fontsize=6,
                color="0.45", ha="center", va="center")

    palette = [f"C{i}" for i in range(10)]
    published = set(board.published_rows)
    if annotate is None:
        annotate = len(board.rows) - len(published) <= MAX_ANNOTATED
    closed_theta = np.append(theta, theta[0])
    for i, row in enumerate(board.rows):
        raw = values.loc[row, [c.label for c in cols]].to_numpy(dtype=float)
        r = np.full(n, np.nan)
        for j, (c, hi) in enumerate(zip(cols, ceilings)):
            v = raw[j]
            if not math.isfinite(v):
                continue
            frac = v / hi if c.higher_is_better else (hi - v) / hi
            r[j] = min(max(frac, 0.0), 1.0)
        is_pub = row in published
        color = palette[i % len(palette)]
        ax.plot(closed_theta, np.append(r, r[0]), label=row, color=color,
                linestyle="--" if is_pub else "-", linewidth=1.2 if is_pub else 2.0,
                marker="o", markersize=3 if is_pub else 4)
        if np.isfinite(r).all():
            ax.fill(closed_theta, np.append(r, r[0]), color=color, alpha=0.06 if is_pub else 0.15)
        if annotate and not is_pub:
            for t, rv, v, c in zip(theta, r, raw, cols):
                if math.isfinite(rv):
                    ax.annotate(_fmt(c, v), (t, rv), fontsize=7, color=color,
                                textcoords="offset points", xytext=(3, 3))
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.08), ncol=min(3, len(board.rows)),
              fontsize=8, frameon=False)
    if title:
        ax.set_title(title, pad=24)
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
) -> Figure:
    """Radar chart of run documents (see the module docstring).

    Args:
        runs: run documents, oldest first (newer results of a checkpoint win).
        metrics: which columns become axes: ``"primary"`` (default), ``"official"``, ``"all"``
            or metric names.
        tasks: keep only these tasks.
        published: overlay published models (default set :data:`FIG1_MODELS`, restricted to
            those with a number on at least one axis).
        published_models: which published models to overlay instead of :data:`FIG1_MODELS`.
        title: figure title.
        annotate: print the checkpoints' values at their vertices (default: when there are at
            most :data:`MAX_ANNOTATED` checkpoints; more would be unreadable).

    Raises:
        ValueError: no results, or ``metrics``/``tasks``/``published_models`` name nothing known.
    """
    board = build_leaderboard(
        runs, metrics=metrics, tasks=tasks, published=published,
        published_models=list(published_models or FIG1_MODELS), published_table=published_table,
    )
    return radar_from_leaderboard(board, title=title, annotate=annotate)


def save_radar(fig: Figure, out: str | Path, dpi: int = 150) -> list[Path]:
    """Write ``fig`` as PNG and SVG next to each other.

    ``out`` may end in ``.png`` or ``.svg`` (the other is written beside it with the same stem)
    or have no suffix (both suffixes are added). Parent folders are created.

    Returns:
        ``[png_path, svg_path]``.

    Raises:
        ValueError: ``out`` has another suffix, or the files cannot be written (the message
            names the path and the OS error).
    """
    out = Path(out)
    if out.suffix.lower() not in ("", ".png", ".svg"):
        raise ValueError(f"radar output {out}: expected a .png or .svg file name, "
                         f"got suffix {out.suffix!r}")
    stem = out.with_suffix("") if out.suffix else out
    paths = [stem.with_name(stem.name + ".png"), stem.with_name(stem.name + ".svg")]
    try:
        stem.parent.mkdir(parents=True, exist_ok=True)
        for p in paths:
            fig.savefig(p, dpi=dpi, format=p.suffix[1:], metadata=_metadata(p.suffix),
                        bbox_inches="tight")
    except OSError as e:
        raise ValueError(f"cannot write radar chart {e.filename or out}: {e.strerror}") from e
    return paths


def _metadata(suffix: str) -> dict[str, str | None]:
    # No timestamps, so the same results give byte-identical files.
    if suffix == ".svg":
        return {"Date": None, "Creator": "remotesam-bench"}
    return {"Software": "remotesam-bench"}
