"""The two halves of a training step as named functions: tensors in, a dict of losses out.

Nothing here knows about optimisers, phases or devices: :mod:`mrisr.train.loop` calls
:func:`discriminator_losses` and :func:`generator_losses`, then :func:`apply_update` with the
``*_total`` entry. The adversarial objective is passed in as functions
(:class:`mrisr.losses.adversarial.Adversarial`), so one step serves vanilla, LSGAN, hinge, WGAN(-GP),
relativistic and smooth-L1 GANs alike.

Shapes: ``real``/``hr`` and ``fake``/``sr`` are ``(N, 1, H, W)`` or ``(N, 1, D, H, W)``, intensities
~[0, 1]; discriminator outputs are whatever the critic returns (logits or scores, any shape).
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from mrisr.losses.adversarial import Adversarial

PixelLoss = Callable[[Tensor, Tensor], Tensor]
"""``(sr, hr) -> scalar`` loss."""


@dataclass(frozen=True)
class LossTerm:
    """One weighted term of the generator objective; ``fn`` is ``None`` for the adversarial term."""

    name: str
    weight: float
    fn: PixelLoss | None


def discriminator_losses(critic: nn.Module, real: Tensor, fake: Tensor, adversarial: Adversarial,
                         gp_weight: float = 0.0, penalty_critic: nn.Module | None = None) -> dict[str, Tensor]:
    """Discriminator objective on one batch. ``fake`` is detached here (G gets no gradient).

    ``penalty_critic`` is the critic the gradient penalty differentiates through (the unwrapped module
    when ``critic`` is a DistributedDataParallel wrapper, whose reducer does not support
    ``autograd.grad``); defaults to ``critic``.

    Returns ``d_adv``, ``d_gp`` (when weighted), ``d_total`` (to minimise) and, for monitoring,
    ``d_real``/``d_fake`` (mean scores, detached).
    """
    fake = fake.detach()
    real_out = critic(real)
    fake_out = critic(fake)
    losses = {"d_adv": adversarial.d_loss(real_out, fake_out)}
    total = losses["d_adv"]
    if gp_weight > 0:
        if adversarial.penalty is None:
            raise ValueError(f"gp_weight > 0 but the {adversarial.kind!r} objective has no penalty")
        with _autocast_off(real):
            gp = adversarial.penalty(penalty_critic or critic, real.float(), fake.float())
        losses["d_gp"] = gp
        total = total + gp_weight * gp
    losses["d_total"] = total
    losses["d_real"] = real_out.detach().float().mean()
    losses["d_fake"] = fake_out.detach().float().mean()
    return losses


def generator_losses(sr: Tensor, hr: Tensor, terms: Sequence[LossTerm], critic: nn.Module | None = None,
                     adversarial: Adversarial | None = None) -> dict[str, Tensor]:
    """Generator objective: ``sum(weight * term(sr, hr))``; the ``adversarial`` term scores ``sr`` with
    ``critic`` (whose parameters the caller freezes). Returns ``g_<name>`` per term and ``g_total``."""
    losses: dict[str, Tensor] = {}
    total: Tensor | None = None
    for term in terms:
        if term.fn is None:
            if critic is None or adversarial is None:
                raise ValueError("an adversarial loss term needs a critic and an adversarial objective")
            fake_out = critic(sr)
            real_out = critic(hr).detach() if adversarial.g_needs_real else None
            value = adversarial.g_loss(real_out, fake_out)
        else:
            value = term.fn(sr, hr)
        losses[f"g_{term.name}"] = value
        weighted = value if term.weight == 1.0 else term.weight * value
        total = weighted if total is None else total + weighted
    if total is None:
        raise ValueError("the generator objective has no terms")
    losses["g_total"] = total
    return losses


def apply_update(loss: Tensor, optimizer: torch.optim.Optimizer, params: Sequence[nn.Parameter],
                 grad_clip: float | None = None,
                 scaler: torch.amp.GradScaler | None = None) -> Tensor | None:
    """Backward ``loss`` into fresh gradients, clip their global L2 norm, step. Returns the pre-clip
    norm when clipping (a tensor; no host sync), else ``None``."""
    optimizer.zero_grad(set_to_none=True)
    norm = None
    if scaler is not None:
        scaler.scale(loss).backward()
        if grad_clip is not None:
            scaler.unscale_(optimizer)
            norm = nn.utils.clip_grad_norm_(params, grad_clip)
        scaler.step(optimizer)
        scaler.update()
    else:
        loss.backward()
        if grad_clip is not None:
            norm = nn.utils.clip_grad_norm_(params, grad_clip)
        optimizer.step()
    return norm


@contextlib.contextmanager
def frozen(module: nn.Module) -> Iterator[None]:
    """Parameters of ``module`` do not collect gradients inside the block (D during the G update)."""
    params = [p for p in module.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


@contextlib.contextmanager
def _autocast_off(like: Tensor) -> Iterator[None]:
    """The gradient penalty's double backward runs in fp32 even inside mixed precision."""
    if like.device.type == "cuda":
        with torch.autocast("cuda", enabled=False):
            yield
    else:
        yield


class EMA:
    """Exponential moving average of a network's weights (buffers copied as they are).

    ``shadow`` is an independent copy in eval mode; ``update(model, decay)`` blends
    ``shadow = decay * shadow + (1 - decay) * model``.
    """

    def __init__(self, model: nn.Module):
        self.shadow = copy.deepcopy(model).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module, decay: float) -> None:
        ema_p: list[Tensor] = list(self.shadow.parameters())
        src_p: list[Tensor] = list(model.parameters())
        if decay <= 0.0:
            torch._foreach_copy_(ema_p, [p.detach() for p in src_p])
        else:
            torch._foreach_lerp_(ema_p, [p.detach() for p in src_p], 1.0 - decay)
        for b_ema, b in zip(self.shadow.buffers(), model.buffers(), strict=True):
            b_ema.copy_(b)

    def state_dict(self) -> dict[str, Tensor]:
        return self.shadow.state_dict()

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        self.shadow.load_state_dict(state)

