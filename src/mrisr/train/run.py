"""What one training run holds, built once from its config: :func:`build_run` -> :class:`Run`.

    build_run(cfg, env, ...)    run folder, datasets, validators, phase schedule, networks (seeded),
                                initial weights, EMA, optimisers with their LR schedules, loss terms,
                                the data's normalisation
    restore(run, checkpoint)    weights, optimiser/scaler states, position, best score, RNG streams
    open_run_folder(run)        the folder and its config snapshot, only once all of the above worked
    wrap_networks(run)          DistributedDataParallel / torch.compile around the plain networks

:mod:`mrisr.train.loop` runs the steps. Every set-up error is a :class:`~mrisr.errors.ConfigError`
naming the config key, raised before anything is written.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from mrisr.errors import ConfigError, MrisrError, OutputExistsError
from mrisr.io.atomic import atomic_write_text
from mrisr.losses.adversarial import Adversarial, build_adversarial
from mrisr.train import checkpoint as ckpt
from mrisr.train import distributed as ddp
from mrisr.train.config import DataConfig, PhaseConfig, TrainConfig, config_from_dict, dump_config, phase_data
from mrisr.train.data import build_dataset, data_key, steps_per_epoch, val_loader
from mrisr.train.gan import EMA, LossTerm
from mrisr.train.optim import Updater, build_updater, load_updater_states, updater_states
from mrisr.train.schedule import Schedule
from mrisr.train.validate import Validator

CONFIG_FILE = "config.yaml"


# ------------------------------------------------------------------------------------------ state
@dataclass
class Position:
    """Where the run is: global step, epoch (of the current data) and batches consumed in it."""

    step: int = 0
    epoch: int = 0
    batch: int = 0
    data: str = ""  # data_key of the loader the epoch counts belong to

    def epoch_float(self, spe: int) -> float:
        return self.epoch + self.batch / max(1, spe)


@dataclass
class Best:
    metric: str
    value: float | None = None
    step: int | None = None
    data: str = ""


@dataclass
class Networks:
    """The networks being trained. ``g``/``d`` may be DDP-wrapped; ``g_plain``/``d_plain`` never are."""

    g: nn.Module
    g_plain: nn.Module
    d: nn.Module | None
    d_plain: nn.Module | None
    ema: EMA | None


@dataclass(frozen=True)
class Objective:
    """A phase's generator loss terms and its adversarial objective (``None`` without a discriminator)."""

    terms: list[LossTerm]
    adversarial: Adversarial | None


@dataclass
class Run:
    """Everything a run holds; :mod:`mrisr.train.loop` reads and advances it.

    Data sections are keyed by :func:`~mrisr.train.data.data_key` (phases with equal data share
    datasets, validators and epochs); ``phase_keys[i]`` is phase ``i``'s. ``normalisation`` is the
    description (:mod:`mrisr.data.normalise`) the training data were prepared with, which the model
    files record. ``checkpoint``: the one a resumed run continues from.
    """

    cfg: TrainConfig
    env: ddp.DistEnv
    run_dir: Path
    checkpoint: Path | None
    amp: torch.dtype | None
    datas: dict[str, DataConfig]
    phase_keys: list[str]
    train_sets: dict[str, Dataset[Any]]
    steps_per_epoch: dict[str, int]
    validators: dict[str, Validator]
    schedule: Schedule
    nets: Networks
    opt_g: Updater
    opt_d: Updater | None
    objectives: list[Objective]
    normalisation: dict[str, Any]
    net_args: dict[str, dict[str, Any]]
    pos: Position = field(default_factory=Position)
    best: Best = field(default_factory=lambda: Best(""))
    last_scores: dict[str, float] = field(default_factory=dict)
    t_start: float = field(default_factory=time.perf_counter)

    @property
    def updaters(self) -> dict[str, Updater | None]:
        return {"generator": self.opt_g, "discriminator": self.opt_d}

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        """Mixed precision on CUDA when ``run.precision`` asks for it; else nothing."""
        if self.amp is None:
            return contextlib.nullcontext()
        return torch.autocast(self.env.device.type, dtype=self.amp)


