import numpy as np
import pytest
import torch

from mrisr.degrade.blocks import block_downsample
from mrisr.degrade.chain import build_degradation
from mrisr.io.volume import Volume

# x[i, j] = 10 * i + j: the value names its own position.
X = torch.tensor([[10 * i + j for j in range(6)] for i in range(6)], dtype=torch.float32)


def test_block_2x2_coarse_by_hand():
    # lower-left of block (i 0-1, j 0-1) is x[0, 1] (offset 0 on axis 0, scale-1 on axis 1)
    expected = torch.tensor([[1, 3, 5], [21, 23, 25], [41, 43, 45]], dtype=torch.float32)
    torch.testing.assert_close(block_downsample(X, 2, [0, 1]), expected)


def test_block_3x3_original_grid_by_hand():
    expected = torch.tensor(
        [
            [2, 2, 2, 5, 5, 5],
            [2, 2, 2, 5, 5, 5],
            [2, 2, 2, 5, 5, 5],
            [32, 32, 32, 35, 35, 35],
            [32, 32, 32, 35, 35, 35],
            [32, 32, 32, 35, 35, 35],
        ],
        dtype=torch.float32,
    )
    torch.testing.assert_close(block_downsample(X, 3, [0, 1], grid="original"), expected)


def test_block_degradation_on_volume_and_array():
    vol = Volume(X.numpy(), np.eye(4))
    coarse = build_degradation("block:scale=2")(vol, seed=0)
    np.testing.assert_array_equal(coarse.data, [[1, 3, 5], [21, 23, 25], [41, 43, 45]])
    np.testing.assert_allclose(coarse.spacing, (2.0, 2.0))
    same = build_degradation("block:scale=2,grid=original")(vol, seed=0)
    assert same.shape == (6, 6)
    np.testing.assert_array_equal(same.affine, vol.affine)
    arr, params = build_degradation("block:scale=2").apply_array(X.numpy(), np.random.default_rng(0))
    np.testing.assert_array_equal(arr, coarse.data)
    assert params["steps"][0]["grid"] == "coarse"


def test_block_rejects_indivisible_and_unknown_grid():
    with pytest.raises(ValueError, match="divisible"):
        block_downsample(X[:5], 2, [0, 1])
    with pytest.raises(ValueError, match="grid"):
        block_downsample(X, 2, [0, 1], grid="fine")


def test_block_original_grid_partial_last_block():
    # 5 is not a multiple of 3: the last block (index 3-4) keeps its own lower-left pixel, the offset
    # 2 along dim 1 clamped to the last pixel 4 (the study's 256-px slices with s = 3 need this)
    x = X[:5, :5]
    out = block_downsample(x, 3, [0, 1], grid="original")
    expected = torch.tensor([[2, 2, 2, 4, 4]] * 3 + [[32, 32, 32, 34, 34]] * 2, dtype=torch.float32)
    torch.testing.assert_close(out, expected)
    # sizes that are multiples agree with the full-block rule on the common part
    torch.testing.assert_close(block_downsample(X, 3, [0, 1], grid="original")[:3, :3], out[:3, :3])
    arr, _ = build_degradation("block:scale=3,grid=original").apply_array(
        np.zeros((256, 170), np.float32), np.random.default_rng(0))
    assert arr.shape == (256, 170)
