"""Training: typed config, phase schedule, GAN step, checkpoints, distributed runs (``mrisr train``).

Library code imports the pieces directly: :func:`mrisr.train.loop.train` runs a config,
:mod:`mrisr.train.config` holds the dataclasses, :mod:`mrisr.train.gan` the step functions.
"""