# ------------------------------------------------------------------------------------------ run folder
def new_run_dir(cfg: TrainConfig, out: str | None, config_path: str | None) -> Path:
    """``--out`` (must not hold a run yet) or ``runs/<name>-<timestamp>``."""
    if out:
        p = Path(out)
        if p.exists() and not p.is_dir():
            raise OutputExistsError(f"--out {p}: is a file, not a folder")
        if p.exists() and any(p.iterdir()):
            raise OutputExistsError(f"{p} is not empty (continue it with --resume {p}, or choose another --out)")
        return p
    name = cfg.run.name or (Path(config_path).stem if config_path else "run")
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    p = Path("runs") / f"{name}-{stamp}"
    n = 1
    while p.exists():
        n += 1
        p = Path("runs") / f"{name}-{stamp}-{n}"
    return p


def load_run_config(run_dir: Path, overrides: list[str], config: str | None = None) -> TrainConfig:
    """The snapshot of a run folder (for ``--resume``), with optional overrides (e.g. more steps).

    ``config``: the YAML the user also named, if any; it must equal the snapshot (a run continues with
    its own config; changes go through ``--set``), else a ConfigError names the first differing key.
    """
    from mrisr.config import load_yaml
    from mrisr.train.config import config_to_dict, load_config

    path = run_dir / CONFIG_FILE
    if not path.is_file():
        raise ConfigError(f"--resume {run_dir}: no {CONFIG_FILE} (not a run folder)")
    raw = load_yaml(path.read_text(), f"--resume {run_dir}: {CONFIG_FILE}")
    try:
        cfg = config_from_dict(raw or {}, overrides)
    except ConfigError as exc:
        raise ConfigError(f"--resume {run_dir}: {CONFIG_FILE}: {exc}") from None
    if config is not None:
        diff = first_difference(config_to_dict(load_config(config, overrides)), config_to_dict(cfg))
        if diff is not None:
            key, given, kept = diff
            raise ConfigError(f"--resume {run_dir}: {config} differs from the run's {CONFIG_FILE} at {key} "
                              f"({given!r} vs {kept!r}); a run continues with its own config: leave out "
                              f"{config} and change values with --set")
    return cfg


def first_difference(a: Any, b: Any, key: str = "") -> tuple[str, Any, Any] | None:
    """The first key (dotted) where two plain config dicts differ, with both values; None if equal."""
    if isinstance(a, dict) and isinstance(b, dict):
        for k in list(a) + [k for k in b if k not in a]:
            sub = f"{key}.{k}" if key else str(k)
            if k not in a or k not in b:
                return sub, a.get(k), b.get(k)
            d = first_difference(a[k], b[k], sub)
            if d is not None:
                return d
        return None
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            d = first_difference(x, y, f"{key}.{i}")
            if d is not None:
                return d
        return None
    return None if a == b else (key or "config", a, b)


def _choose_run_dir(cfg: TrainConfig, env: ddp.DistEnv, out: str | None, resume: str | None,
                    config_path: str | None) -> tuple[Path, Path | None]:
    """The run folder (chosen on rank 0) and, when resuming, its last complete checkpoint."""
    if resume:
        run_dir = Path(resume)
        # rank 0 first: finding the checkpoint may recover one that a kill left renamed aside
        if env.is_main and ckpt.find_checkpoint(run_dir, "last") is None:
            raise ConfigError(f"--resume {run_dir}: no complete checkpoint in {run_dir / ckpt.CHECKPOINTS}")
    else:
        run_dir = new_run_dir(cfg, out, config_path) if env.is_main else Path()
    run_dir = Path(ddp.broadcast_object(env, str(run_dir)))
    return run_dir, ckpt.find_checkpoint(run_dir, "last") if resume else None


