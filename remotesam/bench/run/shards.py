"""Shard stores: how the predictions of every ``torchrun`` rank reach rank 0's one store.

The results store is SQLite in WAL mode, which works for many processes of one host but not
across hosts on a network file system (NFS, Lustre, GPFS). So in a job of several processes
only rank 0 writes ``<results>/store.sqlite``; every other rank ``k`` writes its predictions,
batch by batch as they are made, to a store of its own, ``<its results>/shards/rank-<k>.sqlite``
(one writer, one host per file), and after each checkpoint's prediction pass the ranks send the
rows of their shard stores to rank 0 over the ``torch.distributed`` process group
(:func:`forward_rows`, in chunks of a few MB), which writes them into its store in one
transaction per chunk; only then does each rank delete what it sent. A shard store keeps its
cached file hashes between runs; its prediction rows exist only until rank 0 has them.

A node that dies leaves its unsent rows in its shard store. At the next start
(:func:`collect_leftovers`, with any world size, under ``torchrun`` or not) they are sent to
rank 0 before rank 0 decides what is left to predict, so nothing stored is predicted again:

* each rank sends the rows left in its own shard store (``rank-<k>.sqlite``);
* in each results directory, the lowest rank that uses it (found by probe files, so a directory
  shared by several ranks or nodes is recognised whatever its path is called) also sends the
  shard stores of ranks that are not in this job (a job with fewer processes than before), then
  deletes them.

A shard store that sits on a node which does not take part in the next job is merged with
``remotesam-bench merge`` (:mod:`remotesam.bench.run.merge`).
"""

from __future__ import annotations

import contextlib
import re
import uuid
from collections.abc import Sequence
from pathlib import Path

from remotesam.bench.records.store import ResultsStore, RowBatch
from remotesam.bench.run.distributed import DistContext

__all__ = ["SHARDS_DIR", "collect_leftovers", "forward_rows", "open_local_store",
           "shard_files"]

#: The folder of shard stores in a results directory.
SHARDS_DIR = "shards"

_SHARD_RE = re.compile(r"^rank-(\d+)\.sqlite$")

#: Bytes of prediction JSON per rank and round (rank 0 receives up to world_size x this).
_CHUNK_BYTES = 8 << 20


def shard_files(results_dir: str | Path) -> dict[int, Path]:
    """``{rank: path}`` of the shard stores in ``<results_dir>/shards/``."""
    folder = Path(results_dir) / SHARDS_DIR
    out: dict[int, Path] = {}
    if folder.is_dir():
        for p in folder.iterdir():
            m = _SHARD_RE.match(p.name)
            if m and p.is_file():
                out[int(m.group(1))] = p
    return dict(sorted(out.items()))


def open_local_store(results_dir: str | Path, ctx: DistContext) -> ResultsStore:
    """The store this process writes: ``store.sqlite`` on rank 0, its shard store elsewhere."""
    if ctx.is_main:
        return ResultsStore(results_dir)
    return ResultsStore(Path(results_dir) / SHARDS_DIR, filename=f"rank-{ctx.rank}.sqlite")


def _ranks_sharing(results_dir: Path, ctx: DistContext) -> list[int]:
    """The ranks of this job whose results directory is this process's (same folder, whatever
    the host or the path it is mounted under): each rank writes a probe file, then reads which
    probes it sees."""
    if not ctx.distributed:
        return [ctx.rank]
    token = ctx.broadcast_object(uuid.uuid4().hex if ctx.is_main else None)
    folder = results_dir / SHARDS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    probe = folder / f".probe-{token}-{ctx.rank}"
    probe.write_text(str(ctx.rank))
    ctx.barrier()
    seen = sorted(int(p.name.rsplit("-", 1)[1]) for p in folder.glob(f".probe-{token}-*"))
    ctx.barrier()
    with contextlib.suppress(OSError):
        probe.unlink()
    return seen


def _remove_store_file(path: Path) -> None:
    for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        with contextlib.suppress(FileNotFoundError):
            p.unlink()


def forward_rows(ctx: DistContext, main: ResultsStore | None,
                 sources: Sequence[ResultsStore]) -> int:
    """Move every prediction and failure of ``sources`` (this process's) into rank 0's
    ``main`` store; a collective call: every rank calls it, with its own sources.

    Rounds until no rank has rows left: each rank reads up to a few MB of its sources, rank 0
    gathers them and writes them in one transaction, and then (once every rank has seen that
    rank 0 went on, i.e. the rows are committed) each rank deletes what it sent. A crash at any
    point loses nothing: rows are deleted only after they were committed, and sending a row
    twice writes the same row twice.

    Returns:
        the number of rows rank 0 received (0 on the other ranks).
    """
    received = 0
    first = True
    while True:
        taken: list[tuple[ResultsStore, RowBatch]] = []
        budget = _CHUNK_BYTES
        for src in sources:
            batch = src.take_rows(max(budget, 1), settings=first)
            if len(batch) or batch.settings or batch.model_settings:
                taken.append((src, batch))
            budget -= sum(len(r[7]) + 200 for r in batch.predictions + batch.failures)
            if budget <= 0:
                break
        mine = RowBatch([r for _, b in taken for r in b.predictions],
                        [r for _, b in taken for r in b.failures],
                        [r for _, b in taken for r in b.settings],
                        [r for _, b in taken for r in b.model_settings])
        gathered = ctx.gather_object(mine)
        if ctx.is_main:
            assert main is not None and gathered is not None
            for batch in gathered:
                main.put_rows(batch)
                received += len(batch)
        # rank 0 enters this collective only after its commit: the rows are safe
        more = ctx.all_gather_object(len(mine) > 0)
        for src, batch in taken:
            src.forget_rows(batch)
        first = False
        if not any(more):
            return received


def collect_leftovers(ctx: DistContext, main: ResultsStore | None, own: ResultsStore,
                      results_dir: str | Path) -> int:
    """Send rows that an earlier, interrupted job left in shard stores to rank 0 (see the
    module docstring); a collective call, made once at the start of a run.

    Args:
        main: rank 0's store (None on the other ranks).
        own: this process's store (rank 0: ``main``; others: its shard store).
        results_dir: this process's results directory.

    Returns:
        the number of rows rank 0 received (0 on the other ranks).
    """
    results_dir = Path(results_dir)
    sharing = _ranks_sharing(results_dir, ctx)
    current = set(sharing)
    sources: list[ResultsStore] = [] if ctx.is_main else [own]
    orphans: list[Path] = []
    if ctx.rank == min(sharing):
        orphans = [p for rank, p in shard_files(results_dir).items() if rank not in current]
    try:
        sources += [ResultsStore(p.parent, filename=p.name) for p in orphans]
        n = forward_rows(ctx, main, sources)
    finally:
        for s in sources:
            if s is not own:
                s.close()
    for path in orphans:  # emptied and no longer anyone's
        _remove_store_file(path)
    with contextlib.suppress(OSError):
        (results_dir / SHARDS_DIR).rmdir()  # only when empty
    return n

