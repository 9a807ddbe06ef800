"""The embedded default: what ``remotesam-bench run`` evaluates when given no data or checkpoint.

No real RemoteSAM checkpoint or benchmark can be downloaded on a fresh machine, so the package
ships a tiny checkpoint trained on the procedural benchmark of :mod:`remotesam.synth`, and
``run`` without ``--data-root`` writes that benchmark (deterministically, once) under the results
directory and evaluates it. The benchmark parameters here are the ones the shipped checkpoint
was trained and baselined with (see ``remotesam/checkpoints/README.md``).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

__all__ = ["EMBEDDED_SYNTH", "ensure_embedded_benchmark"]

#: ``remotesam.synth.generate`` keyword arguments of the embedded benchmark.
EMBEDDED_SYNTH: dict[str, Any] = {"seed": 0, "n_images": 48, "image_size": 128, "object_scale": 1.6}


def ensure_embedded_benchmark(results_dir: str | Path) -> Path:
    """Write the embedded benchmark under ``<results_dir>/embedded/`` unless it is there.

    The folder name carries the generator version and parameters, so a changed generator never
    reuses stale files. Generation goes to a temporary folder renamed at the end: an interrupted
    generation leaves nothing that looks complete.

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
    tmp = root.with_name(f"{name}.tmp-{os.getpid()}")
    try:
        if tmp.exists():
            shutil.rmtree(tmp)
        generate(tmp, **p)
        if root.exists():  # a half-written folder from an older layout
            shutil.rmtree(root)
        tmp.replace(root)
    except (OSError, SynthError) as e:
        shutil.rmtree(tmp, ignore_errors=True)
        if (root / "manifest.json").is_file():  # another process won the race
            return root
        raise InputError(
            f"cannot write the embedded benchmark to {root}: {e}; pass --results-dir to a "
            "writable folder, or --data-root to evaluate your own data"
        ) from e
    return root
