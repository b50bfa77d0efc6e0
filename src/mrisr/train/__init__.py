"""Training: typed config, phase schedule, GAN step, checkpoints, distributed runs (``mrisr train``).

Library code imports the pieces directly: :func:`mrisr.train.loop.train` runs a config (the loop reads
top to bottom), :mod:`mrisr.train.run` builds and restores what a run holds, :mod:`mrisr.train.config`
holds the dataclasses, :mod:`mrisr.train.gan` the step functions.
"""
