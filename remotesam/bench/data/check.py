"""``remotesam-bench data``: what each dataset is, where to get it, and whether a data root
holds it.

Subcommands::

    remotesam-bench data list    [--tasks T[.DS],...] [--format table|json]
    remotesam-bench data check   --data-root DIR [--tasks T[.DS],...] [--format table|json]
    remotesam-bench data prepare NAME --src RELEASE_DIR --out DATA_ROOT  (data.prepare)
    remotesam-bench data fetch   NAME --out DIR                         (data.fetch)

``list`` prints every dataset of every installed task from its adapter's
:class:`~remotesam.bench.api.datainfo.DatasetInfo`. ``check`` verifies a data root, one table per
dataset: each ``layout`` entry (a glob, ``a | b`` = either) must match a file, each ``counts``
glob (``a | b``: the alternative with most files) must match at least the official number of
files, each ``checksums`` file must have its
sha256; then the adapter is constructed (it validates its own layout). A data root written by
``remotesam-bench synth`` (``manifest.json``) is checked against the manifest's sha256 instead of
the official counts. Status per dataset: ``complete``, ``incomplete`` (something there, something
wrong or short), ``missing`` (nothing there), ``undescribed`` (no ``info``; adapter check only),
``absent (optional)`` (a training set or a generic adapter not named in ``--tasks``).
Exit 0 when every requested dataset is complete, else 2 with one line naming the first problem.
"""

from __future__ import annotations

import argparse
import fnmatch
import hashlib
import json
import os
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from remotesam.bench.api import DatasetAdapter, DatasetError, TaskPlugin
from remotesam.bench.api.datainfo import DatasetInfo
from remotesam.bench.errors import EXIT_INPUT, EXIT_OK, BenchError, InputError

__all__ = [
    "CheckItem",
    "DatasetCheck",
    "DatasetEntry",
    "check_dataset",
    "cmd_check",
    "cmd_list",
    "dataset_entries",
    "glob_files",
]


@dataclass(frozen=True)
class DatasetEntry:
    """One (task, dataset) pair of the registry: ``key`` is ``"task.dataset"``."""

    task: str
    dataset: str
    adapter: type[DatasetAdapter]

    @property
    def key(self) -> str:
        return f"{self.task}.{self.dataset}"

    @property
    def info(self) -> DatasetInfo | None:
        return getattr(self.adapter, "info", None)


def dataset_entries(tasks: str | None = None) -> list[DatasetEntry]:
    """The (task, dataset) pairs of the installed tasks, in registry order.

    Args:
        tasks: ``None``/``"all"`` for every task, else comma-separated ``task`` or
            ``task.dataset`` names.

    Raises:
        InputError: an unknown task or dataset, or a named task plugin that does not load
            (with every task, a plugin that does not load is left out with a note on stderr).
    """
    from remotesam.bench.api.registry import Registry

    reg = Registry()
    wanted: list[tuple[str, str | None]] = []
    for part in (tasks or "all").split(","):
        part = part.strip()
        if not part:
            continue
        t, _, d = part.partition(".")
        for name in reg.resolve(t):
            wanted.append((name, d or None))
    out: list[DatasetEntry] = []
    for name, ds in wanted:
        try:
            plugin: type[TaskPlugin] = reg.get(name)
        except BenchError as e:
            if tasks not in (None, "all"):
                raise
            print(
                f"remotesam-bench: note: task {name!r} does not load, its datasets are left "
                f"out ({str(e).splitlines()[0]})",
                file=sys.stderr,
            )
            continue
        if ds is not None and ds not in plugin.datasets:
            raise InputError(
                f"--tasks {name}.{ds}: task {name!r} has no dataset {ds!r}; it has "
                f"{', '.join(plugin.datasets)}"
            )
        for d, adapter in plugin.datasets.items():
            entry = DatasetEntry(name, d, adapter)
            if (ds is None or d == ds) and entry not in out:
                out.append(entry)
    return out


