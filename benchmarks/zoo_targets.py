"""The shipped zoo against issue 10's targets, measured in one run on the held-out real scans.

Every shipped model is scored with `mrisr evaluate HELDOUT --degradation D --methods bicubic,zerofill,MODEL
--mask auto` on the held-out cases of :func:`mrisr.data.heldout.write_heldout_cases` (subjects and
anatomies no model trained on), and the targets are checked:

- every k-space model: no case below zero-fill by more than 0.2 dB PSNR;
- kspace-x2: mean >= +1.5 dB over zero-fill and a higher mean SSIM;
- kspace-x3, kspace-x4: above zero-fill in mean PSNR and SSIM;
- bicubic-x2: mean >= +1.5 dB over bicubic;
- block-x3: mean SSIM >= 0.90;
- fast-kspace-x2: >= 80% of kspace-x2's mean gain over zero-fill at <= 10% of its FLOPs per output pixel.

    .venv/bin/python benchmarks/zoo_targets.py [--out /tmp/zoo-targets] [--slab 8]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from mrisr.data.heldout import write_heldout_cases
from mrisr.evaluate.results import read_case_scores
from mrisr.models.flops import model_flops_per_output_pixel
from mrisr.models.modelfile import list_pretrained, read_model_metadata

ZOO = {"kspace-x2": "kspace:scale=2", "kspace-x3": "kspace:scale=3", "kspace-x4": "kspace:scale=4",
       "bicubic-x2": "bicubic:scale=2", "block-x3": "block:scale=3", "fast-kspace-x2": "kspace:scale=2"}


def scores(cases: Path, name: str, degradation: str, out: Path) -> dict[str, dict[str, tuple[float, float]]]:
    """case -> method -> (PSNR, SSIM) over the whole foreground mask."""
    subprocess.run([sys.executable, "-m", "mrisr", "evaluate", str(cases), "--degradation", degradation,
                    "--methods", f"bicubic,zerofill,{name}", "--mask", "auto", "--out", str(out / name),
                    "--force", "--quiet", "--no-report"], check=True, stdout=subprocess.DEVNULL)
    return {case: {k: (v["psnr"], v["ssim"]) for k, v in methods.items()}
            for case, methods in read_case_scores(out / name).items()}


def flops(name: str) -> float:
    return model_flops_per_output_pixel(read_model_metadata(name))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--slab", type=int, default=8)
    args = ap.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="zoo-targets-"))
    cases = out / "heldout"
    write_heldout_cases(cases, args.slab)
    shipped = set(list_pretrained())
    gains: dict[str, float] = {}
    verdicts: list[tuple[str, str, bool]] = []
    for name, deg in ZOO.items():
        if name not in shipped:
            verdicts.append((name, "not shipped", False))
            continue
        per = scores(cases, name, deg, out)
        dz = np.array([m[name][0] - m["zerofill"][0] for m in per.values()])
        db = np.array([m[name][0] - m["bicubic"][0] for m in per.values()])
        ssim_m = np.mean([m[name][1] for m in per.values()])
        ssim_z = np.mean([m["zerofill"][1] for m in per.values()])
        worst = min(per, key=lambda c: per[c][name][0] - per[c]["zerofill"][0])
        gains[name] = float(dz.mean())
        print(f"{name:15s} n={len(per):2d}  over zero-fill {dz.mean():+.2f} dB (worst {dz.min():+.2f}, {worst})  "
              f"over bicubic {db.mean():+.2f} dB  SSIM {ssim_m:.4f} vs zero-fill {ssim_z:.4f}")
        if name.startswith(("kspace", "fast-kspace")):
            verdicts.append((name, f"worst case vs zero-fill {dz.min():+.2f} dB >= -0.2", bool(dz.min() >= -0.2)))
        if name == "kspace-x2":
            verdicts.append((name, f"mean gain {dz.mean():+.2f} dB >= +1.5 and SSIM up", bool(dz.mean() >= 1.5 and ssim_m > ssim_z)))
        if name in ("kspace-x3", "kspace-x4"):
            verdicts.append((name, f"mean gain {dz.mean():+.2f} dB > 0 and SSIM up", bool(dz.mean() > 0 and ssim_m > ssim_z)))
        if name == "bicubic-x2":
            verdicts.append((name, f"mean gain over bicubic {db.mean():+.2f} dB >= +1.5", bool(db.mean() >= 1.5)))
        if name == "block-x3":
            verdicts.append((name, f"mean SSIM {ssim_m:.4f} >= 0.90", bool(ssim_m >= 0.90)))
    if "fast-kspace-x2" in gains and "kspace-x2" in gains:
        share = gains["fast-kspace-x2"] / gains["kspace-x2"] if gains["kspace-x2"] > 0 else float("nan")
        ratio = flops("fast-kspace-x2") / flops("kspace-x2")
        verdicts.append(("fast-kspace-x2", f"{share:.0%} of kspace-x2's gain at {ratio:.1%} of its FLOPs",
                         bool(share >= 0.8 and ratio <= 0.1)))
    print()
    for name, what, ok in verdicts:
        print(f"{'PASS' if ok else 'MISS'}  {name:15s} {what}")
    print(f"\nresults in {out}")


if __name__ == "__main__":
    main()
