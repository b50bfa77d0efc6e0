"""Start-up cost: building the CLI's parsers and ``mrisr info`` on a NIfTI import no heavy library.

Each check runs in a fresh interpreter (the test process itself has torch loaded long before).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

#: Libraries that cost a second or more of CPU to import and that no parser needs.
HEAVY = ("torch", "scipy", "skimage", "matplotlib", "pydicom", "safetensors")


def _imported_after(code: str) -> list[str]:
    """The :data:`HEAVY` modules that ``code`` leaves in ``sys.modules`` of a new interpreter."""
    probe = f"{code}\nimport sys\nprint('imported:' + ','.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True)
    line = out.stdout.strip().splitlines()[-1]
    assert line.startswith("imported:"), out.stdout
    return [m for m in line.removeprefix("imported:").split(",") if m]


def test_building_the_parsers_imports_no_heavy_library() -> None:
    assert _imported_after("import mrisr.cli\nmrisr.cli.build_parser()") == []


def test_help_and_version_import_no_heavy_library() -> None:
    for flag in ("--help", "--version"):
        code = f"import mrisr.cli\ntry:\n    mrisr.cli.main([{flag!r}])\nexcept SystemExit as e:\n    assert e.code == 0"
        assert _imported_after(code) == [], flag


def test_info_on_a_nifti_imports_no_torch(tmp_path: Path) -> None:
    import nibabel as nib

    path = tmp_path / "scan.nii.gz"
    nib.save(nib.Nifti1Image(np.arange(4 * 5 * 3, dtype=np.float32).reshape(4, 5, 3), np.eye(4)), str(path))
    code = f"import mrisr.cli\nassert mrisr.cli.main(['info', {str(path)!r}]) == 0"
    imported = _imported_after(code)
    # nibabel would import pydicom (0.5 s) for header extensions mrisr never reads: mrisr.io.nifti hides it
    assert not {"torch", "skimage", "matplotlib", "pydicom"} & set(imported)


def test_dicom_still_reads_after_nifti_loaded_nibabel(tmp_path: Path) -> None:
    # pydicom is hidden only while nibabel loads; DICOM I/O in the same process imports it normally
    code = ("import mrisr.io.nifti, sys\nassert 'pydicom' not in sys.modules\n"
            "import pydicom\nfrom mrisr.io.dicom import reference_header\nassert pydicom.Dataset")
    assert "pydicom" in _imported_after(code)
