"""Throughput of the PyTorch SSIM (batched) vs scikit-image (one slice at a time) on the same 256x256 slices.

The slices are axial MNI152 slices (nilearn, resampled to 256x256) with a degraded twin (k-space x2 then
zero-fill, plus Rician noise); a synthetic phantom stands in when nilearn is missing. Both implementations
score every slice in float64 and must agree to 1e-6; the ratio is slices/s of PyTorch over scikit-image.

    .venv/bin/python benchmarks/bench_metrics.py                  # 128 slices, uniform 7x7 SSIM, CPU
    .venv/bin/python benchmarks/bench_metrics.py --threads 1 --batch 8  # one thread each (fair on a busy CPU)
    .venv/bin/python benchmarks/bench_metrics.py --gaussian --device cuda --slices 512
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from skimage.metrics import structural_similarity

from mrisr.degrade.baselines import upscale_tensor
from mrisr.degrade.kspace import kspace_truncate
from mrisr.degrade.noise import add_rician
from mrisr.degrade.resample import resize
from mrisr.metrics import ssim


def make_slices(n: int, size: int = 256) -> tuple[np.ndarray, np.ndarray, str]:
    """``n`` reference slices and their degraded twins, float64 ``(n, size, size)``."""
    try:
        from nilearn.datasets import load_mni152_template

        vol = np.asarray(load_mni152_template(resolution=1).get_fdata(), dtype=np.float64)
        ks = np.linspace(40, vol.shape[2] - 40, n).round().astype(int)
        src = torch.from_numpy(np.stack([vol[:, :, k] for k in ks]))[:, None]
        source = "MNI152 axial slices"
    except ImportError:
        from mrisr.data.phantoms import head_phantom

        src = torch.from_numpy(head_phantom((size, size, n)).astype(np.float64)).permute(2, 0, 1)[:, None]
        source = "phantom slices (nilearn missing)"
    ref = resize(src, [size, size], [2, 3], "cubic").clamp(min=0)
    low = kspace_truncate(ref, [2, 2], [2, 3])
    test = add_rician(upscale_tensor(low, 2, "zerofill"), 0.02 * float(ref.max()), np.random.default_rng(0))
    return ref[:, 0].numpy(), test[:, 0].numpy(), source


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--slices", type=int, default=128)
    ap.add_argument("--batch", type=int, default=64, help="slices per PyTorch call")
    ap.add_argument("--gaussian", action="store_true", help="Wang et al.'s Gaussian window (sigma 1.5)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--repeats", type=int, default=3, help="best of N timings")
    ap.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    ref, test, source = make_slices(args.slices)
    dr = float(ref.max() - ref.min())
    kw = {"gaussian_weights": True, "sigma": 1.5, "use_sample_covariance": False} if args.gaussian else {}

    def run_skimage() -> np.ndarray:
        return np.array([structural_similarity(r, t, data_range=dr, **kw) for r, t in zip(ref, test, strict=True)])

    dev = torch.device(args.device)
    tr = torch.from_numpy(ref)[:, None].to(dev)
    tt = torch.from_numpy(test)[:, None].to(dev)

    def run_torch(dtype: torch.dtype) -> np.ndarray:
        with torch.no_grad():
            out = [ssim(tr[i : i + args.batch].to(dtype), tt[i : i + args.batch].to(dtype), dr, args.gaussian)
                   for i in range(0, len(tr), args.batch)]
        if dev.type == "cuda":
            torch.cuda.synchronize()
        return torch.cat(out).double().cpu().numpy()

    def best(fn, *a) -> tuple[float, float, np.ndarray]:
        """Best wall-clock and best CPU (all threads) seconds of ``repeats`` runs, and the values."""
        walls, cpus, res = [], [], None
        for _ in range(args.repeats):
            t0, c0 = time.perf_counter(), time.process_time()
            res = fn(*a)
            walls.append(time.perf_counter() - t0)
            cpus.append(time.process_time() - c0)
        assert res is not None
        return min(walls), min(cpus), res

    run_torch(torch.float64)  # warm-up (kernels, allocator)
    t_sk, c_sk, v_sk = best(run_skimage)
    t_64, c_64, v_64 = best(run_torch, torch.float64)
    t_32, c_32, v_32 = best(run_torch, torch.float32)
    err64 = float(np.abs(v_64 - v_sk).max())
    err32 = float(np.abs(v_32 - v_sk).max())
    n = len(ref)
    window = "Gaussian sigma 1.5 (11 taps)" if args.gaussian else "uniform 7x7"
    print(f"{n} slices 256x256 ({source}), SSIM {window}, device {dev}, torch threads {torch.get_num_threads()}")
    print("                                   wall slices/s  ratio | CPU-s slices/s  ratio | max |diff|")
    print(f"scikit-image (float64, per slice): {n / t_sk:14.1f}      - | {n / c_sk:14.1f}      - |")
    for name, t, c, err in ((f"PyTorch float64 (batch {args.batch})", t_64, c_64, err64),
                            (f"PyTorch float32 (batch {args.batch})", t_32, c_32, err32)):
        print(f"{name:34s} {n / t:14.1f} {t_sk / t:5.2f}x | {n / c:14.1f} {c_sk / c:5.2f}x | {err:.1e}")
    print("(CPU-s: slices per second of CPU time summed over threads; less sensitive to a busy machine)")
    if err64 > 1e-6:
        raise SystemExit(f"float64 PyTorch SSIM differs from scikit-image by {err64:.2e} > 1e-6")


if __name__ == "__main__":
    main()
