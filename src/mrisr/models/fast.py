"""A fast network for CPUs: FSRCNN-style body at low resolution with an ESPCN-style pixel-shuffle output.

Everything runs on the low-resolution grid: 5x5 feature extraction (``channels``), 1x1 shrink to
``shrink`` channels, ``n_layers`` 3x3 mapping convs, 1x1 expand, then one 3x3 conv to ``scale**2``
channels and a pixel shuffle. PReLU activations. With the defaults (wider and deeper than FSRCNN's
56/12/4) it costs about 4-5% of SRResNet-16's FLOPs per output pixel at x2-x4 (see the README's table,
measured by ``scripts/count_flops.py``); the contract is at most 10%. Most useful as ``residual="bicubic"`` (it then only adds detail).
"""

from __future__ import annotations

import torch
from torch import nn

from mrisr.models.base import SRGenerator
from mrisr.models.layers import PixelShuffleND, activation, conv


class FastSRNet(SRGenerator):
    """FSRCNN/ESPCN-style network for CPU inference.

    Args:
        scale: upscaling factor (1-4).
        in_channels: 1 + 2 * context slices.
        channels: feature extraction / expansion width (64).
        shrink: mapping width (32).
        n_layers: number of 3x3 mapping convs (6).
        residual, data_consistency: see :class:`~mrisr.models.base.SRGenerator`.
    """

    def __init__(self, scale: int = 2, in_channels: int = 1, channels: int = 64, shrink: int = 32,
                 n_layers: int = 6, residual: str | None = None, data_consistency: bool = False):
        super().__init__(2, scale, in_channels, residual, data_consistency)
        self.head = nn.Sequential(conv(2, in_channels, channels, 5), activation("prelu", channels))
        body: list[nn.Module] = [conv(2, channels, shrink, 1), activation("prelu", shrink)]
        for _ in range(n_layers):
            body += [conv(2, shrink, shrink, 3), activation("prelu", shrink)]
        body += [conv(2, shrink, channels, 1), activation("prelu", channels)]
        self.body = nn.Sequential(*body)
        self.tail = nn.Sequential(conv(2, channels, self.scale ** 2, 3), PixelShuffleND(self.factors))

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return self.tail(self.body(self.head(x)))
