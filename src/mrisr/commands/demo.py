"""`mrisr demo [--out demo-output]`: the main job on real held-out scans with the shipped default model.

1. Writes the held-out real scans installed here (:mod:`mrisr.data.heldout`: brains no model trained on, an
   abdomen, small real scans; central slabs of large volumes) into ``OUT/heldout``.
2. Simulates a shorter acquisition (central 1/2 of k-space), upscales with bicubic, zero-fill and the model,
   scores against the original over the foreground (``mrisr evaluate``), writes ``OUT/evaluation`` with its
   report, and prints per case where the model gains and where it does not.
3. Whole-scan inference keeps geometry: NIfTI -> NIfTI and DICOM -> DICOM series.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mrisr.errors import ConfigError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="run the main job on real held-out scans with the shipped default model",
                       description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="demo-output", help="output folder (default demo-output)")
    p.add_argument("--model", default=None, help="model to show (default: the shipped kspace-x2)")
    p.add_argument("--slab", type=int, default=8, help="slices per held-out slab of a large volume (default 8)")
    p.add_argument("--force", action="store_true", help="replace the results of an earlier demo")
    p.set_defaults(func=run)


def _gains(folder: Path, model: str) -> list[tuple[str, float, float, float, float]]:
    """(case, zero-fill PSNR, model PSNR, zero-fill SSIM, model SSIM) over the whole mask, per case."""
    from mrisr.evaluate.results import read_case_scores

    return [(c, m["zerofill"]["psnr"], m[model]["psnr"], m["zerofill"]["ssim"], m[model]["ssim"])
            for c, m in sorted(read_case_scores(folder).items()) if "zerofill" in m and model in m]


def run(args: argparse.Namespace) -> int:
    from mrisr.cli import main as cli
    from mrisr.data.heldout import write_heldout_cases
    from mrisr.data.sources import find_sources
    from mrisr.pretrained import default_model

    model = args.model or default_model(2)
    out = Path(args.out)
    if out.exists() and any(out.iterdir()) and not args.force:
        raise ConfigError(f"{out} holds an earlier demo; use --force to replace it (or --out elsewhere)")
    out.mkdir(parents=True, exist_ok=True)
    force = ["--force"] if args.force else []

    print("== 1. Real scans no shipped model was trained on (central slabs of large volumes):")
    cases = write_heldout_cases(out / "heldout", args.slab, force=args.force)
    if not cases:
        raise ConfigError("no held-out scan is installed (nibabel and pydicom ship some; `make data` adds more)")
    for p in cases:
        print(f"   {p.name}")
    print(f"\n== 2. Shorter scan simulated (central 1/2 of k-space), upscaled by bicubic, zero-fill and {model}:")
    code = cli(["evaluate", str(out / "heldout"), "--degradation", "kspace", "--scale", "2",
                "--methods", f"bicubic,zerofill,{model}", "--mask", "auto", "--out", str(out / "evaluation"),
                "--report", "--quiet", *force])
    if code:
        return code
    rows = _gains(out / "evaluation", model)
    print(f"\n   per case, PSNR over the foreground: zero-fill -> {model} (gain); SSIM")
    for case, zf, m, zs, ms in rows:
        verdict = "gains" if m - zf > 0.05 else ("no gain" if m - zf > -0.2 else "LOSES")
        print(f"   {case:<30} {zf:6.2f} -> {m:6.2f} dB ({m - zf:+.2f}, {verdict});  SSIM {zs:.4f} -> {ms:.4f}")
    wins = sum(1 for _, zf, m, _, _ in rows if m - zf > 0.05)
    worst = min(rows, key=lambda r: r[2] - r[1])
    print(f"   {model} gains on {wins} of {len(rows)} cases; worst case {worst[0]} at {worst[2] - worst[1]:+.2f} dB")

    print("\n== 3. Whole-scan inference keeps geometry: NIfTI -> NIfTI and DICOM -> DICOM series")
    srcs = {s.name: s.path for s in find_sources(roles=("heldout",), kinds=("image",))}
    nifti = srcs.get("nibabel_anatomical")
    dicom = srcs.get("pydicom_mr_small")
    if nifti is not None:
        cli(["upscale", str(nifti), str(out / "anatomical_sr_x2.nii.gz"), "--model", model, *force])
    if dicom is not None:
        cli(["upscale", str(dicom), str(out / "MR_small_sr_x2") + "/", "--model", model, *force])
    print(f"\nResults are in {out.resolve()}:")
    print("  evaluation/report.html   tables (baselines first), comparison figures, error maps")
    print("  evaluation/per_case.csv  per-case metrics; evaluation/summary.json: mean, std, 95% CI")
    print("  heldout/                 the held-out scans (NIfTI)")
    print(f"  anatomical_sr_x2.nii.gz  {model} on nibabel's anatomical.nii;  MR_small_sr_x2/: a derived DICOM series")
    return 0
