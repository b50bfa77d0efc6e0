"""Inference: apply trained networks to whole scans (see :mod:`mrisr.infer.volume`)."""

from mrisr.infer.volume import upscale_with_model

__all__ = ["upscale_with_model"]
