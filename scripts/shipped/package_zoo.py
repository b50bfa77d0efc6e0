"""Score a trained zoo run on held-out real scans and ship it: model file, JSON sidecar and model card.

    python scripts/shipped/package_zoo.py kspace-x2 --run runs/zoo/kspace-x2 --data data/training [--force]
    python scripts/shipped/package_zoo.py kspace-x2 --rescore --data data/training --force   # shipped file, scored again

The held-out scans are the ``heldout`` sources of :mod:`mrisr.data.sources` (subjects and anatomies that
never enter ``DATA/prepared``), cut by :func:`mrisr.data.heldout.write_heldout_cases` to central slabs of
``--slab`` slices in each of the three orientations (``DATA/heldout_eval/``) so that scoring stays fast;
small scans are scored whole. The scan is degraded as the model was trained, upscaled by the baselines and
the model (`mrisr evaluate ... --methods bicubic,zerofill,MODEL --mask auto`), and the per-case figures,
the mean and the worst case go into the model file (``test_metrics``) and its card ``NAME.md``.
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from mrisr.data.heldout import write_heldout_cases
from mrisr.evaluate.results import read_case_scores
from mrisr.io.atomic import atomic_write_text
from mrisr.models.modelfile import load_model_file, pretrained_dir, save_model_file

BASELINES = ("bicubic", "zerofill")  # the baselines every zoo table shows
MAGNITUDE_MR = {"modality": "MR", "image": "magnitude"}
#: What inference does with the correction (mrisr.infer.calibrate), said in every card.
CALIBRATION = ("at inference the network's correction over its baseline is scaled per scan by the gain it earns "
               "on that scan one degradation coarser (in [0, 1]; `mrisr.infer.calibrate`), so on a scan it does not "
               "suit the output moves towards the baseline")


def score(cases_dir: Path, degradation: str, model: Path, out: Path,
          reuse: bool = False) -> dict[str, dict[str, dict[str, float]]]:
    """``case -> method -> metric`` over the whole foreground mask; the model's method is called ``model``.

    ``reuse``: read ``out`` when it already holds an evaluation of ``model`` newer than the model file.
    """
    done = out / "per_case.csv"
    if reuse and done.is_file() and done.stat().st_mtime > model.stat().st_mtime:
        return {case: {(k if k in BASELINES else "model"): v for k, v in methods.items()}
                for case, methods in read_case_scores(out).items()}
    cmd = [sys.executable, "-m", "mrisr", "evaluate", str(cases_dir), "--degradation", degradation,
           "--methods", ",".join([*BASELINES, str(model)]), "--mask", "auto", "--out", str(out), "--force",
           "--quiet", "--no-report"]
    subprocess.run(cmd, check=True)
    return {case: {("model" if k == str(model) else k): v for k, v in methods.items()}
            for case, methods in read_case_scores(out).items()}


def tabulate(per: dict[str, dict[str, dict[str, float]]]) -> dict[str, Any]:
    """Per case: PSNR/SSIM of each method, the model's gain over each baseline; mean and worst case."""
    cases = []
    for case, m in sorted(per.items()):
        row: dict[str, Any] = {"case": case, **{f"{k}.{q}": v[q] for k, v in m.items() for q in ("psnr", "ssim")}}
        for b in BASELINES:
            row[f"gain_db_over_{b}"] = m["model"]["psnr"] - m[b]["psnr"]
            row[f"ssim_gain_over_{b}"] = m["model"]["ssim"] - m[b]["ssim"]
        cases.append(row)
    keys = [k for k in cases[0] if k != "case"]
    mean = {k: float(np.mean([c[k] for c in cases])) for k in keys}
    worst = {b: min(cases, key=lambda c, b=b: c[f"gain_db_over_{b}"]) for b in BASELINES}
    return {"cases": cases, "mean": mean, "worst_case_over": {b: {"case": w["case"], "gain_db": w[f"gain_db_over_{b}"]}
                                                             for b, w in worst.items()}}


