"""`mrisr info PATH`: shape, spacing, orientation, intensity range, modality and series description."""

from __future__ import annotations

import argparse
import json
from typing import Any


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "info",
        help="describe a scan (shape, spacing, orientation, intensities)",
        description="Describe a scan: NIfTI, DICOM file / multi-frame file / series folder, PNG, TIFF or NPY.",
    )
    p.add_argument("path", help="NIfTI, DICOM file/folder, PNG, TIFF or NPY")
    p.add_argument("--series", help="SeriesInstanceUID to pick when a folder holds several series")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    p.add_argument("--show-phi", action="store_true",
                   help="also show the patient's name, ID and birth date of a DICOM scan (hidden by default)")
    p.set_defaults(func=run)


#: DICOM attributes identifying the patient that ``--show-phi`` adds: summary key -> keyword.
PHI_ATTRIBUTES = {"patient_name": "PatientName", "patient_id": "PatientID", "patient_birth_date": "PatientBirthDate"}


def describe(path: str, series: str | None = None, show_phi: bool = False) -> dict[str, Any]:
    """Summary of a scan as a JSON-friendly dict (keys in display order; absent facts are None).

    Patient name, ID and birth date (DICOM) are included only with ``show_phi``."""
    import numpy as np

    from mrisr.io import read_volume

    vol = read_volume(path, series=series)
    data = vol.data
    meta = vol.meta
    rescale = meta.get("rescale")
    info: dict[str, Any] = {
        "path": path,
        "format": meta.get("format"),
        "shape": list(vol.shape),
        "spacing_mm": [round(s, 6) for s in vol.spacing],
        "orientation": vol.orientation,
        "intensity_min": float(np.min(data)),
        "intensity_max": float(np.max(data)),
        "intensity_mean": float(np.mean(data)),
        "modality": meta.get("modality"),
        "series_description": meta.get("series_description"),
        "series_uid": meta.get("series_uid"),
        "time_spacing_s": meta.get("time_spacing"),
        "stored_dtype": meta.get("stored_dtype"),
        "rescale_slope_intercept": list(rescale) if isinstance(rescale, tuple | list) else None,
        "dicom_files": meta.get("n_files"),
        "affine": np.round(vol.affine, 6).tolist(),
    }
    headers = meta.get("dicom_headers") or []
    if show_phi and headers:
        info.update({key: str(headers[0].get(kw, "")) or None for key, kw in PHI_ATTRIBUTES.items()})
    return info


def format_info(info: dict[str, Any]) -> str:
    """Aligned ``key  value`` lines; the affine as a 4x4 block; keys without a value are left out."""
    shown = {k: v for k, v in info.items() if v is not None}
    width = max(len(k) for k in shown)
    lines = []
    for key, value in shown.items():
        if key == "affine":
            rows = [" ".join(f"{float(v):10.4f}" for v in row) for row in value]
            lines.append(f"{key:<{width}}  {rows[0]}")
            lines.extend(f"{'':<{width}}  {row}" for row in rows[1:])
        elif key in ("shape", "spacing_mm"):
            lines.append(f"{key:<{width}}  {' x '.join(f'{v:g}' for v in value)}")
        elif isinstance(value, float):
            lines.append(f"{key:<{width}}  {value:.6g}")
        else:
            lines.append(f"{key:<{width}}  {value}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    info = describe(args.path, series=args.series, show_phi=args.show_phi)
    print(json.dumps(info, indent=2) if args.json else format_info(info))
    return 0
