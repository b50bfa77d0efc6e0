import math

import pytest
import torch
from torch.nn import functional as F

from mrisr.losses import ADVERSARIAL_KINDS, discriminator_loss, generator_adversarial_loss, gradient_penalty


def sp(x):  # softplus: BCE-with-logits against 1 is softplus(-x), against 0 softplus(x)
    return math.log1p(math.exp(x))


def test_values_by_hand():
    real = torch.tensor([2.0, 0.0])
    fake = torch.tensor([-1.0, 1.0])
    vanilla = (sp(-2) + sp(0)) / 2 + (sp(-1) + sp(1)) / 2
    assert discriminator_loss("vanilla", real, fake).item() == pytest.approx(vanilla, rel=1e-6)
    assert discriminator_loss("lsgan", real, fake).item() == pytest.approx(0.5 * ((1 + 1) / 2 + (1 + 1) / 2))
    assert discriminator_loss("hinge", real, fake).item() == pytest.approx((0 + 1) / 2 + (0 + 2) / 2)
    assert discriminator_loss("wgan", real, fake).item() == pytest.approx(0.0 - 1.0)
    # relativistic average: real - mean(fake) = [2, 0], fake - mean(real) = [-2, 0]
    ra = 0.5 * ((sp(-2) + sp(0)) / 2 + (sp(-2) + sp(0)) / 2)
    assert discriminator_loss("relativistic", real, fake).item() == pytest.approx(ra, rel=1e-6)
    assert generator_adversarial_loss("vanilla", real, fake).item() == pytest.approx((sp(1) + sp(-1)) / 2, rel=1e-6)
    assert generator_adversarial_loss("lsgan", None, fake).item() == pytest.approx(0.5 * (4 + 0) / 2)
    assert generator_adversarial_loss("hinge", None, fake).item() == pytest.approx(0.0)
    assert generator_adversarial_loss("wgan", None, fake).item() == pytest.approx(0.0)
    rg = 0.5 * ((sp(2) + sp(0)) / 2 + (sp(2) + sp(0)) / 2)
    assert generator_adversarial_loss("relativistic", real, fake).item() == pytest.approx(rg, rel=1e-6)


@pytest.mark.parametrize("kind", ADVERSARIAL_KINDS)
def test_generator_loss_falls_as_fakes_look_real(kind):
    real = torch.randn(8)
    lo = generator_adversarial_loss(kind, real, torch.full((8,), -0.5))
    hi = generator_adversarial_loss(kind, real, torch.full((8,), 0.5))
    assert hi < lo
    d_lo = discriminator_loss(kind, real + 3, torch.zeros(8) - 3)
    d_hi = discriminator_loss(kind, real - 3, torch.zeros(8) + 3)
    assert d_lo < d_hi


def test_relativistic_generator_loss_sends_no_gradient_to_real_output():
    real = torch.randn(4, requires_grad=True)
    fake = torch.randn(4, requires_grad=True)
    generator_adversarial_loss("relativistic", real, fake).backward()
    assert real.grad is None and fake.grad is not None


def test_unknown_kind():
    with pytest.raises(ValueError, match="unknown adversarial"):
        discriminator_loss("wasserstein", torch.zeros(1), torch.zeros(1))


def test_gradient_penalty_of_a_linear_critic_by_hand():
    lin = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 1, bias=False))
    with torch.no_grad():
        lin[1].weight.fill_(0.5)  # ||w|| = 0.5 * sqrt(12)
    real, fake = torch.rand(4, 1, 3, 4), torch.rand(4, 1, 3, 4)
    gp = gradient_penalty(lin, real, fake, generator=torch.Generator().manual_seed(0))
    assert gp.item() == pytest.approx((0.5 * math.sqrt(12) - 1) ** 2, rel=1e-5)
    gp.backward()  # differentiable w.r.t. the critic (create_graph)
    assert lin[1].weight.grad is not None and lin[1].weight.grad.abs().sum() > 0


def test_gradient_penalty_with_the_3d_critic():
    from mrisr.models import build_model

    critic = build_model("critic3d", channels=4, n_layers=4, fc_channels=8)
    real, fake = torch.rand(2, 1, 8, 8, 8), torch.rand(2, 1, 8, 8, 8)
    gp = gradient_penalty(critic, real, fake)
    assert torch.isfinite(gp) and gp.item() >= 0
    loss = discriminator_loss("wgan", critic(real), critic(fake)) + 10 * gp
    loss.backward()
    assert all(p.grad is not None for p in critic.parameters())
    assert F.relu(torch.tensor(1.0)) == 1.0
