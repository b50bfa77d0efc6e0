"""Build mrisr's training set from every real MRI source that installs offline, plus synthetic contrasts.

    python scripts/data/build_training_set.py OUT [--synthetic 24] [--seed 0]
        [--orientations axial,coronal,sagittal] [--voxel-sizes 1.5,2] [--snr 20,60] [--val 3] [--clean]

Writes:

- ``OUT/scans/<patient>/*.nii.gz``: the real ``train`` sources of :mod:`mrisr.data.sources`, cropped to
  their foreground, with Rician noise in the target at an SNR drawn from ``--snr`` (real high-resolution
  scans are noisy too), at their own voxel size and resampled (anti-aliased bicubic) to each coarser
  ``--voxel-sizes`` entry, one file per orientation (the array transposed so that axis 2, the axis
  ``mrisr prepare`` slices along, is the axial, coronal or sagittal direction; the affine permuted with
  it, so the world geometry is the same). ``--clean`` also writes noise-free copies (``*_clean``).
- ``OUT/scans/synth_NNN/*.nii.gz``: ``--synthetic`` images drawn by :func:`mrisr.data.synth.render_synth`
  (noise included) from label maps, dealt round-robin: the MNI152 tissue labels (air, CSF, GM, WM, three
  classes of head tissue), those labels subdivided by each training atlas in MNI152 space (Harvard-Oxford,
  JHU, AICHA, JHU-189, NatBrainLab, on the atlas's own 1 or 2 mm grid) and the INIA19 macaque atlas; each
  in one random orientation, its drawn parameters beside it (``*.json``, ignored by ``mrisr prepare``).
- ``OUT/heldout/<name>.nii.gz``: the ``heldout`` real scans as NIfTI, cropped to their foreground, nothing
  else changed (DICOM slices become one-slice volumes). Never used for training.
- ``OUT/prepared``: ``mrisr prepare OUT/scans OUT/prepared --group-by folder --split val=V,train=rest``
  (patient = folder = one source volume or one synthetic image, so splits are volume-level). The split
  seed is the first (from ``--seed``) for which the ``val`` split holds synthetic images only, so every
  real training scan is trained on.
- ``OUT/sources.json``: every source (role, what it is, where it went, its split) and the build settings.

Reads only what :func:`mrisr.data.sources.find_sources` returns (never pydicom-data or dipy).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
import zlib
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
from scipy import ndimage

from mrisr.data.sources import Source, find_sources, missing_sources
from mrisr.data.splits import assign_splits
from mrisr.data.synth import draw_synth_params, noisy_target, render_synth, subdivide, tissue_labels
from mrisr.degrade.grid import resampled_volume, tensor_to_data, volume_to_tensor
from mrisr.degrade.resample import resize
from mrisr.io.readers import read_volume, write_volume
from mrisr.io.volume import Volume
from mrisr.metrics.masks import foreground_mask

#: orientation -> the world axis (RAS index) that becomes array axis 2 (the slicing axis)
ORIENTATIONS = {"sagittal": 0, "coronal": 1, "axial": 2}
MARGIN = 4  # voxels of background kept around the foreground when cropping


def volume_rng(seed: int, *key: str | int) -> np.random.Generator:
    """A generator seeded per volume from the build seed and the volume's name (habit 4: seed per volume)."""
    words = [seed] + [zlib.crc32(k.encode()) if isinstance(k, str) else int(k) for k in key]
    return np.random.default_rng(words)


def cropped(vol: Volume, mask: np.ndarray, margin: int = MARGIN) -> Volume:
    """``vol`` cropped to the bounding box of ``mask`` (spatial shape) plus ``margin`` voxels; affine moved."""
    idx = np.nonzero(mask)
    if not idx[0].size:
        return vol
    start = [max(int(i.min()) - margin, 0) for i in idx]
    stop = [min(int(i.max()) + margin + 1, n) for i, n in zip(idx, mask.shape, strict=True)]
    box = tuple(slice(a, b) for a, b in zip(start, stop, strict=True))
    affine = vol.affine.copy()
    offset = np.zeros(3)
    offset[: len(start)] = start
    affine[:3, 3] += vol.affine[:3, :3] @ offset
    record = {"op": "crop", "start": start, "shape": [b - a for a, b in zip(start, stop, strict=True)]}
    return Volume(np.ascontiguousarray(vol.data[box]), affine,
                  {**vol.meta, "history": [*vol.meta.get("history", []), record]})


