"""A 3D residual SR network (EDSR-style: no batch norm, scaled residual blocks, sub-pixel upsampling).

3x3x3 head conv, ``n_blocks`` blocks (conv-ReLU-conv, scaled by ``res_scale``, + skip), trunk conv with a
long skip, pixel-shuffle upsampling on the coarse grid, 3x3x3 output conv. Isotropic ``(s, s, s)`` or
through-plane only ``(1, 1, s)`` factors (``anisotropic=True``; through-plane = last tensor dim).
"""

from __future__ import annotations

import torch
from torch import nn

from mrisr.models.base import SRGenerator
from mrisr.models.layers import SubPixelUpsampler, activation, conv


class _Block(nn.Module):
    def __init__(self, channels: int, res_scale: float):
        super().__init__()
        self.res_scale = res_scale
        self.body = nn.Sequential(conv(3, channels, channels, 3), activation("relu"), conv(3, channels, channels, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.res_scale * self.body(x)


class ResNet3D(SRGenerator):
    """3D residual SR network.

    Args:
        scale: upscaling factor (1-4).
        in_channels: 1 + 2 * context.
        anisotropic: upscale only the last (through-plane) dim (``geometry = "through_plane"``).
        channels: feature width (32).
        n_blocks: residual blocks (8).
        res_scale: residual scaling (0.1, as EDSR).
        residual, data_consistency: see :class:`~mrisr.models.base.SRGenerator`.
    """

    def __init__(self, scale: int = 2, in_channels: int = 1, anisotropic: bool = False, channels: int = 32,
                 n_blocks: int = 8, res_scale: float = 0.1, residual: str | None = None,
                 data_consistency: bool = False):
        super().__init__(3, scale, in_channels, residual, data_consistency,
                         geometry="through_plane" if anisotropic else "isotropic")
        self.head = conv(3, in_channels, channels, 3)
        self.blocks = nn.Sequential(*[_Block(channels, res_scale) for _ in range(n_blocks)])
        self.trunk = conv(3, channels, channels, 3)
        self.upsample = SubPixelUpsampler(3, channels, self.factors, act=None)
        self.tail = conv(3, channels, 1, 3)

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        h = self.head(x)
        h = h + self.trunk(self.blocks(h))
        return self.tail(self.upsample(h))
