"""RemoteSAM, re-implemented from its specification, and the remotesam-bench harness.

Public API (imported lazily so that ``import remotesam`` stays cheap)::

    from remotesam import RemoteSAM, create_model, load_checkpoint
    model = RemoteSAM.from_checkpoint("checkpoint.pth", device="cpu")
    result = model.referring_seg(image, "the airplane on the right")
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.2.0"

__all__ = [
    "RemoteSAM",
    "RemoteSAMConfig",
    "RemoteSAMNet",
    "Tokenizer",
    "__version__",
    "create_model",
    "list_models",
    "load_checkpoint",
    "save_checkpoint",
]

_LAZY = {
    "RemoteSAM": "remotesam.predictor",
    "RemoteSAMNet": "remotesam.model",
    "RemoteSAMConfig": "remotesam.model",
    "create_model": "remotesam.models",
    "list_models": "remotesam.model",
    "load_checkpoint": "remotesam.checkpoint",
    "save_checkpoint": "remotesam.checkpoint",
    "Tokenizer": "remotesam.text",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'remotesam' has no attribute {name!r}")
