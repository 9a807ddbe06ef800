"""RemoteSAM decoder: top-down fusion with adaptive rotated convolutions (ARC).

Shapes: stage maps ``c4 (B, C4, s, s)``, ``c3 (B, C3, 2s, 2s)``, ``c2``, ``c1`` at 4x/8x;
output ``(B, num_classes, 8s, 8s)`` (a quarter of the input size).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from remotesam.model.config import RemoteSAMConfig

__all__ = ["AdaptiveRotatedConv2d", "SimpleDecoding", "rotate_kernels", "rotation_matrix"]

# Outer ring of a 3x3 kernel (flat indices), clockwise from the top-left corner.
_RING = (0, 1, 2, 5, 8, 7, 6, 3)


def _ring_index(step: int) -> list[list[int]]:
    return [[_RING[(r + step * s) % 8] for s in range(3)] for r in range(8)]


_POS = torch.tensor(_ring_index(1))  # (8, 3): position, next, next-next (clockwise)
_NEG = torch.tensor(_ring_index(-1))  # counter-clockwise


def rotation_matrix(thetas: Tensor) -> Tensor:
    """Bilinear 9x9 rotation matrices of a 3x3 kernel, (..., ) radians -> (..., 9, 9).

    ``rotated_flat = M @ kernel_flat``. Each outer ring position samples, by bilinear
    interpolation, the kernel at the position rotated by ``-theta``; corners interpolate along
    the ring edge, edge midpoints inside the quarter cell they fall into. Positive angles take
    from the clockwise neighbours, negative ones from the counter-clockwise neighbours; theta 0
    gives the identity. |theta| must be below pi/4 (the routing bounds it to 40 degrees).
    """
    shape = thetas.shape
    t = thetas.reshape(-1)
    n = t.shape[0]
    x = torch.cos(t)
    y = torch.sin(t).abs()
    a = x - y
    b = x * y
    c = x + y
    pos = (t >= 0).view(n, 1)
    nxt = torch.where(pos.unsqueeze(-1), _POS.to(t.device), _NEG.to(t.device))  # (n, 8, 3)
    m = t.new_zeros(n, 9, 9)
    rows = torch.arange(n, device=t.device)
    m[:, 4, 4] = 1.0
    for r in range(8):
        p = _RING[r]
        if r % 2 == 0:  # corner
            m[rows, p, p] = a
            m[rows, p, nxt[:, r, 1]] = 1.0 - a
        else:  # edge midpoint
            m[rows, p, p] = x - b
            m[rows, p, nxt[:, r, 1]] = b
            m[rows, p, nxt[:, r, 2]] = y - b
            m[rows, p, 4] = 1.0 - c + b
    return m.view(*shape, 9, 9)


def rotate_kernels(weight: Tensor, alphas: Tensor, thetas: Tensor) -> Tensor:
    """Per-sample rotated and scaled kernels.

    weight (n, Cout, Cin, 3, 3), alphas / thetas (B, n) -> (B*Cout, Cin, 3, 3) equal to
    ``sum_k alphas[b,k] * rotate(weight[k], thetas[b,k])`` for each sample ``b``.
    """
    n, cout, cin, kh, kw = weight.shape
    bsz = alphas.shape[0]
    rot = rotation_matrix(thetas).to(weight.dtype)  # (B, n, 9, 9)
    w = weight.reshape(n, cout * cin, kh * kw)
    rotated = torch.einsum("bnij,ncj->bnci", rot, w)  # (B, n, Cout*Cin, 9)
    rotated = (rotated * alphas.to(weight.dtype).view(bsz, n, 1, 1)).sum(dim=1)
    return rotated.reshape(bsz * cout, cin, kh, kw)


class LayerNormProxy(nn.Module):
    """LayerNorm over the channel axis of (B, C, H, W)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class RountingFunction(nn.Module):
    """Routing of ARC (official spelling kept for the state-dict keys): depthwise 3x3 ->
    LayerNorm(C) -> ReLU -> global average -> (alpha = sigmoid(fc), theta = softsign(fc) * max)."""

    def __init__(
        self, channels: int, kernel_number: int, max_angle_deg: float, dropout: float
    ) -> None:
        super().__init__()
        self.dwc = nn.Conv2d(channels, channels, 3, padding=1, groups=channels, bias=False)
        self.norm = LayerNormProxy(channels)
        self.dropout1 = nn.Dropout(dropout)
        self.fc_alpha = nn.Linear(channels, kernel_number, bias=True)
        self.dropout2 = nn.Dropout(dropout)
        self.fc_theta = nn.Linear(channels, kernel_number, bias=False)
        self.proportion = max_angle_deg / 180.0 * math.pi

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """x (B,C,H,W) -> alphas (B,n), thetas (B,n) in radians."""
        y = F.relu(self.norm(self.dwc(x))).mean(dim=(2, 3))
        alphas = torch.sigmoid(self.fc_alpha(self.dropout1(y)))
        thetas = F.softsign(self.fc_theta(self.dropout2(y))) * self.proportion
        return alphas, thetas


