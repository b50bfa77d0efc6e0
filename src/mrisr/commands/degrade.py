"""`mrisr degrade IN OUT --method kspace --scale 2`: simulate a low-resolution acquisition, geometry kept."""

from __future__ import annotations

import argparse

from mrisr.errors import ConfigError


def parse_ints(text: str, what: str) -> list[int]:
    try:
        vals = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ConfigError(f"{what} must be integers like 2 or 2,3,4, got {text!r}") from None
    if not vals or any(v < 1 for v in vals):
        raise ConfigError(f"{what} must be integers >= 1, got {text!r}")
    return vals


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
    p.add_argument("--series", help="SeriesInstanceUID to pick when the input folder holds several series")
    p.add_argument("--force", action="store_true", help="overwrite an existing output")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mrisr.degrade.chain import build_degradation
    from mrisr.io import read_volume, write_volume
    from mrisr.io.atomic import check_output

    spec = degradation_spec(args.method, args.scale, args.axes, args.window, args.snr)
    deg = build_degradation(spec, scale=args.scale if args.method.strip().lower() != "noise" else None)
    check_output(args.output, args.force)
    vol = read_volume(args.input, series=args.series)
    out = deg(vol, seed=args.seed)
    path = write_volume(out, args.output, force=args.force)
    spacing = " x ".join(f"{s:.4g}" for s in out.spacing)
    print(f"wrote {path}: {deg.spec} (seed {args.seed}); shape {vol.shape} -> {out.shape}, spacing {spacing} mm")
    return 0