def open_run_folder(run: Run) -> None:
    """Create the run folder (rank 0) and write its config snapshot (a resumed run records the
    overrides it was continued with)."""
    if run.env.is_main:
        run.run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(run.run_dir / CONFIG_FILE, dump_config(run.cfg), force=True)
    ddp.barrier(run.env)


# ------------------------------------------------------------------------------------------ building
def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 - third-party code may draw from it
    random.seed(seed)


def _autocast_dtype(cfg: TrainConfig, device: torch.device) -> torch.dtype | None:
    if device.type != "cuda" or cfg.run.precision == "fp32":
        return None
    return torch.bfloat16 if cfg.run.precision == "bf16" else torch.float16


def _set_determinism(cfg: TrainConfig, env: ddp.DistEnv) -> None:
    if cfg.run.deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
    elif env.device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    if cfg.run.precision != "fp32" and env.device.type != "cuda" and env.is_main:
        print(f"mrisr: note: run.precision={cfg.run.precision} applies on CUDA only; training in fp32 on CPU")


def build_run(cfg: TrainConfig, env: ddp.DistEnv, out: str | None = None, resume: str | None = None,
              config_path: str | None = None) -> Run:
    """Everything a run needs, identical on every rank; nothing is written yet (see the module docstring).

    ``out``/``resume``/``config_path`` choose the run folder as ``mrisr train`` does.
    """
    t_start = time.perf_counter()
    _set_determinism(cfg, env)
    run_dir, checkpoint = _choose_run_dir(cfg, env, out, resume, config_path)

    # --- data: one dataset, validator and epoch count per distinct data section --------------------------
    seed = cfg.run.seed
    datas: dict[str, DataConfig] = {}
    phase_keys: list[str] = []
    for ph in cfg.phases:
        dcfg = phase_data(cfg, ph)
        datas.setdefault(data_key(dcfg), dcfg)
        phase_keys.append(data_key(dcfg))
    sections = {k: (f"phases.{phase_keys.index(k)}.data" if cfg.phases[phase_keys.index(k)].data else "data")
                for k in datas}
    train_sets = {k: build_dataset(d, d.train_split, seed, train=True, key=sections[k]) for k, d in datas.items()}
    spe = {k: steps_per_epoch(len(ds), datas[k], env) for k, ds in train_sets.items()}  # type: ignore[arg-type]
    schedule = Schedule(cfg.phases, lambda i: spe[phase_keys[i]])
    validators = {}  # built now, so a missing val split fails before training
    for key, dcfg in datas.items():
        vs = build_dataset(dcfg, dcfg.val_split, seed, train=False, patch_size=cfg.validation.patch_size,
                           key=sections[key])
        validators[key] = Validator(val_loader(vs, cfg.validation.batch_size, cfg.validation.max_samples),
                                    env.device, cfg.validation.baselines, cfg.validation.grid_samples,
                                    cfg.validation.ssim_gaussian)
    normalisation = data_normalisation(datas, sections, env.is_main)

    # --- networks, identical on every rank (seeded before construction) ---------------------------------
    from mrisr.models.registry import resolve_args

    seed_everything(seed)
    g_plain = _build_network(cfg, "generator", env.device)
    d_plain = _build_network(cfg, "discriminator", env.device) if cfg.model.discriminator is not None else None
    _check_generator_fits_data(cfg, g_plain, datas, train_sets)
    if checkpoint is None:
        _init_weights(cfg, env, {"generator": g_plain, "discriminator": d_plain})
    ema = EMA(g_plain) if cfg.ema.decay > 0 else None
    amp = _autocast_dtype(cfg, env.device)
    total = schedule.total_steps
    opt_g = build_updater(cfg.optim.generator, g_plain.parameters(), total, amp == torch.float16)
    opt_d = (build_updater(cfg.optim.discriminator, d_plain.parameters(), total, amp == torch.float16)
             if d_plain is not None else None)
    perceptual: dict[str, nn.Module] = {}
    objectives = [Objective(build_loss_terms(ph, i, env.device, perceptual),
                            build_adversarial(ph.adversarial) if ph.adversarial else None)
                  for i, ph in enumerate(cfg.phases)]
    net_args = {"generator": resolve_args(cfg.model.generator.name, cfg.model.generator.args)}
    if cfg.model.discriminator is not None:
        net_args["discriminator"] = resolve_args(cfg.model.discriminator.name, cfg.model.discriminator.args)
    return Run(cfg=cfg, env=env, run_dir=run_dir, checkpoint=checkpoint, amp=amp, datas=datas,
               phase_keys=phase_keys, train_sets=train_sets, steps_per_epoch=spe, validators=validators,
               schedule=schedule, nets=Networks(g_plain, g_plain, d_plain, d_plain, ema), opt_g=opt_g,
               opt_d=opt_d, objectives=objectives, normalisation=normalisation, net_args=net_args,
               best=Best(cfg.validation.metric), t_start=t_start)


