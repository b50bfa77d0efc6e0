"""The hostile-input corpus: builders of broken, absurd or malicious inputs, each with the command it is
given to and what its one error line must say.

Every builder writes its input into an empty folder (under a path with a space and non-ASCII letters)
and returns the path to give mrisr. Inputs are made here, from the formats' definitions (nibabel and
pydicom only build the valid starting points), never downloaded; pydicom's own ``JPEG-lossy.dcm`` is
copied from the installed package.
"""

from __future__ import annotations

import gzip
import io
import shutil
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from tests.io.dicom.factory import enhanced_mr, mr_slice, pydicom_file, save

#: argv templates: ``{input}`` is the built input, ``{out}`` an empty output folder, ``{scan}`` a valid
#: NIfTI scan and ``{prepared}`` a prepared training folder (both made next to the input).
INFO = ("info", "{input}")
CONVERT = ("convert", "{input}", "{out}/result.nii.gz")
UPSCALE = ("upscale", "{input}", "{out}/sr.nii.gz", "--method", "bicubic", "--scale", "2")
DEGRADE = ("degrade", "{input}", "{out}/lr.nii.gz", "--scale", "2")
DEGRADE_METHOD = ("degrade", "{scan}", "{out}/lr.nii.gz", "--method", "{input}")
TRAIN = ("train", "{input}", "--out", "{out}/run")

#: Exit code of every refused input (README "Exit codes").
INPUT_ERROR = 1


@dataclass(frozen=True)
class Case:
    """One hostile input.

    Attributes:
        name: test id.
        build: ``build(folder, prepared) -> input path``; ``prepared`` is a prepared training folder.
        argv: the command, a template (see :data:`INFO`).
        expect: words the error line must contain (besides naming the input).
        names: what the error line must name; ``None``: the input path itself (for configs: the key).
        subprocess: also run it as a real process (library warnings, stream handlers, hangs).
    """

    name: str
    build: Callable[[Path, Path], Path]
    argv: tuple[str, ...] = INFO
    expect: tuple[str, ...] = ()
    names: str | None = None
    subprocess: bool = False


# ------------------------------------------------------------------------------------------------ NIfTI
def nifti_bytes(data: np.ndarray | None = None, affine: np.ndarray | None = None, **fields: object) -> bytes:
    """A valid single-file NIfTI-1 image, then header ``fields`` overwritten as stored (no fix-ups)."""
    data = np.arange(8 * 8 * 4, dtype=np.float32).reshape(8, 8, 4) if data is None else data
    img = nib.Nifti1Image(data, np.diag([1.0, 1.0, 2.0, 1.0]) if affine is None else affine)
    raw = img.to_bytes()
    if fields:
        hdr = nib.Nifti1Header.from_fileobj(io.BytesIO(raw[:348]), check=False)
        for key, value in fields.items():
            hdr[key] = value
        raw = hdr.binaryblock + raw[348:]
    return raw


def _write(folder: Path, name: str, raw: bytes) -> Path:
    path = folder / name
    path.write_bytes(raw)
    return path


def _nifti(name: str = "scan.nii", **fields: object) -> Callable[[Path, Path], Path]:
    def build(folder: Path, _: Path) -> Path:
        raw = nifti_bytes(**fields)  # type: ignore[arg-type]
        return _write(folder, name, gzip.compress(raw) if name.endswith(".gz") else raw)

    return build


def _nifti_data(data: np.ndarray) -> Callable[[Path, Path], Path]:
    return lambda folder, _: _write(folder, "scan.nii", nifti_bytes(data))


def _cut(raw: Callable[[], bytes], keep: float | int, name: str) -> Callable[[Path, Path], Path]:
    """The first ``keep`` bytes (an int) or fraction (a float) of ``raw()``."""
    def build(folder: Path, _: Path) -> Path:
        data = raw()
        n = keep if isinstance(keep, int) else int(len(data) * keep)
        return _write(folder, name, data[:n])

    return build


def _nifti_gz() -> bytes:
    rng = np.random.default_rng(0)
    return gzip.compress(nifti_bytes(rng.random((16, 16, 8)).astype(np.float32)))


