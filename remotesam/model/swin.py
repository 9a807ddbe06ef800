"""Multimodal Swin transformer backbone of RemoteSAM (LAVT-style, with PWAM language fusion).

Building blocks shared with the official code come from timm, as in the official LAVT/Swin
code: ``DropPath`` (stochastic depth), ``Mlp`` (``fc1`` -> GELU -> ``fc2``, the same state-dict
keys) and ``trunc_normal_`` (initialisation of the relative-position bias tables).

Layout conventions: token sequences are ``(B, H*W, C)`` in row-major (y, x) order; feature
maps are ``(B, C, H, W)``; language features are ``(B, C_text, L)`` with a ``(B, L, 1)`` mask of
1 (real token) / 0 (padding). Module and parameter names equal the official state-dict keys.
"""

from __future__ import annotations

import math
from typing import cast

import torch
import torch.nn.functional as F
from timm.layers import DropPath, Mlp, trunc_normal_
from torch import Tensor, nn

from remotesam.model.cim import CrossScaleInteraction
from remotesam.model.config import RemoteSAMConfig

__all__ = ["MultiModalSwinTransformer"]


def _relative_position_index(ws: int) -> Tensor:
    coords = torch.stack(torch.meshgrid(torch.arange(ws), torch.arange(ws), indexing="ij"))
    flat = coords.flatten(1)  # (2, ws*ws)
    rel = (flat[:, :, None] - flat[:, None, :]).permute(1, 2, 0)  # (N, N, 2)
    rel = rel + (ws - 1)
    return rel[:, :, 0] * (2 * ws - 1) + rel[:, :, 1]  # (N, N) int64


class WindowAttention(nn.Module):
    """Multi-head self-attention inside non-overlapping windows with relative position bias.

    Uses ``F.scaled_dot_product_attention`` with the bias (and the shifted-window mask) as an
    additive float mask; numerically the same as ``softmax(q k^T * d^-0.5 + bias + mask) v``.
    """

    relative_position_index: Tensor  # buffer (N*N,) int64, N = window_size**2

    def __init__(self, dim: int, window_size: int, num_heads: int, qkv_bias: bool = True) -> None:
        super().__init__()
        self.dim = dim
        self.window_size = window_size
        self.num_heads = num_heads
        self.relative_position_bias_table = nn.Parameter(
            torch.zeros((2 * window_size - 1) ** 2, num_heads)
        )
        self.register_buffer("relative_position_index", _relative_position_index(window_size))
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        trunc_normal_(self.relative_position_bias_table, std=0.02)

    def relative_bias(self) -> Tensor:
        """(heads, N, N) relative-position bias, N = window_size**2."""
        n = self.window_size**2
        idx = self.relative_position_index.reshape(-1)
        bias = self.relative_position_bias_table[idx].view(n, n, self.num_heads)
        return bias.permute(2, 0, 1)

    def forward(self, x: Tensor, batch: int, mask: Tensor | None) -> Tensor:
        """x: (batch*nW, N, C) window tokens; mask: (nW, N, N) additive or None."""
        bw, n, c = x.shape
        nh = self.num_heads
        qkv = self.qkv(x).view(bw, n, 3, nh, c // nh).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)  # (bw, nh, N, d)
        bias = self.relative_bias().to(q.dtype)
        if mask is None:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias.unsqueeze(0))
        else:
            nw = mask.shape[0]
            full = bias.unsqueeze(0) + mask.to(q.dtype).unsqueeze(1)  # (nW, nh, N, N)
            shape5 = (batch, nw, nh, n, c // nh)
            out = F.scaled_dot_product_attention(
                q.reshape(shape5), k.reshape(shape5), v.reshape(shape5), attn_mask=full
            ).reshape(bw, nh, n, c // nh)
        out = out.transpose(1, 2).reshape(bw, n, c)
        return self.proj(out)


class SwinTransformerBlock(nn.Module):
    """Pre-norm Swin block; the map is zero-padded (after ``norm1``) to a multiple of the
    window, padded tokens are not masked in plain windows, and shifted windows use the region
    mask of the padded grid (-100 between regions)."""

    def __init__(
        self,
        dim: int,
        num_heads: int,
        window_size: int,
        shift_size: int,
        mlp_ratio: float,
        qkv_bias: bool,
        drop_path: float,
    ) -> None:
        super().__init__()
        self.window_size = window_size
        self.shift_size = shift_size
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, window_size, num_heads, qkv_bias)
        self.drop_path = DropPath(drop_path)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))  # timm: fc1, GELU, fc2 (dropout 0)

    def forward(self, x: Tensor, h: int, w: int, shift_mask: Tensor | None) -> Tensor:
        b, _, c = x.shape
        ws = self.window_size
        shortcut = x
        y = self.norm1(x).view(b, h, w, c)
        pad_b = (ws - h % ws) % ws
        pad_r = (ws - w % ws) % ws
        if pad_b or pad_r:
            y = F.pad(y, (0, 0, 0, pad_r, 0, pad_b))
        hp, wp = h + pad_b, w + pad_r
        if self.shift_size > 0:
            y = torch.roll(y, shifts=(-self.shift_size, -self.shift_size), dims=(1, 2))
            mask = shift_mask
        else:
            mask = None
        # window partition: (b, hp/ws, ws, wp/ws, ws, c) -> (b*nW, ws*ws, c)
        nh_, nw_ = hp // ws, wp // ws
        win = y.view(b, nh_, ws, nw_, ws, c).permute(0, 1, 3, 2, 4, 5).reshape(-1, ws * ws, c)
        win = self.attn(win, b, mask)
        y = win.view(b, nh_, nw_, ws, ws, c).permute(0, 1, 3, 2, 4, 5).reshape(b, hp, wp, c)
        if self.shift_size > 0:
            y = torch.roll(y, shifts=(self.shift_size, self.shift_size), dims=(1, 2))
        if pad_b or pad_r:
            y = y[:, :h, :w, :]
        x = shortcut + self.drop_path(y.reshape(b, h * w, c))
        return x + self.drop_path(self.mlp(self.norm2(x)))


