"""Cross-scale interaction module (CIM) of the RemoteSAM backbone.

The official module hard-codes Swin-B widths ([128, 256, 512, 1024]), a 28x28 stage-4 map,
784 image tokens and 1080 attention tokens. Here every such number is derived from the
:class:`RemoteSAMConfig` (``stage_widths``, ``cim_map_size``, ``cim_token_counts``), and the
two raw reshapes of the official attention (which reinterpret memory rather than transpose) are
reproduced literally, so the module is numerically identical at 896 px with Swin-B widths.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from remotesam.model.config import RemoteSAMConfig

__all__ = ["CrossScaleInteraction"]


class Residual(nn.Module):
    """``x + m(x)``."""

    def __init__(self, m: nn.Module) -> None:
        super().__init__()
        self.m = m

    def forward(self, x: Tensor) -> Tensor:
        return x + self.m(x)


class LinearBN(nn.Module):
    """Linear (no bias) followed by BatchNorm1d over all tokens: (B,N,Cin) -> (B,N,Cout)."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.c = nn.Linear(cin, cout, bias=False)
        self.bn = nn.BatchNorm1d(cout)

    def forward(self, x: Tensor) -> Tensor:
        y = self.c(x)
        return self.bn(y.flatten(0, 1)).view_as(y)


class CrossScaleTokenAttention(nn.Module):
    """Multi-head attention over the tokens of three scales of one map.

    ``heads`` heads with query/key width ``key_dim`` and value width ``value_dim``; the qkv
    channels are head-major ``[q | k | v]`` per head. A Hardswish + depthwise 3x3 conv runs on
    the image tokens' values (after the official raw reshape to a map), ``proj`` maps the
    attention token axis (``n_att``) to the image token axis (``n_img``), ``to_out`` maps the
    ``heads * value_dim`` channels back to ``dim``.
    """

    def __init__(self, dim: int, heads: int, key_dim: int, value_dim: int, map_size: int,
                 n_att: int) -> None:
        super().__init__()
        self.heads = heads
        self.key_dim = key_dim
        self.value_dim = value_dim
        self.map_size = map_size
        self.n_img = map_size * map_size
        self.n_att = n_att
        self.scale = key_dim**-0.5
        dh = heads * value_dim
        self.qkv = LinearBN(dim, heads * (2 * key_dim + value_dim))
        self.parallel_conv = nn.Sequential(
            nn.Hardswish(), nn.Conv2d(dh, dh, 3, padding=1, groups=dh)
        )
        self.to_out = nn.Linear(dh, dim)
        self.proj = nn.Linear(n_att, self.n_img)

    def forward(self, x: Tensor) -> Tensor:
        """x: (B, n_att, dim) tokens, image tokens first -> (B, n_img, dim)."""
        b, n, _ = x.shape
        nh, kd, vd = self.heads, self.key_dim, self.value_dim
        dh = nh * vd
        qkv = self.qkv(x).view(b, n, nh, -1)
        q, k, v = qkv.split([kd, kd, vd], dim=3)
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)  # (B, nh, N, *)
        # Official raw reshape: (B, nh, n_img, vd) memory read as (B, nh*vd, s, s).
        v_img = v[:, :, : self.n_img].reshape(b, dh, self.map_size, self.map_size)
        local = self.parallel_conv(v_img)
        attn = (torch.matmul(q, k.transpose(-2, -1)) * self.scale).softmax(dim=-1)
        # Official raw reshape: (B, N, nh, vd) memory read as (B, nh*vd, N).
        out = torch.matmul(attn, v).transpose(1, 2).reshape(b, dh, n)
        out = self.proj(out) + local.flatten(2)  # (B, dh, n_img)
        return self.to_out(out.transpose(1, 2))


class CrossScaleAttention(nn.Module):
    """BN, then the map plus two depthwise-strided versions (3x3/s2 and 5x5/s3) as tokens,
    token attention back to the map's tokens, then BN -> Hardswish -> 1x1 conv.
    (B, C, s, s) -> (B, C, s, s)."""

    def __init__(self, dim: int, heads: int, key_dim: int, value_dim: int, map_size: int,
                 n_att: int) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(dim)
        self.DWConv1 = nn.Sequential(
            nn.Conv2d(dim, dim, 3, stride=2, padding=1, groups=dim), nn.BatchNorm2d(dim)
        )
        self.DWConv2 = nn.Sequential(
            nn.Conv2d(dim, dim, 5, stride=3, padding=2, groups=dim), nn.BatchNorm2d(dim)
        )
        self.attention = CrossScaleTokenAttention(dim, heads, key_dim, value_dim, map_size, n_att)
        self.bn4 = nn.BatchNorm2d(dim)
        self.act = nn.Hardswish()
        self.conv = nn.Conv2d(dim, dim, 1)

    def forward(self, x: Tensor) -> Tensor:
        b, c, h, w = x.shape
        x = self.bn1(x)
        x1 = self.DWConv1(x)
        x2 = self.DWConv2(x)
        tokens = torch.cat([x.flatten(2), x1.flatten(2), x2.flatten(2)], dim=2).transpose(1, 2)
        out = self.attention(tokens).transpose(1, 2).reshape(b, c, h, w)
        return self.conv(self.act(self.bn4(out)))


