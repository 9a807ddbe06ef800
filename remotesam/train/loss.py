"""The official RemoteSAM training loss: 0.9 * weighted cross-entropy + 0.1 * Dice."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["segmentation_loss"]


def segmentation_loss(
    logits: Tensor,
    target: Tensor,
    class_weights: Sequence[float] = (0.9, 1.1),
    ce_weight: float = 0.9,
    dice_weight: float = 0.1,
    smooth: float = 1.0,
) -> Tensor:
    """Per-sample loss, averaged over the batch.

    ``loss_b = ce_weight * CE_b + dice_weight * Dice_b`` where ``CE_b`` is the class-weighted
    cross-entropy of sample b (weighted mean over its pixels, as ``F.cross_entropy(weight=...)``)
    and ``Dice_b = 1 - (2 sum(p g) + smooth) / (sum(p) + sum(g) + smooth)`` on the foreground
    softmax probability ``p``. Averaging per sample (instead of over all pixels of the batch) makes
    the loss of a global batch the mean of the per-process losses, so data-parallel training
    computes exactly the single-process loss.

    Args:
        logits: ``(B, 2, H, W)`` float (any float dtype; computed in float32).
        target: ``(B, H, W)`` int64 with values 0/1.

    Returns:
        Scalar float32 tensor.

    Raises:
        ValueError: shapes or target values do not match.
    """
    if logits.ndim != 4 or logits.shape[1] != 2:
        raise ValueError(f"logits must be (B, 2, H, W), got {tuple(logits.shape)}")
    if target.shape != (logits.shape[0], *logits.shape[2:]):
        raise ValueError(
            f"target must be (B, H, W) = {(logits.shape[0], *logits.shape[2:])}, got "
            f"{tuple(target.shape)}"
        )
    logits = logits.float()
    w = torch.tensor(list(class_weights), dtype=torch.float32, device=logits.device)
    ce = F.cross_entropy(logits, target, reduction="none")  # (B, H, W)
    wp = w[target]
    ce_b = (ce * wp).flatten(1).sum(1) / wp.flatten(1).sum(1)
    p = logits.softmax(1)[:, 1].flatten(1)
    g = target.flatten(1).float()
    dice_b = 1.0 - (2.0 * (p * g).sum(1) + smooth) / (p.sum(1) + g.sum(1) + smooth)
    return (ce_weight * ce_b + dice_weight * dice_b).mean()
