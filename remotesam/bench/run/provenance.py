"""Provenance of a run: package, git revision, platform, torch/CUDA, device, configuration."""

from __future__ import annotations

import datetime as _dt
import platform
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

from remotesam.bench.run.config import RunConfig
from remotesam.bench.run.distributed import DistContext

__all__ = ["new_run_id", "run_provenance", "version_text"]


def _git_revision() -> tuple[str | None, bool | None]:
    here = Path(__file__).resolve().parent
    try:
        rev = subprocess.run(["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True,
                             text=True, timeout=5, check=False)
        if rev.returncode != 0:
            return None, None
        st = subprocess.run(
            ["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
        return rev.stdout.strip(), bool(st.stdout.strip()) if st.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None, None


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _torch_info(device: str) -> dict[str, Any]:
    """torch/CUDA versions. torch is imported only if the run already did (a model was loaded)
    or the device is CUDA: a fully cached rerun on CPU does not pay for importing it."""
    torch = sys.modules.get("torch")
    if torch is None and device.startswith("cuda"):
        import torch
    if torch is None:
        from importlib.metadata import PackageNotFoundError, version

        try:
            return {"torch": version("torch"), "cuda": None, "cuda_available": None,
                    "device_name": _cpu_name()}
        except PackageNotFoundError:
            return {"torch": None, "cuda": None, "cuda_available": None,
                    "device_name": _cpu_name()}
    name = _cpu_name()
    if device.startswith("cuda") and torch.cuda.is_available():
        name = torch.cuda.get_device_name(torch.device(device))
    return {"torch": torch.__version__, "cuda": torch.version.cuda,
            "cuda_available": torch.cuda.is_available(), "device_name": name}


def run_provenance(config: RunConfig, device: str, ctx: DistContext) -> dict[str, Any]:
    """Where and how a run ran: package and git revision, platform, torch/CUDA, device,
    precision, world size, command line and the configuration."""
    import remotesam

    rev, dirty = _git_revision()
    return {
        "package_version": remotesam.__version__,
        "git_revision": rev,
        "git_dirty": dirty,
        "python": platform.python_version(),
        "platform": platform.platform(),
        **_torch_info(device),
        "device": device,
        "precision": config.precision,
        "batch_size": config.batch_size,
        "world_size": ctx.world_size,
        "backend": ctx.backend or None,
        "command": sys.argv[:],
        "config": config.to_json(),
    }


def version_text() -> str:
    """``remotesam-bench --version``: package version, git revision (when run from a git
    checkout), torch and Python versions, on one line."""
    from importlib.metadata import PackageNotFoundError, version

    import remotesam

    rev, dirty = _git_revision()
    try:
        torch_version = version("torch")
    except PackageNotFoundError:
        torch_version = "not installed"
    git = f"git {rev[:12]}{'-dirty' if dirty else ''}" if rev else "git revision unknown"
    return (f"remotesam-bench {remotesam.__version__} ({git}; torch {torch_version}; "
            f"python {platform.python_version()})")


def new_run_id() -> str:
    """A fresh run id: the UTC time and a random suffix (``20260101T120000Z-a1b2c3``)."""
    now = _dt.datetime.now(_dt.UTC)
    return now.strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)