class FeedForward(nn.Module):
    """BN -> 1x1 -> BN -> grouped 3x3 (groups = dim) -> ReLU6 -> 1x1; (B,dim,H,W) -> same."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(dim)
        self.conv1 = nn.Conv2d(dim, hidden, 1)
        self.bn2 = nn.BatchNorm2d(hidden)
        self.conv2 = nn.Conv2d(hidden, hidden, 3, padding=1, groups=dim)
        self.act = nn.ReLU6()
        self.conv3 = nn.Conv2d(hidden, dim, 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv3(self.act(self.conv2(self.bn2(self.conv1(self.bn1(x))))))


class IntraFeedForward(nn.Module):
    """Split channels per source scale, a residual FeedForward on each, concatenate."""

    def __init__(self, splits: tuple[int, ...], ratio: int) -> None:
        super().__init__()
        self.splits = list(splits)
        for i, c in enumerate(splits):
            self.add_module(f"ff{i + 1}", Residual(FeedForward(c, c * ratio)))

    def forward(self, x: Tensor) -> Tensor:
        parts = x.split(self.splits, dim=1)
        return torch.cat([getattr(self, f"ff{i + 1}")(p) for i, p in enumerate(parts)], dim=1)


class CIMBlock(nn.Module):
    def __init__(self, cfg: RemoteSAMConfig) -> None:
        super().__init__()
        dim = cfg.cim_dim
        args = (dim, cfg.cim_num_heads, cfg.cim_key_dim, cfg.cim_key_dim * cfg.cim_attn_ratio,
                cfg.cim_map_size, sum(cfg.cim_token_counts))
        self.csa1 = Residual(CrossScaleAttention(*args))
        self.intra_ff = Residual(IntraFeedForward(cfg.cim_splits, cfg.cim_ff_ratio))
        self.csa2 = Residual(CrossScaleAttention(*args))
        self.ff = Residual(FeedForward(dim, dim * cfg.cim_ff_ratio))

    def forward(self, x: Tensor) -> Tensor:
        return self.ff(self.csa2(self.intra_ff(self.csa1(x))))


def h_sigmoid(x: Tensor) -> Tensor:
    return F.relu6(x + 3.0) / 6.0


class ScaleAwareGate(nn.Module):
    """``BN(conv(local)) * up(h_sigmoid(BN(conv(g)))) + up(BN(conv(g)))`` with bilinear
    (align_corners=False) upsampling of the global map to the local map's size."""

    def __init__(self, inp: int, oup: int) -> None:
        super().__init__()
        self.local_embedding = nn.Conv2d(inp, oup, 1)
        self.bn1 = nn.BatchNorm2d(oup)
        self.global_embedding = nn.Conv2d(inp, oup, 1)
        self.bn2 = nn.BatchNorm2d(oup)
        self.global_act = nn.Conv2d(inp, oup, 1)
        self.bn3 = nn.BatchNorm2d(oup)

    def forward(self, x_l: Tensor, x_g: Tensor) -> Tensor:
        size = x_l.shape[-2:]
        local = self.bn1(self.local_embedding(x_l))
        sig = h_sigmoid(self.bn3(self.global_act(x_g)))
        glob = self.bn2(self.global_embedding(x_g))
        if tuple(x_g.shape[-2:]) != tuple(size):
            sig = F.interpolate(sig, size=size, mode="bilinear", align_corners=False)
            glob = F.interpolate(glob, size=size, mode="bilinear", align_corners=False)
        return local * sig + glob


class CrossScaleInteraction(nn.Module):
    """Pool the stage maps to the last stage's size, concatenate, reduce, interact (CIMBlock),
    expand, split per stage, and gate each stage map with its global part.

    forward(list of (B, C_i, H_i, W_i)) -> list of maps with the same shapes.
    """

    def __init__(self, cfg: RemoteSAMConfig) -> None:
        super().__init__()
        self.widths = list(cfg.stage_widths)
        self.down_channel = nn.Conv2d(cfg.cim_in_channels, cfg.cim_dim, 1)
        self.up_channel = nn.Conv2d(cfg.cim_dim, cfg.cim_in_channels, 1)
        self.block = nn.Sequential(*[CIMBlock(cfg) for _ in range(cfg.cim_depth)])
        self.bn = nn.BatchNorm2d(cfg.cim_dim)
        self.fusion = nn.ModuleList(ScaleAwareGate(w, w) for w in self.widths)

    def forward(self, feats: list[Tensor]) -> list[Tensor]:
        h, w = feats[-1].shape[-2:]
        pooled = [f if f.shape[-2:] == (h, w) else F.adaptive_avg_pool2d(f, (h, w)) for f in feats]
        x = self.down_channel(torch.cat(pooled, dim=1))
        x = self.block(x)
        x = self.up_channel(self.bn(x))
        globals_ = x.split(self.widths, dim=1)
        return [gate(f, g) for gate, f, g in zip(self.fusion, feats, globals_)]