def shifted_window_mask(hp: int, wp: int, ws: int, shift: int, device: torch.device) -> Tensor:
    """(nW, ws*ws, ws*ws) float mask: 0 inside a region, -100 across regions (padded grid)."""
    img = torch.zeros((hp, wp), device=device)
    cnt = 0
    spans = (slice(0, -ws), slice(-ws, -shift), slice(-shift, None))
    for hs in spans:
        for wsl in spans:
            img[hs, wsl] = cnt
            cnt += 1
    win = img.view(hp // ws, ws, wp // ws, ws).permute(0, 2, 1, 3).reshape(-1, ws * ws)
    diff = win.unsqueeze(1) - win.unsqueeze(2)
    return torch.where(
        diff != 0, torch.tensor(-100.0, device=device), torch.tensor(0.0, device=device)
    )


class PatchMerging(nn.Module):
    """2x2 patch merging: concat (x[0::2,0::2], x[1::2,0::2], x[0::2,1::2], x[1::2,1::2]) ->
    LayerNorm(4C) -> Linear(4C, 2C, no bias). Odd sizes are zero-padded."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)
        self.norm = nn.LayerNorm(4 * dim)

    def forward(self, x: Tensor, h: int, w: int) -> Tensor:
        b, _, c = x.shape
        x = x.view(b, h, w, c)
        if h % 2 or w % 2:
            x = F.pad(x, (0, 0, 0, w % 2, 0, h % 2))
        x = torch.cat(
            [x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]], dim=-1
        ).view(b, -1, 4 * c)
        return self.reduction(self.norm(x))


def _conv1d_as_linear(conv: nn.Module, x: Tensor) -> Tensor:
    """Apply a kernel-size-1 Conv1d (the first layer of an ``nn.Sequential``, which types its
    layers ``Module``) to channels-last tokens (B, N, Cin) -> (B, N, Cout)."""
    c = cast(nn.Conv1d, conv)
    return F.linear(x, c.weight.squeeze(-1), c.bias)


def _instance_norm_tokens(x: Tensor, eps: float = 1e-5) -> Tensor:
    """InstanceNorm1d (no affine) over the token axis of (B, N, C): per sample and channel."""
    var, mean = torch.var_mean(x, dim=1, keepdim=True, correction=0)
    return (x - mean) * torch.rsqrt(var + eps)


class SpatialImageLanguageAttention(nn.Module):
    """Pixel-word attention of PWAM: each pixel attends over the (masked) words."""

    def __init__(self, v_in: int, l_in: int, key_channels: int, value_channels: int,
                 out_channels: int, num_heads: int) -> None:
        super().__init__()
        self.key_channels = key_channels
        self.value_channels = value_channels
        self.num_heads = num_heads
        self.f_key = nn.Sequential(nn.Conv1d(l_in, key_channels, 1))
        self.f_query = nn.Sequential(
            nn.Conv1d(v_in, key_channels, 1), nn.InstanceNorm1d(key_channels)
        )
        self.f_value = nn.Sequential(nn.Conv1d(l_in, value_channels, 1))
        self.W = nn.Sequential(
            nn.Conv1d(value_channels, out_channels, 1), nn.InstanceNorm1d(out_channels)
        )

    def forward(self, x: Tensor, l_tokens: Tensor, l_mask: Tensor) -> Tensor:
        """x (B,HW,Cv), l_tokens (B,L,Cl) channels-last words, l_mask (B,L,1) float ->
        (B,HW,Cout)."""
        b, hw, _ = x.shape
        nh = self.num_heads
        query = _instance_norm_tokens(_conv1d_as_linear(self.f_query[0], x))  # (B,HW,K)
        key = _conv1d_as_linear(self.f_key[0], l_tokens) * l_mask  # (B,L,K)
        value = _conv1d_as_linear(self.f_value[0], l_tokens) * l_mask  # (B,L,V)
        n_l = key.shape[1]
        q = query.view(b, hw, nh, -1).transpose(1, 2)  # (B,h,HW,K/h)
        k = key.view(b, n_l, nh, -1).permute(0, 2, 3, 1)  # (B,h,K/h,L)
        v = value.view(b, n_l, nh, -1).transpose(1, 2)  # (B,h,L,V/h)
        sim = torch.matmul(q, k) * (self.key_channels**-0.5)
        sim = sim + (1e4 * l_mask.transpose(1, 2).unsqueeze(1) - 1e4)
        sim = sim.softmax(dim=-1)
        out = torch.matmul(sim, v).transpose(1, 2).reshape(b, hw, self.value_channels)
        return _instance_norm_tokens(_conv1d_as_linear(self.W[0], out))


class PWAM(nn.Module):
    """Pixel-word attention module: ``GELU(W_mm(GELU(W_v x) * attn(x, words)))``."""

    def __init__(self, dim: int, l_in: int, num_heads: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.vis_project = nn.Sequential(nn.Conv1d(dim, dim, 1), nn.GELU(), nn.Dropout(dropout))
        self.image_lang_att = SpatialImageLanguageAttention(dim, l_in, dim, dim, dim, num_heads)
        self.project_mm = nn.Sequential(nn.Conv1d(dim, dim, 1), nn.GELU(), nn.Dropout(dropout))

    def forward(self, x: Tensor, l_tokens: Tensor, l_mask: Tensor) -> Tensor:
        """x (B,HW,C), l_tokens (B,L,Cl), l_mask (B,L,1) float -> (B,HW,C)."""
        vis = self.vis_project[2](F.gelu(_conv1d_as_linear(self.vis_project[0], x)))
        lang = self.image_lang_att(x, l_tokens, l_mask)
        mm = _conv1d_as_linear(self.project_mm[0], vis * lang)
        return self.project_mm[2](F.gelu(mm))


class _ConvBN(nn.Module):
    """conv1 (1x1) -> bn1 -> conv2 (3x3) -> bn2, single channel, no conv bias."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(1)
        self.conv2 = nn.Conv2d(1, 1, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(1)

    def forward(self, x: Tensor) -> Tensor:
        return self.bn2(self.conv2(self.bn1(self.conv1(x))))


class _Conv1x1BN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 1, 1, bias=False)
        self.bn = nn.BatchNorm2d(1)

    def forward(self, x: Tensor) -> Tensor:
        return self.bn(self.conv(x))


class RepBlock(nn.Module):
    """Two re-parameterisable branches blocks on a 1-channel map (38 parameters):
    ``out1 = ReLU(brb_3x3(x) + brb_1x1(x) + brb_identity(x))``,
    ``w = sigmoid(brb_3x3_2(out1) + brb_1x1_2(out1) + brb_identity_2(out1))``."""

    def __init__(self) -> None:
        super().__init__()
        self.brb_3x3 = _ConvBN()
        self.brb_1x1 = _Conv1x1BN()
        self.brb_identity = nn.BatchNorm2d(1)
        self.brb_3x3_2 = _ConvBN()
        self.brb_1x1_2 = _Conv1x1BN()
        self.brb_identity_2 = nn.BatchNorm2d(1)

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.brb_3x3(x) + self.brb_1x1(x) + self.brb_identity(x))
        return torch.sigmoid(self.brb_3x3_2(out) + self.brb_1x1_2(out) + self.brb_identity_2(out))


