"""Command-line sub-commands for reports: ``leaderboard``, ``radar``, ``gate``, ``baseline``.

:func:`add_subcommands` registers them on the ``remotesam-bench`` parser (``cli.py``); each
parser's ``func`` is a handler ``(args) -> int`` returning the exit code:

* 0 success (``gate``: every metric passed);
* 1 ``gate`` only: at least one metric regressed;
* 2 error: no run documents, unknown run id, missing or malformed baseline, a metric missing
  from the run, ``gate`` on sample sets that differ from the baseline's (not comparable) or
  with nothing checkable, unwritable output. The message goes to stderr, without a traceback.

``gate`` also speaks CI: ``--junit FILE`` (JUnit XML, one testcase per gated metric),
GitHub annotations (``::error title=...::...`` lines on stdout when ``GITHUB_ACTIONS=true`` or
with ``--annotations github``) and a Markdown step summary (appended to
``$GITHUB_STEP_SUMMARY`` when set, written to ``--summary FILE``).

Common options: ``--results-dir`` (default ``results``) and ``--run`` (a run document path or
run id, repeatable for ``leaderboard``/``radar``; default: every run there for leaderboard and
radar, the newest for gate and baseline).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

from remotesam.bench.errors import EXIT_ERROR, EXIT_OK, EXIT_REGRESSION  # noqa: F401
from remotesam.bench.records.results import (
    find_run,
    resolve_run,
    resolve_runs,
)

__all__ = ["add_subcommands"]


class _UserError(Exception):
    """Bad input from the command line; printed as ``error: ...`` with exit code 2."""


def _csv_list(text: str | None) -> list[str] | None:
    if not text:
        return None
    return [t.strip() for t in text.split(",") if t.strip()]


def _write_or_print(text: str, out: str | None) -> None:
    if out is None:
        sys.stdout.write(text)
        return
    path = Path(out)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as e:
        raise ValueError(f"cannot write {path}: {e.strerror}") from e
    print(f"wrote {path}", file=sys.stderr)


def _guard(func: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Turn user errors into ``error: ...`` on stderr and exit code 2 (no traceback)."""
    import functools

    from remotesam.bench.gate import GateError

    @functools.wraps(func)
    def wrapper(args: argparse.Namespace) -> int:
        try:
            return func(args)
        except (ValueError, GateError, FileNotFoundError, _UserError) as e:
            print(f"error: {e}", file=sys.stderr)
            return EXIT_ERROR

    return wrapper


# ----------------------------------------------------------------------------- handlers


@_guard
def _leaderboard(args: argparse.Namespace) -> int:
    from remotesam.bench.reports.leaderboard import build_leaderboard

    runs = resolve_runs(args.run, args.results_dir)
    latex = args.format in ("latex", "tex")
    metrics = args.metrics or ("primary" if latex else "all")
    board = build_leaderboard(
        runs, metrics=metrics, tasks=_csv_list(args.tasks), ci=args.ci,
        published=args.published or bool(args.published_models),
        published_models=_csv_list(args.published_models), n_boot=args.n_boot,
    )
    options = {"caption": args.caption, "label": args.label} if latex else {}
    if args.format == "html":  # a standalone, sortable page
        from remotesam.bench.reports.html.pages import leaderboard_page

        text = leaderboard_page(board)
    else:
        text = board.render(args.format, **options)
    _write_or_print(text, args.out)
    return EXIT_OK


@_guard
def _radar(args: argparse.Namespace) -> int:
    from remotesam.bench.reports.radar import build_radar, save_radar

    runs = resolve_runs(args.run, args.results_dir)
    fig = build_radar(runs, metrics=args.metrics, tasks=_csv_list(args.tasks),
                      published=args.published or bool(args.published_models),
                      published_models=_csv_list(args.published_models), title=args.title,
                      scale=args.scale)
    for p in save_radar(fig, args.out):
        print(f"wrote {p}", file=sys.stderr)
    context = [t.get_text() for t in fig.texts if t.get_text() != (args.title or "")]
    for line in context:
        print(f"note: {line}", file=sys.stderr)
    return EXIT_OK


