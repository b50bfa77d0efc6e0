"""Where a k-space model gains or loses per held-out case, and what the per-scan calibration sees of it.

For each held-out case (:func:`mrisr.data.heldout.write_heldout_cases`: 2D slabs, slices along the last
axis), the case is k-space degraded by the model's factor and upscaled by the network alone (no
calibration), and this prints:

* PSNR of zero-fill and the network's PSNR gain over it (whole slices, data range of the reference; a
  simpler score than ``mrisr evaluate --mask auto``, so the figures differ from the model cards);
* the gains of the per-scan calibration (:func:`mrisr.infer.calibrate.residual_gain`): one more
  degradation by the model's own factor ("coarse"), the first octave above the scan's band ("octave",
  :func:`mrisr.infer.calibrate.octave_gain`, even factors of 4 and more) and the one used (the smaller),
  and the best ``g`` in hindsight (grid of 0.05 on the output ``zero-fill + g (network - zero-fill)``);
* the network's error energy divided by zero-fill's in the unmeasured frequency bands of the output grid (max-norm of the
  frequency, in cycles per output voxel): below 1 the network is closer to the truth in that band.

    .venv/bin/python benchmarks/calibration.py kspace-x4 [--cases colin27_1mm_axial ...]
"""

from __future__ import annotations

import argparse
import itertools
import tempfile
from pathlib import Path

import numpy as np
import torch

from mrisr.data.heldout import write_heldout_cases
from mrisr.data.normalise import fit_intensity_map
from mrisr.degrade.kspace import kspace_truncate, zerofill_upsample
from mrisr.infer.calibrate import residual_gain
from mrisr.infer.engine import run_slices
from mrisr.io import read_volume
from mrisr.metrics.image import psnr as image_psnr
from mrisr.models.modelfile import load_model_file

CPU = torch.device("cpu")


def psnr(x: np.ndarray, ref: np.ndarray, data_range: float) -> float:
    """PSNR of a whole stack of slices (:func:`mrisr.metrics.image.psnr` over one sample)."""
    return float(image_psnr(torch.from_numpy(np.asarray(x, np.float64))[None], torch.from_numpy(ref)[None],
                            data_range)[0])


def band_ratios(out: np.ndarray, zf: np.ndarray, ref: np.ndarray, edges: list[float]) -> list[float]:
    ka = np.abs(np.fft.fftfreq(ref.shape[1]))[:, None]
    kb = np.abs(np.fft.fftfreq(ref.shape[2]))[None, :]
    k = np.maximum(ka, kb)
    e_out = (np.abs(np.fft.fft2(out - ref)) ** 2).sum(0)
    e_zf = (np.abs(np.fft.fft2(zf - ref)) ** 2).sum(0)
    ratios = []
    for lo, hi in itertools.pairwise(edges):
        band = (k >= lo) & (k < hi)
        ratios.append(float(e_out[band].sum() / max(e_zf[band].sum(), 1e-30)))
    return ratios


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", help="a shipped k-space model name or a model file")
    ap.add_argument("--cases", nargs="*", help="case names (default: all)")
    ap.add_argument("--slab", type=int, default=8)
    args = ap.parse_args()
    torch.set_num_threads(1)
    module, meta = load_model_file(args.model)
    module.eval()
    f = int(module.scale)
    edges = sorted({e for e in (0.5 / f, 1.0 / f, 0.25, 0.375) if e < 0.5} | {0.51})  # beyond the measured band
    cases = Path(tempfile.mkdtemp(prefix="calibration-")) / "heldout"
    write_heldout_cases(cases, args.slab)
    names = args.cases or sorted(p.name.split(".")[0] for p in cases.iterdir())
    head = "  ".join(f"{lo:.3f}-{min(hi, 0.5):.3f}" for lo, hi in itertools.pairwise(edges))
    print(f"{args.model} (x{f}); error energy vs zero-fill per band (cycles/voxel): {head}")
    for name in names:
        found = sorted(cases.glob(f"{name}.*"))
        if not found:
            print(f"{name}: not among the held-out cases here")
            continue
        ref = read_volume(found[0]).data.astype(np.float64)
        ref = ref[..., None] if ref.ndim == 2 else ref
        a, b = ref.shape[0] // f * f, ref.shape[1] // f * f
        ref = np.moveaxis(ref[:a, :b], 2, 0)  # (slices, a, b)
        lr = kspace_truncate(torch.from_numpy(ref)[:, None], [f, f], [2, 3])[:, 0]
        imap = fit_intensity_map(lr.float().numpy(), meta["normalisation"])
        x = imap.forward(lr.float().numpy())
        g_cal, rec = residual_gain(module, [x], meta, CPU)
        g_coarse, g_oct = rec.get("coarse_gain", g_cal), rec.get("octave_gain")
        out = np.maximum(imap.inverse(run_slices(module, np.ascontiguousarray(x), 8, CPU)), 0).astype(np.float64)
        zf = zerofill_upsample(lr, [f, f], [1, 2]).numpy()
        rng = float(ref.max() - ref.min())
        base = psnr(zf, ref, rng)
        grid = np.linspace(0, 1, 21)
        best = grid[int(np.argmax([psnr(np.maximum(zf + g * (out - zf), 0), ref, rng) for g in grid]))]
        oct_txt = "  -  " if g_oct is None else f"{g_oct:.2f}"
        ratios = "  ".join(f"{r:11.3f}" for r in band_ratios(out, zf, ref, edges))
        print(f"{name:28s} zero-fill {base:6.2f} dB  network {psnr(out, ref, rng) - base:+.2f} dB  "
              f"g: coarse {g_coarse:.2f}  octave {oct_txt}  used {g_cal:.2f}  hindsight {best:.2f}  |  {ratios}",
              flush=True)


if __name__ == "__main__":
    main()