def _layout_text(adapter: type[DatasetAdapter]) -> str:
    info = getattr(adapter, "info", None)
    if info is not None:
        return "; ".join(info.layout)
    return " ".join(str(getattr(adapter, "layout", "")).split())


def _list_rows(entries: Sequence[DatasetEntry]) -> list[dict[str, Any]]:
    rows = []
    for e in entries:
        i = e.info
        row: dict[str, Any] = {
            "task": e.task,
            "dataset": e.dataset,
            "subdir": e.adapter.default_subdir,
            "described": i is not None,
        }
        if i is None:
            row.update(
                title=e.dataset,
                source="",
                licence="",
                split=e.adapter.default_split,
                size=None,
                layout=_layout_text(e.adapter),
                how_to_get="",
            )
        else:
            row.update(
                title=i.title,
                source=i.source,
                licence=i.licence,
                split=i.split,
                size=i.size,
                layout=list(i.layout),
                how_to_get=i.how_to_get + _fetch_hint(e.key),
                checksums=dict(i.checksums),
                counts=dict(i.counts),
            )
        rows.append(row)
    return rows


def _fetch_hint(key: str) -> str:
    """`` Or: remotesam-bench data fetch KEY ...`` when a pinned mirror exists."""
    from remotesam.bench.data.mirrors import MIRRORS

    m = MIRRORS.get(key)
    if m is None:
        return ""
    size = f", {m.size / 1e9:.2f} GB" if m.size else ""
    return (f" Or: `remotesam-bench data fetch {key} --out DATA_ROOT` (hf://{m.repo_id}@"
            f"{m.revision[:12]}{size}, sha256 checked)")


def cmd_list(args: argparse.Namespace) -> int:
    rows = _list_rows(dataset_entries(args.tasks))
    if args.format == "json":
        print(json.dumps(rows, indent=1))
        return EXIT_OK
    from rich.table import Table

    table = Table(title="remotesam-bench datasets", show_lines=True)
    for col in (
        "task.dataset",
        "title",
        "source / licence",
        "split (size)",
        "layout under DATA_ROOT",
        "how to get it",
    ):
        table.add_column(col, overflow="fold")
    for r in rows:
        size = "?" if r["size"] is None else f"{r['size']:,}"
        layout = r["layout"] if isinstance(r["layout"], str) else "\n".join(r["layout"])
        sub = r["subdir"] or "."
        table.add_row(
            f"{r['task']}.{r['dataset']}",
            r["title"],
            (
                f"{r['source']}\nlicence: {r['licence']}"
                if r["described"]
                else "(undescribed: the adapter has no info)"
            ),
            f"{r['split']} ({size})",
            f"{sub}/\n{layout}",
            r["how_to_get"],
        )
    _console().print(table)
    return EXIT_OK


# -- check --------------------------------------------------------------------------------------


def glob_files(root: Path, pattern: str, folders: bool = False) -> list[Path]:
    """Files under ``root`` matching a relative glob (``*`` within one path component).

    Brackets and parentheses in the pattern are literal (``refs(unc).p``); only ``*`` and
    ``?`` are wildcards. With ``folders``, non-empty folders match too (a layout entry may name
    a folder, ``images_test``). Sorted.
    """
    parts = [p for p in pattern.replace("\\", "/").split("/") if p]
    level = [root]
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        nxt: list[Path] = []
        for d in level:
            if not any(c in part for c in "*?"):
                p = d / part
                if p.is_file() or (folders and _nonempty_dir(p)) if last else p.is_dir():
                    nxt.append(p)
                continue
            regex = fnmatch.translate(part.replace("[", "[[]"))
            try:
                with os.scandir(d) as it:
                    for ent in it:
                        if re.match(regex, ent.name) and (
                            ent.is_file() or (folders and _nonempty_dir(Path(ent.path)))
                            if last
                            else ent.is_dir()
                        ):
                            nxt.append(Path(ent.path))
            except OSError:
                continue
        level = nxt
    return sorted(level)


def _nonempty_dir(path: Path) -> bool:
    try:
        return path.is_dir() and any(path.iterdir())
    except OSError:
        return False


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass
class CheckItem:
    """One line of a dataset's check table."""

    what: str
    expected: str
    found: str
    ok: bool
    path: str = ""
    hint: str = ""