class VariousReceptive(nn.Module):
    """Spatial gate: channel mean (B,1,h,w) -> RepBlock -> sigmoid weight; returns ``x * w``.

    The token grid must be square (``h = w = int(sqrt(HW))``), as in the official code.
    """

    def __init__(self) -> None:
        super().__init__()
        self.repblock = RepBlock()

    def forward(self, x: Tensor) -> Tensor:
        b, hw, _ = x.shape
        side = math.isqrt(hw)
        if side * side != hw:
            raise ValueError(f"VariousReceptive needs a square token grid, got {hw} tokens")
        m = x.mean(dim=-1).view(b, 1, side, side)
        w = self.repblock(m).view(b, hw, 1)
        return x * w


def _tanh_gate(dim: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(dim, dim, bias=False), nn.ReLU(), nn.Linear(dim, dim, bias=False), nn.Tanh()
    )


class MMBasicLayer(nn.Module):
    """One stage: Swin blocks, then PWAM language fusion and the VariousReceptive spatial gate,
    gated residual update, then PatchMerging (except in the last stage).

    Returns ``(x_residual, h, w, x_next, h_next, w_next)`` where ``x_residual`` (the PWAM output)
    is what the stage sends to the decoder (after the backbone's ``norm_i``)."""

    def __init__(
        self,
        dim: int,
        depth: int,
        num_heads: int,
        window_size: int,
        mlp_ratio: float,
        qkv_bias: bool,
        drop_path: list[float],
        l_in: int,
        num_heads_fusion: int,
        fusion_drop: float,
        downsample: bool,
    ) -> None:
        super().__init__()
        self.window_size = window_size
        self.shift_size = window_size // 2
        self.blocks = nn.ModuleList(
            SwinTransformerBlock(
                dim, num_heads, window_size, 0 if i % 2 == 0 else window_size // 2,
                mlp_ratio, qkv_bias, drop_path[i],
            )
            for i in range(depth)
        )
        self.fusion = PWAM(dim, l_in, num_heads_fusion, fusion_drop)
        self.res_gate = _tanh_gate(dim)
        self.visual_residual = VariousReceptive()
        self.visual_gate = _tanh_gate(dim)
        self.downsample = PatchMerging(dim) if downsample else None
        self._mask_cache: dict[tuple[int, int, str], Tensor] = {}

    def _shift_mask(self, h: int, w: int, device: torch.device) -> Tensor:
        ws = self.window_size
        hp, wp = math.ceil(h / ws) * ws, math.ceil(w / ws) * ws
        key = (hp, wp, str(device))
        mask = self._mask_cache.get(key)
        if mask is None:
            mask = shifted_window_mask(hp, wp, ws, self.shift_size, device)
            self._mask_cache[key] = mask
        return mask

    def forward(self, x: Tensor, h: int, w: int, l_tokens: Tensor, l_mask: Tensor):
        mask = self._shift_mask(h, w, x.device) if len(self.blocks) > 1 else None
        for blk in self.blocks:
            x = blk(x, h, w, mask)
        v_residual = self.visual_residual(x)
        x_residual = self.fusion(x, l_tokens, l_mask)
        x = x + self.res_gate(x_residual) * x_residual + self.visual_gate(v_residual) * v_residual
        if self.downsample is not None:
            return x_residual, h, w, self.downsample(x, h, w), (h + 1) // 2, (w + 1) // 2
        return x_residual, h, w, x, h, w


