"""RRDBNet: residual-in-residual dense blocks (ESRGAN, Wang et al. 2018), the cardiac study's generator.

3x3 head conv, ``n_blocks`` RRDBs (each three residual dense blocks of five convs with growth
``growth``, LeakyReLU 0.2 and residual scaling 0.2), trunk conv with a long skip, nearest-neighbour + conv
upsampling stages, then HR conv + LeakyReLU and the output conv. No batch norm. The published network is
``channels=64, n_blocks=23, growth=32``.
"""

from __future__ import annotations

import torch
from torch import nn

from mrisr.models.base import SRGenerator
from mrisr.models.layers import NearestConvUpsampler, SubPixelUpsampler, activation, conv


class ResidualDenseBlock(nn.Module):
    """Five densely connected 3x3 convs; output = input + beta * last conv."""

    def __init__(self, spatial_dims: int, channels: int, growth: int, beta: float = 0.2):
        super().__init__()
        self.beta = beta
        self.convs = nn.ModuleList(
            conv(spatial_dims, channels + i * growth, growth if i < 4 else channels, 3) for i in range(5)
        )
        self.act = activation("lrelu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = [x]
        for i, c in enumerate(self.convs):
            out = c(torch.cat(feats, 1))
            if i < 4:
                feats.append(self.act(out))
        return x + self.beta * out


class RRDB(nn.Module):
    """Residual in residual dense block: three RDBs with an outer scaled skip."""

    def __init__(self, spatial_dims: int, channels: int, growth: int, beta: float = 0.2):
        super().__init__()
        self.beta = beta
        self.body = nn.Sequential(*[ResidualDenseBlock(spatial_dims, channels, growth, beta) for _ in range(3)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.beta * self.body(x)


class RRDBNet(SRGenerator):
    """ESRGAN-style generator.

    Args:
        scale: upscaling factor (1-4).
        in_channels: 1 + 2 * context slices.
        channels: feature width (64).
        n_blocks: number of RRDBs (23 published; fewer for MR slices is common).
        growth: dense growth channels (32).
        upsampler: ``"nearest"`` (nearest + conv, ESRGAN) or ``"pixelshuffle"``.
        residual, data_consistency: see :class:`~mrisr.models.base.SRGenerator`.
    """

    def __init__(self, scale: int = 2, in_channels: int = 1, channels: int = 64, n_blocks: int = 23,
                 growth: int = 32, upsampler: str = "nearest", residual: str | None = None,
                 data_consistency: bool = False):
        super().__init__(2, scale, in_channels, residual, data_consistency)
        d = 2
        self.head = conv(d, in_channels, channels, 3)
        self.blocks = nn.Sequential(*[RRDB(d, channels, growth) for _ in range(n_blocks)])
        self.trunk = conv(d, channels, channels, 3)
        if upsampler == "nearest":
            self.upsample: nn.Module = NearestConvUpsampler(d, channels, self.factors, act="lrelu")
        elif upsampler == "pixelshuffle":
            self.upsample = SubPixelUpsampler(d, channels, self.factors, act="lrelu")
        else:
            raise ValueError(f"upsampler must be 'nearest' or 'pixelshuffle', got {upsampler!r}")
        self.tail = nn.Sequential(conv(d, channels, channels, 3), activation("lrelu"), conv(d, channels, 1, 3))

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        h = self.head(x)
        h = h + self.trunk(self.blocks(h))
        return self.tail(self.upsample(h))
