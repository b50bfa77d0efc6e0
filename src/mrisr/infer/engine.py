"""Running a 2D network over a stack of slices (the per-batch engine of :func:`mrisr.infer.upscale_with_model`)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn


def run_slices(model: nn.Module, stack: np.ndarray, batch_size: int, device: torch.device,
               progress: Any = None) -> np.ndarray:
    """Run a 2D network over a stack ``(S, a, b)`` of normalised slices -> ``(S, a * f, b * f)``."""
    c = int(getattr(model, "in_channels", 1)) // 2
    n = stack.shape[0]
    fa, fb = getattr(model, "factors")  # noqa: B009
    out = np.empty((n, stack.shape[1] * fa, stack.shape[2] * fb), dtype=np.float32)
    src = torch.from_numpy(np.ascontiguousarray(stack, dtype=np.float32))
    for start in range(0, n, batch_size):
        idx = torch.arange(start, min(start + batch_size, n))
        # (B, C) neighbour indices, clamped at the ends of the stack
        nb = (idx[:, None] + torch.arange(-c, c + 1)[None, :]).clamp(0, n - 1)
        x = src[nb].to(device)
        with torch.inference_mode():
            y = model(x)
        out[start:start + len(idx)] = y[:, 0].float().cpu().numpy()
        if progress is not None:
            progress.update(len(idx))
    return out
