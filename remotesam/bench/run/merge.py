"""``remotesam-bench merge DIR... --out DIR``: results directories of separate jobs made one.

A results directory holds the prediction store (``store.sqlite``), shard stores that a job of
several processes has not sent to its rank 0 yet (``shards/rank-<k>.sqlite``, see
:mod:`remotesam.bench.run.shards`) and run documents (``runs/<run_id>.json`` with their
``<run_id>.config.yaml``). :func:`merge_results` puts the predictions, failures and settings of
every input (and of ``--out`` itself, when it already holds results) into the store of
``--out`` and copies the run documents beside them, so that ``score``, ``leaderboard`` and a
resumed ``run`` see everything. Typical uses: the node directories of a multi-node job, the
jobs of a checkpoint sweep split across a cluster, a shard store left on a node that did not
take part in the resumed job.

What merges and what is refused:

* the same prediction (same cache key: checkpoint sha256, task, task version, dataset, split,
  settings hash, sample id; same prediction JSON and input fingerprint) in several inputs is
  one prediction;
* the same cache key with another prediction or another input fingerprint (two jobs that
  disagree, or a dataset that changed between them) is refused, naming both sources;
* the same run id with different run documents is refused, naming both files;
* a prediction replaces a recorded failure of the same key (as in a run); of two failures of
  the same key the first input's is kept.

Nothing is written before every input has been read and checked: a refused merge leaves
``--out`` as it was. File-hash caches are not merged (they describe files of one host).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import sqlite3
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from remotesam.bench.errors import InputError, StoreError
from remotesam.bench.records.results import RunDocument, runs_dir
from remotesam.bench.records.store import (
    FAILURE_COLUMNS,
    PREDICTION_COLUMNS,
    STORE_FILENAME,
    ResultsStore,
)
from remotesam.bench.run.shards import shard_files

__all__ = ["MergeReport", "add_subcommand", "merge_results"]

_KEY = PREDICTION_COLUMNS[:7]


@dataclass
class MergeReport:
    """What :func:`merge_results` did.

    Attributes:
        out: the output directory.
        stores: the store files read, in order.
        n_predictions, n_failures: rows in the output store afterwards.
        n_new_predictions: predictions the output store did not hold before.
        runs: run ids copied into ``out/runs`` (new ones).
    """

    out: Path
    stores: list[Path] = field(default_factory=list)
    n_predictions: int = 0
    n_failures: int = 0
    n_new_predictions: int = 0
    runs: list[str] = field(default_factory=list)


def _stores_of(folder: Path) -> list[Path]:
    main = folder / STORE_FILENAME
    return ([main] if main.is_file() else []) + list(shard_files(folder).values())


def _attach_uri(path: Path) -> str:
    """A read-only URI; ``immutable`` where the folder cannot be written (SQLite could not
    create its lock files there)."""
    uri = path.resolve().as_uri()
    writable = os.access(path.parent, os.W_OK) and os.access(path, os.W_OK)
    return uri + ("?mode=ro" if writable else "?mode=ro&immutable=1")


def _columns(conn: sqlite3.Connection, table: str) -> set[str]:
    return {r[1] for r in conn.execute(f"PRAGMA src.table_info({table})")}


def _label(path: Path) -> str:
    return str(path)


def _describe_key(row: Sequence[object]) -> str:
    sha, task, version, dataset, split, shash, sid = row[:7]
    return (f"checkpoint sha256 {str(sha)[:12]}, {task} v{version} {dataset}/{split}, "
            f"settings {str(shash)[:12]}, sample {sid!r}")


def _gather(acc: sqlite3.Connection, path: Path) -> None:
    """Check ``path``'s rows against what ``acc`` holds, then add them (no write elsewhere)."""
    try:
        acc.execute("ATTACH DATABASE ? AS src", (_attach_uri(path),))
    except sqlite3.Error as e:
        raise InputError(f"cannot read the results store {path} ({e}); expected an SQLite "
                         "store written by remotesam-bench") from e
    try:
        tables = {r[0] for r in acc.execute("SELECT name FROM src.sqlite_master "
                                            "WHERE type='table'")}
        if "predictions" not in tables:
            raise InputError(f"{path}: not a remotesam-bench results store (no table "
                             "'predictions'); pass results directories written by "
                             "`remotesam-bench run`")
        version = acc.execute("SELECT value FROM src.meta WHERE key='schema_version'"
                              ).fetchone() if "meta" in tables else None
        from remotesam.bench.records.store import SCHEMA_VERSION

        if version is not None and int(version[0]) > SCHEMA_VERSION:
            raise InputError(f"{path}: schema version {version[0]} is newer than this "
                             f"remotesam-bench understands ({SCHEMA_VERSION}); upgrade it")
        on = " AND ".join(f"s.{c} = a.{c}" for c in _KEY)
        has_fp = "input_hash" in _columns(acc, "predictions")
        s_fp = "s.input_hash" if has_fp else "NULL"
        clash = acc.execute(
            f"SELECT {', '.join('s.' + c for c in _KEY)}, a.source, "
            f"s.prediction = a.prediction FROM src.predictions s JOIN acc_pred a ON {on} "
            f"WHERE s.prediction != a.prediction OR {s_fp} IS NOT a.input_hash LIMIT 1"
        ).fetchone()
        if clash is not None:
            what = ("another input fingerprint (the dataset changed between the jobs)"
                    if clash[8] else "another prediction")
            raise InputError(
                f"cannot merge: {path} and {clash[7]} hold {what} for the same cache key "
                f"({_describe_key(clash)}); merge only results of the same data and code, "
                "or leave one of them out")
        acc.execute(
            f"INSERT OR IGNORE INTO acc_pred SELECT {', '.join(_KEY)}, prediction, created, "
            f"{'input_hash' if has_fp else 'NULL'}, ? FROM src.predictions", (_label(path),))
        if "failures" in tables:
            cols = _columns(acc, "failures")
            sel = [c if c in cols else ("0" if c == "transient" else "NULL")
                   for c in FAILURE_COLUMNS]
            acc.execute(f"INSERT OR IGNORE INTO acc_fail SELECT {', '.join(sel)} "
                        "FROM src.failures")
        if "settings" in tables:
            acc.execute("INSERT OR IGNORE INTO acc_settings SELECT settings_hash, settings "
                        "FROM src.settings")
        if "model_settings" in tables:
            acc.execute("INSERT OR IGNORE INTO acc_models SELECT model_key, settings "
                        "FROM src.model_settings")
        acc.commit()
    except sqlite3.Error as e:
        raise InputError(f"cannot read the results store {path} ({e})") from e
    finally:
        with contextlib.suppress(sqlite3.Error):
            acc.execute("DETACH DATABASE src")


