"""Names -> constructors, for the CLI and configs (``build_model("srresnet", scale=2)``).

Library users can equally instantiate the classes directly; the registry adds the name that model files
and configs refer to, the resolved constructor arguments (stored in the model file so the network can be
rebuilt from it alone), and a tiny configuration per network used by the contract tests.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from mrisr.errors import ConfigError
from mrisr.models.densenet3d import MDCSRN
from mrisr.models.discriminators import Critic3D, PatchDiscriminator, VGGDiscriminator
from mrisr.models.fast import FastSRNet
from mrisr.models.pediatric import PediatricGenerator
from mrisr.models.resnet3d import ResNet3D
from mrisr.models.rrdb import RRDBNet
from mrisr.models.srresnet import SRResNet


@dataclass(frozen=True)
class ModelEntry:
    """One registered network.

    Attributes:
        name: registry name (used in configs and model files).
        cls: the class; its keyword arguments are the network's configuration (plain numbers/strings).
        kind: ``"generator"`` or ``"discriminator"``.
        spatial_dims: dims the network works in (generators: exactly one; discriminators may allow both).
        description: one line.
        scales: supported upscaling factors (generators).
        tiny: constructor arguments for a very small instance (tests, smoke runs).
        variants: extra argument sets covering the network's modes (tested in addition to the default).
    """

    name: str
    cls: type[nn.Module]
    kind: str
    spatial_dims: tuple[int, ...]
    description: str
    scales: tuple[int, ...] = ()
    tiny: dict[str, Any] = field(default_factory=dict)
    variants: tuple[dict[str, Any], ...] = ()


_ENTRIES: tuple[ModelEntry, ...] = (
    ModelEntry("srresnet", SRResNet, "generator", (2,), "SRResNet / SRGAN generator (Ledig et al. 2017)",
               SRResNet.supported_scales, {"channels": 8, "n_blocks": 2},
               ({"residual": "bicubic"}, {"in_channels": 3}, {"batch_norm": False})),
    ModelEntry("rrdbnet", RRDBNet, "generator", (2,), "RRDBNet, ESRGAN's generator (cardiac study)",
               RRDBNet.supported_scales, {"channels": 8, "n_blocks": 1, "growth": 4},
               ({"upsampler": "pixelshuffle"}, {"residual": "zerofill", "in_channels": 3})),
    ModelEntry("pediatric", PediatricGenerator, "generator", (2,),
               "the pediatric study's simple generator (LeakyReLU inside, tanh output)",
               PediatricGenerator.supported_scales, {"channels": 8, "n_blocks": 1},
               ({"output_activation": "none", "residual": "bicubic"},)),
    ModelEntry("fast", FastSRNet, "generator", (2,),
               "fast CPU network (FSRCNN body, ESPCN pixel-shuffle output)",
               FastSRNet.supported_scales, {"channels": 8, "shrink": 4, "n_layers": 1},
               ({"residual": "bicubic"}, {"in_channels": 5})),
    ModelEntry("mdcsrn", MDCSRN, "generator", (3,), "mDCSRN, multi-level densely connected 3D SR network "
               "(Chen et al. 2018)", MDCSRN.supported_scales, {"growth": 2, "n_blocks": 2, "n_units": 2},
               ({"upsampling": "subpixel"}, {"anisotropic": True}, {"anisotropic": True, "upsampling": "subpixel"},
                {"pre_method": "linear", "residual": "linear"})),
    ModelEntry("resnet3d", ResNet3D, "generator", (3,), "3D residual network (EDSR-style)",
               ResNet3D.supported_scales, {"channels": 4, "n_blocks": 1}, ({"anisotropic": True},)),
    ModelEntry("vgg_discriminator", VGGDiscriminator, "discriminator", (2, 3),
               "SRGAN's VGG-style discriminator, optional dropout (pediatric study)",
               tiny={"channels": 4, "n_layers": 4, "fc_channels": 8, "pool_size": 2},
               variants=({"dropout": 0.3},)),
    ModelEntry("patch_discriminator", PatchDiscriminator, "discriminator", (2, 3),
               "PatchGAN discriminator with spectral norm", tiny={"channels": 4, "n_down": 2}),
    ModelEntry("critic3d", Critic3D, "discriminator", (3, 2), "WGAN-GP critic with layer norm (no batch norm)",
               tiny={"channels": 4, "n_layers": 4, "fc_channels": 8}),
)

REGISTRY: dict[str, ModelEntry] = {e.name: e for e in _ENTRIES}


def list_models(kind: str | None = None) -> list[str]:
    """Registered names (optionally only ``"generator"`` or ``"discriminator"``), in registration order."""
    return [e.name for e in _ENTRIES if kind is None or e.kind == kind]


def get_entry(name: str) -> ModelEntry:
    try:
        return REGISTRY[name]
    except KeyError:
        raise ConfigError(f"unknown network {name!r}; known: {', '.join(REGISTRY)}") from None


def default_args(name: str) -> dict[str, Any]:
    """The constructor's keyword arguments with their defaults."""
    sig = inspect.signature(get_entry(name).cls.__init__)
    return {k: p.default for k, p in sig.parameters.items() if k != "self" and p.default is not inspect.Parameter.empty}


def resolve_args(name: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    """Defaults updated with ``kwargs``; unknown keys are a :class:`ConfigError` naming the key."""
    args = default_args(name)
    unknown = sorted(set(kwargs) - set(args))
    if unknown:
        raise ConfigError(f"network {name!r} has no argument(s) {', '.join(unknown)}; "
                          f"known: {', '.join(args)}")
    for key, value in kwargs.items():
        _check_type(name, key, value, args[key])
    args.update(kwargs)
    return args


def _check_type(name: str, key: str, value: Any, default: Any) -> None:
    """Arguments whose default is a plain number / flag must be given as one (configs and model files are
    typed by hand; ``channels: "64"`` should fail here, by name, not deep inside a layer)."""
    if isinstance(default, bool):
        ok = isinstance(value, bool)
        want = "true or false"
    elif isinstance(default, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
        want = "an integer"
    elif isinstance(default, float):
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        want = "a number"
    else:
        return
    if not ok:
        raise ConfigError(f"network {name!r}: argument {key} must be {want}, got {value!r}")


def build_model(name: str, **kwargs: Any) -> nn.Module:
    """Instantiate a registered network. The module gets ``mrisr_arch`` and ``mrisr_args`` (all arguments,
    defaults included) so :func:`mrisr.models.modelfile.save_model_file` can record them."""
    entry = get_entry(name)
    args = resolve_args(name, kwargs)
    try:
        model = entry.cls(**args)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"network {name!r}: {exc}") from exc
    setattr(model, "mrisr_arch", name)  # noqa: B010 - plain attributes on an nn.Module, kept out of mypy's way
    setattr(model, "mrisr_args", dict(args))  # noqa: B010
    return model


def model_info(name: str) -> dict[str, Any]:
    """Description of a registered network: kind, dims, scales, arguments with defaults, class."""
    e = get_entry(name)
    return {
        "name": e.name,
        "kind": e.kind,
        "spatial_dims": list(e.spatial_dims),
        "scales": list(e.scales),
        "description": e.description,
        "class": f"{e.cls.__module__}.{e.cls.__qualname__}",
        "arguments": default_args(name),
    }