@_guard
def _gate(args: argparse.Namespace) -> int:
    import os

    from rich.console import Console

    from remotesam.bench.gate import Baseline, GateError, compare
    from remotesam.bench.gate import verdict as gate_report

    mode = args.annotations
    if mode == "auto":
        mode = "github" if os.environ.get("GITHUB_ACTIONS") == "true" else "none"
    try:
        baseline = Baseline.load(args.baseline)
        run = find_run(args.run, args.results_dir)
        report = compare(run, baseline, checkpoint=args.checkpoint, alpha=args.alpha,
                         n_perm=args.n_perm, baseline_path=str(args.baseline),
                         intersection=args.intersection, tasks=_csv_list(args.tasks))
    except (GateError, ValueError, FileNotFoundError) as e:
        # the CI outputs say why the gate could not run (the message also goes to stderr)
        if mode == "github":
            print(gate_report.error_annotation(str(e)), flush=True)
        if args.junit:
            _write_or_print(gate_report.error_junit(str(e)), args.junit)
        if args.summary:
            _write_or_print(gate_report.error_markdown(str(e)), args.summary)
        _append_step_summary(gate_report.error_markdown(str(e)))
        raise
    # a pipe or CI log gets the table unwrapped; a terminal gets its own width
    console = Console(stderr=False, width=None if sys.stdout.isatty() else 1000)
    if args.all or report.moved() or not report.passed:
        console.print(report.table(show_all=args.all))
    else:
        console.print(f"{report.summary()} (no metric moved; --all lists them)", markup=False)
    for group in report.groups:
        if args.all or group.flags or not group.comparable:
            console.print(f"context: {group.describe()}", markup=False)
    for note in report.notes:
        console.print(f"note: {note}", markup=False)
    if mode == "github":
        for line in report.github_annotations():
            print(line, flush=True)
    if args.json:
        _write_or_print(json.dumps(report.to_dict(), indent=1) + "\n", args.json)
    if args.junit:
        _write_or_print(report.to_junit(), args.junit)
    markdown = report.to_markdown(show_all=args.all)
    if args.summary:
        _write_or_print(markdown, args.summary)
    _append_step_summary(markdown)
    return report.exit_code


def _append_step_summary(markdown: str) -> None:
    """Append to ``$GITHUB_STEP_SUMMARY`` when GitHub Actions set it."""
    import os

    step_summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if not step_summary:
        return
    try:
        with open(step_summary, "a", encoding="utf-8") as fh:
            fh.write(markdown)
    except OSError as e:
        raise ValueError(f"cannot append to $GITHUB_STEP_SUMMARY ({step_summary}): "
                         f"{e.strerror}") from e


@_guard
def _baseline(args: argparse.Namespace) -> int:
    from remotesam.bench.gate import write_baseline

    run = find_run(args.run, args.results_dir)
    base = write_baseline(run, args.out, default_abs_tol=args.abs_tol,
                          default_rel_tol=args.rel_tol, hard_factor=args.hard_factor,
                          checkpoint=args.checkpoint, tasks=_csv_list(args.tasks),
                          include_per_sample=not args.no_per_sample,
                          failed_tol=args.failed_tol, hard_min_samples=args.hard_min_samples)
    print(f"wrote {args.out}: {len(base.metrics)} metric(s) and the sample sets of "
          f"{len(base.samples)} task/dataset(s) from run {run.run_id}", file=sys.stderr)
    for (_, task, dataset, split), s in base.samples.items():
        context = [c for c, on in (("subset", s.subset), ("synthetic data", s.synthetic),
                                   (f"{s.n_failed} failed", s.n_failed)) if on]
        if context:
            print(f"note: {task}/{dataset}:{split}: {', '.join(context)} ({s.n_evaluated} "
                  f"evaluated of {s.n_total}); the gate compares only runs on the same samples",
                  file=sys.stderr)
    return EXIT_OK


def _registry() -> object:
    """The task registry used by ``export`` and ``report`` (installed entry points)."""
    from remotesam.bench.api.registry import Registry

    return Registry()


@_guard
def _export(args: argparse.Namespace) -> int:
    from remotesam.bench.errors import InputError
    from remotesam.bench.reports.export import export_runs

    runs = ([resolve_run(s, args.results_dir) for s in args.run] if args.run
            else [find_run(None, args.results_dir)])
    try:
        files = export_runs(runs, args.results_dir, args.out, registry=_registry(),
                            tasks=_csv_list(args.tasks), data_root=args.data_root)
    except InputError as e:
        raise _UserError(str(e)) from e
    print(f"wrote {len(files) - 1} file(s) and {files[-1]}", file=sys.stderr)
    return EXIT_OK