def _run_documents(folders: Sequence[Path]) -> dict[str, tuple[Path, RunDocument]]:
    """Every run document of ``folders`` by run id; the same id with another document is
    refused."""
    out: dict[str, tuple[Path, RunDocument]] = {}
    for folder in folders:
        rd = runs_dir(folder)
        if not rd.is_dir():
            continue
        for p in sorted(rd.glob("*.json")):
            try:
                doc = RunDocument.load(p)
            except ValueError as e:
                raise InputError(f"{e}; remove it from {rd} or fix it, then merge again"
                                 ) from e
            seen = out.get(doc.run_id)
            if seen is None:
                out[doc.run_id] = (p, doc)
            elif seen[1].to_json() != doc.to_json():
                raise InputError(f"cannot merge: run id {doc.run_id!r} names different run "
                                 f"documents in {seen[0]} and {p}; rename one (its file and "
                                 "its 'run_id' field) or leave it out")
    return out


def merge_results(sources: Sequence[str | Path], out: str | Path) -> MergeReport:
    """Merge the results directories ``sources`` (and what ``out`` already holds) into ``out``.

    See the module docstring for what merges and what is refused.

    Raises:
        InputError: a source that is not a results directory, conflicting predictions or run
            ids (one line naming both sources); nothing is written then.
        StoreError: ``out`` cannot be written.
    """
    out = Path(out)
    folders: list[Path] = []
    for s in sources:
        p = Path(s)
        if not p.is_dir():
            raise InputError(f"merge: {p} is not a directory; expected a results directory "
                             "(holding store.sqlite and/or runs/)")
        if not _stores_of(p) and not runs_dir(p).is_dir():
            raise InputError(f"merge: {p} holds no results (no store.sqlite, shards/ or runs/); "
                             "expected a results directory written by `remotesam-bench run`")
        folders.append(p)
    if not folders:
        raise InputError("merge: name at least one results directory to merge")
    order: list[Path] = []
    for f in ([out] if out.is_dir() else []) + folders:
        if all(f.resolve() != g.resolve() for g in order):
            order.append(f)
    report = MergeReport(out=out)
    with tempfile.TemporaryDirectory(prefix="remotesam-merge-") as tmp:
        acc = sqlite3.connect(Path(tmp) / "acc.sqlite")
        try:
            acc.executescript(f"""
                CREATE TABLE acc_pred ({', '.join(_KEY)}, prediction, created, input_hash,
                    source, PRIMARY KEY ({', '.join(_KEY)})) WITHOUT ROWID;
                CREATE TABLE acc_fail ({', '.join(FAILURE_COLUMNS)},
                    PRIMARY KEY ({', '.join(_KEY)})) WITHOUT ROWID;
                CREATE TABLE acc_settings (settings_hash PRIMARY KEY, settings);
                CREATE TABLE acc_models (model_key PRIMARY KEY, settings);
            """)
            before = 0
            for folder in order:
                for path in _stores_of(folder):
                    _gather(acc, path)
                    report.stores.append(path)
                    if folder == out and path.name == STORE_FILENAME:
                        before = acc.execute("SELECT COUNT(*) FROM acc_pred").fetchone()[0]
            docs = _run_documents(order)
            acc.close()
            _write(Path(tmp) / "acc.sqlite", out, report, before)
        finally:
            with contextlib.suppress(sqlite3.Error):
                acc.close()
    existing = {p.stem for p in runs_dir(out).glob("*.json")} if runs_dir(out).is_dir() else set()
    for run_id, (src, doc) in docs.items():
        if run_id in existing:
            continue
        try:
            doc.save(runs_dir(out) / f"{run_id}.json")
            cfg = src.with_name(f"{src.stem}.config.yaml")
            if cfg.is_file():
                shutil.copyfile(cfg, runs_dir(out) / cfg.name)
        except OSError as e:
            raise StoreError(f"cannot write run document {runs_dir(out) / run_id}.json ({e}); "
                             "the store is merged: free space / fix permissions and merge "
                             "again") from e
        report.runs.append(run_id)
    return report


