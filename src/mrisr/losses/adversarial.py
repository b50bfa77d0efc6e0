"""Adversarial objectives: vanilla (non-saturating), LSGAN, hinge, WGAN (+ gradient penalty), relativistic
average and smooth-L1 (the pediatric study's).

``real_out``/``fake_out`` are raw discriminator outputs (logits/scores, any shape; patch maps are fine).
The discriminator loss is minimised by the discriminator, the generator loss by the generator.
:func:`build_adversarial` packs one kind as the pair of functions the training step takes
(:class:`Adversarial`), so one step serves every kind.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

ADVERSARIAL_KINDS = ("vanilla", "lsgan", "hinge", "wgan", "relativistic", "smooth_l1")


@dataclass(frozen=True)
class Adversarial:
    """An adversarial objective as two functions of discriminator outputs.

    ``d_loss(real_out, fake_out)`` is minimised by the discriminator; ``g_loss(real_out, fake_out)`` by
    the generator (``real_out`` is ``None`` unless ``g_needs_real``: only relativistic GANs compare the
    fake against the real scores in the generator's loss). ``penalty(critic, real, fake)`` is the
    gradient penalty (WGAN-GP), weighted by the phase's ``gp_weight``.
    """

    kind: str
    d_loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    g_loss: Callable[[torch.Tensor | None, torch.Tensor], torch.Tensor]
    penalty: Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor] | None = None
    g_needs_real: bool = False


def build_adversarial(kind: str) -> Adversarial:
    """The objective ``kind`` (one of :data:`ADVERSARIAL_KINDS`) with the WGAN-GP penalty available."""
    _check(kind)
    return Adversarial(kind=kind, d_loss=functools.partial(discriminator_loss, kind),
                       g_loss=functools.partial(generator_adversarial_loss, kind), penalty=gradient_penalty,
                       g_needs_real=kind == "relativistic")


def _bce(logits: torch.Tensor, value: float) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, value))


def _check(kind: str) -> None:
    if kind not in ADVERSARIAL_KINDS:
        raise ValueError(f"unknown adversarial loss {kind!r}; choose from {', '.join(ADVERSARIAL_KINDS)}")


def smooth_l1_d_loss(real_out: torch.Tensor, fake_out: torch.Tensor) -> torch.Tensor:
    """Smooth-L1 objective of the pediatric study, discriminator side: the discriminator's probabilities
    (sigmoid of its logits, in [0, 1]) against the labels 1 (real) and 0 (generated)."""
    p_real, p_fake = torch.sigmoid(real_out.float()), torch.sigmoid(fake_out.float())
    return F.smooth_l1_loss(p_real, torch.ones_like(p_real)) + F.smooth_l1_loss(p_fake, torch.zeros_like(p_fake))


def smooth_l1_g_loss(real_out: torch.Tensor | None, fake_out: torch.Tensor) -> torch.Tensor:
    """Generator side of :func:`smooth_l1_d_loss`: the probability of the generated image against 1."""
    p_fake = torch.sigmoid(fake_out.float())
    return F.smooth_l1_loss(p_fake, torch.ones_like(p_fake))


def discriminator_loss(kind: str, real_out: torch.Tensor, fake_out: torch.Tensor) -> torch.Tensor:
    """Loss of the discriminator/critic given its outputs on real and (detached) generated images.

    * vanilla: ``BCE(D(real), 1) + BCE(D(fake), 0)``
    * lsgan: ``0.5 * (mean((D(real) - 1)^2) + mean(D(fake)^2))``
    * hinge: ``mean(relu(1 - D(real))) + mean(relu(1 + D(fake)))``
    * wgan: ``mean(D(fake)) - mean(D(real))`` (add :func:`gradient_penalty` times lambda for WGAN-GP)
    * relativistic (average, ESRGAN): ``0.5 * (BCE(D(real) - mean D(fake), 1) + BCE(D(fake) - mean D(real), 0))``
    * smooth_l1: :func:`smooth_l1_d_loss`
    """
    _check(kind)
    if kind == "vanilla":
        return _bce(real_out, 1.0) + _bce(fake_out, 0.0)
    if kind == "lsgan":
        return 0.5 * (((real_out - 1.0) ** 2).mean() + (fake_out ** 2).mean())
    if kind == "hinge":
        return F.relu(1.0 - real_out).mean() + F.relu(1.0 + fake_out).mean()
    if kind == "wgan":
        return fake_out.mean() - real_out.mean()
    if kind == "smooth_l1":
        return smooth_l1_d_loss(real_out, fake_out)
    return 0.5 * (_bce(real_out - fake_out.mean(), 1.0) + _bce(fake_out - real_out.mean(), 0.0))


def generator_adversarial_loss(kind: str, real_out: torch.Tensor | None, fake_out: torch.Tensor) -> torch.Tensor:
    """Adversarial loss of the generator given the discriminator's outputs (``real_out`` is only used by
    the relativistic loss and is detached there, so no gradient reaches the discriminator through it).

    * vanilla: non-saturating ``BCE(D(fake), 1)``
    * lsgan: ``0.5 * mean((D(fake) - 1)^2)``
    * hinge, wgan: ``-mean(D(fake))``
    * relativistic: ``0.5 * (BCE(D(real) - mean D(fake), 0) + BCE(D(fake) - mean D(real), 1))``
    * smooth_l1: :func:`smooth_l1_g_loss`
    """
    _check(kind)
    if kind == "vanilla":
        return _bce(fake_out, 1.0)
    if kind == "lsgan":
        return 0.5 * ((fake_out - 1.0) ** 2).mean()
    if kind in ("hinge", "wgan"):
        return -fake_out.mean()
    if kind == "smooth_l1":
        return smooth_l1_g_loss(real_out, fake_out)
    if real_out is None:
        raise ValueError("the relativistic generator loss needs the discriminator's output on real images")
    real_out = real_out.detach()
    return 0.5 * (_bce(real_out - fake_out.mean(), 0.0) + _bce(fake_out - real_out.mean(), 1.0))


def gradient_penalty(critic: nn.Module, real: torch.Tensor, fake: torch.Tensor,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """WGAN-GP penalty ``mean((||grad D(x_hat)||_2 - 1)^2)`` at random interpolates of real and fake
    (Gulrajani et al. 2017); multiply by lambda (10) and add to the critic loss. Differentiable w.r.t. the
    critic's parameters (``create_graph``). ``fake`` is detached."""
    n = real.shape[0]
    eps_device = generator.device if generator is not None else real.device
    eps = torch.rand((n,) + (1,) * (real.ndim - 1), generator=generator, device=eps_device, dtype=real.dtype)
    eps = eps.to(real.device)
    x_hat = (eps * real.detach() + (1.0 - eps) * fake.detach()).requires_grad_(True)
    out = critic(x_hat)
    (grad,) = torch.autograd.grad(out.sum(), x_hat, create_graph=True)
    norms = grad.flatten(1).norm(2, dim=1)
    return ((norms - 1.0) ** 2).mean()
