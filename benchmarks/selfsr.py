"""Self-supervised through-plane SR (`mrisr selfsr`) on the MNI152 T1 against cubic interpolation.

Issue 11's acceptance: simulate thick slices along axis 2 (superior-inferior) of the 1 mm MNI152 2009 T1
(nilearn): 4 mm and 6 mm Gaussian slices (FWHM = thickness, no gap) and 4 mm slices every 5 mm (1 mm gap);
run ``mrisr selfsr`` on each with a wall-clock budget (default 10 min, CPU), and score PSNR / SSIM over the
foreground (Otsu of the truth) against the truth on its 1 mm grid, for selfsr and for two cubic
interpolations onto the same grid: mrisr's cubic (Keys, a = -0.5; the ``bicubic`` baseline, also selfsr's
starting point) and scipy's cubic B-spline (``ndimage.zoom(order=3)``, usually the stronger). PASS needs
>= +2 dB PSNR over the better cubic at 4 mm and a higher SSIM than both at every setting. Prints the table,
the training steps each run reached, and writes a sagittal figure strip (cubic | selfsr | truth, one row per
setting). ``--real`` also runs selfsr on a real 2 x 2 x 3 mm scan with no ground truth (ITK's
KmeansTest_T1UCharRaw, Debian insighttoolkit5-examples) and draws cubic | selfsr through-plane.

    .venv/bin/python benchmarks/selfsr.py                            # the acceptance run (30+ min)
    .venv/bin/python benchmarks/selfsr.py --budget 1 --settings 4mm  # a quick look
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from mrisr.data.sources import check_not_reserved, find_sources
from mrisr.degrade.grid import crop_to_multiple, resampled_volume
from mrisr.degrade.resample import resample_axis
from mrisr.degrade.slice_profile import thick_slices
from mrisr.io import read_volume, write_volume
from mrisr.io.volume import Volume
from mrisr.metrics.masks import foreground_mask
from mrisr.metrics.volume import score_arrays

#: name -> (slice spacing mm, slice thickness mm) on the 1 mm grid
SETTINGS: dict[str, tuple[int, float]] = {"4mm": (4, 4.0), "6mm": (6, 6.0), "4mm_gap1": (5, 4.0)}
REAL_SCAN = Path("/usr/share/doc/insighttoolkit5-examples/examples/Data/KmeansTest_T1UCharRaw.nii.gz")


def thick_version(truth: Volume, spacing: int, thickness: float) -> tuple[Volume, Volume]:
    """``(truth cropped to a multiple of spacing along axis 2, its thick-slice acquisition)``."""
    truth = crop_to_multiple(truth, [1, 1, spacing])
    t = torch.from_numpy(truth.data)[None, None]
    data = thick_slices(t, spacing, 4, thickness)[0, 0].numpy()
    return truth, resampled_volume(truth, data, [1, 1, 1 / spacing], {"op": "degrade", "method": "slice"})


def run_selfsr(lr_path: Path, out_path: Path, budget: float, gap: float, threads: int) -> tuple[int, float, str]:
    """``mrisr selfsr`` as a user runs it; returns (training steps, wall seconds, its last stdout line)."""
    cmd = [sys.executable, "-m", "mrisr", "selfsr", str(lr_path), str(out_path), "--budget", f"{budget:g}",
           "--seed", "0", "--quiet", "--force"]
    if gap:
        cmd += ["--gap", f"{gap:g}"]
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    t0 = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    wall = time.monotonic() - t0
    if proc.returncode:
        raise SystemExit(f"selfsr failed ({proc.returncode}): {proc.stderr.strip()}")
    line = proc.stdout.strip().splitlines()[-1]
    found = re.search(r"selfsr, (\d+) steps", line)
    return (int(found.group(1)) if found else -1), wall, line


def memory_check(work: Path, threads: int) -> dict[str, float]:
    """Peak memory of ``mrisr selfsr --steps 20`` on a 512 x 512 x 60 scan (0.45 x 0.45 x 4 mm -> 533 slices):
    a 60 x 60 in-plane object on zero background, so that only the slices through it run the network (the
    run takes minutes, not hours, on a CPU) while every array is full size. Peak RSS of the child process."""
    import resource

    data = np.zeros((512, 512, 60), np.float32)
    rng = np.random.default_rng(0)
    data[226:286, 226:286] = 100.0 + 50.0 * rng.random((60, 60, 60), dtype=np.float32)
    vol = Volume(data, np.diag([0.45, 0.45, 4.0, 1.0]))
    src = write_volume(vol, work / "big_512x512x60.nii.gz", force=True)
    cmd = [sys.executable, "-m", "mrisr", "selfsr", str(src), str(work / "big_selfsr.nii"), "--steps", "20",
           "--quiet", "--force"]
    t0 = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, OMP_NUM_THREADS=str(threads)),
                          check=False)
    if proc.returncode:
        raise SystemExit(f"selfsr failed: {proc.stderr.strip()}")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024.0  # Linux: KiB
    out_bytes = 512 * 512 * round(60 * 4.0 / 0.45) * 4.0
    return {"peak_rss_mb": peak / 2**20, "output_mb": out_bytes / 2**20, "input_mb": data.nbytes / 2**20,
            "peak_over_output": peak / out_bytes, "wall_s": time.monotonic() - t0}


def reuse_or_run(record: Path, reuse: bool, run: Callable[[], tuple[int, float, str]]) -> tuple[int, float, str]:
    """``run()`` and keep its (steps, wall s, stdout line) in ``record``; with ``reuse``, read them from there
    (the selfsr output next to it is scored again, not recomputed)."""
    if reuse and record.is_file():
        r = json.loads(record.read_text())
        return int(r["steps"]), float(r["wall_s"]), str(r["line"])
    steps, wall, line = run()
    record.write_text(json.dumps({"steps": steps, "wall_s": wall, "line": line}) + "\n")
    return steps, wall, line


def spline_cubic(lr: np.ndarray, n: int) -> np.ndarray:
    """scipy's cubic B-spline along axis 2 onto ``n`` voxels, same field of view (``grid_mode``)."""
    from scipy import ndimage

    out = ndimage.zoom(lr, (1, 1, n / lr.shape[2]), order=3, mode="grid-mirror", grid_mode=True)
    assert out.shape[2] == n, out.shape
    return out.astype(np.float32)


