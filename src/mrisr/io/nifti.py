"""NIfTI-1/2 (``.nii``, ``.nii.gz``) <-> Volume through nibabel; FreeSurfer MGH/MGZ read the same way."""

from __future__ import annotations

import gzip
import io
import logging
import math
import sys
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from mrisr.errors import InputError
from mrisr.io.limits import check_voxel_count
from mrisr.io.messages import holding_warnings, one_line
from mrisr.io.volume import Volume

# nibabel.nifti1 imports pydicom when it is installed (half a second of CPU, more than all the rest of
# `mrisr info scan.nii.gz`) only to decode DICOM header extensions (NIfTI ecode 2), which mrisr never reads;
# without pydicom, nibabel keeps such an extension as raw bytes. So pydicom is hidden while nibabel loads
# (None in sys.modules makes an import fail) and imports normally afterwards, for mrisr's DICOM I/O.
_HIDE_PYDICOM = "pydicom" not in sys.modules and "nibabel" not in sys.modules
if _HIDE_PYDICOM:
    sys.modules["pydicom"] = None  # type: ignore[assignment]
try:
    import nibabel as nib
finally:
    if _HIDE_PYDICOM and sys.modules.get("pydicom", 0) is None:
        del sys.modules["pydicom"]

log = logging.getLogger(__name__)


def _load(path: Path) -> tuple[Any, io.IOBase | None]:
    """``(nibabel image, open stream or None)``; the content decides, not the name.

    nibabel picks its reader by file name, so a NIfTI named ``scan``, ``scan.dcm`` or ``scan.nii`` while
    gzip-compressed is read from a stream instead (kept open until the voxels are read).
    """
    with open(path, "rb") as fh:
        gz = fh.read(2) == b"\x1f\x8b"
    name = path.name.lower()
    if name.endswith((".hdr", ".img", ".hdr.gz", ".img.gz")) or name.endswith(".nii.gz" if gz else ".nii"):
        return nib.load(str(path)), None
    stream: io.IOBase = gzip.open(path, "rb") if gz else open(path, "rb")  # closed by the caller
    try:
        head = stream.read(348)  # type: ignore[attr-defined]
        stream.seek(0)
        cls = nib.Nifti2Image if head[4:8] in (b"n+2\x00", b"ni2\x00") else nib.Nifti1Image
        return cls.from_stream(stream), stream
    except BaseException:
        stream.close()
        raise


@holding_warnings
def read_nifti(path: str | Path) -> Volume:
    """Read a 2D/3D/4D NIfTI file; scaling (scl_slope/scl_inter) applied; affine from sform/qform.

    The header is checked as stored, before nibabel "fixes" it: spatial voxel sizes (``pixdim[1..3]``)
    must be finite and positive, and the sform / qform in use finite and non-singular; mrisr refuses
    rather than invent a spacing or an orientation. A gzip stream is read to its end first, so a corrupt or
    cut stream (CRC, length) is refused before any voxel is used.

    Raises:
        InputError: the file's problem, as one line naming it.
    """
    path = Path(path)
    try:
        img, stream = _load(path)
    except Exception as exc:  # nibabel raises many types for broken headers
        raise InputError(f"cannot read NIfTI {path}: {one_line(exc)}") from None
    try:
        return _volume_from(img, path)
    finally:
        if stream is not None:
            stream.close()


@holding_warnings
def read_mgh(path: str | Path) -> Volume:
    """Read a FreeSurfer ``.mgh`` / ``.mgz`` volume (RAS mm affine from its header, as nibabel gives it)."""
    path = Path(path)
    try:
        img: Any = nib.load(str(path))
    except Exception as exc:
        raise InputError(f"cannot read MGH {path}: {one_line(exc)}") from None
    shape = tuple(int(s) for s in img.shape)
    check_voxel_count(shape, path)
    _check_data_length(path, 284 + math.prod(shape) * img.get_data_dtype().itemsize, path)
    while len(shape) > 3 and shape[-1] == 1:
        shape = shape[:-1]
    if len(shape) > 4:
        raise InputError(f"{path}: {len(shape)}D MGH data is not supported")
    try:
        data = np.asarray(img.dataobj, dtype=np.float32).reshape(shape)
    except Exception as exc:
        raise InputError(f"cannot read voxels of {path} (truncated file?): {one_line(exc)}") from None
    meta: dict[str, object] = {"format": "mgh", "source": str(path), "modality": "MR"}
    vol = Volume(data=data, affine=_checked_affine(img.affine, path, "its header"), meta=meta)
    vol.check_finite()
    return vol


