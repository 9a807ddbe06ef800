"""Deterministic, torch-free parameter fill used for parity checks against the official code.

This is the rule of ``../shared/reference/parity_tiny.md`` section 3: parameters (not buffers)
are taken in ``sorted()`` name order; tensor ``i`` with ``N`` values gets the murmur3-fmix32
stream ``u_k = fmix32((k + (i+1) * 0x9E3779B9) mod 2^32) / 2^31 - 1`` (k = 0..N-1, float64) and
the value of the first matching rule, rounded to float32:

========================================  =====================================
``name`` ends with ``.bias``               ``0.02 * u``
1-D tensor (norm weights)                  ``1 + 0.1 * u``
``embeddings`` in name / bias tables       ``0.05 * u``
5-D tensor (rotated conv weight)           ``sqrt(3 / prod(shape[2:])) * u``
otherwise                                  ``sqrt(3 / prod(shape[1:])) * u``
========================================  =====================================

Only integer ops and ``+ - * / sqrt`` are used, so numpy reproduces the official values bit for
bit. The filled ``remotesam_parity`` model reproduces the golden forward pass of the official
network; the benchmark uses it too because its logits are non-degenerate.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

__all__ = ["fill_parity", "fill_value", "hash_uniform"]


def hash_uniform(index: int, n: int) -> np.ndarray:
    """(n,) float64 in [-1, 1): the hash stream of the tensor at sorted position ``index``."""
    k = np.arange(n, dtype=np.uint32)
    with np.errstate(over="ignore"):
        h = k + np.uint32(((index + 1) * 0x9E3779B9) & 0xFFFFFFFF)
        h ^= h >> np.uint32(16)
        h *= np.uint32(0x85EBCA6B)
        h ^= h >> np.uint32(13)
        h *= np.uint32(0xC2B2AE35)
        h ^= h >> np.uint32(16)
    return h.astype(np.float64) / 2.0**31 - 1.0


def fill_value(index: int, name: str, shape: tuple[int, ...]) -> np.ndarray:
    """float32 array of ``shape``: the value of parameter ``name`` at sorted position ``index``."""
    n = int(np.prod(shape)) if shape else 1
    u = hash_uniform(index, n)
    if name.endswith(".bias"):
        v = 0.02 * u
    elif len(shape) == 1:
        v = 1.0 + 0.1 * u
    elif "embeddings" in name or name.endswith("relative_position_bias_table"):
        v = 0.05 * u
    elif len(shape) == 5:
        v = np.sqrt(3.0 / (shape[2] * shape[3] * shape[4])) * u
    else:
        v = np.sqrt(3.0 / np.prod(shape[1:])) * u
    return v.astype(np.float32).reshape(shape)


def fill_parity(model: nn.Module) -> list[str]:
    """Overwrite every parameter of ``model`` in place by the rule; buffers are left alone.

    Returns:
        The parameter names in the sorted order that defines each tensor's index.
    """
    params = dict(model.named_parameters())
    names = sorted(params)
    with torch.no_grad():
        for i, name in enumerate(names):
            p = params[name]
            p.copy_(torch.from_numpy(fill_value(i, name, tuple(p.shape))).to(p.dtype))
    return names