def sagittal(data: np.ndarray, x: int) -> np.ndarray:
    """The sagittal plane ``x`` of a RAS volume, superior up."""
    return np.asarray(data[x]).T[::-1]


def figure(rows: list[tuple[str, list[tuple[str, np.ndarray]]]], path: Path, vmax: float) -> None:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    ncol = len(rows[0][1])
    fig, axes = plt.subplots(len(rows), ncol, figsize=(2.6 * ncol, 2.4 * len(rows)), squeeze=False)
    for r, (label, panels) in enumerate(rows):
        for c, (title, img) in enumerate(panels):
            ax = axes[r][c]
            ax.imshow(img, cmap="gray", vmin=0, vmax=vmax, interpolation="nearest", aspect="equal")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(title, fontsize=8)
            if c == 0:
                ax.set_ylabel(label, fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--budget", type=float, default=10.0, help="minutes per selfsr run (default 10)")
    ap.add_argument("--settings", default=",".join(SETTINGS), help=f"comma list of {', '.join(SETTINGS)}")
    ap.add_argument("--threads", type=int, default=1, help="OMP_NUM_THREADS of each run (default 1)")
    ap.add_argument("--figure", default="docs/figures/selfsr_mni_sagittal.png")
    ap.add_argument("--real", action="store_true", help="also run the real 2 x 2 x 3 mm scan (no ground truth)")
    ap.add_argument("--real-budget", type=float, default=3.0, help="minutes for the real scan (default 3)")
    ap.add_argument("--real-figure", default="docs/figures/selfsr_itk_t1_real.png")
    ap.add_argument("--reuse", action="store_true", help="score the selfsr outputs of an earlier run in --out again "
                    "(their run_*.json records) instead of running selfsr")
    ap.add_argument("--memory", action="store_true", help="only the memory check on a 512 x 512 x 60 scan")
    ap.add_argument("--out", default=None, help="folder for the volumes and results.json (default: a temp folder)")
    args = ap.parse_args()

    if args.memory:
        work = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="selfsr-mem-"))
        work.mkdir(parents=True, exist_ok=True)
        mem = memory_check(work, args.threads)
        print(f"512 x 512 x 60 at 0.45 x 0.45 x 4 mm -> 512 x 512 x 533: peak RSS {mem['peak_rss_mb']:.0f} MB = "
              f"{mem['peak_over_output']:.2f} x the float32 output ({mem['output_mb']:.0f} MB; input "
              f"{mem['input_mb']:.0f} MB), {mem['wall_s']:.0f} s wall")
        return
    names = [s.strip() for s in args.settings.split(",") if s.strip()]
    bad = [n for n in names if n not in SETTINGS]
    if bad:
        raise SystemExit(f"unknown setting(s) {bad}; known: {', '.join(SETTINGS)}")
    found = [s for s in find_sources() if s.name == "mni152_t1"]
    if not found or found[0].path is None:
        raise SystemExit("the MNI152 T1 is not installed (pip install nilearn)")
    work = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="selfsr-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    mni = read_volume(check_not_reserved(found[0].path))
    print(f"MNI152 T1 {mni.shape} at {' x '.join(f'{s:g}' for s in mni.spacing)} mm; budget {args.budget:g} min per "
          f"run, {args.threads} thread(s); {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}; work folder {work}")
    results, rows = [], []
    for name in names:
        spacing, thickness = SETTINGS[name]
        truth, lr = thick_version(mni, spacing, thickness)
        lr_path = write_volume(lr, work / f"mni_{name}.nii.gz", force=True)
        out_path = work / f"mni_{name}_selfsr.nii.gz"
        load0 = os.getloadavg()[0]
        steps, wall, line = reuse_or_run(work / f"run_{name}.json", args.reuse, functools.partial(
            run_selfsr, lr_path, out_path, args.budget, spacing - thickness, args.threads))
        sr = read_volume(out_path)
        affine_err = float(np.abs(sr.affine - truth.affine).max())
        assert sr.shape == truth.shape, (sr.shape, truth.shape)
        n = truth.shape[2]
        keys = resample_axis(torch.from_numpy(lr.data), 2, n, "cubic").numpy()
        spline = spline_cubic(lr.data, n)
        mask = foreground_mask(truth.data)
        scores = {m: score_arrays(truth.data, x, mask) for m, x in (("cubic", keys), ("spline", spline),
                                                                    ("selfsr", sr.data))}
        row = {"setting": name, "spacing_mm": spacing, "thickness_mm": thickness, "gap_mm": spacing - thickness,
               "steps": steps, "wall_s": round(wall, 1), "budget_min": args.budget, "load_at_start": round(load0, 1),
               "affine_max_abs_diff_vs_truth": affine_err, "selfsr_stdout": line}
        for m, s in scores.items():
            row[f"{m}_psnr"], row[f"{m}_ssim"] = float(s["psnr"]), float(s["ssim"])
        best_psnr = max(row["cubic_psnr"], row["spline_psnr"])
        row["gain_db"] = row["selfsr_psnr"] - best_psnr
        row["ssim_higher"] = row["selfsr_ssim"] > max(row["cubic_ssim"], row["spline_ssim"])
        results.append(row)
        print(f"{name}: {steps} steps in {wall:.0f} s wall; PSNR cubic {row['cubic_psnr']:.2f} / spline "
              f"{row['spline_psnr']:.2f} / selfsr {row['selfsr_psnr']:.2f} dB; SSIM {row['cubic_ssim']:.4f} / "
              f"{row['spline_ssim']:.4f} / {row['selfsr_ssim']:.4f}; affine vs truth {affine_err:.1e}", flush=True)
        x = truth.shape[0] // 2
        rows.append((f"{name} ({thickness:g} mm every {spacing} mm)",
                     [(f"cubic {row['cubic_psnr']:.2f} dB", sagittal(keys, x)),
                      (f"selfsr {row['selfsr_psnr']:.2f} dB ({steps} steps)", sagittal(sr.data, x)),
                      ("truth (1 mm)", sagittal(truth.data, x))]))
    vmax = float(np.percentile(mni.data, 99.5))
    figure(rows, Path(args.figure), vmax)

    print("\n| setting | selfsr steps (wall s) | PSNR cubic (Keys) | PSNR cubic (B-spline) | PSNR selfsr | gain over "
          "better cubic | SSIM cubic (Keys) | SSIM cubic (B-spline) | SSIM selfsr |")
    print("|---|--:|--:|--:|--:|--:|--:|--:|--:|")
    for r in results:
        print(f"| {r['setting']} | {r['steps']} ({r['wall_s']:.0f}) | {r['cubic_psnr']:.2f} | {r['spline_psnr']:.2f} | "
              f"**{r['selfsr_psnr']:.2f}** | {r['gain_db']:+.2f} dB | {r['cubic_ssim']:.4f} | {r['spline_ssim']:.4f} | "
              f"**{r['selfsr_ssim']:.4f}** |")
    verdicts = []
    for r in results:
        if r["setting"] == "4mm":
            verdicts.append(("PSNR gain >= +2 dB at 4 mm", r["gain_db"] >= 2.0, f"{r['gain_db']:+.2f} dB"))
        verdicts.append((f"SSIM higher at {r['setting']}", r["ssim_higher"],
                         f"{r['selfsr_ssim']:.4f} vs {max(r['cubic_ssim'], r['spline_ssim']):.4f}"))
        verdicts.append((f"wall time within the budget at {r['setting']}", r["wall_s"] <= 60 * r["budget_min"] + 30,
                         f"{r['wall_s']:.0f} s for {60 * r['budget_min']:.0f} s (+30 s process start, reading, "
                         "scoring)"))
    for what, ok, detail in verdicts:
        print(f"{'PASS' if ok else 'MISS'}  {what}: {detail}")

    if args.real:
        real = read_volume(check_not_reserved(REAL_SCAN))
        out_path = work / "itk_t1_selfsr.nii.gz"
        steps, wall, line = reuse_or_run(work / "run_real.json", args.reuse, functools.partial(
            run_selfsr, REAL_SCAN, out_path, args.real_budget, 0.0, args.threads))
        sr = read_volume(out_path)
        cub = resample_axis(torch.from_numpy(real.data), 2, sr.shape[2], "cubic").numpy()
        print(f"real scan {REAL_SCAN.name} {real.shape} at {' x '.join(f'{s:g}' for s in real.spacing)} mm -> "
              f"{sr.shape} at {' x '.join(f'{s:.3g}' for s in sr.spacing)} mm: {steps} steps, {wall:.0f} s wall")
        x = real.shape[0] // 2
        figure([("ITK T1, 2 x 2 x 3 mm (no ground truth)",
                 [("cubic (2 mm)", sagittal(cub, x)), (f"selfsr (2 mm, {steps} steps)", sagittal(sr.data, x))])],
               Path(args.real_figure), float(np.percentile(real.data, 99.5)))
        results.append({"setting": "real_itk_t1", "steps": steps, "wall_s": round(wall, 1), "shape_in": list(real.shape),
                        "shape_out": list(sr.shape), "spacing_out": [float(s) for s in sr.spacing]})
    (work / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    print(f"results: {work / 'results.json'}; figure: {args.figure}")


if __name__ == "__main__":
    main()
