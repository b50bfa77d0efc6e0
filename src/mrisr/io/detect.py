"""Choose a reader by content (magic bytes), falling back to the extension only to break ties."""

from __future__ import annotations

import gzip
from pathlib import Path

from mrisr.errors import InputError
from mrisr.io.messages import one_line

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
TIFF_MAGICS = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
NPY_MAGIC = b"\x93NUMPY"
GZIP_MAGIC = b"\x1f\x8b"


def _nifti_magic(header: bytes) -> bool:
    # NIfTI-1 magic at byte 344 ("n+1\0" single file, "ni1\0" pair); NIfTI-2 at byte 4 ("n+2\0...").
    return header[344:348] in (b"n+1\x00", b"ni1\x00") or header[4:8] in (b"n+2\x00", b"ni2\x00")


def _analyze_header(header: bytes) -> bool:
    # Analyze 7.5 / NIfTI headers start with sizeof_hdr = 348 (either byte order).
    return header[:4] in (b"\x5c\x01\x00\x00", b"\x00\x00\x01\x5c")


_ANALYZE_MESSAGE = (
    "is an Analyze 7.5 image, whose header cannot say which side is left (no orientation); mrisr refuses to "
    "guess. Convert it to NIfTI with the tool that wrote it, or with nibabel if you know its orientation"
)


def _paired_header(p: Path) -> Path | None:
    """The ``.hdr`` next to an ``.img`` (``x.img`` / ``x.img.gz`` -> ``x.hdr`` / ``x.hdr.gz``)."""
    name = p.name
    for img, hdr in ((".img", ".hdr"), (".img.gz", ".hdr.gz"), (".IMG", ".HDR")):
        if name.endswith(img):
            for cand in (p.with_name(name[: -len(img)] + hdr), p.with_name(name[: -len(img)] + ".hdr")):
                if cand.is_file():
                    return cand
    return None


#: Formats people try that mrisr does not read (named in the error instead of "unknown format").
_OTHER_FORMATS = {
    ".par": "Philips PAR/REC", ".rec": "Philips PAR/REC", ".mnc": "MINC", ".head": "AFNI", ".brik": "AFNI",
    ".nrrd": "NRRD", ".nhdr": "NRRD", ".mha": "MetaImage", ".mhd": "MetaImage", ".jpg": "JPEG", ".jpeg": "JPEG",
}


def _mgh_header(header: bytes) -> bool:
    # FreeSurfer MGH: big-endian int32 version 1, then width, height, depth, frames (all > 0)
    if len(header) < 20 or header[:4] != b"\x00\x00\x00\x01":
        return False
    dims = [int.from_bytes(header[i:i + 4], "big", signed=True) for i in range(4, 20, 4)]
    return all(d > 0 for d in dims)


def detect_format(path: str | Path) -> str:
    """Return one of ``"nifti"``, ``"mgh"``, ``"dicom"``, ``"dicom-folder"``, ``"png"``, ``"tiff"``, ``"npy"``.

    Raises:
        InputError: the path does not exist, is empty, or its content is of no known format.
    """
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: no such file or folder")
    if p.is_dir():
        return "dicom-folder"
    try:
        with open(p, "rb") as fh:
            head = fh.read(544)
    except OSError as exc:
        raise InputError(f"cannot read {p}: {exc.strerror}") from None
    if not head:
        raise InputError(f"{p} is empty")
    hdr = _paired_header(p)
    if hdr is not None:
        # the image half of a header/image pair: the header decides
        if detect_format(hdr) == "nifti":
            return "nifti"
        raise InputError(f"{p}: unknown file format (its header {hdr.name} is not NIfTI)")  # pragma: no cover
    if head.startswith(GZIP_MAGIC):
        try:
            with gzip.open(p, "rb") as fh:
                inner = fh.read(544)
        except (OSError, EOFError) as exc:
            raise InputError(f"{p}: corrupt gzip data ({one_line(exc)})") from None
        if _nifti_magic(inner):
            return "nifti"
        if inner[128:132] == b"DICM":
            return "dicom"
        if _mgh_header(inner) and p.name.lower().endswith((".mgz", ".mgh.gz")):
            return "mgh"
        if _analyze_header(inner) and p.name.lower().endswith(".hdr.gz"):
            raise InputError(f"{p} {_ANALYZE_MESSAGE}")
        raise InputError(f"{p}: gzip file that holds neither a NIfTI image nor a DICOM file")
    if _nifti_magic(head):
        return "nifti"
    if _mgh_header(head) and p.suffix.lower() == ".mgh":
        return "mgh"
    if _analyze_header(head) and p.suffix.lower() == ".hdr":
        raise InputError(f"{p} {_ANALYZE_MESSAGE}")
    if head[128:132] == b"DICM":
        return "dicom"
    if head.startswith(PNG_MAGIC):
        return "png"
    if head.startswith(TIFF_MAGICS):
        return "tiff"
    if head.startswith(NPY_MAGIC):
        return "npy"
    # DICOM without the 128-byte preamble ("raw" data sets) usually starts with group 0x0008 or 0x0002;
    # otherwise trust a DICOM-like name (".dcm", no extension, or numeric UID-style suffix such as
    # "1.2.840.113619.2.1"); the reader validates and reports files that are not DICOM.
    if head[:2] in (b"\x08\x00", b"\x02\x00"):
        return "dicom"
    if p.suffix.lower() in (".dcm", ".dicom", ".ima") or p.suffix == "" or p.suffix[1:].isdigit():
        return "dicom"
    other = _OTHER_FORMATS.get(p.suffix.lower())
    if other:
        raise InputError(f"{p}: {other} files are not read by mrisr; convert to NIfTI first "
                         "(dcm2niix, or nibabel for the formats it reads)")
    raise InputError(f"{p}: unknown file format (expected NIfTI, DICOM, MGH/MGZ, PNG, TIFF or NPY)")


def output_format(path: str | Path) -> str:
    """Format of an output path: ``"nifti"``, ``"png"``, ``"tiff"``, ``"npy"`` or ``"dicom-folder"``.

    An existing folder, a path ending with ``/`` or a name without extension is a DICOM series folder.
    """
    s = str(path)
    p = Path(s)
    if s.endswith(("/", "\\")) or p.is_dir() or p.suffix == "":
        return "dicom-folder"
    name = p.name.lower()
    if name.endswith((".nii", ".nii.gz")):
        return "nifti"
    if name.endswith(".png"):
        return "png"
    if name.endswith((".tif", ".tiff")):
        return "tiff"
    if name.endswith(".npy"):
        return "npy"
    if name.endswith(".dcm"):
        raise InputError(f"{p}: write a DICOM series to a folder (a path ending with '/'), not a .dcm file")
    raise InputError(f"{p}: unknown output format (use .nii, .nii.gz, .png, .tif, .npy or a folder for DICOM)")
