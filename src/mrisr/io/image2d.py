"""2D images (PNG and TIFF, 8 or 16 bit; ``.npy`` 2D/3D/4D arrays) <-> Volume.

Images carry no geometry: they are read with an identity-like affine of 1 mm pixels. An image stored
as rows x columns ``(H, W)`` becomes ``data[i=column, j=row]`` (shape ``(W, H)``), the same convention as
DICOM frames, so that writing it back gives the same picture. A multi-page TIFF of equally sized pages
is a stack ``(W, H, pages)``. Palette images are read through their palette (grey levels, not indices).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from mrisr.errors import InputError
from mrisr.io.limits import check_voxel_count
from mrisr.io.messages import holding_warnings, one_line
from mrisr.io.volume import Volume

log = logging.getLogger(__name__)

#: Most pixels per page mrisr decodes (also PIL's own limit, which it enforces only at twice the value).
_MAX_PIXELS = 2**28


def _grey(im: object, path: Path) -> np.ndarray:
    """One page of a PIL image as a 2D array of grey levels (RGB(A) only if all channels agree)."""
    from PIL import Image

    assert isinstance(im, Image.Image)
    if im.mode in ("P", "PA"):
        im = im.convert("RGBA" if "transparency" in im.info or im.mode == "PA" else "RGB")
    arr = np.asarray(im)
    if arr.ndim == 3:
        channels = arr[..., :3] if arr.shape[-1] >= 3 else arr[..., :1]
        if not np.all(channels == channels[..., :1]):
            raise InputError(f"{path}: colour image ({im.mode}); one greyscale channel expected")
        arr = channels[..., 0]
    if arr.ndim != 2:
        raise InputError(f"{path}: expected a 2D greyscale image, got shape {arr.shape}")
    return arr


def _default_affine() -> np.ndarray:
    return np.eye(4)


@holding_warnings
def read_image2d(path: str | Path) -> Volume:
    """Read a greyscale PNG/TIFF (8/16-bit or float TIFF). RGB(A) is refused unless all channels agree."""
    from PIL import Image

    path = Path(path)
    Image.MAX_IMAGE_PIXELS = _MAX_PIXELS
    pages: list[np.ndarray] = []
    try:
        with Image.open(path) as im:
            n_pages = int(getattr(im, "n_frames", 1))
            check_voxel_count((im.width, im.height, n_pages), path)
            if im.width * im.height > _MAX_PIXELS:
                # PIL only warns below twice its limit and would decode it; refuse before decoding
                raise InputError(f"{path}: image claims {im.width} x {im.height} pixels, more than {_MAX_PIXELS} "
                                 "(a decompression bomb?)")
            arr_is_png = im.format == "PNG"
            for page in range(n_pages if im.format == "TIFF" else 1):
                im.seek(page)
                im.load()
                arr = _grey(im, path)
                if pages and arr.shape != pages[0].shape:
                    raise InputError(f"{path}: TIFF pages differ in size ({pages[0].shape} and {arr.shape} "
                                     f"at page {page + 1}); cannot stack them into one volume")
                pages.append(arr)
    except InputError:
        raise
    except Image.DecompressionBombError:
        raise InputError(f"{path}: image claims more than {_MAX_PIXELS} pixels") from None
    except Exception as exc:
        raise InputError(f"cannot read image {path}: {one_line(exc)}") from None
    arr = pages[0] if len(pages) == 1 else np.stack(pages, axis=-1)
    data = np.ascontiguousarray(np.swapaxes(arr, 0, 1)).astype(np.float32)
    vol = Volume(
        data=data,
        affine=_default_affine(),
        meta={"format": "png" if arr_is_png else "tiff", "source": str(path), "stored_dtype": str(arr.dtype)},
    )
    vol.check_finite()
    return vol


def _check_npy_header(path: Path) -> None:
    """Refuse, from the ``.npy`` header alone, Python objects (a pickle: never loaded) and data shorter than
    the header's shape needs; headers numpy cannot parse are left to :func:`numpy.load` to report."""
    fmt = np.lib.format
    try:
        with open(path, "rb") as fh:
            major, _ = fmt.read_magic(fh)
            read_header = fmt.read_array_header_1_0 if major == 1 else fmt.read_array_header_2_0
            shape, _, dtype = read_header(fh, max_header_size=10_000)
            offset = fh.tell()
    except (OSError, ValueError):
        return
    if dtype.hasobject:
        raise InputError(f"{path}: the array holds Python objects (dtype {dtype}, stored as a pickle); mrisr never "
                         "unpickles: save a numeric array instead")
    check_voxel_count(shape, path)
    need = offset + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    have = path.stat().st_size
    if have < need:
        raise InputError(f"cannot read {path} (truncated?): its header needs {need} bytes, the file holds {have}")


