"""Adversarial losses: vanilla (non-saturating), LSGAN, hinge, WGAN (+ gradient penalty), relativistic average.

``real_out``/``fake_out`` are raw discriminator outputs (logits/scores, any shape; patch maps are fine).
The discriminator loss is minimised by the discriminator, the generator loss by the generator.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

ADVERSARIAL_KINDS = ("vanilla", "lsgan", "hinge", "wgan", "relativistic")


def _bce(logits: torch.Tensor, value: float) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, value))


def _check(kind: str) -> None:
    if kind not in ADVERSARIAL_KINDS:
        raise ValueError(f"unknown adversarial loss {kind!r}; choose from {', '.join(ADVERSARIAL_KINDS)}")


def discriminator_loss(kind: str, real_out: torch.Tensor, fake_out: torch.Tensor) -> torch.Tensor:
    """Loss of the discriminator/critic given its outputs on real and (detached) generated images.

    * vanilla: ``BCE(D(real), 1) + BCE(D(fake), 0)``
    * lsgan: ``0.5 * (mean((D(real) - 1)^2) + mean(D(fake)^2))``
    * hinge: ``mean(relu(1 - D(real))) + mean(relu(1 + D(fake)))``
    * wgan: ``mean(D(fake)) - mean(D(real))`` (add :func:`gradient_penalty` times lambda for WGAN-GP)
    * relativistic (average, ESRGAN): ``0.5 * (BCE(D(real) - mean D(fake), 1) + BCE(D(fake) - mean D(real), 0))``
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
    return 0.5 * (_bce(real_out - fake_out.mean(), 1.0) + _bce(fake_out - real_out.mean(), 0.0))


def generator_adversarial_loss(kind: str, real_out: torch.Tensor | None, fake_out: torch.Tensor) -> torch.Tensor:
    """Adversarial loss of the generator given the discriminator's outputs (``real_out`` is only used by
    the relativistic loss and is detached there, so no gradient reaches the discriminator through it).

    * vanilla: non-saturating ``BCE(D(fake), 1)``
    * lsgan: ``0.5 * mean((D(fake) - 1)^2)``
    * hinge, wgan: ``-mean(D(fake))``
    * relativistic: ``0.5 * (BCE(D(real) - mean D(fake), 0) + BCE(D(fake) - mean D(real), 1))``
    """
    _check(kind)
    if kind == "vanilla":
        return _bce(fake_out, 1.0)
    if kind == "lsgan":
        return 0.5 * ((fake_out - 1.0) ** 2).mean()
    if kind in ("hinge", "wgan"):
        return -fake_out.mean()
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
