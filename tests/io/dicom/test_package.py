"""The package's public API and its import cost: ``mrisr.io.dicom`` re-exports the readers and writers of
its modules, and importing it loads neither torch nor pydicom (pydicom loads when a file is read)."""

from __future__ import annotations

import subprocess
import sys

import mrisr.io.dicom as dicom
from mrisr.io.dicom import scanning, series, writing


def test_public_names_are_the_functions_of_the_modules_that_do_the_job():
    assert dicom.read_dicom_file is series.read_dicom_file
    assert dicom.read_dicom_folder is scanning.read_dicom_folder
    assert dicom.find_series is scanning.find_series
    assert dicom.write_dicom_series is writing.write_dicom_series
    assert dicom.series_suffix is writing.series_suffix
    assert dicom.reference_header is writing.reference_header
    assert sorted(dicom.__all__) == sorted(n for n in vars(dicom) if not n.startswith("_") and callable(vars(dicom)[n]))


def test_importing_the_io_package_loads_neither_torch_nor_pydicom():
    probe = ("import sys, mrisr.io, mrisr.io.dicom\n"
             "print(','.join(m for m in ('torch', 'pydicom') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == ""
