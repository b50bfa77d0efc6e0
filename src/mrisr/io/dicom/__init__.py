"""DICOM <-> :class:`~mrisr.io.volume.Volume`: single files, enhanced multi-frame MR, series folders,
and derived-series output.

One job per module, in import order:

* :mod:`~mrisr.io.dicom.reading`: parse files (preamble or raw, gzip-wrapped), check headers, decode
  pixel data, rescale.
* :mod:`~mrisr.io.dicom.geometry`: frames with their patient geometry; IPP/IOP/PixelSpacing <-> affine,
  LPS <-> RAS.
* :mod:`~mrisr.io.dicom.series`: sort frames along the slice normal, check spacing, build 3D/4D volumes
  (:func:`read_dicom_file`).
* :mod:`~mrisr.io.dicom.scanning`: find the series in a folder and read the chosen one
  (:func:`find_series`, :func:`read_dicom_folder`, ``--series UID``).
* :mod:`~mrisr.io.dicom.writing`: derived series with new UIDs (:func:`write_dicom_series`,
  :func:`series_suffix`) and ``--like`` headers (:func:`reference_header`).

pydicom is imported only when a file is read or written.
"""

from mrisr.io.dicom.scanning import find_series, read_dicom_folder
from mrisr.io.dicom.series import read_dicom_file
from mrisr.io.dicom.writing import reference_header, series_suffix, write_dicom_series

__all__ = [
    "find_series",
    "read_dicom_file",
    "read_dicom_folder",
    "reference_header",
    "series_suffix",
    "write_dicom_series",
]