def _gz_garbage(folder: Path, _: Path) -> Path:
    raw = bytearray(_nifti_gz())
    mid = len(raw) // 2
    raw[mid:mid + 64] = np.random.default_rng(1).integers(0, 256, 64, dtype=np.uint8).tobytes()
    return _write(folder, "scan.nii.gz", bytes(raw))


def _gz_bad_crc(folder: Path, _: Path) -> Path:
    raw = bytearray(_nifti_gz())
    raw[-8] ^= 0xFF  # the trailer's CRC-32 (then ISIZE)
    return _write(folder, "scan.nii.gz", bytes(raw))


def _gz_claims_more(folder: Path, _: Path) -> Path:
    # a 1 kB stream whose header claims 1200^3 float32 voxels (under the voxel limit: 6.9 GB)
    raw = nifti_bytes(dim=[3, 1200, 1200, 1200, 1, 1, 1, 1])[:352 + 512]
    return _write(folder, "scan.nii.gz", gzip.compress(raw))


def _gz_trailing_garbage(folder: Path, _: Path) -> Path:
    return _write(folder, "scan.nii.gz", _nifti_gz() + b"this is not a gzip member")


def _wrong_magic(folder: Path, _: Path) -> Path:
    raw = bytearray(nifti_bytes())
    raw[344:348] = b"xx1\x00"
    return _write(folder, "scan.nii", bytes(raw))


def _bomb_no_orientation(folder: Path, _: Path) -> Path:
    # the case: refused, but only after a warning about the missing sform/qform (two lines)
    raw = nifti_bytes(dim=[3, 30000, 30000, 30000, 1, 1, 1, 1], sform_code=0, qform_code=0)
    return _write(folder, "scan.nii", raw[:352 + 4096])


def _with_inf() -> np.ndarray:
    data = np.ones((4, 4, 3), np.float32)
    data[1, 2, 0] = np.inf
    return data


NIFTI_CASES = [
    Case("nifti_zero_length", lambda f, _: _write(f, "scan.nii", b""), expect=("empty",)),
    Case("nifti_header_only", _cut(nifti_bytes, 352, "scan.nii"), CONVERT, expect=("truncated",)),
    Case("nifti_half_data", _cut(nifti_bytes, 0.6, "scan.nii"), CONVERT, expect=("truncated",)),
    Case("nifti_gz_cut_stream", _cut(_nifti_gz, 0.5, "scan.nii.gz"), CONVERT, expect=("gzip",)),
    Case("nifti_gz_garbage_in_stream", _gz_garbage, UPSCALE, expect=("corrupt gzip",), subprocess=True),
    Case("nifti_gz_wrong_crc", _gz_bad_crc, CONVERT, expect=("CRC",), subprocess=True),
    Case("nifti_gz_trailing_garbage", _gz_trailing_garbage, CONVERT, expect=("corrupt gzip",)),
    Case("nifti_gz_stream_shorter_than_header", _gz_claims_more, INFO, expect=("truncated",)),
    Case("nifti_wrong_magic", _wrong_magic, expect=("unknown file format",)),
    Case("nifti_nan_voxels", _nifti_data(np.full((4, 4, 4), np.nan, np.float32)), CONVERT, expect=("NaN",)),
    Case("nifti_inf_voxels", _nifti_data(_with_inf()), CONVERT, expect=("Inf",)),
    Case("nifti_5d", _nifti_data(np.zeros((4, 4, 4, 2, 2), np.float32)), expect=("5D",)),
    Case("nifti_zero_dimension", _nifti(dim=[3, 8, 0, 4, 1, 1, 1, 1]), expect=("empty dimension",)),
    Case("nifti_memory_bomb", _bomb_no_orientation, expect=("voxels", "limit"), subprocess=True),
    Case("nifti_unknown_datatype", _nifti(datatype=9999), expect=("cannot read NIfTI",)),
    Case("nifti_complex_data", _nifti_data(np.ones((4, 4, 4), np.complex64)), expect=("complex",)),
    Case("nifti_pixdim_zero", _nifti(pixdim=[1, 0, 1, 2, 1, 1, 1, 1]), CONVERT, expect=("pixdim[1]",),
         subprocess=True),
    Case("nifti_pixdim_negative", _nifti(pixdim=[1, 1, -1, 2, 1, 1, 1, 1]), expect=("pixdim[2]",),
         subprocess=True),
    Case("nifti_pixdim_nan", _nifti(pixdim=[1, 1, 1, np.nan, 1, 1, 1, 1]), expect=("pixdim[3]",)),
    Case("nifti_sform_nan", _nifti(srow_x=[np.nan, 0, 0, 0]), CONVERT, expect=("sform",)),
    Case("nifti_sform_singular", _nifti(srow_x=[0, 0, 0, 0], srow_y=[0, 0, 0, 0]), expect=("sform",)),
    Case("nifti_qform_nan", _nifti(sform_code=0, qform_code=1, quatern_b=np.nan), expect=("qform",)),
    Case("nifti_scaling_overflows", _nifti(scl_slope=1e38), CONVERT, expect=("NaN or Inf",), subprocess=True),
    Case("nifti_data_offset_past_end", _nifti(vox_offset=1e6), expect=("truncated",)),
    Case("nifti_ndim_out_of_range", _nifti(dim=[9, 8, 8, 4, 1, 1, 1, 1]), expect=("NIfTI",)),
]