def _volume_from(img: Any, path: Path) -> Volume:
    if type(img).__name__.startswith("Cifti"):
        raise InputError(f"{path} is a CIFTI file (surface/grayordinate data), not a volume on a voxel grid")
    # Nifti1Pair / Nifti2Pair cover the single-file images too (.hdr/.img pairs are their parents)
    if not isinstance(img, nib.Nifti1Pair | nib.Nifti2Pair):
        raise InputError(f"{path} is not a NIfTI image")
    image_file = getattr(img.file_map.get("image"), "filename", None)
    if image_file and not Path(image_file).is_file():
        raise InputError(f"{path}: NIfTI header whose image file {Path(image_file).name} is missing (.hdr/.img pair)")
    _check_stored_header(Path(getattr(img.file_map.get("header"), "filename", None) or path), path)
    if int(img.header["sform_code"]) == 0 and int(img.header["qform_code"]) == 0:
        log.warning("%s: neither sform nor qform is set, so the orientation is unknown; assuming nibabel's "
                    "default (x flipped: LAS) from the voxel sizes", path)
    shape = tuple(int(s) for s in img.shape)
    check_voxel_count(shape, path)
    data_file = Path(image_file) if image_file else path
    expected = int(img.header.get_data_offset()) + math.prod(shape) * img.get_data_dtype().itemsize
    _check_data_length(data_file, expected, path)
    if len(shape) > 4:
        # Trailing singleton dimensions (e.g. X, Y, Z, 1, 1) are squeezed; real 5D data is refused.
        while len(shape) > 4 and shape[-1] == 1:
            shape = shape[:-1]
        if len(shape) > 4:
            raise InputError(f"{path}: {len(img.shape)}D NIfTI with shape {img.shape} is not supported")
    if np.issubdtype(img.get_data_dtype(), np.complexfloating) or img.get_data_dtype().names:
        raise InputError(f"{path}: complex or RGB NIfTI data is not supported (one real channel expected)")
    try:
        data = np.asarray(img.dataobj, dtype=np.float32).reshape(shape)
    except Exception as exc:
        raise InputError(f"cannot read voxels of {path} (truncated file?): {one_line(exc)}") from None
    if data.ndim == 3 and data.shape[2] == 1 and shape[2] == 1:
        pass  # a single-slice 3D file stays 3D so that writing it back keeps the slice geometry
    zooms = img.header.get_zooms()
    meta: dict[str, object] = {"format": "nifti", "source": str(path), "modality": "MR"}
    if data.ndim == 4 and len(zooms) >= 4:
        unit = _units(img.header, path)[1]
        scale = {"msec": 1e-3, "usec": 1e-6}.get(unit, 1.0)
        meta["time_spacing"] = float(zooms[3]) * scale
    descrip = img.header.get("descrip")
    if descrip is not None:
        text = np.asarray(descrip).tobytes().split(b"\x00")[0].decode("latin-1").strip()
        if text:
            meta["series_description"] = text
    affine = _checked_affine(img.affine, path, "its sform/qform")
    space_unit = _units(img.header, path)[0]
    to_mm = {"meter": 1000.0, "micron": 1e-3}.get(space_unit, 1.0)
    if to_mm != 1.0:
        # mrisr's world is in mm; the header's spatial unit says what its affine is in
        affine = np.diag([to_mm, to_mm, to_mm, 1.0]) @ affine
    vol = Volume(data=data, affine=affine, meta=meta)
    vol.check_finite()
    return vol


