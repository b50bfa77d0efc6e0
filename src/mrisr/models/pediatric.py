"""The pediatric study's simple generator, kept so that study can be reproduced as it was.

An SRGAN-like generator with LeakyReLU (slope 0.2) instead of PReLU throughout and a ``tanh`` output:
9x9 head conv + LeakyReLU, ``n_blocks`` residual blocks (conv-BN-LeakyReLU-conv-BN + skip), conv-BN with a
long skip, pixel-shuffle upsampling with LeakyReLU, 9x9 output conv, tanh. Because of the tanh the output
lies in [-1, 1]: train it on intensities normalised to [-1, 1] (record ``"range": [-1, 1]`` in the model
file's normalisation) or on [0, 1] data as the study did, knowing the output cannot go below -1 or above 1.
"""

from __future__ import annotations

import torch
from torch import nn

from mrisr.models.base import SRGenerator
from mrisr.models.layers import SubPixelUpsampler, activation, conv, norm


class _Block(nn.Module):
    def __init__(self, channels: int, batch_norm: bool):
        super().__init__()
        nk = "batch" if batch_norm else None
        self.body = nn.Sequential(
            conv(2, channels, channels, 3), norm(nk, 2, channels), activation("lrelu"),
            conv(2, channels, channels, 3), norm(nk, 2, channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class PediatricGenerator(SRGenerator):
    """Simple SRGAN-style generator with LeakyReLU inside and a tanh output.

    Args:
        scale: upscaling factor (1-4; the study used 2).
        in_channels: 1 + 2 * context slices.
        channels: feature width (64).
        n_blocks: residual blocks (5).
        batch_norm: batch norm inside the blocks (True, as SRGAN).
        output_activation: ``"tanh"`` (the study) or ``"none"``.
        residual, data_consistency: see :class:`~mrisr.models.base.SRGenerator` (the residual is added
            after the tanh).
    """

    def __init__(self, scale: int = 2, in_channels: int = 1, channels: int = 64, n_blocks: int = 5,
                 batch_norm: bool = True, output_activation: str = "tanh", residual: str | None = None,
                 data_consistency: bool = False):
        super().__init__(2, scale, in_channels, residual, data_consistency)
        if output_activation not in ("tanh", "none"):
            raise ValueError(f"output_activation must be 'tanh' or 'none', got {output_activation!r}")
        self.head = nn.Sequential(conv(2, in_channels, channels, 9), activation("lrelu"))
        self.blocks = nn.Sequential(*[_Block(channels, batch_norm) for _ in range(n_blocks)])
        self.trunk = nn.Sequential(conv(2, channels, channels, 3), norm("batch" if batch_norm else None, 2, channels))
        self.upsample = SubPixelUpsampler(2, channels, self.factors, act="lrelu")
        self.tail = nn.Sequential(conv(2, channels, 1, 9), activation(output_activation))

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        h = self.head(x)
        h = h + self.trunk(self.blocks(h))
        return self.tail(self.upsample(h))
