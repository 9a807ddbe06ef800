"""The RemoteSAM network (multimodal Swin + PWAM + CIM + rotated-conv decoder + BERT).

Public API: :class:`RemoteSAMConfig`, :class:`RemoteSAMNet`, :func:`build_network`,
:func:`get_config`, :func:`list_models`, :func:`register_model`. This package knows nothing
of checkpoint files: :func:`remotesam.create_model` (in :mod:`remotesam.models`, above the
network and :mod:`remotesam.checkpoint`) builds a network and loads its weights. The name
``remotesam.model.create_model`` still resolves to it, lazily, for older imports.
"""

from typing import Any

from remotesam.model.config import RemoteSAMConfig, get_config, list_models, register_model
from remotesam.model.network import RemoteSAMNet, build_network

__all__ = [
    "RemoteSAMConfig",
    "RemoteSAMNet",
    "build_network",
    "get_config",
    "list_models",
    "register_model",
]


def __getattr__(name: str) -> Any:
    if name == "create_model":  # moved above the network; imported only when asked for
        from remotesam.models import create_model

        return create_model
    raise AttributeError(f"module 'remotesam.model' has no attribute {name!r}")
