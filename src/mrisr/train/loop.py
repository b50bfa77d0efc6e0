"""``mrisr train``: the training loop, top to bottom.

    run = build_run(cfg)                      data, networks, optimisers, losses, schedule (mrisr.train.run)
    restore(run, checkpoint) or seed          continue a run exactly, or start the training stream
    for each step (one batch):                fit(run)
        phase  <- schedule.at(step)           which networks update, losses, ratio, data
        D step (discriminator_step) when the ratio says so
        G step (generator_step, EMA) when the ratio says so
        log / validate / save when due; stop cleanly on Ctrl-C

Exactness: everything random in the training stream comes from the global RNGs (seeded by
``run.seed`` + rank) and from the data (a function of seed, epoch and index); checkpoints store the
RNG states and the position in the epoch, and validation runs inside a forked RNG, so a run that is
killed and resumed ends with the same weights as one that was not (on CPU; cuDNN's nondeterministic
kernels aside on GPU unless ``run.deterministic``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import shutil
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from mrisr.errors import MrisrError
from mrisr.io.atomic import atomic_write_text
from mrisr.metrics.registry import METRICS, is_better
from mrisr.train import checkpoint as ckpt
from mrisr.train import distributed as ddp
from mrisr.train.config import TrainConfig
from mrisr.train.data import TrainLoader
from mrisr.train.gan import discriminator_losses, frozen, generator_losses
from mrisr.train.plots import sample_grid
from mrisr.train.run import (
    Best,
    Objective,
    Run,
    build_run,
    network_records,
    open_run_folder,
    restore,
    rng_fork,
    seed_everything,
    trainer_state,
    wrap_networks,
)
from mrisr.train.runlog import RunLog, Throughput
from mrisr.train.schedule import PhaseSpan

PLOT_INTERVAL_S = 300.0  # loss plots are redrawn at validations at most this often, and at the end


# ------------------------------------------------------------------------------------------ main
def train(cfg: TrainConfig, out: str | None = None, resume: str | None = None,
          config_path: str | None = None) -> Path:
    """Run a config into a new run folder (``out``, default ``runs/<name>-<time>``), or continue the run
    folder ``resume`` from its last checkpoint; returns the run folder. See the module docstring."""
    env = ddp.init_distributed(cfg.run.device, cfg.distributed.backend)
    created: list[tuple[Path, bool]] = []
    try:
        run = build_run(cfg, env, out, resume, config_path)
        total = run.schedule.total_steps
        if run.checkpoint is not None:
            restore(run, run.checkpoint)
            if run.pos.step >= total:
                if env.is_main:
                    print(f"mrisr: {run.run_dir} is already complete ({run.pos.step}/{total} steps); nothing "
                          "to do (train longer with --set phases.N.steps=... or a later phase)")
                return run.run_dir
            if env.is_main:
                print(f"mrisr: resumed {run.run_dir} at step {run.pos.step}/{total}")
        else:  # the training stream's RNG: per rank, rank 0 identical to a single-process run
            seed_everything(cfg.run.seed + env.rank)
        if run.checkpoint is None and env.is_main:
            created.append((run.run_dir, run.run_dir.exists()))
        open_run_folder(run)
        wrap_networks(run)
        return fit(run)
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


def fit(run: Run) -> Path:
    """Train from ``run.pos`` to the end of the schedule (checkpoints on the way); returns the run folder."""
    cfg, pos, env = run.cfg, run.pos, run.env
    total = run.schedule.total_steps
    batches, losses, phase_index = Batches(run), LossSums(), -1
    meter = Throughput(warmup=min(10, max(0, (total - pos.step) // 5)), device=env.device)
    resume_step = pos.step if run.checkpoint is not None else None
    with StopRequest() as stop, RunLog(run.run_dir, env.is_main, resume_step, total, cfg.run.progress) as log:
        while pos.step < total:
            span = run.schedule.at(pos.step)
            if span.index != phase_index:  # entering a phase (or resuming inside one)
                phase_index = span.index
                enter_phase(run, span, log)
            key = run.phase_keys[span.index]
            batch = batches.next(key)
            for updater in run.updaters.values():
                if updater is not None:
                    updater.set_step(pos.step, span.phase.lr_scale)
            do_g, do_d = span.updates(pos.step)
            losses.add(train_step(run, batch, span, do_g, do_d))

            pos.step += 1
            pos.batch += 1
            if pos.batch == run.steps_per_epoch[key]:
                pos.epoch, pos.batch = pos.epoch + 1, 0
                batches.epoch_done()

            phase_end = pos.step == span.end
            val_due = pos.step % cfg.validation.every == 0 or phase_end
            log_due = pos.step % cfg.run.log_every == 0 or phase_end
            if log_due or val_due or pos.step % cfg.checkpoint.every == 0:
                check_losses(run, losses, span, log)  # before anything is logged or saved
            if log_due:
                log_losses(run, losses, span, log)
            else:
                log.progress(pos.step)
            meter.step_done(len(batch) * env.world_size)
            stopping = ddp.any_rank(env, stop.requested) if (
                not env.distributed or pos.step % cfg.run.log_every == 0 or phase_end) else False
            if val_due or stopping or pos.step % cfg.checkpoint.every == 0:
                meter.pause()
                save(run, also_best=validate(run, span, log) if val_due else False)
                meter.resume()
            if stopping:
                log.plot_losses()
                log.message(f"mrisr: stopped at step {pos.step}; checkpoint saved "
                            f"(continue with: mrisr train --resume {run.run_dir})")
                raise KeyboardInterrupt
        log.plot_losses()
    finish(run, meter)
    return run.run_dir


# ------------------------------------------------------------------------------------------ the step
def train_step(run: Run, batch: Any, span: PhaseSpan, do_g: bool, do_d: bool) -> dict[str, Tensor]:
    """One batch: the D update and/or the G update (as ``span.updates`` says). Returns detached
    losses (no host sync)."""
    nets, objective = run.nets, run.objectives[span.index]
    with run.autocast():
        if do_g:
            sr = nets.g(batch.lr)
        else:
            with torch.no_grad():
                sr = nets.g_plain(batch.lr)
    out: dict[str, Tensor] = {}
    if do_d:
        out.update(discriminator_step(run, batch.hr, sr, objective, span.phase.gp_weight))
    if do_g:
        out.update(generator_step(run, sr, batch.hr, objective))
    return {k: v.detach().float() for k, v in out.items()}


def discriminator_step(run: Run, real: Tensor, fake: Tensor, objective: Objective,
                       gp_weight: float) -> dict[str, Tensor]:
    """Update D on real HR ``(N, 1, ...)`` and generated ``fake`` (detached); its losses (``d_*``)."""
    nets, opt = run.nets, run.opt_d
    assert nets.d is not None and opt is not None and objective.adversarial is not None
    with run.autocast():
        losses = discriminator_losses(nets.d, real, fake, objective.adversarial, gp_weight,
                                      penalty_critic=nets.d_plain)
    norm = opt.update(losses["d_total"])
    if norm is not None:
        losses["d_grad_norm"] = norm
    return losses


def generator_step(run: Run, sr: Tensor, hr: Tensor, objective: Objective) -> dict[str, Tensor]:
    """Update G from its output ``sr`` against ``hr`` (D frozen), then the EMA; its losses (``g_*``)."""
    nets, cfg = run.nets, run.cfg
    with run.autocast(), (frozen(nets.d_plain) if nets.d_plain is not None else contextlib.nullcontext()):
        losses = generator_losses(sr.float() if run.amp is not None else sr, hr, objective.terms, nets.d_plain,
                                  objective.adversarial)
    norm = run.opt_g.update(losses["g_total"])
    if norm is not None:
        losses["g_grad_norm"] = norm
    if nets.ema is not None:
        nets.ema.update(nets.g_plain, cfg.ema.decay if run.pos.step >= cfg.ema.start_step else 0.0)
    return losses


# ------------------------------------------------------------------------------------------ phases and data
def enter_phase(run: Run, span: PhaseSpan, log: RunLog) -> None:
    """Train/eval modes of the phase's networks; a phase on other data starts a new epoch of it."""
    run.nets.g_plain.train(span.trains("generator"))
    if run.nets.d_plain is not None:
        run.nets.d_plain.train(span.trains("discriminator"))
    pos, key = run.pos, run.phase_keys[span.index]
    if pos.data and pos.data != key and pos.batch > 0:
        pos.epoch, pos.batch = pos.epoch + 1, 0
    pos.data = key
    log.message(f"phase {span.index + 1}/{len(run.schedule)} '{span.phase.name}': steps "
                f"{span.start}-{span.end - 1}, trains {'+'.join(span.phase.train)}, ratio G:D {span.phase.ratio}")


