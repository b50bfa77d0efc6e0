"""Typed, validated training configuration: YAML -> dataclasses, ``--set key.sub=value`` overrides.

Every key of a YAML file maps onto a dataclass field below; conversion, overrides and error messages
are those of :mod:`mrisr.config` (an unknown key, a missing required key or a value of the wrong type
raises :class:`~mrisr.errors.ConfigError` naming the full key, ``phases.2.ratio``; ``1e-4`` is a float).

``--set`` overrides address keys with dots; list items by index (``phases.1.steps=500``). The value is
parsed as YAML (``null``, ``true``, ``[1, 2]``) except where the field is a string, which takes the
text verbatim.

Dataset options (degradation, patch_size, augment, dims, context_slices, degrade_margin) have one
owner per run: the ``data:`` section sets them, or names a data config (``data.config:
data/cardiac.yaml``, relative to this config's folder; on the command line relative to the current
folder) whose ``dataset:`` section gives them; a dataset option set in both files is an error, a
``--set`` value overrides either (see :mod:`mrisr.data.config`). The run's snapshot holds the merged
section, so it does not depend on the data config file afterwards.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from mrisr.config import apply_overrides, from_mapping, is_override, read_yaml, to_plain
from mrisr.data.config import DataPipelineConfig, DatasetOptions
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


@dataclass(frozen=True)
class DataConfig(DatasetOptions):
    """Training data: a folder written by ``mrisr prepare``, the dataset options (degradation, patch
    size, augmentation, dims, context slices, ``degrade_margin``: see
    :class:`~mrisr.data.config.DatasetOptions`) and the loader.

    ``batch_size`` is the *global* batch: with N processes each takes ``batch_size / N``.
    Validation always degrades whole slices (``degrade_margin`` is for training patches).
    ``lr_root``: a prepared folder of existing low-resolution twins (same names as under ``root``);
    then ``degradation`` is not used (``mrisr.data.datasets.PairedDataset``).
    """

    root: str = ""
    train_split: str = "train"
    val_split: str = "val"
    batch_size: int = 16
    num_workers: int = 2
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
    adversarial: str | None = None
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

    ``metric`` chooses the best checkpoint: a validation metric of :mod:`mrisr.metrics.registry` (psnr, ssim:
    higher is better; nrmse: lower).
    ``baselines`` are scored on the same samples (mrisr.degrade.baselines names).
    ``max_samples``: cap on val samples (null = all); ``grid_samples``: rows of the sample-grid PNG.
    """

    every: int = 1000
    metric: str = "psnr"
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
def load_config(path: str | Path, overrides: Sequence[str] = ()) -> TrainConfig:
    """Read a YAML config, apply ``key.sub=value`` overrides, validate into :class:`TrainConfig`."""
    p = Path(path)
    return config_from_dict(read_yaml(p), overrides, base=p.parent)


def config_from_dict(raw: Mapping[str, Any], overrides: Sequence[str] = (), base: Path | None = None) -> TrainConfig:
    """Validate raw config data; ``base``: the folder that a relative ``data.config`` is relative to
    (default: the current folder)."""
    if not isinstance(raw, Mapping):
        raise ConfigError(f"a config must be a mapping of keys, got {type(raw).__name__}")
    data = apply_overrides(raw, overrides)
    if isinstance(data.get("data"), Mapping):
        data["data"] = merge_data_config(data["data"], Path.cwd() if base is None else base)
    cfg = from_mapping(TrainConfig, data)
    check_config(cfg)
    return cfg


def merge_data_config(data: Mapping[str, Any], base: Path) -> dict[str, Any]:
    """The raw ``data:`` section with the ``dataset:`` options of the data config it names
    (``data.config``) merged in; without ``config``, the section as it is.

    A dataset option written both here and in the data config is a ConfigError; one set by ``--set``
    wins over the file's.
    """
    out = dict(data)
    ref = out.pop("config", None)
    if ref is None:
        return out
    if not isinstance(ref, str):
        raise ConfigError(f"data.config: expected the path of a data config (configs/data/*.yaml), got {ref!r}")
    path = Path(ref)
    if not path.is_absolute() and not is_override(ref):
        path = base / path
    try:
        doc = read_yaml(path)
        options = to_plain(DataPipelineConfig.from_mapping(doc).dataset)
    except ConfigError as exc:
        raise ConfigError(f"data.config: {exc}") from None
    written = doc.get("dataset") or {}
    for key in written:
        if key in out and not is_override(out[key]):
            raise ConfigError(f"data.{key}: also set in the dataset section of {path} (data.config); a dataset "
                              f"option is set in one place: remove one, or override it with --set data.{key}=...")
    return {**{k: options[k] for k in written}, **out}


def check_config(cfg: TrainConfig) -> None:
    """Cross-field checks that types alone cannot express."""
    from mrisr.train.schedule import parse_ratio  # local: schedule imports this module's types

    if not cfg.phases:
        raise ConfigError("phases: at least one phase is required")
    if any(c in cfg.run.name for c in "/\\") or cfg.run.name in (".", ".."):
        raise ConfigError(f"run.name: {cfg.run.name!r} is a name, not a path (use --out for the run folder)")
    names = set()
    from mrisr.losses.adversarial import ADVERSARIAL_KINDS

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
        if ph.adversarial is not None and ph.adversarial not in ADVERSARIAL_KINDS:
            raise ConfigError(f"{key}.adversarial: unknown kind {ph.adversarial!r}; known: {', '.join(ADVERSARIAL_KINDS)}")
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
    for sub, val in (("run.seed", cfg.run.seed), ("data.num_workers", cfg.data.num_workers),
                     ("validation.grid_samples", cfg.validation.grid_samples), ("ema.start_step", cfg.ema.start_step)):
        if val < 0:
            raise ConfigError(f"{sub}: must be >= 0")
    cfg.data.check_values("data")
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
    from mrisr.metrics.registry import validation_metrics

    known = [s.name for s in validation_metrics()]
    if cfg.validation.metric not in known:
        raise ConfigError(f"validation.metric: unknown metric {cfg.validation.metric!r}; known: {', '.join(known)}")
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
        data = from_mapping(DataConfig, merged, "data")
        data.check_values("data")
    except ConfigError as exc:
        raise ConfigError(f"phases.{index}.{exc}") from None
    return data


def config_to_dict(cfg: TrainConfig) -> dict[str, Any]:
    """Plain data (tuples as lists) for the run folder's ``config.yaml`` snapshot."""
    out: dict[str, Any] = to_plain(cfg)
    return out


def dump_config(cfg: TrainConfig) -> str:
    return yaml.safe_dump(config_to_dict(cfg), sort_keys=False, default_flow_style=None)
