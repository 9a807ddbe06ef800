"""``remotesam-bench``: the command line of the benchmark harness.

Subcommands::

    remotesam-bench list   [--tasks T,...] [--json]
    remotesam-bench run    [--tasks det,vg] [--suite paper] [--ckpt ckpt.pth]
                           [--ckpt 'runs/*/ckpt.pth' ...]
                           [--data-root DIR] [--dataset-root det.dior=PATH ...]
                           [--limit N] [--device cpu|cuda] [--batch-size B]
                           [--precision fp32|bf16|fp16] [--task-opt det.score_thr=0.3 ...]
                           [--dataset-opt vg.dior_rsvg.allow_partial=true ...]
                           [--results-dir results] [--no-report]
                           [--config run.yaml] [--progress-interval SECONDS]
                           [--log-to tensorboard[:DIR],wandb[:PROJECT],mlflow[:URI]]
                           (no --tasks: the paper suite, its 22 (task, dataset) pairs; no
                           --ckpt: the bundled tiny checkpoint; no --data-root: the embedded
                           procedural benchmark)
    remotesam-bench score  [--run RUN_ID|PATH] [--results-dir results] [--data-root DIR]
    remotesam-bench leaderboard | radar | gate | baseline     (reports, when installed)
    remotesam-bench synth                                    (the embedded benchmark)
    remotesam-bench merge  DIR... --out DIR      (results directories of separate jobs)
    remotesam-bench --version

``python -m remotesam.bench ...`` is the same program (use it with ``torchrun``).

Exit codes:
    0  success (failed *samples* are reported in the results, not in the exit code)
    1  a regression: the gate found a metric worse than its baseline
    2  a usage or input error (bad path, unknown task, missing dataset, broken plugin,
       unwritable results directory, ...); the message says what to fix
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from remotesam.bench.api import DatasetError
from remotesam.bench.errors import EXIT_ERROR, EXIT_OK, EXIT_REGRESSION, BenchError, InputError
from remotesam.precision import PRECISIONS

if TYPE_CHECKING:
    from remotesam.bench.records.results import RunDocument

__all__ = ["EXIT_ERROR", "EXIT_OK", "EXIT_REGRESSION", "build_parser", "format_summary", "main"]

_EPILOG = """exit codes: 0 success; 1 regression (gate); 2 usage or input error.
Run `remotesam-bench COMMAND --help` for a command's options."""


