"""Cut nilearn's MNI152 2009 T1 template into disjoint axial slabs, one "patient" folder each.

The shipped models are trained on real MRI that installs from PyPI. One template is one subject, so
patient-disjoint splits are made anatomically disjoint instead: the head is cut into ``--slabs``
slabs along the inferior-superior axis, and ``mrisr prepare --split test=1,val=1,train=rest`` puts
whole slabs in each split. Each slab keeps its true geometry (the affine's origin moves to the slab's
first slice), so the slabs are ordinary NIfTI scans.

    python scripts/shipped/mni_slabs.py data/mni_slabs [--slabs 6] [--coarse 2]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from mrisr.degrade.chain import build_degradation
from mrisr.io import Volume, read_volume, write_volume


def mni_t1_path() -> Path:
    import nilearn

    path = Path(nilearn.__file__).parent / "datasets" / "data" / "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz"
    if not path.exists():
        raise SystemExit(f"nilearn does not ship {path.name}; install mrisr[data]")
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--slabs", type=int, default=6)
    ap.add_argument("--coarse", type=int, nargs="*", default=[],
                    help="also write each slab downsampled in-plane by these factors (anti-aliased bicubic), "
                    "as further volumes of the same 'patient', so a model sees anatomy at several pixel sizes")
    ap.add_argument("--force", action="store_true")
    args = ap.parse_args()
    vol = read_volume(mni_t1_path())
    data = vol.data
    # Keep the slices that hold head (the template has empty slices above and below).
    profile = (data > 0.05 * data.max()).mean(axis=(0, 1))
    z = np.flatnonzero(profile > 0.02)
    z0, z1 = int(z[0]), int(z[-1]) + 1
    edges = np.linspace(z0, z1, args.slabs + 1).round().astype(int)
    for s in range(args.slabs):
        a, b = int(edges[s]), int(edges[s + 1])
        affine = vol.affine.copy()
        affine[:3, 3] = vol.voxel_to_world(np.array([0.0, 0.0, a]))
        slab = Volume(data[:, :, a:b].copy(), affine, meta={**vol.meta, "series_description": f"MNI152 slab {s}"})
        out = write_volume(slab, args.out / f"slab{s}" / f"mni_slab{s}.nii.gz", force=args.force)
        print(f"{out}: z {a}..{b - 1} ({b - a} slices)")
        for f in args.coarse:
            coarse = build_degradation("bicubic", scale=f)(slab, seed=s)
            out = write_volume(coarse, args.out / f"slab{s}" / f"mni_slab{s}_{f}mm.nii.gz", force=args.force)
            print(f"{out}: {coarse.shape} at {coarse.spacing} mm")


if __name__ == "__main__":
    main()