class PatchEmbed(nn.Module):
    """Conv(k=stride=patch) + LayerNorm; (B,3,H,W) -> (B,C,H/p,W/p). Pads right/bottom."""

    def __init__(self, patch_size: int, in_chans: int, embed_dim: int, patch_norm: bool) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Conv2d(in_chans, embed_dim, patch_size, stride=patch_size)
        self.norm = nn.LayerNorm(embed_dim) if patch_norm else None

    def forward(self, x: Tensor) -> Tensor:
        p = self.patch_size
        _, _, h, w = x.shape
        if w % p or h % p:
            x = F.pad(x, (0, (p - w % p) % p, 0, (p - h % p) % p))
        x = self.proj(x)
        if self.norm is not None:
            b, c, hh, ww = x.shape
            x = self.norm(x.flatten(2).transpose(1, 2)).transpose(1, 2).reshape(b, c, hh, ww)
        return x


class MultiModalSwinTransformer(nn.Module):
    """Swin backbone with per-stage language fusion and the cross-scale interaction module.

    ``forward(x, l, l_mask)``: x (B,3,S,S) float, l (B,C_text,L) word features, l_mask (B,L,1)
    -> list of 4 maps (B, C_i, S/4/2**i, S/4/2**i) (the CIM-gated stage outputs).
    """

    def __init__(self, cfg: RemoteSAMConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.num_layers = cfg.num_stages
        self.patch_embed = PatchEmbed(cfg.patch_size, cfg.in_chans, cfg.embed_dim, cfg.patch_norm)
        self.pos_drop = nn.Dropout(0.0)
        total = sum(cfg.depths)
        dpr = [cfg.drop_path_rate * i / max(total - 1, 1) for i in range(total)]
        layers = []
        for i, (depth, heads) in enumerate(zip(cfg.depths, cfg.num_heads)):
            start = sum(cfg.depths[:i])
            layers.append(
                MMBasicLayer(
                    dim=cfg.stage_widths[i],
                    depth=depth,
                    num_heads=heads,
                    window_size=cfg.window_size,
                    mlp_ratio=cfg.mlp_ratio,
                    qkv_bias=cfg.qkv_bias,
                    drop_path=dpr[start : start + depth],
                    l_in=cfg.text_hidden,
                    num_heads_fusion=cfg.num_heads_fusion[i],
                    fusion_drop=cfg.fusion_drop,
                    downsample=i < self.num_layers - 1,
                )
            )
        self.layers = nn.ModuleList(layers)
        for i, width in enumerate(cfg.stage_widths):
            self.add_module(f"norm{i}", nn.LayerNorm(width))
        self.cim = CrossScaleInteraction(cfg)

    def stage_outputs(self, x: Tensor, l_feats: Tensor, l_mask: Tensor) -> list[Tensor]:
        """The normalised stage outputs before the CIM: list of (B, C_i, H_i, W_i)."""
        x = self.patch_embed(x)
        h, w = x.shape[2], x.shape[3]
        x = self.pos_drop(x.flatten(2).transpose(1, 2))
        l_tokens = l_feats.transpose(1, 2)  # (B, L, C_text)
        l_mask = l_mask.to(x.dtype)
        outs = []
        for i, layer in enumerate(self.layers):
            x_out, hh, ww, x, h, w = layer(x, h, w, l_tokens, l_mask)
            x_out = getattr(self, f"norm{i}")(x_out)
            b, _, c = x_out.shape
            outs.append(x_out.transpose(1, 2).reshape(b, c, hh, ww))
        return outs

    def forward(self, x: Tensor, l_feats: Tensor, l_mask: Tensor) -> list[Tensor]:
        return self.cim(self.stage_outputs(x, l_feats, l_mask))
