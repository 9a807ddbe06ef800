"""The results store: an SQLite database in the results directory.

``<results>/store.sqlite`` caches every prediction, keyed by
``(checkpoint sha256, task, task version, dataset, split, settings hash, sample id)``, so that a
run that was killed (SIGKILL included) and started again recomputes nothing already written, and
``remotesam-bench score`` can re-score without a model. Each prediction also carries the
*input fingerprint* of its sample (:func:`remotesam.bench.records.identity.sample_fingerprints`: the
image's bytes, target and meta): a stored prediction is only reused, and only scored, while the
sample's fingerprint is unchanged, so regenerating or editing a dataset in place never returns
stale predictions under the same sample ids. It also caches file hashes (checkpoints, images,
see :meth:`ResultsStore.cached_sha256_many` for when a cached hash is trusted), remembers the
settings each loaded model reported (:meth:`ResultsStore.get_model_settings`) and records
per-sample failures, each marked transient (retried by the next run) or permanent.

A store written by a newer remotesam-bench (a higher schema version) is refused untouched.

Concurrency: WAL journal, a busy timeout and ``BEGIN IMMEDIATE`` write transactions make it safe
for several processes of one host (two runs) to write at once on a local file system. The ranks
of a ``torchrun`` job do not share it: rank 0 writes it, every other rank its own shard store
(:mod:`remotesam.bench.run.shards`), so no file is written from two hosts. Each batch is one
transaction: after a crash the store holds whole batches only.
``synchronous=NORMAL`` in WAL mode survives any process crash; only an OS crash or power loss
may drop the last transactions (never corrupt the database).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import sqlite3
import stat
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from remotesam.bench.errors import StoreError

__all__ = [
    "FAILURE_COLUMNS",
    "PREDICTION_COLUMNS",
    "STORE_FILENAME",
    "PredictionKey",
    "ResultsStore",
    "RowBatch",
    "StoreWarning",
    "file_stat_key",
]


class StoreWarning(UserWarning):
    """Something in the store cannot be used (a stored prediction that is not valid JSON); it is
    treated as missing. The CLI shows it as one line."""


STORE_FILENAME = "store.sqlite"
#: 2: ``input_hash`` (the sample's input fingerprint) on predictions and failures.
#: 3: ``failures.transient``; ``file_hashes`` keyed by (device, inode, size, mtime, ctime)
#: replaces ``checkpoint_hashes`` (path, size, mtime); ``model_settings``.
SCHEMA_VERSION = 3

_PathT = TypeVar("_PathT", bound=str | Path)

_KEY_COLUMNS = ("ckpt_sha256", "task", "task_version", "dataset", "split", "settings_hash")
#: The columns of a stored prediction / failure row, as :class:`RowBatch` carries them.
PREDICTION_COLUMNS = (*_KEY_COLUMNS, "sample_id", "prediction", "created", "input_hash")
FAILURE_COLUMNS = (*_KEY_COLUMNS, "sample_id", "error", "created", "input_hash", "transient")

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
    transient INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (ckpt_sha256, task, task_version, dataset, split, settings_hash, sample_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS settings (settings_hash TEXT PRIMARY KEY, settings TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS file_hashes (
    path TEXT PRIMARY KEY, dev INTEGER NOT NULL, ino INTEGER NOT NULL, size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL, ctime_ns INTEGER NOT NULL, sha256 TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS model_settings (model_key TEXT PRIMARY KEY, settings TEXT NOT NULL);
"""

#: ``os.stat`` fields that must all be unchanged for a cached file hash to be reused.


def _ctime_is_change_time() -> bool:
    """True where ``st_ctime`` is the inode change time (POSIX), which no user tool can set.

    On Windows ``st_ctime`` is the creation time (and settable), so a cached hash is never
    trusted there: every file is hashed again.
    """
    return os.name == "posix"


