"""Writing an output slab by slab, so that a whole-scan job never holds its output in memory.

A streaming job (:meth:`mrisr.infer.volume.ModelRun.slabs`, :func:`mrisr.degrade.baselines.baseline_slabs`)
yields ``(index, voxels)`` pairs that together fill the output array ``(*spatial[, T])`` once;
:func:`write_slabs` stores each one as it comes and forgets it:

* ``.nii``: the header (:func:`mrisr.io.nifti.nifti_image`, the same bytes :func:`~mrisr.io.nifti.write_nifti`
  writes), then each slab written into the file body at its offset (NIfTI stores ``x`` fastest, so a slab of
  whole ``(X, Y)`` planes is one contiguous run of bytes; other slabs go through a short-lived memory map).
* ``.nii.gz``: the voxels go to an anonymous scratch file beside the output (unlinked at once, so even a
  SIGKILL leaves nothing), then the header and the scratch file are gzip-compressed into the output in 16 MiB
  chunks (level 1, nibabel's default; gzip time stamp 0, so the same voxels give the same bytes).
* a DICOM series folder: the voxels go to the scratch file while their range is measured (DICOM stores
  integers: the stored type and rescale depend on the whole output), then one file per slice is written
  from it (:func:`mrisr.io.dicom.writing.write_dicom_frames`).
* ``.npy``, PNG, TIFF: the slabs are gathered into one array and written by :func:`mrisr.io.write_volume`
  (2D images, or a format without a streaming writer).

Every output is written atomically (:func:`mrisr.io.atomic.atomic_path`): a killed job leaves no partial
output, and the next run of the same output removes the killed one's temporary.
"""

from __future__ import annotations

import gzip
import math
import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, Any

import numpy as np

from mrisr.errors import InputError
from mrisr.io.atomic import atomic_path
from mrisr.io.detect import output_format
from mrisr.io.volume import Volume

#: Bytes read and compressed at a time when a scratch file becomes a ``.nii.gz``.
CHUNK_BYTES = 16 * 2**20
#: gzip level of ``.nii.gz`` outputs (nibabel's default, what :func:`mrisr.io.nifti.write_nifti` uses).
GZIP_LEVEL = 1

SlabIndex = tuple[Any, ...]


def placeholder(shape: tuple[int, ...]) -> np.ndarray:
    """A read-only float32 array of ``shape`` that takes no memory (every voxel 0): the ``data`` of a Volume that
    only carries an output's geometry and metadata to a streaming writer."""
    return np.broadcast_to(np.zeros((), dtype=np.float32), shape)


def stream_job_bytes(in_shape: tuple[int, ...], slab_voxels: int, work_factor: int = 8,
                     input_copies: int = 2) -> int:
    """Estimated peak bytes of a streamed whole-volume job: ``input_copies`` float32 copies of the input (the
    input and a converted / normalised copy) plus one slab of ``slab_voxels`` output voxels times
    ``work_factor`` (the slab and its temporaries); the output itself is never held."""
    return 4 * (input_copies * math.prod(int(n) for n in in_shape) + work_factor * int(slab_voxels))


def _file_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    """The shape as stored: 2D images are ``(X, Y, 1)`` in NIfTI and DICOM."""
    return (*shape, 1) if len(shape) == 2 else shape


def _normalised_index(index: SlabIndex, shape: tuple[int, ...]) -> list[tuple[int, int]]:
    """``[(start, stop)]`` per axis of ``shape`` for an index of slices and integers (missing axes: whole)."""
    out: list[tuple[int, int]] = []
    for d, n in enumerate(shape):
        item = index[d] if d < len(index) else slice(None)
        if isinstance(item, slice):
            start, stop, step = item.indices(n)
            if step != 1:
                raise ValueError(f"slab index {index} has a step")
            out.append((start, stop))
        else:
            i = int(item) % n
            out.append((i, i + 1))
    return out


class _RawBody:
    """The float32 voxels of an output, in NIfTI order (``x`` fastest, Fortran order), in a file at ``offset``.

    Also measures what a DICOM writer must know before it writes a slice: min, max and whether every voxel
    is an integer.
    """

    def __init__(self, fh: IO[bytes], shape: tuple[int, ...], offset: int) -> None:
        self.fh, self.shape, self.offset = fh, _file_shape(shape), offset
        self.lo, self.hi, self.integral, self.count = math.inf, -math.inf, True, 0

    def write(self, index: SlabIndex, slab: np.ndarray) -> None:
        ranges = _normalised_index(index, self.shape)
        want = tuple(b - a for a, b in ranges)
        block = np.asarray(slab, dtype=np.float32)
        if block.size != math.prod(want):
            raise ValueError(f"slab of shape {block.shape} does not fill index {index} of {self.shape}")
        block = block.reshape(want)
        if block.size == 0:
            return
        if not np.all(np.isfinite(block)):
            bad = int((~np.isfinite(block)).sum())
            raise InputError(f"{bad} output voxel(s) are NaN or Inf")
        self.lo, self.hi = min(self.lo, float(block.min())), max(self.hi, float(block.max()))
        self.integral = self.integral and bool(np.all(block == np.round(block)))
        self.count += block.size
        # the first axis that is not whole, and every one after it but the slab's: one contiguous run of bytes
        # when the slab spans whole planes before its first partial axis and single positions after it
        partial = [d for d, ((a, b), n) in enumerate(zip(ranges, self.shape, strict=True)) if (a, b) != (0, n)]
        first = partial[0] if partial else len(self.shape)
        contiguous = all(b - a == 1 for a, b in ranges[first + 1:])
        strides = np.cumprod((1, *self.shape[:-1]))
        start = int(sum(a * s for (a, _), s in zip(ranges, strides, strict=True)))
        if contiguous:
            os.pwrite(self.fh.fileno(), np.asfortranarray(block).tobytes(order="F"), self.offset + 4 * start)
            return
        # a slab along x or y: map only the bytes it spans, write, unmap
        stop = int(sum((b - 1) * s for (_, b), s in zip(ranges, strides, strict=True))) + 1
        mm = np.memmap(self.fh, dtype="<f4", mode="r+", offset=self.offset + 4 * start, shape=(stop - start,))
        view = np.lib.stride_tricks.as_strided(mm, shape=want, strides=tuple(4 * int(s) for s in strides))
        view[...] = block
        mm.flush()
        del view, mm

    def read_plane(self, k: int, t: int) -> np.ndarray:
        """Voxels ``[:, :, k, t]`` (``(X, Y)`` float32) of a 3D/4D body (2D: ``k = t = 0``)."""
        nx, ny = self.shape[0], self.shape[1]
        nz = self.shape[2]
        start = nx * ny * (k + nz * t)
        raw = os.pread(self.fh.fileno(), 4 * nx * ny, self.offset + 4 * start)
        return np.frombuffer(raw, dtype="<f4").reshape((nx, ny), order="F").astype(np.float32)


