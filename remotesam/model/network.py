"""The RemoteSAM network (official ``LAVTOne``): multimodal Swin backbone with PWAM language
fusion and CIM, a rotated-convolution decoder, and a BERT text encoder.

Tensor conventions of :meth:`RemoteSAMNet.forward`:

* ``image``: (B, 3, S, S) float, RGB, ``/255`` then ImageNet mean/std normalised, where
  ``S = config.img_size`` (896 for the official model);
* ``input_ids``: (B, L) int64 WordPiece ids (``[CLS] ... [SEP]``, zero padded; L = 20 in the
  official pipeline); ``attention_mask``: (B, L) int64, 1 for real tokens, 0 for padding;
* result: (B, 2, S, S) float logits (class 0 background, class 1 target), bilinear
  (align_corners=True) upsampled from the decoder's (B, 2, S/4, S/4).
"""

from __future__ import annotations

from typing import Any

import torch.nn.functional as F
from timm.layers import trunc_normal_
from torch import Tensor, nn
from transformers import BertConfig, BertModel

from remotesam.model.config import RemoteSAMConfig, get_config
from remotesam.model.decoder import SimpleDecoding
from remotesam.model.swin import MultiModalSwinTransformer

__all__ = ["RemoteSAMNet", "build_network", "build_text_encoder", "resolve_config"]


def build_text_encoder(cfg: RemoteSAMConfig) -> BertModel:
    """A randomly initialised ``transformers.BertModel`` (no pooler, nothing from a hub)."""
    # attn_implementation goes through PretrainedConfig's **kwargs, which transformers' typed
    # BertConfig signature leaves out
    bert_cfg = BertConfig(  # type: ignore[call-arg]
        vocab_size=cfg.vocab_size,
        hidden_size=cfg.text_hidden,
        num_hidden_layers=cfg.text_layers,
        num_attention_heads=cfg.text_heads,
        intermediate_size=cfg.text_intermediate,
        hidden_act="gelu",
        hidden_dropout_prob=cfg.text_dropout,
        attention_probs_dropout_prob=cfg.text_dropout,
        max_position_embeddings=cfg.max_position,
        type_vocab_size=cfg.type_vocab,
        layer_norm_eps=cfg.text_layer_norm_eps,
        pad_token_id=cfg.pad_token_id,
        attn_implementation="sdpa",
    )
    return BertModel(bert_cfg, add_pooling_layer=False)


def _init_weights(module: nn.Module) -> None:
    if isinstance(module, nn.Linear):
        trunc_normal_(module.weight, std=0.02)  # timm's, as the official code
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