class Batches:
    """This rank's training batches of the data in force, from ``run.pos`` on (one loader per data
    section, built when first needed; workers persist across epochs)."""

    def __init__(self, run: Run):
        self.run = run
        self.loaders: dict[str, TrainLoader] = {}
        self.it: Iterator[Any] | None = None
        self.key = ""

    def next(self, key: str) -> Any:
        """The next batch of data section ``key``, on the run's device."""
        run = self.run
        if self.it is None or self.key != key:
            if key not in self.loaders:
                self.loaders[key] = TrainLoader(run.train_sets[key], run.datas[key], run.env, run.cfg.run.seed)
            self.it = self.loaders[key].epoch(run.pos.epoch, run.pos.batch)
            self.key = key
        return next(self.it).to(run.env.device, non_blocking=True)

    def epoch_done(self) -> None:
        self.it = None


# ------------------------------------------------------------------------------------------ losses, divergence
class TrainingDiverged(MrisrError):
    """A loss or a weight became NaN/Inf: the run stops without writing a checkpoint of broken weights."""


class LossSums:
    """Losses summed on the device since the last log row (no host sync until :meth:`means`)."""

    def __init__(self) -> None:
        self.sums: dict[str, Tensor] = {}
        self.counts: dict[str, int] = {}

    def add(self, losses: dict[str, Tensor]) -> None:
        for k, v in losses.items():
            self.sums[k] = self.sums[k] + v if k in self.sums else v
            self.counts[k] = self.counts.get(k, 0) + 1

    def means(self) -> dict[str, float]:
        """The means (one host sync), and start over."""
        values = {k: float(v) / self.counts[k] for k, v in self.sums.items()}
        self.sums, self.counts = {}, {}
        return values


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


