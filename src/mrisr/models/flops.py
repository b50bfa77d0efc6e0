"""Parameter and FLOP counts of networks, measured with ``torch.utils.flop_counter.FlopCounterMode``.

Counts run on the ``meta`` device (no memory, no arithmetic), so even large inputs are instant. As in
PyTorch's counter, one multiply-add is 2 FLOPs and only convolutions and matrix products are counted
(activations, pixel shuffles and a residual baseline's interpolation are not).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from mrisr.models.registry import build_model


def count_flops(name: str, input_shape: Sequence[int], **kwargs: Any) -> tuple[int, int]:
    """``(parameters, FLOPs)`` of one forward pass of ``build_model(name, **kwargs)`` on ``input_shape``
    (``(N, C, *spatial)``)."""
    with torch.device("meta"):
        model = build_model(name, **kwargs)
    model.eval()
    params = sum(p.numel() for p in model.parameters())
    x = torch.empty(*input_shape, device="meta")
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(x)
    return int(params), int(counter.get_total_flops())


def flops_per_output_pixel(name: str, scale: int, lr_size: Sequence[int] = (64, 64), **kwargs: Any) -> float:
    """FLOPs per output pixel of a 2D generator at ``scale`` (input ``lr_size``)."""
    _, flops = count_flops(name, (1, kwargs.get("in_channels", 1), *lr_size), scale=scale, **kwargs)
    out_pixels = 1
    for n in lr_size:
        out_pixels *= n * scale
    return flops / out_pixels


def model_flops_per_output_pixel(metadata: Mapping[str, Any]) -> float:
    """FLOPs per output pixel of the 2D generator a model file describes (its ``arch``, ``scale`` and ``args``,
    as :func:`mrisr.models.modelfile.read_model_metadata` returns them)."""
    args = {k: v for k, v in metadata["args"].items() if k != "scale"}
    return flops_per_output_pixel(str(metadata["arch"]), int(metadata["scale"]), **args)