def card(name: str, meta: dict[str, Any], table: dict[str, Any]) -> str:
    use = meta.get("intended_use", {})
    lines = [f"# Model card: `{name}`", "", meta.get("description", ""), "",
             "## What it is for", "",
             f"- Input: {use.get('modality', 'MR')} {use.get('image', '')} images degraded as "
             f"`{meta.get('degradation')}`; x{meta['scale']} in-plane (2D slices, geometry {meta.get('geometry')}).",
             f"- In-plane voxel sizes seen in training: {use.get('voxel_size_mm')} mm (a scan outside gets a warning).",
             f"- Contrasts: {use.get('contrasts', '?')}. Anatomy: {use.get('anatomy', '?')}.",
             f"- What it can change: {meta.get('can_change', '')}",
             f"- Calibration: {CALIBRATION}; the held-out table below is with it, as `mrisr upscale` runs.",
             "", "## Training", "",
             f"- Recipe: `{meta['training_data'].get('recipe')}`, {meta['training_data'].get('steps')} steps; "
             f"budget: {meta['training_data'].get('budget')}.",
             "- Sources (every one; none from pydicom-data or dipy):"]
    lines += [f"  - {s}" for s in meta["training_data"].get("sources", [])]
    lines += ["", "## Held-out evaluation (real scans never trained on; `mrisr evaluate --mask auto`)", "",
              "| case | bicubic | zero-fill | model | gain over zero-fill | gain over bicubic |",
              "|---|--:|--:|--:|--:|--:|"]
    for c in table["cases"]:
        lines.append(f"| {c['case']} | {c['bicubic.psnr']:.2f} / {c['bicubic.ssim']:.4f} | "
                     f"{c['zerofill.psnr']:.2f} / {c['zerofill.ssim']:.4f} | {c['model.psnr']:.2f} / {c['model.ssim']:.4f} | "
                     f"{c['gain_db_over_zerofill']:+.2f} dB | {c['gain_db_over_bicubic']:+.2f} dB |")
    m = table["mean"]
    lines.append(f"| **mean** ({len(table['cases'])} cases) | {m['bicubic.psnr']:.2f} / {m['bicubic.ssim']:.4f} | "
                 f"{m['zerofill.psnr']:.2f} / {m['zerofill.ssim']:.4f} | {m['model.psnr']:.2f} / {m['model.ssim']:.4f} | "
                 f"{m['gain_db_over_zerofill']:+.2f} dB | {m['gain_db_over_bicubic']:+.2f} dB |")
    w = table["worst_case_over"]
    lines += ["", f"(PSNR dB / SSIM.) Worst case: {w['zerofill']['case']} at {w['zerofill']['gain_db']:+.2f} dB over "
              f"zero-fill; {w['bicubic']['case']} at {w['bicubic']['gain_db']:+.2f} dB over bicubic.", ""]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("name")
    ap.add_argument("--run", type=Path, help="the training run to ship (its best checkpoint)")
    ap.add_argument("--rescore", action="store_true", help="score the shipped model file again (no --run)")
    ap.add_argument("--data", type=Path, required=True, help="the folder build_training_set.py wrote")
    ap.add_argument("--slab", type=int, default=8, help="slices per held-out slab (default 8)")
    ap.add_argument("--budget", default="", help="training budget to record, e.g. '14 min, 1 CPU thread'")
    ap.add_argument("--force", action="store_true")
    ap.add_argument("--reuse", action="store_true", help="reuse an evaluation already in the output folder when newer than the weights")
    args = ap.parse_args()
    if args.rescore:
        rescore(args.name, args.data, args.slab, args.force, args.reuse)
        return
    if args.run is None:
        ap.error("--run is required (or --rescore)")

    cfg = yaml.safe_load((args.run / "config.yaml").read_text())
    best = args.run / "checkpoints" / "best"
    weights = best / "generator_ema.safetensors"
    if not weights.is_file():
        weights = best / "generator.safetensors"
    model, meta = load_model_file(weights)
    degradation = cfg["data"]["degradation"]
    cases_dir = args.data / "heldout_eval"
    write_heldout_cases(cases_dir, args.slab)
    table = tabulate(score(cases_dir, degradation, weights, args.run / "heldout_eval", args.reuse))
    sources = json.loads((args.data / "sources.json").read_text())
    train_sources = [f"{s['name']}: {s.get('description') or s.get('anatomy', '')} ({s.get('package', '')})"
                     for s in sources.get("sources", sources) if s.get("role") == "train"]
    summary_file = args.run / "summary.json"  # absent when a run was stopped early: its best checkpoint ships
    summary = json.loads(summary_file.read_text()) if summary_file.is_file() else {}
    spacings = sources.get("train_voxel_size_mm", [0.5, 2.0]) if isinstance(sources, dict) else [0.5, 2.0]
    dc = bool(getattr(model, "data_consistency", False))
    steps = summary.get("steps", meta.get("training_data", {}).get("step"))
    recipe = f"configs/zoo/{args.name}.yaml"
    earlier = earlier_stages(cfg)
    if earlier:  # later stages of scripts/shipped/train_zoo.sh: count the runs they started from
        more = " and ".join(str(n) for n in [*earlier[1:], steps or 0])
        recipe += (f" ({earlier[0]} steps), then {more} more, each stage from the previous one's best EMA weights "
                   "(scripts/shipped/train_zoo.sh)")
        steps = sum(earlier) + (steps or 0)
    extra = {
        "description": cfg.get("description") or f"mrisr zoo model {args.name}: {cfg['model']['generator']['name']} "
        f"x{meta['scale']} for `{degradation}` (residual over {meta['args'].get('residual')}"
        f"{', k-space data consistency' if dc else ''}).",
        "can_change": ("only the k-space frequencies outside the measured band: the measured band is returned as "
                       "measured (then negative voxels are set to 0)") if dc else
                      ("every voxel (no consistency step: the input is not a band of k-space); negative voxels are set to 0"),
        "intended_use": {**MAGNITUDE_MR, "degradation": degradation, "voxel_size_mm": spacings,
                         "contrasts": "any: T1-weighted templates, T2*-weighted EPI and synthetic contrasts "
                                      "drawn from label maps",
                         "anatomy": "trained on brains (human average, macaque) and synthetic anatomy; "
                                    "tested on a held-out human brain, an abdomen and small real scans"},
        "training_data": {"sources": train_sources, "recipe": recipe,
                          "steps": steps,
                          "budget": args.budget,
                          "build": f"scripts/data/build_training_set.py {args.data}"},
        "test_metrics": table,
    }
    out = pretrained_dir() / f"{args.name}.safetensors"
    path = save_model_file(out, model, meta=dict(normalisation=meta["normalisation"], degradation=degradation,
                                                 validation_metrics=meta.get("validation_metrics"), **extra),
                           force=args.force)
    md = {**meta, **extra, "scale": meta["scale"], "geometry": meta.get("geometry")}
    atomic_write_text(pretrained_dir() / f"{args.name}.md", card(args.name, md, table), force=args.force)
    print(card(args.name, md, table))
    print(f"wrote {path}")


