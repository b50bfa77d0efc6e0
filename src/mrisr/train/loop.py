"""``mrisr train``: the training loop, top to bottom.

    set up (processes, run folder, data, networks, optimisers, resume)
    for each step (one batch):
        phase  <- schedule.at(step)           which networks update, losses, ratio, data
        D step (discriminator_losses -> apply_update) when the ratio says so
        G step (generator_losses -> apply_update, EMA) when the ratio says so
        log / validate / checkpoint when due; stop cleanly on Ctrl-C

Exactness: everything random in the training stream comes from the global RNGs (seeded by
``run.seed`` + rank) and from the data (a function of seed, epoch and index); checkpoints store the
RNG states and the position in the epoch, and validation runs inside a forked RNG, so a run that is
killed and resumed ends with the same weights as one that was not (on CPU; cuDNN's nondeterministic
kernels aside on GPU unless ``run.deterministic``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import random
import shutil
import signal
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from mrisr.errors import ConfigError, MrisrError, OutputExistsError
from mrisr.io.atomic import atomic_write_text
from mrisr.train import checkpoint as ckpt
from mrisr.train import distributed as ddp
from mrisr.train.config import DataConfig, PhaseConfig, TrainConfig, config_from_dict, dump_config, phase_data
from mrisr.train.data import TrainLoader, build_dataset, data_key, steps_per_epoch, val_loader
from mrisr.train.gan import (
    EMA,
    Adversarial,
    LossTerm,
    apply_update,
    discriminator_losses,
    frozen,
    generator_losses,
    smooth_l1_d_loss,
    smooth_l1_g_loss,
)
from mrisr.train.optim import build_optimizer, set_lr
from mrisr.train.plots import sample_grid
from mrisr.train.runlog import RunLog
from mrisr.train.schedule import PhaseSpan, Schedule, lr_factor
from mrisr.train.validate import HIGHER_IS_BETTER, Validator, is_better

CONFIG_FILE = "config.yaml"
PLOT_INTERVAL_S = 300.0  # loss plots are redrawn at validations at most this often, and at the end


# ------------------------------------------------------------------------------------------ objectives
def build_adversarial(kind: str) -> Adversarial:
    from mrisr.losses.adversarial import discriminator_loss, generator_adversarial_loss, gradient_penalty

    if kind == "smooth_l1":  # the pediatric study's objective (see mrisr.train.gan.smooth_l1_d_loss)
        return Adversarial(kind=kind, d_loss=smooth_l1_d_loss, g_loss=smooth_l1_g_loss, penalty=gradient_penalty)
    return Adversarial(kind=kind, d_loss=functools.partial(discriminator_loss, kind),
                       g_loss=functools.partial(generator_adversarial_loss, kind), penalty=gradient_penalty,
                       g_needs_real=kind == "relativistic")


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
    import yaml

    from mrisr.train.config import config_to_dict, load_config

    path = run_dir / CONFIG_FILE
    if not path.is_file():
        raise ConfigError(f"--resume {run_dir}: no {CONFIG_FILE} (not a run folder)")
    try:
        cfg = config_from_dict(yaml.safe_load(path.read_text()) or {}, overrides)
    except ConfigError as exc:
        raise ConfigError(f"--resume {run_dir}: {CONFIG_FILE}: {exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"--resume {run_dir}: {CONFIG_FILE} is not valid YAML: {str(exc).splitlines()[0]}") from None
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


# ------------------------------------------------------------------------------------------ divergence
class TrainingDiverged(MrisrError):
    """A loss or a weight became NaN/Inf: the run stops without writing a checkpoint of broken weights."""


def nonfinite_losses(sums: dict[str, Tensor]) -> list[str]:
    """Names of accumulated losses that are NaN/Inf (one host sync)."""
    if not sums:
        return []
    names = list(sums)
    finite = torch.isfinite(torch.stack([sums[k].reshape(()) for k in names])).tolist()
    return [k for k, ok in zip(names, finite, strict=True) if not ok]


def nonfinite_weights(module: nn.Module | None) -> list[str]:
    if module is None:
        return []
    return [n for n, t in module.state_dict().items()
            if t.is_floating_point() and not bool(torch.isfinite(t).all())]


def diverged_message(what: str, step: int, phase: str, run_dir: Path, cfg: TrainConfig) -> str:
    last = ckpt.find_checkpoint(run_dir, "last")
    kept = (f"checkpoints/last (step {ckpt.load_state(last)['step']}) is kept, resume from it with --resume "
            f"{run_dir} --set ..." if last is not None else "no checkpoint was written")
    lr = cfg.optim.generator.optimizer.lr
    return (f"training diverged at step {step} (phase '{phase}'): {what} is NaN/Inf; {kept}; try a lower "
            f"optim.*.optimizer.lr (generator: {lr:g}), optim.*.grad_clip, or run.precision=fp32")


# ------------------------------------------------------------------------------------------ stop request
class StopRequest:
    """Ctrl-C / SIGTERM set a flag checked between steps, so the run stops at a step boundary and saves a
    checkpoint from which it resumes exactly. A second Ctrl-C interrupts at once."""

    def __init__(self) -> None:
        self.requested = False
        self._old: dict[int, Any] = {}

    def _handler(self, signum: int, frame: Any) -> None:
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handler)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)


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


def _seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 - third-party code may draw from it
    random.seed(seed)


@contextlib.contextmanager
def _rng_fork(device: torch.device) -> Iterator[None]:
    """Validation must not advance the training stream's RNGs."""
    state = ckpt.capture_rng()
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        yield
    ckpt.restore_rng(state)


