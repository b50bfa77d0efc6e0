"""Losses for super-resolution training, independent of the trainer.

Pixel/structural/frequency (:mod:`.pixel`), perceptual VGG19 features (:mod:`.perceptual`) and adversarial
losses (:mod:`.adversarial`).
"""

from mrisr.losses.adversarial import (
    ADVERSARIAL_KINDS,
    Adversarial,
    build_adversarial,
    discriminator_loss,
    generator_adversarial_loss,
    gradient_penalty,
    smooth_l1_d_loss,
    smooth_l1_g_loss,
)
from mrisr.losses.perceptual import VGG19_WEIGHTS_ENV, VGG19FeatureLoss, vgg19_features
from mrisr.losses.pixel import (
    PIXEL_LOSSES,
    bce_content,
    charbonnier,
    kspace_loss,
    l1,
    mse,
    smooth_l1,
    ssim_loss,
)

__all__ = [
    "ADVERSARIAL_KINDS",
    "PIXEL_LOSSES",
    "VGG19_WEIGHTS_ENV",
    "Adversarial",
    "VGG19FeatureLoss",
    "bce_content",
    "build_adversarial",
    "charbonnier",
    "discriminator_loss",
    "generator_adversarial_loss",
    "gradient_penalty",
    "kspace_loss",
    "l1",
    "mse",
    "smooth_l1",
    "smooth_l1_d_loss",
    "smooth_l1_g_loss",
    "ssim_loss",
    "vgg19_features",
]
