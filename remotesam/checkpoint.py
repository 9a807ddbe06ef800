"""Reading, checking and writing RemoteSAM weights.

Accepted inputs:

* the official checkpoint: a torch file holding ``{'model': state_dict, ...}`` (other entries
  such as ``optimizer``, ``epoch``, ``args``, ``lr_scheduler`` are ignored);
* a bare state dict saved with ``torch.save``;
* a ``.safetensors`` file (as written by :func:`save_checkpoint`, with the config JSON in its
  metadata and in a side-car ``.json``);
* any of these on the Hugging Face Hub, as ``hf://OWNER/REPO/FILE[@REVISION]``
  (:mod:`remotesam.hub`: huggingface_hub's cache, revision pinning and ``HF_HUB_OFFLINE``).

Torch files are always read with ``torch.load(weights_only=True)`` (only tensors and plain
containers; ``argparse.Namespace`` is additionally allowed because the official training script
stores its arguments in the checkpoint). Loading is strict: the only keys that may be ignored
are the BERT-version keys ``text_encoder.embeddings.position_ids`` and ``text_encoder.pooler.*``
(a checkpoint written with HF transformers' own ``BertModel`` carries them); they are logged and
listed in ``model.ignored_checkpoint_keys``. Anything else missing, unexpected or mis-shaped raises
:class:`CheckpointError` before any weight is copied.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import pickle
import re
import struct
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from remotesam.model.config import RemoteSAMConfig, get_config, list_models
from remotesam.model.network import RemoteSAMNet

__all__ = [
    "IGNORABLE_KEYS",
    "CheckpointError",
    "infer_config",
    "load_checkpoint",
    "read_state_dict",
    "safetensors_metadata",
    "save_checkpoint",
    "save_official",
]

logger = logging.getLogger(__name__)

#: Keys that may be present in a checkpoint without a counterpart in the model (exact names,
#: or prefixes ending with a dot).
IGNORABLE_KEYS: tuple[str, ...] = ("text_encoder.embeddings.position_ids", "text_encoder.pooler.")

_CONFIG_META_KEY = "remotesam_config"
_SHOW = 5


class CheckpointError(ValueError):
    """A file that cannot be used as RemoteSAM weights; the message says which file, what was
    wrong and what to do."""


def _is_ignorable(key: str) -> bool:
    return any(key == k or (k.endswith(".") and key.startswith(k)) for k in IGNORABLE_KEYS)


def _sidecar(path: Path) -> Path:
    return path.with_suffix(".json")


def _looks_like_safetensors(head: bytes, size: int) -> bool:
    if len(head) < 9:
        return False
    (n,) = struct.unpack("<Q", head[:8])
    return 2 <= n <= size - 8 and head[8:9] == b"{"


def safetensors_metadata(path: str | os.PathLike[str]) -> dict[str, str]:
    """The ``__metadata__`` of a safetensors file (string keys and values), read with
    ``safetensors.safe_open`` (only the header, never the tensors).

    ``{}`` when the file is missing, is not safetensors, is corrupt or has no metadata: the
    callers (sweep step, report captions) fall back to the file name.
    """
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata()
    except (SafetensorError, OSError, ValueError):
        return {}
    return dict(meta) if isinstance(meta, dict) else {}


def _torch_load(path: Path, map_location: str | torch.device) -> Any:
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(
            f"{path}: refused to unpickle it: it holds objects other than tensors and plain "
            f"containers (torch.load(weights_only=True) said: {str(exc).splitlines()[0]}). "
            "It may be malicious or not a weights file; re-save only the state dict "
            "(torch.save({'model': model.state_dict()}, path)) or use safetensors."
        ) from exc
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, struct.error, OSError) as exc:
        raise CheckpointError(
            f"{path}: not a readable torch checkpoint ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''}). Expected a torch .pth file with "
            "{'model': state_dict} or a bare state dict, or a .safetensors file."
        ) from exc


def _read(
    path: str | os.PathLike[str], map_location: str | torch.device = "cpu"
) -> tuple[dict[str, Tensor], RemoteSAMConfig | None]:
    """State dict and (if the file records one) its config. ``path`` may be an ``hf://`` URI
    (:mod:`remotesam.hub`)."""
    if isinstance(path, str) and path.startswith("hf://"):
        from remotesam.hub import resolve_hf_uri

        path = resolve_hf_uri(path).path
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(
            f"checkpoint file not found: {p} (expected a .pth or .safetensors file)"
        )
    size = p.stat().st_size
    with p.open("rb") as fh:
        head = fh.read(16)
    config: RemoteSAMConfig | None = None
    if _looks_like_safetensors(head, size):
        from safetensors import SafetensorError, safe_open

        try:
            tensors: dict[str, Tensor] = {}
            with safe_open(str(p), framework="pt", device=str(map_location)) as f:
                meta = f.metadata() or {}
                for k in f.keys():  # noqa: SIM118 - safe_open is not a dict
                    tensors[k] = f.get_tensor(k)
        except (SafetensorError, OSError, ValueError) as exc:
            raise CheckpointError(f"{p}: corrupt safetensors file ({exc})") from exc
        raw = meta.get(_CONFIG_META_KEY)
        if raw is None and _sidecar(p).is_file():
            raw = _sidecar(p).read_text(encoding="utf-8")
        if raw is not None:
            try:
                config = RemoteSAMConfig.from_dict(json.loads(raw))
            except (ValueError, TypeError) as exc:
                raise CheckpointError(f"{p}: the recorded model config is invalid: {exc}") from exc
        return tensors, config
    if head[:2] == b"PK" or head[:1] == b"\x80":
        obj = _torch_load(p, map_location)
    else:
        raise CheckpointError(
            f"{p}: not a checkpoint file (it is neither a torch zip/pickle file nor safetensors; "
            f"it starts with {head[:8]!r}). Expected the official RemoteSAM .pth "
            "({'model': state_dict}), a bare state dict, or a .safetensors file."
        )
    return _extract_state_dict(obj, p), None


def _extract_state_dict(obj: Any, p: Path) -> dict[str, Tensor]:
    if isinstance(obj, Mapping) and "model" in obj and isinstance(obj["model"], Mapping):
        sd = obj["model"]
    elif (
        isinstance(obj, Mapping) and "state_dict" in obj and isinstance(obj["state_dict"], Mapping)
    ):
        sd = obj["state_dict"]
    elif isinstance(obj, Mapping):
        sd = obj
    else:
        raise CheckpointError(
            f"{p}: holds a {type(obj).__name__}, not a state dict; expected {{'model': "
            "state_dict}} (official layout) or a bare state dict"
        )
    bad = [k for k, v in sd.items() if not isinstance(k, str) or not isinstance(v, Tensor)]
    if bad or not sd:
        found = sorted(map(str, obj.keys()))[:_SHOW] if isinstance(obj, Mapping) else []
        raise CheckpointError(
            f"{p}: no state dict of tensors found "
            + (f"({len(bad)} non-tensor entries, e.g. {bad[:_SHOW]}); " if bad else "(empty); ")
            + f"top-level keys: {found}. Expected {{'model': state_dict}} or a bare state dict."
        )
    keys = list(sd)
    if all(k.startswith("module.") for k in keys):
        logger.info("%s: stripping the DistributedDataParallel prefix 'module.'", p)
        return {k[len("module."):]: v for k, v in sd.items()}
    return dict(sd)


def read_state_dict(
    path: str | os.PathLike[str], *, map_location: str | torch.device = "cpu"
) -> dict[str, Tensor]:
    """Read the state dict of a checkpoint without building a model.

    Args:
        path: official ``.pth`` (``{'model': sd, ...}``), bare state dict, or ``.safetensors``;
            or an ``hf://OWNER/REPO/FILE[@REVISION]`` URI.

    Returns:
        ``{key: tensor}`` (a ``module.`` prefix on every key is removed).

    Raises:
        FileNotFoundError: no such file.
        CheckpointError: not a checkpoint, a pickle holding arbitrary objects (refused), or no
            state dict of tensors inside.
    """
    return _read(path, map_location)[0]


# --- config inference ---------------------------------------------------------------------------


def _shape(sd: Mapping[str, Tensor], key: str) -> tuple[int, ...]:
    t = sd.get(key)
    if t is None:
        raise CheckpointError(
            f"cannot infer the model config: key {key!r} is missing (this is not a RemoteSAM "
            "state dict, or pass config= explicitly)"
        )
    return tuple(t.shape)


def _count(sd: Mapping[str, Tensor], pattern: str) -> int:
    rx = re.compile(pattern)
    idx = {int(m.group(1)) for k in sd if (m := rx.match(k))}
    return max(idx) + 1 if idx else 0


def infer_config(state_dict: Mapping[str, Tensor]) -> RemoteSAMConfig:
    """Infer the architecture from tensor shapes.

    Fields that shapes do not determine (text attention heads, CIM heads, fusion heads) are
    taken from a registered configuration with the same shapes if there is one (the result then
    carries that name, e.g. ``remotesam_base``); otherwise the BERT convention of 64-wide heads
    and the official 8 CIM heads are assumed and the name is ``"inferred"``.

    Raises:
        CheckpointError: a key needed for the inference is missing or shapes are inconsistent.
    """
    sd = state_dict
    embed, in_chans, patch, _ = _shape(sd, "backbone.patch_embed.proj.weight")
    n_stages = _count(sd, r"backbone\.layers\.(\d+)\.")
    if n_stages == 0:
        raise CheckpointError("cannot infer the model config: no backbone.layers.* keys")
    depths = tuple(_count(sd, rf"backbone\.layers\.{i}\.blocks\.(\d+)\.") for i in range(n_stages))
    heads = tuple(
        _shape(sd, f"backbone.layers.{i}.blocks.0.attn.relative_position_bias_table")[1]
        for i in range(n_stages)
    )
    table = _shape(sd, "backbone.layers.0.blocks.0.attn.relative_position_bias_table")[0]
    window = (math.isqrt(table) + 1) // 2
    mlp_ratio = _shape(sd, "backbone.layers.0.blocks.0.mlp.fc1.weight")[0] / embed
    cim_dim, cim_in, _, _ = _shape(sd, "backbone.cim.down_channel.weight")
    qkv = _shape(sd, "backbone.cim.block.0.csa1.m.attention.qkv.c.weight")[0]
    dh = _shape(sd, "backbone.cim.block.0.csa1.m.attention.parallel_conv.1.weight")[0]
    n_img = _shape(sd, "backbone.cim.block.0.csa1.m.attention.proj.weight")[0]
    map_size = math.isqrt(n_img)
    vocab, text_hidden = _shape(sd, "text_encoder.embeddings.word_embeddings.weight")
    fields: dict[str, Any] = dict(
        img_size=map_size * patch * 2 ** (n_stages - 1),
        in_chans=in_chans,
        patch_size=patch,
        embed_dim=embed,
        depths=depths,
        num_heads=heads,
        window_size=window,
        mlp_ratio=mlp_ratio,
        cim_reduction=cim_in // cim_dim if cim_dim else 0,
        cim_depth=_count(sd, r"backbone\.cim\.block\.(\d+)\."),
        cim_ff_ratio=_shape(sd, "backbone.cim.block.0.ff.m.conv1.weight")[0] // cim_dim,
        decoder_hidden=_shape(sd, "classifier.conv1_4.weight")[0],
        num_classes=_shape(sd, "classifier.conv1_1.weight")[0],
        arc_kernel_number=_shape(sd, "classifier.conv2_4.weight")[0],
        vocab_size=vocab,
        text_hidden=text_hidden,
        text_layers=_count(sd, r"text_encoder\.encoder\.layer\.(\d+)\."),
        text_intermediate=_shape(sd, "text_encoder.encoder.layer.0.intermediate.dense.weight")[0],
        max_position=_shape(sd, "text_encoder.embeddings.position_embeddings.weight")[0],
        type_vocab=_shape(sd, "text_encoder.embeddings.token_type_embeddings.weight")[0],
    )
    qk = qkv - dh  # heads * 2 * key_dim
    # Prefer a registered config whose shape-determined fields agree (it knows the head counts).
    for name in list_models():
        cfg = get_config(name)
        if all(getattr(cfg, k) == v for k, v in fields.items()) and (
            cfg.cim_num_heads * 2 * cfg.cim_key_dim == qk
            and cfg.cim_num_heads * cfg.cim_key_dim * cfg.cim_attn_ratio == dh
        ):
            return cfg
    cim_heads = 8 if (qk // 2) % 8 == 0 else 1
    key_dim = (qk // 2) // cim_heads
    try:
        return RemoteSAMConfig(
            name="inferred",
            text_heads=text_hidden // 64 if text_hidden % 64 == 0 else 1,
            cim_num_heads=cim_heads,
            cim_key_dim=key_dim,
            cim_attn_ratio=dh // (cim_heads * key_dim) if key_dim else 0,
            **fields,
        )
    except ValueError as exc:
        raise CheckpointError(
            f"cannot infer a consistent model config from the shapes: {exc}"
        ) from exc


# --- loading -------------------------------------------------------------------------------------


def _fmt(items: list[str]) -> str:
    head = ", ".join(items[:_SHOW])
    return f"{len(items)} ({head}{', ...' if len(items) > _SHOW else ''})"


def _check_keys(
    sd: Mapping[str, Tensor], expected: Mapping[str, Tensor], source: str, cfg: RemoteSAMConfig
) -> list[str]:
    ignored = sorted(k for k in sd if k not in expected and _is_ignorable(k))
    missing = [k for k in expected if k not in sd]
    unexpected = [k for k in sd if k not in expected and not _is_ignorable(k)]
    mismatched = []
    for k, ref in expected.items():
        t = sd.get(k)
        if t is None:
            continue
        if tuple(t.shape) != tuple(ref.shape):
            mismatched.append(f"{k}: checkpoint {list(t.shape)} vs model {list(ref.shape)}")
        elif ref.dtype.is_floating_point != t.dtype.is_floating_point:
            mismatched.append(f"{k}: checkpoint dtype {t.dtype} vs model {ref.dtype}")
    if missing or unexpected or mismatched:
        parts = []
        if missing:
            parts.append(f"missing keys: {_fmt(missing)}")
        if unexpected:
            parts.append(f"unexpected keys: {_fmt(unexpected)}")
        if mismatched:
            parts.append(f"mis-shaped tensors: {_fmt(mismatched)}")
        raise CheckpointError(
            f"{source}: does not match the architecture of config {cfg.name!r} ("
            + "; ".join(parts)
            + "). Nothing was loaded. Pass the config the checkpoint was trained with "
            f"(registered: {list_models()}), or check that this is a RemoteSAM checkpoint."
        )
    return ignored


def _nonpersistent_buffers(model: RemoteSAMNet) -> list[tuple[nn.Module, str, Tensor]]:
    persistent = set(model.state_dict())
    out = []
    for mod_name, mod in model.named_modules():
        for buf_name, buf in mod.named_buffers(recurse=False):
            full = f"{mod_name}.{buf_name}" if mod_name else buf_name
            if full not in persistent:
                out.append((mod, buf_name, buf))
    return out


def _materialise_nonpersistent(
    buffers: list[tuple[nn.Module, str, Tensor]], device: str | torch.device
) -> None:
    """Recreate the non-persistent buffers (BERT position / token-type ids) after a meta build,
    since ``to_empty`` leaves them uninitialised."""
    for mod, buf_name, buf in buffers:
        if buf_name == "position_ids":
            new = torch.arange(buf.shape[-1], device=device).expand(buf.shape).clone()
        elif buf_name == "token_type_ids":
            new = torch.zeros(buf.shape, device=device)
        else:
            raise RuntimeError(f"internal: no rule to initialise the buffer {buf_name!r}")
        mod.register_buffer(buf_name, new.to(buf.dtype), persistent=False)


def load_state_dict_strict(
    model: RemoteSAMNet, state_dict: Mapping[str, Tensor], source: str = "state dict"
) -> RemoteSAMNet:
    """Copy ``state_dict`` into ``model`` after the strict key/shape check (nothing is copied if
    the check fails). Returns the model; sets ``model.ignored_checkpoint_keys``.

    Raises:
        CheckpointError: missing, unexpected (other than the ignorable BERT keys) or
            mis-shaped entries.
    """
    expected = model.state_dict()
    ignored = _check_keys(state_dict, expected, source, model.config)
    model.load_state_dict({k: v for k, v in state_dict.items() if k in expected}, strict=True)
    model.ignored_checkpoint_keys = tuple(ignored)
    if ignored:
        logger.info("%s: ignored %d BERT-version key(s): %s", source, len(ignored), ignored)
    return model


def _check_finite(sd: Mapping[str, Tensor], source: str) -> None:
    """Refuse weights holding NaN or inf (a diverged run, a corrupt file): every prediction of
    such a model would be garbage. Names the first such tensor in file order."""
    for key, t in sd.items():
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            n = int((~torch.isfinite(t)).sum())
            raise CheckpointError(
                f"{source}: tensor {key!r} holds {n} non-finite value(s) (NaN or inf) of "
                f"{t.numel()}; the weights are broken (a diverged training run or a corrupt "
                "file): evaluate another checkpoint")


def load_checkpoint(
    path: str | os.PathLike[str],
    config: RemoteSAMConfig | str | None = None,
    *,
    map_location: str | torch.device = "cpu",
) -> RemoteSAMNet:
    """Build a :class:`RemoteSAMNet` and load a checkpoint into it strictly (eval mode).

    Args:
        path: official ``.pth`` (``{'model': sd, ...}``), bare state dict, or ``.safetensors``;
            or an ``hf://OWNER/REPO/FILE[@REVISION]`` URI (resolved by :mod:`remotesam.hub`).
        config: the architecture (a config or a registered name). Default: the config recorded
            in a safetensors file, else :func:`infer_config` from the tensor shapes.
        map_location: device for the weights.

    Returns:
        The model in eval mode on ``map_location``, float32 parameters.
        ``model.ignored_checkpoint_keys`` lists the ignored BERT-version keys.

    Raises:
        FileNotFoundError: no such file.
        remotesam.hub.HubError: an ``hf://`` URI that is malformed or cannot be fetched
            (offline and not cached, unknown repository, revision or file).
        CheckpointError: not a checkpoint, refused pickle, wrong architecture (the message
            lists the first missing / unexpected / mis-shaped keys and their counts), or a
            weight tensor holding NaN or inf (the message names the first one).
        KeyError: ``config`` names no registered config.
    """
    sd, recorded = _read(path, map_location)
    if isinstance(config, str):
        cfg = get_config(config)
    elif isinstance(config, RemoteSAMConfig):
        cfg = config
    elif config is None:
        cfg = recorded if recorded is not None else infer_config(sd)
    else:
        raise TypeError(
            "config must be a RemoteSAMConfig, a registered name or None, got "
            f"{type(config).__name__}"
        )
    with torch.device("meta"):
        model = RemoteSAMNet(cfg)
    source = str(path)
    expected = model.state_dict()
    ignored = _check_keys(sd, expected, source, cfg)
    transient = _nonpersistent_buffers(model)
    model = model.to_empty(device=map_location)
    _materialise_nonpersistent(transient, map_location)
    loaded = {k: v for k, v in sd.items() if k in expected}
    _check_finite(loaded, source)
    model.load_state_dict(loaded, strict=True)
    model.ignored_checkpoint_keys = tuple(ignored)
    if ignored:
        logger.info("%s: ignored %d BERT-version key(s): %s", source, len(ignored), ignored)
    return model.eval()


# --- saving -------------------------------------------------------------------------------------


def save_checkpoint(
    model: RemoteSAMNet, path: str | os.PathLike[str], *, dtype: torch.dtype | None = None,
    metadata: Mapping[str, str] | None = None,
) -> Path:
    """Write the model's weights as safetensors, with its config JSON in the file metadata
    (key ``remotesam_config``) and in a side-car ``<path without suffix>.json``.

    Args:
        dtype: optional floating dtype for the floating tensors (e.g. ``torch.bfloat16`` to halve
            the size); integer buffers are kept as they are. Loading converts back to float32.
        metadata: extra string entries for the file's metadata (e.g. ``{"step": "1200"}``, which
            experiment trackers use as the checkpoint's global step); they cannot replace the
            config or version entries.

    Returns:
        The path written.
    """
    from safetensors.torch import save_file

    if not isinstance(model, RemoteSAMNet):
        raise TypeError(f"save_checkpoint needs a RemoteSAMNet, got {type(model).__name__}")
    if dtype is not None and not dtype.is_floating_point:
        raise ValueError(f"dtype must be a floating dtype, got {dtype}")
    extra = {str(k): str(v) for k, v in (metadata or {}).items()}
    reserved = sorted(set(extra) & {"format", _CONFIG_META_KEY, "remotesam_version"})
    if reserved:
        raise ValueError(f"metadata keys {reserved} are written by save_checkpoint itself")
    p = Path(path)
    tensors = {}
    for k, v in model.state_dict().items():
        t = v.detach()
        if dtype is not None and t.dtype.is_floating_point:
            t = t.to(dtype)
        tensors[k] = t.contiguous().cpu().clone()
    cfg_json = json.dumps(model.config.to_dict(), sort_keys=True)
    from remotesam import __version__

    p.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(p), metadata={
        **extra, "format": "pt", _CONFIG_META_KEY: cfg_json, "remotesam_version": __version__,
    })
    _sidecar(p).write_text(json.dumps(model.config.to_dict(), indent=2, sort_keys=True) + "\n",
                           encoding="utf-8")
    return p


def save_official(model: RemoteSAMNet, path: str | os.PathLike[str]) -> Path:
    """Write ``torch.save({'model': state_dict}, path)``, the official checkpoint layout."""
    if not isinstance(model, RemoteSAMNet):
        raise TypeError(f"save_official needs a RemoteSAMNet, got {type(model).__name__}")
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": model.state_dict()}, p)
    return p
