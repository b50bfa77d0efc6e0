"""Perceptual (VGG19 feature) loss, as used by SRGAN/ESRGAN and the cardiac study.

The network is torchvision's ``vgg19().features`` rebuilt with plain ``torch.nn`` in exactly the same
layout (state-dict keys ``features.0.weight``, ``features.0.bias``, ``features.2.weight``, ...), so the
ImageNet weights torchvision publishes load unchanged. **Nothing is downloaded**: the weights come from a
local file, given as ``weights_path`` or by the environment variable ``MRISR_VGG19_WEIGHTS``:

* a ``.safetensors`` file, or
* a PyTorch checkpoint of the state dict, read with ``torch.load(..., weights_only=True)`` (no code runs).

To make one on a machine with torchvision and internet::

    python -c "import torch, torchvision; torch.save(torchvision.models.vgg19(weights='IMAGENET1K_V1')\\
.state_dict(), 'vgg19.pth')"

Single-channel MR input is repeated to three channels and normalised with the ImageNet mean/std after
mapping ``input_range`` to [0, 1]. 3D input ``(N, C, D, H, W)`` is treated as ``N * D`` slices.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from mrisr.errors import ConfigError, InputError
from mrisr.io.messages import one_line

VGG19_WEIGHTS_ENV = "MRISR_VGG19_WEIGHTS"
#: torchvision's configuration "E" (VGG19): channels of each 3x3 conv, "M" for a 2x2 max pool.
VGG19_CFG: tuple[int | str, ...] = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M",
                                    512, 512, 512, 512, "M", 512, 512, 512, 512, "M")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def vgg19_layer_names() -> list[str]:
    """Names of the modules of ``features`` in order: conv1_1, relu1_1, conv1_2, relu1_2, pool1, conv2_1, ..."""
    names, block, i = [], 1, 1
    for v in VGG19_CFG:
        if v == "M":
            names.append(f"pool{block}")
            block, i = block + 1, 1
        else:
            names += [f"conv{block}_{i}", f"relu{block}_{i}"]
            i += 1
    return names


def vgg19_features(upto: int | None = None) -> nn.Sequential:
    """torchvision's ``vgg19().features`` layout (optionally only modules ``0..upto``), random init.

    ReLUs are not in-place so that pre-activation (conv) features can be read.
    """
    layers: list[nn.Module] = []
    c_in = 3
    for v in VGG19_CFG:
        if v == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers += [nn.Conv2d(c_in, int(v), kernel_size=3, padding=1), nn.ReLU(inplace=False)]
            c_in = int(v)
    if upto is not None:
        layers = layers[: upto + 1]
    return nn.Sequential(*layers)


def _load_state_dict(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise InputError(f"VGG19 weights file {path} does not exist")
    with open(path, "rb") as fh:
        head = fh.read(9)
    if path.suffix == ".safetensors" or head[8:9] == b"{":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except (SafetensorError, OSError, ValueError) as exc:
            raise InputError(f"{path} is not a valid safetensors file: {one_line(exc)}") from exc
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise InputError(f"cannot read VGG19 weights from {path} as a weights-only checkpoint: {one_line(exc)}") from exc
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise InputError(f"{path} does not hold a state dict")
    return state


def resolve_vgg19_weights(weights_path: str | os.PathLike[str] | None) -> Path:
    """The weights file from the argument or ``$MRISR_VGG19_WEIGHTS``; a clear error when neither is set."""
    ref = weights_path if weights_path is not None else os.environ.get(VGG19_WEIGHTS_ENV)
    if not ref:
        raise ConfigError(
            "the VGG19 feature loss needs ImageNet-trained VGG19 weights in torchvision's state-dict layout; "
            f"mrisr downloads nothing. Give a local file (.safetensors or a weights-only .pth) as weights_path "
            f"(config: the perceptual loss's weights) or set {VGG19_WEIGHTS_ENV}=/path/to/vgg19.pth. "
            "Make it where torchvision is available: torch.save(torchvision.models.vgg19("
            "weights='IMAGENET1K_V1').state_dict(), 'vgg19.pth')")
    return Path(ref).expanduser()


def load_vgg19_features(weights_path: str | os.PathLike[str] | None = None, upto: int | None = None) -> nn.Sequential:
    """``vgg19_features(upto)`` with weights from a local file (keys ``features.N.*`` or ``N.*``)."""
    path = resolve_vgg19_weights(weights_path)
    state = _load_state_dict(path)
    feats = vgg19_features(upto)
    wanted = feats.state_dict()
    picked = {}
    for key in wanted:
        for cand in (f"features.{key}", key, f"module.features.{key}"):
            if cand in state:
                picked[key] = state[cand]
                break
        else:
            raise InputError(f"{path} lacks VGG19 weight {'features.' + key!r} (torchvision layout expected)")
        if tuple(picked[key].shape) != tuple(wanted[key].shape):
            raise InputError(f"{path}: {key} has shape {tuple(picked[key].shape)}, "
                             f"expected {tuple(wanted[key].shape)} (is this VGG19?)")
    feats.load_state_dict({k: v.float() for k, v in picked.items()})
    return feats


class VGG19FeatureLoss(nn.Module):
    """Distance between VGG19 features of prediction and target.

    Args:
        weights_path: local weights file; default ``$MRISR_VGG19_WEIGHTS`` (see module docstring).
        layers: feature layers by name (``"conv5_4"`` = ESRGAN's, before the activation; ``"relu5_4"`` =
            SRGAN's VGG54; ``"relu2_2"`` = VGG22 ...).
        layer_weights: one weight per layer (default 1 each).
        criterion: ``"l1"`` or ``"mse"``.
        input_range: intensity range of the inputs, mapped to [0, 1] before ImageNet normalisation.
    """

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, weights_path: str | os.PathLike[str] | None = None, layers: Sequence[str] = ("conv5_4",),
                 layer_weights: Sequence[float] | None = None, criterion: str = "l1",
                 input_range: tuple[float, float] = (0.0, 1.0)):
        super().__init__()
        names = vgg19_layer_names()
        layers = [layers] if isinstance(layers, str) else list(layers)
        unknown = [n for n in layers if n not in names]
        if unknown or not layers:
            raise ConfigError(f"unknown VGG19 layer(s) {unknown or layers}; known: {', '.join(names)}")
        if criterion not in ("l1", "mse"):
            raise ConfigError(f"perceptual criterion must be 'l1' or 'mse', got {criterion!r}")
        self.layers = layers
        self.indices = [names.index(n) for n in layers]
        self.layer_weights = [1.0] * len(layers) if layer_weights is None else [float(w) for w in layer_weights]
        if len(self.layer_weights) != len(layers):
            raise ConfigError("need one layer weight per VGG19 layer")
        self.criterion = criterion
        self.input_range = (float(input_range[0]), float(input_range[1]))
        self.features = load_vgg19_features(weights_path, upto=max(self.indices))
        self.features.requires_grad_(False)
        self.features.eval()
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def train(self, mode: bool = True) -> VGG19FeatureLoss:
        super().train(mode)
        self.features.eval()  # a fixed feature extractor
        return self

    def _prepare(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim == 5:  # (N, C, D, H, W) -> (N * D, C, H, W)
            x = x.transpose(1, 2).reshape(-1, x.shape[1], x.shape[3], x.shape[4])
        if x.ndim != 4:
            raise ValueError(f"expected (N, C, H, W) or (N, C, D, H, W), got {tuple(x.shape)}")
        if x.shape[1] == 1:
            x = x.repeat(1, 3, 1, 1)
        elif x.shape[1] != 3:
            raise ValueError(f"expected 1 or 3 channels, got {x.shape[1]}")
        lo, hi = self.input_range
        x = (x - lo) / (hi - lo)
        return (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)

    def extract(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Features at ``self.layers`` for an input batch."""
        out: dict[int, torch.Tensor] = {}
        h = self._prepare(x)
        for i, module in enumerate(self.features):
            h = module(h)
            if i in self.indices:
                out[i] = h
        return [out[i] for i in self.indices]

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        fp = self.extract(pred)
        with torch.no_grad():
            ft = self.extract(target)
        dist = F.l1_loss if self.criterion == "l1" else F.mse_loss
        return sum((w * dist(a, b) for w, a, b in zip(self.layer_weights, fp, ft, strict=True)),
                   start=torch.zeros((), device=pred.device, dtype=pred.dtype))
