"""The self-supervised training loop: L1 on seeded patches, Adam, weight EMA, a step count or a time budget.

The learning rate and the EMA depend on the step index only, so a run stopped by its time budget after ``N``
steps is reproduced exactly (on the same machine and thread count, CPU) by a run with ``steps=N`` and the
same seed: the budget only decides ``N``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from mrisr.errors import ConfigError
from mrisr.losses.pixel import l1
from mrisr.selfsr.pairs import PairSet, PatchSampler

#: Weight EMA decay (as the shipped zoo's training), reached after a warm-up (:func:`ema_decay`).
EMA_DECAY = 0.995


def ema_decay(step: int) -> float:
    """EMA decay after ``step`` (1-based) optimiser steps: ``min(EMA_DECAY, (1 + step) / (10 + step))``, so a short
    run's average is not dominated by its first, untrained weights."""
    return min(EMA_DECAY, (1.0 + step) / (10.0 + step))


class WeightEMA:
    """Exponential moving average of a network's parameters and buffers (float tensors)."""

    def __init__(self, module: nn.Module):
        self.state = {k: v.detach().clone() for k, v in module.state_dict().items()}

    @torch.no_grad()
    def update(self, module: nn.Module, decay: float) -> None:
        for k, v in module.state_dict().items():
            if v.is_floating_point():
                self.state[k].lerp_(v.detach(), 1.0 - decay)
            else:
                self.state[k].copy_(v)


@dataclass(frozen=True)
class FitOptions:
    """Training settings.

    Attributes:
        steps: optimiser steps; ``None``: as many as ``deadline`` allows.
        patch: patch edge (fine voxels).
        batch: patches per step (MNI 4 mm case: 8 x 48^2 at lr 2e-3 reached 29.07 dB in 600 steps, 16 x 48^2
            at 1e-3 28.53 dB in 300 steps, about the same compute).
        lr: Adam's initial learning rate (:func:`learning_rate`); 4e-3 gave 29.40 dB in the same 600 steps.
        seed: seeds the patch sampler and nothing else (the network is initialised before).
        max_steps: a cap on budgeted runs.
    """

    steps: int | None = None
    patch: int = 48
    batch: int = 8
    lr: float = 4e-3
    seed: int = 0
    max_steps: int = 200_000

    def __post_init__(self) -> None:
        if self.steps is not None and self.steps < 0:
            raise ConfigError(f"--steps must be >= 0, got {self.steps}")
        if self.patch < 8 or self.batch < 1 or not self.lr > 0:
            raise ConfigError("patch must be >= 8, batch >= 1 and lr > 0")


#: Steps at the full learning rate; after them it falls as ``sqrt(LR_HOLD / step)`` (:func:`learning_rate`).
LR_HOLD = 500
#: Gradient norm clip (a rare bad batch must not throw a small network off).
GRAD_CLIP = 1.0


def learning_rate(base: float, step: int) -> float:
    """Learning rate of (0-based) ``step``: ``base`` for :data:`LR_HOLD` steps, then ``base * sqrt(LR_HOLD / step)``.

    Depends on the step index only, so a budgeted run is reproduced by ``--steps``. Without the decay, runs of
    2500-3100 steps at a constant 4e-3 ended worse than their start on the MNI 6 mm and 4 mm + gap cases (the
    fitted residual gain fell to 0.17 and 0.00), while 1813 steps at 4 mm had kept gain 1.00.
    """
    return base * min(1.0, (LR_HOLD / max(step, 1)) ** 0.5)


#: Validation patches (drawn with ``seed + 1``) on which the residual gain is fitted.
VALIDATION_PATCHES = 64


@dataclass
class FitResult:
    steps: int
    seconds: float
    stopped_by: str  # "steps" or "budget"
    losses: list[float] = field(default_factory=list)  # mean L1 per 50 steps
    residual_gain: float | None = None  # the factor the learnt correction was scaled by (None: not applied)
    validation: dict[str, float] = field(default_factory=dict)  # MSE of cubic and of the network, before/after