def earlier_stages(cfg: dict) -> list[int]:
    """Steps of the runs a training run started from (``init.generator``, followed back to the first stage),
    first stage first; [] for a run from scratch. A stage stopped early counts the steps it logged."""
    steps: list[int] = []
    start = (cfg.get("init") or {}).get("generator")
    while start:
        run = Path(start)
        summary = run / "summary.json"
        if summary.is_file():
            steps.append(int(json.loads(summary.read_text()).get("steps", 0)))
        else:
            metrics, logged = run / "metrics.csv", 0
            if metrics.is_file():
                with metrics.open(newline="") as fh:
                    logged = max((int(r["step"]) for r in csv.DictReader(fh)), default=0)
            steps.append(logged)
        config = run / "config.yaml"
        start = ((yaml.safe_load(config.read_text()) or {}).get("init") or {}).get("generator") if config.is_file() else None
    return steps[::-1]


def rescore(name: str, data: Path, slab: int, force: bool, reuse: bool = False) -> None:
    """Score the shipped ``name`` on the held-out cases again and rewrite its file and card (weights unchanged)."""
    path = pretrained_dir() / f"{name}.safetensors"
    model, meta = load_model_file(path)
    cases_dir = data / "heldout_eval"
    write_heldout_cases(cases_dir, slab)
    table = tabulate(score(cases_dir, meta["degradation"], path, Path("runs") / "rescore" / name, reuse))
    keep = ("normalisation", "degradation", "validation_metrics", "description", "can_change", "intended_use",
            "training_data")
    extra = {k: meta[k] for k in keep if k in meta}
    save_model_file(path, model, meta={**extra, "test_metrics": table}, force=force)
    md = {**meta, "test_metrics": table}
    atomic_write_text(pretrained_dir() / f"{name}.md", card(name, md, table), force=force)
    print(card(name, md, table))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
