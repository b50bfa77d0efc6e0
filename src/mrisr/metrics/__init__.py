"""Image-quality metrics (PSNR, SSIM, NRMSE) in PyTorch and their per-volume aggregation."""

from mrisr.metrics.image import mse, nrmse, psnr, ssim, ssim_map

__all__ = ["mse", "nrmse", "psnr", "ssim", "ssim_map"]