# ------------------------------------------------------------------------------------------------ DICOM
IOP = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
#: IPP written as 16-character DS strings that :func:`_patched` can find and overwrite.
MARK_IPP = (1111.5, 2222.5, 3333.5)


def _slice(z: float = 0.0, *, series_uid: str = "1.2.826.0.1.3680043.8.498.77", rows: int = 8, cols: int = 8,
           iop: tuple[float, ...] = IOP, spacing: tuple[float, float] = (1.0, 1.0), **extra: object) -> Dataset:
    pixels = (np.arange(rows * cols).reshape(rows, cols) * 10 + int(z)).astype(np.int16)
    return mr_slice(pixels, (0.0, 0.0, z), iop, spacing, series_uid=series_uid, **extra)


def _one_file(edit: Callable[[Dataset], object], name: str = "image.dcm") -> Callable[[Path, Path], Path]:
    def build(folder: Path, _: Path) -> Path:
        ds = mr_slice(np.arange(64, dtype=np.int16).reshape(8, 8), MARK_IPP, IOP, (1.0, 1.0),
                      series_uid=generate_uid())
        edit(ds)
        return save(ds, folder / name)

    return build


def _patched(old: bytes, new: bytes) -> Callable[[Path, Path], Path]:
    """A valid file whose stored value ``old`` is overwritten by ``new`` (padded with spaces): values that
    pydicom would refuse to write."""
    def build(folder: Path, prepared: Path) -> Path:
        path = _one_file(lambda ds: ds)(folder, prepared)
        raw = path.read_bytes()
        assert raw.count(old) == 1, old
        path.write_bytes(raw.replace(old, new.ljust(len(old))))
        return path

    return build


def _ipp_text() -> bytes:
    return "\\".join(pydicom.valuerep.format_number_as_ds(v) for v in MARK_IPP).encode()


def _iop_text() -> bytes:
    return "\\".join(pydicom.valuerep.format_number_as_ds(v) for v in IOP).encode()


def _series(edit: Callable[[int, Dataset], object] | None = None, n: int = 4, gap: float = 3.0,
            positions: list[float] | None = None, name: str = "series") -> Callable[[Path, Path], Path]:
    """A folder of ``n`` single-frame slices; ``edit(k, ds)`` changes slice ``k`` before it is saved."""
    def build(folder: Path, _: Path) -> Path:
        out = folder / name
        uid = generate_uid()
        for k, z in enumerate(positions if positions is not None else [k * gap for k in range(n)]):
            ds = _slice(z, series_uid=uid, instance_number=k + 1)
            if edit is not None:
                edit(k, ds)
            save(ds, out / f"im{k:03d}.dcm")
        return out

    return build


def _drop(*keywords: str) -> Callable[[int, Dataset], None]:
    def edit(_: int, ds: Dataset) -> None:
        for kw in keywords:
            delattr(ds, kw)

    return edit


def _all_at_one_position(_: int, ds: Dataset) -> None:
    ds.ImagePositionPatient = [0.0, 0.0, 0.0]


