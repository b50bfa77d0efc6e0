"""Typed, validated training configuration: YAML -> dataclasses, ``--set key.sub=value`` overrides.

Every key of a YAML file maps onto a dataclass field below; an unknown key, a missing required key or
a value of the wrong type raises :class:`~mrisr.errors.ConfigError` whose message names the full key
(``phases.2.ratio``). Values are converted, never guessed: ``1e-4`` (which YAML 1.1 reads as a string)
becomes a float where a float is expected, an integer is accepted where a float is expected, and
nothing else is silently coerced.

``--set`` overrides address keys with dots; list items by index (``phases.1.steps=500``). The value is
parsed as YAML (``null``, ``true``, ``[1, 2]``) except where the field is a string, which takes the
text verbatim.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from mrisr.errors import ConfigError

NetworkRole = Literal["generator", "discriminator"]


# ----------------------------------------------------------------------------------------------- sections
@dataclass
class RunConfig:
    """Run-wide settings.

    ``device``: "auto" (CUDA device LOCAL_RANK when available, else CPU), "cpu", "cuda" or "cuda:N".
    ``precision``: autocast dtype on CUDA ("bf16", "fp16" with a gradient scaler); CPU always runs fp32.
    ``log_every``: steps between loss rows in ``metrics.csv`` / TensorBoard (one host sync each).
    ``progress``: tqdm bar on rank 0 ("auto": only when stderr is a terminal).
    ``compile``: wrap the networks with ``torch.compile``.
    """

    name: str = ""
    seed: int = 0
    device: str = "auto"
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"
    deterministic: bool = False
    log_every: int = 50
    progress: Literal["auto", "always", "never"] = "auto"
    compile: bool = False


@dataclass
class DataConfig:
    """Training data: a folder written by ``mrisr prepare`` plus the on-the-fly degradation.

    ``batch_size`` is the *global* batch: with N processes each takes ``batch_size / N``.
    ``patch_size``: the high-resolution patch in pixels/voxels, one number or one per axis (3D:
    ``[D, H, W]``); ``null`` = whole slices/volumes.
    ``degrade_margin``: training patches degrade only the patch plus this margin (px) instead of the
    whole slice (faster; exact for local degradations); validation always degrades whole slices.
    ``lr_root``: a prepared folder of existing low-resolution twins (same names as under ``root``);
    then ``degradation`` is not used (``mrisr.data.datasets.PairedDataset``).
    """

    root: str = ""
    train_split: str = "train"
    val_split: str = "val"
    degradation: str | dict[str, Any] | list[Any] = "bicubic:scale=2"
    patch_size: int | list[int] | None = 64
    augment: bool = True
    dims: Literal[2, 3] = 2
    context_slices: int = 0
    batch_size: int = 16
    num_workers: int = 2
    degrade_margin: int | None = None
    lr_root: str | None = None


@dataclass
class NetworkConfig:
    """A network from the model registry: ``build_model(name, **args)``."""

    name: str
    args: dict[str, Any] = field(default_factory=dict)


@dataclass
class ModelConfig:
    generator: NetworkConfig
    discriminator: NetworkConfig | None = None


@dataclass
class OptimizerConfig:
    """``name``: adam, adamw, sgd or rmsprop. ``betas`` for Adam(W); ``momentum`` for SGD/RMSprop."""

    name: Literal["adam", "adamw", "sgd", "rmsprop"] = "adam"
    lr: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.999)
    momentum: float = 0.0
    weight_decay: float = 0.0
    eps: float = 1e-8
    alpha: float = 0.99
    nesterov: bool = False


@dataclass
class SchedulerConfig:
    """Learning-rate factor as a pure function of the global step (so resuming needs no state).

    ``name``: constant, step (x gamma every ``step_size`` steps), multistep (x gamma at each of
    ``milestones``), exponential (gamma ** (step / step_size)), cosine (to ``eta_min_factor`` at
    ``total_steps``, default the run's length), linear (to ``eta_min_factor`` at ``total_steps``).
    ``warmup_steps``: linear ramp from 0 first.
    """

    name: Literal["constant", "step", "multistep", "exponential", "cosine", "linear"] = "constant"
    step_size: int = 1
    gamma: float = 0.1
    milestones: list[int] = field(default_factory=list)
    total_steps: int | None = None
    eta_min_factor: float = 0.0
    warmup_steps: int = 0


@dataclass
class NetworkTrainingConfig:
    """Optimiser, learning-rate schedule and gradient clipping (max global L2 norm) of one network."""

    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    grad_clip: float | None = None


@dataclass
class OptimConfig:
    generator: NetworkTrainingConfig = field(default_factory=NetworkTrainingConfig)
    discriminator: NetworkTrainingConfig = field(default_factory=NetworkTrainingConfig)


@dataclass
class LossTerm:
    """One weighted term of the generator objective.

    ``name``: a pixel/structural loss (l1, mse, smooth_l1, charbonnier, bce_content, ssim, kspace),
    ``vgg19`` (perceptual; ``args.weights_path`` names the local VGG19 weights) or ``adversarial``
    (the phase's ``adversarial`` kind against the discriminator).
    """

    name: str
    weight: float = 1.0
    args: dict[str, Any] = field(default_factory=dict)


@dataclass
class PhaseConfig:
    """One phase of the schedule. Exactly one of ``steps`` / ``epochs`` gives its length.

    ``train``: which networks are updated. ``ratio``: "G:D" updates per cycle of ``max(G, D)`` steps
    (one step = one batch): "4:1" updates G every step and D every 4th step (the pediatric study);
    "1:5" updates D every step and G every 5th (WGAN critic iterations). Within a cycle the less
    frequently trained network updates on the cycle's last steps, after the other.
    ``adversarial``: vanilla, lsgan, hinge, wgan, relativistic or smooth_l1 (Smooth-L1 between the
    discriminator's sigmoid probabilities and the 0/1 labels, the pediatric study's) (needed when D
    trains or a loss term is ``adversarial``); ``gp_weight``: gradient penalty on the discriminator (WGAN-GP: 10).
    ``lr_scale``: multiplies both learning rates during the phase.
    ``data``: overrides of ``data`` keys for this phase (fine-tuning on a second dataset, e.g. heart
    crops after full images); a phase that changes the data starts a new epoch.
    """

    name: str
    steps: int | None = None
    epochs: float | None = None
    train: list[NetworkRole] = field(default_factory=lambda: ["generator"])
    ratio: str = "1:1"
    losses: list[LossTerm] = field(default_factory=lambda: [LossTerm("l1")])
    adversarial: Literal["vanilla", "lsgan", "hinge", "wgan", "relativistic", "smooth_l1"] | None = None
    gp_weight: float = 0.0
    lr_scale: float = 1.0
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class EMAConfig:
    """Exponential moving average of the generator's weights (``decay`` 0 = off), used for validation
    and exported next to the raw weights once ``start_step`` has passed."""

    decay: float = 0.0
    start_step: int = 0


@dataclass
class ValidationConfig:
    """Validation on the val split every ``every`` steps (and at each phase's end).

    ``metric`` chooses the best checkpoint (psnr/ssim: higher is better; nrmse: lower).
    ``baselines`` are scored on the same samples (mrisr.degrade.baselines names).
    ``max_samples``: cap on val samples (null = all); ``grid_samples``: rows of the sample-grid PNG.
    """

    every: int = 1000
    metric: Literal["psnr", "ssim", "nrmse"] = "psnr"
    baselines: list[str] = field(default_factory=lambda: ["bicubic", "zerofill"])
    max_samples: int | None = 64
    batch_size: int = 4
    patch_size: int | list[int] | None = None
    grid_samples: int = 4
    ssim_gaussian: bool = False


@dataclass
class CheckpointConfig:
    """Checkpoint every ``every`` steps (also at validations, phase ends, the end and on Ctrl-C)."""

    every: int = 1000


@dataclass
class InitConfig:
    """Initial weights: a run folder (its best, else last checkpoint) or a model file, per network.

    This is how a GAN starts from a supervised run, and how a second run fine-tunes on other data.
    """

    generator: str | None = None
    discriminator: str | None = None
    which: Literal["best", "last"] = "best"


@dataclass
class DistributedConfig:
    """``backend`` auto = NCCL on CUDA, gloo on CPU. ``sync_batchnorm`` converts BatchNorm on CUDA."""

    backend: Literal["auto", "nccl", "gloo"] = "auto"
    sync_batchnorm: bool = True
    find_unused_parameters: bool = False


@dataclass
class TrainConfig:
    model: ModelConfig
    phases: list[PhaseConfig]
    run: RunConfig = field(default_factory=RunConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    ema: EMAConfig = field(default_factory=EMAConfig)
    validation: ValidationConfig = field(default_factory=ValidationConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    init: InitConfig = field(default_factory=InitConfig)
    distributed: DistributedConfig = field(default_factory=DistributedConfig)


# ------------------------------------------------------------------------------------- loading / validation
class _SetValue(str):
    """A ``--set`` value as typed on the command line: parsed as YAML unless the field is a string."""


def load_config(path: str | Path, overrides: Sequence[str] = ()) -> TrainConfig:
    """Read a YAML config, apply ``key.sub=value`` overrides, validate into :class:`TrainConfig`."""
    p = Path(path)
    try:
        raw = yaml.safe_load(p.read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read config {p}: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"config {p} is not valid YAML: {exc}") from exc
    if raw is None:
        raw = {}
    return config_from_dict(raw, overrides)


def config_from_dict(raw: Mapping[str, Any], overrides: Sequence[str] = ()) -> TrainConfig:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"a config must be a mapping of keys, got {type(raw).__name__}")
    data: dict[str, Any] = _plain(raw)
    for item in overrides:
        apply_override(data, item)
    cfg = _convert(TrainConfig, data, "")
    check_config(cfg)
    return cfg


def apply_override(raw: dict[str, Any], item: str) -> None:
    """Set ``key.sub=value`` in the raw (pre-validation) dict, creating intermediate mappings."""
    key, sep, value = item.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"--set expects key=value, got {item!r}")
    parts = key.split(".")
    node: Any = raw
    for depth, part in enumerate(parts[:-1]):
        where = ".".join(parts[: depth + 1])
        if isinstance(node, list):
            node = node[_index(part, node, where)]
        elif isinstance(node, dict):
            if node.get(part) is None:
                node[part] = {}
            node = node[part]
        else:
            raise ConfigError(f"{'.'.join(parts[:depth])}: is a value, cannot set {key}")
    last = parts[-1]
    if isinstance(node, list):
        node[_index(last, node, key)] = _SetValue(value)
    elif isinstance(node, dict):
        node[last] = _SetValue(value)
    else:
        raise ConfigError(f"{'.'.join(parts[:-1])}: is a value, cannot set {key}")


def _index(part: str, seq: list[Any], where: str) -> int:
    try:
        i = int(part)
    except ValueError:
        raise ConfigError(f"{where}: a list; address its items by index (e.g. .0.)") from None
    if not -len(seq) <= i < len(seq):
        raise ConfigError(f"{where}: index out of range (the list has {len(seq)} items)")
    return i


def _plain(value: Any) -> Any:
    """Deep copy of YAML data into plain dicts/lists (so overrides never touch the caller's data)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in typing.get_args(tp))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if origin in (list, tuple, dict):
        return {list: "a list", tuple: "a list", dict: "a mapping"}[origin]
    if dataclasses.is_dataclass(tp):
        return "a mapping"
    return {int: "an integer", float: "a number", bool: "true/false", str: "a string",
            type(None): "null"}.get(tp, getattr(tp, "__name__", str(tp)))


def _convert(tp: Any, value: Any, key: str) -> Any:
    """Convert ``value`` to type ``tp`` or raise ConfigError naming ``key``."""
    name = key or "config"
    if isinstance(value, _SetValue):
        if _wants_text(tp, value):
            value = str(value)
        else:
            try:
                value = yaml.safe_load(str(value)) if str(value).strip() else ""
            except yaml.YAMLError as exc:
                raise ConfigError(f"{name}: cannot parse {str(value)!r}: {exc}") from exc
    if tp is Any:
        return value
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        return _convert_dataclass(tp, value, key)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None:
            if type(None) in args:
                return None
            raise ConfigError(f"{name}: must not be null (expected {_type_name(tp)})")
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(arg, value, key)
            except ConfigError as exc:
                errors.append(exc)
        if len(errors) == 1:
            raise errors[0]
        raise ConfigError(f"{name}: expected {_type_name(tp)}, got {value!r}")
    if origin is Literal:
        choices = typing.get_args(tp)
        if value in choices and type(value) in {type(c) for c in choices}:
            return value
        raise ConfigError(f"{name}: expected one of {', '.join(repr(c) for c in choices)}, got {value!r}")
    if origin is list:
        (item_tp,) = typing.get_args(tp) or (Any,)
        if not isinstance(value, list):
            raise ConfigError(f"{name}: expected a list, got {value!r}")
        return [_convert(item_tp, v, f"{key}.{i}") for i, v in enumerate(value)]
    if origin is tuple:
        args = typing.get_args(tp)
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{name}: expected a list, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(args[0], v, f"{key}.{i}") for i, v in enumerate(value))
        if len(value) != len(args):
            raise ConfigError(f"{name}: expected a list of {len(args)} items, got {len(value)}")
        return tuple(_convert(a, v, f"{key}.{i}") for i, (a, v) in enumerate(zip(args, value, strict=True)))
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{name}: expected a mapping, got {value!r}")
        _, val_tp = typing.get_args(tp) or (str, Any)
        return {str(k): _convert(val_tp, v, f"{key}.{k}") for k, v in value.items()}
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{name}: expected true/false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ConfigError(f"{name}: expected an integer, got {value!r}")
    if tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            out = float(value)
        elif isinstance(value, str):
            try:
                out = float(value)  # YAML 1.1 reads "1e-4" as a string
            except ValueError:
                raise ConfigError(f"{name}: expected a number, got {value!r}") from None
        else:
            raise ConfigError(f"{name}: expected a number, got {value!r}")
        if not math.isfinite(out):
            raise ConfigError(f"{name}: expected a finite number, got {value!r}")
        return out
    if tp is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{name}: expected a string, got {value!r}")
    raise TypeError(f"unsupported config type {tp!r} at {name}")  # programming error


def _wants_text(tp: Any, text: str) -> bool:
    """Whether a command-line value for a field of type ``tp`` is taken verbatim rather than as YAML.

    Strings (and string choices) are verbatim, so ``name=1.0`` stays "1.0" and ``progress=never`` never
    becomes a boolean; in a union with a string, ``null`` still means None and ``{...}``/``[...]`` YAML.
    """
    if tp is str:
        return True
    origin = typing.get_origin(tp)
    if origin is Literal:
        return all(isinstance(c, str) for c in typing.get_args(tp))
    if origin in (typing.Union, types.UnionType) and str in typing.get_args(tp):
        stripped = text.strip()
        if stripped in ("null", "~", "") and type(None) in typing.get_args(tp):
            return False
        return not stripped.startswith(("{", "["))
    return False


def _convert_dataclass(cls: Any, value: Any, key: str) -> Any:
    if not isinstance(value, dict):
        raise ConfigError(f"{key or 'config'}: expected a mapping, got {value!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    prefix = f"{key}." if key else ""
    unknown = [k for k in value if k not in fields]
    if unknown:
        known = ", ".join(fields)
        raise ConfigError(f"{prefix}{unknown[0]}: unknown key (known here: {known})")
    kwargs = {}
    for fname, f in fields.items():
        if fname in value:
            kwargs[fname] = _convert(hints[fname], value[fname], f"{prefix}{fname}")
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{prefix}{fname}: required key is missing")
    return cls(**kwargs)


def check_config(cfg: TrainConfig) -> None:
    """Cross-field checks that types alone cannot express."""
    from mrisr.train.schedule import parse_ratio  # local: schedule imports this module's types

    if not cfg.phases:
        raise ConfigError("phases: at least one phase is required")
    if any(c in cfg.run.name for c in "/\\") or cfg.run.name in (".", ".."):
        raise ConfigError(f"run.name: {cfg.run.name!r} is a name, not a path (use --out for the run folder)")
    names = set()
    for i, ph in enumerate(cfg.phases):
        key = f"phases.{i}"
        if ph.name in names:
            raise ConfigError(f"{key}.name: duplicate phase name {ph.name!r}")
        names.add(ph.name)
        if (ph.steps is None) == (ph.epochs is None):
            raise ConfigError(f"{key}: give exactly one of steps / epochs")
        if ph.steps is not None and ph.steps <= 0:
            raise ConfigError(f"{key}.steps: must be positive")
        if ph.epochs is not None and ph.epochs <= 0:
            raise ConfigError(f"{key}.epochs: must be positive")
        if not ph.train:
            raise ConfigError(f"{key}.train: name at least one network")
        if ph.gp_weight < 0:
            raise ConfigError(f"{key}.gp_weight: must be >= 0")
        if ph.lr_scale <= 0:
            raise ConfigError(f"{key}.lr_scale: must be positive")
        parse_ratio(ph.ratio, f"{key}.ratio")
        uses_d = "discriminator" in ph.train or any(t.name == "adversarial" for t in ph.losses)
        if uses_d and cfg.model.discriminator is None:
            raise ConfigError(f"{key}: trains or uses a discriminator but model.discriminator is not set")
        if uses_d and ph.adversarial is None:
            raise ConfigError(f"{key}.adversarial: required when the discriminator trains or is a loss term")
        if "generator" in ph.train and not ph.losses:
            raise ConfigError(f"{key}.losses: the generator trains but has no loss terms")
        for j, term in enumerate(ph.losses):
            if term.weight < 0:
                raise ConfigError(f"{key}.losses.{j}.weight: must be >= 0")
        unknown = [k for k in ph.data if k not in {f.name for f in dataclasses.fields(DataConfig)}]
        if unknown:
            raise ConfigError(f"{key}.data.{unknown[0]}: unknown data key")
    for sub, val in (("run.log_every", cfg.run.log_every), ("validation.every", cfg.validation.every),
                     ("checkpoint.every", cfg.checkpoint.every), ("data.batch_size", cfg.data.batch_size),
                     ("validation.batch_size", cfg.validation.batch_size),
                     ("validation.max_samples", 1 if cfg.validation.max_samples is None
                      else cfg.validation.max_samples)):
        if val <= 0:
            raise ConfigError(f"{sub}: must be positive")
    for sub, val in (("run.seed", cfg.run.seed), ("data.num_workers", cfg.data.num_workers), ("data.context_slices", cfg.data.context_slices),
                     ("validation.grid_samples", cfg.validation.grid_samples), ("ema.start_step", cfg.ema.start_step)):
        if val < 0:
            raise ConfigError(f"{sub}: must be >= 0")
    for role in ("generator", "discriminator"):
        net: NetworkTrainingConfig = getattr(cfg.optim, role)
        key = f"optim.{role}"
        if net.optimizer.lr <= 0:
            raise ConfigError(f"{key}.optimizer.lr: must be positive, got {net.optimizer.lr}")
        for sub, fval in (("optimizer.momentum", net.optimizer.momentum),
                          ("optimizer.weight_decay", net.optimizer.weight_decay),
                          ("optimizer.eps", net.optimizer.eps)):
            if fval < 0:
                raise ConfigError(f"{key}.{sub}: must be >= 0")
        for i, b in enumerate(net.optimizer.betas):
            if not 0.0 <= b < 1.0:
                raise ConfigError(f"{key}.optimizer.betas.{i}: must be in [0, 1), got {b}")
        if net.grad_clip is not None and net.grad_clip <= 0:
            raise ConfigError(f"{key}.grad_clip: must be positive (or null for none)")
        if net.scheduler.step_size <= 0:
            raise ConfigError(f"{key}.scheduler.step_size: must be positive")
        if net.scheduler.warmup_steps < 0:
            raise ConfigError(f"{key}.scheduler.warmup_steps: must be >= 0")
    from mrisr.degrade.baselines import BASELINES

    for i, m in enumerate(cfg.validation.baselines):
        if m not in BASELINES:
            raise ConfigError(f"validation.baselines.{i}: unknown baseline {m!r}; known: {', '.join(BASELINES)}")
    if not 0.0 <= cfg.ema.decay < 1.0:
        raise ConfigError("ema.decay: must be in [0, 1)")


def phase_data(cfg: TrainConfig, phase: PhaseConfig) -> DataConfig:
    """The data section in force during ``phase`` (the phase's ``data`` overrides applied, validated)."""
    if not phase.data:
        return cfg.data
    merged = {**dataclasses.asdict(cfg.data), **phase.data}
    index = cfg.phases.index(phase)
    try:
        return _convert(DataConfig, merged, "data")
    except ConfigError as exc:
        raise ConfigError(f"phases.{index}.{exc}") from None


def config_to_dict(cfg: TrainConfig) -> dict[str, Any]:
    """Plain data (tuples as lists) for the run folder's ``config.yaml`` snapshot."""
    return _plain(dataclasses.asdict(cfg))


def dump_config(cfg: TrainConfig) -> str:
    return yaml.safe_dump(config_to_dict(cfg), sort_keys=False, default_flow_style=None)
