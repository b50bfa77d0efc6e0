"""One entry point to read any supported scan and one to write it: :func:`read_volume`, :func:`write_volume`."""

from __future__ import annotations

from pathlib import Path

from mrisr.errors import InputError
from mrisr.io.atomic import atomic_path
from mrisr.io.detect import detect_format, output_format
from mrisr.io.volume import Volume


def read_volume(path: str | Path, series: str | None = None) -> Volume:
    """Read a scan chosen by content: NIfTI, FreeSurfer MGH/MGZ, DICOM (file, multi-frame, series folder),
    PNG/TIFF, NPY.

    Args:
        path: a file, or a folder holding one DICOM series.
        series: SeriesInstanceUID to pick when a folder holds several series.

    Raises:
        InputError: anything wrong with the input, as one readable line.
    """
    fmt = detect_format(path)
    if fmt == "nifti":
        from mrisr.io.nifti import read_nifti

        return read_nifti(path)
    if fmt == "mgh":
        from mrisr.io.nifti import read_mgh

        return read_mgh(path)
    if fmt in ("dicom", "dicom-folder"):
        if fmt == "dicom-folder":
            from mrisr.io.dicom.scanning import read_dicom_folder

            return read_dicom_folder(path, series=series)
        from mrisr.io.dicom.series import read_dicom_file

        return read_dicom_file(path)
    if fmt in ("png", "tiff"):
        from mrisr.io.image2d import read_image2d

        return read_image2d(path)
    if fmt == "npy":
        from mrisr.io.image2d import read_npy

        return read_npy(path)
    raise InputError(f"{path}: unsupported format {fmt}")  # pragma: no cover - detect_format is exhaustive


def write_volume(volume: Volume, path: str | Path, force: bool = False) -> Path:
    """Write ``volume`` atomically, format chosen by ``path`` (see :func:`~mrisr.io.detect.output_format`).

    DICOM output is a derived series folder; it needs ``volume.meta["dicom_headers"]`` or builds
    minimal headers from the geometry when the source was not DICOM.

    Raises:
        OutputExistsError: ``path`` exists and ``force`` is False.
    """
    fmt = output_format(path)
    volume.check_finite()
    target = Path(str(path).rstrip("/\\"))
    if fmt in ("png", "tiff"):
        from mrisr.io.image2d import check_image_shape

        check_image_shape(volume, target, fmt)
    with atomic_path(target, force=force) as tmp:
        if fmt == "nifti":
            from mrisr.io.nifti import write_nifti

            write_nifti(volume, tmp)
        elif fmt == "png":
            from mrisr.io.image2d import write_png

            write_png(volume, tmp)
        elif fmt == "tiff":
            from mrisr.io.image2d import write_tiff

            write_tiff(volume, tmp)
        elif fmt == "npy":
            from mrisr.io.image2d import write_npy

            write_npy(volume, tmp)
        else:
            from mrisr.io.dicom.writing import write_dicom_series

            write_dicom_series(volume, tmp)
    return target