class RemoteSAMNet(nn.Module):
    """RemoteSAM referring-segmentation network.

    Submodules (their names are the official state-dict prefixes): ``backbone``
    (:class:`MultiModalSwinTransformer`), ``classifier`` (:class:`SimpleDecoding`),
    ``text_encoder`` (``transformers.BertModel`` without pooler).

    Attributes:
        config: the :class:`RemoteSAMConfig` it was built from.
        ignored_checkpoint_keys: keys of the checkpoint it was loaded from that were ignored on
            purpose (``text_encoder.embeddings.position_ids``, ``text_encoder.pooler.*``);
            empty for a freshly built model.
    """

    def __init__(self, config: RemoteSAMConfig) -> None:
        super().__init__()
        if not isinstance(config, RemoteSAMConfig):
            raise TypeError(f"RemoteSAMNet needs a RemoteSAMConfig, got {type(config).__name__}")
        self.config = config
        self.backbone = MultiModalSwinTransformer(config)
        self.classifier = SimpleDecoding(config)
        self.backbone.apply(_init_weights)
        self.text_encoder = build_text_encoder(config)
        self.ignored_checkpoint_keys: tuple[str, ...] = ()

    # --- input checking -----------------------------------------------------------------------
    def _check_tokens(self, input_ids: Any, attention_mask: Any) -> tuple[Tensor, Tensor]:
        for name, t in (("input_ids", input_ids), ("attention_mask", attention_mask)):
            if not isinstance(t, Tensor):
                raise TypeError(
                    f"{name} must be a torch.Tensor of shape (B, L), got {type(t).__name__}"
                )
            if t.dtype.is_floating_point or t.dtype.is_complex:
                raise TypeError(f"{name} must be an integer tensor (int64), got dtype {t.dtype}")
            if t.ndim != 2:
                raise ValueError(
                    f"{name} must have shape (B, L) (batch, tokens), got shape {tuple(t.shape)}; "
                    "use remotesam.text to encode prompts"
                )
        if tuple(input_ids.shape) != tuple(attention_mask.shape):
            raise ValueError(
                f"input_ids {tuple(input_ids.shape)} and attention_mask "
                f"{tuple(attention_mask.shape)} must have the same shape (B, L)"
            )
        length = input_ids.shape[1]
        if length < 1 or length > self.config.max_position:
            raise ValueError(
                f"token length L={length} must be between 1 and max_position="
                f"{self.config.max_position} (the official pipeline uses {self.config.max_tokens})"
            )
        if input_ids.numel() and not input_ids.is_meta:
            lo, hi = int(input_ids.min()), int(input_ids.max())
            if lo < 0 or hi >= self.config.vocab_size:
                raise ValueError(
                    f"input_ids must lie in [0, {self.config.vocab_size}); found values in "
                    f"[{lo}, {hi}]"
                )
        return input_ids.long(), attention_mask.long()

    def _check_image(self, image: Any) -> Tensor:
        if not isinstance(image, Tensor):
            raise TypeError(
                f"image must be a torch.Tensor (B, 3, S, S), got {type(image).__name__}"
            )
        if not image.dtype.is_floating_point:
            raise TypeError(
                f"image must be a floating-point tensor (normalised RGB), got dtype {image.dtype}; "
                "convert uint8 images with /255 and ImageNet mean/std first"
            )
        s = self.config.img_size
        if (
            image.ndim != 4
            or image.shape[1] != self.config.in_chans
            or tuple(image.shape[2:]) != (s, s)
        ):
            raise ValueError(
                f"image must have shape (B, {self.config.in_chans}, {s}, {s}) for config "
                f"{self.config.name!r}, got {tuple(image.shape)}; resize it to {s}x{s}"
            )
        return image

    # --- forward ---------------------------------------------------------------------------------
    def encode_text(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        """Word features (B, C_text, L) float: BERT's last hidden state at every position
        (padding included), channels first.

        Raises:
            TypeError / ValueError: token tensors of the wrong type, dtype or shape.
        """
        input_ids, attention_mask = self._check_tokens(input_ids, attention_mask)
        hidden = self.text_encoder(input_ids=input_ids, attention_mask=attention_mask)[0]
        return hidden.transpose(1, 2)

    def forward(
        self,
        image: Tensor,
        input_ids: Tensor,
        attention_mask: Tensor,
        text_features: Tensor | None = None,
    ) -> Tensor:
        """Referring-segmentation logits.

        Args:
            image: (B, 3, S, S) float normalised RGB, S = ``config.img_size``.
            input_ids: (B, L) int64 token ids.
            attention_mask: (B, L) int64, 1 = token, 0 = padding.
            text_features: optional cached :meth:`encode_text` output (B, C_text, L) for these
                tokens; BERT is skipped when given.

        Returns:
            (B, 2, S, S) float logits; ``argmax`` over dim 1 is the mask (ties -> background).

        Raises:
            TypeError: a non-tensor input, a non-float image or non-integer tokens.
            ValueError: wrong rank / size / batch of any input.
        """
        image = self._check_image(image)
        input_ids, attention_mask = self._check_tokens(input_ids, attention_mask)
        b = image.shape[0]
        if input_ids.shape[0] != b:
            raise ValueError(
                f"batch size mismatch: image has {b} samples, input_ids has {input_ids.shape[0]}"
            )
        if text_features is None:
            l_feats = self.text_encoder(input_ids=input_ids, attention_mask=attention_mask)[0]
            l_feats = l_feats.transpose(1, 2)
        else:
            expect = (b, self.config.text_hidden, input_ids.shape[1])
            if not isinstance(text_features, Tensor) or tuple(text_features.shape) != expect:
                got = (
                    tuple(text_features.shape)
                    if isinstance(text_features, Tensor)
                    else type(text_features).__name__
                )
                raise ValueError(
                    f"text_features must be the encode_text output of shape {expect}, got {got}"
                )
            l_feats = text_features
        l_mask = attention_mask.unsqueeze(-1)
        c1, c2, c3, c4 = self.backbone(image, l_feats.to(image.dtype), l_mask)
        out = self.classifier(c4, c3, c2, c1)
        return F.interpolate(out, size=image.shape[-2:], mode="bilinear", align_corners=True)

    def num_parameters(self) -> int:
        """Total number of parameter values."""
        return sum(p.numel() for p in self.parameters())


def resolve_config(name_or_config: str | RemoteSAMConfig, **overrides: Any) -> RemoteSAMConfig:
    """The config of a registered name (see :func:`list_models`) or a config, with ``overrides``
    (config fields) replaced.

    Raises:
        KeyError: unknown name. TypeError: neither a name nor a config. ValueError: bad overrides.
    """
    if isinstance(name_or_config, str):
        return get_config(name_or_config, **overrides)
    if isinstance(name_or_config, RemoteSAMConfig):
        return name_or_config.replace(**overrides) if overrides else name_or_config
    raise TypeError(
        "create_model needs a registered model name or a RemoteSAMConfig, got "
        f"{type(name_or_config).__name__}"
    )


def build_network(name_or_config: str | RemoteSAMConfig, **overrides: Any) -> RemoteSAMNet:
    """A RemoteSAM network with fresh (untrained) weights, in eval mode.

    Loading weights is a layer above the network: :func:`remotesam.create_model` (with
    ``checkpoint=``) or :func:`remotesam.load_checkpoint`.
    """
    return RemoteSAMNet(resolve_config(name_or_config, **overrides)).eval()
