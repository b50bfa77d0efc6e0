"""Running a 3D network over a volume in overlapping patches (used by :func:`mrisr.infer.upscale_with_model`)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn


def patch_starts(n: int, p: int, step: int) -> list[int]:
    if n <= p:
        return [0]
    s = list(range(0, n - p, step))
    return [*s, n - p]


def run_patches(model: nn.Module, vol: np.ndarray, patch_size: int, overlap: int, batch_size: int,
                device: torch.device, progress: Any = None) -> np.ndarray:
    """Run a 3D network over a normalised ``(A, B, C)`` array in overlapping patches (central parts kept)."""
    f = tuple(int(v) for v in getattr(model, "factors"))  # noqa: B009
    p = [min(patch_size, n) for n in vol.shape]
    if overlap < 0 or overlap >= min(p):
        overlap = max(0, min(p) - 1) if overlap >= min(p) else 0
    half = overlap // 2
    grids = [patch_starts(n, pp, max(1, pp - overlap)) for n, pp in zip(vol.shape, p, strict=True)]
    out_shape = tuple(n * k for n, k in zip(vol.shape, f, strict=True))
    acc = np.zeros(out_shape, dtype=np.float32)
    wsum = np.zeros(out_shape, dtype=np.float32)
    src = torch.from_numpy(np.ascontiguousarray(vol, dtype=np.float32))
    corners = [(a, b, c) for a in grids[0] for b in grids[1] for c in grids[2]]
    for i in range(0, len(corners), batch_size):
        chunk = corners[i:i + batch_size]
        x = torch.stack([src[a:a + p[0], b:b + p[1], c:c + p[2]] for a, b, c in chunk])[:, None].to(device)
        with torch.inference_mode():
            y = model(x)[:, 0].float().cpu().numpy()
        for (a, b, c), patch in zip(chunk, y, strict=True):
            region = []
            inner = []
            for s, pp, n, k in zip((a, b, c), p, vol.shape, f, strict=True):
                lo = half if s > 0 else 0
                hi = half if s + pp < n else 0
                region.append(slice((s + lo) * k, (s + pp - hi) * k))
                inner.append(slice(lo * k, (pp - hi) * k))
            acc[tuple(region)] += patch[tuple(inner)]
            wsum[tuple(region)] += 1.0
        if progress is not None:
            progress.update(len(chunk))
    return acc / np.maximum(wsum, 1.0)
