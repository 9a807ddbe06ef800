"""The RemoteSAM network (multimodal Swin + PWAM + CIM + rotated-conv decoder + BERT).

Public API: :class:`RemoteSAMConfig`, :class:`RemoteSAMNet`, :func:`build_network`,
:func:`get_config`, :func:`list_models`, :func:`register_model`. This package knows nothing
of checkpoint files: :func:`remotesam.create_model` (in :mod:`remotesam.models`, above the
network and :mod:`remotesam.checkpoint`) builds a network and loads its weights.
"""

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

