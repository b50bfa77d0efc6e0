"""`mrisr selfsr IN OUT`: self-supervised through-plane super-resolution of one thick-slice scan."""

from __future__ import annotations

import argparse
import time

from mrisr.commands.degrade import add_output_options
from mrisr.errors import ConfigError

PROFILES = ("gaussian", "rect")  # mrisr.degrade.slice_profile.PROFILES (that module imports torch)


def add_acquisition_options(p: argparse.ArgumentParser | argparse._ArgumentGroup,
                            budget_default: float | None = 10.0) -> None:
    """Options describing the thick-slice acquisition and the training (shared with ``train --self-supervised``)."""
    p.add_argument("--slice-thickness", type=float, metavar="MM",
                   help="slice thickness (profile FWHM) in mm (default: DICOM SliceThickness, else spacing - gap)")
    p.add_argument("--slice-profile", choices=PROFILES, default="gaussian",
                   help="slice profile: gaussian with FWHM = thickness (default) or rect (a box)")
    p.add_argument("--gap", type=float, metavar="MM", help="gap between slices in mm (thickness + gap = spacing)")
    p.add_argument("--axis", type=int, help="through-plane axis 0-2 (default: the axis with the largest spacing)")
    p.add_argument("--budget", type=float, default=budget_default, metavar="MINUTES",
                   help="wall-clock budget for everything (training stops so that inference fits"
                        + (f"; default {budget_default:g})" if budget_default else ")"))
    p.add_argument("--steps", type=int, metavar="N",
                   help="train exactly N steps instead (deterministic for a seed on CPU; overrides --budget)")
    p.add_argument("--seed", type=int, default=0, help="seed of the network and the patch sampler (default 0)")
    p.add_argument("--init", metavar="MODEL", help="start from a model: a self-supervised model file, or a "
                   "shipped / trained 2D one-channel model whose matching layers are copied (e.g. kspace-x2)")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1 or auto (default cpu)")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "selfsr", help="self-supervised through-plane super-resolution of a thick-slice scan (no training data)",
        description="Learn the missing through-plane resolution from the scan itself (SMORE-style): the fine "
                    "in-plane axes are degraded with the slice profile and spacing, a 2D network learns the "
                    "inverse, and is applied along the through-plane axis in both in-plane orientations (fused). "
                    "Output: the same field of view at --target-spacing.")
    p.add_argument("input", help="thick-slice scan (NIfTI, DICOM file/folder, NPY)")
    p.add_argument("output", help="output path (.nii.gz, .npy or a DICOM folder)")
    p.add_argument("--target-spacing", type=float, metavar="MM",
                   help="output spacing along the through-plane axis in mm (default: the finest in-plane spacing)")
    add_acquisition_options(p)
    p.add_argument("--save-model", metavar="PATH", help="also write the trained network as a model file "
                   "(`mrisr upscale IN OUT --model PATH` applies it to scans of the same protocol)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    add_output_options(p)
    p.set_defaults(func=run)


def check_numbers(args: argparse.Namespace) -> None:
    """Positive lengths and budgets, non-negative steps: one-line errors naming the option."""
    for opt, value in (("--slice-thickness", args.slice_thickness), ("--budget", args.budget),
                       ("--target-spacing", getattr(args, "target_spacing", None))):
        if value is not None and not value > 0:
            raise ConfigError(f"{opt} must be a positive number, got {value}")
    if args.gap is not None and not args.gap == args.gap:  # NaN
        raise ConfigError("--gap must be a number")
    if args.steps is not None and args.steps < 1:
        raise ConfigError(f"--steps must be >= 1, got {args.steps}")


def check_model_output(path: str, force: bool) -> None:
    """Refuse an existing model file (or its ``.json`` sidecar) before training, not after it."""
    from mrisr.io.atomic import check_output
    from mrisr.models.modelfile import SUFFIX, sidecar_path

    check_output(path if path.endswith(SUFFIX) else path + SUFFIX, force)
    check_output(sidecar_path(path), force)


def run(args: argparse.Namespace) -> int:
    start = time.monotonic()
    check_numbers(args)
    from mrisr.commands.degrade import check_series_and_like, like_dicom
    from mrisr.infer.through_plane import device_of
    from mrisr.io import read_volume, write_volume
    from mrisr.io.atomic import check_output
    from mrisr.selfsr.fit import FitOptions
    from mrisr.selfsr.pipeline import AcquisitionOptions, Budget, save_network, selfsr_volume

    check_series_and_like(args.input, args.series, args.output, args.like)
    check_output(args.output, args.force)
    from mrisr.data.sources import check_not_reserved

    check_not_reserved(args.input)  # scans kept for independent evaluation are never trained on
    if args.save_model:
        check_model_output(args.save_model, args.force)
    device = device_of(args.device)
    vol = read_volume(args.input, series=args.series)
    acq = AcquisitionOptions(args.axis, args.slice_thickness, args.gap, args.slice_profile)
    opts = FitOptions(steps=args.steps, seed=args.seed)
    budget = None if args.steps is not None else Budget(args.budget * 60.0, start)
    out, module, meta, result = selfsr_volume(vol, acq, opts, device, target_spacing=args.target_spacing,
                                              init=args.init, budget=budget, progress=not args.quiet,
                                              source=str(args.input))
    out = like_dicom(out, args.like, args.force_like)
    path = write_volume(out, args.output, force=args.force)
    if args.save_model:
        saved = save_network(args.save_model, module, meta, force=args.force)
        print(f"wrote {saved}")
    spacing = " x ".join(f"{s:.4g}" for s in out.spacing)
    gain = "" if result.residual_gain is None else f", correction x {result.residual_gain:.2f}"
    how = (f"{result.steps} steps ({'stopped by the budget' if result.stopped_by == 'budget' else 'as asked'}, "
           f"{result.seconds:.0f} s of training{gain})")
    print(f"wrote {path}: selfsr, {how}; shape {vol.shape} -> {out.shape}, spacing {spacing} mm; "
          f"{time.monotonic() - start:.0f} s in all; reproduce with --steps {result.steps} --seed {args.seed}")
    return 0
