"""`mrisr upscale IN OUT --method bicubic --scale 2` (baselines) or `--model NAME|PATH` (trained network)."""

from __future__ import annotations

import argparse

from mrisr.commands.degrade import add_output_options
from mrisr.degrade.baselines import BASELINES
from mrisr.errors import ConfigError, MrisrError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "upscale",
        help="upscale a scan with an interpolation baseline or a trained model",
        description="Output grid = input grid x scale on the upscaled axes, same field of view (corrected affine).",
    )
    p.add_argument("input", help="input scan (NIfTI, DICOM file/folder, PNG, TIFF, NPY)")
    p.add_argument("output", help="output path (.nii.gz, .npy, .png, .tif or a DICOM folder)")
    how = p.add_mutually_exclusive_group()
    how.add_argument("--method", choices=BASELINES, help="interpolation baseline")
    how.add_argument("--model", help="trained model: shipped name, .safetensors file or a folder holding one "
                     "(default with --scale S: the shipped kspace-xS)")
    p.add_argument("--scale", type=int, help="integer upscale factor (required with --method; checked with --model; "
                   "alone: the shipped default model for that scale)")
    p.add_argument("--axes", help="axes to upscale with --method, e.g. 0,1 (default: in-plane 0,1) or all")
    p.add_argument("--axis", type=int, help="--model: slice axis for 2D networks (default 2)")
    p.add_argument("--device", default="cpu", help="--model: cpu, cuda, cuda:1 or auto (default cpu)")
    add_output_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mrisr.commands.degrade import check_series_and_like, like_dicom
    from mrisr.degrade.baselines import upscale_volume
    from mrisr.degrade.grid import axis_factors
    from mrisr.degrade.step import parse_axes, resolve_axes
    from mrisr.io import read_volume, write_volume
    from mrisr.io.atomic import check_output
    from mrisr.io.memory import check_memory, volume_job_bytes

    if args.method is None and args.model is None:
        if args.scale is None:
            raise ConfigError("name --scale S (the shipped default model kspace-xS), --model or --method")
        from mrisr.pretrained import default_model

        args.model = default_model(args.scale)
    check_series_and_like(args.input, args.series, args.output, args.like)
    check_output(args.output, args.force)
    vol = read_volume(args.input, series=args.series)
    nd = len(vol.spatial_shape)
    if args.method:
        if args.scale is None:
            raise ConfigError("--scale is required with --method")
        if args.axis is not None:
            raise ConfigError("--axis applies to --model (a 2D network's slice axis); use --axes with --method")
        axes = resolve_axes(parse_axes(args.axes, "--axes"), nd)
        factors = axis_factors(nd, axes, args.scale)
        out_shape = tuple(round(n * f) for n, f in zip(vol.spatial_shape, factors, strict=True)) + vol.shape[nd:]
        check_memory(volume_job_bytes(out_shape, vol.shape), f"{args.method} upscaling {vol.shape} to {out_shape}")
        out = upscale_volume(vol, factors, args.method)
        how = f"{args.method} x{args.scale} on axes {','.join(map(str, axes))}"
    else:
        if args.axes:
            raise ConfigError("--axes applies to --method; a model upscales the axes it was trained for")
        try:
            from mrisr.infer import upscale_with_model
        except ImportError as exc:
            raise MrisrError(f"model inference is not available in this installation ({exc})") from None
        extra = {} if args.axis is None else {"axis": args.axis}
        out = upscale_with_model(vol, args.model, scale=args.scale, device=args.device, **extra)
        how = f"model {args.model}"
    out = like_dicom(out, args.like, args.force_like)
    path = write_volume(out, args.output, force=args.force)
    spacing = " x ".join(f"{s:.4g}" for s in out.spacing)
    print(f"wrote {path}: {how}; shape {vol.shape} -> {out.shape}, spacing {spacing} mm")
    return 0