@dataclass
class DatasetCheck:
    """The outcome of checking one dataset under a data root."""

    key: str
    title: str
    root: Path
    status: str  # complete | incomplete | missing | undescribed (+ " (synthetic)")
    items: list[CheckItem] = field(default_factory=list)
    how_to_get: str = ""

    @property
    def ok(self) -> bool:
        return self.status.startswith(("complete", "absent")) or self.status == "undescribed"

    def first_problem(self) -> str:
        """One line: the first missing or wrong file and what to do."""
        for it in self.items:
            if not it.ok:
                todo = it.hint or self.how_to_get or "see `remotesam-bench data list`"
                return (
                    f"{self.key}: {it.path or it.what}: {it.found} (expected {it.expected}); {todo}"
                )
        return f"{self.key}: {self.status}"


def _synth_manifest(data_root: Path) -> dict[str, Any] | None:
    p = data_root / "manifest.json"
    if not p.is_file():
        return None
    try:
        m = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return m if isinstance(m, dict) and m.get("generator") == "remotesam.synth" else None


def _adapter_item(entry: DatasetEntry, root: Path) -> CheckItem:
    try:
        entry.adapter(root)
    except DatasetError as e:
        first = str(e).splitlines()[0]
        return CheckItem(
            "adapter opens the dataset",
            "no error",
            first,
            False,
            str(root),
            "fix the layout the message names",
        )
    except Exception as e:
        return CheckItem(
            "adapter opens the dataset",
            "no error",
            f"{type(e).__name__}: {e}",
            False,
            str(root),
            "the task plugin's adapter failed; report it to its authors",
        )
    return CheckItem("adapter opens the dataset", "no error", "ok", True)


def check_dataset(
    entry: DatasetEntry,
    data_root: str | Path,
    manifest: dict[str, Any] | None = None,
    required: bool = True,
) -> DatasetCheck:
    """Check one dataset under ``data_root`` (its adapter's ``default_subdir`` below it).

    Args:
        entry: the (task, dataset) pair.
        data_root: the folder passed as ``--data-root`` to ``run``.
        manifest: a synth ``manifest.json`` (dict) when the data root is synthetic: its sha256
            replace the official counts and checksums.
        required: when False, an absent dataset folder is reported as ``absent (optional)``
            and not as a failure (generic adapters without ``info`` and training sets, unless
            named explicitly as ``task.dataset``).

    Returns:
        A :class:`DatasetCheck` whose ``items`` list every check made, in order.
    """
    data_root = Path(data_root)
    root = data_root / entry.adapter.default_subdir
    info = entry.info
    title = info.title if info is not None else entry.dataset
    how = info.how_to_get if info is not None else ""
    chk = DatasetCheck(entry.key, title, root, "missing", how_to_get=how)
    if not root.is_dir() and not required:
        chk.items.append(
            CheckItem("dataset folder", "a folder (optional here)", "not found", True, str(root))
        )
        chk.status = "absent (optional)"
        return chk
    if not root.is_dir():
        chk.items.append(CheckItem("dataset folder", "a folder", "not found", False, str(root)))
        return chk
    if info is None:
        item = _adapter_item(entry, root)
        chk.items.append(item)
        chk.status = "undescribed" if item.ok else "incomplete"
        return chk
    any_found = False
    for pattern in info.layout:
        alts = [a.strip() for a in pattern.split("|") if a.strip()]
        hits = next((h for h in (glob_files(root, a, folders=True) for a in alts) if h), [])
        any_found |= bool(hits)
        chk.items.append(
            CheckItem(
                f"layout {pattern}",
                "at least 1 file (or non-empty folder)",
                f"{len(hits)} match(es)",
                bool(hits),
                str(root / alts[0]),
            )
        )
    synthetic = False
    if manifest is not None:
        files = manifest.get("files") or {}
        prefix = root.resolve().relative_to(data_root.resolve()).as_posix()
        prefix = "" if prefix == "." else prefix + "/"
        mine = {k: v for k, v in files.items() if k.startswith(prefix)}
        if mine:
            synthetic = True
            bad = [(k, "missing") for k in sorted(mine) if not (data_root / k).is_file()]
            if not bad:
                bad = [
                    (k, "sha256 differs") for k in sorted(mine) if _sha256(data_root / k) != mine[k]
                ]
            chk.items.append(
                CheckItem(
                    "files of the synth manifest (sha256)",
                    f"{len(mine)} file(s) as written",
                    "ok" if not bad else f"{len(bad)} {bad[0][1]}",
                    not bad,
                    str(data_root / bad[0][0]) if bad else "",
                    "regenerate with `remotesam-bench synth --out DATA_ROOT` (same arguments)",
                )
            )
    if not synthetic:
        for pattern, n in info.counts.items():
            # ``a | b``: the release's alternative layouts; the one holding most files counts
            got = max(
                len(glob_files(root, a.strip())) for a in pattern.split("|") if a.strip()
            )
            chk.items.append(
                CheckItem(
                    f"count {pattern}",
                    f">= {n:,} (official {info.split})",
                    f"{got:,}",
                    got >= n,
                    str(root / pattern),
                )
            )
        for rel, digest in info.checksums.items():
            p = root / rel
            if not p.is_file():
                chk.items.append(
                    CheckItem(f"sha256 {rel}", digest[:16] + "…", "missing", False, str(p))
                )
                continue
            sha = _sha256(p)
            chk.items.append(
                CheckItem(
                    f"sha256 {rel}",
                    digest[:16] + "…",
                    sha[:16] + "…",
                    sha == digest,
                    str(p),
                    "this file is not the pinned release: download it again",
                )
            )
    chk.items.append(_adapter_item(entry, root))
    if all(it.ok for it in chk.items):
        chk.status = "complete (synthetic)" if synthetic else "complete"
    else:
        chk.status = "incomplete" if any_found else "missing"
    return chk