def _autocast_dtype(cfg: TrainConfig, device: torch.device) -> torch.dtype | None:
    if device.type != "cuda" or cfg.run.precision == "fp32":
        return None
    return torch.bfloat16 if cfg.run.precision == "bf16" else torch.float16


class Throughput:
    """Samples per second of the training steps (data waits included; validation, checkpoints and the
    first ``warmup`` steps excluded). No per-step device sync: the clocks are read after a sync at the
    warm-up's end, around the excluded work and at the end. Also this process's CPU seconds over the
    same span (on a shared CPU machine, samples per CPU second is the steadier figure)."""

    def __init__(self, warmup: int, device: torch.device):
        self.warmup = warmup
        self.device = device
        self.steps = 0
        self.timed = 0
        self.samples = 0
        self.excluded = (0.0, 0.0)
        self._begin: tuple[float, float] | None = None
        self._paused = (0.0, 0.0)

    def _now(self) -> tuple[float, float]:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return time.perf_counter(), time.process_time()

    def step_done(self, samples: int) -> None:
        self.steps += 1
        if self._begin is not None:
            self.samples += samples
            self.timed += 1
        elif self.steps >= self.warmup:
            self._begin = self._now()

    def pause(self) -> None:
        if self._begin is not None:
            self._paused = self._now()

    def resume(self) -> None:
        if self._begin is not None:
            wall, cpu = time.perf_counter(), time.process_time()
            self.excluded = (self.excluded[0] + wall - self._paused[0], self.excluded[1] + cpu - self._paused[1])

    def summary(self) -> dict[str, float | int | None]:
        if self._begin is None or self.samples == 0:
            return {"timed_steps": 0, "seconds": 0.0, "samples_per_second": None}
        wall, cpu = (n - b - e for n, b, e in zip(self._now(), self._begin, self.excluded, strict=True))
        return {"timed_steps": self.timed, "seconds": round(wall, 4), "cpu_seconds": round(cpu, 4),
                "samples_per_second": round(self.samples / wall, 3),
                "samples_per_cpu_second": round(self.samples / cpu, 3) if cpu > 0 else None}


