"""Folder scanning and series choice: which files under a folder are DICOM images, how they group into
series (by ``SeriesInstanceUID``), and which series a folder read returns (``--series UID``).

Sub-folders are searched recursively (symlinked ones followed, each real folder once); hidden files,
files that are not DICOM, non-image objects (DICOMDIR, SR, RT plans...) and repeats of an instance
(same ``SOPInstanceUID``) are skipped. Only headers are read while scanning; pixel data is decoded
when the chosen series is assembled (:mod:`mrisr.io.dicom.series`).
"""

from __future__ import annotations

import gzip
import logging
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from mrisr.errors import InputError
from mrisr.io.dicom.geometry import frame_from_single
from mrisr.io.dicom.reading import (
    check_header_sizes,
    dcmread,
    decode,
    float_value,
    int_value,
    is_image_header,
    object_kind,
    require_pixels,
)
from mrisr.io.dicom.series import assemble_frames, base_meta, finish_volume, read_dicom_file
from mrisr.io.limits import check_voxel_count
from mrisr.io.messages import holding_warnings
from mrisr.io.volume import Volume

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

log = logging.getLogger(__name__)


def _read_header_if_dicom(path: Path) -> Dataset | None:
    """Header (no pixel data) of a DICOM file, or None for files that are not DICOM."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(132)
    except PermissionError:
        raise InputError(f"cannot read {path}: permission denied") from None
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
    if head[:2] == b"\x1f\x8b":
        try:
            with gzip.open(path, "rb") as gz:
                head = gz.read(132)
        except (OSError, EOFError):
            return None
        if len(head) == 132 and head[128:132] == b"DICM":
            return dcmread(path, stop_before_pixels=True)
        return None
    if len(head) == 132 and head[128:132] == b"DICM":
        return dcmread(path, stop_before_pixels=True)
    # Raw data sets (no preamble) usually start with group 0x0008 (or 0x0002) in little endian.
    if head[:2] in (b"\x08\x00", b"\x02\x00"):
        try:
            return dcmread(path, stop_before_pixels=True)
        except InputError:
            return None
    return None


def scan_folder(folder: Path) -> tuple[dict[str, list[tuple[Path, Dataset]]], dict[str, int]]:
    """Image headers in ``folder`` (recursively) grouped by SeriesInstanceUID, plus counts of skipped files."""
    if not folder.is_dir():
        raise InputError(f"{folder}: not a folder")
    series: dict[str, list[tuple[Path, Dataset]]] = {}
    skipped: dict[str, int] = {}
    instances: set[str] = set()
    def unreadable(exc: OSError) -> None:
        raise InputError(f"cannot read folder {exc.filename}: {exc.strerror or exc}")

    seen = {os.path.realpath(folder)}
    for root, dirs, files in os.walk(folder, onerror=unreadable, followlinks=True):
        # symlinked sub-folders are followed, each real folder once (no loops)
        kept = []
        for d in sorted(d for d in dirs if not d.startswith(".")):
            real = os.path.realpath(os.path.join(root, d))
            if real not in seen:
                seen.add(real)
                kept.append(d)
        dirs[:] = kept
        for name in sorted(files):
            if name.startswith("."):
                continue
            p = Path(root) / name
            ds = _read_header_if_dicom(p)
            if ds is None:
                skipped["not DICOM"] = skipped.get("not DICOM", 0) + 1
                continue
            if not is_image_header(ds):
                key = f"DICOM {object_kind(ds)} without pixel data"
                skipped[key] = skipped.get(key, 0) + 1
                continue
            sop = str(ds.get("SOPInstanceUID", "") or "")
            if sop and sop in instances:
                # the same instance twice (an export copied into a sub-folder, "IM1 (1).dcm"): read it once,
                # or every slice would appear twice and be taken for a second time point
                skipped["duplicate SOPInstanceUID"] = skipped.get("duplicate SOPInstanceUID", 0) + 1
                continue
            if sop:
                instances.add(sop)
            uid = str(ds.get("SeriesInstanceUID", "") or "")
            series.setdefault(uid, []).append((p, ds))
    if skipped.get("duplicate SOPInstanceUID"):
        log.warning("%s: %d file(s) repeat an instance already found (same SOPInstanceUID); each read once",
                    folder, skipped["duplicate SOPInstanceUID"])
    return series, skipped


def find_series(folder: str | Path) -> dict[str, list[Path]]:
    """DICOM image files under ``folder`` (recursively), grouped by SeriesInstanceUID.

    Files that are not DICOM, and DICOM objects that are not images (DICOMDIR, SR, RT plans...) are
    ignored, and so are repeats of an instance (same SOPInstanceUID) after its first file. Files without a
    SeriesInstanceUID are grouped under ``""``.
    """
    series, _ = scan_folder(Path(folder))
    return {uid: [p for p, _ in items] for uid, items in series.items()}


def _series_label(uid: str, items: list[tuple[Path, Dataset]]) -> str:
    ds = items[0][1]
    desc = str(ds.get("SeriesDescription", "") or "").strip()
    number = ds.get("SeriesNumber")
    parts = [uid or "(no SeriesInstanceUID)"]
    if number not in (None, ""):
        parts.append(f"#{number}")
    parts.append(f"'{desc}'" if desc else "(no description)")
    n = len(items)
    parts.append(f"({n} file{'s' if n != 1 else ''})")
    return " ".join(parts)


def series_listing(series: dict[str, list[tuple[Path, Dataset]]]) -> str:
    """One line listing the series of :func:`scan_folder` by SeriesNumber: UID, number, description, files."""
    def sort_key(uid: str) -> tuple[float, str]:
        number = float_value(series[uid][0][1].get("SeriesNumber"))
        return (math.inf if number is None else number, uid)

    return "; ".join(_series_label(uid, series[uid]) for uid in sorted(series, key=sort_key))


@holding_warnings
def read_dicom_folder(path: str | Path, series: str | None = None) -> Volume:
    """Read the DICOM series in a folder (searched recursively) as one volume.

    Slices are sorted by position along the slice normal; frames sharing a position become the time
    axis (see :mod:`mrisr.io.dicom.series`). A folder whose only image is one (multi-frame) file reads like
    :func:`read_dicom_file`.

    Args:
        path: folder.
        series: SeriesInstanceUID to read when the folder holds several series.

    Returns:
        Volume ``(Columns, Rows, slices[, time])``; ``meta["dicom_headers"]`` holds one header per slice
        (pixel data removed) in ``k`` order (for 4D: those of the first time point).

    Raises:
        InputError: no images, several series and no ``series``, unknown ``series``, mixed sizes,
            orientations or pixel spacings, uneven slice spacing, broken files.
    """
    folder = Path(path)
    found, skipped = scan_folder(folder)
    if not found:
        looked = sum(skipped.values())
        detail = ", ".join(f"{n} {kind}" for kind, n in skipped.items())
        hint = ""
        if skipped.get("not DICOM"):
            hint = "; a folder is read as one DICOM series: give NIfTI, PNG, TIFF or NPY files one at a time"
        raise InputError(
            f"{folder}: no DICOM images found"
            + (f" ({looked} file(s) looked at: {detail})" if looked else " (empty folder)") + hint
        )
    if series is None:
        if len(found) > 1:
            raise InputError(
                f"{folder} holds {len(found)} DICOM series; pick one with --series UID: {series_listing(found)}"
            )
        uid = next(iter(found))
    else:
        if series not in found:
            raise InputError(f"series {series} is not in {folder}; it holds: {series_listing(found)}")
        uid = series
    items = found[uid]
    what = f"{folder} series {uid}" if len(found) > 1 or series else str(folder)

    multi = [p for p, ds in items if int_value(ds, "NumberOfFrames", 1, p) > 1
             or "PerFrameFunctionalGroupsSequence" in ds]
    if multi:
        if len(items) == 1:
            vol = read_dicom_file(items[0][0])
            return vol.with_data(vol.data, source=str(folder))
        raise InputError(
            f"{what}: holds {len(multi)} multi-frame file(s) among {len(items)} files; read them one at a time"
        )

    # Refuse absurd totals from the headers before decoding anything.
    rows = int_value(items[0][1], "Rows", 0, what)
    cols = int_value(items[0][1], "Columns", 0, what)
    check_voxel_count((cols, rows, len(items)), what)

    def loader(p: Path) -> Callable[[], np.ndarray]:
        def load() -> np.ndarray:
            ds = dcmread(p)
            require_pixels(ds, p)
            return decode(ds, p)[0]

        return load

    frames = []
    for p, ds in items:
        check_header_sizes(ds, p)
        frames.append(frame_from_single(ds, p, loader(p)))
    data, affine, extra = assemble_frames(frames, what)
    first = frames[extra["order"][0][0]].header
    assert first is not None
    meta = base_meta(first, folder)
    meta["dicom_headers"] = [frames[g[0]].header for g in extra["order"]]
    meta["n_files"] = len(items)
    return finish_volume(data, affine, meta, extra)