def _key_value(text: str, what: str, example: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise InputError(f"{what} {text!r}: expected KEY=VALUE, e.g. {example}")
    return key.strip(), value


def _parse_value(raw: str) -> Any:
    """``--task-opt`` values: JSON when they parse (numbers, true/false, lists), else text."""
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw


def _task_options(items: Sequence[str]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for item in items:
        key, value = _key_value(item, "--task-opt", "det.score_thr=0.3")
        task, dot, opt = key.partition(".")
        if not dot or not opt:
            raise InputError(
                f"--task-opt {item!r}: expected TASK.KEY=VALUE, e.g. det.score_thr=0.3"
            )
        out.setdefault(task, {})[opt] = _parse_value(value)
    return out


def _dataset_options(items: Sequence[str]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    example = "vg.dior_rsvg.allow_partial=true"
    for item in items:
        key, value = _key_value(item, "--dataset-opt", example)
        task, _, rest = key.partition(".")
        ds, _, opt = rest.partition(".")
        if not task or not ds or not opt:
            raise InputError(
                f"--dataset-opt {item!r}: expected TASK.DATASET.KEY=VALUE, e.g. {example}"
            )
        out.setdefault(f"{task}.{ds}", {})[opt] = _parse_value(value)
    return out


def _dataset_roots(items: Sequence[str]) -> dict[str, str | Path]:
    out: dict[str, str | Path] = {}
    for item in items:
        key, value = _key_value(item, "--dataset-root", "det.dior=/data/DIOR")
        out[key] = value
    return out


def _batch_size(text: str) -> int | str:
    return "auto" if str(text).strip().lower() == "auto" else _positive_int(text)


def _seconds(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds (a number >= 0), got {text!r}"
                                         ) from None
    if not v >= 0:
        raise argparse.ArgumentTypeError(f"expected seconds (a number >= 0), got {text!r}")
    return v


def _non_negative_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}") from None
    if v < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {v}")
    return v


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {v}")
    return v


# -- list --------------------------------------------------------------------------------------


def _cmd_list(args: argparse.Namespace) -> int:
    from rich.table import Table

    from remotesam.bench.api.registry import Registry

    registry = Registry()
    names = registry.resolve(args.tasks) if args.tasks else None
    infos = registry.info(names)
    if args.json:
        rows = []
        for i in infos:
            row: dict[str, Any] = {"name": i.name, "target": i.target, "source": i.source,
                                   "ok": i.ok, "error": i.error}
            if i.plugin is not None:
                p = i.plugin
                row.update(version=p.version, description=p.description,
                           default_dataset=p.default_dataset,
                           datasets={k: {"default_subdir": a.default_subdir,
                                         "splits": list(a.splits)} for k, a in p.datasets.items()},
                           metrics=[{"name": m.name, "higher_is_better": m.higher_is_better,
                                     "primary": m.primary, "unit": m.unit,
                                     "official": m.official} for m in p.metrics])
            rows.append(row)
        print(json.dumps(rows, indent=1))
        return EXIT_OK
    console = _console()
    table = Table(title="remotesam-bench tasks")
    for col in ("task", "version", "datasets (default first)", "metrics (primary first)",
                "description / problem"):
        table.add_column(col, overflow="fold")
    for i in infos:
        if i.plugin is None:
            table.add_row(f"[red]{i.name}[/red]", "-", "-", "-", f"[red]BROKEN[/red]: {i.error}")
            continue
        p = i.plugin
        ds = [p.default_dataset] + [d for d in p.datasets if d != p.default_dataset]
        ms = sorted(p.metrics, key=lambda m: not m.primary)
        metrics = ", ".join(f"{m.name}{'↑' if m.higher_is_better else '↓'}" for m in ms)
        table.add_row(i.name, str(p.version), ", ".join(ds), metrics,
                      f"{p.description}\n[dim]{i.source}[/dim]")
    console.print(table)
    broken = [i for i in infos if not i.ok]
    if broken:
        console.print(f"[red]{len(broken)} broken plugin(s)[/red]; the others work normally.")
    return EXIT_OK


# -- run ---------------------------------------------------------------------------------------


def _console(stderr: bool = False) -> Any:
    """A rich console; wide when not a terminal, so tables in logs are not squeezed."""
    from rich.console import Console

    probe = Console(stderr=stderr)
    # A file or pipe (CI log) gets lines as long as they are: tables are never hard-wrapped.
    return probe if probe.is_terminal else Console(stderr=stderr, width=100_000)


def _fmt(v: float, unit: str) -> str:
    from remotesam.bench.records.results import format_metric

    return format_metric(v, unit, nan="n/a", inf="n/a")


def checkpoint_labels(doc: RunDocument) -> dict[str, str]:
    """``{checkpoint name: label}`` for display: the shortest trailing part of the path that
    tells the run's checkpoints apart, and the first 8 hex digits of the sha256
    (``"remotesam_tiny.safetensors (3f2a1b4c)"``), as the leaderboard, radar and report label
    their rows. The full path stays in the run document."""
    from remotesam.bench.reports.leaderboard import checkpoint_label, short_names

    display = short_names(r.checkpoint.name for r in doc.results)
    return {r.checkpoint.name: checkpoint_label(r, display[r.checkpoint.name], doc.provenance)
            for r in doc.results}


def format_summary(doc: RunDocument) -> Any:
    """A rich ``Table`` of the run: one row per result, primary metric first, failures counted,
    context (synthetic data, ``--limit`` subset) named; checkpoints by :func:`checkpoint_labels`
    (file name and short hash, never a cut path)."""
    from rich.table import Table

    table = Table(title=f"run {doc.run_id}", show_lines=False)
    for col in ("checkpoint", "task", "dataset", "split", "evaluated", "failed", "context",
                "primary", "other metrics"):
        table.add_column(col, justify="right" if col in ("evaluated", "failed") else "left",
                         no_wrap=col != "other metrics")
    labels = checkpoint_labels(doc)
    for r in doc.results:
        prim = [(n, m) for n, m in r.metrics.items() if m.primary]
        rest = [(n, m) for n, m in r.metrics.items() if not m.primary]
        ptxt = ", ".join(f"{n}={_fmt(m.value, m.unit)}" for n, m in prim)
        if prim and prim[0][1].ci95 is not None:
            lo, hi = prim[0][1].ci95
            ptxt += f" [{_fmt(lo, prim[0][1].unit)}, {_fmt(hi, prim[0][1].unit)}]"
        context = [c for c, on in (("synthetic", getattr(r, "synthetic", False)),
                                   ("subset", r.n_evaluated + r.n_failed < r.n_total)) if on]
        table.add_row(labels[r.checkpoint.name], r.task, r.dataset, r.split,
                      f"{r.n_evaluated}/{r.n_evaluated + r.n_failed}"
                      + (f" (of {r.n_total})" if r.n_total != r.n_evaluated + r.n_failed else ""),
                      str(r.n_failed), ", ".join(context) or "-", ptxt,
                      ", ".join(f"{n}={_fmt(m.value, m.unit)}" for n, m in rest))
    return table


def _print_outcome(outcome: Any, warnings_shown: bool = False) -> None:

    if outcome.document is None:
        return
    console = _console()
    console.print(format_summary(outcome.document))
    labels = checkpoint_labels(outcome.document)
    for r in outcome.document.results:
        if r.failures:
            console.print(f"[yellow]{r.task}.{r.dataset} ({labels[r.checkpoint.name]}): "
                          f"{r.n_failed} sample(s) failed[/yellow]")
            for f in r.failures[:5]:
                console.print(f"  {f['sample_id']}: {f['error']}", markup=False)
            if len(r.failures) > 5:
                console.print(f"  ... and {len(r.failures) - 5} more (see the run document)")
    err = _console(stderr=True)
    for w in [] if warnings_shown else getattr(outcome, "warnings", []):
        err.print(f"warning: {w}", markup=False, style="yellow")
    for e in outcome.errors:
        err.print(f"error: {e}", markup=False, style="red")
    if outcome.path is not None:
        console.print(f"run document: {outcome.path}")


def _run_selection(args: argparse.Namespace) -> tuple[list[str], dict[str, dict[str, Any]]]:
    """The run's task selections and task options from ``--tasks``, ``--suite`` and
    ``--task-opt``: with a suite (``--suite``, or neither it nor ``--tasks``: the paper suite)
    its pairs come first, then ``--tasks``; the suite's task options apply unless
    ``--task-opt`` sets the same key."""
    from remotesam.bench.cli.paper import suite_task_options, suite_tasks

    options = _task_options(args.task_opt)
    if args.tasks and not args.suite:
        return list(args.tasks), options
    name = args.suite or "paper"
    merged = {task: dict(opts) for task, opts in suite_task_options(name).items()}
    for task, opts in options.items():
        merged.setdefault(task, {}).update(opts)
    return [*suite_tasks(name), *(args.tasks or [])], merged


def _cmd_run(args: argparse.Namespace) -> int:
    from remotesam.bench.cli.config_file import apply_config_file, resolved_options, save_config
    from remotesam.bench.records.results import runs_dir
    from remotesam.bench.run import RunConfig, evaluate_config, load_model_factory

    run_parser = args._run_parser
    if args.config is not None:  # the command line wins over the file
        args = apply_config_file(args, run_parser, args._run_argv, args.config)
    options = resolved_options(args, run_parser, args.config)
    tasks, task_options = _run_selection(args)
    config = RunConfig(
        tasks=tasks, checkpoints=args.ckpt or [], data_root=args.data_root,
        dataset_roots=_dataset_roots(args.dataset_root), split=args.split, limit=args.limit,
        device=args.device, batch_size=args.batch_size, precision=args.precision,
        task_options=task_options,
        dataset_options=_dataset_options(args.dataset_opt), results_dir=args.results_dir,
        run_id=args.run_id, progress=False if args.no_progress else None,
        progress_interval=args.progress_interval,
        retry_failed=args.retry_failed, options=options,
        compile=bool(getattr(args, "compile", False)),
        channels_last=bool(getattr(args, "channels_last", False)))
    factory = load_model_factory(args.model_factory) if args.model_factory else None
    err = _console(stderr=True)
    outcome = evaluate_config(
        config, model_factory=factory, log_to=args.log_to, tracker_config=options,
        tracker_rows=args.tracker_rows,
        tracker_files=lambda doc: _tracker_files(doc, Path(args.results_dir)),
        on_warning=lambda w: err.print(f"warning: {w}", markup=False, style="yellow"),
        on_info=lambda text: err.print(text, markup=False))
    _print_outcome(outcome, warnings_shown=True)
    if outcome.document is not None:
        doc = outcome.document
        save_config(options, runs_dir(args.results_dir) / f"{doc.run_id}.config.yaml")
        if args.log_to:
            _console().print("logged to: " + ", ".join(map(str, _trackers(args.log_to))),
                             markup=False)
    if outcome.document is not None and outcome.document.results and args.log_samples:
        from remotesam.bench.reports.export import export_runs

        files = export_runs([outcome.document], args.results_dir,
                            Path(args.results_dir) / "samples")
        _console().print(f"per-sample files: {len(files) - 1} under "
                         f"{files[-1].parent / outcome.document.run_id}", markup=False)
    if outcome.document is not None and outcome.document.results and not args.no_report:
        _report(outcome.document, Path(args.results_dir))
    return EXIT_ERROR if outcome.errors else EXIT_OK


def _tracker_files(document: Any, results_dir: Path) -> list[Path]:
    """The run's leaderboard (markdown, HTML) and HTML report beside its run document, for the
    trackers' artefacts: ``runs/<run_id>.leaderboard.md|.html``, ``runs/<run_id>.report.html``.
    A report that cannot be built is left out with a note (the metrics are logged anyway)."""
    from remotesam.bench.records.results import runs_dir
    from remotesam.bench.reports.html.pages import leaderboard_page
    from remotesam.bench.reports.leaderboard import build_leaderboard
    from remotesam.fileio import write_text_atomic

    base = runs_dir(results_dir) / document.run_id
    board = build_leaderboard([document])
    files = [write_text_atomic(Path(f"{base}.leaderboard.md"), board.render("md")),
             write_text_atomic(Path(f"{base}.leaderboard.html"), leaderboard_page(board))]
    try:
        from remotesam.bench.reports.html import write_report

        path, _ = write_report([document], results_dir, Path(f"{base}.report.html"))
        files.append(path)
    except (BenchError, ValueError, OSError) as e:
        _console(stderr=True).print(f"note: the HTML report was not logged ({e})", markup=False)
    return files


def _trackers(log_to: Any) -> list[Any]:
    from remotesam.bench.records.trackers import parse_log_to

    return parse_log_to(log_to)


def _report(document: Any, results_dir: Path) -> None:
    """Print this run's leaderboard and write its radar chart beside the run document."""
    from remotesam.bench.reports.leaderboard import build_leaderboard
    from remotesam.bench.reports.radar import build_radar, save_radar

    console = _console()
    board = build_leaderboard([document], metrics="primary")
    console.print("\nleaderboard (primary metrics; `remotesam-bench leaderboard` for all):")
    console.print(board.render("md"), markup=False)
    try:
        fig = build_radar([document], title=f"run {document.run_id}")
    except ValueError as e:  # e.g. fewer than three axes
        console.print(f"radar chart skipped: {e}", markup=False)
        return
    paths = save_radar(fig, results_dir / "radar.png")
    console.print("radar chart: " + ", ".join(str(p) for p in paths), markup=False)


# -- score -------------------------------------------------------------------------------------


def _cmd_score(args: argparse.Namespace) -> int:
    from remotesam.bench.records.results import find_run
    from remotesam.bench.run import score_run

    try:
        source = find_run(args.run, args.results_dir)
    except (FileNotFoundError, ValueError) as e:
        raise InputError(str(e)) from e
    outcome = score_run(source, results_dir=args.results_dir, data_root=args.data_root,
                        dataset_roots=_dataset_roots(args.dataset_root),
                        tasks=[args.tasks] if args.tasks else None, run_id=args.run_id,
                        out=args.out)
    _print_outcome(outcome)
    return EXIT_ERROR if outcome.errors else EXIT_OK


# -- parser ------------------------------------------------------------------------------------


def _add_optional(sub: Any, module: str, func: str) -> None:
    """Let another part of the project add subcommands, if it is installed."""
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name == module:
            return
        print(f"remotesam-bench: note: {module} is unavailable ({e})", file=sys.stderr)
        return
    except ImportError as e:
        print(f"remotesam-bench: note: {module} is unavailable ({e})", file=sys.stderr)
        return
    getattr(mod, func)(sub)


_CORE_COMMANDS = ("list", "run", "score")


class _VersionAction(argparse.Action):
    """``--version``: computed only when asked (it runs git and reads torch's version)."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS,
                 default: str = argparse.SUPPRESS, help: str | None = None) -> None:
        super().__init__(option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        from remotesam.bench.run import version_text

        print(version_text())
        parser.exit(EXIT_OK)


def build_parser(addons: bool = True) -> argparse.ArgumentParser:
    """The ``remotesam-bench`` argument parser (``list``, ``run``, ``score`` and add-ons).

    Args:
        addons: also register the subcommands of other modules (reports, synth) when they are
            installed; ``main`` skips them for the core commands so that a run never imports
            (or depends on) them.
    """
    parser = argparse.ArgumentParser(
        prog="remotesam-bench", description="Benchmark RemoteSAM checkpoints on remote-sensing "
        "tasks: cached, resumable, sharded runs; leaderboards, radar charts and CI gates.",
        epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action=_VersionAction,
                        help="print the package version, git revision and torch version")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("list", help="list task plugins, their datasets and metrics",
                       epilog=_EPILOG)
    p.add_argument("--tasks", help="only these tasks (comma-separated)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=_cmd_list)

    p = sub.add_parser("run", help="evaluate checkpoints on tasks (cached, resumable)",
                       epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tasks", action="append", default=None, metavar="T[,T...]",
                   help="tasks: 'det' (default dataset), 'det.dior', 'det.*' (all datasets), "
                   "'all' (every task's default dataset); comma-separated or repeated. "
                   "Default: --suite paper")
    p.add_argument("--suite", choices=["paper"], default=None,
                   help="a named suite: 'paper', every (task, dataset) pair of the RemoteSAM "
                   "paper's tables and figures (22); with --tasks, both")
    p.add_argument("--ckpt", action="append", metavar="PATH|DIR|GLOB|hf://REPO/FILE[@REV]",
                   help="checkpoint file, directory, quoted glob, or Hugging Face Hub URI "
                   "hf://OWNER/REPO/FILE[@REVISION] (its cache; HF_HUB_OFFLINE=1 reads only "
                   "the cache); repeatable (a sweep). Default: the bundled tiny checkpoint")
    p.add_argument("--data-root", metavar="DIR",
                   help="root of the datasets in the official layout. Default: the embedded "
                   "procedural benchmark, written once under --results-dir/embedded")
    p.add_argument("--dataset-root", action="append", default=[], metavar="TASK.DATASET=PATH",
                   help="where one dataset lives (overrides --data-root); repeatable")
    p.add_argument("--split", help="split for every dataset (default: the official one)")
    p.add_argument("--limit", type=_positive_int, metavar="N",
                   help="only the first N samples of each dataset")
    p.add_argument("--device", default="auto", help="auto (default), cpu, cuda, cuda:N")
    p.add_argument("--batch-size", type=_batch_size, default=8, metavar="B|auto",
                   help="image-prompt items per forward pass (default 8); auto: the largest "
                   "power of two that fits in GPU memory, found once and recorded")
    p.add_argument("--compile", action="store_true", help="torch.compile the network")
    p.add_argument("--channels-last", action="store_true",
                   help="channels_last (NHWC) memory format for the network (GPUs)")
    p.add_argument("--precision", default="fp32", choices=list(PRECISIONS),
                   help="fp16 needs CUDA")
    p.add_argument("--task-opt", action="append", default=[], metavar="TASK.KEY=VALUE",
                   help="a task setting (part of the cache key); value parsed as JSON if it "
                   "can be; repeatable")
    p.add_argument("--dataset-opt", action="append", default=[], metavar="TASK.DATASET.KEY=VALUE",
                   help="a dataset adapter option (ann_file, image_dir, allow_partial ...: "
                   "see the adapter's docstring; an unknown one is reported with the accepted "
                   "names); value parsed as JSON if it can be; repeatable")
    p.add_argument("--results-dir", default="results", metavar="DIR",
                   help="where store.sqlite and runs/ live (default: ./results)")
    p.add_argument("--run-id", help="id of the run document (default: timestamp)")
    p.add_argument("--no-progress", action="store_true",
                   help="no progress bars and no progress lines")
    p.add_argument("--progress-interval", type=_seconds, default=None, metavar="SECONDS",
                   help="when stderr is not a terminal (a log), one progress line per task "
                   "every SECONDS (done/total, samples and image-prompts per second, ETA) and "
                   "each task's time at the end; default $REMOTESAM_PROGRESS_INTERVAL or 30; "
                   "0: none")
    p.add_argument("--no-report", action="store_true",
                   help="do not print the leaderboard or write radar.png after the run")
    p.add_argument("--log-samples", action="store_true",
                   help="also write per-sample JSONL (target, prediction, per-sample metrics) "
                   "and COCO results to <results-dir>/samples/ (as `remotesam-bench export`)")
    p.add_argument("--retry-failed", action="store_true",
                   help="predict again the samples that failed in an earlier run")
    p.add_argument("--model-factory", metavar="MODULE:FUNCTION",
                   help="load models with FUNCTION(path, device=, precision=, batch_size=) "
                   "instead of remotesam.RemoteSAM.from_checkpoint")
    p.add_argument("--config", metavar="FILE.yaml",
                   help="read these options from a YAML/JSON file (keys: the long option "
                   "names, dashes or underscores); command-line flags override it. The "
                   "resolved options are saved as <results-dir>/runs/<run_id>.config.yaml")
    p.add_argument("--log-to", action="append", default=[],
                   metavar="tensorboard[:DIR],wandb[:PROJECT],mlflow[:URI]",
                   help="log every metric per checkpoint (step: the training step of a "
                   "checkpoint, else its index), the run's parameters, per-sample tables and "
                   "the HTML report and leaderboard to TensorBoard (default DIR "
                   "<results-dir>/tensorboard/<run_id>), Weights & Biases ($WANDB_DIR or "
                   "<results-dir>) and/or MLflow (default URI $MLFLOW_TRACKING_URI or the file "
                   "store <results-dir>/mlruns); extras remotesam-bench[tensorboard], "
                   "[wandb], [mlflow]")
    p.add_argument("--tracker-rows", type=_non_negative_int, default=1000, metavar="N",
                   help="rows of each per-sample table sent to --log-to trackers (default "
                   "1000 per checkpoint, task and dataset; 0: no tables)")
    p.set_defaults(func=_cmd_run, _run_parser=p)

    p = sub.add_parser("score", help="re-score stored predictions without a model",
                       epilog=_EPILOG)
    p.add_argument("--run", metavar="RUN_ID|PATH",
                   help="the run to re-score (default: the latest in --results-dir)")
    p.add_argument("--results-dir", default="results", metavar="DIR")
    p.add_argument("--data-root", metavar="DIR", help="override the run's data root")
    p.add_argument("--dataset-root", action="append", default=[], metavar="TASK.DATASET=PATH")
    p.add_argument("--tasks", metavar="T[,T...]", help="only these tasks")
    p.add_argument("--run-id", help="id of the new run document")
    p.add_argument("--out", metavar="FILE",
                   help="write the new run document here (default: <results-dir>/runs/; "
                        "needed to save it when the results dir is read-only)")
    p.set_defaults(func=_cmd_score)

    if addons:
        _add_optional(sub, "remotesam.bench.cli.reports", "add_subcommands")
        _add_optional(sub, "remotesam.synth.cli", "add_subcommand")
        _add_optional(sub, "remotesam.bench.cli.newtask", "add_subcommand")
        _add_optional(sub, "remotesam.bench.cli.data", "add_subcommand")
        _add_optional(sub, "remotesam.bench.cli.paper", "add_subcommand")
        _add_optional(sub, "remotesam.bench.run.merge", "add_subcommand")
    return parser


def _show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                  file: Any = None, line: str | None = None) -> None:
    """The project's own warnings (e.g. a stray file skipped in runs/) as one plain line;
    others as Python shows them."""
    if getattr(category, "__module__", "").split(".")[0] in ("remotesam", "remotesam_plugins"):
        print(f"remotesam-bench: warning: {message}", file=file or sys.stderr)
    else:
        _PYTHON_SHOWWARNING(message, category, filename, lineno, file, line)


_PYTHON_SHOWWARNING = warnings.showwarning


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``remotesam-bench`` with ``argv`` (default ``sys.argv[1:]``); returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(addons=not (argv and argv[0] in _CORE_COMMANDS))
    args = parser.parse_args(argv)
    if args.command == "run":  # config files need to know which flags were given
        args._run_argv = argv[argv.index("run") + 1:]
    if getattr(args, "func", None) is None:
        parser.print_help(sys.stderr)
        return EXIT_ERROR
    if args.command in ("run", "paper"):  # before torch is imported (remotesam.cpu)
        from remotesam.cpu import available_cpus, choose_wait_policy, free_cpus

        choose_wait_policy()
        from remotesam.engine import tune_host_allocator

        tune_host_allocator()  # before any helper thread has an arena of its own
        free, available = free_cpus(), available_cpus()
        if free < available:
            print(f"remotesam-bench: other processes keep CPUs busy: PyTorch runs {free} "
                  f"intra-op thread(s) instead of {available}, OpenMP wait policy "
                  f"{os.environ.get('OMP_WAIT_POLICY', 'default')} (CPU logits may differ from "
                  "a quiet run's in their last bits; OMP_NUM_THREADS fixes the count)",
                  file=sys.stderr)
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            return int(args.func(args))
    except (BenchError, DatasetError) as e:
        print(f"remotesam-bench: error: {e}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("remotesam-bench: interrupted; every finished batch is stored, run the same "
              "command again to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
