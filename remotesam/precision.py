"""The numeric precision of a forward pass: the one place that decides what is allowed where.

``fp32`` (no autocast), ``bf16`` (``torch.autocast`` to bfloat16; slow on most CPUs but exact
enough) and ``fp16`` (``torch.autocast`` to float16) on CUDA only: fp16 on a CPU is hundreds of
times slower than fp32 and is refused. The command line, the benchmark runner and
:class:`remotesam.RemoteSAM` all call :func:`resolve_precision`, so a precision the predictor
would refuse is one clear input error before any sample, never a run of failed samples.
"""

from __future__ import annotations

from typing import Any

__all__ = ["PRECISIONS", "PrecisionError", "autocast_dtype", "canonical_precision",
           "drift_note", "resolve_precision"]

#: Canonical precision names, in the order they are offered.
PRECISIONS: tuple[str, ...] = ("fp32", "bf16", "fp16")

_ALIASES = {"fp32": "fp32", "float32": "fp32", "bf16": "bf16", "bfloat16": "bf16",
            "fp16": "fp16", "float16": "fp16", "half": "fp16"}


class PrecisionError(ValueError):
    """An unknown precision, or one the device cannot run (fp16 off CUDA)."""


def canonical_precision(name: str) -> str:
    """``"fp32"``, ``"bf16"`` or ``"fp16"`` for a name or alias (``"bfloat16"``, ``"half"``...).

    Raises:
        PrecisionError: an unknown name.
    """
    canon = _ALIASES.get(str(name).strip().lower())
    if canon is None:
        raise PrecisionError(f"unknown precision {name!r}; expected one of {list(PRECISIONS)}")
    return canon


def _device_type(device: Any) -> str:
    t = getattr(device, "type", None)  # a torch.device
    if isinstance(t, str):
        return t
    return str(device).split(":", 1)[0].strip().lower()


def resolve_precision(name: str, device: Any) -> str:
    """The canonical precision ``name`` on ``device`` (a name like ``"cuda:1"`` or a
    ``torch.device``).

    Raises:
        PrecisionError: unknown name, or fp16 on a device that is not CUDA.
    """
    canon = canonical_precision(name)
    if canon == "fp16" and _device_type(device) != "cuda":
        raise PrecisionError(
            f"precision 'fp16' needs a CUDA device (got {str(device)!r}); fp16 on a CPU is "
            "hundreds of times slower than fp32: use 'bf16' or 'fp32'")
    return canon


def autocast_dtype(precision: str) -> Any:
    """The ``torch.autocast`` dtype of a canonical precision (None for fp32)."""
    import torch

    return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[
        canonical_precision(precision)]


def drift_note(precision: str) -> str | None:
    """One line that says a reduced-precision result is not an fp32 result and how far it may
    move (measured in ``docs/SCALING.md``, "Reduced precision"); None for fp32."""
    name = str(precision or "fp32")
    if name in ("fp32", "float32"):
        return None
    return (f"{name} autocast: the numbers are not fp32's; on the bundled tiny checkpoint bf16 "
            "moved 28 of 60 metrics by >= 0.1 point and 7 by >= 1 (at most 2.4: samples near a "
            "threshold flip), see docs/SCALING.md, 'Reduced precision'. Publish fp32 numbers, "
            "or state the precision and check the drift on your model.")
