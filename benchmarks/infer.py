"""Inference speed of the default model, all measured in this one process on the same input (issue 12).

Prints, for each slice size (default 512 x 512, and 256 x 256):

* the fp32 matrix-multiply peak of this process (``N x N`` sgemm, best of ``--repeats``), GFLOP/s;
* ``mrisr.infer.upscale_with_model`` (the default model ``kspace-x2``, engine torch) on a synthetic head
  phantom of ``--slices`` slices: seconds, achieved GFLOP/s (the network's FLOPs from
  :func:`mrisr.models.flops.count_flops` x slices / wall time) and that as a % of the matmul peak (target
  >= 60%);
* a plain per-slice PyTorch loop with the same network (batch 1, default memory format, ``no_grad``, no
  other tricks): seconds, and mrisr's speed over it (target >= 1.5x);
* the same ``upscale_with_model`` with ``engine="onnx"`` (ONNX Runtime), and ONNX Runtime's speed over
  PyTorch's;
* optionally (``--batches SIZES``) the network proper alone at batch 1, 4 and 8, once each (what
  :func:`mrisr.infer.engine.choose_batch` is based on);

then the peak RSS of ``mrisr upscale`` on a 512 x 512 x ``--rss-slices`` volume in a child process
(``benchmarks/infer_memory.py``'s table where that file exists). ``upscale_with_model`` does more than the
plain loop: intensity normalisation, the per-scan calibration of the correction (``--no-calibrate`` leaves it
out of the comparison) and the measured k-space band put back in input units; the FLOP count is the
network's convolutions only (FFTs are not counted).

    .venv/bin/python benchmarks/infer.py                      # 24 slices of 512^2 and of 256^2
    .venv/bin/python benchmarks/infer.py --slices 8 --sizes 256 --no-rss --batches 256
    .venv/bin/python benchmarks/infer.py --threads 1          # one thread everywhere (a busy machine)
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mrisr.infer import upscale_with_model
from mrisr.infer.engine import NetworkRunner, choose_threads, onnxruntime_available
from mrisr.io.volume import Volume
from mrisr.models.flops import count_flops
from mrisr.models.modelfile import load_model_file
from mrisr.pretrained import default_model

PEAK_TARGET = 60.0   # % of the matmul peak
LOOP_TARGET = 1.5    # x over the plain loop


def best_of(fn: Callable[[], Any], repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def matmul_peak(n: int, repeats: int) -> float:
    """fp32 GFLOP/s of an ``n x n`` matrix product, best of ``repeats`` (after one warm-up)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    c = torch.empty(n, n)
    torch.mm(a, b, out=c)
    return 2.0 * n ** 3 / best_of(lambda: torch.mm(a, b, out=c), repeats) / 1e9


def phantom(size: int, slices: int) -> Volume:
    """A synthetic head phantom ``(size, size, slices)``, 1 mm voxels, intensities in [0, 1000]."""
    from mrisr.data.phantoms import head_phantom

    data = head_phantom((size, size, slices)).astype(np.float32) * 1000.0
    return Volume(data, np.eye(4), meta={"format": "nifti", "modality": "MR"})


def plain_loop(model: torch.nn.Module, vol: Volume) -> np.ndarray:
    """The reference: one slice at a time through ``model`` (min-max normalised), no tricks."""
    data = vol.data
    lo, hi = float(data.min()), float(data.max())
    out = np.empty((data.shape[0] * 2, data.shape[1] * 2, data.shape[2]), dtype=np.float32)
    with torch.no_grad():
        for k in range(data.shape[2]):
            x = torch.tensor((data[:, :, k] - lo) / max(hi - lo, 1e-6), dtype=torch.float32)[None, None]
            out[:, :, k] = model(x)[0, 0].numpy() * (hi - lo) + lo
    return out


def batch_sweep(model: torch.nn.Module, size: int) -> dict[int, float]:
    """Seconds per slice of the network proper (channels-last, inference mode) at batch 1, 4 and 8."""
    runner = NetworkRunner(model, torch.device("cpu"), engine="torch")
    x = torch.rand(8, 1, size, size)
    res = {}
    for b in (1, 4, 8):
        def run(b: int = b) -> None:
            for i in range(0, 8, b):
                runner.net(x[i:i + b])

        res[b] = best_of(run, 1) / 8
    return res


