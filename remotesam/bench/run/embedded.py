"""The embedded default: what ``remotesam-bench run`` evaluates when given no data or checkpoint.

No real RemoteSAM checkpoint or benchmark can be downloaded on a fresh machine, so the package
ships a tiny checkpoint trained on the procedural benchmark of :mod:`remotesam.synth`, and
``run`` without ``--data-root`` writes that benchmark (deterministically, once) under the results
directory and evaluates it. The benchmark parameters here are the ones the shipped checkpoint
was baselined with: ``results/baseline.json`` holds its metrics on this benchmark's test split
(it was trained on a larger train split of the same generator, see
``remotesam/checkpoints/README.md``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["EMBEDDED_SYNTH", "ensure_embedded_benchmark"]

#: ``remotesam.synth.generate`` keyword arguments of the embedded benchmark.
EMBEDDED_SYNTH: dict[str, Any] = {"seed": 0, "n_images": 24, "image_size": 128, "object_scale": 1.6}


def ensure_embedded_benchmark(results_dir: str | Path) -> Path:
    """Write the embedded benchmark under ``<results_dir>/embedded/`` unless it is there.

    The folder name carries the generator version and parameters, so a changed generator never
    reuses stale files. Generation goes to a fresh temporary folder beside the target (unique
    per call) that is renamed onto the target at the end: an interrupted generation leaves
    nothing that looks complete, and when two processes generate at once the first rename wins
    and the other keeps the winner's copy (a complete folder is never deleted). The temporary
    folder is removed whatever happens, an exception or Ctrl-C included.

    Returns:
        The data root to pass as ``--data-root`` (it holds every task's official layout).

    Raises:
        InputError: the results directory cannot be written.
    """
    from remotesam.bench.errors import InputError
    from remotesam.synth import GENERATOR_VERSION, SynthError, generate

    p = EMBEDDED_SYNTH
    name = (f"synth-v{GENERATOR_VERSION}-seed{p['seed']}-n{p['n_images']}-px{p['image_size']}"
            f"-scale{p['object_scale']}")
    root = Path(results_dir) / "embedded" / name
    if (root / "manifest.json").is_file():
        return root
    tmp: Path | None = None
    try:
        root.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{name}.tmp-", dir=root.parent))
        generate(tmp, **p)
        _discard_incomplete(root)
        try:
            os.rename(tmp, root)  # atomic; fails when another process's copy is already there
            tmp = None
        except OSError:
            if not (root / "manifest.json").is_file():
                raise
    except (OSError, SynthError) as e:
        if (root / "manifest.json").is_file():  # another process won the race
            return root
        raise InputError(
            f"cannot write the embedded benchmark to {root}: {e}; pass --results-dir to a "
            "writable folder, or --data-root to evaluate your own data"
        ) from e
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    return root


def _discard_incomplete(root: Path) -> None:
    """Remove ``root`` if it exists without a manifest (left by an older layout). It is first
    renamed aside, so a complete copy that another process renames into place is never hit."""
    if not root.exists() or (root / "manifest.json").is_file():
        return
    aside = root.with_name(f".{root.name}.stale-{os.getpid()}-{os.urandom(4).hex()}")
    try:
        os.rename(root, aside)
    except FileNotFoundError:
        return
    if (aside / "manifest.json").is_file():  # completed between the check and the rename
        with contextlib.suppress(OSError):
            os.rename(aside, root)
        return
    shutil.rmtree(aside, ignore_errors=True)
