"""`mrisr train CONFIG.yaml [--set key=value ...] [--resume RUN_DIR] [--out RUN_DIR]`.

Also the entry point of multi-GPU runs: ``torchrun --nproc_per_node=N -m mrisr train CONFIG.yaml``.

`mrisr train --self-supervised FOLDER --out MODEL.safetensors [--budget MIN | --steps N] ...`: one
self-supervised through-plane network for a folder of thick-slice scans without high-resolution twins
(:mod:`mrisr.selfsr`), saved as a model file that ``mrisr upscale IN OUT --model MODEL.safetensors`` applies.
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
    p.add_argument("--out", metavar="RUN_DIR", help="run folder (default runs/<config name>-<time>); with "
                   "--self-supervised the model file to write")
    ss = p.add_argument_group("self-supervised", "--self-supervised FOLDER: learn through-plane super-resolution "
                              "from the in-plane axes of every thick-slice scan in FOLDER (no pairs needed)")
    ss.add_argument("--self-supervised", action="store_true",
                    help="CONFIG is a folder of low-resolution-only scans; --out is the model file to write")
    from mrisr.commands.selfsr import add_acquisition_options

    add_acquisition_options(ss, budget_default=None)
    ss.add_argument("--force", action="store_true", help="overwrite an existing model file")
    p.set_defaults(func=run)


#: Options of the self-supervised group and their defaults (anything else given is refused without the flag).
_SELF_SUPERVISED_DEFAULTS = {"slice_thickness": None, "slice_profile": "gaussian", "gap": None, "axis": None,
                             "budget": None, "steps": None, "seed": 0, "init": None, "device": "cpu", "force": False}


def run_self_supervised(args: argparse.Namespace) -> int:
    """``--self-supervised``: train one network on every scan found in the folder ``args.config``."""
    import time

    from mrisr.commands.selfsr import check_model_output, check_numbers
    from mrisr.data.discover import discover
    from mrisr.data.sources import check_not_reserved
    from mrisr.errors import ConfigError, InputError
    from mrisr.infer.through_plane import device_of
    from mrisr.io import read_volume
    from mrisr.selfsr.fit import FitOptions
    from mrisr.selfsr.pipeline import AcquisitionOptions, Budget, save_network, train_self_supervised

    start = time.monotonic()
    if args.resume or args.overrides:
        raise ConfigError("--resume and --set apply to config-driven training, not to --self-supervised")
    if not args.config or not Path(args.config).is_dir():
        raise ConfigError("--self-supervised needs a FOLDER of thick-slice scans (the first argument)")
    if not args.out:
        raise ConfigError("--self-supervised needs --out MODEL.safetensors")
    if args.budget is None and args.steps is None:
        raise ConfigError("--self-supervised needs --budget MINUTES or --steps N")
    check_numbers(args)
    check_model_output(args.out, args.force)
    check_not_reserved(args.config)
    device = device_of(args.device)
    scans = discover(args.config, mask_pattern=None).scans
    if not scans:
        raise InputError(f"no scans found in {args.config}")
    vols = []
    for scan in scans:
        check_not_reserved(scan.path)
        vols.append((read_volume(scan.path, series=scan.series_uid), scan.rel))
    acq = AcquisitionOptions(args.axis, args.slice_thickness, args.gap, args.slice_profile)
    opts = FitOptions(steps=args.steps, seed=args.seed)
    budget = None if args.steps is not None else Budget(args.budget * 60.0, start)
    module, meta, result = train_self_supervised(vols, acq, opts, device, init=args.init, budget=budget,
                                                 progress=True)
    path = save_network(args.out, module, meta, force=args.force)
    print(f"wrote {path}: self-supervised through-plane model from {len(vols)} scan(s), {result.steps} steps "
          f"({result.seconds:.0f} s); apply with: mrisr upscale IN OUT --model {path}")
    return 0


def run(args: argparse.Namespace) -> int:
    from mrisr.errors import ConfigError
    from mrisr.train.config import load_config
    from mrisr.train.loop import train
    from mrisr.train.run import load_run_config

    if args.self_supervised:
        return run_self_supervised(args)
    given = [k for k, v in _SELF_SUPERVISED_DEFAULTS.items() if getattr(args, k) != v]
    if given:
        raise ConfigError(f"--{given[0].replace('_', '-')} applies to --self-supervised only")
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