class AdaptiveRotatedConv2d(nn.Module):
    """3x3 convolution whose kernel is rotated and scaled per sample by a routing function
    (padding 1, stride 1, no bias); (B, Cin, H, W) -> (B, Cout, H, W)."""

    def __init__(self, cin: int, cout: int, kernel_number: int, max_angle_deg: float,
                 dropout: float) -> None:
        super().__init__()
        self.kernel_number = kernel_number
        self.weight = nn.Parameter(torch.empty(kernel_number, cout, cin, 3, 3))
        self.rounting_func = RountingFunction(cin, kernel_number, max_angle_deg, dropout)
        nn.init.kaiming_normal_(self.weight, mode="fan_out", nonlinearity="relu")
        self.last_routing: tuple[Tensor, Tensor] | None = None

    def forward(self, x: Tensor) -> Tensor:
        b, cin, h, w = x.shape
        alphas, thetas = self.rounting_func(x)
        self.last_routing = (alphas.detach(), thetas.detach())
        kernels = rotate_kernels(self.weight, alphas, thetas)  # (B*Cout, Cin, 3, 3)
        if b == 1:
            return F.conv2d(x, kernels, None, 1, 1)
        out = F.conv2d(x.reshape(1, b * cin, h, w), kernels, None, 1, 1, groups=b)
        return out.view(b, -1, h, w)


class SimpleDecoding(nn.Module):
    """Top-down decoder: (up x2 + concat) -> conv3x3-BN-ReLU -> ARC-BN-ReLU, three times,
    then a 1x1 conv to ``num_classes`` logits."""

    def __init__(self, cfg: RemoteSAMConfig) -> None:
        super().__init__()
        w = cfg.stage_widths
        hid = cfg.decoder_hidden
        arc = (cfg.arc_kernel_number, cfg.arc_max_angle_deg, cfg.arc_dropout)
        self.conv1_4 = nn.Conv2d(w[3] + w[2], hid, 3, padding=1, bias=False)
        self.conv2_4 = AdaptiveRotatedConv2d(hid, hid, *arc)
        self.bn1_4 = nn.BatchNorm2d(hid)
        self.relu1_4 = nn.ReLU()
        self.bn2_4 = nn.BatchNorm2d(hid)
        self.relu2_4 = nn.ReLU()
        self.conv1_3 = nn.Conv2d(hid + w[1], hid, 3, padding=1, bias=False)
        self.conv2_3 = AdaptiveRotatedConv2d(hid, hid, *arc)
        self.bn1_3 = nn.BatchNorm2d(hid)
        self.relu1_3 = nn.ReLU()
        self.bn2_3 = nn.BatchNorm2d(hid)
        self.relu2_3 = nn.ReLU()
        self.conv1_2 = nn.Conv2d(hid + w[0], hid, 3, padding=1, bias=False)
        self.conv2_2 = AdaptiveRotatedConv2d(hid, hid, *arc)
        self.bn1_2 = nn.BatchNorm2d(hid)
        self.relu1_2 = nn.ReLU()
        self.bn2_2 = nn.BatchNorm2d(hid)
        self.relu2_2 = nn.ReLU()
        self.conv1_1 = nn.Conv2d(hid, cfg.num_classes, 1)

    def _stage(self, x: Tensor, skip: Tensor, k: int) -> Tensor:
        x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=True)
        x = torch.cat([x, skip], dim=1)
        x = getattr(self, f"relu1_{k}")(getattr(self, f"bn1_{k}")(getattr(self, f"conv1_{k}")(x)))
        return getattr(self, f"relu2_{k}")(
            getattr(self, f"bn2_{k}")(getattr(self, f"conv2_{k}")(x))
        )

    def forward(self, x_c4: Tensor, x_c3: Tensor, x_c2: Tensor, x_c1: Tensor) -> Tensor:
        x = self._stage(x_c4, x_c3, 4)
        x = self._stage(x, x_c2, 3)
        x = self._stage(x, x_c1, 2)
        return self.conv1_1(x)
