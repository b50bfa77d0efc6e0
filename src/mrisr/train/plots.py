"""Figures of a run: loss curves (G and D vs epoch) and validation sample grids.

Matplotlib's Agg backend only (no display); figures are written atomically.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from torch import Tensor

from mrisr.io.atomic import atomic_write


def _pyplot():  # type: ignore[no-untyped-def]
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def epoch_means(xs: np.ndarray, ys: np.ndarray) -> list[tuple[float, float]]:
    """Per-epoch means of logged values at fractional epochs ``xs`` (a value logged at x averages the
    steps just before x, so x in (e, e + 1] belongs to epoch e). Each mean is placed at the epoch's end,
    or at its last logged point while the epoch is incomplete."""
    epoch = np.maximum(np.ceil(xs - 1e-9).astype(int) - 1, 0)
    out = []
    for e in np.unique(epoch):
        sel = epoch == e
        end = float(xs[sel].max())
        out.append((float(e + 1) if end >= e + 1 - 1e-9 else end, float(ys[sel].mean())))
    return out


def plot_losses(rows: Sequence[tuple[float, str, float]], out_dir: Path) -> list[Path]:
    """``rows``: (epoch, loss name, value) of the training log. Writes ``losses_generator.png`` (``g_*``)
    and ``losses_discriminator.png`` (``d_*``) with one line per loss: the logged values against the
    (fractional) epoch, and their per-epoch means as markers, as both studies plotted them."""
    plt = _pyplot()
    written = []
    for prefix, title, fname in (("g_", "generator", "losses_generator.png"),
                                 ("d_", "discriminator", "losses_discriminator.png")):
        series: dict[str, list[tuple[float, float]]] = defaultdict(list)
        for epoch, name, value in rows:
            if name.startswith(prefix) and np.isfinite(value):
                series[name].append((epoch, value))
        if not series:
            continue
        fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
        for name, pts in sorted(series.items()):
            xs, ys = np.array(pts).T
            (line,) = ax.plot(xs, ys, label=name, linewidth=1)
            ax.plot(*np.array(epoch_means(xs, ys)).T, "o", color=line.get_color(), markersize=3)
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss")
        ax.set_title(f"{title} losses")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        fig.tight_layout()
        path = out_dir / fname
        atomic_write(path, functools.partial(fig.savefig, format="png"), force=True)
        plt.close(fig)
        written.append(path)
    return written


@dataclass
class GridRow:
    """One validation sample for the figure: 2D images ``(H, W)`` (3D: the middle slice)."""

    lr: np.ndarray
    baseline: np.ndarray
    sr: np.ndarray
    hr: np.ndarray
    label: str


def middle_slice(x: Tensor) -> np.ndarray:
    """``(C, H, W)`` or, for 3D samples in volume order, ``(C, H, W, S)`` -> the centre channel's in-plane
    2D slice ``(H, W)`` (the middle one along the slice axis, the last) as float32."""
    a = x.detach().float().cpu().numpy()
    a = a[a.shape[0] // 2]
    while a.ndim > 2:
        a = a[..., a.shape[-1] // 2]
    return a


def _to_rgb(img: np.ndarray, vmax: float, size: tuple[int, int], cmap: str | None = None) -> Image.Image:
    """A float image scaled to [0, vmax] as an RGB tile of ``size`` (W, H), nearest-neighbour enlarged."""
    x = np.clip(np.nan_to_num(img / max(vmax, 1e-12)), 0.0, 1.0)
    if cmap is None:
        rgb = np.repeat((x * 255 + 0.5).astype(np.uint8)[..., None], 3, axis=2)
    else:
        import matplotlib

        rgb = (matplotlib.colormaps[cmap](x)[..., :3] * 255 + 0.5).astype(np.uint8)
    return Image.fromarray(rgb).resize(size, Image.Resampling.NEAREST)


def sample_grid(rows: Sequence[GridRow], path: Path, baseline_name: str, data_range: float = 1.0) -> Path:
    """Columns LR | baseline | SR | HR | abs(SR - HR) (error in the magma colour map, scaled to its
    maximum, which is printed); LR shown enlarged (nearest) to the HR field. One row per sample."""
    tile = max(96, max(max(r.hr.shape) for r in rows))
    pad, head = 4, 14
    cols = ("LR", baseline_name, "SR", "HR", "|SR - HR|")
    width = 5 * (tile + pad) + pad
    height = head + len(rows) * (tile + head + pad) + pad
    canvas = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    for c, name in enumerate(cols):
        draw.text((pad + c * (tile + pad) + 2, 1), name, fill=(0, 0, 0))
    for r, row in enumerate(rows):
        h, w = row.hr.shape
        size = (round(tile * w / max(h, w)), round(tile * h / max(h, w)))
        err = np.abs(row.sr - row.hr)
        emax = float(err.max()) if err.size else 0.0
        y = head + r * (tile + head + pad)
        draw.text((pad + 2, y + 1), f"{row.label}   max error {emax:.3g}", fill=(0, 0, 0))
        tiles = [_to_rgb(row.lr, data_range, size), _to_rgb(row.baseline, data_range, size),
                 _to_rgb(row.sr, data_range, size), _to_rgb(row.hr, data_range, size),
                 _to_rgb(err, emax, size, cmap="magma")]
        for c, t in enumerate(tiles):
            canvas.paste(t, (pad + c * (tile + pad), y + head))
    atomic_write(path, lambda p: canvas.save(p, format="PNG"), force=True)
    return path