# ------------------------------------------------------------------------------------------ the step
def train_step(batch: Any, nets: Networks, span: PhaseSpan, do_g: bool, do_d: bool, terms: list[LossTerm],
               adversarial: Adversarial | None, opt_g: torch.optim.Optimizer,
               opt_d: torch.optim.Optimizer | None, cfg: TrainConfig, amp: torch.dtype | None,
               scalers: dict[str, torch.amp.GradScaler | None], ema_decay: float) -> dict[str, Tensor]:
    """One batch: the D update and/or the G update. Returns detached losses (no host sync)."""
    autocast: Any = (contextlib.nullcontext if amp is None
                     else functools.partial(torch.autocast, batch.lr.device.type, dtype=amp))
    out: dict[str, Tensor] = {}
    with autocast():
        if do_g:
            sr = nets.g(batch.lr)
        else:
            with torch.no_grad():
                sr = nets.g_plain(batch.lr)
    if do_d:
        assert nets.d is not None and opt_d is not None and adversarial is not None
        with autocast():
            d_losses = discriminator_losses(nets.d, batch.hr, sr, adversarial, span.phase.gp_weight,
                                            penalty_critic=nets.d_plain)
        norm = apply_update(d_losses["d_total"], opt_d, opt_d.param_groups[0]["params"],
                            cfg.optim.discriminator.grad_clip, scalers["discriminator"])
        if norm is not None:
            d_losses["d_grad_norm"] = norm
        out.update(d_losses)
    if do_g:
        with autocast(), (frozen(nets.d_plain) if nets.d_plain is not None else contextlib.nullcontext()):
            g_losses = generator_losses(sr.float() if amp is not None else sr, batch.hr, terms, nets.d_plain,
                                        adversarial)
        norm = apply_update(g_losses["g_total"], opt_g, opt_g.param_groups[0]["params"],
                            cfg.optim.generator.grad_clip, scalers["generator"])
        if norm is not None:
            g_losses["g_grad_norm"] = norm
        if nets.ema is not None:
            nets.ema.update(nets.g_plain, ema_decay)
        out.update(g_losses)
    return {k: v.detach().float() for k, v in out.items()}


# ------------------------------------------------------------------------------------------ main
def train(cfg: TrainConfig, out: str | None = None, resume: str | None = None,
          config_path: str | None = None) -> Path:
    """Run a config into a new run folder (``out``, default ``runs/<name>-<time>``), or continue the run
    folder ``resume`` from its last checkpoint; returns the run folder. See the module docstring."""
    env = ddp.init_distributed(cfg.run.device, cfg.distributed.backend)
    created: list[tuple[Path, bool]] = []
    try:
        return _train(cfg, env, out, resume, config_path, created)
    except BaseException:
        # A new run that fails before its first checkpoint leaves nothing behind (so the same --out
        # can be used again once the config is fixed).
        for run_dir, existed in created:
            if ckpt.find_checkpoint(run_dir, "last") is None and not isinstance(sys.exc_info()[1], TrainingDiverged):
                shutil.rmtree(run_dir, ignore_errors=True)
                if existed:
                    run_dir.mkdir(parents=True, exist_ok=True)
        raise
    finally:
        ddp.shutdown(env)


