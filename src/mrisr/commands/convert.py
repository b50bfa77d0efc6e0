"""`mrisr convert IN OUT`: DICOM <-> NIfTI <-> PNG/TIFF/NPY, geometry kept where the format can hold it."""

from __future__ import annotations

import argparse

from mrisr.commands.degrade import add_like_options
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
    add_like_options(p)
    p.add_argument(
        "--anonymise", "--anonymize", action="store_true",
        help="DICOM output: de-identify it by the DICOM basic confidentiality profile (PS3.15 Annex E: patient, "
             "study, staff and institution attributes removed or emptied, private tags removed, new UIDs, "
             "PatientIdentityRemoved=YES)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mrisr.commands.degrade import like_dicom
    from mrisr.io import read_volume, write_volume
    from mrisr.io.atomic import check_not_input, check_output
    from mrisr.io.detect import output_format

    # Refuse a bad or existing output before spending time on reading the input.
    output_format(args.output)
    check_not_input(args.output, (args.input, args.like))
    check_output(args.output.rstrip("/\\"), args.force)
    dicom_out = output_format(args.output) == "dicom-folder"
    if args.like and not dicom_out:
        raise ConfigError("--like applies to DICOM output (a folder)")
    if args.anonymise and not dicom_out:
        raise ConfigError("--anonymise applies to DICOM output (a folder); NIfTI, PNG, TIFF and NPY files "
                          "carry no patient data")
    vol = like_dicom(read_volume(args.input, series=args.series), args.like, args.force_like)
    if args.anonymise:
        from mrisr.io.dicom.anonymise import anonymised_volume

        vol = anonymised_volume(vol)
    out = write_volume(vol, args.output, force=args.force)
    print(f"wrote {out}" + (" (de-identified: DICOM basic confidentiality profile)" if args.anonymise else ""))
    return 0
