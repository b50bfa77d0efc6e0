"""Discriminators and critics for adversarial training.

* :class:`VGGDiscriminator` - SRGAN's VGG-style discriminator (Ledig et al.): 8 convs (3x3, channels
  64-512, stride 2 every second layer) with batch norm and LeakyReLU, then a dense head. Optional dropout
  after every LeakyReLU (pediatric study). An adaptive average pool before the dense head makes it accept
  any input size. Returns one logit per image, ``(N, 1)``.
* :class:`PatchDiscriminator` - PatchGAN-style (pix2pix) with spectral normalisation on every conv and no
  batch norm, 2D or 3D. Returns a logit map ``(N, 1, *S / 2**n_down)``.
* :class:`Critic3D` - a WGAN-GP critic (mDCSRN-GAN): convs with *layer* norm (never batch norm, which would
  break the per-sample gradient penalty) and LeakyReLU, global average pool, dense head; ``(N, 1)``
  unbounded scores. 3D by default; 2D also works.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from mrisr.models.layers import activation, conv, norm


def _dropout(p: float) -> nn.Module:
    return nn.Dropout(p) if p > 0 else nn.Identity()


class VGGDiscriminator(nn.Module):
    """SRGAN discriminator.

    Args:
        spatial_dims: 2 (default) or 3.
        in_channels: image channels (1).
        channels: width of the first conv (64); doubles every two layers up to ``8 * channels``.
        n_layers: number of convs (8).
        batch_norm: batch norm after every conv but the first (True, as SRGAN).
        dropout: dropout probability after every LeakyReLU (0 = off).
        fc_channels: hidden width of the dense head (1024).
        pool_size: size the features are average-pooled to before the dense head (4).
    """

    kind = "discriminator"

    def __init__(self, spatial_dims: int = 2, in_channels: int = 1, channels: int = 64, n_layers: int = 8,
                 batch_norm: bool = True, dropout: float = 0.0, fc_channels: int = 1024, pool_size: int = 4):
        super().__init__()
        self.spatial_dims = spatial_dims
        self.in_channels = in_channels
        layers: list[nn.Module] = []
        c_in = in_channels
        c_out = channels
        for i in range(n_layers):
            c_out = min(channels * 2 ** (i // 2), channels * 8)
            stride = 2 if i % 2 == 1 else 1
            layers.append(conv(spatial_dims, c_in, c_out, 3, stride=stride, bias=not (batch_norm and i > 0)))
            if i > 0:
                layers.append(norm("batch" if batch_norm else None, spatial_dims, c_out))
            layers += [activation("lrelu"), _dropout(dropout)]
            c_in = c_out
        self.features = nn.Sequential(*layers)
        pool = nn.AdaptiveAvgPool2d(pool_size) if spatial_dims == 2 else nn.AdaptiveAvgPool3d(pool_size)
        self.head = nn.Sequential(
            pool, nn.Flatten(), nn.Linear(c_out * pool_size ** spatial_dims, fc_channels), activation("lrelu"),
            _dropout(dropout), nn.Linear(fc_channels, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class PatchDiscriminator(nn.Module):
    """PatchGAN discriminator with spectral norm.

    Args:
        spatial_dims: 2 or 3.
        in_channels: image channels (1).
        channels: width of the first conv (64), doubled per downsampling up to ``8 * channels``.
        n_down: stride-2 convs (3); the output map is ``input / 2**n_down`` per axis.
        use_spectral_norm: wrap every conv in spectral normalisation (True).
    """

    kind = "discriminator"

    def __init__(self, spatial_dims: int = 2, in_channels: int = 1, channels: int = 64, n_down: int = 3,
                 use_spectral_norm: bool = True):
        super().__init__()
        self.spatial_dims = spatial_dims
        self.in_channels = in_channels
        conv_cls = nn.Conv2d if spatial_dims == 2 else nn.Conv3d
        sn = spectral_norm if use_spectral_norm else (lambda m: m)
        layers: list[nn.Module] = []
        c_in, c_out = in_channels, channels
        for i in range(n_down):
            c_out = min(channels * 2 ** i, channels * 8)
            layers += [sn(conv_cls(c_in, c_out, 4, stride=2, padding=1)), activation("lrelu")]
            c_in = c_out
        c_out = min(c_in * 2, channels * 8)
        layers += [sn(conv_cls(c_in, c_out, 3, padding=1)), activation("lrelu"),
                   sn(conv_cls(c_out, 1, 3, padding=1))]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class Critic3D(nn.Module):
    """WGAN-GP critic with layer norm.

    Args:
        spatial_dims: 3 (default) or 2.
        in_channels: image channels (1).
        channels: width of the first conv (32), doubled at every stride-2 conv up to ``8 * channels``.
        n_layers: convs (8; every second one has stride 2).
        fc_channels: hidden width of the dense head (256).
    """

    kind = "discriminator"

    def __init__(self, spatial_dims: int = 3, in_channels: int = 1, channels: int = 32, n_layers: int = 8,
                 fc_channels: int = 256):
        super().__init__()
        self.spatial_dims = spatial_dims
        self.in_channels = in_channels
        layers: list[nn.Module] = [conv(spatial_dims, in_channels, channels, 3), activation("lrelu")]
        c_in = channels
        for i in range(1, n_layers):
            c_out = min(channels * 2 ** ((i + 1) // 2), channels * 8)
            layers += [conv(spatial_dims, c_in, c_out, 3, stride=2 if i % 2 == 1 else 1),
                       norm("layer", spatial_dims, c_out), activation("lrelu")]
            c_in = c_out
        self.features = nn.Sequential(*layers)
        pool = nn.AdaptiveAvgPool2d(1) if spatial_dims == 2 else nn.AdaptiveAvgPool3d(1)
        self.head = nn.Sequential(pool, nn.Flatten(), nn.Linear(c_in, fc_channels), activation("lrelu"),
                                  nn.Linear(fc_channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))