def _stored_header(header_file: Path) -> Any:
    """The NIfTI-1/2 header of ``header_file`` as stored (nibabel's header checks and fixes not applied)."""
    with open(header_file, "rb") as raw:
        gz = raw.read(2) == b"\x1f\x8b"
    with (gzip.open(header_file, "rb") if gz else open(header_file, "rb")) as fh:
        block = fh.read(540)
    cls = nib.Nifti2Header if block[4:8] in (b"n+2\x00", b"ni2\x00") else nib.Nifti1Header
    return cls.from_fileobj(io.BytesIO(block[: cls.template_dtype.itemsize]), check=False)


def _check_stored_header(header_file: Path, path: Path) -> None:
    """Refuse voxel sizes and transforms that nibabel would silently repair (0 -> 1 mm, negative -> abs).

    Rule: ``pixdim[1..min(dim[0], 3)]`` (mm) are finite and > 0; an sform in use (``sform_code > 0``)
    has finite rows and a non-singular 3x3 part; a qform in use has a finite quaternion and offset.
    """
    try:
        hdr = _stored_header(header_file)
    except Exception:
        return  # unreadable headers are nibabel's to report (it already parsed this one)
    ndim = int(hdr["dim"][0])
    for i in range(1, min(ndim, 3) + 1):
        size = float(hdr["pixdim"][i])
        if not (math.isfinite(size) and size > 0):
            raise InputError(f"{path}: pixdim[{i}] (the voxel size along axis {i - 1}) is {size:g}; voxel sizes "
                             "must be positive mm (mrisr does not invent a spacing)")
    if int(hdr["sform_code"]) > 0:
        srows = np.stack([hdr["srow_x"], hdr["srow_y"], hdr["srow_z"]]).astype(np.float64)
        if not np.all(np.isfinite(srows)) or abs(np.linalg.det(srows[:, :3])) < 1e-12:
            raise InputError(f"{path}: the sform (srow_x/y/z) is NaN, infinite or singular; its orientation is "
                             "unknown (mrisr does not invent one)")
    if int(hdr["qform_code"]) > 0:
        quat = [float(hdr[k]) for k in ("quatern_b", "quatern_c", "quatern_d", "qoffset_x", "qoffset_y", "qoffset_z")]
        if not all(math.isfinite(q) for q in quat):
            raise InputError(f"{path}: the qform (quaternion or offset) is NaN or infinite; its orientation is "
                             "unknown (mrisr does not invent one)")


def _units(header: Any, path: Path) -> tuple[str, str]:
    """``(space unit, time unit)`` labels of ``xyzt_units`` (nibabel raises KeyError on codes it does not know).

    Raises:
        InputError: a spatial code that is no NIfTI unit (the affine's scale would be unknown); an unknown
            time code reads as "unknown".
    """
    code = int(header["xyzt_units"])
    labels = nib.nifti1.unit_codes.label
    space, time = code % 8, code - code % 8
    if space not in labels:
        raise InputError(f"{path}: xyzt_units {code} names no spatial unit (NIfTI codes 0-3: unknown, m, mm, "
                         "micron), so the voxel size is unknown")
    return str(labels[space]), str(labels.get(time, "unknown"))


def _checked_affine(affine: Any, path: Path, what: str) -> np.ndarray:
    """``affine`` as float64 4x4, refused (naming ``path``) when NaN/Inf or singular."""
    out = np.asarray(affine, dtype=np.float64)
    if not np.all(np.isfinite(out)) or abs(np.linalg.det(out[:3, :3])) < 1e-12:
        raise InputError(f"{path}: {what} gives a NaN, infinite or singular affine (zero voxel size or "
                         "collinear axes); mrisr does not invent a geometry")
    return out


#: A gzip stream may hold this many bytes more than its header needs (padding some writers add) before it
#: counts as a decompression bomb.
GZIP_SLACK_BYTES = 16 * 2**20


