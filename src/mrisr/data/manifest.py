"""The prepared-dataset manifest: what was stored where, from which source, with which parameters.

Layout of a prepared folder ``OUT``::

    OUT/volumes/<volume_id>.npy        float32/float16 (T, S, H, W) in [0, 1], memory-mappable
    OUT/volumes/<volume_id>_mask.npy   uint8 (T, S, H, W) labels, when the scan had a mask of its shape
    OUT/records/<volume_id>.json       one VolumeRecord per finished volume (resume marker)
    OUT/manifest.json                  options, normalisation, splits, every volume (+ split), what was skipped
    OUT/slices.csv                     one row per 2D sample: patient, split, source, frame, slice, spacing, normalisation
    OUT/patches3d.csv                  one row per 3D patch (when 3D patches were asked for)
    OUT/summary.json, OUT/summary.txt  counts per split, sizes, skipped inputs
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from mrisr.data.normalise import check_normalisation, percentile_normalisation
from mrisr.errors import ConfigError, InputError
from mrisr.io.atomic import atomic_write_text

MANIFEST_VERSION = 1

SLICE_COLUMNS = (
    "volume_id", "patient", "split", "file", "frame", "slice", "height", "width",
    "spacing_slice_mm", "spacing_h_mm", "spacing_w_mm", "source", "series_uid",
    "norm_low", "norm_high", "norm_low_percentile", "norm_high_percentile",
)
PATCH_COLUMNS = ("volume_id", "patient", "split", "file", "frame", "z0", "y0", "x0", "depth", "height", "width")


@dataclass
class VolumeRecord:
    """One prepared volume (JSON-serialisable; written to ``records/<volume_id>.json`` when finished).

    Attributes:
        shape: stored ``(T, S, H, W)``.
        spacing: ``(S, H, W)`` voxel size in mm of the stored grid (after resize).
        slices: ``[t, s]`` pairs kept as 2D samples (near-empty slices dropped when asked).
        patches3d: ``[t, z0, y0, x0]`` origins of 3D patches of size ``patch3d`` (when asked).
        roi: ``{"bbox": [h0, h1, w0, w1], "margin": px}`` on the resized grid, before the crop.
        crop_offset: input index of output pixel 0 of the centre crop/pad ``(h, w)``.
    """

    volume_id: str
    patient: str
    source: str
    kind: str
    fingerprint: str
    file: str
    shape: list[int]
    spacing: list[float]
    original_shape: list[int]
    axis: int
    normalisation: dict[str, float]
    slices: list[list[int]]
    series_uid: str | None = None
    modality: str | None = None
    masks: list[str] = field(default_factory=list)
    mask_file: str | None = None
    resize: list[int] | None = None
    roi: dict[str, Any] | None = None
    crop_offset: list[int] | None = None
    patch3d: list[int] | None = None
    patches3d: list[list[int]] = field(default_factory=list)
    empty_slices_skipped: int = 0
    time_spacing: float | None = None
    nbytes: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> VolumeRecord:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


@dataclass
class ManifestVolume:
    """A record in the manifest: the volume, its split, and the samples it contributes to that split."""

    record: VolumeRecord
    split: str
    slices: list[list[int]]
    patches3d: list[list[int]]


@dataclass
class Manifest:
    """A prepared folder's index. ``normalisation``: the description (:mod:`mrisr.data.normalise`) every
    stored volume was mapped with; each record keeps the window fitted on its own volume."""

    root: Path
    options: dict[str, Any]
    volumes: list[ManifestVolume]
    skipped: list[dict[str, str]]
    normalisation: dict[str, Any] | None = None
    version: int = MANIFEST_VERSION

    # -- queries ------------------------------------------------------------------------------------
    def in_split(self, split: str | None) -> list[ManifestVolume]:
        """Volumes of one split (all assigned volumes for ``None``)."""
        return [v for v in self.volumes if split is None or v.split == split]

    @property
    def split_names(self) -> list[str]:
        return sorted({v.split for v in self.volumes})

    # -- files --------------------------------------------------------------------------------------
    def to_json(self) -> str:
        doc = {
            "version": self.version,
            "options": self.options,
            "normalisation": self.normalisation,
            "volumes": [
                {**v.record.to_dict(), "split": v.split, "slices": v.slices, "patches3d": v.patches3d,
                 "unused_slices": len(v.record.slices) - len(v.slices)}
                for v in self.volumes
            ],
            "skipped": self.skipped,
        }
        return json.dumps(doc, indent=1)

    def slices_csv(self) -> str:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(SLICE_COLUMNS)
        for v in self.volumes:
            r = v.record
            n = r.normalisation
            for t, s in v.slices:
                w.writerow([r.volume_id, r.patient, v.split, r.file, t, s, r.shape[2], r.shape[3],
                            *(f"{x:.6g}" for x in r.spacing), r.source, r.series_uid or "",
                            f"{n['low']:.6g}", f"{n['high']:.6g}", n["low_percentile"], n["high_percentile"]])
        return buf.getvalue()

    def patches_csv(self) -> str:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(PATCH_COLUMNS)
        for v in self.volumes:
            r = v.record
            for t, z, y, x in v.patches3d:
                w.writerow([r.volume_id, r.patient, v.split, r.file, t, z, y, x, *(r.patch3d or [])])
        return buf.getvalue()

    def save(self) -> None:
        atomic_write_text(self.root / "manifest.json", self.to_json(), force=True)
        atomic_write_text(self.root / "slices.csv", self.slices_csv(), force=True)
        patches = self.root / "patches3d.csv"
        if any(v.patches3d for v in self.volumes):
            atomic_write_text(patches, self.patches_csv(), force=True)
        elif patches.exists():
            patches.unlink()


def load_manifest(root: str | Path) -> Manifest:
    """Read ``root/manifest.json`` written by :func:`mrisr.data.prepare.prepare_dataset`.

    Raises:
        InputError: no manifest, or one written by an incompatible version.
    """
    root = Path(root)
    path = root / "manifest.json"
    if not path.is_file():
        raise InputError(f"{root}: no manifest.json (prepare the data with `mrisr prepare SOURCE {root}`)")
    try:
        doc = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: unreadable manifest ({exc})") from None
    if doc.get("version") != MANIFEST_VERSION:
        raise InputError(f"{path}: manifest version {doc.get('version')}, this mrisr reads {MANIFEST_VERSION}")
    volumes = [
        ManifestVolume(VolumeRecord.from_dict(d), d["split"], d["slices"], d.get("patches3d", []))
        for d in doc["volumes"]
    ]
    return Manifest(root, doc["options"], volumes, doc.get("skipped", []), _normalisation(path, doc))


def _normalisation(path: Path, doc: dict[str, Any]) -> dict[str, Any] | None:
    """The manifest's normalisation; manifests written before it was recorded have the percentiles in
    their options (``None`` when neither says)."""
    try:
        if doc.get("normalisation") is not None:
            return check_normalisation(doc["normalisation"])
        opts = doc.get("options") or {}
        if "low_percentile" in opts and "high_percentile" in opts:
            return percentile_normalisation(opts["low_percentile"], opts["high_percentile"])
    except ConfigError as exc:
        raise InputError(f"{path}: {exc}") from None
    return None
