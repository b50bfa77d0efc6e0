"""`mrisr prepare`: a folder of patients -> normalised, sliced, memory-mappable arrays + manifest + splits.

Pipeline per volume (each step optional where noted):

1. read (NIfTI file or DICOM series); non-MR modalities, unreadable files and NaN/Inf are reported and
   skipped, never fatal;
2. percentile normalisation to [0, 1] over the whole volume (all slices and frames), parameters kept;
3. rearrange to a stack ``(T, S, H, W)`` along ``axis`` (every time frame of a 4D scan kept);
4. resize in-plane to ``resize`` (bicubic, masks nearest); spacing updated;
5. ROI crop: the union bounding box of the scan's masks over all slices and frames, plus
   ``roi_margin`` pixels (on the resized grid), clipped to the image;
6. centre crop / zero pad in-plane to ``crop``;
7. near-empty slices (foreground fraction below ``skip_empty``) are not listed as samples (they stay
   in the array so context slices and 3D models see the whole volume);
8. 3D patch origins on a regular grid (``patch3d``, ``patch3d_stride``) for 3D models.

Resume: a volume is finished when ``records/<id>.json`` exists; a re-run with the same array options
reuses every finished volume whose source files did not change (names, sizes, mtimes). Options that
change the stored arrays must match those recorded in ``OUT/prepare.json`` (else :class:`MrisrError`
names the differences; use another OUT or ``force=True``). Options that only change grouping or
splits (``split``, ``split_unit``, ``seed``, ``group_by``, ``patient_regex``, ``include``, ``exclude``,
``modalities``) are simply re-applied to the manifest.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from mrisr import __version__
from mrisr.config import PARSE, from_mapping
from mrisr.data.discover import GROUP_BY, ScanRef, Skipped, discover, fingerprint, pseudonymise_patients
from mrisr.data.manifest import Manifest, ManifestVolume, VolumeRecord
from mrisr.data.normalise import apply_normalisation, fit_normalisation, percentile_normalisation
from mrisr.data.roi import crop_bbox, expand_bbox, union_bbox
from mrisr.data.slices import centre_crop_pad, foreground_fraction, resize_stack, stack_spacing, to_stack
from mrisr.data.splits import DEFAULT_SPLIT, SplitSize, assign_splits, parse_split_spec
from mrisr.errors import ConfigError, MrisrError
from mrisr.io import read_volume
from mrisr.io.atomic import atomic_path, atomic_write_text

#: Options that change the stored arrays or records: a re-run into the same OUT must keep them.
ARRAY_OPTIONS = (
    "mask_pattern", "low_percentile", "high_percentile", "axis", "resize", "roi_from_masks", "roi_margin",
    "crop", "skip_empty", "empty_threshold", "patch3d", "patch3d_stride", "dtype", "save_masks",
)


def _check_sizes(value: tuple[int, ...] | None, name: str, n: int) -> None:
    if value is not None and (len(value) != n or min(value) <= 0):
        raise ConfigError(f"{name}: expected {n} positive integers, got {value!r}")


def _sizes(n: int) -> Callable[[object, str], tuple[int, ...] | None]:
    """Parser of a size option: one integer for every axis, or ``n`` of them (px / voxels)."""

    def parse(value: object, key: str) -> tuple[int, ...] | None:
        if value is None:
            return None
        items = [value] * n if isinstance(value, int | float | str) else value
        try:
            out = tuple(int(v) for v in items)  # type: ignore[attr-defined]
        except (TypeError, ValueError):
            raise ConfigError(f"{key}: expected an integer or {n} integers, got {value!r}") from None
        out = out * n if len(out) == 1 else out
        _check_sizes(out, key, n)
        return out

    return parse


def _strings(value: object, key: str) -> tuple[str, ...]:
    """Parser of a list-of-names option; one name alone is a list of one."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not all(isinstance(v, str) for v in items):
        raise ConfigError(f"{key}: expected a name or a list of names, got {value!r}")
    return tuple(items)


def _split(value: object, key: str) -> dict[str, SplitSize]:
    if not isinstance(value, str | Mapping):
        raise ConfigError(f"{key}: expected 'NAME=SIZE,...' or a mapping of sizes, got {value!r}")
    try:
        return parse_split_spec(value)
    except ConfigError as exc:  # its messages start with "split"
        raise ConfigError(f"{key.removesuffix('split')}{exc}") from None


