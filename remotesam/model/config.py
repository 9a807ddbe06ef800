"""Typed configuration of the RemoteSAM network and the registry of named configurations.

A :class:`RemoteSAMConfig` fully determines the architecture (and therefore the state-dict
layout) of :class:`remotesam.model.RemoteSAMNet`. Three configurations are registered:

``remotesam_base``
    The official model (``lavt_one``, Swin-B, window 12, 896x896 input, BERT-base text encoder);
    241,590,421 parameters.
``remotesam_parity``
    The reduced configuration of the golden forward pass of the official code
    (``parity_tiny.md``): Swin depths ``(2, 2, 2, 2)`` and a 2-layer BERT, everything else as in
    ``remotesam_base``.
``remotesam_tiny``
    A narrow model for CPU tests and the embedded demo checkpoint (224x224 input, window 7,
    64-wide 2-layer text encoder that keeps the bert-base-uncased vocabulary of 30522 ids).

Add a configuration with :func:`register_model`; look one up with :func:`get_config`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "RemoteSAMConfig",
    "get_config",
    "list_models",
    "register_model",
]

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class RemoteSAMConfig:
    """Architecture of a RemoteSAM network (frozen, JSON-able via :meth:`to_dict`).

    Visual backbone (multimodal Swin transformer):
        ``img_size`` is the square network input side in pixels (the official model uses 896);
        ``patch_size`` the patch-embedding stride; ``embed_dim`` the stage-1 width (stage ``i``
        has width ``embed_dim * 2**i``); ``depths`` / ``num_heads`` the blocks and attention
        heads per stage; ``window_size`` the attention window (shift = window // 2);
        ``num_heads_fusion`` the heads of each stage's language-fusion attention (PWAM).

    Cross-scale interaction module (CIM):
        the concatenation of the four pooled stage maps (``sum(stage_widths)`` channels) is
        reduced by ``cim_reduction`` to ``cim_dim`` channels; each of the ``cim_depth`` blocks
        has two cross-scale attentions with ``cim_num_heads`` heads of key width
        ``cim_key_dim`` and value width ``cim_key_dim * cim_attn_ratio``, and feed-forwards
        with hidden width ``cim_ff_ratio`` times their input.

    Decoder: ``decoder_hidden`` channels, ``num_classes`` output logits per pixel, adaptive
    rotated convolutions with ``arc_kernel_number`` kernels and angles bounded by
    ``arc_max_angle_deg``.

    Text encoder (BERT): ``vocab_size``, ``text_hidden``, ``text_layers``, ``text_heads``,
    ``text_intermediate``, ``max_position``, ``type_vocab``, ``text_layer_norm_eps``,
    ``pad_token_id``. Prompts are encoded to exactly ``max_tokens`` token ids.

    Raises:
        ValueError: from ``__post_init__`` when the fields are inconsistent (the message names
            the field, the value found and what is required).
    """

    name: str = "remotesam_base"
    # --- visual backbone -------------------------------------------------------------------
    img_size: int = 896
    in_chans: int = 3
    patch_size: int = 4
    embed_dim: int = 128
    depths: tuple[int, ...] = (2, 2, 18, 2)
    num_heads: tuple[int, ...] = (4, 8, 16, 32)
    window_size: int = 12
    mlp_ratio: float = 4.0
    qkv_bias: bool = True
    patch_norm: bool = True
    num_heads_fusion: tuple[int, ...] = (1, 1, 1, 1)
    drop_path_rate: float = 0.3
    fusion_drop: float = 0.0
    # --- cross-scale interaction module ------------------------------------------------------
    cim_reduction: int = 4
    cim_depth: int = 1
    cim_num_heads: int = 8
    cim_key_dim: int = 32
    cim_attn_ratio: int = 2
    cim_ff_ratio: int = 2
    # --- decoder -----------------------------------------------------------------------------
    decoder_hidden: int = 512
    num_classes: int = 2
    arc_kernel_number: int = 1
    arc_max_angle_deg: float = 40.0
    arc_dropout: float = 0.2
    # --- text encoder (BERT) -------------------------------------------------------------------
    vocab_size: int = 30522
    text_hidden: int = 768
    text_layers: int = 12
    text_heads: int = 12
    text_intermediate: int = 3072
    max_position: int = 512
    type_vocab: int = 2
    text_layer_norm_eps: float = 1e-12
    text_dropout: float = 0.1
    pad_token_id: int = 0
    max_tokens: int = 20
    # --- input normalisation (RGB, applied to /255 images) -----------------------------------
    image_mean: tuple[float, float, float] = IMAGENET_MEAN
    image_std: tuple[float, float, float] = IMAGENET_STD

    def __post_init__(self) -> None:
        def bad(fieldname: str, found: Any, need: str) -> ValueError:
            return ValueError(
                f"RemoteSAMConfig {self.name!r}: field {fieldname!r} is {found!r}; {need}"
            )

        for tname in ("depths", "num_heads", "num_heads_fusion", "image_mean", "image_std"):
            value = getattr(self, tname)
            if not isinstance(value, tuple):
                object.__setattr__(self, tname, tuple(value))
        n = len(self.depths)
        if n < 1:
            raise bad("depths", self.depths, "need at least one stage")
        for fname in ("num_heads", "num_heads_fusion"):
            if len(getattr(self, fname)) != n:
                raise bad(fname, getattr(self, fname), f"need one entry per stage ({n})")
        positive = (
            "img_size", "in_chans", "patch_size", "embed_dim", "window_size", "cim_reduction",
            "cim_depth", "cim_num_heads", "cim_key_dim", "cim_attn_ratio", "cim_ff_ratio",
            "decoder_hidden", "num_classes", "arc_kernel_number", "vocab_size", "text_hidden",
            "text_layers", "text_heads", "text_intermediate", "max_position", "type_vocab",
            "max_tokens",
        )
        for fname in positive:
            value = getattr(self, fname)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise bad(fname, value, "need a positive integer")
        if any((not isinstance(d, int)) or d < 1 for d in self.depths):
            raise bad("depths", self.depths, "need positive integers")
        for i, (w, h) in enumerate(zip(self.stage_widths, self.num_heads)):
            if h < 1 or w % h:
                raise bad(
                    "num_heads",
                    self.num_heads,
                    f"stage {i} width {w} must be divisible by its heads",
                )
        for i, (w, h) in enumerate(zip(self.stage_widths, self.num_heads_fusion)):
            if h < 1 or w % h:
                raise bad(
                    "num_heads_fusion", self.num_heads_fusion,
                    f"stage {i} width {w} must be divisible by its fusion heads",
                )
        stride = self.patch_size * 2 ** (n - 1)
        if self.img_size % stride:
            raise bad(
                "img_size", self.img_size,
                f"must be a multiple of patch_size * 2**(stages-1) = {stride} so that every "
                "stage map is an exact downsampling of the previous one",
            )
        for i, w in enumerate(self.stage_widths):
            if w % self.cim_reduction:
                raise bad(
                    "cim_reduction", self.cim_reduction,
                    f"stage {i} width {w} must be divisible by it",
                )
        if self.text_hidden % self.text_heads:
            raise bad("text_heads", self.text_heads, f"must divide text_hidden={self.text_hidden}")
        if self.max_tokens > self.max_position:
            raise bad("max_tokens", self.max_tokens, f"must be <= max_position={self.max_position}")
        if self.mlp_ratio <= 0:
            raise bad("mlp_ratio", self.mlp_ratio, "need a positive number")
        if len(self.image_mean) != self.in_chans or len(self.image_std) != self.in_chans:
            raise bad("image_mean/image_std", (self.image_mean, self.image_std),
                      f"need {self.in_chans} values each")

    # --- derived quantities -----------------------------------------------------------------
    @property
    def num_stages(self) -> int:
        """Number of Swin stages (4 for every registered configuration)."""
        return len(self.depths)

    @property
    def stage_widths(self) -> tuple[int, ...]:
        """Channel width of each stage: ``embed_dim * 2**i``."""
        return tuple(self.embed_dim * 2**i for i in range(len(self.depths)))

    @property
    def stage_sizes(self) -> tuple[int, ...]:
        """Side of each (square) stage feature map: ``img_size / patch_size / 2**i``."""
        base = self.img_size // self.patch_size
        return tuple(base // 2**i for i in range(len(self.depths)))

    @property
    def cim_in_channels(self) -> int:
        """Channels of the concatenated pooled stage maps entering the CIM (1920 for Swin-B)."""
        return sum(self.stage_widths)

    @property
    def cim_dim(self) -> int:
        """Working width of the CIM (480 for Swin-B)."""
        return self.cim_in_channels // self.cim_reduction

    @property
    def cim_splits(self) -> tuple[int, ...]:
        """Channel split of the CIM intra-scale feed-forward ((32, 64, 128, 256) for Swin-B)."""
        return tuple(w // self.cim_reduction for w in self.stage_widths)

    @property
    def cim_map_size(self) -> int:
        """Side of the map the CIM works on: the last stage's map (28 at 896 input)."""
        return self.stage_sizes[-1]

    @property
    def cim_token_counts(self) -> tuple[int, int, int]:
        """Tokens of the three scales of a cross-scale attention: the map itself, a
        stride-2 3x3 depthwise conv (padding 1) and a stride-3 5x5 one (padding 2);
        (784, 196, 100) for a 28x28 map."""
        s = self.cim_map_size
        s1 = (s + 2 * 1 - 3) // 2 + 1
        s2 = (s + 2 * 2 - 5) // 3 + 1
        return (s * s, s1 * s1, s2 * s2)

    @property
    def decoder_in_channels(self) -> int:
        """Width of the deepest stage, the decoder's ``c4`` input (1024 for Swin-B)."""
        return self.stage_widths[-1]

    @property
    def text_head_dim(self) -> int:
        return self.text_hidden // self.text_heads

    # --- serialisation ------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict of every field (tuples become lists)."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, tuple):
                value = list(value)
            out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RemoteSAMConfig:
        """Build a config from :meth:`to_dict` output.

        Raises:
            TypeError: ``data`` is not a mapping.
            ValueError: unknown field names, or inconsistent values.
        """
        if not isinstance(data, Mapping):
            raise TypeError(f"RemoteSAMConfig.from_dict needs a mapping, got {type(data).__name__}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(
                f"RemoteSAMConfig.from_dict: unknown field(s) {unknown}; known fields are "
                f"{sorted(names)}"
            )
        kwargs: dict[str, Any] = {
            k: (tuple(v) if isinstance(v, list) else v) for k, v in data.items()
        }
        return cls(**kwargs)

    def replace(self, **changes: Any) -> RemoteSAMConfig:
        """A copy with some fields changed (validated again).

        Raises:
            ValueError: unknown field names or inconsistent values.
        """
        names = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - names)
        if unknown:
            raise ValueError(f"RemoteSAMConfig has no field(s) {unknown}; known: {sorted(names)}")
        return dataclasses.replace(self, **changes)

    @property
    def feature_stride(self) -> int:
        """Stride of the decoder output relative to the input (the patch size, 4)."""
        return self.patch_size

    def describe(self) -> str:
        """One-line human summary."""
        return (
            f"{self.name}: {self.img_size}px, swin embed {self.embed_dim} depths "
            f"{list(self.depths)} window {self.window_size}, text {self.text_layers}x"
            f"{self.text_hidden}, decoder {self.decoder_hidden}"
        )