def file_stat_key(path: str | Path) -> tuple[int, int, int, int, int] | None:
    """``(dev, inode, size, mtime_ns, ctime_ns)`` of ``path``, or None when it cannot be trusted
    (missing file, not a regular file, no reliable change time)."""
    if not _ctime_is_change_time():
        return None
    try:
        st = os.stat(path)
    except OSError:
        return None
    if not stat.S_ISREG(st.st_mode) or not st.st_ctime_ns:
        return None
    return (
        int(st.st_dev),
        int(st.st_ino),
        int(st.st_size),
        int(st.st_mtime_ns),
        int(st.st_ctime_ns),
    )


def _path_key(path: str | Path) -> str:
    """The ``file_hashes`` key of a file: its resolved path; a name that is not valid UTF-8
    (``os.fsdecode`` gives lone surrogates, which SQLite cannot store as text) is keyed by
    ``"fsb:" + hex`` of its bytes, which no absolute path starts with."""
    resolved = str(Path(path).resolve())
    try:
        resolved.encode("utf-8")
    except UnicodeEncodeError:
        return "fsb:" + os.fsencode(resolved).hex()
    return resolved


_ESCAPED_ID = "\0json:"


def _db_id(sample_id: str) -> str:
    """A sample id as stored: itself, or (holding a lone surrogate, e.g. from a file name that is
    not valid UTF-8, which SQLite cannot store as text) ``"\\0json:"`` + its ASCII JSON."""
    try:
        sample_id.encode("utf-8")
    except UnicodeEncodeError:
        return _ESCAPED_ID + json.dumps(sample_id)
    return sample_id


def _py_id(stored: str) -> str:
    """The sample id of a stored one (inverse of :func:`_db_id`)."""
    if stored.startswith(_ESCAPED_ID):
        return str(json.loads(stored[len(_ESCAPED_ID) :]))
    return stored


@dataclass
class RowBatch:
    """Raw rows of a store, moved to another store as they are (see
    :meth:`ResultsStore.take_rows`): predictions and failures as tuples in
    :data:`PREDICTION_COLUMNS` / :data:`FAILURE_COLUMNS` order, ``settings`` and
    ``model_settings`` as ``(hash or key, JSON text)``."""

    predictions: list[tuple[Any, ...]]
    failures: list[tuple[Any, ...]]
    settings: list[tuple[str, str]]
    model_settings: list[tuple[str, str]]

    def __len__(self) -> int:
        return len(self.predictions) + len(self.failures)


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
        return (
            self.ckpt_sha256,
            self.task,
            self.task_version,
            self.dataset,
            self.split,
            self.settings_hash,
        )


def _migrate(c: sqlite3.Connection) -> None:
    """Bring a store written by an older version up to date, keeping what it holds.

    Schema 1 had no ``input_hash``: the column is added empty, so those predictions no longer
    match any sample and are predicted again (their inputs were never fingerprinted).
    Schema 2 had no ``failures.transient``: old failures become permanent (as they were), and
    its ``checkpoint_hashes`` (keyed by path, size and mtime, which ``cp -p`` and ``rsync -t``
    reproduce) is dropped: every file is hashed once more.
    """
    for table in ("predictions", "failures"):
        cols = {row[1] for row in c.execute(f"PRAGMA table_info({table})")}
        if "input_hash" not in cols:
            c.execute(f"ALTER TABLE {table} ADD COLUMN input_hash TEXT")
    cols = {row[1] for row in c.execute("PRAGMA table_info(failures)")}
    if "transient" not in cols:
        c.execute("ALTER TABLE failures ADD COLUMN transient INTEGER NOT NULL DEFAULT 0")
    c.execute("DROP TABLE IF EXISTS checkpoint_hashes")


def _stored_schema(conn: sqlite3.Connection) -> int | None:
    """The schema version a store records, or None (new or pre-versioned store)."""
    try:
        row = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
    except sqlite3.OperationalError as e:
        if "no such table" in str(e):
            return None
        raise
    try:
        return None if row is None else int(row[0])
    except ValueError:
        return None