def _build_network(cfg: TrainConfig, role: str, device: torch.device) -> nn.Module:
    from mrisr.models.registry import build_model

    net = getattr(cfg.model, role)
    try:
        return build_model(net.name, **net.args).to(device)
    except ConfigError as exc:
        raise ConfigError(f"model.{role}: {exc}") from None


def _check_generator_fits_data(cfg: TrainConfig, g: nn.Module, datas: dict[str, DataConfig],
                               train_sets: dict[str, Dataset[Any]]) -> None:
    """Channels, dimensionality and factors of the generator against every data section (a mismatch
    would otherwise surface as a shape error in the first step)."""
    for dcfg in datas.values():
        want_c, got_c = getattr(g, "in_channels", None), 1 + 2 * dcfg.context_slices
        if want_c is not None and want_c != got_c:
            raise ConfigError(f"model.generator.args.in_channels: the network takes {want_c} channels but "
                              f"data.context_slices={dcfg.context_slices} gives {got_c} (1 + 2 x context)")
        dims = getattr(g, "spatial_dims", None)
        if dims is not None and dims != dcfg.dims:
            raise ConfigError(f"data.dims: {dcfg.dims}D data for a {dims}D generator ({cfg.model.generator.name})")
    g_factors = getattr(g, "factors", None)
    for key, ds in train_sets.items():  # one sample tells the LR -> HR factors per tensor axis
        sample = ds[0]
        got = tuple(h // max(1, lr) for h, lr in zip(sample.hr.shape[1:], sample.lr.shape[1:], strict=True))
        if g_factors is not None and tuple(g_factors) != got:
            what = "data.lr_root" if datas[key].lr_root else f"the degradation {datas[key].degradation!r}"
            raise ConfigError(f"model.generator.args.scale: the generator upscales by {tuple(g_factors)} but "
                              f"{what} gives low-resolution inputs {got} times smaller (per axis)")


def _init_weights(cfg: TrainConfig, env: ddp.DistEnv, modules: dict[str, nn.Module | None]) -> None:
    """``init.generator`` / ``init.discriminator``: weights of another run or a model file (new runs only)."""
    for role, module in modules.items():
        ref = getattr(cfg.init, role)
        if ref is None:
            continue
        if module is None:
            raise ConfigError(f"init.{role}: the run has no {role}")
        src = ckpt.resolve_init(ref, role, cfg.init.which)
        try:
            ckpt.load_weights_into(module, src)
        except ConfigError as exc:
            raise ConfigError(f"init.{role}: {exc}") from None
        if env.is_main:
            print(f"mrisr: {role} initialised from {src}")


def data_normalisation(datas: dict[str, DataConfig], sections: dict[str, str], verbose: bool = True) -> dict[str, Any]:
    """The normalisation the training data were prepared with, read from the prepared folders' manifests
    (``root`` and ``lr_root`` of every data section; train and val splits share a folder's).

    A model file records one normalisation, so folders that disagree are a ConfigError naming both;
    a manifest that does not record one counts as the default (a note says so when ``verbose``).
    """
    from mrisr.data.manifest import load_manifest
    from mrisr.data.normalise import DEFAULT_NORMALISATION

    seen: list[tuple[str, str, dict[str, Any]]] = []
    for key, dcfg in datas.items():
        for sub, root in (("root", dcfg.root), ("lr_root", dcfg.lr_root)):
            if root is None:
                continue
            try:
                norm = load_manifest(root).normalisation
            except MrisrError as exc:
                raise ConfigError(f"{sections[key]}.{sub}: {exc}") from None
            if norm is None:
                norm = dict(DEFAULT_NORMALISATION)
                if verbose:
                    print(f"mrisr: note: {root}'s manifest does not record its normalisation; the model files "
                          f"will state the default ({_describe(norm)})")
            where = f"{sections[key]}.{sub}"
            if seen and norm != seen[0][2]:
                first_where, first_root, first = seen[0]
                raise ConfigError(f"{where}: {root} was prepared with {_describe(norm)} but {first_where} "
                                  f"({first_root}) with {_describe(first)}; a model file records one "
                                  "normalisation: prepare the folders with the same --percentiles")
            seen.append((where, root, norm))
    return seen[0][2]


def _describe(norm: dict[str, Any]) -> str:
    if norm.get("method") == "percentile":
        return f"percentiles {norm['low_percentile']:g}/{norm['high_percentile']:g}"
    return json.dumps(norm, sort_keys=True)


def build_loss_terms(phase: PhaseConfig, index: int, device: torch.device,
                     cache: dict[str, nn.Module] | None = None) -> list[LossTerm]:
    """The phase's generator objective as (name, weight, function) terms; unknown names or arguments are
    ConfigErrors naming the key. ``cache`` shares perceptual networks between phases."""
    import inspect

    from mrisr.losses import PIXEL_LOSSES, VGG19FeatureLoss

    cache = {} if cache is None else cache
    terms = []
    for j, t in enumerate(phase.losses):
        key = f"phases.{index}.losses.{j}"
        if t.name == "adversarial":
            if t.args:
                raise ConfigError(f"{key}.args: the adversarial term takes no args (set phases.{index}.adversarial)")
            terms.append(LossTerm("adversarial", t.weight, None))
            continue
        if t.name == "vgg19":
            ident = json.dumps(t.args, sort_keys=True, default=str)
            if ident not in cache:
                try:
                    cache[ident] = VGG19FeatureLoss(**t.args).to(device).eval().requires_grad_(False)
                except TypeError as exc:
                    raise ConfigError(f"{key}.args: {exc}") from None
                except MrisrError as exc:  # weights missing or unreadable: say which term needs them
                    where = f"{key}.args.weights_path" if "weights_path" in t.args else f"{key} (vgg19)"
                    raise ConfigError(f"{where}: {exc}") from None
            terms.append(LossTerm(t.name, t.weight, cache[ident]))
            continue
        fn = PIXEL_LOSSES.get(t.name)
        if fn is None:
            known = sorted({"adversarial", "vgg19", *PIXEL_LOSSES})
            raise ConfigError(f"{key}.name: unknown loss {t.name!r}; known: {', '.join(known)}")
        if t.args:
            allowed = set(list(inspect.signature(fn).parameters)[2:])
            bad = sorted(set(t.args) - allowed)
            if bad:
                raise ConfigError(f"{key}.args.{bad[0]}: not an argument of {t.name} "
                                  f"(it takes {', '.join(sorted(allowed)) or 'none'})")
            fn = functools.partial(fn, **t.args)
        terms.append(LossTerm(t.name, t.weight, fn))
    return terms


# ------------------------------------------------------------------------------------------ resuming
def restore(run: Run, checkpoint: Path) -> None:
    """Continue from ``checkpoint``: weights (EMA too), optimiser and scaler states, position, best
    score, and this rank's RNG streams (bit-identical continuation on the same number of processes)."""
    env, nets = run.env, run.nets
    state = ckpt.load_state(checkpoint)
    ckpt.load_weights_into(nets.g_plain, ckpt.network_file(checkpoint, "generator"))
    if nets.ema is not None:
        ema_file = ckpt.network_file(checkpoint, "generator_ema")
        ckpt.load_weights_into(nets.ema.shadow, ema_file if ema_file.is_file()
                               else ckpt.network_file(checkpoint, "generator"))
    if nets.d_plain is not None:
        ckpt.load_weights_into(nets.d_plain, ckpt.network_file(checkpoint, "discriminator"))
    load_updater_states(run.updaters, state)
    run.pos = Position(**state["position"])
    run.best = Best(**state["best"])
    if run.best.metric != run.cfg.validation.metric:
        run.best = Best(run.cfg.validation.metric)
    rngs = state["rng"]
    if state["world_size"] != env.world_size and env.is_main:
        print(f"mrisr: note: resuming a {state['world_size']}-process run on {env.world_size}; "
              "the continuation is not bit-identical")
    ckpt.restore_rng(rngs[env.rank] if env.rank < len(rngs) else rngs[0])


def wrap_networks(run: Run) -> None:
    """DDP around the plain networks when the world is larger than one; ``torch.compile`` when asked."""
    cfg, nets = run.cfg, run.nets
    wrap = functools.partial(ddp.wrap, env=run.env, find_unused_parameters=cfg.distributed.find_unused_parameters,
                             sync_batchnorm=cfg.distributed.sync_batchnorm)
    nets.g = wrap(nets.g_plain)
    nets.d = wrap(nets.d_plain) if nets.d_plain is not None else None
    if cfg.run.compile:
        nets.g = torch.compile(nets.g)  # type: ignore[assignment]
        nets.d = torch.compile(nets.d) if nets.d is not None else None  # type: ignore[assignment]


@contextlib.contextmanager
def rng_fork(device: torch.device) -> Iterator[None]:
    """Validation must not advance the training stream's RNGs."""
    state = ckpt.capture_rng()
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        yield
    ckpt.restore_rng(state)


def network_records(run: Run) -> dict[str, ckpt.NetworkRecord]:
    """The networks a checkpoint saves, each with what rebuilds and describes it in its model file."""
    cfg, nets, last = run.cfg, run.nets, run.datas[run.phase_keys[-1]]
    train_meta = {"normalisation": run.normalisation, "degradation": last.degradation,
                  "training_data": {"root": last.root, "run": str(run.run_dir), "step": run.pos.step},
                  "validation_metrics": dict(run.last_scores)}
    g_args = run.net_args["generator"]
    recs = {"generator": ckpt.NetworkRecord(nets.g_plain, cfg.model.generator.name, g_args, train_meta)}
    if nets.ema is not None:
        recs["generator_ema"] = ckpt.NetworkRecord(nets.ema.shadow, cfg.model.generator.name, g_args,
                                                   {**train_meta, "ema_decay": cfg.ema.decay})
    if nets.d_plain is not None and cfg.model.discriminator is not None:
        recs["discriminator"] = ckpt.NetworkRecord(nets.d_plain, cfg.model.discriminator.name,
                                                   run.net_args["discriminator"], {})
    return recs


def trainer_state(run: Run, rng: list[Any]) -> dict[str, Any]:
    """The checkpoint's ``trainer_state.pt`` (tensors and plain containers; ``rng``: one per rank)."""
    return {"step": run.pos.step, "position": dataclasses.asdict(run.pos), "best": dataclasses.asdict(run.best),
            **updater_states(run.updaters), "rng": rng, "world_size": run.env.world_size}
