"""Scan <-> :class:`~mrisr.io.volume.Volume`: readers and writers that keep geometry."""

from mrisr.io.geometry import rescaled_affine, rescaled_shape
from mrisr.io.readers import read_volume, write_volume
from mrisr.io.volume import Volume

__all__ = ["Volume", "read_volume", "rescaled_affine", "rescaled_shape", "write_volume"]