def _fill(body: _RawBody, slabs: Iterable[tuple[SlabIndex, np.ndarray]]) -> None:
    for index, slab in slabs:
        body.write(index, slab)
    total = math.prod(body.shape)
    if body.count != total:
        raise ValueError(f"the slabs filled {body.count} of the output's {total} voxels")


def _nifti_header_bytes(template: Volume) -> bytes:
    import io

    from mrisr.io.nifti import nifti_image

    img = nifti_image(template)
    img.update_header()
    header = img.header
    header.set_slope_inter(1.0, 0.0)  # what nibabel's array writer records for float32 voxels
    buf = io.BytesIO()
    header.write_to(buf)
    return buf.getvalue()


#: Outputs of at most this many float32 bytes are gathered and written in one piece by
#: :func:`mrisr.io.write_volume` (a streaming job's one slab: nothing to gain from a scratch file).
WHOLE_BYTES = 64 * 2**20


def write_slabs(path: str | Path, template: Volume, slabs: Iterable[tuple[SlabIndex, np.ndarray]], *,
                final: Callable[[], Volume] | None = None, force: bool = False,
                whole_bytes: int = WHOLE_BYTES) -> Path:
    """Write an output slab by slab (see the module doc for each format), atomically.

    Args:
        path: output path; the format comes from it (:func:`mrisr.io.detect.output_format`).
        template: the output Volume with a placeholder ``data`` of the output's shape (:func:`placeholder`):
            geometry and metadata. Its ``data`` is never read.
        slabs: ``(index, voxels)`` pairs that fill the output array ``(*spatial[, T])`` exactly once, in any
            order (the file order, slices then frames, writes each NIfTI slab as one run of bytes).
        final: the output Volume (placeholder data) as it stands once every slab is written, for metadata a
            job completes while it runs (the history record; used for DICOM headers); default ``template``.
        force: replace an existing output.
        whole_bytes: outputs up to this size (float32 bytes), and outputs in formats without a streaming
            writer (``.npy``, PNG, TIFF), are gathered into one array and written by
            :func:`mrisr.io.write_volume`.

    Returns:
        ``path`` as written.

    Raises:
        OutputExistsError: ``path`` exists and ``force`` is False.
        InputError: NaN or Inf voxels (nothing is written).
    """
    fmt = output_format(path)
    target = Path(str(path).rstrip("/\\"))
    shape = tuple(int(n) for n in template.shape)
    if fmt not in ("nifti", "dicom-folder") or 4 * math.prod(shape) <= whole_bytes:
        from mrisr.io.readers import write_volume

        out = np.empty(shape, dtype=np.float32)
        for index, slab in slabs:
            out[index] = slab
        vol = (final() if final is not None else template)
        return write_volume(vol.with_data(out), target, force=force)
    with atomic_path(target, force=force) as tmp:
        if fmt == "nifti" and not target.name.lower().endswith(".gz"):
            header = _nifti_header_bytes(template)
            with open(tmp, "w+b") as fh:
                fh.write(header)
                fh.truncate(len(header) + 4 * math.prod(_file_shape(shape)))
                _fill(_RawBody(fh, shape, len(header)), slabs)
            return target
        # scratch body beside the output (same file system, not RAM), unlinked as soon as it is created
        with tempfile.TemporaryFile(dir=tmp.parent) as fh:
            fh.truncate(4 * math.prod(_file_shape(shape)))
            body = _RawBody(fh, shape, 0)
            _fill(body, slabs)
            if fmt == "nifti":
                with open(tmp, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw,
                                                           compresslevel=GZIP_LEVEL, mtime=0) as gz:
                    gz.write(_nifti_header_bytes(template))
                    fh.seek(0)
                    while chunk := fh.read(CHUNK_BYTES):
                        gz.write(chunk)
            else:
                from mrisr.io.dicom.writing import VoxelRange, write_dicom_frames

                vol = final() if final is not None else template
                write_dicom_frames(vol, tmp, body.read_plane, VoxelRange(body.lo, body.hi, body.integral))
    return target
