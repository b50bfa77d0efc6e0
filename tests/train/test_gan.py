"""The step functions on their own: losses dicts, frozen critic, clipping, EMA; and the checkpoint files."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from mrisr.losses.adversarial import ADVERSARIAL_KINDS, build_adversarial
from mrisr.train.checkpoint import capture_rng, find_checkpoint, restore_rng
from mrisr.train.gan import (
    EMA,
    LossTerm,
    apply_update,
    discriminator_losses,
    frozen,
    generator_losses,
)


def critic() -> nn.Module:
    return nn.Sequential(nn.Conv2d(1, 4, 3, stride=2), nn.LeakyReLU(0.2), nn.Flatten(), nn.LazyLinear(1))


@pytest.mark.parametrize("kind", ADVERSARIAL_KINDS)
def test_one_step_serves_every_adversarial_kind(kind: str) -> None:
    torch.manual_seed(0)
    d = critic()
    real, fake = torch.rand(4, 1, 16, 16), torch.rand(4, 1, 16, 16, requires_grad=True)
    out = discriminator_losses(d, real, fake, build_adversarial(kind))
    assert {"d_adv", "d_total", "d_real", "d_fake"} <= set(out)
    out["d_total"].backward()
    assert fake.grad is None  # the generator gets nothing from the discriminator's step
    with frozen(d):
        g = generator_losses(fake, real, [LossTerm("l1", 1.0, nn.functional.l1_loss), LossTerm("adversarial", 0.1, None)],
                             d, build_adversarial(kind))
    assert set(g) == {"g_l1", "g_adversarial", "g_total"}
    assert torch.allclose(g["g_total"], g["g_l1"] + 0.1 * g["g_adversarial"])
    d.zero_grad()
    with frozen(d):
        g = generator_losses(fake, real, [LossTerm("adversarial", 1.0, None)], d, build_adversarial(kind))
    g["g_total"].backward()
    assert fake.grad is not None and all(p.grad is None or not p.grad.any() for p in d.parameters())
    assert all(p.requires_grad for p in d.parameters())


def test_apply_update_clips_the_global_norm() -> None:
    torch.manual_seed(0)
    net = nn.Linear(8, 1)
    opt = torch.optim.SGD(net.parameters(), lr=1.0)
    before = [p.detach().clone() for p in net.parameters()]
    loss = 1000.0 * net(torch.ones(1, 8)).sum()
    norm = apply_update(loss, opt, list(net.parameters()), grad_clip=0.5)
    assert norm is not None and float(norm) > 0.5
    step = torch.cat([(b - p.detach()).flatten() for b, p in zip(before, net.parameters(), strict=True)])
    assert float(step.norm()) == pytest.approx(0.5, rel=1e-5)  # lr 1 x clipped gradient


def test_ema_blends_weights_and_copies_buffers() -> None:
    net = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    ema = EMA(net)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(1.0)
        net[1].running_mean.fill_(3.0)
    old = [p.clone() for p in ema.shadow.parameters()]
    ema.update(net, decay=0.9)
    for o, e, n in zip(old, ema.shadow.parameters(), net.parameters(), strict=True):
        assert torch.allclose(e, 0.9 * o + 0.1 * n)
    assert torch.equal(ema.shadow[1].running_mean, net[1].running_mean)
    ema.update(net, decay=0.0)  # before ema.start_step: a plain copy
    assert all(torch.equal(e, n) for e, n in zip(ema.shadow.parameters(), net.parameters(), strict=True))
    assert not any(p.requires_grad for p in ema.shadow.parameters())


def test_rng_round_trip() -> None:
    import random

    import numpy as np

    state = capture_rng()
    a = (torch.rand(3), np.random.rand(3), random.random())  # noqa: NPY002
    restore_rng(state)
    b = (torch.rand(3), np.random.rand(3), random.random())  # noqa: NPY002
    assert torch.equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and a[2] == b[2]


def test_a_checkpoint_renamed_aside_by_a_kill_is_recovered(tmp_path: Path) -> None:
    root = tmp_path / "checkpoints"
    (root / ".last.old").mkdir(parents=True)
    (root / ".last.old" / "COMPLETE").write_text("{}")
    (root / "last").mkdir()  # a half-built replacement never gets COMPLETE
    found = find_checkpoint(tmp_path, "last")
    assert found == root / "last" and (found / "COMPLETE").is_file()
    assert find_checkpoint(tmp_path, "best") is None
