"""Checkpoints and model factories: ``--ckpt`` values resolved to files, models loaded.

Everything here happens before any prediction: bad paths and specs are
:class:`~remotesam.bench.errors.InputError` s raised before work starts.
"""

from __future__ import annotations

import glob
import importlib
import os
import stat
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from remotesam.bench.errors import BenchError, InputError

__all__ = [
    "CHECKPOINT_SUFFIXES",
    "ModelFactory",
    "default_checkpoint",
    "default_model_factory",
    "load_model_factory",
    "resolve_checkpoints",
]

#: File suffixes taken as checkpoints when ``--ckpt`` names a directory.
CHECKPOINT_SUFFIXES = (".pth", ".pt", ".bin", ".safetensors", ".ckpt")

#: ``factory(path, *, device, precision, batch_size) -> model`` (a ``remotesam.RemoteSAM``).
ModelFactory = Callable[..., Any]


def default_checkpoint() -> Path:
    """The tiny checkpoint shipped in the package (``remotesam/checkpoints/``).

    Raises:
        InputError: it is missing (not built yet, or a stripped install).
    """
    import remotesam

    path = Path(remotesam.__file__).resolve().parent / "checkpoints" / "remotesam_tiny.safetensors"
    if not path.is_file():
        raise InputError(
            f"no --ckpt given and the bundled tiny checkpoint {path} does not exist; pass "
            "--ckpt PATH (a file, a directory or a glob), or build the tiny checkpoint with "
            "remotesam-train"
        )
    return path


def _is_regular(path: Path) -> bool:
    """A regular file (a FIFO or device named like a checkpoint would hang or mislead)."""
    try:
        return stat.S_ISREG(path.stat().st_mode)
    except OSError:
        return False


def _is_checkpoint_name(path: Path) -> bool:
    """Ends in a checkpoint suffix: ``x.safetensors`` yes; ``x.safetensors.json``,
    ``config.json`` and other side-car files no."""
    return path.suffix.lower() in CHECKPOINT_SUFFIXES


def _explicit_suffix(pattern: str) -> bool:
    """The pattern's last component names a suffix itself (``*.json``, ``ckpt-?.pt``): then the
    user chose the files; ``dir/*`` or ``dir/ckpt*`` keep only checkpoint suffixes."""
    suffix = Path(pattern).suffix
    return bool(suffix) and not any(ch in suffix for ch in "*?[")


def resolve_checkpoints(specs: Sequence[str | Path], *,
                        hub: dict[Path, Any] | None = None) -> list[Path]:
    """Expand ``--ckpt`` values into checkpoint files, in order, without duplicates.

    Each value is a file, a directory (every file below it ending in
    :data:`CHECKPOINT_SUFFIXES`, sorted), a glob (``*``, ``?``, ``[``; ``**`` recurses) or a
    Hugging Face Hub URI ``hf://OWNER/REPO/FILE[@REVISION]`` (fetched into the Hugging Face
    cache, or read from it with ``HF_HUB_OFFLINE=1``; see :mod:`remotesam.hub`). For a Hub URI
    the returned path is the cached file and, when ``hub`` is given, ``hub[path]`` receives its
    :class:`remotesam.hub.ResolvedCheckpoint` (revision, commit, sha256).

    Raises:
        InputError: a path does not exist, a glob matches nothing, a directory holds no
            checkpoint, a Hub URI is malformed or cannot be fetched.
    """
    out: list[Path] = []
    for spec in specs:
        s = str(spec)
        if isinstance(spec, str) and s.startswith("hf://"):
            from remotesam.hub import HubError, resolve_hf_uri

            try:
                resolved = resolve_hf_uri(s)
            except HubError as e:
                raise InputError(f"--ckpt {e}") from e
            files = [resolved.path]
            if hub is not None:
                hub[resolved.path] = resolved
        elif any(ch in s for ch in "*?["):
            matches = sorted(Path(p) for p in glob.glob(os.path.expanduser(s), recursive=True))
            files = [p for p in matches if _is_regular(p)]
            if not _explicit_suffix(s):  # 'dir/*': checkpoints only, never their side-car JSON
                files = [p for p in files if _is_checkpoint_name(p)]
            if not files and matches:
                raise InputError(f"--ckpt {s!r}: the glob matches no checkpoint file, only "
                                 f"others ({', '.join(p.name for p in matches[:5])}); without "
                                 "an explicit suffix in the pattern only "
                                 f"{', '.join(CHECKPOINT_SUFFIXES)} files count")
            if not files:
                raise InputError(f"--ckpt {s!r}: the glob matches no file (current directory "
                                 f"{Path.cwd()}); quote it so the shell does not expand it, "
                                 "and check the pattern")
        else:
            p = Path(os.path.expanduser(s))
            if p.is_dir():
                files = sorted(q for q in p.rglob("*")
                               if _is_regular(q) and _is_checkpoint_name(q))
                if not files:
                    raise InputError(f"--ckpt {s!r} is a directory without checkpoint files "
                                     f"(looked for {', '.join(CHECKPOINT_SUFFIXES)} below it)")
            elif p.is_file():
                files = [p]
            else:
                raise InputError(f"--ckpt {s!r}: no such file or directory "
                                 f"(current directory {Path.cwd()})")
        for f in files:
            if f.resolve() not in {o.resolve() for o in out}:
                out.append(f)
    return out


def default_model_factory(path: str | Path, *, device: str, precision: str,
                          batch_size: int) -> Any:
    """Load ``remotesam.RemoteSAM.from_checkpoint(path, ...)``."""
    try:
        from remotesam.predictor import RemoteSAM
    except ImportError as e:
        raise BenchError(f"cannot import remotesam.predictor.RemoteSAM ({e}); the predictor is "
                         "needed to run the model") from e
    return RemoteSAM.from_checkpoint(path, device=device, precision=precision,
                                     batch_size=batch_size)


def load_model_factory(spec: str) -> ModelFactory:
    """Import ``"package.module:function"`` as a model factory (``--model-factory``).

    Raises:
        InputError: malformed spec, module not importable or attribute missing/not callable.
    """
    mod_name, sep, attr = spec.partition(":")
    if not sep or not mod_name or not attr:
        raise InputError(f"--model-factory {spec!r}: expected 'package.module:function'")
    try:
        mod = importlib.import_module(mod_name)
    except ImportError as e:
        raise InputError(f"--model-factory {spec!r}: cannot import {mod_name!r} ({e})") from e
    fn = getattr(mod, attr, None)
    if not callable(fn):
        raise InputError(f"--model-factory {spec!r}: {mod_name} has no callable {attr!r}")
    return fn
