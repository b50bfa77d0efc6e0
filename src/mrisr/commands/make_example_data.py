"""`mrisr make-example-data OUT`: synthetic patients (DICOM series + 4D NIfTI cine with masks) from phantoms."""

from __future__ import annotations

import argparse

from mrisr.commands.argtypes import size


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "make-example-data",
        help="write synthetic patients to try the pipelines (no private data needed)",
        description=(
            "Writes OUT/pediatric (one DICOM MR series of 2D slices per patient) and OUT/cardiac (4D NIfTI "
            "cine with segmentation masks: a beating heart in a torso), plus a CT series and truncated files "
            "that `mrisr prepare` must report and skip."
        ),
    )
    p.add_argument("out", help="output folder")
    p.add_argument("--patients", type=int, default=8, help="patients per cohort (default 8)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--pediatric-shape", type=size, default=[128, 128, 16], metavar="XxYxZ",
                   help="pixels x pixels x slices of each pediatric series (default 128x128x16)")
    p.add_argument("--cardiac-shape", type=size, default=[96, 96, 8, 10], metavar="XxYxZxT",
                   help="size of each cardiac cine (default 96x96x8x10)")
    p.add_argument("--no-bad-inputs", action="store_true", help="leave out the CT series and corrupt files")
    p.add_argument("--force", action="store_true", help="replace existing OUT/pediatric and OUT/cardiac")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mrisr.data.example import make_example_data

    result = make_example_data(args.out, n_patients=args.patients, seed=args.seed,
                               pediatric_shape=args.pediatric_shape, cardiac_shape=args.cardiac_shape,
                               bad_inputs=not args.no_bad_inputs, force=args.force)
    for cohort in ("pediatric", "cardiac"):
        if cohort in result:
            print(f"{cohort}: {result[cohort]} ({len(result['patients'][cohort])} patients)")
    if result["bad_inputs"]:
        print("inputs that prepare must skip: " + ", ".join(result["bad_inputs"]))
    return 0
