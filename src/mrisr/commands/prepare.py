"""`mrisr prepare SOURCE OUT`: patients' scans -> normalised slices/patches, splits, manifest (see mrisr.data.prepare)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from mrisr.commands.argtypes import size as _size


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "prepare",
        help="prepare training data: find scans, split by patient, normalise, slice, crop, store arrays + manifest",
        description=(
            "Find NIfTI files and DICOM series under SOURCE (recursively), group them by patient, split "
            "train/val/test by patient, normalise each volume to [0, 1], store (T, S, H, W) float arrays "
            "plus manifest.json / slices.csv / summary in OUT. Re-running with the same options reuses "
            "finished volumes; options that change the arrays must match (or --force). Options given "
            "here override the 'prepare:' section of --config."
        ),
    )
    p.add_argument("source", help="folder of patients (NIfTI files and/or DICOM series)")
    p.add_argument("out", help="output folder (created)")
    p.add_argument("--config", help="data config YAML (configs/data/*.yaml); its 'prepare:' section")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config entry, e.g. --set prepare.resize=128 (repeatable; the "
                        "syntax of mrisr train --set)")
    g = p.add_argument_group("discovery and splits")
    g.add_argument("--mask-pattern", help="glob of mask file names (default '*_gt.nii*')")
    g.add_argument("--group-by", choices=("auto", "dicom", "folder", "regex"), help="how patients are found (default auto)")
    g.add_argument("--patient-regex", help="regex on the relative path; group 'patient' (or 1) is the patient")
    g.add_argument("--include", action="append", metavar="GLOB", help="only paths matching (repeatable)")
    g.add_argument("--exclude", action="append", metavar="GLOB", help="skip paths matching (repeatable)")
    g.add_argument("--modality", action="append", dest="modalities", metavar="NAME",
                   help="accepted DICOM modality (default MR; repeatable)")
    g.add_argument("--split", help="e.g. train=0.8,val=0.1,test=0.1 or test=64,val=16,train=rest")
    g.add_argument("--split-unit", choices=("patients", "images"), help="what split counts count (default patients)")
    g.add_argument("--seed", type=int, help="split seed (default 0)")
    g = p.add_argument_group("intensities and geometry")
    g.add_argument("--percentiles", type=float, nargs=2, metavar=("LOW", "HIGH"),
                   help="percentile clip to [0, 1] per volume (default 0.5 99.5)")
    g.add_argument("--axis", type=int, choices=(0, 1, 2), help="array axis to slice along (default 2)")
    g.add_argument("--resize", type=_size, nargs="+", metavar="N|HxW", help="resize slices (bicubic; masks nearest)")
    g.add_argument("--roi-from-masks", action=argparse.BooleanOptionalAction, default=None,
                   help="crop to the union bounding box of the masks (all slices and frames) + margin")
    g.add_argument("--roi-margin", type=int, metavar="PX", help="ROI margin in pixels (default 10)")
    g.add_argument("--crop", type=_size, nargs="+", metavar="N|HxW", help="centre crop / zero pad slices to this size")
    g.add_argument("--skip-empty", type=float, metavar="FRACTION",
                   help="drop slices with less than this fraction of pixels above --empty-threshold")
    g.add_argument("--empty-threshold", type=float, help="foreground threshold in [0, 1] units (default 0.05)")
    g.add_argument("--patch3d", type=_size, nargs="+", metavar="N|DxHxW", help="also list 3D patches of this size")
    g.add_argument("--patch3d-stride", type=_size, nargs="+", metavar="N|DxHxW", help="3D patch stride (default: the size)")
    g.add_argument("--dtype", choices=("float32", "float16"), help="stored array type (default float32)")
    p.add_argument("--force", action="store_true", help="redo OUT if it was prepared with other options")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--show-phi", action="store_true",
                   help="keep DICOM PatientIDs in manifest, CSV files and summary (default: pseudonyms "
                        "pseudo-001, ...; the grouping and splits are the same)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=run)


def options_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The prepare options: config file's section, then --set (the same ``a.b.c=value`` overrides as
    ``mrisr train --set``), then explicit flags."""
    from mrisr.data.config import load_data_config

    options: dict[str, Any] = {}
    if args.config or args.set:
        options = load_data_config(args.config, args.set).prepare.to_dict()
    flags = {
        "mask_pattern": args.mask_pattern, "group_by": args.group_by, "patient_regex": args.patient_regex,
        "include": args.include, "exclude": args.exclude, "modalities": args.modalities, "split": args.split,
        "split_unit": args.split_unit, "seed": args.seed, "axis": args.axis, "resize": args.resize,
        "roi_from_masks": args.roi_from_masks, "roi_margin": args.roi_margin, "crop": args.crop,
        "skip_empty": args.skip_empty, "empty_threshold": args.empty_threshold, "patch3d": args.patch3d,
        "patch3d_stride": args.patch3d_stride, "dtype": args.dtype,
    }
    for name in ("resize", "crop", "patch3d", "patch3d_stride"):  # "256 256", "256x256" or "256"
        if flags[name] is not None:
            flags[name] = [v for part in flags[name] for v in part]
    if args.percentiles:
        flags["low_percentile"], flags["high_percentile"] = args.percentiles
    options.update({k: v for k, v in flags.items() if v is not None})
    return options


def run(args: argparse.Namespace) -> int:
    from mrisr.data.prepare import format_summary, prepare_dataset

    summary = prepare_dataset(args.source, args.out, options_from_args(args), force=args.force,
                              progress=not args.no_progress and sys.stderr.isatty(), show_phi=args.show_phi)
    print(json.dumps(summary, indent=2) if args.json else format_summary(summary))
    return 0
