"""`mrisr degrade IN OUT --method kspace --scale 2`: simulate a low-resolution acquisition, geometry kept."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from mrisr.degrade.registry import STEPS
from mrisr.errors import ConfigError

if TYPE_CHECKING:
    from mrisr.degrade.chain import Degradation
    from mrisr.degrade.step import Step
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
    """Refuse ``--series`` for an input that is not a folder, ``--like`` for an output that is not DICOM, and
    an output that would overwrite the input or the ``--like`` scan."""
    from mrisr.io.atomic import check_not_input

    check_not_input(output, (input_path, like))
    if series and not Path(input_path).is_dir():
        raise ConfigError(f"--series picks a series of a DICOM folder; {input_path} is not a folder")
    if like:
        from mrisr.io.detect import output_format

        if output_format(output) != "dicom-folder":
            raise ConfigError("--like applies to DICOM output (a folder)")


def like_dicom(vol: Volume, like: str | None, force_like: bool = False) -> Volume:
    """``vol`` to be written into the patient/study/frame of reference of the DICOM scan ``like`` (if given),
    which it must lie in (field of view and orientation) unless ``force_like``."""
    if not like:
        return vol
    from mrisr.io.dicom.writing import like_header

    out = vol.with_data(vol.data, dicom_headers=[like_header(like, vol, force=force_like)], rescale=None)
    for key in ("modality", "patient_id"):
        out.meta.pop(key, None)
    return out


def add_like_options(p: argparse.ArgumentParser) -> None:
    """``--like`` and ``--force-like``, shared by ``convert``, ``degrade`` and ``upscale``."""
    p.add_argument(
        "--like", metavar="DICOM",
        help="DICOM output: take patient, study, frame of reference and acquisition attributes from this DICOM "
             "file or series folder (e.g. the scan a NIfTI input came from; NIfTI keeps no patient data); the "
             "volume must cover the same field of view in the same orientation",
    )
    p.add_argument("--force-like", action="store_true",
                   help="--like without checking that the volume's field of view and orientation match the scan's")


def add_output_options(p: argparse.ArgumentParser) -> None:
    """``--series``, ``--like``, ``--force-like`` and ``--force``, shared by ``degrade`` and ``upscale``."""
    p.add_argument("--series", help="SeriesInstanceUID to pick when the input folder holds several series "
                   "(DICOM folder inputs only)")
    add_like_options(p)
    p.add_argument("--force", action="store_true", help="overwrite an existing output")


#: CLI options that set a field of the ``--method`` step: option -> the field names it fills (the first one
#: the step declares). A step without a ``scale`` or ``snr`` leaves ``--scale`` to the check that it has an
#: effect and ``--snr`` to an appended noise step.
OPTION_FIELDS: dict[str, tuple[str, ...]] = {
    "--scale": ("scale",), "--axes": ("axes", "axis"), "--window": ("window",), "--snr": ("snr",),
}


def method_step(name: str, options: Mapping[str, object]) -> Step:
    """The step registered as ``name``, built by its class with the CLI ``options`` (``{"--scale": 2}``) as fields.

    Raises:
        ConfigError: an option the step has no field for, a required field's option missing, a bad value.
    """
    from mrisr.degrade.registry import step_class

    cls = step_class(name)
    values: dict[str, object] = {}
    labels: dict[str, str] = {}
    for option, names in OPTION_FIELDS.items():
        value = options.get(option)
        target = next((n for n in names if n in cls.field_names()), None)
        if target is None:
            if value is not None and option not in ("--scale", "--snr"):
                takers = [m for m in STEPS if set(names) & set(step_class(m).field_names())]
                raise ConfigError(f"{option} applies to --method {' or '.join(takers)} only")
        elif value is not None:
            values[target], labels[target] = value, option
        elif target in cls.required():
            raise ConfigError(f"{option} is required for --method {cls.method}")
    return cls.from_mapping(values, labels)


def degradation_from_options(method: str, scale: int | None, axes: str | None, window: str | None,
                             snr: str | None) -> Degradation:
    """The chain the CLI options describe: ``--method`` names one step (fields from the other options) or is a
    whole chain / YAML file (``scale`` fills its steps' missing scales); ``--snr`` appends a noise step
    (``--method noise``: the step's own SNR)."""
    from mrisr.degrade.chain import Degradation, build_degradation
    from mrisr.degrade.noise import NoiseStep

    name = method.strip().lower()
    if name in STEPS:
        if name == NoiseStep.method and not snr:
            raise ConfigError("--method noise needs --snr")
        first = method_step(name, {"--scale": scale, "--axes": axes, "--window": window, "--snr": snr})
        steps = [first]
        snr_taken = "snr" in first.field_names()
    else:
        if axes or window:
            raise ConfigError("--axes/--window apply to a single --method name; put them in the spec string")
        steps = list(build_degradation(method, scale=scale).steps)
        snr_taken = False
    if snr and not snr_taken:
        steps.append(NoiseStep.from_mapping({"snr": snr}, {"snr": "--snr"}))
    deg = Degradation(tuple(steps))
    if scale is not None and not any("scale" in s.field_names() for s in deg.steps):
        raise ConfigError(f"--scale {scale} has no effect on {deg.spec} (none of its steps changes the grid by a "
                          "scale); leave it out")
    return deg


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "degrade",
        help=f"simulate a low-resolution scan ({', '.join(STEPS)})",
        description="Writes the low-resolution scan on its coarse grid with a corrected affine (same field of "
        "view). Sizes that are not multiples of the scale are centre-cropped first. The parameters are kept "
        "in the volume's history.",
    )
    p.add_argument("input", help="input scan (NIfTI, DICOM file/folder, PNG, TIFF, NPY)")
    p.add_argument("output", help="output path (.nii.gz, .npy, .png, .tif or a DICOM folder)")
    p.add_argument("--method", default="kspace",
                   help=f"{', '.join(STEPS)}; or a full chain such as "
                   "'kspace:scale=2,window=hamming;noise:snr=30', or a YAML file (default: kspace)")
    p.add_argument("--scale", type=int, help="integer downscale factor (slice spacing ratio for 'slice')")
    p.add_argument("--axes", help="spatial axes to degrade, e.g. 0,1 (default: in-plane 0,1; 'slice': axis 2) or all")
    p.add_argument("--window", help="k-space window: hamming, tukey, fermi or none")
    p.add_argument("--snr", help="add Rician noise at this SNR (relative to the foreground mean), or a range a..b")
    p.add_argument("--seed", type=int, default=0, help="seed of the random parameters and noise (default 0)")
    add_output_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mrisr.io import read_volume, write_volume
    from mrisr.io.atomic import check_output

    deg = degradation_from_options(args.method, args.scale, args.axes, args.window, args.snr)
    check_series_and_like(args.input, args.series, args.output, args.like)
    check_output(args.output, args.force)
    vol = read_volume(args.input, series=args.series)
    out = like_dicom(deg(vol, seed=args.seed), args.like, args.force_like)
    path = write_volume(out, args.output, force=args.force)
    spacing = " x ".join(f"{s:.4g}" for s in out.spacing)
    print(f"wrote {path}: {deg.spec} (seed {args.seed}); shape {vol.shape} -> {out.shape}, spacing {spacing} mm")
    return 0
