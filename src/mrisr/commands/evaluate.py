"""`mrisr evaluate`: score test scans against references, or run the degrade -> upscale -> score protocol.

    mrisr evaluate --reference HR --test SR [--mask M|auto]           # given pairs (files or folders)
    mrisr evaluate HR... --degradation kspace --scale 2,3,4 --methods bicubic,zerofill,MODEL

Prints a method x metric table (baselines first), and with ``--out DIR`` writes ``per_case.csv`` and
``summary.json`` (mean, std, 95% CI across cases) and, unless ``--no-report``, ``report.html`` and
``figures/`` (see :mod:`mrisr.report`), printing the report's path. With a mask, every method is also scored
in the mask's interior and edge band (:data:`mrisr.evaluate.cases.REGIONS`). Files of a folder that are not
scans, and scans that cannot be read, are listed as skipped; ``--save-outputs`` keeps every method's
upscaled volume in ``OUT/outputs/``.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from mrisr.errors import ConfigError, InputError

if TYPE_CHECKING:
    from mrisr.evaluate import CaseVolumes, ScoreOptions
    from mrisr.evaluate.outputs import OutputSaver
    from mrisr.report import ReportCollector


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "evaluate",
        help="PSNR/SSIM/NRMSE of test scans vs references, or the full degrade -> upscale -> score protocol",
        description="Metrics per case (PSNR and NRMSE over the volume, SSIM per 2D slice along --slice-axis "
        "averaged, and 3D SSIM), data range = reference max - min, then mean, std and 95%% CI across cases.",
    )
    p.add_argument("inputs", nargs="*", help="high-resolution scans or folders (protocol mode)")
    p.add_argument("--reference", help="reference scan or folder (pair mode; matched to --test by name)")
    p.add_argument("--test", help="test scan or folder (pair mode)")
    p.add_argument("--degradation", action="append",
                   help="degradation method or chain, repeatable (protocol mode; default kspace)")
    p.add_argument("--scale", default=None, help="scale factor(s), e.g. 2 or 2,3,4 (protocol mode; default: "
                   "the scales a --degradation chain gives, else 2)")
    p.add_argument("--methods", default=None,
                   help="comma-separated baselines and/or model names/paths (default: all baselines)")
    p.add_argument("--mask", default=None,
                   help="'auto' (Otsu foreground of the reference) or a mask file/folder; default: all voxels")
    p.add_argument("--gaussian-ssim", action="store_true", help="Wang et al.'s Gaussian SSIM (sigma 1.5) "
                   "instead of scikit-image's uniform 7x7 window")
    p.add_argument("--nrmse", default="euclidean", choices=("euclidean", "min-max", "mean"),
                   help="NRMSE normalisation (default euclidean)")
    p.add_argument("--slice-axis", type=int, default=2, help="axis of the 2D slices for SSIM (default 2)")
    p.add_argument("--seed", type=int, default=0, help="base seed of the degradations (default 0)")
    p.add_argument("--device", default="cpu", help="device for metrics and models (default cpu)")
    p.add_argument("--out", help="folder for per_case.csv and summary.json")
    p.add_argument("--force", action="store_true", help="overwrite existing result files")
    p.add_argument("--report", action=argparse.BooleanOptionalAction, default=None,
                   help="write OUT/report.html with tables, per-case comparison figures (OUT/figures/), slice "
                   "sliders and provenance (the default with --out; --no-report: only the CSV and JSON)")
    p.add_argument("--save-outputs", action="store_true",
                   help="keep every method's upscaled volume and the LR input of each case as NIfTI in "
                   "OUT/outputs/ (protocol mode, needs --out)")
    p.add_argument("--report-cases", type=int, default=12, metavar="N",
                   help="cases with figures in the report (default 12; the tables list every case)")
    p.add_argument("--report-sliders", type=int, default=3, metavar="N",
                   help="cases with slice sliders in the report (default 3; a few MB each)")
    p.add_argument("--quiet", action="store_true", help="no per-case progress lines")
    p.set_defaults(func=run, usage_error=p.error)


def run(args: argparse.Namespace) -> int:
    from mrisr.evaluate import ScoreOptions
    from mrisr.io.atomic import check_output

    opts = ScoreOptions(gaussian=args.gaussian_ssim, nrmse_normalization=args.nrmse,
                        slice_axis=args.slice_axis, device=args.device)
    report = getattr(args, "report", None)
    if report and not args.out:
        args.usage_error("--report needs --out DIR (the folder for report.html and its figures)")
    report = bool(args.out) if report is None else report
    if getattr(args, "save_outputs", False):
        if not args.out:
            args.usage_error("--save-outputs needs --out DIR (the folder for outputs/)")
        if args.reference or args.test:
            args.usage_error("--save-outputs keeps the upscaled volumes of protocol mode (pair mode has them)")
    if args.out:
        for name in ("per_case.csv", "summary.json", *(("report.html",) if report else ())):
            check_output(f"{args.out}/{name}", args.force)
    collector = None
    if report:
        from mrisr.report import ReportCollector

        figures = Path(args.out) / "figures"
        if not args.force and figures.is_dir() and any(figures.iterdir()):
            raise ConfigError(f"{figures} already holds files (use --force to overwrite)")
        if args.report_cases < 0 or getattr(args, "report_sliders", 3) < 0:
            raise ConfigError("--report-cases and --report-sliders must be >= 0")
        collector = ReportCollector(figures, max_cases=args.report_cases, slice_axis=args.slice_axis,
                                    gaussian=args.gaussian_ssim, force=args.force,
                                    sliders=getattr(args, "report_sliders", 3))
    saver = None
    if getattr(args, "save_outputs", False):
        from mrisr.evaluate.outputs import OutputSaver

        saver = OutputSaver(Path(args.out) / "outputs", force=args.force)
    settings: dict[str, object] = {"mask": args.mask or "none", **opts.settings()}
    try:
        return _evaluate(args, opts, settings, collector, saver)
    except BaseException:
        for written in (collector, saver):  # no half report or outputs: remove what this run wrote
            if written is not None:
                written.discard()
        raise


def _evaluate(args: argparse.Namespace, opts: ScoreOptions, settings: dict[str, object],
              collector: ReportCollector | None, saver: OutputSaver | None) -> int:
    from mrisr.commands.degrade import parse_ints
    from mrisr.degrade.baselines import BASELINES, baselines_first
    from mrisr.evaluate import evaluate_pairs, evaluate_protocol, format_table, summarise_rows, write_results
    from mrisr.evaluate.cases import REGIONS

    callbacks = [c for c in (collector, saver) if c is not None]

    def on_case(cv: CaseVolumes) -> None:
        for callback in callbacks:
            callback(cv)

    skipped: list[tuple[str, str]] = []
    if args.reference or args.test:
        if not (args.reference and args.test):
            raise ConfigError("pair mode needs both --reference and --test")
        if args.inputs or args.degradation or args.methods or args.scale:
            raise ConfigError("give either --reference/--test or inputs with --degradation/--scale/--methods, not both")
        rows = evaluate_pairs(args.reference, args.test, args.mask, opts, on_case=on_case if callbacks else None,
                              regions=REGIONS, skipped=skipped)
        settings.update(mode="pairs", reference=args.reference, test=args.test)
    else:
        if not args.inputs:
            raise ConfigError("give high-resolution inputs (protocol mode) or --reference and --test")
        methods = baselines_first(m.strip() for m in (args.methods or ",".join(BASELINES)).split(",") if m.strip())
        degradations = args.degradation or ["kspace"]
        scales: list[int | None] = list(parse_ints(args.scale, "--scale")) if args.scale else [None]
        progress = None if args.quiet else (lambda msg: print(msg, file=sys.stderr, flush=True))
        rows = evaluate_protocol(args.inputs, degradations, scales, methods, seed=args.seed, mask=args.mask,
                                 opts=opts, progress=progress, on_case=on_case if callbacks else None,
                                 regions=REGIONS, skipped=skipped)
        settings.update(mode="protocol", inputs=list(args.inputs), degradations=degradations, scales=scales,
                        methods=methods, seed=args.seed)
    for path, why in skipped:
        print(f"skipped {path}: {why}", file=sys.stderr)
    if not rows:
        raise InputError("no readable scan to score" + (f" ({len(skipped)} input(s) skipped)" if skipped else ""))
    if skipped:
        settings["skipped"] = [list(s) for s in skipped]
    for note in dict.fromkeys(f"{r['case']}: {r['note']}" for r in rows if r.get("note")):
        print(note, file=sys.stderr)
    summary = summarise_rows(rows)
    print(format_table(summary))
    if args.out:
        csv_path, json_path = write_results(args.out, rows, summary, settings, force=args.force)
        print(f"wrote {csv_path} and {json_path}")
    if collector is not None:
        from mrisr.report import model_metadata, provenance, write_report

        command = shlex.join(["mrisr", *sys.argv[1:]]) if Path(sys.argv[0]).name in ("mrisr", "__main__.py") \
            else "(called from Python) " + " ".join(f"{k}={v!r}" for k, v in sorted(vars(args).items())
                                                    if k not in ("func", "usage_error"))
        methods = list(dict.fromkeys(r["method"] for r in rows))
        html_path = write_report(args.out, summary, rows, collector.entries, provenance(command, settings),
                                 model_metadata(methods if "methods" in settings else []),
                                 max_cases=args.report_cases, n_cases=len(collector.cases), force=args.force,
                                 skipped=skipped)
        print(f"wrote {html_path} ({sum(e.figure is not None for e in collector.entries)} figure(s) in "
              f"{Path(args.out) / 'figures'})")
        print(f"report: {html_path.resolve()}")
    if saver is not None:
        print(f"wrote {len(saver.written)} volume(s) into {saver.folder}")
    return 0