_REGISTRY: dict[str, RemoteSAMConfig] = {}


def register_model(config: RemoteSAMConfig, *, overwrite: bool = False) -> RemoteSAMConfig:
    """Register ``config`` under ``config.name`` so :func:`get_config` / ``create_model`` find it.

    Raises:
        TypeError: ``config`` is not a :class:`RemoteSAMConfig`.
        ValueError: the name is taken and ``overwrite`` is false.
    """
    if not isinstance(config, RemoteSAMConfig):
        raise TypeError(f"register_model needs a RemoteSAMConfig, got {type(config).__name__}")
    if config.name in _REGISTRY and not overwrite and _REGISTRY[config.name] != config:
        raise ValueError(
            f"a model config named {config.name!r} is already registered; pass overwrite=True "
            "or choose another name"
        )
    _REGISTRY[config.name] = config
    return config


def list_models() -> list[str]:
    """Names of the registered configurations, sorted."""
    return sorted(_REGISTRY)


def get_config(name: str, **overrides: Any) -> RemoteSAMConfig:
    """The registered configuration ``name``, optionally with some fields replaced.

    Raises:
        KeyError: unknown name (the message lists the registered names and a close match).
        ValueError: unknown override fields or inconsistent values.
    """
    if not isinstance(name, str) or name not in _REGISTRY:
        import difflib

        close = difflib.get_close_matches(str(name), list(_REGISTRY), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise KeyError(
            f"unknown RemoteSAM model config {name!r}.{hint} Registered: {list_models()}"
        )
    cfg = _REGISTRY[name]
    return cfg.replace(**overrides) if overrides else cfg


REMOTESAM_BASE = register_model(RemoteSAMConfig(name="remotesam_base"))

REMOTESAM_PARITY = register_model(
    RemoteSAMConfig(name="remotesam_parity", depths=(2, 2, 2, 2), text_layers=2)
)

REMOTESAM_TINY = register_model(
    RemoteSAMConfig(
        name="remotesam_tiny",
        img_size=224,
        embed_dim=24,
        depths=(1, 1, 2, 1),
        num_heads=(1, 2, 3, 6),
        window_size=7,
        drop_path_rate=0.1,
        cim_num_heads=4,
        cim_key_dim=16,
        decoder_hidden=64,
        text_hidden=64,
        text_layers=2,
        text_heads=2,
        text_intermediate=256,
        max_position=64,
    )
)
