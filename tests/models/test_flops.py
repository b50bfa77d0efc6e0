"""The fast network's budget: at most 10% of SRResNet-16's FLOPs per output pixel, at every scale."""

import pytest

from mrisr.models.flops import count_flops, flops_per_output_pixel


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_fast_network_is_under_a_tenth_of_srresnet16(scale):
    ref = flops_per_output_pixel("srresnet", scale, n_blocks=16)
    fast = flops_per_output_pixel("fast", scale)
    assert fast <= 0.10 * ref, f"fast net costs {100 * fast / ref:.1f}% of SRResNet-16 at x{scale}"


def test_flop_count_matches_hand_arithmetic():
    # fast net, x2, 8x8 input, tiny widths: convs 5x5 1->8, 1x1 8->4, 3x3 4->4, 1x1 4->8, 3x3 8->4; 2 FLOPs per MAC
    params, flops = count_flops("fast", (1, 1, 8, 8), scale=2, channels=8, shrink=4, n_layers=1)
    macs_per_pixel = 25 * 8 + 8 * 4 + 9 * 4 * 4 + 4 * 8 + 9 * 8 * 4
    assert flops == 2 * 64 * macs_per_pixel
    assert params > 0


def test_model_file_flops_match_the_architecture_count():
    """The FLOPs read from a model file's metadata are those of the architecture it names."""
    from mrisr.models.flops import flops_per_output_pixel, model_flops_per_output_pixel

    meta = {"arch": "fast", "scale": 2, "args": {"scale": 2, "channels": 8, "shrink": 4, "n_layers": 1}}
    assert model_flops_per_output_pixel(meta) == flops_per_output_pixel("fast", 2, channels=8, shrink=4, n_layers=1)
    assert model_flops_per_output_pixel(meta) < model_flops_per_output_pixel({**meta, "args": {"channels": 16}})
