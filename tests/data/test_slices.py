"""The two axis orders (stack: slice axis first; volume: slice axis last) and the one place converting them."""

from __future__ import annotations

import numpy as np
import pytest

from mrisr.data.slices import stack_axes, stack_spacing, to_stack, to_stack_order, to_volume_order


def test_conversions_are_inverse_and_agree_for_arrays_and_values() -> None:
    vol = np.arange(2 * 3 * 4 * 5, dtype=np.float32).reshape(2, 3, 4, 5)  # (C, H, W, S)
    stack = to_stack_order(vol)
    assert stack.shape == (2, 5, 3, 4)
    assert stack[1, 4, 2, 3] == vol[1, 2, 3, 4]
    np.testing.assert_array_equal(to_volume_order(stack), vol)
    assert to_stack_order(vol.shape[1:]) == stack.shape[1:]
    assert to_volume_order(stack.shape[1:]) == vol.shape[1:]
    assert to_stack_order((1, 1, 3)) == (3, 1, 1)  # a through-plane factor moves first


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_to_stack_and_stack_spacing_use_the_same_axes(axis: int) -> None:
    data = np.random.default_rng(0).random((6, 7, 8), dtype=np.float32)
    stack = to_stack(data, axis)[0]
    assert stack.shape == tuple(data.shape[a] for a in stack_axes(axis))
    assert stack_spacing((0.5, 0.7, 2.0), axis) == tuple((0.5, 0.7, 2.0)[a] for a in stack_axes(axis))
    if axis == 2:  # slicing along the volume's last axis: the stack is the volume in stack order
        np.testing.assert_array_equal(stack, to_stack_order(data))
    with pytest.raises(ValueError, match="slice axis"):
        stack_axes(3)