def foreground_crop(vol: Volume) -> Volume:
    """Crop to the Otsu foreground (of the mean frame for 4D data); a 2D image becomes one slice ``(X, Y, 1)``."""
    if vol.ndim == 2:  # the affine of a 2D Volume already maps k = 0
        vol = Volume(vol.data[:, :, None], vol.affine, dict(vol.meta))
    data = vol.data.mean(axis=3) if vol.ndim == 4 else vol.data
    return cropped(vol, foreground_mask(data))


def reoriented(vol: Volume, orientation: str) -> Volume:
    """The same voxels and world geometry with the array transposed so axis 2 is ``orientation``'s normal.

    The array axis closest to the world axis of ``orientation`` (sagittal: R-L, coronal: A-P, axial: S-I)
    goes last; the other two keep their order. The affine's columns are permuted likewise.
    """
    if len(vol.spatial_shape) != 3:
        return vol
    codes = nib.orientations.io_orientation(vol.affine)
    last = next(a for a in range(3) if int(codes[a, 0]) == ORIENTATIONS[orientation])
    perm = [a for a in range(3) if a != last] + [last]
    affine = vol.affine.copy()
    affine[:, :3] = vol.affine[:, perm]
    data = np.transpose(vol.data, perm + ([3] if vol.ndim == 4 else []))
    return Volume(np.ascontiguousarray(data), affine, dict(vol.meta))


def at_voxel_size(vol: Volume, voxel_mm: float) -> Volume:
    """``vol`` resampled (anti-aliased bicubic, same field of view) to about ``voxel_mm`` on every spatial axis.

    Each axis gets ``round(n * spacing / voxel_mm)`` voxels, so the voxel size is ``voxel_mm`` up to that
    rounding; the affine follows from those factors (:func:`mrisr.degrade.grid.resampled_volume`).
    """
    shape = vol.spatial_shape
    sizes = [max(1, round(n * s / voxel_mm)) for n, s in zip(shape, vol.spacing, strict=True)]
    t = resize(volume_to_tensor(vol), sizes, [2 + a for a in range(len(shape))], "cubic", antialias=True)
    data = tensor_to_data(t, vol.ndim == 4)
    factors = [m / n for m, n in zip(sizes, shape, strict=True)]
    return resampled_volume(vol, data, factors, {"op": "resample", "kernel": "cubic", "voxel_mm": voxel_mm})


