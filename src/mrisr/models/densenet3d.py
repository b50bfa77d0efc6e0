"""mDCSRN: multi-level densely connected super-resolution network (Chen et al., MICCAI 2018 / MedIA 2020).

A 3x3x3 conv to ``2 * growth`` channels, then ``n_blocks`` dense blocks of ``n_units`` units
(optional norm, ELU, 3x3x3 conv adding ``growth`` = 16 channels). Blocks are connected at every level:
the input of each block after the first is the concatenation of the first conv's output and all
previous blocks' outputs, squeezed back to ``2 * growth`` channels by a 1x1x1 *compressor*. A 1x1x1
reconstruction conv reads all levels.

The original network works on input that was already interpolated to the fine grid. Both are here:

* ``upsampling="pre"`` (original): the input is upsampled first by a baseline (``pre_method``,
  zero-filled k-space by default, as the paper's k-space-truncated data) and the dense network runs on
  the fine grid. With ``scale=1`` the input is taken as already being on the fine grid.
* ``upsampling="subpixel"``: the dense network runs on the coarse grid (much cheaper) and a learned
  pixel-shuffle upsampler follows the reconstruction.

Isotropic factors ``(s, s, s)`` or anisotropic through-plane only ``(1, 1, s)`` (``anisotropic=True``;
the through-plane axis is the last tensor dim, ``W`` of ``(N, C, D, H, W)``: tensors are in volume order,
the scan's slice axis last).
"""

from __future__ import annotations

import torch
from torch import nn

from mrisr.models.base import SRGenerator, baseline_upsample
from mrisr.models.layers import SubPixelUpsampler, activation, conv, norm


class DenseUnit(nn.Module):
    def __init__(self, in_channels: int, growth: int, norm_kind: str | None):
        super().__init__()
        self.body = nn.Sequential(norm(norm_kind, 3, in_channels), activation("elu"), conv(3, in_channels, growth, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class DenseBlock(nn.Module):
    """``n_units`` dense units; returns the input concatenated with every unit's output."""

    def __init__(self, in_channels: int, growth: int, n_units: int, norm_kind: str | None):
        super().__init__()
        self.units = nn.ModuleList(DenseUnit(in_channels + i * growth, growth, norm_kind) for i in range(n_units))
        self.out_channels = in_channels + n_units * growth

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = [x]
        for unit in self.units:
            feats.append(unit(torch.cat(feats, 1)))
        return torch.cat(feats, 1)


class MDCSRN(SRGenerator):
    """Multi-level densely connected SR network (3D).

    Args:
        scale: upscaling factor (1-4; 1 only with ``upsampling="pre"``, meaning input already on the fine grid).
        in_channels: 1 + 2 * context (normally 1 for 3D).
        anisotropic: upscale only the last (through-plane) dim (``geometry = "through_plane"``).
        upsampling: ``"pre"`` (baseline upsampling of the input, then the dense net on the fine grid, as
            published) or ``"subpixel"`` (dense net on the coarse grid, learned upsampling after it).
        pre_method: baseline used by ``"pre"`` (``"zerofill"``, ``"linear"``, ...).
        growth: growth rate (16); the first conv and the compressors have ``2 * growth`` channels.
        n_blocks: dense blocks (4).
        n_units: units per block (4).
        norm_kind: ``None`` (default; batch statistics of 3D patches are unreliable), ``"batch"`` or
            ``"instance"``.
        residual, data_consistency: see :class:`~mrisr.models.base.SRGenerator`.
    """

    def __init__(self, scale: int = 2, in_channels: int = 1, anisotropic: bool = False, upsampling: str = "pre",
                 pre_method: str = "zerofill", growth: int = 16, n_blocks: int = 4, n_units: int = 4,
                 norm_kind: str | None = None, residual: str | None = None, data_consistency: bool = False):
        super().__init__(3, scale, in_channels, residual, data_consistency,
                         geometry="through_plane" if anisotropic else "isotropic")
        if upsampling not in ("pre", "subpixel"):
            raise ValueError(f"upsampling must be 'pre' or 'subpixel', got {upsampling!r}")
        if upsampling == "subpixel" and self.scale == 1:
            raise ValueError("upsampling='subpixel' needs scale > 1")
        self.upsampling = upsampling
        self.pre_method = pre_method
        width = 2 * growth
        self.head = conv(3, in_channels, width, 3)
        self.blocks = nn.ModuleList()
        self.compressors = nn.ModuleList()
        level_channels = [width]
        for b in range(n_blocks):
            if b > 0:
                self.compressors.append(conv(3, sum(level_channels), width, 1))
            block = DenseBlock(width, growth, n_units, norm_kind)
            self.blocks.append(block)
            level_channels.append(block.out_channels)
        total = sum(level_channels)
        if upsampling == "pre":
            self.reconstruction: nn.Module = conv(3, total, 1, 1)
            self.upsample: nn.Module = nn.Identity()
        else:
            self.reconstruction = nn.Sequential(conv(3, total, width, 1), activation("elu"))
            self.upsample = nn.Sequential(SubPixelUpsampler(3, width, self.factors, act="elu"), conv(3, width, 1, 3))

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        if self.upsampling == "pre":
            x = baseline_upsample(x, self.factors, self.pre_method)
        levels = [self.head(x)]
        for b, block in enumerate(self.blocks):
            inp = levels[0] if b == 0 else self.compressors[b - 1](torch.cat(levels, 1))
            levels.append(block(inp))
        return self.upsample(self.reconstruction(torch.cat(levels, 1)))

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, upsampling={self.upsampling!r}, pre_method={self.pre_method!r}"