def _parsed(default: Any, parse: Callable[[object, str], Any]) -> Any:
    """A field converted by its own parser (see :data:`mrisr.config.PARSE`)."""
    if callable(default):
        return field(default_factory=default, metadata={PARSE: parse})
    return field(default=default, metadata={PARSE: parse})


@dataclass(frozen=True)
class PrepareOptions:
    """Everything `mrisr prepare` can be told (YAML section ``prepare:`` of a data config).

    Discovery: ``mask_pattern`` (glob of mask file names), ``group_by`` ("auto", "dicom", "folder",
    "regex"), ``patient_regex``, ``include``/``exclude`` (globs on relative paths), ``modalities``
    (DICOM modalities accepted; NIfTI has none and is accepted).
    Splits: ``split`` (fractions, counts or "rest", see :func:`~mrisr.data.splits.parse_split_spec`),
    ``split_unit`` ("patients" or "images": what counts count), ``seed``.
    Intensities: ``low_percentile``, ``high_percentile`` (0..100).
    Geometry: ``axis`` (0, 1, 2: slicing axis of the array), ``resize`` ((H, W) px, bicubic),
    ``roi_from_masks`` + ``roi_margin`` (px), ``crop`` ((H, W) px centre crop/pad), ``skip_empty``
    (minimum fraction of pixels above ``empty_threshold`` for a slice to be a sample; 0 keeps all),
    ``patch3d`` (``(S, H, W)`` voxels, stack order) + ``patch3d_stride`` (default: the patch size).
    Storage: ``dtype`` ("float32" or "float16"), ``save_masks``.

    Built from YAML or keyword options by :meth:`from_mapping` (typed by :mod:`mrisr.config`; sizes
    may be one number, names one string, the split a ``"train=0.8,..."`` text); a direct call takes
    the fields' own types and checks ranges only.
    """

    mask_pattern: str | None = "*_gt.nii*"
    group_by: str = "auto"
    patient_regex: str | None = None
    include: tuple[str, ...] = _parsed((), _strings)
    exclude: tuple[str, ...] = _parsed((), _strings)
    modalities: tuple[str, ...] = _parsed(("MR",), _strings)
    split: Mapping[str, SplitSize] = _parsed(lambda: dict(DEFAULT_SPLIT), _split)
    split_unit: Literal["patients", "images"] = "patients"
    seed: int = 0
    low_percentile: float = 0.5
    high_percentile: float = 99.5
    axis: Literal[0, 1, 2] = 2
    resize: tuple[int, ...] | None = _parsed(None, _sizes(2))
    roi_from_masks: bool = False
    roi_margin: int = 10
    crop: tuple[int, ...] | None = _parsed(None, _sizes(2))
    skip_empty: float = 0.0
    empty_threshold: float = 0.05
    patch3d: tuple[int, ...] | None = _parsed(None, _sizes(3))
    patch3d_stride: tuple[int, ...] | None = _parsed(None, _sizes(3))
    dtype: Literal["float32", "float16"] = "float32"
    save_masks: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "modalities", tuple(m.upper() for m in self.modalities))
        for name, n in (("resize", 2), ("crop", 2), ("patch3d", 3), ("patch3d_stride", 3)):
            _check_sizes(getattr(self, name), name, n)
        if self.group_by not in GROUP_BY:
            raise ConfigError(f"group_by: expected one of {', '.join(GROUP_BY)}, got {self.group_by!r}")
        if not 0 <= self.low_percentile < self.high_percentile <= 100:
            raise ConfigError(
                f"low_percentile/high_percentile: need 0 <= low < high <= 100, got {self.low_percentile}, "
                f"{self.high_percentile}"
            )
        if self.roi_margin < 0:
            raise ConfigError(f"roi_margin: must be >= 0, got {self.roi_margin}")
        if self.seed < 0:
            raise ConfigError(f"seed: a non-negative integer, got {self.seed}")
        if not 0 <= self.skip_empty <= 1:
            raise ConfigError(f"skip_empty: a fraction in [0, 1], got {self.skip_empty}")
        if self.roi_from_masks and not self.mask_pattern:
            raise ConfigError("roi_from_masks needs a mask_pattern")

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None = None, **overrides: Any) -> PrepareOptions:
        """Build from a (YAML) mapping plus keyword overrides; an unknown or mistyped option is a
        :class:`ConfigError` naming it (``prepare.resize: ...``)."""
        return from_mapping(cls, {**(values or {}), **overrides}, "prepare", what="option")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    def array_options(self) -> dict[str, Any]:
        d = self.to_dict()
        return {k: d[k] for k in ARRAY_OPTIONS}