@_guard
def _report_cmd(args: argparse.Namespace) -> int:
    from remotesam.bench.reports.html import write_report

    runs = resolve_runs(args.run, args.results_dir)
    out = args.out or str(Path(args.results_dir) / "report.html")
    path, stats = write_report(runs, args.results_dir, out, gallery_k=args.gallery_k,
                               compare=args.compare, registry=_registry(),
                               data_root=args.data_root, seed=args.seed)
    size = path.stat().st_size
    print(f"wrote {path} ({size / 1e6:.2f} MB; {stats.thumbnails} thumbnail(s), "
          f"{stats.cache_hits} from the cache"
          + (f", {stats.left_out} left out" if stats.left_out else "") + ")", file=sys.stderr)
    for err in stats.load_errors:
        print(f"note: {err}", file=sys.stderr)
    return EXIT_OK


# ----------------------------------------------------------------------------- parsers


def _common(p: argparse.ArgumentParser, many_runs: bool) -> None:
    p.add_argument("--results-dir", default="results",
                   help="results folder holding runs/<run_id>.json (default: results)")
    if many_runs:
        p.add_argument("--run", action="append", metavar="RUN",
                       help="run document path or run id (repeatable; default: every run in "
                            "--results-dir, newer results of a checkpoint win)")
    else:
        p.add_argument("--run", metavar="RUN",
                       help="run document path or run id (default: the newest run)")


def _published_opts(p: argparse.ArgumentParser, default_models: str) -> None:
    p.add_argument("--published", action="store_true",
                   help="add the numbers published in the RemoteSAM paper as reference rows")
    p.add_argument("--published-models", metavar="A,B",
                   help=f"comma-separated published models to show (default: {default_models})")


