"""Cache identity: the one place that decides when a stored prediction answers today's question.

A stored prediction is keyed (:class:`~remotesam.bench.records.store.PredictionKey`) by

- the model's weights: the sha256 of the checkpoint file (:func:`sha256_file`), or for an
  in-memory model the digest of its tensors (:func:`model_digest`);
- the task, its version, the dataset and the split;
- a hash of the settings (:func:`settings_hash`): the task plugin's ``settings()``, the
  precision, and the model description (:func:`describe_model`): the factory that built the
  model (its import spec, e.g. ``remotesam.testing:constant_foreground_model``), the model's
  class and its ``settings()`` (for :class:`remotesam.RemoteSAM`: precision, image size,
  normalisation, EPOC model, every threshold), plus a digest of the EPOC model's files;

and it counts only while its sample's input fingerprint (:func:`sample_fingerprints`: image
bytes, target, meta) is unchanged.

A model's description is only known once it is loaded; so that a fully cached rerun never loads
the model, the store remembers the description under :func:`model_key` (weights digest, factory
spec, requested precision, package version) the first time the model is loaded, and it is checked
again whenever the model is loaded later.

File digests are cached in the store and reused only while a file's (device, inode, size,
mtime, ctime) are unchanged; see
:meth:`~remotesam.bench.records.store.ResultsStore.cached_sha256_many`.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from remotesam.bench.api import Sample
from remotesam.bench.records.store import ResultsStore, file_stat_key

__all__ = [
    "DEFAULT_FACTORY_SPEC",
    "IN_MEMORY_FACTORY",
    "describe_model",
    "directory_digest",
    "factory_spec",
    "model_digest",
    "model_key",
    "sample_fingerprints",
    "settings_hash",
    "sha256_file",
]

#: The factory spec recorded for the default loader (``RemoteSAM.from_checkpoint``).
DEFAULT_FACTORY_SPEC = "remotesam.predictor:RemoteSAM.from_checkpoint"
#: The factory spec recorded for a model object handed to ``run(config, model=...)``.
IN_MEMORY_FACTORY = "<in-memory>"


def sha256_file(path: str | Path, store: ResultsStore | None = None,
                chunk_size: int = 1 << 20) -> str:
    """Hex sha256 of a file, streamed in ``chunk_size`` pieces.

    With a ``store``, the digest is cached and reused while the file's (resolved path, device,
    inode, size, mtime_ns, ctime_ns) are unchanged: ``cp -p`` / ``rsync -t`` restore the mtime
    but not the inode and ctime, so changed bytes are always hashed again.
    """
    if store is not None:
        cached = store.cached_sha256(path)
        if cached:
            return cached
    before = file_stat_key(path)
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(chunk_size):
            h.update(chunk)
    digest = h.hexdigest()
    if store is not None and before is not None and file_stat_key(path) == before:
        store.put_sha256(path, digest, before)
    return digest


def directory_digest(path: str | Path, store: ResultsStore | None = None) -> str:
    """sha256 over every regular file below ``path``: relative names (sorted) and contents.

    For a file, its :func:`sha256_file`. Used for an EPOC model directory.
    """
    root = Path(path)
    if root.is_file():
        return sha256_file(root, store)
    h = hashlib.sha256()
    for f in sorted(q for q in root.rglob("*") if q.is_file()):
        h.update(_utf8(f.relative_to(root).as_posix()) + b"\0")
        h.update(sha256_file(f, store).encode())
    return h.hexdigest()


def model_digest(module: Any) -> str:
    """A stable digest of a model's weights: hex sha256 over its ``state_dict()``.

    For every entry in sorted key order: the name, the dtype, the shape and the raw bytes
    (little-endian, C order) of the tensor, moved to the CPU. Two models with the same
    tensors get the same digest whatever their device or parameter/buffer order; a single
    changed value changes it.

    Args:
        module: a ``torch.nn.Module``, or an object holding one as ``.net`` (a
            :class:`remotesam.RemoteSAM`).

    Raises:
        TypeError: neither is given.
    """
    import torch

    net = module if isinstance(module, torch.nn.Module) else getattr(module, "net", None)
    if not isinstance(net, torch.nn.Module):
        raise TypeError(f"model_digest needs a torch.nn.Module or an object with a .net module, "
                        f"got {type(module).__name__}")
    state = net.state_dict()
    h = hashlib.sha256()
    for name in sorted(state):
        t = state[name]
        if not isinstance(t, torch.Tensor):
            _feed(h, (name, repr(t)))
            continue
        t = t.detach().to("cpu").contiguous()
        h.update(f"{name}\0{t.dtype}\0{tuple(t.shape)}\0".encode())
        if t.numel():
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def factory_spec(factory: Callable[..., Any] | str | None) -> str:
    """The import spec ``"package.module:qualname"`` that identifies a model factory.

    None (the default loader) gives :data:`DEFAULT_FACTORY_SPEC`; a string is returned as is.
    """
    if factory is None:
        return DEFAULT_FACTORY_SPEC
    if isinstance(factory, str):
        return factory
    spec = getattr(factory, "__remotesam_factory_spec__", None)
    if isinstance(spec, str):
        return spec
    mod = getattr(factory, "__module__", None) or type(factory).__module__
    name = getattr(factory, "__qualname__", None) or type(factory).__qualname__
    return f"{mod}:{name}"


def model_key(weights_sha256: str, factory: str, precision: str) -> str:
    """The identity of a model before it is loaded (32 hex chars): weights digest, factory spec,
    requested precision and the remotesam package version. The store maps it to the model's
    :func:`describe_model` so that a fully cached rerun does not load the model."""
    import remotesam

    h = hashlib.sha256()
    _feed(h, {"weights": weights_sha256, "factory": factory, "precision": precision,
              "package": getattr(remotesam, "__version__", "")})
    return h.hexdigest()[:32]


def describe_model(model: Any, factory: str, store: ResultsStore | None = None,
                   ) -> dict[str, Any]:
    """Everything about a built model that can change its predictions, JSON-able.

    ``{"factory": spec, "class": "module.QualName", "settings": model.settings() or None,
    "epoc_digest": digest of the EPOC model's files or None}``. A model without ``settings()``
    is identified by its factory spec and class alone.
    """
    cls = type(model)
    settings = None
    fn = getattr(model, "settings", None)
    if callable(fn):
        settings = json.loads(json.dumps(fn(), sort_keys=True, default=str))
    epoc = getattr(model, "epoc_model", None)
    epoc_digest = None
    source = getattr(epoc, "source", None) if epoc is not None else None
    if source and Path(source).exists():
        epoc_digest = directory_digest(source, store)
    elif epoc is not None:
        epoc_digest = f"unlocated:{type(epoc).__name__}"
    return {"factory": factory, "class": f"{cls.__module__}.{cls.__qualname__}",
            "settings": settings, "epoc_digest": epoc_digest}


def _utf8(text: str | bytes) -> bytes:
    """UTF-8 bytes of ``text``, lone surrogates included (``surrogatepass``: a file name that is
    not valid UTF-8, decoded by ``os.fsdecode``, or a caption holding ``"\\udc80"``). Valid text
    encodes as plain UTF-8, so existing fingerprints are unchanged; the encoding stays one-to-one
    (UTF-8 never holds the bytes of an encoded surrogate)."""
    if isinstance(text, bytes):
        return text
    return text.encode("utf-8", "surrogatepass")


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
        h.update(b"p" + _utf8(os.path.basename(os.fspath(obj))) + b"\0")
    elif isinstance(obj, str):
        h.update(b"s" + _utf8(obj) + b"\0")
    elif isinstance(obj, np.generic):
        _feed(h, obj.item())
    else:  # numbers, bools, None
        h.update(f"{type(obj).__name__}:{obj!r}".encode() + b"\0")


def sample_fingerprints(samples: Sequence[Sample], store: ResultsStore | None = None,
                        ) -> dict[str, str]:
    """The input fingerprint of every sample: ``{sample_id: 32 hex chars}``.

    It covers the bytes of the image file and of every named image of a multi-image sample
    (``Sample.images``; sha256, cached in ``store`` while the file's device, inode, size, mtime
    and ctime are unchanged, so an unchanged dataset is not read twice) and the sample's
    ``target`` and ``meta`` (file paths in them compared by name only, so a dataset moved
    elsewhere keeps its cache). A stored
    prediction is reused and scored only while its sample's fingerprint is unchanged: a dataset
    regenerated or edited in place is predicted again, never scored with stale predictions.
    An image that cannot be read gets a fingerprint from its name (its prediction then fails
    and is recorded as before).
    """
    paths = [str(im) for s in samples for im in _sample_images(s)
             if isinstance(im, str | os.PathLike)]
    digests = store.cached_sha256_many(paths) if store is not None else {}
    fresh: dict[str, str] = {}
    before: dict[str, tuple[int, ...] | None] = {}
    for p in paths:
        if p in digests or p in fresh:
            continue
        before[p] = file_stat_key(p)
        try:
            fresh[p] = sha256_file(p)
        except OSError:
            continue
    if store is not None and fresh:
        store.put_sha256_many(fresh, before)
    digests.update(fresh)
    out: dict[str, str] = {}
    for s in samples:
        h = hashlib.sha256()
        _feed(h, ("image", _image_identity(s.image, digests)))
        extra = getattr(s, "images", None)
        if extra:  # multi-image samples: every named image, by content
            _feed(h, ("images", {k: _image_identity(v, digests) for k, v in extra.items()}))
        _feed(h, ("target", s.target))
        _feed(h, ("meta", s.meta))
        out[s.sample_id] = h.hexdigest()[:32]
    return out


def _sample_images(s: Sample) -> list[Any]:
    """The primary image and every named image of a sample (``Sample.images``)."""
    return [s.image, *(getattr(s, "images", None) or {}).values()]


def _image_identity(image: Any, digests: Mapping[str, str]) -> Any:
    """An image's part of the fingerprint: the file's sha256 (or its name when unreadable), or
    the in-memory value itself."""
    if isinstance(image, str | os.PathLike):
        p = str(image)
        return digests.get(p) or f"unreadable:{os.path.basename(p)}"
    return image


def settings_hash(task_settings: Mapping[str, Any], precision: str,
                  model: Mapping[str, Any] | None = None) -> tuple[dict[str, Any], str]:
    """``(settings, hash)``: the plugin's settings, the precision and the model description
    (:func:`describe_model`, when given), hashed (16 hex chars)."""
    settings: dict[str, Any] = {"task": dict(task_settings), "precision": precision}
    if model is not None:
        settings["model"] = dict(model)
    text = json.dumps(settings, sort_keys=True, separators=(",", ":"))
    return settings, hashlib.sha256(text.encode()).hexdigest()[:16]
