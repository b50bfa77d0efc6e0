"""`mrisr compare RUN1 RUN2 ... [-o compare.html]`: training runs side by side.

One table (final and best validation metrics of the model, steps, wall time, the config values that differ)
and one set of overlaid curves (:func:`mrisr.report.runs.render_compare`).
"""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "compare", help="compare training runs: one table and overlaid curves in one HTML file",
        description="Tabulate final and best validation metrics, steps, wall time and the hyper-parameters "
                    "that differ across training run folders, with their validation and loss curves overlaid.")
    p.add_argument("runs", nargs="+", metavar="RUN", help="training run folders (two or more)")
    p.add_argument("-o", "--output", metavar="HTML", default="compare.html",
                   help="output file (default compare.html)")
    p.add_argument("--force", action="store_true", help="overwrite the output file")
    p.set_defaults(func=run, usage_error=p.error)


def run(args: argparse.Namespace) -> int:
    from mrisr.io.atomic import atomic_write_text
    from mrisr.report.runs import read_run, render_compare

    if len(args.runs) < 2:
        args.usage_error("give at least two run folders to compare")
    text = render_compare([read_run(r) for r in args.runs])
    path = atomic_write_text(Path(args.output), text, force=args.force)
    print(f"report: {path.resolve()}")
    return 0
