"""`mrisr train CONFIG.yaml [--set key=value ...] [--resume RUN_DIR] [--out RUN_DIR]`.

Also the entry point of multi-GPU runs: ``torchrun --nproc_per_node=N -m mrisr train CONFIG.yaml``.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train", help="train a super-resolution network (supervised or GAN) from a YAML config",
        description="Train from a YAML config (see configs/). Each run gets a folder with the config "
                    "snapshot, metrics.csv, TensorBoard events, loss plots, validation sample grids and "
                    "checkpoints (last + best). Ctrl-C stops at the next step and saves a checkpoint.")
    p.add_argument("config", nargs="?", help="YAML config (not needed with --resume)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set optim.generator.optimizer.lr=1e-4 "
                        "--set phases.0.steps=500 (repeatable; the syntax of mrisr prepare --set; it also "
                        "overrides a dataset option of the data config named by data.config)")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue a run from its last checkpoint")
    p.add_argument("--out", metavar="RUN_DIR", help="run folder (default runs/<config name>-<time>)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from mrisr.errors import ConfigError
    from mrisr.train.config import load_config
    from mrisr.train.loop import train
    from mrisr.train.run import load_run_config

    if args.resume:
        if args.out:
            raise ConfigError("--out and --resume exclude each other (a resumed run keeps its folder)")
        cfg = load_run_config(Path(args.resume), args.overrides, config=args.config)
    elif args.config:
        cfg = load_config(args.config, args.overrides)
    else:
        raise ConfigError("give a CONFIG.yaml (or --resume RUN_DIR)")
    run_dir = train(cfg, out=args.out, resume=args.resume, config_path=args.config)
    write_run_report(run_dir)
    return 0


def write_run_report(run_dir: Path) -> None:
    """``RUN_DIR/report.html`` of a finished run (rank 0; not redrawn when newer than ``summary.json``), and its
    path printed. Written here, not by the loop: :mod:`mrisr.report` sits above :mod:`mrisr.train`."""
    import os

    summary, html = run_dir / "summary.json", run_dir / "report.html"
    if os.environ.get("RANK", "0") != "0" or not summary.is_file():
        return
    if not (html.is_file() and html.stat().st_mtime >= summary.stat().st_mtime):
        from mrisr.io.atomic import atomic_write_text
        from mrisr.report.runs import read_run, render_run_report

        atomic_write_text(html, render_run_report(read_run(run_dir)), force=True)
    print(f"report: {html.resolve()}")
