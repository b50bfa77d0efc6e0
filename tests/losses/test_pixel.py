import pytest
import torch
from torch.nn import functional as F

from mrisr.losses import PIXEL_LOSSES, bce_content, charbonnier, kspace_loss, l1, mse, smooth_l1, ssim_loss


@pytest.fixture
def pair():
    g = torch.Generator().manual_seed(0)
    return torch.rand(2, 1, 16, 12, generator=g), torch.rand(2, 1, 16, 12, generator=g)


def test_simple_losses_by_hand():
    p = torch.tensor([[[[0.0, 1.0], [0.5, 0.2]]]])
    t = torch.tensor([[[[0.0, 0.0], [0.5, 0.4]]]])
    assert l1(p, t).item() == pytest.approx((1.0 + 0.2) / 4)
    assert mse(p, t).item() == pytest.approx((1.0 + 0.04) / 4)
    # smooth L1 with beta 0.5: |d|=1 -> 1 - 0.25; |d|=0.2 -> 0.5 * 0.04 / 0.5
    assert smooth_l1(p, t, beta=0.5).item() == pytest.approx((0.75 + 0.04) / 4)
    eps = 1e-3
    expect = (2 * eps + (1 + eps**2) ** 0.5 + (0.04 + eps**2) ** 0.5) / 4
    assert charbonnier(p, t, eps=eps).item() == pytest.approx(expect, rel=1e-6)


def test_bce_content_is_bce_with_logits(pair):
    p, t = pair
    assert torch.allclose(bce_content(p, t), F.binary_cross_entropy_with_logits(p, t))
    # a target in [-1, 1] is mapped to [0, 1]
    assert torch.allclose(bce_content(p, 2 * t - 1, target_range=(-1.0, 1.0)), bce_content(p, t), atol=1e-6)


def test_ssim_loss(pair):
    from mrisr.metrics import ssim

    p, t = pair
    assert ssim_loss(t, t).item() == pytest.approx(0.0, abs=1e-6)
    assert torch.allclose(ssim_loss(p, t, gaussian=False), 1 - ssim(p, t, data_range=1.0).mean())
    p3, t3 = torch.rand(1, 1, 12, 12, 12), torch.rand(1, 1, 12, 12, 12)
    assert 0 < ssim_loss(p3, t3).item() < 2


def test_kspace_loss(pair):
    p, t = pair
    assert kspace_loss(t, t).item() == 0.0
    # Parseval: with the orthonormal FFT the spectral MSE equals the pixel MSE
    assert kspace_loss(p, t, kind="mse").item() == pytest.approx(mse(p, t).item(), rel=1e-5)
    assert kspace_loss(p, t, log_magnitude=True).item() > 0
    with pytest.raises(ValueError):
        kspace_loss(p, t, kind="l3")


@pytest.mark.parametrize("name", sorted(PIXEL_LOSSES))
def test_every_loss_is_differentiable_and_zero_at_target(name, pair):
    p, t = pair
    p = p.clone().requires_grad_(True)
    fn = PIXEL_LOSSES[name]
    loss = fn(p, t)
    loss.backward()
    assert torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0
    if name != "bce_content":  # BCE is minimal at the target but not zero
        assert fn(t, t).item() == pytest.approx(0.0, abs=2e-3)  # charbonnier: eps
