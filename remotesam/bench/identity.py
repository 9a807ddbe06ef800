"""Cache identity: what makes a stored prediction the answer to a question asked now.

A stored prediction is keyed by the checkpoint's sha256 (:func:`sha256_file`), the task, its
version, the dataset, the split and a hash of the settings (:func:`settings_hash`); it counts
only while the input fingerprint of its sample (:func:`sample_fingerprints`) is unchanged.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from remotesam.bench.api import Sample
from remotesam.bench.store import ResultsStore

__all__ = ["sample_fingerprints", "settings_hash", "sha256_file"]


def sha256_file(path: str | Path, store: ResultsStore | None = None,
                chunk_size: int = 1 << 20) -> str:
    """Hex sha256 of a file, streamed in ``chunk_size`` pieces.

    With a ``store``, the digest is cached under (resolved path, size, mtime) and reused while
    those are unchanged.
    """
    if store is not None:
        cached = store.cached_sha256(path)
        if cached:
            return cached
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(chunk_size):
            h.update(chunk)
    digest = h.hexdigest()
    if store is not None:
        store.put_sha256(path, digest)
    return digest



def _feed(h: Any, obj: Any) -> None:
    """Feed a canonical, type-tagged encoding of ``obj`` into the hash ``h``."""
    if isinstance(obj, Mapping):
        h.update(b"{")
        for k in sorted(obj, key=str):
            _feed(h, str(k))
            _feed(h, obj[k])
        h.update(b"}")
    elif isinstance(obj, list | tuple):
        h.update(b"[")
        for v in obj:
            _feed(h, v)
        h.update(b"]")
    elif isinstance(obj, np.ndarray):
        a = np.ascontiguousarray(obj)
        h.update(f"a{a.dtype.str}{a.shape}".encode())
        h.update(a.tobytes())
    elif isinstance(obj, os.PathLike) or (isinstance(obj, str) and os.path.isabs(obj)):
        # file paths by name: a dataset moved or copied elsewhere keeps its cache
        h.update(b"p" + os.path.basename(os.fspath(obj)).encode() + b"\0")
    elif isinstance(obj, str):
        h.update(b"s" + obj.encode() + b"\0")
    elif isinstance(obj, np.generic):
        _feed(h, obj.item())
    else:  # numbers, bools, None
        h.update(f"{type(obj).__name__}:{obj!r}".encode() + b"\0")


def sample_fingerprints(samples: Sequence[Sample], store: ResultsStore | None = None,
                        ) -> dict[str, str]:
    """The input fingerprint of every sample: ``{sample_id: 32 hex chars}``.

    It covers the image file's bytes (sha256, cached in ``store`` by path, size and mtime so an
    unchanged dataset is not read twice) and the sample's ``target`` and ``meta`` (file paths in
    them compared by name only, so a dataset moved elsewhere keeps its cache). A stored
    prediction is reused and scored only while its sample's fingerprint is unchanged: a dataset
    regenerated or edited in place is predicted again, never scored with stale predictions.
    An image that cannot be read gets a fingerprint from its name (its prediction then fails
    and is recorded as before).
    """
    paths = [str(s.image) for s in samples if isinstance(s.image, str | os.PathLike)]
    digests = store.cached_sha256_many(paths) if store is not None else {}
    fresh: dict[str, str] = {}
    for p in paths:
        if p in digests or p in fresh:
            continue
        try:
            fresh[p] = sha256_file(p)
        except OSError:
            continue
    if store is not None and fresh:
        store.put_sha256_many(fresh)
    digests.update(fresh)
    out: dict[str, str] = {}
    for s in samples:
        h = hashlib.sha256()
        if isinstance(s.image, str | os.PathLike):
            p = str(s.image)
            _feed(h, ("image", digests.get(p) or f"unreadable:{os.path.basename(p)}"))
        else:
            _feed(h, ("image", s.image))
        _feed(h, ("target", s.target))
        _feed(h, ("meta", s.meta))
        out[s.sample_id] = h.hexdigest()[:32]
    return out


def settings_hash(task_settings: Mapping[str, Any], precision: str) -> tuple[dict[str, Any], str]:
    """``(settings, hash)``: the plugin's settings plus the precision, hashed (16 hex chars)."""
    settings = {"task": dict(task_settings), "precision": precision}
    text = json.dumps(settings, sort_keys=True, separators=(",", ":"))
    return settings, hashlib.sha256(text.encode()).hexdigest()[:16]