@torch.no_grad()
def fit_residual_gain(module: nn.Module, sets: Sequence[PairSet], patch: int, seed: int,
                      device: torch.device) -> tuple[float | None, dict[str, float]]:
    """Do no harm: scale the network's correction over its input by the gain ``g`` in [0, 1] that minimises the
    squared error on :data:`VALIDATION_PATCHES` patches of ``sets`` drawn with another seed, in place.

    The network's output is ``x + r(x)`` (a residual over the cubic interpolation ``x``); with ``g`` it becomes
    ``x + g r(x)``, done by scaling its last convolution (``module.tail``, weights and bias), so the model
    file holds it. ``g = clip(<r, t - x> / <r, r>, 0, 1)``: a correction that does not help on patches like the
    training ones (a run stopped after a few steps) is shrunk towards cubic interpolation. Returns ``(g, the
    patches' MSE of cubic, of the network before and after)``; ``g`` is ``None`` for a network without a
    ``tail`` convolution (left as it is).
    """
    tail = getattr(module, "tail", None)
    if not isinstance(tail, nn.Conv2d) or tail.bias is None:
        return None, {}
    sampler = PatchSampler(sets, patch, VALIDATION_PATCHES, seed + 1)
    x, t = sampler.next()
    x, t = x.to(device), t.to(device)
    module.eval()
    r = (module(x) - x).double()
    e = (t - x).double()
    rr = float((r * r).sum())
    g = min(1.0, max(0.0, float((r * e).sum()) / rr)) if rr > 0 else 0.0
    tail.weight.mul_(g)
    tail.bias.mul_(g)
    n = float(e.numel())
    stats = {"mse_cubic": float((e * e).sum()) / n, "mse_network": float(((e - r) ** 2).sum()) / n,
             "mse_scaled": float(((e - g * r) ** 2).sum()) / n}
    return g, stats


def fit(module: nn.Module, sets: Sequence[PairSet], opts: FitOptions, device: torch.device,
        deadline: Callable[[], float] | None = None, progress: bool = False) -> FitResult:
    """Train ``module`` in place on patches of ``sets``; the EMA weights are copied into it at the end, and its
    correction scaled by :func:`fit_residual_gain`.

    Args:
        module: 2D network ``(N, 1, P, P) -> (N, 1, P, P)``.
        sets: training pairs.
        opts: see :class:`FitOptions`.
        device: torch device.
        deadline: seconds left for training (called after every step); training stops when it is <= 0.
            Needed when ``opts.steps`` is ``None``.
        progress: a tqdm bar of the steps, or of the remaining budget.
    """
    if opts.steps is None and deadline is None:
        raise ConfigError("give a step count or a time budget")
    sampler = PatchSampler(sets, opts.patch, opts.batch, opts.seed)
    module.to(device).train()
    ema = WeightEMA(module)
    optimiser = torch.optim.Adam(module.parameters(), lr=opts.lr)
    total = opts.steps if opts.steps is not None else opts.max_steps
    bar = None
    if progress:
        from tqdm import tqdm

        if opts.steps is not None:
            bar = tqdm(total=total, unit="step", desc="selfsr train")
        else:
            left0 = max(0.0, deadline()) if deadline is not None else 0.0
            bar = tqdm(total=round(left0), unit="s", desc="selfsr budget",
                       bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.0f}/{total:.0f} s of training{postfix}")
    start = time.monotonic()
    losses: list[float] = []
    acc, n_acc, step, stopped_by = 0.0, 0, 0, "steps"
    while step < total:
        if opts.steps is None and deadline is not None and deadline() <= 0:
            stopped_by = "budget"
            break
        lr_patch, hr_patch = sampler.next()
        lr_patch, hr_patch = lr_patch.to(device), hr_patch.to(device)
        loss = l1(module(lr_patch), hr_patch)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        for group in optimiser.param_groups:
            group["lr"] = learning_rate(opts.lr, step)
        torch.nn.utils.clip_grad_norm_(module.parameters(), GRAD_CLIP)
        optimiser.step()
        step += 1
        ema.update(module, ema_decay(step))
        value = float(loss.detach())
        if not math.isfinite(value):
            raise ConfigError(f"training diverged at step {step} (loss {value}); try a lower learning rate")
        acc, n_acc = acc + value, n_acc + 1
        if n_acc == 50:
            losses.append(acc / n_acc)
            acc, n_acc = 0.0, 0
        if bar is not None:
            if opts.steps is not None:
                bar.update(1)
            else:
                bar.n = min(bar.total, round(time.monotonic() - start))
                left = deadline() if deadline is not None else 0.0
                bar.set_postfix_str(f"{max(0.0, left):.0f} s left to train, step {step}, L1 {value:.4f}")
    if bar is not None:
        bar.close()
    if n_acc:
        losses.append(acc / n_acc)
    if step == 0 and opts.steps is None:
        raise ConfigError("the time budget left no time to train (raise --budget)")
    if step:
        module.load_state_dict(ema.state)
    module.eval()
    gain, stats = fit_residual_gain(module, sets, opts.patch, opts.seed, device)
    return FitResult(step, time.monotonic() - start, stopped_by, losses, gain, stats)
