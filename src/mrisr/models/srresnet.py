"""SRResNet, the SRGAN generator (Ledig et al., CVPR 2017).

9x9 head conv + PReLU, ``n_blocks`` residual blocks (conv-BN-PReLU-conv-BN + skip), conv-BN with a long skip,
sub-pixel (pixel shuffle) upsampling stages with PReLU, 9x9 output conv. Depth, width and batch norm are
configurable; the published network is ``n_blocks=16, channels=64, batch_norm=True``.
"""

from __future__ import annotations

import torch
from torch import nn

from mrisr.models.base import SRGenerator
from mrisr.models.layers import SubPixelUpsampler, activation, conv, norm


class ResidualBlock(nn.Module):
    def __init__(self, spatial_dims: int, channels: int, batch_norm: bool, act: str = "prelu"):
        super().__init__()
        nk = "batch" if batch_norm else None
        self.body = nn.Sequential(
            conv(spatial_dims, channels, channels, 3), norm(nk, spatial_dims, channels), activation(act, channels),
            conv(spatial_dims, channels, channels, 3), norm(nk, spatial_dims, channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class SRResNet(SRGenerator):
    """SRResNet / SRGAN generator.

    Args:
        scale: upscaling factor (1-4).
        in_channels: 1 + 2 * context slices.
        channels: feature width (64).
        n_blocks: residual blocks (16).
        batch_norm: batch norm inside the blocks, as published (set False for an EDSR-like variant).
        residual: add the output to this baseline upsampling (``"bicubic"``, ``"zerofill"``) or ``None``.
        data_consistency: end with the k-space data-consistency step.
    """

    def __init__(self, scale: int = 2, in_channels: int = 1, channels: int = 64, n_blocks: int = 16,
                 batch_norm: bool = True, residual: str | None = None, data_consistency: bool = False):
        super().__init__(2, scale, in_channels, residual, data_consistency)
        d = 2
        self.head = nn.Sequential(conv(d, in_channels, channels, 9), activation("prelu", channels))
        self.blocks = nn.Sequential(*[ResidualBlock(d, channels, batch_norm) for _ in range(n_blocks)])
        self.trunk = nn.Sequential(conv(d, channels, channels, 3), norm("batch" if batch_norm else None, d, channels))
        self.upsample = SubPixelUpsampler(d, channels, self.factors, act="prelu")
        self.tail = conv(d, channels, 1, 9)

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        h = self.head(x)
        h = h + self.trunk(self.blocks(h))
        return self.tail(self.upsample(h))
