import pytest
import torch

from mrisr.models.layers import PixelShuffleND, _stage_factors, factor_steps, norm


def test_pixel_shuffle_nd_equals_torch_in_2d():
    x = torch.randn(2, 3 * 9, 4, 5)
    assert torch.equal(PixelShuffleND((3, 3))(x), torch.nn.PixelShuffle(3)(x))


def test_pixel_shuffle_nd_3d_anisotropic_by_hand():
    f = (1, 2, 3)
    x = torch.randn(1, 2 * 6, 2, 3, 4)
    y = PixelShuffleND(f)(x)
    assert y.shape == (1, 2, 2, 6, 12)
    # channel c * 6 + i * 3 + j (i over the 2nd, j over the 3rd factor) lands at (d, h * 2 + i, w * 3 + j)
    for c in range(2):
        for i in range(2):
            for j in range(3):
                assert torch.equal(y[0, c, :, i::2, j::3], x[0, c * 6 + i * 3 + j])


def test_factor_steps_and_stages():
    assert factor_steps(1) == [] and factor_steps(4) == [2, 2] and factor_steps(3) == [3] and factor_steps(6) == [2, 3]
    assert _stage_factors((4, 4)) == [(2, 2), (2, 2)]
    assert _stage_factors((1, 1, 3)) == [(1, 1, 3)]
    assert _stage_factors((2, 2, 4)) == [(2, 2, 2), (1, 1, 2)]
    with pytest.raises(ValueError):
        factor_steps(0)


def test_layer_norm_is_per_sample():
    ln = norm("layer", 3, 4)
    x = torch.randn(2, 4, 3, 3, 3)
    y1 = ln(x)
    y2 = ln(torch.cat([x[:1], 100 * x[1:]]))
    assert torch.allclose(y1[0], y2[0])  # other samples do not leak in (unlike batch norm)
