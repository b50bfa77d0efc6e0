"""Self-supervised through-plane super-resolution for thick-slice scans without high-resolution twins.

SMORE's idea (Zhao et al.), learnt from its papers: the fine in-plane axes of a thick-slice scan show what
the anatomy looks like at fine resolution, so degrade them as the slices were acquired and learn the inverse.

- :mod:`~mrisr.selfsr.acquisition`: the scan's slice spacing, thickness, profile, through-plane axis;
- :mod:`~mrisr.selfsr.simulate`: the slice profile and spacing simulated along a fine axis (any ratio, gaps);
- :mod:`~mrisr.selfsr.pairs`: in-plane training pairs and the seeded patch sampler;
- :mod:`~mrisr.selfsr.fit`: the training loop (steps or a time budget);
- :mod:`~mrisr.selfsr.pipeline`: ``mrisr selfsr`` and ``mrisr train --self-supervised``;
- inference along the through-plane axis lives in :mod:`mrisr.infer.through_plane`.
"""
