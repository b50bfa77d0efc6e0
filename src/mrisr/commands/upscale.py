"""`mrisr upscale IN OUT --method bicubic --scale 2` (baselines) or `--model NAME|PATH` (trained network).

IN may be one scan or a folder of scans (NIfTI files, DICOM series): then OUT is a folder, outputs that exist
are skipped (a rerun resumes an interrupted batch), and under ``torchrun`` each process takes its share.
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import TYPE_CHECKING

from mrisr.commands.degrade import add_output_options
from mrisr.degrade.baselines import BASELINES
from mrisr.errors import ConfigError, MrisrError

if TYPE_CHECKING:
    from mrisr.io.volume import Volume

#: ``--to`` choices of a folder batch (mirrors :data:`mrisr.infer.batch.OUTPUT_FORMATS`; parsers import nothing heavy).
OUTPUT_FORMATS = ("same", "nifti", "dicom")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "upscale",
        help="upscale a scan (or a folder of scans) with an interpolation baseline or a trained model",
        description="Output grid = input grid x scale on the upscaled axes, same field of view (corrected affine). "
        "The output streams to its file slab by slab, so memory stays bounded whatever the slice count. "
        "A folder of scans (NIfTI files, DICOM series) is upscaled into an output folder that mirrors its paths; "
        "outputs that exist are skipped (rerun to resume), and under torchrun each process takes every "
        "WORLD_SIZE-th scan.",
    )
    p.add_argument("input", help="input scan (NIfTI, DICOM file/folder, PNG, TIFF, NPY), or a folder of scans")
    p.add_argument("output", help="output path (.nii.gz, .npy, .png, .tif or a DICOM folder); for a folder of scans, "
                   "the output folder")
    how = p.add_mutually_exclusive_group()
    how.add_argument("--method", choices=BASELINES, help="interpolation baseline")
    how.add_argument("--model", help="trained model: shipped name, .safetensors file or a folder holding one "
                     "(default with --scale S: the shipped kspace-xS)")
    p.add_argument("--scale", type=int, help="integer upscale factor (required with --method; checked with --model; "
                   "alone: the shipped default model for that scale)")
    p.add_argument("--axes", help="axes to upscale with --method, e.g. 0,1 (default: in-plane 0,1) or all")
    p.add_argument("--axis", type=int, help="--model: slice axis for 2D networks (default 2)")
    p.add_argument("--device", default="cpu", help="--model: cpu, cuda, cuda:1 or auto (default cpu; under torchrun "
                   "cuda/auto use cuda:LOCAL_RANK)")
    p.add_argument("--engine", choices=("auto", "torch", "onnx"),
                   help="--model: what runs the network: torch, onnx (ONNX Runtime, needs mrisr[onnx]) or auto "
                        "(default: the faster one measured on this device, see the README)")
    p.add_argument("--to", choices=OUTPUT_FORMATS,
                   help="folder of scans: output format, 'same' as each input (default), 'nifti' (.nii.gz) or "
                   "'dicom' (series folders)")
    p.add_argument("--progress", action="store_true",
                   help="progress bars, one for the batch and one per scan (default: only when stderr is a terminal)")
    add_output_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mrisr.commands.degrade import check_series_and_like, like_dicom
    from mrisr.io.atomic import check_not_input, check_output

    if args.method is None and args.model is None:
        if args.scale is None:
            raise ConfigError("name --scale S (the shipped default model kspace-xS), --model or --method")
        from mrisr.pretrained import default_model

        args.model = default_model(args.scale)
    if args.method:
        if args.scale is None:
            raise ConfigError("--scale is required with --method")
        if args.axis is not None:
            raise ConfigError("--axis applies to --model (a 2D network's slice axis); use --axes with --method")
        if args.engine is not None:
            raise ConfigError("--engine applies to --model (what runs the network); --method runs no network")
    elif args.axes:
        raise ConfigError("--axes applies to --method; a model upscales the axes it was trained for")
    try:
        from mrisr.infer.batch import (
            Ranks,
            UpscaleOptions,
            gather_results,
            is_folder_batch,
            list_scans,
            progress_wanted,
            rank_device,
            run_batch,
            shard,
            summary_line,
            upscale_file,
        )
    except ImportError as exc:
        raise MrisrError(f"upscaling is not available in this installation ({exc})") from None
    options = UpscaleOptions(method=args.method, model=args.model, scale=args.scale, axes=args.axes, axis=args.axis,
                             device=args.device, model_options={} if args.engine is None else {"engine": args.engine})
    progress = progress_wanted(args.progress)
    if is_folder_batch(args.input, args.series):
        if args.like or args.series:
            raise ConfigError("--like and --series apply to one scan; a folder of scans is upscaled scan by scan")
        check_not_input(args.output, (args.input,))
        ranks = Ranks.from_env()
        scans = list_scans(args.input, args.output, args.to or "same")
        options = dataclasses.replace(options, device=rank_device(options.device, ranks))
        result = run_batch(shard(scans, ranks.rank, ranks.world), options, force=args.force, progress=progress,
                           echo=print)
        total = gather_results(result, ranks)
        if ranks.rank == 0:
            print(summary_line(total))
        return 1 if total.failed else 0
    if args.to:
        raise ConfigError("--to applies to a folder of scans; for one scan the output name gives the format")
    check_series_and_like(args.input, args.series, args.output, args.like)
    check_output(args.output, args.force)

    def adjust(vol: Volume) -> Volume:
        return like_dicom(vol, args.like, args.force_like)

    vol, out, path, how = upscale_file(args.input, args.output, options, series=args.series, force=args.force,
                                       progress=progress, adjust=adjust if args.like else None)
    spacing = " x ".join(f"{s:.4g}" for s in out.spacing)
    print(f"wrote {path}: {how}; shape {vol.shape} -> {out.shape}, spacing {spacing} mm")
    return 0
