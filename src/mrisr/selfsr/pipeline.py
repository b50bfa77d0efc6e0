"""``mrisr selfsr`` and ``mrisr train --self-supervised``: pairs -> network -> training -> through-plane inference.

The time budget (``budget_s``) covers everything from the command's start: before training, the time
that applying the network will take is measured on two working-grid slices and extrapolated to the whole
scan (x :data:`INFERENCE_MARGIN`); training stops when only that reserve is left. With ``steps`` the
budget is not used and the run is deterministic (same seed, same machine and thread count, CPU); a
budgeted run records the step count it reached so that ``--steps N`` reproduces it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
from torch import nn

from mrisr.data.normalise import fit_intensity_map
from mrisr.errors import ConfigError, InputError
from mrisr.infer.engine import run_slices
from mrisr.infer.through_plane import (
    GEOMETRY,
    SELF_SUPERVISED_KEY,
    default_target,
    is_self_supervised,
    nonconstant_slices,
    output_slices,
    upscale_through_plane,
)
from mrisr.io.volume import Volume
from mrisr.models.modelfile import load_model_file, save_model_file
from mrisr.models.registry import build_model
from mrisr.selfsr.acquisition import Acquisition, acquisition_of
from mrisr.selfsr.fit import FitOptions, FitResult, fit
from mrisr.selfsr.pairs import PairSet, make_pairs

log = logging.getLogger(__name__)

#: Intensities -> [0, 1] by the 0.5 / 99.5 percentiles, not clipped (the network sees the whole range).
NORMALISATION: dict[str, Any] = {"method": "percentile", "low_percentile": 0.5, "high_percentile": 99.5,
                                 "clip": False, "range": [0.0, 1.0]}
#: The network when no ``--init`` is given: SRResNet body, no upsampling (scale 1), residual over its input.
NETWORK: tuple[str, dict[str, Any]] = ("srresnet", {"scale": 1, "channels": 16, "n_blocks": 3,
                                                    "batch_norm": False, "residual": "bicubic"})
#: Measured inference time is multiplied by this for the reserve (resampling, fusion, writing, noise).
INFERENCE_MARGIN = 1.5
#: Seconds reserved for reading/writing beyond the inference estimate.
IO_RESERVE_S = 5.0


@dataclass(frozen=True)
class AcquisitionOptions:
    """What the user says about the acquisition (``None``: from the header)."""

    axis: int | None = None
    thickness: float | None = None
    gap: float | None = None
    profile: str = "gaussian"

    def of(self, vol: Volume) -> Acquisition:
        return acquisition_of(vol, axis=self.axis, thickness=self.thickness, gap=self.gap, profile=self.profile)


@dataclass
class Budget:
    """Wall-clock budget in seconds, from ``start`` (``time.monotonic()``)."""

    seconds: float
    start: float

    def left(self) -> float:
        return self.seconds - (time.monotonic() - self.start)


# ------------------------------------------------------------------------------------------------ network
def initial_network(init: str | None, seed: int) -> tuple[nn.Module, str]:
    """The network to train and a note on where its weights come from.

    ``init``: ``None`` (:data:`NETWORK`, initialised from ``seed``); a self-supervised model file (all its
    weights); or a shipped / trained 2D model with one input channel (its architecture at scale 1 with a
    residual over the input; every tensor whose name and shape match is copied, the upsampling layers are
    not; refused when fewer than half of the network's tensors match).
    """
    torch.manual_seed(int(seed))
    if init is None:
        arch, args = NETWORK
        net = build_model(arch, **args)
        # the last layer starts at zero: the untrained network is exactly the cubic interpolation it refines
        tail = getattr(net, "tail")  # noqa: B009
        nn.init.zeros_(tail.weight)
        nn.init.zeros_(tail.bias)
        return net, f"{arch} initialised from seed {seed} (last layer zero: starts as cubic interpolation)"
    src, meta = load_model_file(init)
    if is_self_supervised(meta):
        net = build_model(meta["arch"], **meta["args"])
        net.load_state_dict(src.state_dict())
        return net, f"all weights from {meta.get('path', init)}"
    if int(getattr(src, "spatial_dims", 0)) != 2 or int(getattr(src, "in_channels", 0)) != 1:
        raise ConfigError(f"--init {init}: needs a 2D network with one input channel (no context slices)")
    args = dict(meta["args"], scale=1, residual="bicubic")
    if "data_consistency" in args:
        args["data_consistency"] = False
    net = build_model(meta["arch"], **args)
    target = net.state_dict()
    copied = {k: v for k, v in src.state_dict().items() if k in target and target[k].shape == v.shape}
    if len(copied) < len(target) / 2:
        raise ConfigError(f"--init {init}: only {len(copied)} of {len(target)} tensors fit a scale-1 "
                          f"{meta['arch']} (a different architecture?)")
    target.update(copied)
    net.load_state_dict(target)
    return net, f"{len(copied)} of {len(target)} tensors from {meta.get('path', init)}"


def network_metadata(acqs: Sequence[Acquisition], sets: Sequence[PairSet], sources: Sequence[str],
                     result: FitResult, opts: FitOptions, init_note: str) -> dict[str, Any]:
    """The model-file metadata (``meta`` of :func:`save_model_file`) of a self-supervised network."""
    ratios = [s.ratio for s in sets]
    a0 = acqs[0]
    return {
        "normalisation": dict(NORMALISATION),
        "degradation": {"method": "slice", "profile": a0.profile, "thickness_mm": a0.thickness,
                        "spacing_mm": a0.spacing, "gap_mm": a0.gap, "simulated_on": "in-plane axes"},
        "training_data": {"sources": list(sources), "scans": len(sources), "acquisitions": [a.to_dict() for a in acqs]},
        SELF_SUPERVISED_KEY: {
            "geometry": GEOMETRY,
            "ratio": float(np.median(ratios)),
            "ratio_range": [float(min(ratios)), float(max(ratios))],
            "steps": result.steps, "seconds": round(result.seconds, 1), "stopped_by": result.stopped_by,
            "seed": opts.seed, "patch": opts.patch, "batch": opts.batch, "lr": opts.lr,
            "init": init_note, "final_l1": result.losses[-1] if result.losses else None,
            "residual_gain": result.residual_gain, "validation_mse": result.validation,
        },
        "intended_use": {"image": "magnitude",
                         "degradation": f"{a0.profile} slices {a0.thickness:g} mm thick, {a0.spacing:g} mm apart"},
        "description": "self-supervised through-plane super-resolution (SMORE-style), trained on in-plane slices",
    }


# ------------------------------------------------------------------------------------------------ budget
def inference_seconds(module: nn.Module, vol: Volume, acq: Acquisition, device: torch.device, batch_size: int) -> float:
    """Measured seconds of the network on two working-grid slices, extrapolated to the slices of both
    orientations that the network runs on (not the constant ones, :func:`nonconstant_slices`)."""
    shape = vol.spatial_shape
    total = 0.0
    for across, (a, d_a) in enumerate(acq.in_plane):
        busy = int(nonconstant_slices(np.moveaxis(vol.data, a, 0)).sum())
        other = acq.in_plane[1 - across][0]
        n_work = output_slices(shape[acq.axis], acq.spacing, d_a)
        probe = np.zeros((min(2, shape[a]), n_work, shape[other]), dtype=np.float32)
        run_slices(module, probe, batch_size, device)  # warm-up (allocations)
        t0 = time.monotonic()
        run_slices(module, probe, batch_size, device)
        total += (time.monotonic() - t0) / probe.shape[0] * busy
    return total


class InferenceReserve:
    """Seconds to keep for inference: :func:`inference_seconds` x :data:`INFERENCE_MARGIN` + :data:`IO_RESERVE_S`,
    measured again every ``every_s`` seconds of training (the machine's load changes; a shared CPU can be
    half as fast ten minutes later)."""

    def __init__(self, module: nn.Module, vol: Volume, acq: Acquisition, device: torch.device, batch_size: int,
                 every_s: float = 60.0):
        self.args = (module.eval(), vol, acq, device, batch_size)
        self.every_s = every_s
        self.measured_at = 0.0
        self.value = 0.0
        self()

    def __call__(self) -> float:
        now = time.monotonic()
        if now - self.measured_at >= self.every_s:
            self.value = INFERENCE_MARGIN * inference_seconds(*self.args) + IO_RESERVE_S
            self.measured_at = time.monotonic()
        return self.value


# ------------------------------------------------------------------------------------------------ entry points
def train_self_supervised(vols: Sequence[tuple[Volume, str]], acq_opts: AcquisitionOptions, opts: FitOptions,
                          device: torch.device, *, init: str | None = None, budget: Budget | None = None,
                          reserve: Callable[[], float] | None = None, progress: bool = False
                          ) -> tuple[nn.Module, dict[str, Any], FitResult]:
    """Train one network on the in-plane slices of ``vols`` (``(volume, source name)``).

    Returns:
        ``(network in eval mode, model-file metadata, fit result)``.

    Raises:
        ConfigError: neither ``opts.steps`` nor ``budget``; InputError: a scan that is not a thick-slice 3D scan.
    """
    if opts.steps is None and budget is None:
        raise ConfigError("give --steps or --budget")
    acqs, sets = [], []
    for vol, source in vols:
        acq = acq_opts.of(vol)
        imap = fit_intensity_map(vol.data, NORMALISATION)
        acqs.append(acq)
        sets += make_pairs(imap.forward(vol.data), acq, opts.patch, source)
    ratios = [s.ratio for s in sets]
    if max(ratios) > 1.1 * min(ratios):
        log.warning("mrisr: warning: the scans' slices are %.3g to %.3g in-plane voxels apart; one network learns "
                    "one acquisition (train one model per protocol)", min(ratios), max(ratios))
    module, note = initial_network(init, opts.seed)
    deadline = None
    if budget is not None and opts.steps is None:
        keep = reserve if reserve is not None else (lambda: 0.0)
        deadline = lambda: budget.left() - keep()  # noqa: E731
        if deadline() <= 0:
            raise InputError(f"the budget of {budget.seconds / 60:g} min leaves no time to train (applying the "
                             f"network takes about {keep() / 60:.1f} min; raise --budget)")
    result = fit(module, sets, opts, device, deadline, progress)
    meta = network_metadata(acqs, sets, [s for _, s in vols], result, opts, note)
    return module, meta, result


def selfsr_volume(vol: Volume, acq_opts: AcquisitionOptions, opts: FitOptions, device: torch.device, *,
                  target_spacing: float | None = None, init: str | None = None, budget: Budget | None = None,
                  batch_size: int = 4, progress: bool = False, source: str = "input"
                  ) -> tuple[Volume, nn.Module, dict[str, Any], FitResult]:
    """Learn from ``vol``'s own in-plane slices and super-resolve it through-plane.

    Returns:
        ``(output Volume on the target grid, network, model-file metadata, fit result)``. The history record
        holds the acquisition, the step count, seed and budget.
    """
    acq = acq_opts.of(vol)
    target = default_target(vol.spacing[:3], acq.axis) if target_spacing is None else float(target_spacing)
    if not target > 0:
        raise ConfigError(f"--target-spacing must be positive, got {target:g}")
    reserve = None
    if budget is not None and opts.steps is None:
        probe, _ = initial_network(init, opts.seed)
        reserve = InferenceReserve(probe, vol, acq, device, batch_size)
    module, meta, result = train_self_supervised([(vol, source)], acq_opts, opts, device, init=init, budget=budget,
                                                 reserve=reserve, progress=progress)
    record = {"acquisition": acq.to_dict(), "steps": result.steps, "seed": opts.seed,
              "residual_gain": result.residual_gain,
              "stopped_by": result.stopped_by, "train_seconds": round(result.seconds, 1)}
    if budget is not None:
        record["budget_min"] = budget.seconds / 60.0
    out = upscale_through_plane(vol, (module, meta), target_spacing=target, axis=acq.axis, device=device,
                                batch_size=batch_size, progress=progress, record=record)
    return out, module, meta, result


def save_network(path: str, module: nn.Module, meta: Mapping[str, Any], force: bool = False) -> str:
    """Write the network as an mrisr model file (``mrisr upscale IN OUT --model PATH`` applies it)."""
    return str(save_model_file(path, module, meta=dict(meta), force=force))


def with_steps(opts: FitOptions, steps: int | None) -> FitOptions:
    return replace(opts, steps=steps)
