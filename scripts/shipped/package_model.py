"""Score a trained run on its held-out test slab and write it as a shipped model in the package.

    python scripts/shipped/package_model.py runs/shipped_fast_x2 --prepared data/prepared/mni_slabs \
        --source data/mni_slabs --name fast_kspace_x2 [--force]

The test volumes are read from the prepared folder's manifest (split "test"), degraded as the model
was trained (k-space x2) with and without Rician noise, upscaled by the model and by the baselines,
and scored; the measured numbers go into the model file's metadata (``test_metrics``) and are printed.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from mrisr.evaluate import evaluate_protocol, format_table, summarise_rows
from mrisr.models.modelfile import load_model_file, pretrained_dir, save_model_file

COMPARED_WITH = ["bicubic", "lanczos", "zerofill"]  # the baselines a shipped model is scored against
DEGRADATIONS = ["kspace", "kspace;noise:snr=30"]


def split_of_scans(prepared: Path, source: Path) -> dict[str, str]:
    """Each prepared scan (path under ``source``, the folder that was prepared) -> its split."""
    manifest = json.loads((prepared / "manifest.json").read_text())
    return {str(source / v["source"]): v["split"] for v in manifest["volumes"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("--prepared", type=Path, required=True, help="the prepared folder the run trained on")
    ap.add_argument("--source", type=Path, required=True, help="the folder that was prepared (the slabs)")
    ap.add_argument("--name", required=True)
    ap.add_argument("--force", action="store_true")
    args = ap.parse_args()

    weights = args.run / "checkpoints" / "best" / "generator.safetensors"
    model, meta = load_model_file(weights)
    summary_file = args.run / "summary.json"
    summary = json.loads(summary_file.read_text()) if summary_file.exists() else {}
    steps = summary.get("steps", meta.get("training_data", {}).get("step"))
    split_of = split_of_scans(args.prepared, args.source)
    test = sorted(scan for scan, split in split_of.items() if split == "test")
    rows = evaluate_protocol(test, DEGRADATIONS, [int(meta["scale"])], [*COMPARED_WITH, str(weights)], mask="auto")
    table = summarise_rows(rows)
    print(format_table(table).replace(str(weights), args.name))
    test_metrics = {
        f"{r['degradation']} x{r['scale']} {'model' if r['method'] == str(weights) else r['method']}": {
            k: r[k]["mean"] for k in ("psnr", "ssim", "nrmse") if isinstance(r.get(k), dict)
        }
        for r in table
    }
    extra = {
        "description": "Fast CPU network (FSRCNN body, pixel-shuffle output) predicting a residual over "
        "zero-filled k-space interpolation; x2 in-plane for 2D slices of brain T1-weighted MRI acquired with "
        "half the k-space lines/columns, tolerant of Rician noise (trained at SNR 20-60).",
        "training_data": {
            "source": "MNI152 2009c nonlinear symmetric T1 template, 1 mm (shipped by nilearn), cut into 6 "
            "anatomically disjoint axial slabs (scripts/shipped/mni_slabs.py)",
            "splits": {Path(k).parent.name: s for k, s in split_of.items()},
            "steps": steps,
            "recipe": "configs/shipped_fast_x2.yaml",
            "licence_note": "The MNI152 template is (c) McConnell Brain Imaging Centre, distributed with "
            "nilearn; these weights are derived from it.",
        },
        "test_metrics": {"mask": "auto (foreground)", "cases": [Path(t).parent.name for t in test],
                         **test_metrics},
    }
    out = pretrained_dir() / f"{args.name}.safetensors"
    save_model_file(out, model, meta=dict(
        normalisation=meta["normalisation"], degradation=meta.get("degradation"),
        validation_metrics=meta.get("validation_metrics"), **extra), force=args.force)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
