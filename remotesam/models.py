"""Model creation, above the network and its checkpoint loader (timm style).

``create_model("remotesam_tiny")`` builds a network by registered name or config;
``create_model(name, checkpoint=path)`` also loads weights, strictly and safely (no pickle
execution; see :mod:`remotesam.checkpoint`). The layers: :mod:`remotesam.model` (the network,
knows nothing of files) < :mod:`remotesam.checkpoint` (reads weights into a network) < this
module.
"""

from __future__ import annotations

import os
from typing import Any

from remotesam.model.config import RemoteSAMConfig
from remotesam.model.network import RemoteSAMNet, build_network, resolve_config

__all__ = ["create_model"]


def create_model(
    name_or_config: str | RemoteSAMConfig,
    *,
    checkpoint: str | os.PathLike[str] | None = None,
    **overrides: Any,
) -> RemoteSAMNet:
    """Build a RemoteSAM network by registered name or config, in eval mode.

    Args:
        name_or_config: a registered name (see :func:`remotesam.model.list_models`) or a config.
        checkpoint: optional weights file (official ``.pth``, bare state dict or
            ``.safetensors``), loaded strictly with :func:`remotesam.checkpoint.load_checkpoint`.
        **overrides: config fields to replace.

    Returns:
        The network (``float32`` weights on the CPU).

    Raises:
        KeyError: unknown name. TypeError: neither a name nor a config.
        ValueError: bad overrides. remotesam.checkpoint.CheckpointError: bad checkpoint.
    """
    if checkpoint is None:
        return build_network(name_or_config, **overrides)
    from remotesam.checkpoint import load_checkpoint

    return load_checkpoint(checkpoint, resolve_config(name_or_config, **overrides))