def _write(acc_path: Path, out: Path, report: MergeReport, before: int) -> None:
    """Copy the checked rows of ``acc_path`` into ``out``'s store in one transaction."""
    store = ResultsStore(out)
    try:
        conn = store._conn
        on_fail = " AND ".join(f"p.{c} = f.{c}" for c in _KEY)
        conn.execute("ATTACH DATABASE ? AS acc", (str(acc_path),))
        try:
            with store._write() as c:
                c.execute(f"INSERT OR IGNORE INTO predictions ({', '.join(PREDICTION_COLUMNS)}) "
                          f"SELECT {', '.join(PREDICTION_COLUMNS)} FROM acc.acc_pred")
                c.execute(f"DELETE FROM failures AS f WHERE EXISTS (SELECT 1 FROM predictions p "
                          f"WHERE {on_fail})")
                c.execute(f"INSERT OR IGNORE INTO failures ({', '.join(FAILURE_COLUMNS)}) "
                          f"SELECT {', '.join(FAILURE_COLUMNS)} FROM acc.acc_fail f "
                          f"WHERE NOT EXISTS (SELECT 1 FROM predictions p WHERE {on_fail})")
                c.execute("INSERT OR IGNORE INTO settings SELECT * FROM acc.acc_settings")
                c.execute("INSERT OR IGNORE INTO model_settings SELECT * FROM acc.acc_models")
        finally:
            conn.execute("DETACH DATABASE acc")
        report.n_predictions = store.count_predictions()
        report.n_failures = conn.execute("SELECT COUNT(*) FROM failures").fetchone()[0]
        report.n_new_predictions = report.n_predictions - before
    except sqlite3.Error as e:
        raise StoreError(f"cannot write the merged store {store.path} ({e})") from e
    finally:
        store.close()


# -- command line ------------------------------------------------------------------------------


def _cmd_merge(args: argparse.Namespace) -> int:
    from remotesam.bench.errors import EXIT_OK

    report = merge_results(args.dirs, args.out)
    print(f"merged {len(report.stores)} store(s) into {report.out / STORE_FILENAME}: "
          f"{report.n_predictions} prediction(s) ({report.n_new_predictions} new), "
          f"{report.n_failures} failure(s); {len(report.runs)} run document(s) copied to "
          f"{runs_dir(report.out)}")
    return EXIT_OK


def add_subcommand(sub: argparse._SubParsersAction) -> None:
    """Register ``merge`` on the ``remotesam-bench`` parser."""
    p = sub.add_parser(
        "merge", help="combine the results directories of separate jobs (stores, run documents)",
        description="Put the predictions, failures and settings of every DIR (its "
        "store.sqlite and the shard stores left in its shards/) and its run documents into "
        "--out. The same prediction in several inputs is one; the same cache key with another "
        "prediction or input fingerprint, or one run id naming two different documents, is "
        "refused naming both sources, and nothing is written.")
    p.add_argument("dirs", nargs="+", metavar="DIR", help="results directories to merge")
    p.add_argument("--out", required=True, metavar="DIR",
                   help="the results directory to merge into (created if missing; what it "
                   "holds is kept)")
    p.set_defaults(func=_cmd_merge)