def check_losses(run: Run, losses: LossSums, span: PhaseSpan, log: RunLog) -> None:
    """Stop every rank together when any rank's accumulated losses are NaN/Inf (logged first)."""
    pos = run.pos
    bad = nonfinite_losses(losses.sums)
    if ddp.any_rank(run.env, bool(bad)):
        if bad:
            log.scalars(pos.step, pos.epoch_float(run.steps_per_epoch[pos.data]), span.phase.name, "train",
                        {k: float(losses.sums[k]) for k in bad})
        raise TrainingDiverged(diverged_message(f"loss {', '.join(bad) or 'on another rank'}", pos.step,
                                                span.phase.name, run.run_dir, run.cfg))


def log_losses(run: Run, losses: LossSums, span: PhaseSpan, log: RunLog) -> None:
    """One row per loss mean (and the learning rates) in metrics.csv / TensorBoard; the bar's postfix."""
    pos = run.pos
    values = losses.means()
    values["lr_g"] = run.opt_g.lr
    if run.opt_d is not None:
        values["lr_d"] = run.opt_d.lr
    log.scalars(pos.step, pos.epoch_float(run.steps_per_epoch[pos.data]), span.phase.name, "train", values)
    log.progress(pos.step, {"phase": span.phase.name, **{k: f"{v:.3g}" for k, v in values.items() if k.endswith("total")}})