# ---------------------------------------------------------------------------------------------------
# one volume


def _read(ref: ScanRef):  # type: ignore[no-untyped-def]
    if ref.kind == "dicom":
        from mrisr.io.dicom.scanning import read_dicom_folder

        return read_dicom_folder(ref.path, series=ref.series_uid)
    return read_volume(ref.path)


def _save_npy(path: Path, array: np.ndarray) -> None:
    with atomic_path(path, force=True) as tmp:
        np.save(tmp, array)


def _grid(n: int, size: int, stride: int) -> list[int]:
    if n < size:
        return []
    starts = list(range(0, n - size + 1, stride))
    if starts[-1] != n - size:
        starts.append(n - size)  # cover the far edge too
    return starts


def prepare_volume(ref: ScanRef, opts: PrepareOptions, out: Path, root: Path) -> VolumeRecord | Skipped:
    """Prepare one scan into ``out/volumes``; return its record, or why it was skipped."""
    if ref.modality and opts.modalities and ref.modality.upper() not in opts.modalities:
        return Skipped(ref.rel, f"modality {ref.modality}, not {'/'.join(opts.modalities)}")
    try:
        vol = _read(ref)
    except Exception as exc:
        return Skipped(ref.rel, f"unreadable: {exc}")
    modality = vol.meta.get("modality") or ref.modality
    if modality and opts.modalities and str(modality).upper() not in opts.modalities:
        return Skipped(ref.rel, f"modality {modality}, not {'/'.join(opts.modalities)}")
    if not np.all(np.isfinite(vol.data)):
        return Skipped(ref.rel, "NaN or Inf voxels")
    if vol.data.ndim == 2 and opts.axis != 2:
        return Skipped(ref.rel, "a 2D image can only be sliced along axis 2")

    norm = fit_normalisation(vol.data, opts.low_percentile, opts.high_percentile)
    stack = to_stack(apply_normalisation(vol.data, norm), opts.axis)
    spacing = list(stack_spacing(vol.spacing, opts.axis))

    mask_stacks, mask_names = [], []
    for mpath in ref.masks:
        try:
            m = read_volume(mpath)
        except Exception:
            continue
        if m.spatial_shape != vol.spatial_shape:
            continue
        mask_stacks.append(to_stack(np.rint(m.data).astype(np.float32), opts.axis))
        mask_names.append(mpath.relative_to(root).as_posix())
    if opts.roi_from_masks and not mask_stacks:
        return Skipped(ref.rel, f"no mask matching {opts.mask_pattern!r} of the scan's shape next to it (ROI crop)")

    if opts.resize:
        h, w = stack.shape[-2:]
        stack = resize_stack(stack, opts.resize, "bicubic")  # type: ignore[arg-type]
        mask_stacks = [resize_stack(m, opts.resize, "nearest") for m in mask_stacks]  # type: ignore[arg-type]
        spacing = [spacing[0], spacing[1] * h / opts.resize[0], spacing[2] * w / opts.resize[1]]

    roi = None
    if opts.roi_from_masks:
        boxes = [b for b in (union_bbox(m) for m in mask_stacks) if b is not None]
        if not boxes:
            return Skipped(ref.rel, "masks are empty (ROI crop)")
        union = (min(b[0] for b in boxes), max(b[1] for b in boxes), min(b[2] for b in boxes), max(b[3] for b in boxes))
        bbox = expand_bbox(union, opts.roi_margin, stack.shape[-2:])  # type: ignore[arg-type]
        stack = crop_bbox(stack, bbox)
        mask_stacks = [crop_bbox(m, bbox) for m in mask_stacks]
        roi = {"bbox": list(bbox), "mask_bbox": list(union), "margin": opts.roi_margin}

    crop_offset = None
    if opts.crop:
        stack, off = centre_crop_pad(stack, opts.crop)  # type: ignore[arg-type]
        mask_stacks = [centre_crop_pad(m, opts.crop)[0] for m in mask_stacks]  # type: ignore[arg-type]
        crop_offset = list(off)

    fg = foreground_fraction(stack, opts.empty_threshold)
    keep = fg >= opts.skip_empty if opts.skip_empty > 0 else np.ones(fg.shape, bool)
    slices = [[int(t), int(s)] for t, s in zip(*np.nonzero(keep), strict=True)]

    patches: list[list[int]] = []
    if opts.patch3d:
        pd, ph, pw = opts.patch3d
        sd, sh, sw = opts.patch3d_stride or opts.patch3d
        for t in range(stack.shape[0]):
            for z in _grid(stack.shape[1], pd, sd):
                for y in _grid(stack.shape[2], ph, sh):
                    for x in _grid(stack.shape[3], pw, sw):
                        block = stack[t, z : z + pd, y : y + ph, x : x + pw]
                        if opts.skip_empty <= 0 or (block > opts.empty_threshold).mean() >= opts.skip_empty:
                            patches.append([t, z, y, x])

    file = f"volumes/{ref.volume_id}.npy"
    array = np.ascontiguousarray(stack, dtype=opts.dtype)
    _save_npy(out / file, array)
    mask_file = None
    full = [m for m in mask_stacks if m.shape == stack.shape]
    if opts.save_masks and full:
        mask_file = f"volumes/{ref.volume_id}_mask.npy"
        _save_npy(out / mask_file, np.maximum.reduce(full).astype(np.uint8))
    time_spacing = vol.meta.get("time_spacing")
    return VolumeRecord(
        volume_id=ref.volume_id, patient=ref.patient, source=ref.rel, kind=ref.kind,
        fingerprint=fingerprint((*ref.files, *ref.masks)), file=file, shape=list(array.shape),
        spacing=[round(float(s), 6) for s in spacing], original_shape=list(vol.shape), axis=opts.axis,
        normalisation=norm.to_dict(), slices=slices, series_uid=ref.series_uid,
        modality=str(modality) if modality else None, masks=mask_names, mask_file=mask_file,
        resize=list(opts.resize) if opts.resize else None, roi=roi, crop_offset=crop_offset,
        patch3d=list(opts.patch3d) if opts.patch3d else None, patches3d=patches,
        empty_slices_skipped=int(keep.size - keep.sum()),
        time_spacing=float(time_spacing) if time_spacing else None, nbytes=int(array.nbytes),
    )


