"""One network's optimiser with its learning-rate schedule, gradient clipping and grad scaler.

The learning rate is a pure function of the global step (:func:`mrisr.train.schedule.lr_factor`), so a
resumed run needs only the optimiser's and the scaler's states.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from mrisr.train.config import NetworkTrainingConfig, OptimizerConfig
from mrisr.train.gan import apply_update
from mrisr.train.schedule import lr_factor


def build_optimizer(cfg: OptimizerConfig, params: Iterable[torch.nn.Parameter]) -> torch.optim.Optimizer:
    """Adam, AdamW, SGD or RMSprop from the config; ``lr`` is the base rate the schedule multiplies."""
    params = [p for p in params if p.requires_grad]
    if cfg.name == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, betas=cfg.betas, eps=cfg.eps, weight_decay=cfg.weight_decay)
    if cfg.name == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, betas=cfg.betas, eps=cfg.eps, weight_decay=cfg.weight_decay)
    if cfg.name == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay,
                               nesterov=cfg.nesterov)
    if cfg.name == "rmsprop":
        return torch.optim.RMSprop(params, lr=cfg.lr, alpha=cfg.alpha, eps=cfg.eps, momentum=cfg.momentum,
                                   weight_decay=cfg.weight_decay)
    raise ValueError(cfg.name)  # guarded by the config's Literal


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


@dataclass
class Updater:
    """Everything that updates one network: optimiser, base rate x schedule, clipping, fp16 scaler."""

    optimizer: torch.optim.Optimizer
    base_lr: float
    lr_factor: Callable[[int], float]
    grad_clip: float | None = None
    scaler: torch.amp.GradScaler | None = None

    @property
    def lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    def set_step(self, step: int, phase_scale: float) -> None:
        """Learning rate of global ``step`` (0-based) in a phase that scales it by ``phase_scale``."""
        set_lr(self.optimizer, self.base_lr * phase_scale * self.lr_factor(step))

    def update(self, loss: Tensor) -> Tensor | None:
        """Backward, clip, step (see :func:`mrisr.train.gan.apply_update`); the pre-clip norm or None."""
        return apply_update(loss, self.optimizer, self.optimizer.param_groups[0]["params"], self.grad_clip,
                            self.scaler)


def build_updater(cfg: NetworkTrainingConfig, params: Iterable[torch.nn.Parameter], total_steps: int,
                  fp16: bool) -> Updater:
    """The optimiser of one network over a run of ``total_steps`` steps (a grad scaler when ``fp16``)."""
    return Updater(build_optimizer(cfg.optimizer, params), cfg.optimizer.lr, lr_factor(cfg.scheduler, total_steps),
                   cfg.grad_clip, torch.amp.GradScaler("cuda") if fp16 else None)


def updater_states(updaters: dict[str, Updater | None]) -> dict[str, Any]:
    """The checkpoint's ``optimizers`` and ``scalers`` entries (roles without a network left out)."""
    return {"optimizers": {role: u.optimizer.state_dict() for role, u in updaters.items() if u is not None},
            "scalers": {role: u.scaler.state_dict() for role, u in updaters.items()
                        if u is not None and u.scaler is not None}}


def load_updater_states(updaters: dict[str, Updater | None], state: dict[str, Any]) -> None:
    """Inverse of :func:`updater_states` (a scaler missing from the checkpoint keeps its fresh state)."""
    for role, u in updaters.items():
        if u is None:
            continue
        u.optimizer.load_state_dict(state["optimizers"][role])
        if u.scaler is not None and role in state["scalers"]:
            u.scaler.load_state_dict(state["scalers"][role])
