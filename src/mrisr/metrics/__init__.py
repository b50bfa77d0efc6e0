"""Image-quality metrics as pure functions: tensors (:mod:`.image`), volumes (:mod:`.volume`), the one table of
metrics (:mod:`.registry`), aggregation across volumes (:mod:`.aggregate`) and foreground masks (:mod:`.masks`).

Evaluation protocols (cases, degrade -> upscale -> score, result files) live in :mod:`mrisr.evaluate`.
"""

from mrisr.metrics.image import mse, nrmse, psnr, ssim, ssim_map
from mrisr.metrics.registry import METRICS, MetricOptions, MetricSpec, metric

__all__ = ["METRICS", "MetricOptions", "MetricSpec", "metric", "mse", "nrmse", "psnr", "ssim", "ssim_map"]