def _rgb(ds: Dataset) -> None:
    ds.SamplesPerPixel = 3
    ds.PhotometricInterpretation = "RGB"
    ds.PlanarConfiguration = 0
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    ds.PixelData = bytes(8 * 8 * 3)


def _jpeg_lossy(folder: Path, _: Path) -> Path:
    path = folder / "JPEG-lossy.dcm"
    shutil.copy(pydicom_file("JPEG-lossy.dcm"), path)
    return path


def _duplicate_file(folder: Path, prepared: Path) -> Path:
    out = _series()(folder, prepared)
    ds = pydicom.dcmread(out / "im001.dcm")
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()  # a copy, re-identified
    save(ds, out / "im001 copy.dcm")
    return out


def _two_series(folder: Path, prepared: Path) -> Path:
    out = _series(name="mixed")(folder, prepared)
    for path in sorted(out.iterdir()):
        path.rename(path.with_name("first " + path.name))
    return _series(name="mixed")(folder, prepared)


def _per_frame_mismatch(folder: Path, _: Path) -> Path:
    frames = np.arange(3 * 6 * 5, dtype=np.int16).reshape(3, 6, 5)
    ds = enhanced_mr(frames, [(0, 0, 2.0 * k) for k in range(3)], IOP, (1.0, 1.0))
    del ds.PerFrameFunctionalGroupsSequence[2]
    return save(ds, folder / "enhanced.dcm")


def _cut_dicom(folder: Path, prepared: Path) -> Path:
    path = _one_file(lambda ds: ds)(folder, prepared)
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    return path


def _no_dicm(folder: Path, prepared: Path) -> Path:
    path = _one_file(lambda ds: ds)(folder, prepared)
    raw = bytearray(path.read_bytes())
    raw[128:132] = b"XXXX"
    raw[132:] = bytes(np.random.default_rng(2).integers(0, 256, len(raw) - 132, dtype=np.uint8))
    path.write_bytes(bytes(raw))
    return path


def _non_dicom_folder(folder: Path, _: Path) -> Path:
    out = folder / "notes"
    out.mkdir()
    (out / "readme.txt").write_text("not a scan\n")
    return out


