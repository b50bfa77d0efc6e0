"""Low-resolution simulators (k-space, resampling, blocks, slice profile, noise) and baseline upsamplers.

Tensor-level operations live in :mod:`~mrisr.degrade.kspace` and :mod:`~mrisr.degrade.resample`;
:mod:`~mrisr.degrade.chain` builds Volume-level degradations from a short spec string or a dict, and
:mod:`~mrisr.degrade.baselines` holds the interpolation baselines every model is compared with.
"""
