"""Training RemoteSAM on REFER-format data (``remotesam-train``).

``train(TrainConfig(data_root=..., model="remotesam_tiny", max_steps=...)) -> TrainResult``;
official recipe by default, resumable, data parallel under ``torchrun``.
"""

from .data import TrainDataError, read_refer, safe_load_refs
from .trainer import TrainConfig, TrainError, TrainResult, train

__all__ = [
    "TrainConfig",
    "TrainDataError",
    "TrainError",
    "TrainResult",
    "read_refer",
    "safe_load_refs",
    "train",
]