def _train(cfg: TrainConfig, env: ddp.DistEnv, out: str | None, resume: str | None,
           config_path: str | None, created: list[tuple[Path, bool]]) -> Path:
    t_start = time.perf_counter()
    if cfg.run.deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
    elif env.device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    if cfg.run.precision != "fp32" and env.device.type != "cuda" and env.is_main:
        print(f"mrisr: note: run.precision={cfg.run.precision} applies on CUDA only; training in fp32 on CPU")
    amp = _autocast_dtype(cfg, env.device)

    # --- run folder (chosen on rank 0) -------------------------------------------------------------
    if resume:
        run_dir = Path(resume)
        # rank 0 first: finding the checkpoint may recover one that a kill left renamed aside
        if env.is_main and ckpt.find_checkpoint(run_dir, "last") is None:
            raise ConfigError(f"--resume {run_dir}: no complete checkpoint in {run_dir / ckpt.CHECKPOINTS}")
    else:
        run_dir = new_run_dir(cfg, out, config_path) if env.is_main else Path()
    run_dir = Path(ddp.broadcast_object(env, str(run_dir)))
    last = ckpt.find_checkpoint(run_dir, "last") if resume else None

    # --- data ---------------------------------------------------------------------------------------
    seed = cfg.run.seed
    datas: dict[str, DataConfig] = {}
    phase_keys: list[str] = []
    for ph in cfg.phases:
        dcfg = phase_data(cfg, ph)
        key = data_key(dcfg)
        datas.setdefault(key, dcfg)
        phase_keys.append(key)
    data_section = {k: (f"phases.{phase_keys.index(k)}.data" if cfg.phases[phase_keys.index(k)].data else "data")
                    for k in datas}
    train_sets = {k: build_dataset(d, d.train_split, seed, train=True, key=data_section[k])
                  for k, d in datas.items()}
    spe = {k: steps_per_epoch(len(ds), datas[k], env) for k, ds in train_sets.items()}  # type: ignore[arg-type]
    schedule = Schedule(cfg.phases, lambda i: spe[phase_keys[i]])
    total = schedule.total_steps

    validators: dict[str, Validator] = {}  # built now, so a missing val split fails before training
    for key, dcfg in datas.items():
        vs = build_dataset(dcfg, dcfg.val_split, seed, train=False, patch_size=cfg.validation.patch_size,
                           key=data_section[key])
        validators[key] = Validator(val_loader(vs, cfg.validation.batch_size, cfg.validation.max_samples),
                                    env.device, cfg.validation.baselines, cfg.validation.grid_samples,
                                    cfg.validation.ssim_gaussian)

    # --- networks, identical on every rank (seeded before construction) -------------------------------
    from mrisr.models.registry import build_model, resolve_args

    def build_network(role: str) -> nn.Module:
        net = getattr(cfg.model, role)
        try:
            return build_model(net.name, **net.args).to(env.device)
        except ConfigError as exc:
            raise ConfigError(f"model.{role}: {exc}") from None

    _seed_everything(seed)
    g_plain = build_network("generator")
    d_plain = build_network("discriminator") if cfg.model.discriminator is not None else None
    for dcfg in datas.values():  # a mismatch would otherwise surface as a shape error in the first step
        want_c, got_c = getattr(g_plain, "in_channels", None), 1 + 2 * dcfg.context_slices
        if want_c is not None and want_c != got_c:
            raise ConfigError(f"model.generator.args.in_channels: the network takes {want_c} channels but "
                              f"data.context_slices={dcfg.context_slices} gives {got_c} (1 + 2 x context)")
        dims = getattr(g_plain, "spatial_dims", None)
        if dims is not None and dims != dcfg.dims:
            raise ConfigError(f"data.dims: {dcfg.dims}D data for a {dims}D generator ({cfg.model.generator.name})")
    for key, ds in train_sets.items():  # one sample tells the LR -> HR factors per tensor axis
        g_factors = getattr(g_plain, "factors", None)
        sample = ds[0]
        got = tuple(h // max(1, lr) for h, lr in zip(sample.hr.shape[1:], sample.lr.shape[1:], strict=True))
        if g_factors is not None and tuple(g_factors) != got:
            what = "data.lr_root" if datas[key].lr_root else f"the degradation {datas[key].degradation!r}"
            raise ConfigError(f"model.generator.args.scale: the generator upscales by {tuple(g_factors)} but "
                              f"{what} gives low-resolution inputs {got} times smaller (per axis)")
    if last is None:
        for role, module in (("generator", g_plain), ("discriminator", d_plain)):
            ref = getattr(cfg.init, role)
            if ref is not None:
                if module is None:
                    raise ConfigError(f"init.{role}: the run has no {role}")
                src = ckpt.resolve_init(ref, role, cfg.init.which)
                try:
                    ckpt.load_weights_into(module, src)
                except ConfigError as exc:
                    raise ConfigError(f"init.{role}: {exc}") from None
                if env.is_main:
                    print(f"mrisr: {role} initialised from {src}")
    ema = EMA(g_plain) if cfg.ema.decay > 0 else None
    opt_g = build_optimizer(cfg.optim.generator.optimizer, g_plain.parameters())
    opt_d = build_optimizer(cfg.optim.discriminator.optimizer, d_plain.parameters()) if d_plain is not None else None
    fp16 = amp == torch.float16
    scalers: dict[str, torch.amp.GradScaler | None] = {
        "generator": torch.amp.GradScaler("cuda") if fp16 else None,
        "discriminator": torch.amp.GradScaler("cuda") if fp16 and d_plain is not None else None,
    }
    perceptual: dict[str, nn.Module] = {}
    phase_terms = [build_loss_terms(ph, i, env.device, perceptual) for i, ph in enumerate(cfg.phases)]
    phase_adv = [build_adversarial(ph.adversarial) if ph.adversarial else None for ph in cfg.phases]
    lr_g = lr_factor(cfg.optim.generator.scheduler, total)
    lr_d = lr_factor(cfg.optim.discriminator.scheduler, total)

    # --- resume -------------------------------------------------------------------------------------
    pos = Position()
    best = Best(cfg.validation.metric)
    if last is not None:
        state = ckpt.load_state(last)
        ckpt.load_weights_into(g_plain, ckpt.network_file(last, "generator"))
        if ema is not None:
            ema_file = ckpt.network_file(last, "generator_ema")
            ckpt.load_weights_into(ema.shadow, ema_file if ema_file.is_file() else ckpt.network_file(last, "generator"))
        if d_plain is not None:
            ckpt.load_weights_into(d_plain, ckpt.network_file(last, "discriminator"))
        opt_g.load_state_dict(state["optimizers"]["generator"])
        if opt_d is not None:
            opt_d.load_state_dict(state["optimizers"]["discriminator"])
        for role, scaler in scalers.items():
            if scaler is not None and role in state["scalers"]:
                scaler.load_state_dict(state["scalers"][role])
        pos = Position(**state["position"])
        if pos.step >= total:
            if env.is_main:
                print(f"mrisr: {run_dir} is already complete ({pos.step}/{total} steps); nothing to do "
                      "(train longer with --set phases.N.steps=... or a later phase)")
            return run_dir
        best = Best(**state["best"])
        if best.metric != cfg.validation.metric:
            best = Best(cfg.validation.metric)
        rngs = state["rng"]
        if state["world_size"] != env.world_size and env.is_main:
            print(f"mrisr: note: resuming a {state['world_size']}-process run on {env.world_size}; "
                  "the continuation is not bit-identical")
        ckpt.restore_rng(rngs[env.rank] if env.rank < len(rngs) else rngs[0])
        if env.is_main:
            print(f"mrisr: resumed {run_dir} at step {pos.step}/{total}")
    else:
        # The training stream's RNG: per rank, rank 0 identical to a single-process run.
        _seed_everything(seed + env.rank)

    # --- the run folder: created (or its config updated) only now that the whole set-up has succeeded
    if env.is_main:  # a resumed run records the overrides it was continued with
        if not resume:
            created.append((run_dir, run_dir.exists()))
        run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(run_dir / CONFIG_FILE, dump_config(cfg), force=True)
    ddp.barrier(env)

    # --- distributed wrappers -----------------------------------------------------------------------
    g = ddp.wrap(g_plain, env, cfg.distributed.find_unused_parameters, cfg.distributed.sync_batchnorm)
    d = (ddp.wrap(d_plain, env, cfg.distributed.find_unused_parameters, cfg.distributed.sync_batchnorm)
         if d_plain is not None else None)
    if cfg.run.compile:
        g = torch.compile(g)  # type: ignore[assignment]
        d = torch.compile(d) if d is not None else None  # type: ignore[assignment]
    nets = Networks(g=g, g_plain=g_plain, d=d, d_plain=d_plain, ema=ema)

    log = RunLog(run_dir, env.is_main, pos.step if last is not None else None, total, cfg.run.progress)

    g_args = resolve_args(cfg.model.generator.name, cfg.model.generator.args)
    d_args = resolve_args(cfg.model.discriminator.name, cfg.model.discriminator.args) if cfg.model.discriminator else {}

    def network_records() -> dict[str, ckpt.NetworkRecord]:
        train_meta = {"degradation": datas[phase_keys[-1]].degradation,
                      "training_data": {"root": datas[phase_keys[-1]].root, "run": str(run_dir), "step": pos.step},
                      "validation_metrics": dict(last_scores)}
        recs = {"generator": ckpt.NetworkRecord(g_plain, cfg.model.generator.name, g_args, train_meta)}
        if ema is not None:
            recs["generator_ema"] = ckpt.NetworkRecord(ema.shadow, cfg.model.generator.name, g_args,
                                                       {**train_meta, "ema_decay": cfg.ema.decay})
        if d_plain is not None and cfg.model.discriminator is not None:
            recs["discriminator"] = ckpt.NetworkRecord(d_plain, cfg.model.discriminator.name, d_args, {})
        return recs

    def save(also_best: bool) -> None:
        # every rank checks (DDP keeps the weights identical), so all stop together
        for role, module in (("generator", g_plain), ("discriminator", d_plain),
                             ("generator EMA", ema.shadow if ema is not None else None)):
            bad = nonfinite_weights(module)
            if bad:  # never replace a good checkpoint by broken weights
                raise TrainingDiverged(diverged_message(f"{role} weight {bad[0]}", pos.step,
                                                        schedule.at(pos.step - 1).phase.name, run_dir, cfg))
        rng = ddp.all_gather_object(env, ckpt.capture_rng())
        if not env.is_main:
            return
        state = {
            "step": pos.step,
            "position": dataclasses.asdict(pos),
            "best": dataclasses.asdict(best),
            "optimizers": {"generator": opt_g.state_dict(),
                           **({"discriminator": opt_d.state_dict()} if opt_d is not None else {})},
            "scalers": {k: s.state_dict() for k, s in scalers.items() if s is not None},
            "rng": rng,
            "world_size": env.world_size,
        }
        ckpt.save_checkpoint(run_dir, network_records(), state, also_best=also_best)

    last_scores: dict[str, float] = {}

    def validate(span: PhaseSpan) -> bool:
        """Score the (EMA) generator on rank 0; returns whether it is the best so far."""
        nonlocal best, last_scores
        is_best = False
        if env.is_main:
            key = phase_keys[span.index]
            model = ema.shadow if ema is not None and pos.step > cfg.ema.start_step else g_plain
            with _rng_fork(env.device):
                result = validators[key](model, amp)
            flat = result.flat()
            last_scores = {k: v for k, v in flat.items() if k.startswith("model.")}
            log.scalars(pos.step, pos.epoch_float(spe[key]), span.phase.name, "val", flat)
            if best.data != key:  # a new validation set: scores are not comparable with the old best
                best = Best(cfg.validation.metric, data=key)
            value = result.scores["model"][cfg.validation.metric]
            if is_better(cfg.validation.metric, value, best.value):
                best = Best(cfg.validation.metric, value, pos.step, key)
                is_best = True
            base = "  ".join(f"{m} {result.scores[m][cfg.validation.metric]:.4f}" for m in cfg.validation.baselines)
            log.message(f"step {pos.step}: val {cfg.validation.metric} model {value:.4f}  {base}"
                        f"{'  (best)' if is_best else ''}")
            if result.grid:
                samples = run_dir / "samples"
                samples.mkdir(exist_ok=True)
                png = sample_grid(result.grid, samples / f"val_step{pos.step:08d}.png",
                                  cfg.validation.baselines[0] if cfg.validation.baselines else "LR")
                log.figure("val/samples", png, pos.step)
            log.plot_losses(min_interval_s=PLOT_INTERVAL_S)
        return bool(ddp.broadcast_object(env, is_best))

    # --- the loop -----------------------------------------------------------------------------------
    loaders: dict[str, TrainLoader] = {}
    loader_it: Iterator[Any] | None = None
    loader_key = ""
    phase_index = -1
    terms: list[LossTerm] = []
    adversarial: Adversarial | None = None
    sums: dict[str, Tensor] = {}
    counts: dict[str, int] = {}
    meter = Throughput(warmup=min(10, max(0, (total - pos.step) // 5)), device=env.device)
    with StopRequest() as stop:
        try:
            while pos.step < total:
                span = schedule.at(pos.step)
                key = phase_keys[span.index]
                if span.index != phase_index:  # entering a phase (or resuming inside one)
                    phase_index = span.index
                    terms, adversarial = phase_terms[span.index], phase_adv[span.index]
                    g_plain.train(span.trains("generator"))
                    if d_plain is not None:
                        d_plain.train(span.trains("discriminator"))
                    if pos.data and pos.data != key and pos.batch > 0:
                        pos.epoch, pos.batch = pos.epoch + 1, 0  # new data: start a new epoch
                    pos.data = key
                    log.message(f"phase {span.index + 1}/{len(schedule)} '{span.phase.name}': steps "
                                f"{span.start}-{span.end - 1}, trains {'+'.join(span.phase.train)}, "
                                f"ratio G:D {span.phase.ratio}")
                if loader_it is None or loader_key != key:
                    if key not in loaders:
                        loaders[key] = TrainLoader(train_sets[key], datas[key], env, seed)
                    loader_it = loaders[key].epoch(pos.epoch, pos.batch)
                    loader_key = key
                batch = next(loader_it).to(env.device, non_blocking=True)

                scale = span.phase.lr_scale
                set_lr(opt_g, cfg.optim.generator.optimizer.lr * scale * lr_g(pos.step))
                if opt_d is not None:
                    set_lr(opt_d, cfg.optim.discriminator.optimizer.lr * scale * lr_d(pos.step))
                do_g, do_d = span.updates(pos.step)
                ema_decay = cfg.ema.decay if pos.step >= cfg.ema.start_step else 0.0
                losses = train_step(batch, nets, span, do_g, do_d, terms, adversarial, opt_g, opt_d, cfg, amp,
                                    scalers, ema_decay)
                for k, v in losses.items():
                    sums[k] = sums[k] + v if k in sums else v
                    counts[k] = counts.get(k, 0) + 1

                pos.step += 1
                pos.batch += 1
                if pos.batch == spe[key]:
                    pos.epoch, pos.batch = pos.epoch + 1, 0
                    loader_it = None

                phase_end = pos.step == span.end
                val_due = pos.step % cfg.validation.every == 0 or phase_end
                log_due = pos.step % cfg.run.log_every == 0 or phase_end
                if log_due or val_due or pos.step % cfg.checkpoint.every == 0:
                    bad = nonfinite_losses(sums)  # before anything is logged or saved
                    if ddp.any_rank(env, bool(bad)):
                        if bad:
                            log.scalars(pos.step, pos.epoch_float(spe[key]), span.phase.name, "train",
                                        {k: float(sums[k]) for k in bad})
                        raise TrainingDiverged(diverged_message(f"loss {', '.join(bad) or 'on another rank'}",
                                                                pos.step, span.phase.name, run_dir, cfg))
                if log_due:
                    values = {k: float(v) / counts[k] for k, v in sums.items()}  # the one host sync
                    values["lr_g"] = opt_g.param_groups[0]["lr"]
                    if opt_d is not None:
                        values["lr_d"] = opt_d.param_groups[0]["lr"]
                    log.scalars(pos.step, pos.epoch_float(spe[key]), span.phase.name, "train", values)
                    log.progress(pos.step, {"phase": span.phase.name,
                                            **{k: f"{v:.3g}" for k, v in values.items() if k.endswith("total")}})
                    sums, counts = {}, {}
                else:
                    log.progress(pos.step)
                meter.step_done(len(batch) * env.world_size)
                stopping = ddp.any_rank(env, stop.requested) if (
                    not env.distributed or pos.step % cfg.run.log_every == 0 or phase_end) else False
                save_due = val_due or stopping or pos.step % cfg.checkpoint.every == 0
                if save_due:
                    meter.pause()
                    is_best = validate(span) if val_due else False
                    save(also_best=is_best)
                    meter.resume()
                if stopping:
                    log.plot_losses()
                    log.message(f"mrisr: stopped at step {pos.step}; checkpoint saved "
                                f"(continue with: mrisr train --resume {run_dir})")
                    raise KeyboardInterrupt
            log.plot_losses()
        finally:
            log.close()

    elapsed = time.perf_counter() - t_start
    if env.is_main:
        summary = {"run_dir": str(run_dir), "steps": total, "best": dataclasses.asdict(best),
                   "final_validation": last_scores, "seconds": round(elapsed, 2),
                   "training_throughput": meter.summary()}
        atomic_write_text(run_dir / "summary.json", json.dumps(summary, indent=2) + "\n", force=True)
        direction = "higher" if HIGHER_IS_BETTER[cfg.validation.metric] else "lower"
        print(f"mrisr: finished {total} steps in {elapsed:.1f} s; best val {cfg.validation.metric} "
              f"({direction} is better) {best.value} at step {best.step}; run folder {run_dir}")
    return run_dir