DICOM_CASES = [
    Case("dicom_zero_length", lambda f, _: _write(f, "image.dcm", b""), expect=("empty",)),
    Case("dicom_truncated", _cut_dicom, CONVERT, expect=("DICOM",)),
    Case("dicom_not_dicom_behind_preamble", _no_dicm, expect=("DICOM",)),
    Case("dicom_without_pixel_data", _one_file(lambda ds: delattr(ds, "PixelData")), expect=("without pixel data",)),
    Case("dicom_rows_claim_more_than_data", _one_file(lambda ds: setattr(ds, "Rows", 16)), CONVERT,
         expect=("truncated",)),
    Case("dicom_rows_claim_less_than_data", _one_file(lambda ds: setattr(ds, "Rows", 4)),
         expect=("Rows, Columns or NumberOfFrames",)),
    Case("dicom_negative_pixel_spacing", _one_file(lambda ds: setattr(ds, "PixelSpacing", [-0.5, 0.5])), CONVERT,
         expect=("PixelSpacing", "positive"), subprocess=True),
    Case("dicom_zero_pixel_spacing", _one_file(lambda ds: setattr(ds, "PixelSpacing", [0, 1])),
         expect=("PixelSpacing",)),
    Case("dicom_garbage_position", _patched(_ipp_text(), b"abc\\def\\ghi"), CONVERT,
         expect=("ImagePositionPatient",)),
    Case("dicom_nan_position", _patched(_ipp_text(), b"nan\\nan\\nan"), expect=("ImagePositionPatient",)),
    Case("dicom_nan_orientation", _patched(_iop_text(), b"nan\\0\\0\\0\\1\\0"), CONVERT,
         expect=("ImageOrientationPatient",)),
    Case("dicom_orientation_not_unit_vectors", _one_file(lambda ds: setattr(ds, "ImageOrientationPatient",
                                                                             [2, 0, 0, 0, 2, 0])),
         expect=("ImageOrientationPatient",)),
    Case("dicom_rgb", _one_file(_rgb), expect=("colour",)),
    Case("dicom_pydicom_jpeg_lossy", _jpeg_lossy, CONVERT, expect=("cannot decode",), subprocess=True),
    Case("dicom_multiframe_group_count_mismatch", _per_frame_mismatch, expect=("functional groups",)),
    Case("series_without_positions", _series(_drop("ImagePositionPatient")), CONVERT,
         expect=("ImagePositionPatient",)),
    Case("series_without_orientation", _series(_drop("ImagePositionPatient", "ImageOrientationPatient")),
         expect=("ImageOrientationPatient",)),
    Case("series_all_at_one_position", _series(_all_at_one_position), UPSCALE,
         expect=("share the slice position", "not time points"), subprocess=True),
    Case("series_duplicated_file", _duplicate_file, CONVERT, expect=("different numbers of images",)),
    Case("series_inconsistent_orientation",
         _series(lambda k, ds: k == 2 and setattr(ds, "ImageOrientationPatient", [1, 0, 0, 0, 0, -1])),
         expect=("orientations",)),
    Case("series_inconsistent_pixel_spacing",
         _series(lambda k, ds: k == 1 and setattr(ds, "PixelSpacing", [0.5, 0.5])), expect=("pixel spacings",)),
    Case("series_missing_slice", _series(positions=[0.0, 3.0, 6.0, 12.0, 15.0]), DEGRADE,
         expect=("not evenly spaced", "im002.dcm", "im003.dcm", "1 missing slice")),
    Case("series_two_spacings", _series(positions=[0.0, 2.0, 4.0, 9.0, 14.0]), expect=("not evenly spaced",)),
    Case("series_mixed_image_sizes", _series(lambda k, ds: k == 3 and _resize(ds)), expect=("image sizes",)),
    Case("series_two_series_in_one_folder", _two_series, expect=("2 DICOM series", "--series")),
    Case("dicom_folder_empty", lambda f, _: (f / "empty").mkdir() or f / "empty", expect=("no DICOM images",)),
    Case("dicom_folder_without_dicom", _non_dicom_folder, expect=("no DICOM images",)),
]


def _resize(ds: Dataset) -> None:
    ds.Rows = ds.Columns = 4
    ds.PixelData = bytes(4 * 4 * 2)


# ---------------------------------------------------------------------------------------- PNG, TIFF, NPY
def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _png_bomb(folder: Path, _: Path) -> Path:
    # 20000 x 20000 8-bit grey (400 MB decoded) in well under a kilobyte; PIL only warns below 2x its limit
    ihdr = struct.pack(">IIBBBBB", 20000, 20000, 8, 0, 0, 0, 0)
    idat = zlib.compress(bytes(20001 * 16), 9)
    png = b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b"")
    return _write(folder, "bomb.png", png)


def _png_bytes() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(3).integers(0, 255, (32, 32), dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def _png_colour(folder: Path, _: Path) -> Path:
    from PIL import Image

    rgb = np.zeros((8, 8, 3), np.uint8)
    rgb[..., 0] = 200
    Image.fromarray(rgb).save(folder / "colour.png")
    return folder / "colour.png"


def _npy(arr: np.ndarray, name: str = "array.npy", allow_pickle: bool = False) -> Callable[[Path, Path], Path]:
    def build(folder: Path, _: Path) -> Path:
        np.save(folder / name, arr, allow_pickle=allow_pickle)
        return folder / name

    return build


def _npy_cut(folder: Path, prepared: Path) -> Path:
    path = _npy(np.zeros((16, 16, 4), np.float32))(folder, prepared)
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    return path


IMAGE_CASES = [
    Case("png_decompression_bomb", _png_bomb, UPSCALE, expect=("pixels",), subprocess=True),
    Case("png_truncated", _cut(_png_bytes, 0.5, "cut.png"), expect=("cannot read image",)),
    Case("png_colour", _png_colour, expect=("colour",)),
    Case("npy_python_objects", _npy(np.array([{"a": 1}, None], dtype=object), allow_pickle=True), CONVERT,
         expect=("Python objects", "never unpickles")),
    Case("npy_truncated", _npy_cut, expect=("truncated",)),
    Case("npy_5d", _npy(np.zeros((2, 2, 2, 2, 2), np.float32)), expect=("2D, 3D or 4D",)),
    Case("npy_complex", _npy(np.ones((4, 4), np.complex64)), expect=("not a real-valued image",)),
]


# ---------------------------------------------------------------------------------------------- configs
BASE_CONFIG = """\
data:
  root: {prepared}
  degradation: "bicubic:scale=2"
  patch_size: 16
  batch_size: 2
model:
  generator: {{name: fast, args: {{scale: 2}}}}
optim:
  generator:
    optimizer: {{name: adam, lr: 1.0e-3}}
phases:
  - name: supervised
    steps: 2
    train: [generator]
    losses: [{{name: l1, weight: 1.0}}]
"""


def alias_bomb(levels: int = 9, width: int = 9) -> str:
    """A "billion laughs" YAML document: ``width ** levels`` values once its aliases are expanded."""
    lines = ["l0: &l0 [" + ", ".join(["lol"] * width) + "]"]
    for i in range(1, levels + 1):
        lines.append(f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * width) + "]")
    return "\n".join(lines) + "\n"