# ---------------------------------------------------------------------------------------------------
# the whole folder


def _check_out(out: Path, opts: PrepareOptions, force: bool) -> None:
    """Create OUT, or check that it was prepared with the same array options."""
    state = out / "prepare.json"
    wanted = opts.array_options()
    if state.is_file():
        done = json.loads(state.read_text()).get("array_options", {})
        if done == wanted:
            return
        if not force:
            diffs = "; ".join(
                f"{k}: {done.get(k)!r} -> {wanted.get(k)!r}" for k in ARRAY_OPTIONS if done.get(k) != wanted.get(k)
            )
            raise MrisrError(
                f"{out} was prepared with other options ({diffs}); use another OUT, or --force to prepare it anew"
            )
        for name in ("volumes", "records"):
            shutil.rmtree(out / name, ignore_errors=True)
        for name in ("manifest.json", "slices.csv", "patches3d.csv", "summary.json", "summary.txt", "prepare.json"):
            (out / name).unlink(missing_ok=True)
    elif out.exists() and any(out.iterdir()) and not force:
        raise MrisrError(f"{out} exists, is not empty and holds no prepared data; choose an empty or new OUT")
    (out / "volumes").mkdir(parents=True, exist_ok=True)
    (out / "records").mkdir(parents=True, exist_ok=True)
    atomic_write_text(state, json.dumps({"mrisr_version": __version__, "array_options": wanted}, indent=1), force=True)


def _finished(ref: ScanRef, out: Path) -> VolumeRecord | None:
    path = out / "records" / f"{ref.volume_id}.json"
    if not path.is_file():
        return None
    try:
        rec = VolumeRecord.from_dict(json.loads(path.read_text()))
        arr = np.load(out / rec.file, mmap_mode="r")
    except (OSError, ValueError, TypeError, KeyError):
        return None
    if rec.source != ref.rel or rec.fingerprint != fingerprint((*ref.files, *ref.masks)) or list(arr.shape) != rec.shape:
        return None
    return rec


