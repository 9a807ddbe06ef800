"""Data-parallel helpers: process-group setup under ``torchrun`` and synchronised BatchNorm.

PyTorch's ``nn.SyncBatchNorm`` refuses CPU tensors, yet the official recipe trains with
synchronised BatchNorm (SyncBN). :class:`CpuSyncBatchNorm` computes the batch statistics over
all processes with differentiable all-reduces (two passes: mean, then centred variance), so a
2-process run on gloo sees exactly the statistics of the 1-process run on the same global
batch. On CUDA ``nn.SyncBatchNorm`` is used.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.distributed.nn.functional import all_reduce as diff_all_reduce

__all__ = ["CpuSyncBatchNorm", "DistInfo", "convert_sync_batchnorm", "setup_distributed"]


@dataclass(frozen=True)
class DistInfo:
    """rank, world size, local rank, and whether this module initialised the process group."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    owns_group: bool = False

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup_distributed(device_type: str) -> DistInfo:
    """Join the process group that ``torchrun`` describes (``WORLD_SIZE`` > 1), with gloo on
    CPU and nccl on CUDA; a no-op for a single process or an already initialised group."""
    if dist.is_available() and dist.is_initialized():
        return DistInfo(
            dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")), False
        )
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    backend = "nccl" if device_type == "cuda" else "gloo"
    dist.init_process_group(backend=backend)
    return DistInfo(
        dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")), True
    )


class CpuSyncBatchNorm(nn.modules.batchnorm._BatchNorm):
    """BatchNorm whose training statistics span every process of ``group`` (any device).

    Same parameters and buffers (names, shapes) as ``nn.BatchNorm{1,2}d``, so state dicts are
    interchangeable. In eval mode, or without an initialised process group, it is plain
    BatchNorm.
    """

    def __init__(
        self, *args: Any, group: dist.ProcessGroup | None = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.group = group

    def _check_input_dim(self, input: Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"expected at least 2D input (got {input.dim()}D input)")

    def forward(self, input: Tensor) -> Tensor:
        sync = (
            self.training
            and dist.is_available()
            and dist.is_initialized()
            and dist.get_world_size(self.group) > 1
        )
        if not sync:
            return super().forward(input)
        dims = [0, *range(2, input.dim())]
        shape = [1, -1] + [1] * (input.dim() - 2)
        group = self.group if self.group is not None else dist.group.WORLD
        n_local = torch.tensor([float(input.numel() // input.shape[1])], device=input.device)
        x = input.float()
        s = x.sum(dims)
        tot = diff_all_reduce(torch.cat([s, n_local]), group=group)
        n = tot[-1]
        mean = tot[:-1] / n
        xc = x - mean.view(shape)
        var = diff_all_reduce((xc * xc).sum(dims), group=group) / n
        y = xc * torch.rsqrt(var.view(shape) + self.eps)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        # the three buffers are None when the module was built without running statistics
        tracked, r_mean, r_var = self.num_batches_tracked, self.running_mean, self.running_var
        if self.track_running_stats and tracked is not None and r_mean is not None \
                and r_var is not None:
            with torch.no_grad():
                tracked.add_(1)
                m = self.momentum if self.momentum is not None else 1.0 / float(tracked)
                r_mean.mul_(1 - m).add_(mean.detach(), alpha=m)
                unbiased = var.detach() * n / torch.clamp(n - 1, min=1.0)
                r_var.mul_(1 - m).add_(unbiased, alpha=m)
        return y.to(input.dtype)


def convert_sync_batchnorm(
    module: nn.Module, device_type: str, group: dist.ProcessGroup | None = None
) -> nn.Module:
    """Replace every ``BatchNorm{1,2,3}d`` by a synchronised one (``nn.SyncBatchNorm`` on CUDA,
    :class:`CpuSyncBatchNorm` elsewhere), keeping parameters and buffers."""
    if device_type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(module, process_group=group)
    return _convert_cpu(module, group)


def _convert_cpu(module: nn.Module, group: dist.ProcessGroup | None) -> nn.Module:
    out = module
    if isinstance(module, nn.modules.batchnorm._BatchNorm) and not isinstance(
        module, CpuSyncBatchNorm
    ):
        out = CpuSyncBatchNorm(
            module.num_features,
            module.eps,
            module.momentum,
            module.affine,
            module.track_running_stats,
            group=group,
        )
        with torch.no_grad():
            if module.affine:
                out.weight = module.weight
                out.bias = module.bias
            if module.track_running_stats:
                out.running_mean = module.running_mean
                out.running_var = module.running_var
                out.num_batches_tracked = module.num_batches_tracked
        out.train(module.training)
    for name, child in module.named_children():
        out.add_module(name, _convert_cpu(child, group))
    return out