def _write(vol: Volume, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_volume(Volume(vol.data.astype(np.float32), vol.affine, {}), path, force=True)


def _label_volume(src: Source) -> Volume:
    vol = read_volume(src.path)  # type: ignore[arg-type]
    return vol.with_data(np.rint(vol.data).astype(np.float32))


def labels_on_grid(labels: Volume, target: Volume) -> np.ndarray:
    """``labels`` sampled at ``target``'s voxel centres through both affines (nearest; 0 outside), int32."""
    ijk = np.indices(target.spatial_shape, dtype=np.float64).reshape(3, -1)
    world = target.affine[:3, :3] @ ijk + target.affine[:3, 3:]
    src = np.linalg.solve(labels.affine[:3, :3], world - labels.affine[:3, 3:])
    out = ndimage.map_coordinates(labels.data, src, order=0, mode="constant", cval=0.0)
    return np.rint(out).astype(np.int32).reshape(target.spatial_shape)


def build_real(sources: list[Source], out: Path, args: argparse.Namespace, log: dict[str, Any]) -> None:
    """Noisy-target copies of each real training image, per voxel size and orientation."""
    for src in sources:
        vol = foreground_crop(read_volume(src.path))  # type: ignore[arg-type]
        native = min(vol.spacing)
        sizes = [None] + [v for v in args.voxel_sizes if v > 1.2 * max(vol.spacing)]
        rng = volume_rng(args.seed, src.name)
        files = []
        for v in sizes:
            copy = vol if v is None else at_voxel_size(vol, v)
            tag = f"{native if v is None else v:g}mm".replace(".", "p")
            noisy = noisy_target(copy.data, rng, args.snr)
            variants = [("", copy.with_data(noisy.image))] + ([("_clean", copy)] if args.clean else [])
            # a single slice has one orientation: its own
            orientations = args.orientations if vol.shape[2] > 1 else ["slice"]
            for suffix, variant in variants:
                for o in orientations:
                    path = out / "scans" / src.subject / f"{src.name}_{tag}_{o}{suffix}.nii.gz"
                    oriented = variant if o == "slice" else reoriented(variant, o)
                    _write(oriented, path)
                    files.append({"file": str(path.relative_to(out)), "voxel_mm": list(oriented.spacing),
                                  "shape": list(oriented.shape), "orientation": o,
                                  "snr": None if suffix else noisy.snr, "sigma": None if suffix else noisy.sigma})
        log[src.name]["used_as"] = "training scans (noisy targets)"
        log[src.name]["files"] = files
        print(f"  {src.name}: {len(files)} files", flush=True)


def label_maps(sources: list[Source], by_name: dict[str, Source]) -> list[tuple[str, str, Volume]]:
    """``(name, subject, label volume)`` of the MNI152 tissue labels and every training label atlas.

    An atlas in MNI152 space subdivides the tissue labels sampled onto its grid
    (:func:`mrisr.data.synth.subdivide`: a whole head with parcels), others stand alone. Each is
    cropped to its labels > 0.
    """
    tissue = None
    if all(n in by_name for n in ("mni152_t1", "mni152_gm", "mni152_wm")):
        t1, gm, wm = (read_volume(by_name[n].path) for n in ("mni152_t1", "mni152_gm", "mni152_wm"))  # type: ignore[arg-type]
        tissue = Volume(tissue_labels(t1.data, gm.data, wm.data).astype(np.float32), t1.affine)
    maps = [] if tissue is None else [("mni152_tissue", "mni152", tissue)]
    for s in sources:
        atlas = _label_volume(s)
        if tissue is not None and s.space == "mni152":
            merged = subdivide(labels_on_grid(tissue, atlas), atlas.data)
            maps.append((f"mni152_tissue+{s.name}", s.subject, atlas.with_data(merged.astype(np.float32))))
        else:
            maps.append((s.name, s.subject, atlas))
    return [(name, subject, cropped(vol, vol.data > 0)) for name, subject, vol in maps]


def build_synthetic(maps: list[tuple[str, str, Volume]], out: Path, args: argparse.Namespace) -> list[dict[str, Any]]:
    """``--synthetic`` random images, dealt round-robin over the label maps (shuffled with the seed)."""
    order = np.random.default_rng(args.seed).permutation(len(maps))
    made = []
    for i in range(args.synthetic):
        name, subject, vol = maps[int(order[i % len(maps)])]
        rng = volume_rng(args.seed, "synthetic", i)
        labels = np.rint(vol.data).astype(np.int32)
        params = draw_synth_params(labels, rng, snr=tuple(args.snr))
        image = render_synth(labels, params, vol.spacing)
        o = args.orientations[int(rng.integers(len(args.orientations)))]
        folder = out / "scans" / f"synth_{i:03d}"
        path = folder / f"synth_{i:03d}_{name}_{o}.nii.gz"
        _write(reoriented(vol.with_data(image), o), path)
        entry = {"file": str(path.relative_to(out)), "labels": name, "label_subject": subject, "orientation": o,
                 "voxel_mm": list(vol.spacing), "shape": list(image.shape), "params": params.as_json()}
        (folder / f"synth_{i:03d}.json").write_text(json.dumps(entry, indent=1))
        made.append(entry)
        print(f"  synth_{i:03d} from {name} ({o}, SNR {params.snr:.0f}, "
              f"{'inverted' if params.inverted else 'normal'} contrast)", flush=True)
    return made


def build_heldout(sources: list[Source], out: Path, log: dict[str, Any]) -> None:
    for src in sources:
        vol = foreground_crop(read_volume(src.path))  # type: ignore[arg-type]
        path = out / "heldout" / f"{src.name}.nii.gz"
        _write(vol, path)
        log[src.name]["used_as"] = "held-out evaluation scan (as stored, cropped to its foreground)"
        log[src.name]["files"] = [{"file": str(path.relative_to(out)), "shape": list(vol.shape),
                                   "voxel_mm": list(vol.spacing)}]


def split_seed(patients: list[str], synthetic: set[str], spec: str, seed: int) -> int:
    """The first seed from ``seed`` for which :func:`assign_splits` (what ``mrisr prepare`` uses) puts only
    synthetic patients in ``val``."""
    for s in range(seed, seed + 10_000):
        split = assign_splits(patients, spec, seed=s)
        if all(p in synthetic for p, name in split.items() if name == "val"):
            return s
    raise SystemExit(f"no split seed puts only synthetic images in val for {spec}")


def _pair(text: str) -> tuple[float, float]:
    lo, _, hi = text.partition(",")
    return float(lo), float(hi or lo)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out", type=Path, help="output folder (created; its scans/ and heldout/ are rewritten)")
    p.add_argument("--synthetic", type=int, default=24, help="synthetic images from label maps (default 24)")
    p.add_argument("--seed", type=int, default=0, help="seed of every random draw (default 0)")
    p.add_argument("--orientations", default="axial,coronal,sagittal",
                   help="slicing directions, one file each (default axial,coronal,sagittal)")
    p.add_argument("--voxel-sizes", default="1.5,2", help="coarser copies of real scans, mm (default 1.5,2)")
    p.add_argument("--snr", type=_pair, default=(20.0, 60.0), help="target noise SNR range LOW,HIGH (default 20,60)")
    p.add_argument("--val", type=int, default=3, help="synthetic images in the val split (default 3)")
    p.add_argument("--clean", action="store_true", help="also write noise-free copies of the real scans")
    p.add_argument("--no-prepare", action="store_true", help="write scans only, do not run mrisr prepare")
    args = p.parse_args(argv)
    args.orientations = [o.strip() for o in args.orientations.split(",") if o.strip()]
    bad = [o for o in args.orientations if o not in ORIENTATIONS]
    if bad or not args.orientations:
        p.error(f"--orientations: expected some of {', '.join(ORIENTATIONS)}, got {bad or 'none'}")
    args.voxel_sizes = [float(v) for v in args.voxel_sizes.split(",") if v.strip()]
    if args.snr[0] <= 0 or args.snr[0] > args.snr[1]:
        p.error(f"--snr: expected 0 < LOW <= HIGH, got {args.snr}")
    if args.synthetic < 0 or not 0 <= args.val <= args.synthetic:
        p.error("--synthetic must be >= 0 and --val between 0 and --synthetic")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out: Path = args.out
    t0 = time.time()
    sources = find_sources()
    by_name = {s.name: s for s in sources}
    log: dict[str, Any] = {s.name: {**s.as_json(), "used_as": "not used" if s.role == "train" else
                                    f"not used: reserved with the held-out subject {s.subject}"}
                           for s in sources}
    print(f"{len(sources)} sources found; writing {out}", flush=True)
    for folder in ("scans", "heldout"):
        shutil.rmtree(out / folder, ignore_errors=True)
    train_images = [s for s in sources if s.role == "train" and s.kind == "image"]
    build_real(train_images, out, args, log)
    train_labels = [s for s in sources if s.role == "train" and s.kind == "labels"]
    maps = label_maps(train_labels, by_name)
    synthetic = build_synthetic(maps, out, args) if maps and args.synthetic else []
    for name, _, _ in maps:
        for part in name.split("+"):
            if part in log:
                log[part]["used_as"] = "label map for synthetic images"
    for name in ("mni152_gm", "mni152_wm"):
        if name in log and any(m[0] == "mni152_tissue" for m in maps):
            log[name]["used_as"] = "tissue labels (mni152_tissue) for synthetic images"
    build_heldout([s for s in sources if s.role == "heldout" and s.kind == "image"], out, log)
    patients = sorted(p.name for p in (out / "scans").iterdir() if p.is_dir())
    spec = f"val={args.val},train=rest" if args.val else "train=1.0"
    seed = split_seed(patients, {p for p in patients if p.startswith("synth_")}, spec, args.seed) if args.val else args.seed
    manifest: dict[str, Any] = {
        "built_with": " ".join([Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])]),
        "settings": {"synthetic": args.synthetic, "seed": args.seed, "orientations": args.orientations,
                     "voxel_sizes": args.voxel_sizes, "snr": list(args.snr), "clean": args.clean,
                     "split": spec, "split_seed": seed},
        "sources": list(log.values()), "synthetic": synthetic,
        "not_installed": [s.name for s in missing_sources()],
    }
    if not args.no_prepare:
        cmd = [sys.executable, "-m", "mrisr", "prepare", str(out / "scans"), str(out / "prepared"),
               "--group-by", "folder", "--split", spec, "--seed", str(seed), "--force", "--no-progress"]
        print(" ".join(cmd[1:]), flush=True)
        subprocess.run(cmd, check=True)
        manifest["prepare"] = " ".join(["mrisr", *cmd[3:]])
        manifest["splits"] = _splits_of(out / "prepared")
    manifest["seconds"] = round(time.time() - t0, 1)
    (out / "sources.json").write_text(json.dumps(manifest, indent=1))
    print(f"done in {manifest['seconds']:.0f} s: {out / 'sources.json'}")
    return 0


def _splits_of(prepared: Path) -> dict[str, list[str]]:
    """Split name -> patients, read back from the prepared folder's manifest."""
    data = json.loads((prepared / "manifest.json").read_text())
    splits: dict[str, set[str]] = {}
    for v in data.get("volumes", []):
        splits.setdefault(v["split"], set()).add(v["patient"])
    return {k: sorted(v) for k, v in sorted(splits.items())}


if __name__ == "__main__":
    sys.exit(main())
