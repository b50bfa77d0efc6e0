"""Synthetic patients for tests, demos and trying the pipelines without private data.

``make_example_data(out)`` writes two small cohorts built from phantoms:

- ``out/pediatric/<PID>/<series>/``: one DICOM MR series of 2D axial slices per patient (the pediatric
  study's input), a different "patient" per seed of :func:`~mrisr.data.phantoms.head_phantom`.
- ``out/cardiac/<patient>/<patient>_4d.nii.gz`` + ``<patient>_4d_gt.nii.gz``: 4D cine (X, Y, Z, T) of a
  phantom torso with a beating ellipsoid heart, and its segmentation per frame (ACDC labels: 1 right
  ventricle, 2 myocardium, 3 left ventricle cavity).

and, to exercise the error paths of `mrisr prepare`, inputs that must be reported and skipped:
a CT series (``pediatric/CT001/``), a truncated DICOM file (``pediatric/incoming/corrupt.dcm``) and a
truncated NIfTI (``cardiac/patient_bad/patient_bad_4d.nii.gz``).
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mrisr.data.phantoms import head_phantom
from mrisr.errors import ConfigError, OutputExistsError
from mrisr.io import Volume, write_volume


def _smooth_inside(r: np.ndarray, edge: float = 0.04) -> np.ndarray:
    """1 inside the unit "radius", 0 outside, raised-cosine edge of width ``edge``."""
    w = np.clip((1.0 + edge - r) / (2 * edge), 0.0, 1.0)
    return 0.5 - 0.5 * np.cos(np.pi * w)


def cardiac_phantom(
    shape: Sequence[int] = (96, 96, 8, 10), seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """A 4D cine of a torso with a beating heart, and its label map.

    Args:
        shape: ``(X, Y, Z, T)``; the heart contracts from end-diastole (frame 0) to end-systole
            (frame ``T // 2``) and relaxes back.
        seed: jitters the heart's position, size and the intensities (another "patient").

    Returns:
        ``(image, labels)``: float32 in [0, 1] and uint8 (0 background, 1 RV, 2 myocardium, 3 LV),
        both of shape ``shape``.
    """
    nx, ny, nz, nt = (int(s) for s in shape)
    rng = np.random.default_rng(seed)
    x, y, z = np.meshgrid(np.linspace(-1, 1, nx), np.linspace(-1, 1, ny),
                          np.linspace(-1, 1, nz) if nz > 1 else np.zeros(1), indexing="ij")
    body = _smooth_inside(np.sqrt((x / 0.9) ** 2 + (y / 0.62) ** 2))
    inner = _smooth_inside(np.sqrt((x / 0.84) ** 2 + (y / 0.56) ** 2))
    static = 0.75 * body - 0.45 * inner  # bright subcutaneous fat ring, tissue ~0.3 inside
    for side in (-1, 1):  # lungs (dark)
        static -= 0.25 * _smooth_inside(np.sqrt(((x - side * 0.45) / 0.3) ** 2 + ((y + 0.05) / 0.42) ** 2))
    static += 0.5 * _smooth_inside(np.sqrt((x / 0.09) ** 2 + ((y - 0.45) / 0.09) ** 2))  # spine
    cx, cy, cz = 0.12 + rng.normal(0, 0.04), -0.12 + rng.normal(0, 0.04), rng.normal(0, 0.08)
    r_ed = 0.17 * rng.uniform(0.9, 1.1)
    zr = 0.7 * rng.uniform(0.9, 1.1)  # through-plane extent: apical/basal slices hold no heart
    blood, myo = rng.uniform(0.85, 1.0), rng.uniform(0.4, 0.5)
    image = np.empty((nx, ny, nz, nt), np.float32)
    labels = np.zeros((nx, ny, nz, nt), np.uint8)
    for t in range(nt):
        phase = 0.5 - 0.5 * np.cos(2 * np.pi * t / nt)  # 0 at end-diastole, 1 at end-systole
        r_in = r_ed * (1 - 0.3 * phase)
        r_out = np.sqrt(r_in**2 + (1.35**2 - 1) * r_ed**2)  # myocardium volume conserved: thickens in systole
        rz = np.sqrt(((z - cz) / zr) ** 2)
        d = np.sqrt((x - cx) ** 2 + (y - cy) ** 2)
        lv = np.sqrt((d / r_in) ** 2 + rz**2)
        wall = np.sqrt((d / r_out) ** 2 + rz**2)
        rv = np.sqrt(((x - cx + 1.25 * r_out) / (0.7 * r_out)) ** 2 + ((y - cy) / (1.2 * r_out)) ** 2 + rz**2)
        frame = static * (1 - _smooth_inside(wall)) + myo * _smooth_inside(wall)
        frame += (blood - myo) * _smooth_inside(lv)
        frame = frame * (1 - _smooth_inside(rv)) + 0.9 * blood * _smooth_inside(rv) * (1 - _smooth_inside(wall))
        image[..., t] = frame
        lab = np.zeros((nx, ny, nz), np.uint8)
        lab[(rv < 1) & (wall >= 1)] = 1
        lab[wall < 1] = 2
        lab[lv < 1] = 3
        labels[..., t] = lab
    image = np.clip(image, 0, None)
    return image / max(float(image.max()), 1e-6), labels


def _rician(x: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    return np.sqrt((x + rng.normal(0, sigma, x.shape)) ** 2 + rng.normal(0, sigma, x.shape) ** 2)


def _truncated_copy(src: Path, dst: Path, keep: float = 0.4) -> None:
    data = src.read_bytes()
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_bytes(data[: max(int(len(data) * keep), 200)])


def make_cardiac(out: Path, n_patients: int = 8, shape: Sequence[int] = (96, 96, 8, 10), seed: int = 0,
                 spacing: Sequence[float] = (1.5, 1.5, 8.0), bad: bool = True) -> list[Path]:
    """Write ``n_patients`` 4D cine NIfTI files with masks under ``out``; return the patient folders."""
    rng = np.random.default_rng(seed)
    affine = np.diag([*map(float, spacing), 1.0])
    affine[:3, 3] = [-0.5 * spacing[i] * (shape[i] - 1) for i in range(3)]
    folders = []
    for p in range(n_patients):
        name = f"patient{p + 1:03d}"
        image, labels = cardiac_phantom(shape, seed=seed * 1000 + p)
        scan = (_rician(image * 800.0, 8.0, rng)).round().astype(np.int16)
        folder = out / name
        meta = {"format": "nifti", "time_spacing": 0.04}
        write_volume(Volume(scan.astype(np.float32), affine, meta), folder / f"{name}_4d.nii.gz", force=True)
        write_volume(Volume(labels.astype(np.float32), affine, meta), folder / f"{name}_4d_gt.nii.gz", force=True)
        (folder / "Info.cfg").write_text(f"ED: 1\nES: {shape[3] // 2 + 1}\nGroup: SYNTH\nNbFrame: {shape[3]}\n")
        folders.append(folder)
    if bad and folders:
        _truncated_copy(folders[0] / f"{folders[0].name}_4d.nii.gz", out / "patient_bad" / "patient_bad_4d.nii.gz")
    return folders


def _write_series(vol: Volume, folder: Path, patient_id: str, modality: str, description: str) -> None:
    """A DICOM series through mrisr.io, with the patient, modality and description given."""
    from mrisr.io.dicom.writing import write_dicom_series

    meta = {"patient_id": patient_id, "modality": modality, "series_description": description}
    write_dicom_series(Volume(vol.data, vol.affine, {**vol.meta, **meta}), folder)


def make_pediatric(out: Path, n_patients: int = 8, shape: Sequence[int] = (128, 128, 16), seed: int = 0,
                   spacing: Sequence[float] = (0.5, 0.5, 4.0), bad: bool = True) -> list[Path]:
    """Write ``n_patients`` DICOM MR series of axial 2D slices (head phantoms) under ``out``."""
    rng = np.random.default_rng(seed + 1)
    affine = np.diag([*map(float, spacing), 1.0])
    affine[:3, 3] = [-0.5 * spacing[i] * (shape[i] - 1) for i in range(3)]
    folders = []
    for p in range(n_patients):
        pid = f"PED{p + 1:03d}"
        image = head_phantom(shape, seed=seed * 1000 + p)
        scan = _rician(image * 1000.0, 10.0, rng).round().astype(np.float32)
        folder = out / pid / "t2_axial"
        _write_series(Volume(scan, affine, {"format": "dicom"}), folder, pid, "MR", "T2 axial (synthetic)")
        folders.append(folder.parent)
    if bad:
        ct = (head_phantom((*shape[:2], 2), seed=seed + 77) * 1400.0 - 1000.0).round().astype(np.float32)
        _write_series(Volume(ct, affine, {"format": "dicom"}), out / "CT001" / "head_ct", "CT001", "CT", "CT head (synthetic)")
        if folders:
            first = sorted((folders[0] / "t2_axial").iterdir())[0]
            _truncated_copy(first, out / "incoming" / "corrupt.dcm")
    return folders


#: Hidden file marking a cohort folder as synthetic (``--force`` replaces only such folders).
MARKER = ".mrisr-example"
#: Largest scan the generator writes (voxels), so a typo cannot exhaust memory.
MAX_VOXELS = 1 << 26


def make_example_data(
    out: str | Path,
    n_patients: int = 8,
    seed: int = 0,
    *,
    pediatric_shape: Sequence[int] = (128, 128, 16),
    cardiac_shape: Sequence[int] = (96, 96, 8, 10),
    bad_inputs: bool = True,
    pediatric: bool = True,
    cardiac: bool = True,
    force: bool = False,
) -> dict[str, Any]:
    """Write the two synthetic cohorts under ``out`` (see the module docstring).

    Args:
        n_patients: patients per cohort (8 x 16 pediatric slices: enough for the pediatric config's
            64-image test set).
        pediatric_shape: ``(X, Y, Z)`` of each pediatric series (Z slices of X x Y pixels).
        cardiac_shape: ``(X, Y, Z, T)`` of each cardiac cine.
        bad_inputs: also write the inputs that `mrisr prepare` must skip (CT series, truncated files).
        force: replace existing ``out/pediatric`` and ``out/cardiac`` folders.

    Raises:
        OutputExistsError: a cohort folder exists and ``force`` is False.

    Returns:
        ``{"pediatric": folder, "cardiac": folder, "patients": {...}, "bad_inputs": [...]}``.
    """
    if int(n_patients) < 1:
        raise ConfigError(f"n_patients: at least 1, got {n_patients}")
    if int(seed) < 0:
        raise ConfigError(f"seed: a non-negative integer, got {seed}")
    for what, shape, n in (("pediatric_shape", pediatric_shape, 3), ("cardiac_shape", cardiac_shape, 4)):
        dims = [int(v) for v in shape]
        if len(dims) != n or min(dims[:2]) < 8 or min(dims) < 1:
            raise ConfigError(f"{what}: {n} sizes with at least 8 x 8 pixels, got {'x'.join(map(str, shape))}")
        if int(np.prod(dims)) > MAX_VOXELS:
            raise ConfigError(f"{what}: {'x'.join(map(str, dims))} is more than {MAX_VOXELS:,} voxels per scan")
    root = Path(out)
    for name, wanted in (("pediatric", pediatric), ("cardiac", cardiac)):
        if wanted and (root / name).exists():
            if not force:
                raise OutputExistsError(f"{root / name} already exists (use --force to replace it)")
            folder = root / name
            if folder.is_dir() and any(folder.iterdir()) and not (folder / MARKER).is_file():
                # --force must never delete real patients that happen to sit in OUT/pediatric
                raise OutputExistsError(f"{folder} was not written by make-example-data; not replacing it")
            if folder.is_dir():
                shutil.rmtree(folder)
            else:
                folder.unlink()
    result: dict[str, Any] = {"root": str(root), "patients": {}, "bad_inputs": []}
    for name, wanted in (("pediatric", pediatric), ("cardiac", cardiac)):
        if wanted:
            (root / name).mkdir(parents=True, exist_ok=True)
            (root / name / MARKER).write_text("synthetic example data written by `mrisr make-example-data`\n")
    if pediatric:
        folders = make_pediatric(root / "pediatric", n_patients, pediatric_shape, seed, bad=bad_inputs)
        result["pediatric"] = str(root / "pediatric")
        result["patients"]["pediatric"] = [f.name for f in folders]
        if bad_inputs:
            result["bad_inputs"] += ["pediatric/CT001/head_ct (CT)", "pediatric/incoming/corrupt.dcm (truncated)"]
    if cardiac:
        folders = make_cardiac(root / "cardiac", n_patients, cardiac_shape, seed, bad=bad_inputs)
        result["cardiac"] = str(root / "cardiac")
        result["patients"]["cardiac"] = [f.name for f in folders]
        if bad_inputs:
            result["bad_inputs"].append("cardiac/patient_bad/patient_bad_4d.nii.gz (truncated)")
    return result