def _refuse_newer(conn: sqlite3.Connection, path: Path) -> None:
    """Raise when the store was written by a newer remotesam-bench (nothing is changed)."""
    version = _stored_schema(conn)
    if version is not None and version > SCHEMA_VERSION:
        conn.close()
        raise StoreError(
            f"results store {path} has schema version {version}, newer than the {SCHEMA_VERSION} "
            "this remotesam-bench understands; it was left untouched. Upgrade remotesam-bench "
            "(pip install -U remotesam-bench) or pass --results-dir with another folder"
        )


def _matching(
    rows: Iterable[tuple[str, Any, str | None]], fingerprints: Mapping[str, str] | None
) -> dict[str, Any]:
    """``{sample_id: value}`` of the rows whose input hash equals the sample's fingerprint
    (all rows when ``fingerprints`` is None)."""
    if fingerprints is None:
        return {_py_id(sid): v for sid, v, _ in rows}
    return {
        py: v
        for py, v, h in ((_py_id(sid), v, h) for sid, v, h in rows)
        if h is not None and fingerprints.get(py) == h
    }


def _explain(e: BaseException, path: Path) -> str:
    text = str(e).lower()
    if isinstance(e, sqlite3.OperationalError) and ("locked" in text or "busy" in text):
        return (
            f"another remotesam-bench process is writing {path}; wait for it or use another "
            f"--results-dir (SQLite: {e})"
        )
    if (isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT)) or "full" in text:
        return (
            f"the disk holding {path} is full ({e}); free some space and run the same command "
            "again: everything already stored is kept and will not be recomputed"
        )
    if (
        (isinstance(e, OSError) and e.errno in (errno.EACCES, errno.EPERM, errno.EROFS))
        or "readonly" in text
        or "read-only" in text
        or "unable to open" in text
    ):
        return (
            f"cannot write to {path} ({e}); make the results directory writable or pass "
            "--results-dir with a writable folder"
        )
    return f"cannot write the results store {path} ({e}); pass --results-dir with a writable folder"


