"""The RemoteSAM network (multimodal Swin + PWAM + CIM + rotated-conv decoder + BERT).

Public API: :class:`RemoteSAMConfig`, :class:`RemoteSAMNet`, :func:`create_model`,
:func:`get_config`, :func:`list_models`, :func:`register_model`.
"""

from remotesam.model.config import RemoteSAMConfig, get_config, list_models, register_model
from remotesam.model.network import RemoteSAMNet, create_model

__all__ = [
    "RemoteSAMConfig",
    "RemoteSAMNet",
    "create_model",
    "get_config",
    "list_models",
    "register_model",
]