@holding_warnings
def read_npy(path: str | Path) -> Volume:
    """Read a 2D/3D/4D ``.npy`` array (no pickles). Geometry: 1 mm isotropic identity affine."""
    path = Path(path)
    _check_npy_header(path)
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except ValueError as exc:
        raise InputError(f"cannot read {path}: {one_line(exc)}") from None
    except Exception as exc:
        raise InputError(f"cannot read {path} (truncated or not a .npy array?): {one_line(exc)}") from None
    check_voxel_count(arr.shape, path)
    if arr.ndim not in (2, 3, 4):
        raise InputError(f"{path}: expected a 2D, 3D or 4D array, got shape {arr.shape}")
    is_bool = arr.dtype == np.bool_  # masks read as 0 / 1
    if np.iscomplexobj(arr) or arr.dtype.names or not (is_bool or np.issubdtype(arr.dtype, np.number)):
        raise InputError(f"{path}: array of dtype {arr.dtype} is not a real-valued image")
    try:
        # a copy, never the memory map: the volume must be writable and must not pin the input file
        data = np.array(arr, dtype=np.float32, copy=True)
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read {path} (truncated?): {one_line(exc)}") from None
    vol = Volume(data=data, affine=_default_affine(),
                 meta={"format": "npy", "source": str(path), "stored_dtype": str(arr.dtype)})
    vol.check_finite()
    return vol


def _to_2d(volume: Volume, path: Path) -> np.ndarray:
    data = volume.data
    if data.ndim > 2:
        squeezed = data.reshape([s for s in data.shape if s != 1] or [1])
        if squeezed.ndim != 2:
            raise InputError(
                f"{path}: a {data.ndim}D volume of shape {data.shape} cannot be written as one 2D image;"
                " write NIfTI, NPY or a DICOM folder instead"
            )
        data = squeezed
    return np.asarray(data)


def write_png(volume: Volume, path: str | Path, bits: int | None = None) -> None:
    """Write a 2D volume as a greyscale PNG, in the input's units whenever PNG can hold them.

    ``bits`` (8 or 16): by default 8 when the volume came from an 8-bit image (``meta["stored_dtype"]``
    ``uint8``/``bool``) and its values fit, else 16. Values are stored as they are (rounded to integers)
    when they fit ``[0, 2**bits - 1]`` and keep at least 256 grey levels; an image read from an unsigned
    PNG/TIFF is rounded and clipped to its range (an upscaler's overshoot below 0 or above the maximum).
    Anything else (negative, normalised [0, 1] or huge floats) is scaled linearly from min..max onto the
    full range, with a warning: PNG cannot hold those units.
    """
    from PIL import Image

    path = Path(path)
    img = np.asarray(_to_2d(volume, path).T, dtype=np.float64)  # back to rows x columns
    stored = str(volume.meta.get("stored_dtype", ""))
    from_uint_image = volume.meta.get("format") in ("png", "tiff") and stored in ("uint8", "uint16", "bool")
    rounded = np.rint(img)
    if bits is None:
        bits = 8 if stored in ("uint8", "bool") and rounded.min() >= 0 and rounded.max() <= 255 else 16
        if from_uint_image and stored in ("uint8", "bool"):
            bits = 8
    if bits not in (8, 16):
        raise ValueError(f"PNG bits must be 8 or 16, got {bits}")
    maxval = 2**bits - 1
    lo, hi = float(img.min()), float(img.max())
    exact = bool(np.all(rounded == img))
    if from_uint_image:
        img = np.clip(rounded, 0, maxval)
    elif rounded.min() >= 0 and rounded.max() <= maxval and (exact or hi - lo >= 255):
        img = rounded
    else:
        log.warning("%s: intensities %.4g..%.4g do not fit a %d-bit PNG; scaled onto 0..%d", path, lo, hi,
                    bits, maxval)
        img = np.rint((img - lo) / (hi - lo) * maxval) if hi > lo else np.zeros_like(img)
    dtype = np.uint16 if bits == 16 else np.uint8
    Image.fromarray(np.ascontiguousarray(img.astype(dtype))).save(path, format="PNG")


def check_image_shape(volume: Volume, path: str | Path, fmt: str) -> None:
    """Refuse, before anything is written, a volume that ``fmt`` ("png" or "tiff") cannot hold."""
    if fmt == "tiff" and volume.ndim == 3:
        return  # a multi-page TIFF, one page per slice
    _to_2d(volume, Path(path))


def write_tiff(volume: Volume, path: str | Path) -> None:
    """Write a 2D volume as a 32-bit float TIFF (lossless); a 3D volume as one page per slice (axis 2)."""
    from PIL import Image

    path = Path(path)
    if volume.ndim == 3 and volume.shape[2] > 1:
        pages = [Image.fromarray(np.ascontiguousarray(volume.data[:, :, k].T.astype(np.float32)), mode="F")
                 for k in range(volume.shape[2])]
        pages[0].save(path, format="TIFF", save_all=True, append_images=pages[1:])
        return
    img = _to_2d(volume, path).T
    Image.fromarray(np.ascontiguousarray(img.astype(np.float32)), mode="F").save(path, format="TIFF")


def write_npy(volume: Volume, path: str | Path) -> None:
    """Write the voxels as float32 ``.npy`` (geometry is not stored: use NIfTI for that)."""
    with open(path, "wb") as fh:
        np.save(fh, np.asarray(volume.data, dtype=np.float32), allow_pickle=False)
