"""`mrisr convert IN OUT`: DICOM <-> NIfTI <-> PNG/TIFF/NPY, geometry kept where the format can hold it."""

from __future__ import annotations

import argparse

from mrisr.errors import ConfigError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "convert",
        help="convert between DICOM, NIfTI, PNG/TIFF and NPY",
        description="OUT that is an existing folder, ends with '/', or has no extension is a DICOM series folder.",
    )
    p.add_argument("input", help="input scan (file or DICOM folder)")
    p.add_argument("output", help="output path: .nii/.nii.gz, .png, .tif, .npy or a DICOM folder")
    p.add_argument("--series", help="SeriesInstanceUID to pick when the input folder holds several series")
    p.add_argument("--force", action="store_true", help="overwrite an existing output")
    p.add_argument(
        "--like", metavar="DICOM",
        help="DICOM output: take patient, study, frame of reference and acquisition attributes from this DICOM "
             "file or series folder (e.g. the scan a NIfTI was converted from; NIfTI keeps no patient data)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mrisr.io import read_volume, write_volume
    from mrisr.io.atomic import check_output
    from mrisr.io.detect import output_format

    # Refuse a bad or existing output before spending time on reading the input.
    output_format(args.output)
    check_output(args.output.rstrip("/\\"), args.force)
    if args.like and output_format(args.output) != "dicom-folder":
        raise ConfigError("--like applies to DICOM output (a folder)")
    vol = read_volume(args.input, series=args.series)
    if args.like:
        from mrisr.io.dicom.writing import reference_header

        ref = reference_header(args.like)
        vol = vol.with_data(vol.data, dicom_headers=[ref], rescale=None)
        for key in ("modality", "patient_id"):
            vol.meta.pop(key, None)
    out = write_volume(vol, args.output, force=args.force)
    print(f"wrote {out}")
    return 0
