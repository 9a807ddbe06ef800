"""Data-parallel evaluation under ``torchrun``.

``torchrun --nproc_per_node N -m remotesam.bench run ...`` starts N copies of the same command
(on one node or several); each reads ``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` from the environment.
Rank 0 looks up which samples its store already holds and hands the rest out by index
(``rank::world_size`` of the misses); every other rank writes its predictions to a shard store of
its own in its own ``--results-dir`` and sends them to rank 0 over the process group, which
writes them into the one store and scores once (:mod:`remotesam.bench.run.shards`). No SQLite file
is ever written by two hosts, so each node may have its own (node-local) results directory.
Because the cache is keyed by sample id, never by rank, a run resumed with a different number of
processes reuses everything already stored.

Backends: ``gloo`` on CPU, ``nccl`` on CUDA.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from remotesam.bench.errors import InputError

__all__ = ["DistContext", "init_distributed", "shard_indices"]


def shard_indices(n: int, rank: int, world_size: int) -> range:
    """Indices of ``n`` items that ``rank`` handles: ``range(rank, n, world_size)``."""
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"invalid rank {rank} for world size {world_size}")
    return range(rank, n, world_size)


@dataclass
class DistContext:
    """This process's place in the job.

    Attributes:
        rank, world_size, local_rank: as set by ``torchrun`` (0, 1, 0 without it).
        backend: ``"gloo"``, ``"nccl"`` or ``""`` when not distributed.
        owns_group: True when we initialised the process group (and so destroy it).
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str = ""
    owns_group: bool = False

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def barrier(self) -> None:
        if self.distributed:
            import torch.distributed as dist

            dist.barrier()

    def all_gather_object(self, obj: Any) -> list[Any]:
        """Every rank's ``obj`` (picklable, small), in rank order; ``[obj]`` when alone."""
        if not self.distributed:
            return [obj]
        import torch.distributed as dist

        out: list[Any] = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    def gather_object(self, obj: Any) -> list[Any] | None:
        """Every rank's ``obj`` on rank 0, in rank order (None on the other ranks)."""
        if not self.distributed:
            return [obj]
        import torch.distributed as dist

        out: list[Any] | None = [None] * self.world_size if self.is_main else None
        dist.gather_object(obj, out, dst=0)
        return out

    def broadcast_object(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every rank."""
        if not self.distributed:
            return obj
        import torch.distributed as dist

        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def close(self) -> None:
        """Destroy the process group if we created it."""
        if self.owns_group:
            import torch.distributed as dist

            if dist.is_initialized():
                dist.destroy_process_group()
            self.owns_group = False


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as e:
        raise InputError(f"environment variable {name}={raw!r} must be an integer "
                         "(it is normally set by torchrun)") from e


def init_distributed(device: str) -> tuple[DistContext, str]:
    """Join the ``torchrun`` job described by the environment, if any.

    Args:
        device: the requested device (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ...).

    Returns:
        ``(context, device)``: under ``torchrun`` with CUDA the device becomes
        ``cuda:<LOCAL_RANK>``; otherwise it is returned unchanged.

    Raises:
        InputError: malformed environment variables.
    """
    world = _env_int("WORLD_SIZE", 1)
    if world <= 1:
        return DistContext(), device
    rank = _env_int("RANK", 0)
    local_rank = _env_int("LOCAL_RANK", rank)
    import torch
    import torch.distributed as dist

    use_cuda = device.startswith("cuda")
    if use_cuda:
        device = f"cuda:{local_rank}"
        torch.cuda.set_device(local_rank)
    backend = "nccl" if use_cuda else "gloo"
    owns = False
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
        owns = True
    ctx = DistContext(rank=dist.get_rank(), world_size=dist.get_world_size(),
                      local_rank=local_rank, backend=dist.get_backend(), owns_group=owns)
    return ctx, device
