"""2D images (PNG and TIFF, 8 or 16 bit; ``.npy`` 2D/3D/4D arrays) <-> Volume.

Images carry no geometry: they are read with an identity-like affine of 1 mm pixels. An image stored
as rows x columns ``(H, W)`` becomes ``data[i=column, j=row]`` (shape ``(W, H)``), the same convention as
DICOM frames, so that writing it back gives the same picture.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mrisr.errors import InputError
from mrisr.io.limits import check_voxel_count
from mrisr.io.messages import one_line
from mrisr.io.volume import Volume

#: PIL's safety limit, applied before decoding a huge image.
_MAX_PIXELS = 2**28


def _default_affine() -> np.ndarray:
    return np.eye(4)


def read_image2d(path: str | Path) -> Volume:
    """Read a greyscale PNG/TIFF (8/16-bit or float TIFF). RGB(A) is refused unless all channels agree."""
    from PIL import Image

    path = Path(path)
    Image.MAX_IMAGE_PIXELS = _MAX_PIXELS
    try:
        with Image.open(path) as im:
            check_voxel_count((im.width, im.height), path)
            im.load()
            arr = np.asarray(im)
            mode = im.mode
            arr_is_png = im.format == "PNG"
    except InputError:
        raise
    except Image.DecompressionBombError:
        raise InputError(f"{path}: image claims more than {_MAX_PIXELS} pixels") from None
    except Exception as exc:
        raise InputError(f"cannot read image {path}: {one_line(exc)}") from None
    if arr.ndim == 3:
        channels = arr[..., :3] if arr.shape[-1] >= 3 else arr[..., :1]
        if not np.all(channels == channels[..., :1]):
            raise InputError(f"{path}: colour image ({mode}); one greyscale channel expected")
        arr = channels[..., 0]
    if arr.ndim != 2:
        raise InputError(f"{path}: expected a 2D greyscale image, got shape {arr.shape}")
    data = np.ascontiguousarray(arr.T).astype(np.float32)
    vol = Volume(
        data=data,
        affine=_default_affine(),
        meta={"format": "png" if arr_is_png else "tiff", "source": str(path), "stored_dtype": str(arr.dtype)},
    )
    vol.check_finite()
    return vol


def read_npy(path: str | Path) -> Volume:
    """Read a 2D/3D/4D ``.npy`` array (no pickles). Geometry: 1 mm isotropic identity affine."""
    path = Path(path)
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except ValueError as exc:
        raise InputError(f"cannot read {path}: {one_line(exc)}") from None
    except Exception as exc:
        raise InputError(f"cannot read {path} (truncated or not a .npy array?): {one_line(exc)}") from None
    check_voxel_count(arr.shape, path)
    if arr.ndim not in (2, 3, 4):
        raise InputError(f"{path}: expected a 2D, 3D or 4D array, got shape {arr.shape}")
    if np.iscomplexobj(arr) or arr.dtype.names or not np.issubdtype(arr.dtype, np.number):
        raise InputError(f"{path}: array of dtype {arr.dtype} is not a real-valued image")
    vol = Volume(data=np.asarray(arr, dtype=np.float32), affine=_default_affine(),
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


def write_png(volume: Volume, path: str | Path, bits: int = 16) -> None:
    """Write a 2D volume as a greyscale PNG (16-bit by default).

    Integer data that fits the range is written as is; anything else is scaled linearly from its
    min..max to the full range (the scaling is lossy for floats, by nature of PNG).
    """
    from PIL import Image

    path = Path(path)
    img = _to_2d(volume, path).T  # back to rows x columns
    maxval = 65535 if bits == 16 else 255
    is_int = np.all(np.mod(img, 1) == 0) and img.min() >= 0 and img.max() <= maxval
    if not is_int:
        lo, hi = float(img.min()), float(img.max())
        img = (img - lo) / (hi - lo) * maxval if hi > lo else np.zeros_like(img)
        img = np.rint(img)
    dtype = np.uint16 if bits == 16 else np.uint8
    Image.fromarray(np.ascontiguousarray(img.astype(dtype))).save(path, format="PNG")


def write_tiff(volume: Volume, path: str | Path) -> None:
    """Write a 2D volume as a 32-bit float TIFF (lossless)."""
    from PIL import Image

    path = Path(path)
    img = _to_2d(volume, path).T
    Image.fromarray(np.ascontiguousarray(img.astype(np.float32)), mode="F").save(path, format="TIFF")


def write_npy(volume: Volume, path: str | Path) -> None:
    """Write the voxels as float32 ``.npy`` (geometry is not stored: use NIfTI for that)."""
    with open(path, "wb") as fh:
        np.save(fh, np.asarray(volume.data, dtype=np.float32), allow_pickle=False)
