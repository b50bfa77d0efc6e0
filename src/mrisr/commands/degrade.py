"""`mrisr degrade IN OUT --method kspace --scale 2`: simulate a low-resolution acquisition, geometry kept."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from mrisr.errors import ConfigError

if TYPE_CHECKING:
    from mrisr.io.volume import Volume


def parse_ints(text: str, what: str) -> list[int]:
    try:
        vals = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ConfigError(f"{what} must be integers like 2 or 2,3,4, got {text!r}") from None
    if not vals or any(v < 1 for v in vals):
        raise ConfigError(f"{what} must be integers >= 1, got {text!r}")
    return vals


def check_series_and_like(input_path: str, series: str | None, output: str, like: str | None) -> None:
    """Refuse ``--series`` for an input that is not a folder and ``--like`` for an output that is not DICOM."""
    if series and not Path(input_path).is_dir():
        raise ConfigError(f"--series picks a series of a DICOM folder; {input_path} is not a folder")
    if like:
        from mrisr.io.detect import output_format

        if output_format(output) != "dicom-folder":
            raise ConfigError("--like applies to DICOM output (a folder)")


def like_dicom(vol: Volume, like: str | None) -> Volume:
    """``vol`` to be written into the patient/study/frame of reference of the DICOM scan ``like`` (if given)."""
    if not like:
        return vol
    from mrisr.io.dicom.writing import reference_header

    out = vol.with_data(vol.data, dicom_headers=[reference_header(like)], rescale=None)
    for key in ("modality", "patient_id"):
        out.meta.pop(key, None)
    return out


def add_output_options(p: argparse.ArgumentParser) -> None:
    """``--series``, ``--like`` and ``--force``, shared by ``degrade`` and ``upscale``."""
    p.add_argument("--series", help="SeriesInstanceUID to pick when the input folder holds several series "
                   "(DICOM folder inputs only)")
    p.add_argument(
        "--like", metavar="DICOM",
        help="DICOM output: take patient, study, frame of reference and acquisition attributes from this DICOM "
             "file or series folder (e.g. the scan a NIfTI input came from; NIfTI keeps no patient data)",
    )
    p.add_argument("--force", action="store_true", help="overwrite an existing output")


def degradation_spec(method: str, scale: int | None, axes: str | None, window: str | None, snr: str | None) -> str:
    """Spec string for the CLI's options; ``method`` may already be a full spec (or a YAML file)."""
    from mrisr.degrade.chain import METHODS, parse_axes

    name = method.strip().lower()
    if name not in METHODS:
        if axes or window:
            raise ConfigError("--axes/--window apply to a single --method name; put them in the spec string")
        return method + (f";noise:snr={snr}" if snr else "")
    params = []
    if name != "noise":
        if scale is None:
            raise ConfigError(f"--scale is required for --method {name}")
        params.append(f"scale={scale}")
    ax = parse_axes(axes, "--axes")
    if ax is not None:
        if name == "noise" or (name == "slice" and (ax == "all" or len(ax) != 1)):
            raise ConfigError(f"--axes takes {'one axis' if name == 'slice' else 'no value'} for --method {name}")
        value = ax if isinstance(ax, str) else "+".join(str(a) for a in ax)
        params.append(f"{'axis' if name == 'slice' else 'axes'}={value}")
    if window:
        if name != "kspace":
            raise ConfigError("--window applies to --method kspace only")
        params.append(f"window={window}")
    steps = []
    if name == "noise":
        if not snr:
            raise ConfigError("--method noise needs --snr")
        steps.append(f"noise:snr={snr}")
    else:
        steps.append(f"{name}:" + ",".join(params))
        if snr:
            steps.append(f"noise:snr={snr}")
    return ";".join(steps)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "degrade",
        help="simulate a low-resolution scan (k-space, bicubic, block, thick slices, noise)",
        description="Writes the low-resolution scan on its coarse grid with a corrected affine (same field of "
        "view). Sizes that are not multiples of the scale are centre-cropped first. The parameters are kept "
        "in the volume's history.",
    )
    p.add_argument("input", help="input scan (NIfTI, DICOM file/folder, PNG, TIFF, NPY)")
    p.add_argument("output", help="output path (.nii.gz, .npy, .png, .tif or a DICOM folder)")
    p.add_argument("--method", default="kspace",
                   help="kspace, bicubic, block, slice, noise; or a full chain such as "
                   "'kspace:scale=2,window=hamming;noise:snr=30', or a YAML file (default: kspace)")
    p.add_argument("--scale", type=int, help="integer downscale factor (slice spacing ratio for 'slice')")
    p.add_argument("--axes", help="spatial axes to degrade, e.g. 0,1 (default: in-plane 0,1; 'slice': axis 2) or all")
    p.add_argument("--window", help="k-space window: hamming, tukey, fermi or none")
    p.add_argument("--snr", help="add Rician noise at this SNR (relative to the foreground mean), or a range a..b")
    p.add_argument("--seed", type=int, default=0, help="seed of the random parameters and noise (default 0)")
    add_output_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mrisr.degrade.chain import build_degradation
    from mrisr.io import read_volume, write_volume
    from mrisr.io.atomic import check_output

    spec = degradation_spec(args.method, args.scale, args.axes, args.window, args.snr)
    deg = build_degradation(spec, scale=args.scale if args.method.strip().lower() != "noise" else None)
    if args.scale is not None and not any(hasattr(step, "scale") for step in deg.steps):
        raise ConfigError(f"--scale {args.scale} has no effect on {deg.spec} (noise keeps the grid); leave it out")
    check_series_and_like(args.input, args.series, args.output, args.like)
    check_output(args.output, args.force)
    vol = read_volume(args.input, series=args.series)
    out = like_dicom(deg(vol, seed=args.seed), args.like)
    path = write_volume(out, args.output, force=args.force)
    spacing = " x ".join(f"{s:.4g}" for s in out.spacing)
    print(f"wrote {path}: {deg.spec} (seed {args.seed}); shape {vol.shape} -> {out.shape}, spacing {spacing} mm")
    return 0
