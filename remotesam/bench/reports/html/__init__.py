"""The self-contained HTML report: ``remotesam-bench report``.

One HTML file per results directory or run selection, readable offline (no network: CSS, JS,
SVG charts and JPEG thumbnails are inline, images as ``data:`` URIs)::

    remotesam-bench report [--results-dir results] [--run RUN ...] [--out report.html]
                           [--gallery-k K] [--compare CKPT_A CKPT_B]

What it holds:

* a sortable leaderboard (95% intervals, best bold and second underlined, flags for synthetic
  data, ``--limit`` subsets and failed samples, the paper's numbers where comparable) and the
  radar chart (inline SVG), as :mod:`remotesam.bench.reports.leaderboard` /
  :mod:`~remotesam.bench.reports.radar`;
* per task/dataset and checkpoint: the metrics with their context, the plugin's tables
  (``Scores.tables``: AP / IoU per class ...), a confusion matrix for single-label
  classification, precision-recall curves for box predictions
  (:mod:`remotesam.bench.reports.html.data`), and a **failure gallery**: the ``K`` worst samples by
  the task's per-sample value and ``K`` random ones (seeded), drawn with ground truth vs
  prediction (:mod:`remotesam.bench.reports.html.painters`), and the failed samples with their
  errors;
* a **checkpoint comparison** (``--compare A B``, or automatically when the selection holds
  exactly two checkpoints): per task the paired per-sample differences, their mean with a
  bootstrap interval, how many samples got better or worse, and the samples that changed most
  with both pictures;
* a **sweep view** when there are several checkpoints: every metric against the training step
  parsed from the checkpoint names (``step_12000``, ``checkpoint-12000``, ``ep3`` ...), or the
  run order when names carry none.

Samples and targets are read again with the plugins' dataset adapters from the data roots,
splits and options in each run's provenance; predictions come from the store. A dataset that
is gone costs its pictures, not the report (the section says why).

Size: thumbnails are at most 256 px (JPEG) and a report holds at most
:data:`~remotesam.bench.reports.html.pages.MAX_THUMBNAILS` (300) of them, ``K`` is clipped to 50,
per-class tables to 200 rows and PR curves to 120 points: a report stays under about 8 MB
whatever the number of samples (a 2,000-sample run with ``K=4`` is well under 1 MB).
Thumbnails are cached under ``<results>/report_cache/thumbs/`` (see
:mod:`remotesam.bench.reports.html.thumbs`), so a second report draws nothing again.

Python::

    from remotesam.bench.reports.html import write_report
    path, stats = write_report(runs, "results", "report.html", gallery_k=6)
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from remotesam.bench.records.results import RunDocument
from remotesam.bench.reports.html.pages import (
    MAX_GALLERY_K,
    MAX_THUMBNAILS,
    ReportStats,
    render_report,
)
from remotesam.fileio import write_text_atomic

__all__ = ["MAX_GALLERY_K", "MAX_THUMBNAILS", "ReportStats", "render_report", "write_report"]


def write_report(runs: Sequence[RunDocument], results_dir: str | Path, out: str | Path, *,
                 gallery_k: int = 4, compare: Sequence[str] | None = None,
                 registry: Any = None, data_root: str | Path | None = None, seed: int = 0,
                 max_thumbnails: int = MAX_THUMBNAILS) -> tuple[Path, ReportStats]:
    """Render the report of ``runs`` and write it to ``out`` (atomically).

    Raises:
        ValueError: no results, a bad ``gallery_k`` or ``compare``, or ``out`` cannot be
            written (the message names the path).
    """
    text, stats = render_report(runs, results_dir, gallery_k=gallery_k, compare=compare,
                                registry=registry, data_root=data_root, seed=seed,
                                max_thumbnails=max_thumbnails)
    out = Path(out)
    try:
        write_text_atomic(out, text)
    except OSError as e:
        raise ValueError(f"cannot write the report {out}: {e.strerror}") from e
    return out, stats