def cmd_check(args: argparse.Namespace) -> int:
    data_root = Path(args.data_root)
    if not data_root.is_dir():
        raise InputError(
            f"--data-root {data_root}: not a folder; pass the folder that holds the "
            "datasets (see `remotesam-bench data list` for each one's sub-folder)"
        )
    manifest = _synth_manifest(data_root)
    named = {p.strip() for p in (args.tasks or "").split(",") if "." in p}
    checks = [
        check_dataset(
            e,
            data_root,
            manifest,
            required=e.key in named or (e.info is not None and e.info.split != "train"),
        )
        for e in dataset_entries(args.tasks)
    ]
    if args.format == "json":
        print(
            json.dumps(
                [
                    {
                        "dataset": c.key,
                        "title": c.title,
                        "root": str(c.root),
                        "status": c.status,
                        "items": [vars(i) for i in c.items],
                    }
                    for c in checks
                ],
                indent=1,
            )
        )
    else:
        from rich.table import Table

        console = _console()
        for c in checks:
            colour = "green" if c.ok else ("yellow" if c.status == "incomplete" else "red")
            t = Table(
                title=f"{c.key} ({c.title}): [{colour}]{c.status}[/{colour}]  {c.root}",
                title_justify="left",
            )
            for col in ("check", "expected", "found", ""):
                t.add_column(col, overflow="fold")
            for it in c.items:
                t.add_row(it.what, it.expected, it.found, "ok" if it.ok else "[red]FAIL[/red]")
            console.print(t)
    bad = [c for c in checks if not c.ok]
    summary = ", ".join(f"{c.key}: {c.status}" for c in checks)
    if bad:
        print(f"remotesam-bench: data check: {bad[0].first_problem()}", file=sys.stderr)
        if args.format != "json":
            print(f"summary: {summary}")
        return EXIT_INPUT
    if args.format != "json":
        print(f"all {len(checks)} dataset(s) complete: {summary}")
    return EXIT_OK


def _console() -> Any:
    from rich.console import Console

    probe = Console()
    return probe if probe.is_terminal else Console(width=200)