def _config(text: Callable[[str], str], name: str = "config.yaml") -> Callable[[Path, Path], Path]:
    def build(folder: Path, prepared: Path) -> Path:
        path = folder / name
        path.write_text(text(BASE_CONFIG.format(prepared=prepared)))
        return path

    return build


def _replace(old: str, new: str) -> Callable[[str], str]:
    def edit(text: str) -> str:
        assert old in text, old
        return text.replace(old, new)

    return edit


def _bad_value(name: str, old: str, new: str, key: str, *expect: str) -> Case:
    """A training config whose text ``old`` became ``new``; the error must name ``key``."""
    return Case(name, _config(_replace(old, new)), TRAIN, expect=expect, names=key)


CONFIG_CASES = [
    Case("config_alias_bomb", _config(lambda base: base + alias_bomb()), TRAIN, expect=("alias",),
         subprocess=True),
    Case("config_recursive_alias", _config(lambda base: base + "loop: &loop [*loop]\n"), TRAIN,
         expect=("recursive",)),
    Case("config_not_yaml", _config(lambda base: base + "broken: [1, 2\n"), TRAIN, expect=("not valid YAML",)),
    Case("config_not_a_mapping", _config(lambda base: "- just\n- a list\n"), TRAIN, expect=("mapping",)),
    _bad_value("config_unknown_key", "  batch_size: 2", "  batch_size: 2\n  bach_size: 3", "data.bach_size",
               "unknown key"),
    _bad_value("config_wrong_type", "batch_size: 2", "batch_size: two", "data.batch_size", "expected an integer"),
    _bad_value("config_negative_learning_rate", "lr: 1.0e-3", "lr: -1.0e-3", "optim.generator.optimizer.lr",
               "positive"),
    _bad_value("config_zero_batch_size", "batch_size: 2", "batch_size: 0", "data.batch_size", "positive"),
    _bad_value("config_negative_batch_size", "batch_size: 2", "batch_size: -4", "data.batch_size", "positive"),
    _bad_value("config_zero_patch_size", "patch_size: 16", "patch_size: 0", "data.patch_size", "positive"),
    _bad_value("config_negative_patch_size", "patch_size: 16", "patch_size: -16", "data.patch_size", "positive"),
    _bad_value("config_scale_larger_than_patch", "bicubic:scale=2", "bicubic:scale=1000", "data.patch_size",
               "multiple of the scale"),
    _bad_value("config_scale_zero", "bicubic:scale=2", "bicubic:scale=0", "bicubic.scale", "scale"),
    Case("degrade_method_alias_bomb", _config(lambda _: "method: kspace\n" + alias_bomb(), "method.yaml"),
         DEGRADE_METHOD, expect=("alias",), subprocess=True),
    Case("degrade_method_unknown_step", _config(lambda _: "method: warp\nscale: 2\n", "method.yaml"),
         DEGRADE_METHOD, expect=("warp",), names="warp"),
]

CASES: list[Case] = NIFTI_CASES + DICOM_CASES + IMAGE_CASES + CONFIG_CASES