def add_subcommands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``leaderboard``, ``radar``, ``gate`` and ``baseline`` on ``subparsers``."""
    p = subparsers.add_parser(
        "leaderboard", help="table of checkpoints x task/dataset/metric",
        description="Pivot run documents into a leaderboard (primary metric of each task "
                    "first, best value per column marked).")
    _common(p, many_runs=True)
    p.add_argument("--format", default="md",
                   choices=["md", "markdown", "csv", "html", "latex", "tex"],
                   help="output format (default: md)")
    p.add_argument("--metrics", default=None,
                   help="all, primary, official, or comma-separated metric names (default: "
                        "all; primary for --format latex)")
    p.add_argument("--tasks", metavar="T1,T2", help="only these tasks")
    p.add_argument("--caption", help="LaTeX: the table caption (default: a generic one)")
    p.add_argument("--label", default="tab:remotesam-bench",
                   help="LaTeX: the table label (default tab:remotesam-bench)")
    p.add_argument("--ci", action="store_true",
                   help="show 95%% bootstrap confidence intervals where per-sample values exist")
    p.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples (default 1000)")
    _published_opts(p, "every model with a number in the columns shown")
    p.add_argument("--out", metavar="FILE", help="write to FILE instead of stdout")
    p.set_defaults(func=_leaderboard)

    p = subparsers.add_parser(
        "radar", help="paper-style radar chart (PNG + SVG + PDF)",
        description="One axis per task/dataset/metric (at least 3), each with its own "
                    "labelled range; one polygon per checkpoint.")
    _common(p, many_runs=True)
    p.add_argument("--out", default="radar.png",
                   help="output .png, .svg or .pdf (the other two formats are written beside "
                        "it with the same stem; default radar.png)")
    p.add_argument("--metrics", default="primary",
                   help="axes: primary (default), official, all, or metric names")
    p.add_argument("--tasks", metavar="T1,T2", help="only these tasks")
    p.add_argument("--title", help="figure title")
    p.add_argument("--scale", choices=("common", "per-axis"), default=None,
                   help="common: every axis from 0 (percentages 0-100); per-axis: each axis "
                        "zoomed to its own labelled range; default: per axis where it holds "
                        "several values. The figure states the scale.")
    _published_opts(p, "the models of the paper's Fig. 1")
    p.set_defaults(func=_radar)

    p = subparsers.add_parser(
        "report", help="one self-contained HTML report (leaderboard, radar, galleries ...)",
        description="Write one offline HTML file: sortable leaderboard, radar, per-task "
                    "tables and curves, failure galleries with overlays, checkpoint "
                    "comparison and sweep view.")
    _common(p, many_runs=True)
    p.add_argument("--out", metavar="FILE",
                   help="output HTML file (default: <results-dir>/report.html)")
    p.add_argument("--gallery-k", type=int, default=4, metavar="K",
                   help="worst and random samples shown per task (default 4, at most 50)")
    p.add_argument("--compare", nargs=2, metavar=("CKPT_A", "CKPT_B"),
                   help="compare two checkpoints (name, file name or sha256 prefix); default: "
                        "the two checkpoints when the runs hold exactly two")
    p.add_argument("--seed", type=int, default=0, help="seed of the random gallery samples")
    p.add_argument("--data-root", metavar="DIR",
                   help="read the datasets from here instead of the runs' data roots")
    p.set_defaults(func=_report_cmd)

    p = subparsers.add_parser(
        "export", help="per-sample JSONL (and COCO results) of a run's predictions",
        description="Write, per checkpoint and task/dataset, one JSONL line per sample (id, "
                    "image, target, prediction, failure, per-sample metrics) and COCO results "
                    "JSON for box predictions, plus manifest.json with each result's context.")
    p.add_argument("--results-dir", default="results",
                   help="results folder holding store.sqlite and runs/ (default: results)")
    p.add_argument("--run", action="append", metavar="RUN",
                   help="run document path or run id (repeatable; default: the newest run)")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument("--tasks", metavar="T1,T2", help="only these tasks")
    p.add_argument("--data-root", metavar="DIR",
                   help="read the datasets from here instead of the run's data root")
    p.set_defaults(func=_export)

    p = subparsers.add_parser(
        "gate", help="fail (exit 1) when a run regressed against a baseline",
        description="Compare a run with a baseline file per metric on matched samples "
                    "(direction-aware, with tolerances, failed samples gated as n_failed, exact "
                    "paired tests at small n). Exit 0 pass, 1 regression, 2 not comparable "
                    "(different sample sets), nothing checkable, or an input error.")
    _common(p, many_runs=False)
    p.add_argument("--baseline", required=True, metavar="FILE", help="baseline JSON file")
    p.add_argument("--checkpoint", help="checkpoint name or sha256 prefix to judge when the "
                                        "run holds several")
    p.add_argument("--alpha", type=float, default=None,
                   help="significance level of the paired test (default: the baseline's, 0.05)")
    p.add_argument("--n-perm", "--n-boot", dest="n_perm", type=int, default=10000,
                   help="random swaps of the paired permutation test when more than 20 samples "
                        "changed (default 10000; fewer are enumerated exactly)")
    p.add_argument("--intersection", action="store_true",
                   help="score sample sets that differ from the baseline's (e.g. a --limit run) "
                        "on their common samples instead of exiting 2 (not comparable)")
    p.add_argument("--tasks", metavar="T1,T2",
                   help="gate only these tasks (det or det.dior) of the baseline")
    p.add_argument("--all", action="store_true", help="also list unchanged metrics")
    p.add_argument("--json", metavar="FILE", help="also write the report as JSON")
    p.add_argument("--junit", metavar="FILE",
                   help="also write JUnit XML (one testcase per gated metric)")
    p.add_argument("--annotations", choices=["auto", "github", "none"], default="auto",
                   help="print GitHub Actions ::error/::warning lines (auto: when "
                        "GITHUB_ACTIONS=true)")
    p.add_argument("--summary", metavar="FILE",
                   help="also write the Markdown summary to FILE (it is always appended to "
                        "$GITHUB_STEP_SUMMARY when that is set)")
    p.set_defaults(func=_gate)

    p = subparsers.add_parser(
        "baseline", help="write a baseline file from a run",
        description="Write a baseline for `remotesam-bench gate` from a run (default: newest).")
    _common(p, many_runs=False)
    p.add_argument("--out", default="baseline.json", help="baseline file (default baseline.json)")
    p.add_argument("--abs-tol", type=float, default=None,
                   help="absolute tolerance for every metric (default: 0.5 for %% metrics)")
    p.add_argument("--rel-tol", type=float, default=None,
                   help="relative tolerance for every metric (default: 0.02 for non-%% metrics)")
    p.add_argument("--hard-factor", type=float, default=3.0,
                   help="a drop beyond this many tolerances fails without a significance test "
                        "(default 3)")
    p.add_argument("--checkpoint", help="only this checkpoint (name or sha256 prefix)")
    p.add_argument("--tasks", metavar="T1,T2", help="only these tasks")
    p.add_argument("--no-per-sample", action="store_true",
                   help="do not store per-sample values (smaller file, no paired test; the "
                        "evaluated and failed sample ids are always stored)")
    p.add_argument("--failed-tol", type=int, default=0,
                   help="newly failed samples allowed per task/dataset (default 0)")
    p.add_argument("--hard-min-samples", type=float, default=3.0,
                   help="at small n the hard tolerance is at least this many samples' worth of "
                        "change (default 3)")
    p.set_defaults(func=_baseline)
