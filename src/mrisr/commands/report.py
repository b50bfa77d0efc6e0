"""`mrisr report DIR [-o report.html]`: one self-contained HTML page of an evaluation folder or a training run.

An evaluation folder (``summary.json`` + ``per_case.csv``, as ``mrisr evaluate --out`` writes) gets its tables
and embedded figures (:func:`mrisr.report.html.render_folder_report`); a training run folder (``config.yaml`` +
``metrics.csv``) its config, G and D loss curves per step and per epoch, validation metrics of the model and
the baselines over time, sample grids, best checkpoint and model card (:mod:`mrisr.report.runs`).
"""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report", help="HTML report of an evaluation folder or a training run folder",
        description="Write one self-contained HTML file (images embedded, no network) for DIR: an evaluation "
                    "folder (mrisr evaluate --out) or a training run folder (mrisr train).")
    p.add_argument("folder", metavar="DIR", help="evaluation folder or training run folder")
    p.add_argument("-o", "--output", metavar="HTML",
                   help="output file (default DIR/report.html; an evaluation folder's default is "
                        "DIR/report_files.html, beside the report.html that mrisr evaluate wrote)")
    p.add_argument("--force", action="store_true", help="overwrite the output file")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mrisr.errors import InputError
    from mrisr.io.atomic import atomic_write_text
    from mrisr.report.html import is_evaluation_folder, render_folder_report
    from mrisr.report.runs import is_run_folder, read_run, render_run_report

    folder = Path(args.folder)
    if is_run_folder(folder):
        text, default = render_run_report(read_run(folder)), folder / "report.html"
    elif is_evaluation_folder(folder):
        text, default = render_folder_report(folder), folder / "report_files.html"
    else:
        raise InputError(f"{folder}: neither an evaluation folder (summary.json + per_case.csv) nor a training "
                         "run folder (config.yaml + metrics.csv)")
    path = atomic_write_text(Path(args.output) if args.output else default, text, force=args.force)
    print(f"report: {path.resolve()}")
    return 0