def _check_data_length(data_file: Path, expected: int, path: Path) -> None:
    """Refuse a file that holds fewer bytes than its header claims, before nibabel allocates the array.

    An uncompressed file is measured; a gzip stream is read to its end through Python's checked
    decompressor, without keeping it. nibabel reads only the bytes the header needs, so it never reaches
    the gzip trailer: a corrupt stream or a wrong CRC would go unnoticed, and a file shorter than the header
    claims would first allocate the whole array. Reading to the end checks every member's CRC-32 and length.

    Args:
        data_file: the file holding the voxels (``path`` itself, or the ``.img.gz`` of a pair).
        expected: bytes the header needs (offset + voxels x item size; MGH tags after the voxels stay
            within the slack).

    Raises:
        InputError: a corrupt, cut or short stream, or one more than :data:`GZIP_SLACK_BYTES` longer than
            ``expected`` (a decompression bomb).
    """
    try:
        with open(data_file, "rb") as fh:
            if fh.read(2) != b"\x1f\x8b":
                size = data_file.stat().st_size
                if size < expected:
                    raise InputError(f"cannot read voxels of {path} (truncated file?): the header claims "
                                     f"{expected} bytes, the file holds {size}")
                return
    except OSError:
        return  # unreadable: nibabel reports it
    have = 0
    limit = expected + GZIP_SLACK_BYTES
    try:
        with gzip.open(data_file, "rb") as gz:
            while have <= limit:
                chunk = gz.read(1 << 24)
                if not chunk:
                    break
                have += len(chunk)
    except (OSError, EOFError, zlib.error) as exc:
        detail = "cut short" if isinstance(exc, EOFError) else one_line(exc)
        raise InputError(f"{path}: corrupt gzip stream ({detail}); the file is damaged or incomplete") from None
    if have < expected:
        raise InputError(f"cannot read voxels of {path} (truncated file?): the header claims {expected} bytes, "
                         f"the compressed file holds {have}")
    if have > limit:
        raise InputError(f"{path}: the gzip stream holds more than {limit} bytes, far more than the "
                         f"{expected} its header needs (a decompression bomb?)")


def nifti_image(volume: Volume) -> Any:
    """The ``nibabel.Nifti1Image`` :func:`write_nifti` saves: float32 voxels (``volume.data``, 2D as ``(X, Y, 1)``)
    with the affine as both sform and qform (code 1, scanner), mm and seconds, the frame spacing of a 4D
    volume and the series description. The streaming writer (:mod:`mrisr.io.stream`) takes its header from
    here with a placeholder ``volume.data`` of the output's shape, so both write the same header bytes.

    A sheared affine (no quaternion form) is written as sform only (qform code 0).
    """
    data = volume.data
    if data.ndim == 2:
        data = data[:, :, None]
    img = nib.Nifti1Image(np.asarray(data, dtype=np.float32), volume.affine)
    img.set_sform(volume.affine, code=1)
    img.set_qform(volume.affine, code=1)
    if not np.allclose(img.get_qform(), volume.affine, atol=1e-4):
        # a sheared affine has no quaternion form: nibabel would store the nearest rotation, and tools that
        # prefer the qform would read another geometry. Mark the qform unknown; the sform holds the truth.
        img.set_qform(volume.affine, code=0)
    img.header.set_xyzt_units(xyz="mm", t="sec")
    if data.ndim == 4 and "time_spacing" in volume.meta:
        zooms = list(img.header.get_zooms())
        zooms[3] = float(volume.meta["time_spacing"])
        img.header.set_zooms(zooms)
    desc = str(volume.meta.get("series_description", ""))[:79]
    if desc:
        img.header["descrip"] = desc.encode("latin-1", "replace")
    return img


def write_nifti(volume: Volume, path: str | Path) -> None:
    """Write ``volume`` as NIfTI-1 float32 with its affine as both sform and qform (code 1, scanner).

    A sheared affine (no quaternion form) is written as sform only (qform code 0).
    """
    nib.save(nifti_image(volume), str(path))