def _assign(records: list[VolumeRecord], opts: PrepareOptions) -> tuple[list[ManifestVolume], list[str]]:
    """Split by patient, then trim count-sized splits counted in images to their exact size."""
    by_patient: dict[str, int] = Counter()
    for r in records:
        by_patient[r.patient] += len(r.slices)
    weights = dict(by_patient) if opts.split_unit == "images" else None
    split_of = assign_splits(list(by_patient), opts.split, seed=opts.seed, weights=weights)
    unused_patients = sorted(p for p in by_patient if p not in split_of)
    volumes = [
        ManifestVolume(r, split_of[r.patient], list(r.slices), list(r.patches3d))
        for r in sorted(records, key=lambda r: r.volume_id)
        if r.patient in split_of
    ]
    if opts.split_unit == "images":
        for name, size in opts.split.items():
            if isinstance(size, int):
                left = size
                for v in volumes:
                    if v.split == name:
                        v.slices = v.slices[: max(left, 0)]
                        left -= len(v.slices)
    return volumes, unused_patients


def _empty_splits(manifest: Manifest) -> list[str]:
    """Splits the spec asks for (nonzero size) that received no volume."""
    try:
        spec = parse_split_spec(manifest.options.get("split") or {})
    except ConfigError:
        return []
    have = set(manifest.split_names)
    return [name for name, size in spec.items() if size != 0 and name not in have]


def summarise(manifest: Manifest, *, new: int, reused: int, seconds: float, unused_patients: Sequence[str]) -> dict[str, Any]:
    splits: dict[str, dict[str, int]] = {}
    for v in manifest.volumes:
        s = splits.setdefault(v.split, {"patients": 0, "volumes": 0, "slices": 0, "patches3d": 0, "bytes": 0})
        s["volumes"] += 1
        s["slices"] += len(v.slices)
        s["patches3d"] += len(v.patches3d)
        s["bytes"] += v.record.nbytes
    for name in splits:
        splits[name]["patients"] = len({v.record.patient for v in manifest.in_split(name)})
    sizes = Counter(f"{v.record.shape[2]}x{v.record.shape[3]}" for v in manifest.volumes)
    return {
        "out": str(manifest.root),
        "volumes": len(manifest.volumes),
        "patients": len({v.record.patient for v in manifest.volumes}),
        "new": new,
        "reused": reused,
        "seconds": round(seconds, 2),
        "splits": splits,
        "slice_sizes": dict(sizes),
        "unused_slices": sum(len(v.record.slices) - len(v.slices) for v in manifest.volumes),
        "unused_patients": list(unused_patients),
        "empty_splits": _empty_splits(manifest),
        "no_patches3d": sorted(v.record.volume_id for v in manifest.volumes if v.record.patch3d and not v.record.patches3d),
        "skipped": manifest.skipped,
    }


def format_summary(summary: Mapping[str, Any]) -> str:
    lines = [
        f"prepared {summary['volumes']} volumes of {summary['patients']} patients "
        f"({summary['new']} new, {summary['reused']} reused) in {summary['seconds']:.1f} s -> {summary['out']}",
        f"{'split':<8}{'patients':>9}{'volumes':>9}{'slices':>9}{'patches3d':>11}{'MB':>9}",
    ]
    for name, s in sorted(summary["splits"].items()):
        lines.append(f"{name:<8}{s['patients']:>9}{s['volumes']:>9}{s['slices']:>9}{s['patches3d']:>11}"
                     f"{s['bytes'] / 1e6:>9.1f}")
    lines.append("slice sizes (H x W: volumes): " + ", ".join(f"{k}: {v}" for k, v in sorted(summary["slice_sizes"].items())))
    if summary["unused_slices"] or summary["unused_patients"]:
        lines.append(f"unused: {summary['unused_slices']} slices trimmed by image-count splits, "
                     f"{len(summary['unused_patients'])} patients left over by patient counts")
    if summary.get("empty_splits"):
        lines.append(f"warning: split(s) {', '.join(summary['empty_splits'])} received no patient: "
                     f"{summary['patients']} patients for {summary['volumes']} volumes"
                     + (" (scans share one PatientID, e.g. anonymised? try --group-by folder or --patient-regex)"
                        if summary["patients"] < summary["volumes"] else ""))
    if summary.get("no_patches3d"):
        ids = summary["no_patches3d"]
        lines.append(f"warning: {len(ids)} volumes have no 3D patch (smaller than patch3d, or empty): "
                     + ", ".join(ids[:5]) + (" ..." if len(ids) > 5 else ""))
    if summary["skipped"]:
        lines.append(f"skipped {len(summary['skipped'])} inputs:")
        lines.extend(f"  {s['source']}: {s['reason']}" for s in summary["skipped"])
    else:
        lines.append("skipped 0 inputs")
    return "\n".join(lines)