class ResultsStore:
    """Predictions, failures and checkpoint hashes in ``<results_dir>/store.sqlite``.

    Args:
        results_dir: the results directory (created if missing).
        filename: the database's file name in it (default ``store.sqlite``; the shard store
            of a ``torchrun`` rank is ``shards/rank-<k>.sqlite``, see
            :mod:`remotesam.bench.run.shards`).
        readonly: open an existing store for reading only (``score`` on a read-only copy).
        timeout_s: how long a writer waits for another writer's lock.

    Raises:
        StoreError: the directory cannot be created or written (read-only, full disk, a file in
            the way); nothing is lost, the message says what to do.
    """

    def __init__(
        self,
        results_dir: str | Path,
        *,
        readonly: bool = False,
        timeout_s: float = 60.0,
        filename: str = STORE_FILENAME,
    ) -> None:
        self.results_dir = Path(results_dir)
        self.path = self.results_dir / filename
        self.readonly = readonly
        self._has_file_hashes = self._has_transient = True
        try:
            if readonly:
                if not self.path.is_file():
                    raise StoreError(
                        f"no results store at {self.path}; run `remotesam-bench run` "
                        "first or pass --results-dir"
                    )
                self._conn = self._connect_readonly(timeout_s)
                _refuse_newer(self._conn, self.path)
                # an older store read as it is (it cannot be migrated read-only)
                tables = {
                    r[0]
                    for r in self._conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
                }
                self._has_file_hashes = "file_hashes" in tables
                self._has_transient = "failures" in tables and "transient" in {
                    r[1] for r in self._conn.execute("PRAGMA table_info(failures)")
                }
            else:
                self.results_dir.mkdir(parents=True, exist_ok=True)
                self._conn = self._connect(timeout_s)
                _refuse_newer(self._conn, self.path)
                self._enable_wal(timeout_s)
                self._conn.execute("PRAGMA synchronous=NORMAL")
                with self._write() as c:
                    for stmt in _DDL.split(";"):
                        if stmt.strip():
                            c.execute(stmt)
                    _migrate(c)
                    # A real write, so that a read-only or full results dir fails here, before
                    # any work starts, and not after the first batch.
                    c.execute(
                        "INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)",
                        (str(SCHEMA_VERSION),),
                    )
                    c.execute(
                        "INSERT OR REPLACE INTO meta VALUES ('last_open', ?)", (repr(time.time()),)
                    )
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

    def _connect_readonly(self, timeout_s: float) -> sqlite3.Connection:
        """Open for reading only. A WAL store in a directory that cannot be written (a read-only
        copy, a read-only mount) is opened ``immutable=1``: SQLite then needs neither the
        ``-shm`` file nor a lock, which it could not create there."""
        uri = self.path.resolve().as_uri()
        writable = os.access(self.results_dir, os.W_OK) and os.access(self.path, os.W_OK)
        mode = "?mode=ro" if writable else "?mode=ro&immutable=1"
        conn = sqlite3.connect(uri + mode, uri=True, timeout=timeout_s, isolation_level=None)
        conn.execute(f"PRAGMA busy_timeout={int(timeout_s * 1000)}")
        return conn

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

    def put_predictions(
        self,
        key: PredictionKey,
        items: Sequence[tuple[str, dict[str, Any]]],
        fingerprints: Mapping[str, str] | None = None,
    ) -> None:
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
        rows = [
            (*key.values(), _db_id(sid), json.dumps(pred, sort_keys=True), now, fps.get(sid))
            for sid, pred in items
        ]

        def do() -> None:
            with self._write() as c:
                c.executemany(
                    "INSERT OR REPLACE INTO predictions VALUES (?,?,?,?,?,?,?,?,?,?)", rows
                )
                c.executemany(
                    "DELETE FROM failures WHERE ckpt_sha256=? AND task=? AND task_version=? AND "
                    "dataset=? AND split=? AND settings_hash=? AND sample_id=?",
                    [(*key.values(), _db_id(sid)) for sid, _ in items],
                )

        self._guarded(do)

    def get_predictions(
        self,
        key: PredictionKey,
        sample_ids: Iterable[str] | None = None,
        fingerprints: Mapping[str, str] | None = None,
        unreadable: list[str] | None = None,
    ) -> dict[str, dict[str, Any]]:
        """Stored predictions for ``key``: ``{sample_id: prediction}``.

        A stored prediction that is not valid JSON (the database edited by hand, or corrupted)
        is left out as if it were missing, with one :class:`StoreWarning` that counts them.

        Args:
            sample_ids: only these samples (default: all stored).
            fingerprints: ``{sample_id: input fingerprint}``: only predictions stored with the
                sample's current fingerprint (stale ones are left out). None: no check.
            unreadable: receives the ids of the predictions left out as not valid JSON.
        """
        where = " AND ".join(f"{c}=?" for c in _KEY_COLUMNS)

        def do() -> list[tuple[str, str, str | None]]:
            return self._conn.execute(
                f"SELECT sample_id, prediction, input_hash FROM predictions WHERE {where}",
                key.values(),
            ).fetchall()

        wanted = None if sample_ids is None else {_db_id(i) for i in sample_ids}
        rows = [r for r in self._guarded(do) if wanted is None or r[0] in wanted]
        out: dict[str, dict[str, Any]] = {}
        bad: list[str] = []
        for sid, text in _matching(rows, fingerprints).items():
            try:
                out[sid] = json.loads(text)
            except (TypeError, ValueError):  # not text, or not JSON
                bad.append(sid)
        if bad:
            import warnings

            warnings.warn(
                f"{self.path}: {len(bad)} stored prediction(s) of {key.task}.{key.dataset}/"
                f"{key.split} (e.g. sample {bad[0]!r}) are not valid JSON (edited or "
                "corrupted); treated as missing: `run` predicts them again, `score` counts "
                "them as failed samples",
                StoreWarning,
                stacklevel=2,
            )
            if unreadable is not None:
                unreadable.extend(bad)
        return out

    def delete_predictions(self, key: PredictionKey, sample_ids: Iterable[str]) -> None:
        """Forget the stored predictions of ``sample_ids`` under ``key``."""
        rows = [(*key.values(), _db_id(sid)) for sid in sample_ids]
        if self.readonly or not rows:
            return

        def do() -> None:
            with self._write() as c:
                c.executemany(
                    "DELETE FROM predictions WHERE ckpt_sha256=? AND task=? AND task_version=? "
                    "AND dataset=? AND split=? AND settings_hash=? AND sample_id=?",
                    rows,
                )

        self._guarded(do)

    def stored_ids(
        self, key: PredictionKey, fingerprints: Mapping[str, str] | None = None
    ) -> set[str]:
        """Ids of samples with a stored prediction for ``key`` (no JSON decoding); with
        ``fingerprints``, only those stored with the sample's current fingerprint."""
        where = " AND ".join(f"{c}=?" for c in _KEY_COLUMNS)
        rows = self._guarded(
            lambda: self._conn.execute(
                f"SELECT sample_id, NULL, input_hash FROM predictions WHERE {where}", key.values()
            ).fetchall()
        )
        return set(_matching(rows, fingerprints))

    def count_predictions(self, key: PredictionKey | None = None) -> int:
        """Number of stored predictions (for ``key``, or in total)."""
        if key is None:
            return self._guarded(
                lambda: self._conn.execute("SELECT COUNT(*) FROM predictions").fetchone()[0]
            )
        where = " AND ".join(f"{c}=?" for c in _KEY_COLUMNS)
        return self._guarded(
            lambda: self._conn.execute(
                f"SELECT COUNT(*) FROM predictions WHERE {where}", key.values()
            ).fetchone()[0]
        )

    # -- failures ------------------------------------------------------------------------------

    def put_failures(
        self,
        key: PredictionKey,
        items: Sequence[tuple[str, str] | tuple[str, str, bool]],
        fingerprints: Mapping[str, str] | None = None,
    ) -> None:
        """Record ``(sample_id, error message[, transient])`` (with the samples' input
        fingerprints, as :meth:`put_predictions`); a later success clears them.

        A *transient* failure (out of memory, a resource that timed out) is retried by the next
        run; a permanent one (a bad image) stays until ``--retry-failed``.
        """
        if not items:
            return
        now = time.time()
        fps = fingerprints or {}
        rows = [
            (
                *key.values(),
                _db_id(it[0]),
                it[1],
                now,
                fps.get(it[0]),
                int(bool(it[2])) if len(it) > 2 else 0,
            )
            for it in items
        ]

        def do() -> None:
            with self._write() as c:
                c.executemany(
                    "INSERT OR REPLACE INTO failures VALUES (?,?,?,?,?,?,?,?,?,?,?)", rows
                )

        self._guarded(do)

    def get_failures(
        self,
        key: PredictionKey,
        fingerprints: Mapping[str, str] | None = None,
        *,
        transient: bool | None = None,
    ) -> dict[str, str]:
        """Recorded failures for ``key``: ``{sample_id: error message}`` (with
        ``fingerprints``: only failures of the samples' current inputs; with ``transient``:
        only the transient (True) or the permanent (False) ones)."""
        where = " AND ".join(f"{c}=?" for c in _KEY_COLUMNS)
        params: tuple[Any, ...] = key.values()
        if transient is not None and not self._has_transient:  # schema 2: all permanent
            if transient:
                return {}
            transient = None
        if transient is not None:
            where += " AND transient=?"
            params = (*params, int(transient))
        rows = self._guarded(
            lambda: self._conn.execute(
                f"SELECT sample_id, error, input_hash FROM failures WHERE {where}", params
            ).fetchall()
        )
        return _matching(rows, fingerprints)

    # -- settings ------------------------------------------------------------------------------

    def put_settings(self, settings_hash: str, settings: dict[str, Any]) -> None:
        """Remember which settings a hash stands for (provenance)."""
        text = json.dumps(settings, sort_keys=True)

        def do() -> None:
            with self._write() as c:
                c.execute("INSERT OR IGNORE INTO settings VALUES (?, ?)", (settings_hash, text))

        self._guarded(do)

    # -- model settings ----------------------------------------------------------------------

    def get_model_settings(self, model_key: str) -> dict[str, Any] | None:
        """The settings a model loaded under ``model_key`` reported (see
        :func:`remotesam.bench.records.identity.model_key`), or None when never loaded."""
        row = self._guarded(
            lambda: self._conn.execute(
                "SELECT settings FROM model_settings WHERE model_key=?", (model_key,)
            ).fetchone()
        )
        return None if row is None else json.loads(row[0])

    def put_model_settings(self, model_key: str, settings: dict[str, Any]) -> None:
        """Remember the settings of the model loaded under ``model_key`` (no-op when
        read-only)."""
        if self.readonly:
            return
        text = json.dumps(settings, sort_keys=True)

        def do() -> None:
            with self._write() as c:
                c.execute("INSERT OR REPLACE INTO model_settings VALUES (?, ?)", (model_key, text))

        self._guarded(do)

    # -- moving rows between stores -------------------------------------------------------------

    def take_rows(self, max_bytes: int = 8 << 20, *, settings: bool = True) -> RowBatch:
        """Up to about ``max_bytes`` of stored predictions and failures (at least one row when
        any is stored), in key order, with every settings row when ``settings``. Nothing is
        removed: :meth:`forget_rows` does that once the rows are safe elsewhere."""

        def do() -> RowBatch:
            c = self._conn
            preds: list[tuple[Any, ...]] = []
            size = 0
            for row in c.execute(f"SELECT {', '.join(PREDICTION_COLUMNS)} FROM predictions"):
                if preds and size + len(row[7]) > max_bytes:
                    break
                preds.append(tuple(row))
                size += len(row[7]) + 200
            fails: list[tuple[Any, ...]] = []
            if size < max_bytes:
                cols = FAILURE_COLUMNS if self._has_transient else (*FAILURE_COLUMNS[:-1], "0")
                for row in c.execute(f"SELECT {', '.join(cols)} FROM failures"):
                    if (preds or fails) and size + len(row[7]) > max_bytes:
                        break
                    fails.append(tuple(row))
                    size += len(row[7]) + 200
            sets = (
                c.execute("SELECT settings_hash, settings FROM settings").fetchall()
                if settings
                else []
            )
            tables = {r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            models = (
                c.execute("SELECT model_key, settings FROM model_settings").fetchall()
                if settings and "model_settings" in tables
                else []
            )
            return RowBatch(preds, fails, [tuple(r) for r in sets], [tuple(r) for r in models])

        return self._guarded(do)

    def forget_rows(self, batch: RowBatch) -> None:
        """Delete the predictions and failures of ``batch`` (by key) from this store."""
        if not len(batch):
            return
        where = " AND ".join(f"{c}=?" for c in (*_KEY_COLUMNS, "sample_id"))

        def do() -> None:
            with self._write() as c:
                c.executemany(
                    f"DELETE FROM predictions WHERE {where}", [r[:7] for r in batch.predictions]
                )
                c.executemany(
                    f"DELETE FROM failures WHERE {where}", [r[:7] for r in batch.failures]
                )

        self._guarded(do)

    def put_rows(self, batch: RowBatch) -> None:
        """Write ``batch`` into this store in one transaction: a prediction replaces the same
        key's prediction and clears its failure (as :meth:`put_predictions`); a failure is kept
        only where no prediction is stored; settings rows already present are kept."""
        where = " AND ".join(f"{c}=?" for c in (*_KEY_COLUMNS, "sample_id"))

        def do() -> None:
            with self._write() as c:
                c.executemany(
                    f"INSERT OR REPLACE INTO predictions ({', '.join(PREDICTION_COLUMNS)})"
                    f" VALUES ({','.join('?' * len(PREDICTION_COLUMNS))})",
                    batch.predictions,
                )
                c.executemany(
                    f"DELETE FROM failures WHERE {where}", [r[:7] for r in batch.predictions]
                )
                c.executemany(
                    f"INSERT OR REPLACE INTO failures ({', '.join(FAILURE_COLUMNS)}) "
                    f"SELECT {','.join('?' * len(FAILURE_COLUMNS))} "
                    f"WHERE NOT EXISTS (SELECT 1 FROM predictions WHERE {where})",
                    [(*r, *r[:7]) for r in batch.failures],
                )
                c.executemany("INSERT OR IGNORE INTO settings VALUES (?, ?)", batch.settings)
                c.executemany(
                    "INSERT OR IGNORE INTO model_settings VALUES (?, ?)", batch.model_settings
                )

        if len(batch) or batch.settings or batch.model_settings:
            self._guarded(do)

    # -- file hashes ---------------------------------------------------------------------------

    def cached_sha256(self, path: str | Path) -> str | None:
        """The cached sha256 of ``path`` while the file is unchanged (see
        :meth:`cached_sha256_many`)."""
        return self.cached_sha256_many([path]).get(str(path))

    def cached_sha256_many(self, paths: Sequence[str | Path]) -> dict[str, str]:
        """Cached sha256 of many files in one query: ``{str(path): sha256}``.

        A cached digest is reused only while the file's (resolved path, device, inode, size,
        mtime_ns, ctime_ns) are all unchanged. ``cp -p`` and ``rsync -t`` restore the mtime but
        write a new file (new inode, or a rename onto the path) and any write or rename sets the
        ctime to *now*; the ctime cannot be set by user tools (only by changing the system
        clock). So a file whose bytes changed is hashed again, whatever tool touched it, while
        an unchanged dataset costs one ``stat`` per file. Where the ctime is not a change time
        (Windows) nothing is reused. Missing and non-regular files are left out. (The one gap:
        the kernel stamps ctime from a coarse clock, a few milliseconds; a file rewritten in
        place to the same size within that tick of its previous write, after it was hashed,
        keeps its key. No copy tool works that fast on a file a run has just read.)
        """
        out: dict[str, str] = {}
        stats: dict[str, tuple[str, tuple[int, ...]]] = {}
        for p in paths:
            k = file_stat_key(p)
            if k is not None:
                stats[str(p)] = (_path_key(p), k)

        def do() -> dict[str, tuple[tuple[int, ...], str]]:
            found: dict[str, tuple[tuple[int, ...], str]] = {}
            resolved = sorted({r[0] for r in stats.values()})
            for i in range(0, len(resolved), 500):  # under SQLite's host-parameter limit
                chunk = resolved[i : i + 500]
                marks = ",".join("?" * len(chunk))
                for path, *key, digest in self._conn.execute(
                    "SELECT path, dev, ino, size, mtime_ns, ctime_ns, sha256 FROM file_hashes "
                    f"WHERE path IN ({marks})",
                    chunk,
                ):
                    found[path] = (tuple(key), digest)
            return found

        found = self._guarded(do) if stats and self._has_file_hashes else {}
        for p, (resolved, key) in stats.items():
            hit = found.get(resolved)
            if hit is not None and hit[0] == key:
                out[p] = hit[1]
        return out

    def put_sha256_many(
        self,
        items: Mapping[_PathT, str],
        stat_keys: Mapping[_PathT, tuple[int, ...] | None] | None = None,
    ) -> None:
        """Cache the sha256 of many files in one transaction (no-op when read-only).

        ``stat_keys`` gives each file's :func:`file_stat_key` taken *before* it was hashed (so a
        file changed while being hashed is not cached under its new state); default: now.
        """
        if self.readonly or not items:
            return
        rows = []
        for p, digest in items.items():
            k = stat_keys.get(p) if stat_keys is not None else file_stat_key(p)
            if k is not None:
                rows.append((_path_key(p), *k, digest))
        if not rows:
            return

        def do() -> None:
            with self._write() as c:
                c.executemany("INSERT OR REPLACE INTO file_hashes VALUES (?,?,?,?,?,?,?)", rows)

        self._guarded(do)

    def put_sha256(
        self, path: str | Path, sha256: str, stat_key: tuple[int, ...] | None = None
    ) -> None:
        """Cache ``sha256`` for ``path`` under its (device, inode, size, mtime, ctime)."""
        self.put_sha256_many({path: sha256}, None if stat_key is None else {path: stat_key})
