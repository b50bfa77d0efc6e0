"""What a model is for: the ``intended_use`` entry of a model file, and the check of a scan against it.

A model file may record (all keys optional)::

    "intended_use": {
        "modality": "MR",                  # DICOM Modality of the training images
        "image": "magnitude",              # magnitude images: outputs are never negative (see mrisr.infer)
        "contrasts": "T1w templates + synthetic contrasts from label maps",   # free text, for people
        "anatomy": "brain (human, macaque); synthetic",                        # free text, for people
        "voxel_size_mm": [0.5, 2.0],       # high-resolution (output) voxel sizes seen in training, mm
        "degradation": "kspace:scale=2"    # what the low-resolution input is assumed to be
    }

:func:`use_warnings` compares a scan with it and returns one line per mismatch (another modality, a voxel
size outside the trained range: the voxels the model would write, input spacing / factor, compared with
the training targets); ``mrisr upscale`` prints them and goes on: the user decides. Files
without the entry (older models) give no warning.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from mrisr.errors import ConfigError

#: Keys of ``intended_use`` and what each must be.
KEYS = ("modality", "image", "contrasts", "anatomy", "voxel_size_mm", "degradation")
IMAGES = ("magnitude", "real")
#: A voxel size this far outside the trained range (as a ratio) is worth a warning.
SPACING_TOLERANCE = 1.25


def intended_use(meta: Mapping[str, Any] | None) -> dict[str, Any]:
    """The checked ``intended_use`` entry of model metadata (``{}`` when absent)."""
    raw = (meta or {}).get("intended_use") or {}
    if not isinstance(raw, Mapping):
        raise ConfigError("intended_use: expected a mapping")
    unknown = sorted(set(raw) - set(KEYS))
    if unknown:
        raise ConfigError(f"intended_use: unknown key(s) {', '.join(unknown)} (known: {', '.join(KEYS)})")
    use = dict(raw)
    if "image" in use and use["image"] not in IMAGES:
        raise ConfigError(f"intended_use.image: one of {', '.join(IMAGES)}, got {use['image']!r}")
    if "voxel_size_mm" in use:
        vs = use["voxel_size_mm"]
        if (not isinstance(vs, Sequence) or len(vs) != 2 or not all(isinstance(v, int | float) for v in vs)
                or not 0 < vs[0] <= vs[1]):
            raise ConfigError(f"intended_use.voxel_size_mm: [smallest, largest] in mm, got {vs!r}")
        use["voxel_size_mm"] = [float(vs[0]), float(vs[1])]
    return use


def use_warnings(meta: Mapping[str, Any] | None, modality: str | None, output_mm: Sequence[float],
                 name: str = "the model") -> list[str]:
    """One line per way a scan differs from what the model was trained on.

    Args:
        meta: model metadata.
        modality: the scan's DICOM Modality (``None`` when unknown, e.g. NIfTI: no warning).
        output_mm: voxel sizes the output would have along the axes the model refines (input spacing /
            factor), mm: what the training targets' ``voxel_size_mm`` describes.
        name: how to call the model in the lines.
    """
    use = intended_use(meta)
    out: list[str] = []
    want = use.get("modality")
    if want and modality and str(modality).upper() != str(want).upper():
        out.append(f"the scan is {modality} but {name} was trained on {want} images; its output may be wrong")
    vs = use.get("voxel_size_mm")
    if vs and output_mm:
        lo, hi = min(output_mm), max(output_mm)
        if lo < vs[0] / SPACING_TOLERANCE or hi > vs[1] * SPACING_TOLERANCE:
            sizes = " x ".join(f"{v:.3g}" for v in output_mm)
            out.append(f"the output's voxels ({sizes} mm) are outside the {vs[0]:g}-{vs[1]:g} mm {name} was "
                       "trained to produce; check it against the baselines (mrisr evaluate)")
    return out