# ------------------------------------------------------------------------------------------ validate, save, finish
def validate(run: Run, span: PhaseSpan, log: RunLog) -> bool:
    """Score the (EMA) generator on rank 0, log it and the sample grid; whether it is the best so far
    (the same answer on every rank)."""
    cfg, pos, env = run.cfg, run.pos, run.env
    is_best = False
    if env.is_main:
        key = run.phase_keys[span.index]
        ema = run.nets.ema
        model = ema.shadow if ema is not None and pos.step > cfg.ema.start_step else run.nets.g_plain
        with rng_fork(env.device):
            result = run.validators[key](model, run.amp)
        flat = result.flat()
        run.last_scores = {k: v for k, v in flat.items() if k.startswith("model.")}
        log.scalars(pos.step, pos.epoch_float(run.steps_per_epoch[key]), span.phase.name, "val", flat)
        name = cfg.validation.metric
        if run.best.data != key:  # a new validation set: scores are not comparable with the old best
            run.best = Best(name, data=key)
        value = result.scores["model"][name]
        if is_better(name, value, run.best.value):
            run.best = Best(name, value, pos.step, key)
            is_best = True
        base = "  ".join(f"{m} {result.scores[m][name]:.4f}" for m in cfg.validation.baselines)
        log.message(f"step {pos.step}: val {name} model {value:.4f}  {base}{'  (best)' if is_best else ''}")
        if result.grid:
            samples = run.run_dir / "samples"
            samples.mkdir(exist_ok=True)
            png = sample_grid(result.grid, samples / f"val_step{pos.step:08d}.png",
                              cfg.validation.baselines[0] if cfg.validation.baselines else "LR")
            log.figure("val/samples", png, pos.step)
        log.plot_losses(min_interval_s=PLOT_INTERVAL_S)
    return bool(ddp.broadcast_object(env, is_best))


def save(run: Run, also_best: bool) -> None:
    """Checkpoint ``last`` (and ``best``); never over a good checkpoint with NaN/Inf weights. Every rank
    checks the weights (DDP keeps them identical), so all stop together."""
    nets = run.nets
    for role, module in (("generator", nets.g_plain), ("discriminator", nets.d_plain),
                         ("generator EMA", nets.ema.shadow if nets.ema is not None else None)):
        bad = nonfinite_weights(module)
        if bad:
            raise TrainingDiverged(diverged_message(f"{role} weight {bad[0]}", run.pos.step,
                                                    run.schedule.at(run.pos.step - 1).phase.name, run.run_dir,
                                                    run.cfg))
    rng = ddp.all_gather_object(run.env, ckpt.capture_rng())
    if run.env.is_main:
        ckpt.save_checkpoint(run.run_dir, network_records(run), trainer_state(run, rng), also_best=also_best)


def finish(run: Run, meter: Throughput) -> None:
    """``summary.json`` and the closing line (rank 0)."""
    if not run.env.is_main:
        return
    cfg, best, total = run.cfg, run.best, run.schedule.total_steps
    elapsed = time.perf_counter() - run.t_start
    summary = {"run_dir": str(run.run_dir), "steps": total, "best": dataclasses.asdict(best),
               "final_validation": run.last_scores, "seconds": round(elapsed, 2),
               "training_throughput": meter.summary()}
    atomic_write_text(run.run_dir / "summary.json", json.dumps(summary, indent=2) + "\n", force=True)
    direction = "higher" if METRICS[cfg.validation.metric].higher_is_better else "lower"
    print(f"mrisr: finished {total} steps in {elapsed:.1f} s; best val {cfg.validation.metric} "
          f"({direction} is better) {best.value} at step {best.step}; run folder {run.run_dir}")


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
