"""The results store: an SQLite database in the results directory.

``<results>/store.sqlite`` caches every prediction, keyed by
``(checkpoint sha256, task, task version, dataset, split, settings hash, sample id)``, so that a
run that was killed (SIGKILL included) and started again recomputes nothing already written, and
``remotesam-bench score`` can re-score without a model. Each prediction also carries the
*input fingerprint* of its sample (:func:`remotesam.bench.runner.sample_fingerprints`: the
image's bytes, target and meta): a stored prediction is only reused, and only scored, while the
sample's fingerprint is unchanged, so regenerating or editing a dataset in place never returns
stale predictions under the same sample ids. It also caches file hashes (checkpoints, images) by
``(path, size, mtime)`` and records per-sample failures.

Concurrency: WAL journal, a busy timeout and ``BEGIN IMMEDIATE`` write transactions make it safe
for several processes (two runs, or the ranks of one ``torchrun``) to write at once on a local
file system. Each batch is one transaction: after a crash the store holds whole batches only.
``synchronous=NORMAL`` in WAL mode survives any process crash; only an OS crash or power loss
may drop the last transactions (never corrupt the database).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from remotesam.bench.errors import StoreError

__all__ = ["STORE_FILENAME", "PredictionKey", "ResultsStore"]

STORE_FILENAME = "store.sqlite"
#: 2: ``input_hash`` (the sample's input fingerprint) on predictions and failures.
_SCHEMA_VERSION = 2

_KEY_COLUMNS = ("ckpt_sha256", "task", "task_version", "dataset", "split", "settings_hash")

_DDL = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS predictions (
    ckpt_sha256 TEXT NOT NULL, task TEXT NOT NULL, task_version INTEGER NOT NULL,
    dataset TEXT NOT NULL, split TEXT NOT NULL, settings_hash TEXT NOT NULL,
    sample_id TEXT NOT NULL, prediction TEXT NOT NULL, created REAL NOT NULL, input_hash TEXT,
    PRIMARY KEY (ckpt_sha256, task, task_version, dataset, split, settings_hash, sample_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS failures (
    ckpt_sha256 TEXT NOT NULL, task TEXT NOT NULL, task_version INTEGER NOT NULL,
    dataset TEXT NOT NULL, split TEXT NOT NULL, settings_hash TEXT NOT NULL,
    sample_id TEXT NOT NULL, error TEXT NOT NULL, created REAL NOT NULL, input_hash TEXT,
    PRIMARY KEY (ckpt_sha256, task, task_version, dataset, split, settings_hash, sample_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS settings (settings_hash TEXT PRIMARY KEY, settings TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS checkpoint_hashes (
    path TEXT NOT NULL, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, sha256 TEXT NOT NULL,
    PRIMARY KEY (path, size, mtime_ns)
) WITHOUT ROWID;
"""


@dataclass(frozen=True)
class PredictionKey:
    """Everything a stored prediction depends on, except the sample id."""

    ckpt_sha256: str
    task: str
    task_version: int
    dataset: str
    split: str
    settings_hash: str

    def values(self) -> tuple[Any, ...]:
        return (self.ckpt_sha256, self.task, self.task_version, self.dataset, self.split,
                self.settings_hash)


def _migrate(c: sqlite3.Connection) -> None:
    """Bring a store written by an older version up to date, keeping what it holds.

    Schema 1 had no ``input_hash``: the column is added empty, so those predictions no longer
    match any sample and are predicted again (their inputs were never fingerprinted).
    """
    for table in ("predictions", "failures"):
        cols = {row[1] for row in c.execute(f"PRAGMA table_info({table})")}
        if "input_hash" not in cols:
            c.execute(f"ALTER TABLE {table} ADD COLUMN input_hash TEXT")


