"""Low-resolution simulators (k-space, resampling, blocks, slice profile, noise) and baseline upsamplers.

Each physics module holds its tensor operation and the degradation step that declares its fields
(:class:`~mrisr.degrade.step.Step`); :mod:`~mrisr.degrade.registry` maps names to steps,
:mod:`~mrisr.degrade.chain` builds Volume-level degradations from a short spec string or a dict, and
:mod:`~mrisr.degrade.baselines` holds the interpolation baselines every model is compared with.
"""