def _nothing_prepared(src: Path, skipped: Sequence[Skipped]) -> str:
    """Why no volume came out of ``src``: every scan skipped, or none found (2D images are not scans here)."""
    if skipped:
        reasons = "; ".join(f"{s.source}: {s.reason}" for s in skipped[:3])
        return f"no volume prepared from {src}: all {len(skipped)} inputs skipped ({reasons}{' ...' if len(skipped) > 3 else ''})"
    images = sum(1 for p in src.rglob("*") if p.suffix.lower() in (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".npy"))
    hint = (f"; {images} PNG/JPEG/TIFF/NPY files were ignored (convert them: `mrisr convert IMG.png IMG.nii.gz`)"
            if images else "")
    return f"no scans (NIfTI files or DICOM series) found under {src}{hint}"


def prepare_dataset(
    source: str | Path,
    out: str | Path,
    options: PrepareOptions | Mapping[str, Any] | None = None,
    *,
    force: bool = False,
    progress: bool = False,
    show_phi: bool = False,
    **overrides: Any,
) -> dict[str, Any]:
    """Prepare every scan under ``source`` into ``out`` (see the module docstring); return the summary.

    Args:
        options: a :class:`PrepareOptions` or a mapping of its fields; ``overrides`` (same names) win.
        force: prepare ``out`` anew when it holds data prepared with other array options.
        progress: show a tqdm progress bar on stderr.
        show_phi: keep DICOM PatientIDs as patient keys in the manifest, records, CSV files and summary
            (default: pseudonyms, :func:`~mrisr.data.discover.pseudonymise_patients`).

    Returns:
        The summary dict also saved as ``out/summary.json`` (counts per split, sizes, skipped inputs).
    """
    t0 = time.perf_counter()
    src, dst = Path(source), Path(out)
    if not src.is_dir():
        raise MrisrError(f"{src}: not a folder")
    if isinstance(options, PrepareOptions):
        opts = PrepareOptions.from_mapping(options.to_dict(), **overrides) if overrides else options
    else:
        opts = PrepareOptions.from_mapping(options, **overrides)
    found = discover(src, opts.mask_pattern, opts.group_by, opts.patient_regex, opts.include, opts.exclude)
    if not show_phi:
        found = pseudonymise_patients(found)
    _check_out(dst, opts, force)

    from tqdm import tqdm

    records: list[VolumeRecord] = []
    skipped: list[Skipped] = list(found.skipped)
    new = reused = 0
    bar = tqdm(found.scans, desc="prepare", unit="vol", disable=not progress, file=sys.stderr)
    for ref in bar:
        bar.set_postfix_str(ref.volume_id[-30:], refresh=False)
        done = _finished(ref, dst)
        if done is not None:
            done.patient = ref.patient  # grouping options may have changed; arrays did not
            records.append(done)
            reused += 1
            continue
        result = prepare_volume(ref, opts, dst, src)
        if isinstance(result, Skipped):
            skipped.append(result)
            continue
        atomic_write_text(dst / "records" / f"{ref.volume_id}.json", json.dumps(result.to_dict()), force=True)
        records.append(result)
        new += 1
    bar.close()
    if not records:
        raise MrisrError(_nothing_prepared(src, skipped))

    volumes, unused_patients = _assign(records, opts)
    manifest = Manifest(dst, {"source": str(src.resolve()), **opts.to_dict()}, volumes,
                        [{"source": s.source, "reason": s.reason} for s in skipped],
                        percentile_normalisation(opts.low_percentile, opts.high_percentile))
    manifest.save()
    summary = summarise(manifest, new=new, reused=reused, seconds=time.perf_counter() - t0,
                        unused_patients=unused_patients)
    atomic_write_text(dst / "summary.json", json.dumps(summary, indent=1), force=True)
    atomic_write_text(dst / "summary.txt", format_summary(summary) + "\n", force=True)
    return summary
