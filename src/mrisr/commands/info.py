"""`mrisr info PATH`: shape, spacing, orientation, intensity range, modality and series description."""

from __future__ import annotations

import argparse
import json

import numpy as np

from mrisr.io import read_volume


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("info", help="describe a scan (shape, spacing, orientation, intensities)")
    p.add_argument("path", help="NIfTI, DICOM file/folder, PNG, TIFF or NPY")
    p.add_argument("--series", help="SeriesInstanceUID to pick when a folder holds several series")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    p.set_defaults(func=run)


def describe(path: str, series: str | None = None) -> dict[str, object]:
    vol = read_volume(path, series=series)
    data = vol.data
    info: dict[str, object] = {
        "path": path,
        "format": vol.meta.get("format"),
        "shape": list(vol.shape),
        "spacing_mm": [round(s, 6) for s in vol.spacing],
        "orientation": vol.orientation,
        "intensity_min": float(np.min(data)),
        "intensity_max": float(np.max(data)),
        "intensity_mean": float(np.mean(data)),
        "modality": vol.meta.get("modality"),
        "series_description": vol.meta.get("series_description"),
        "affine": np.round(vol.affine, 6).tolist(),
    }
    if "time_spacing" in vol.meta:
        info["time_spacing_s"] = vol.meta["time_spacing"]
    if "series_uid" in vol.meta:
        info["series_uid"] = vol.meta["series_uid"]
    return info


def run(args: argparse.Namespace) -> int:
    info = describe(args.path, series=args.series)
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    width = max(len(k) for k in info)
    for key, value in info.items():
        if key == "affine":
            rows = [" ".join(f"{v:10.4f}" for v in row) for row in value]  # type: ignore[union-attr]
            print(f"{key:<{width}}  {rows[0]}")
            for row in rows[1:]:
                print(f"{'':<{width}}  {row}")
        elif value is not None:
            print(f"{key:<{width}}  {value}")
    return 0