def _matching(rows: Iterable[tuple[str, Any, str | None]],
              fingerprints: Mapping[str, str] | None) -> dict[str, Any]:
    """``{sample_id: value}`` of the rows whose input hash equals the sample's fingerprint
    (all rows when ``fingerprints`` is None)."""
    if fingerprints is None:
        return {sid: v for sid, v, _ in rows}
    return {sid: v for sid, v, h in rows if h is not None and fingerprints.get(sid) == h}


def _explain(e: BaseException, path: Path) -> str:
    text = str(e).lower()
    if (isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT)) or "full" in text:
        return (f"the disk holding {path} is full ({e}); free some space and run the same command "
                "again: everything already stored is kept and will not be recomputed")
    if ((isinstance(e, OSError) and e.errno in (errno.EACCES, errno.EPERM, errno.EROFS))
            or "readonly" in text or "read-only" in text or "unable to open" in text):
        return (f"cannot write to {path} ({e}); make the results directory writable or pass "
                "--results-dir with a writable folder")
    return (f"cannot write the results store {path} ({e}); pass --results-dir with a writable "
            "folder")


class ResultsStore:
    """Predictions, failures and checkpoint hashes in ``<results_dir>/store.sqlite``.

    Args:
        results_dir: the results directory (created if missing).
        readonly: open an existing store for reading only (``score`` on a read-only copy).
        timeout_s: how long a writer waits for another writer's lock.

    Raises:
        StoreError: the directory cannot be created or written (read-only, full disk, a file in
            the way); nothing is lost, the message says what to do.
    """

    def __init__(self, results_dir: str | Path, *, readonly: bool = False,
                 timeout_s: float = 60.0) -> None:
        self.results_dir = Path(results_dir)
        self.path = self.results_dir / STORE_FILENAME
        self.readonly = readonly
        try:
            if readonly:
                if not self.path.is_file():
                    raise StoreError(f"no results store at {self.path}; run `remotesam-bench run` "
                                     "first or pass --results-dir")
                self._conn = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True,
                                             timeout=timeout_s, isolation_level=None)
            else:
                self.results_dir.mkdir(parents=True, exist_ok=True)
                self._conn = self._connect(timeout_s)
                self._enable_wal(timeout_s)
                self._conn.execute("PRAGMA synchronous=NORMAL")
                with self._write() as c:
                    for stmt in _DDL.split(";"):
                        if stmt.strip():
                            c.execute(stmt)
                    _migrate(c)
                    # A real write, so that a read-only or full results dir fails here, before
                    # any work starts, and not after the first batch.
                    c.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)",
                              (str(_SCHEMA_VERSION),))
                    c.execute("INSERT OR REPLACE INTO meta VALUES ('last_open', ?)",
                              (repr(time.time()),))
        except StoreError:
            raise
        except (OSError, sqlite3.Error) as e:
            raise StoreError(_explain(e, self.path)) from e

    def _enable_wal(self, timeout_s: float) -> None:
        """Switch to WAL. SQLite answers "database is locked" at once (no busy handler) when
        another process opens the same new store at that moment, e.g. two torchrun ranks: retry."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                self._conn.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as e:
                if "locked" not in str(e) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def _connect(self, timeout_s: float) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=timeout_s, isolation_level=None)
        conn.execute(f"PRAGMA busy_timeout={int(timeout_s * 1000)}")
        return conn

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; ``BEGIN IMMEDIATE`` takes the write lock up front."""
        if self.readonly:
            raise StoreError(f"results store {self.path} was opened read-only")
        c = self._conn
        c.execute("BEGIN IMMEDIATE")
        try:
            yield c
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                c.execute("ROLLBACK")
            raise
        c.execute("COMMIT")

    def _guarded(self, fn: Any, *args: Any) -> Any:
        try:
            return fn(*args)
        except StoreError:
            raise
        except (OSError, sqlite3.Error) as e:
            raise StoreError(_explain(e, self.path)) from e

    def close(self) -> None:
        """Close the connection (idempotent)."""
        with contextlib.suppress(sqlite3.Error):
            self._conn.close()

    def __enter__(self) -> ResultsStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- predictions ---------------------------------------------------------------------------

    def put_predictions(self, key: PredictionKey,
                        items: Sequence[tuple[str, dict[str, Any]]],
                        fingerprints: Mapping[str, str] | None = None) -> None:
        """Store ``(sample_id, prediction)`` pairs in one transaction (one batch).

        ``fingerprints`` gives each sample's input fingerprint (``{sample_id: hex}``); a sample
        without one is stored unfingerprinted and only found by lookups that pass none. A stored
        prediction replaces an older one with the same key and clears any recorded failure of
        that sample.

        Raises:
            StoreError: the write failed (full disk ...); earlier batches stay stored.
        """
        if not items:
            return
        now = time.time()
        fps = fingerprints or {}
        rows = [(*key.values(), sid, json.dumps(pred, sort_keys=True), now, fps.get(sid))
                for sid, pred in items]

        def do() -> None:
            with self._write() as c:
                c.executemany("INSERT OR REPLACE INTO predictions VALUES (?,?,?,?,?,?,?,?,?,?)", rows)
                c.executemany(
                    "DELETE FROM failures WHERE ckpt_sha256=? AND task=? AND task_version=? AND "
                    "dataset=? AND split=? AND settings_hash=? AND sample_id=?",
                    [(*key.values(), sid) for sid, _ in items])

        self._guarded(do)

    def get_predictions(self, key: PredictionKey, sample_ids: Iterable[str] | None = None,
                        fingerprints: Mapping[str, str] | None = None,
                        ) -> dict[str, dict[str, Any]]:
        """Stored predictions for ``key``: ``{sample_id: prediction}``.

        Args:
            sample_ids: only these samples (default: all stored).
            fingerprints: ``{sample_id: input fingerprint}``: only predictions stored with the
                sample's current fingerprint (stale ones are left out). None: no check.
        """
        where = " AND ".join(f"{c}=?" for c in _KEY_COLUMNS)

        def do() -> list[tuple[str, str, str | None]]:
            return self._conn.execute(
                f"SELECT sample_id, prediction, input_hash FROM predictions WHERE {where}",
                key.values()).fetchall()

        wanted = None if sample_ids is None else set(sample_ids)
        rows = [r for r in self._guarded(do) if wanted is None or r[0] in wanted]
        return {sid: json.loads(p) for sid, p in _matching(rows, fingerprints).items()}

    def stored_ids(self, key: PredictionKey,
                   fingerprints: Mapping[str, str] | None = None) -> set[str]:
        """Ids of samples with a stored prediction for ``key`` (no JSON decoding); with
        ``fingerprints``, only those stored with the sample's current fingerprint."""
        where = " AND ".join(f"{c}=?" for c in _KEY_COLUMNS)
        rows = self._guarded(lambda: self._conn.execute(
            f"SELECT sample_id, NULL, input_hash FROM predictions WHERE {where}",
            key.values()).fetchall())
        return set(_matching(rows, fingerprints))

    def count_predictions(self, key: PredictionKey | None = None) -> int:
        """Number of stored predictions (for ``key``, or in total)."""
        if key is None:
            return self._guarded(lambda: self._conn.execute(
                "SELECT COUNT(*) FROM predictions").fetchone()[0])
        where = " AND ".join(f"{c}=?" for c in _KEY_COLUMNS)
        return self._guarded(lambda: self._conn.execute(
            f"SELECT COUNT(*) FROM predictions WHERE {where}", key.values()).fetchone()[0])

    # -- failures ------------------------------------------------------------------------------

    def put_failures(self, key: PredictionKey, items: Sequence[tuple[str, str]],
                     fingerprints: Mapping[str, str] | None = None) -> None:
        """Record ``(sample_id, error message)`` pairs (with the samples' input fingerprints,
        as :meth:`put_predictions`); a later success clears them."""
        if not items:
            return
        now = time.time()
        fps = fingerprints or {}
        rows = [(*key.values(), sid, err, now, fps.get(sid)) for sid, err in items]

        def do() -> None:
            with self._write() as c:
                c.executemany("INSERT OR REPLACE INTO failures VALUES (?,?,?,?,?,?,?,?,?,?)", rows)

        self._guarded(do)

    def get_failures(self, key: PredictionKey,
                     fingerprints: Mapping[str, str] | None = None) -> dict[str, str]:
        """Recorded failures for ``key``: ``{sample_id: error message}`` (with
        ``fingerprints``: only failures of the samples' current inputs)."""
        where = " AND ".join(f"{c}=?" for c in _KEY_COLUMNS)
        rows = self._guarded(lambda: self._conn.execute(
            f"SELECT sample_id, error, input_hash FROM failures WHERE {where}",
            key.values()).fetchall())
        return _matching(rows, fingerprints)

    # -- settings ------------------------------------------------------------------------------

    def put_settings(self, settings_hash: str, settings: dict[str, Any]) -> None:
        """Remember which settings a hash stands for (provenance)."""
        text = json.dumps(settings, sort_keys=True)

        def do() -> None:
            with self._write() as c:
                c.execute("INSERT OR IGNORE INTO settings VALUES (?, ?)", (settings_hash, text))

        self._guarded(do)

    def get_settings(self, settings_hash: str) -> dict[str, Any] | None:
        row = self._guarded(lambda: self._conn.execute(
            "SELECT settings FROM settings WHERE settings_hash=?", (settings_hash,)).fetchone())
        return None if row is None else json.loads(row[0])

    # -- checkpoint hashes ---------------------------------------------------------------------

    def cached_sha256(self, path: str | Path) -> str | None:
        """The cached sha256 of ``path`` if its (resolved path, size, mtime) are unchanged."""
        return self.cached_sha256_many([path]).get(str(path))

    def cached_sha256_many(self, paths: Sequence[str | Path]) -> dict[str, str]:
        """:meth:`cached_sha256` for many files in one query: ``{str(path): sha256}`` for the
        files whose (resolved path, size, mtime) are unchanged; missing files are left out."""
        out: dict[str, str] = {}
        stats: dict[str, tuple[str, int, int]] = {}
        for p in paths:
            try:
                st = os.stat(p)
            except OSError:
                continue
            stats[str(p)] = (str(Path(p).resolve()), st.st_size, st.st_mtime_ns)

        def do() -> dict[tuple[str, int, int], str]:
            found: dict[tuple[str, int, int], str] = {}
            resolved = sorted({r[0] for r in stats.values()})
            for i in range(0, len(resolved), 500):  # under SQLite's host-parameter limit
                chunk = resolved[i: i + 500]
                marks = ",".join("?" * len(chunk))
                for path, size, mtime, digest in self._conn.execute(
                        "SELECT path, size, mtime_ns, sha256 FROM checkpoint_hashes "
                        f"WHERE path IN ({marks})", chunk):
                    found[(path, size, mtime)] = digest
            return found

        found = self._guarded(do) if stats else {}
        for p, k in stats.items():
            if k in found:
                out[p] = found[k]
        return out

    def put_sha256_many(self, items: Mapping[str | Path, str]) -> None:
        """:meth:`put_sha256` for many files in one transaction (no-op when read-only)."""
        if self.readonly or not items:
            return
        rows = []
        for p, digest in items.items():
            st = os.stat(p)
            rows.append((str(Path(p).resolve()), st.st_size, st.st_mtime_ns, digest))

        def do() -> None:
            with self._write() as c:
                c.executemany("INSERT OR REPLACE INTO checkpoint_hashes VALUES (?,?,?,?)", rows)

        self._guarded(do)

    def put_sha256(self, path: str | Path, sha256: str) -> None:
        """Cache ``sha256`` for ``path`` under its current (resolved path, size, mtime)."""
        self.put_sha256_many({path: sha256})