def child_peak_rss(slices: int, threads: int) -> tuple[float, float]:
    """``(peak RSS MiB, seconds)`` of ``mrisr upscale --scale 2`` on a 512 x 512 x ``slices`` NIfTI in a child."""
    from mrisr.io import write_volume

    with tempfile.TemporaryDirectory() as tmp:
        src = write_volume(phantom(512, slices), Path(tmp) / "in.nii.gz")
        env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "mrisr", "upscale", str(src), str(Path(tmp) / "out.nii.gz"),
                        "--scale", "2"], check=True, env=env, stdout=subprocess.DEVNULL)
        wall = time.perf_counter() - t0
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0, wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--slices", type=int, default=24, help="slices per size (default 24)")
    ap.add_argument("--sizes", default="512,256", help="slice edges, comma-separated (default 512,256)")
    ap.add_argument("--matmul", type=int, default=4096, help="matmul edge N for the peak (default 4096)")
    ap.add_argument("--repeats", type=int, default=3, help="best of this many for the peak and the sweep")
    ap.add_argument("--threads", type=int, help="CPU threads (default: OMP_NUM_THREADS or the CPUs available)")
    ap.add_argument("--no-calibrate", action="store_true", help="upscale_with_model without the per-scan calibration")
    ap.add_argument("--no-onnx", action="store_true", help="skip ONNX Runtime")
    ap.add_argument("--batches", default="", help="slice edges (comma-separated) at which to also time the network "
                    "proper at batch 1, 4 and 8 (default: none)")
    ap.add_argument("--no-rss", action="store_true", help="skip the peak-RSS run")
    ap.add_argument("--rss-slices", type=int, default=300, help="slices of the 512 x 512 RSS volume (default 300)")
    args = ap.parse_args()

    threads = choose_threads(args.threads)
    name = default_model(2)
    model, meta = load_model_file(name)
    plain, _ = load_model_file(name)  # a separate copy: mrisr puts its model's weights channels-last
    onnx = not args.no_onnx and onnxruntime_available()
    print(f"mrisr inference benchmark: model {name} ({meta['arch']}, {meta['args']}), torch {torch.__version__}, "
          f"{threads} thread(s), {args.slices} slices per size, calibrate={not args.no_calibrate}")
    peak = matmul_peak(args.matmul, args.repeats)
    print(f"fp32 matmul peak ({args.matmul}^2 sgemm, best of {args.repeats}): {peak:.1f} GFLOP/s")
    opts: dict[str, Any] = {"calibrate": not args.no_calibrate}
    rows = []
    for size in (int(s) for s in args.sizes.split(",")):
        vol = phantom(size, args.slices)
        _, flops = count_flops(meta["arch"], (1, 1, size, size), **meta["args"])
        upscale_with_model(phantom(size, 1), (model, meta), engine="torch", **opts)  # warm-up
        t_mrisr = best_of(partial(upscale_with_model, vol, (model, meta), engine="torch", **opts), 1)
        t_plain = best_of(partial(plain_loop, plain, vol), 1)
        t_onnx = float("nan")
        if onnx:
            upscale_with_model(phantom(size, 1), (model, meta), engine="onnx", **opts)  # export + warm-up
            t_onnx = best_of(partial(upscale_with_model, vol, (model, meta), engine="onnx", **opts), 1)
        gflops = flops * args.slices / t_mrisr / 1e9
        rows.append((size, t_mrisr, gflops, 100 * gflops / peak, t_plain, t_plain / t_mrisr, t_onnx,
                     t_mrisr / t_onnx))
        if str(size) in args.batches.split(","):
            sweep = batch_sweep(model, size)
            print(f"  {size}^2 network proper, s/slice: " + ", ".join(f"batch {b}: {s:.3f}" for b, s in sweep.items()))
    print()
    print(f"{'slice':>7} {'mrisr s':>8} {'GFLOP/s':>8} {'% peak':>7} {'plain s':>8} {'x plain':>8} "
          f"{'onnx s':>8} {'onnx/torch':>10}")
    for size, tm, gf, pct, tp, ratio, to, oratio in rows:
        print(f"{size:>5}^2 {tm:8.2f} {gf:8.1f} {pct:6.1f}% {tp:8.2f} {ratio:7.2f}x {to:8.2f} {oratio:9.2f}x")
    print()
    for size, _tm, _gf, pct, _tp, ratio, _to, oratio in rows:
        print(f"{size}^2: % of matmul peak {pct:.1f}% (target >= {PEAK_TARGET:.0f}%): "
              f"{'PASS' if pct >= PEAK_TARGET else 'MISS'}; vs plain loop {ratio:.2f}x (target >= {LOOP_TARGET}x): "
              f"{'PASS' if ratio >= LOOP_TARGET else 'MISS'}"
              + (f"; ONNX Runtime {oratio:.2f}x PyTorch's speed ({'faster' if oratio > 1 else 'slower'})"
                 if onnx else "; ONNX Runtime not installed"))
    if args.no_rss:
        return
    print()
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    try:
        from infer_memory import format_table, peak_rss_table  # type: ignore[import-not-found]
    except ImportError:
        rss, wall = child_peak_rss(args.rss_slices, threads)
        print(f"peak RSS, mrisr upscale --scale 2 on 512 x 512 x {args.rss_slices} in a child process: "
              f"{rss:.0f} MiB ({wall:.0f} s; output alone {512 * 512 * 4 * args.rss_slices * 4 / 2**20:.0f} MiB "
              "float32)")
    else:
        print(f"peak RSS of mrisr upscale --model {name} --scale 2 in a child process (benchmarks/infer_memory.py):")
        print(format_table(peak_rss_table((512, 512, args.rss_slices), 2, [name])))


if __name__ == "__main__":
    main()
