"""Per-scan calibration of what a residual network adds to its baseline: do no harm on unfamiliar scans.

A residual generator returns ``baseline(x) + r(x)`` (then, for k-space models, the measured band put back).
On a scan unlike its training data the correction ``r`` can be wrong, and then the output is worse than the
baseline alone (zero-fill, bicubic). The scan cannot say what the missing frequencies are, but it can say
how well the network predicts the frequencies it *does* have: degrade the (normalised) scan once more with
the model's own degradation, run the network on that coarser copy, and compare its correction with what the
scan actually holds beyond the baseline of the coarser copy. The least-squares gain

    g = clip(<d, t> / <d, d>, 0, 1),   d = net(y') - baseline(y'),   t = y - baseline(y'),   y' = degrade(y)

is how much of the correction helps at that scale (``g = 1``: all of it; ``g = 0``: none; the baseline is
then returned). By construction ``|t - g d| <= |t|``: at the coarser scale the calibrated output is never
further from the scan than the baseline. :func:`upscale_with_model` applies ``g`` at the real scale by
scaling the network's correction (:func:`with_residual_gain`), which keeps data consistency exact: the
measured band is returned as measured whatever ``g`` is. The assumption is that the network errs on this
scan at the real scale much as it does one scale coarser (similar anatomy, contrast and noise).

At even k-space factors of 4 and more, one more degradation by the model's factor leaves a very coarse copy
(11 px across for a 180 px slice at x4), so the gain is also measured on the first octave above the scan's
band (:func:`octave_gain`: degrade by 2, upscale by the model's factor, truncate back onto the scan's grid),
and the smaller of the two gains is used. Both are recorded.
"""

from __future__ import annotations

import copy
import math
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

if TYPE_CHECKING:
    from mrisr.degrade.chain import Degradation

#: Slices used for the calibration (evenly spaced over the scan's slices and frames).
CALIBRATION_SLICES = 24
#: Smallest coarse slice edge (pixels) worth calibrating on; smaller scans keep the full correction.
MIN_COARSE_EDGE = 8


def calibration_applies(module: nn.Module, meta: dict[str, Any]) -> str | None:
    """Why the calibration cannot run for this model (``None`` when it can).

    It needs a 2D generator with a residual baseline, a single input channel (no context slices) and the
    degradation it was trained for (``meta["degradation"]``).
    """
    if getattr(module, "spatial_dims", None) != 2:
        return "not a 2D network"
    if getattr(module, "residual", None) is None:
        return "no residual baseline"
    if int(getattr(module, "in_channels", 1)) != 1:
        return "uses context slices"
    if not degradation_of(meta):
        return "the model file does not record its degradation"
    return None


def degradation_of(meta: dict[str, Any]) -> str | None:
    """The degradation spec a model was trained for: ``meta["degradation"]`` or ``intended_use.degradation``."""
    spec = meta.get("degradation") or (meta.get("intended_use") or {}).get("degradation")
    return str(spec) if spec else None


def _sample(stacks: list[np.ndarray], k: int) -> np.ndarray:
    """Up to ``k`` slices ``(k, a, b)`` evenly spaced over all stacks (each ``(S, a, b)``), skipping blank ones."""
    flat = [(i, j) for i, s in enumerate(stacks) for j in range(s.shape[0])]
    keep = [ij for ij in flat if float(np.ptp(stacks[ij[0]][ij[1]])) > 0]
    if not keep:
        return np.zeros((0, *stacks[0].shape[1:]), dtype=np.float32)
    pick = np.unique(np.linspace(0, len(keep) - 1, min(k, len(keep))).round().astype(int))
    return np.stack([stacks[keep[p][0]][keep[p][1]] for p in pick]).astype(np.float32)


def _centred(x: np.ndarray, fa: int, fb: int) -> torch.Tensor:
    """``(k, a, b)`` slices centre-cropped to multiples of ``fa`` x ``fb``, as a ``(k, 1, a', b')`` tensor."""
    a, b = (x.shape[1] // fa) * fa, (x.shape[2] // fb) * fb
    oa, ob = (x.shape[1] - a) // 2, (x.shape[2] - b) // 2
    return torch.from_numpy(np.ascontiguousarray(x[:, oa:oa + a, ob:ob + b]))[:, None]


def _clipped_gain(num: float, den: float) -> float:
    """The least-squares gain ``num / den`` (``<d, t> / <d, d>``) clipped to [0, 1]."""
    return float(min(1.0, max(0.0, num / den)))


def residual_gain(module: nn.Module, stacks: list[np.ndarray], meta: dict[str, Any],
                  device: torch.device | str = "cpu", *, slices: int = CALIBRATION_SLICES,
                  seed: int = 0) -> tuple[float, dict[str, Any]]:
    """The calibrated gain ``g`` in [0, 1] of the module's correction for this scan, and a record of it.

    Args:
        module: a 2D residual generator (:func:`calibration_applies` is ``None``).
        stacks: the scan's normalised slices, one ``(S, a, b)`` array per frame (model input units).
        meta: the model file's metadata (its ``degradation`` spec is applied once more).
        device: where the network runs.
        slices: how many slices to use (evenly spaced; blank slices skipped).
        seed: seed of any random part of the degradation (noise), so that the gain is reproducible.

    Returns:
        ``(gain, record)``; ``record`` holds the gain, the slices used and the coarse-scale error of the
        baseline and of the calibrated output relative to it. ``gain`` is 1.0 (with the reason in the record)
        when there is nothing to calibrate on: blank slices, slices too small for one more degradation, or a
        network that adds nothing.
    """
    from mrisr.degrade.chain import build_degradation
    from mrisr.infer.engine import run_slices
    from mrisr.models.base import baseline_upsample

    why = calibration_applies(module, meta)
    if why is not None:
        return 1.0, {"gain": 1.0, "skipped": why}
    degradation = build_degradation(str(degradation_of(meta)))
    fa, fb = degradation.factors(2)
    x = _sample(stacks, slices)
    if x.shape[0] == 0 or x.shape[1] // fa < MIN_COARSE_EDGE or x.shape[2] // fb < MIN_COARSE_EDGE:
        return 1.0, {"gain": 1.0, "skipped": "too few or too small slices to degrade once more"}
    y = _centred(x, fa, fb)
    coarse, _ = degradation.apply_tensor(y, np.random.default_rng(seed))
    # the network through the same engine as the scan itself (channels-last, threads, batches)
    net = run_slices(module, np.ascontiguousarray(coarse[:, 0].numpy()), 8, torch.device(device))
    num = den = ref = 0.0
    with torch.inference_mode():
        for i in range(coarse.shape[0]):
            base = baseline_upsample(coarse[i:i + 1], [int(f) for f in getattr(module, "factors")],  # noqa: B009
                                     str(module.residual)).double()[0, 0]
            d = torch.from_numpy(net[i]).double() - base
            t = y[i, 0].double() - base
            num += float((d * t).sum())
            den += float((d * d).sum())
            ref += float((t * t).sum())
    if den <= 1e-12 * max(ref, 1e-30) or not math.isfinite(num / den):
        return 1.0, {"gain": 1.0, "skipped": "the network adds nothing at the coarser scale"}
    gain = _clipped_gain(num, den)
    err = ref - 2 * gain * num + gain * gain * den
    record: dict[str, Any] = {"gain": round(gain, 4), "slices": int(x.shape[0]),
                              "coarse_degradation": degradation.spec,
                              "coarse_error_vs_baseline": round(err / ref, 4) if ref > 0 else None}
    octave = octave_gain(module, x, degradation, torch.device(device))
    if octave is not None:
        record["coarse_gain"] = record["gain"]
        record["octave_gain"] = round(octave, 4)
        if octave < gain:
            gain = octave
            record["gain"] = round(gain, 4)
    return gain, record


def octave_gain(module: nn.Module, x: np.ndarray, degradation: Degradation, device: torch.device) -> float | None:
    """The gain the correction earns on the first octave above the scan's band (a model trained for one plain
    k-space truncation at an even factor of 4 or more; ``None`` otherwise or when the slices are too small).

    At a large factor ``f`` one more degradation by ``f`` leaves so coarse a copy (a 180 px slice at x4
    gives 11 px) that the network's errors there say little about the real scale. This check degrades the
    scan by 2 only, upscales it by ``f`` and truncates the result back onto the scan's grid, so the
    network's correction is scored on the band between 1/2 and 1 of the scan's own band (the first octave
    it extrapolates into), against what the scan holds there. Same least-squares gain, clipped to [0, 1].

    Args:
        module: the 2D residual generator.
        x: ``(k, a, b)`` normalised slices (model input units).
        degradation: the model's degradation (only a single windowless :class:`KSpaceStep` has a band of
            k-space to compare in).
        device: where the network runs.
    """
    from mrisr.degrade.kspace import KSpaceStep, kspace_truncate, zerofill_upsample
    from mrisr.infer.engine import run_slices

    fa, fb = degradation.factors(2)
    steps = degradation.steps
    if (len(steps) != 1 or not isinstance(steps[0], KSpaceStep) or steps[0].window not in (None, "none")
            or fa != fb or fa < 4 or fa % 2):
        return None
    if x.shape[1] // 2 < MIN_COARSE_EDGE or x.shape[2] // 2 < MIN_COARSE_EDGE:
        return None
    y = _centred(x, 2, 2).double()
    with torch.inference_mode():
        coarse = kspace_truncate(y, [2, 2], [2, 3])
        net = torch.from_numpy(run_slices(module, np.ascontiguousarray(coarse[:, 0].float().numpy()), 8,
                                          device))
        back = kspace_truncate(net[:, None].double(), [fa // 2, fa // 2], [2, 3], magnitude=False)
        base = zerofill_upsample(coarse, [2, 2], [2, 3])
        d, t = back - base, y - base
        den = float((d * d).sum())
        if den <= 1e-12 * max(float((t * t).sum()), 1e-30):
            return None
        return _clipped_gain(float((d * t).sum()), den)


def with_residual_gain(module: nn.Module, gain: float) -> nn.Module:
    """A shallow copy of ``module`` (same parameters) whose correction over its baseline is scaled by
    ``gain``; ``module`` itself (which may be cached and shared) is left unchanged."""
    if gain == 1.0:
        return module
    scaled = copy.copy(module)
    setattr(scaled, "residual_gain", float(gain))  # noqa: B010  (a plain attribute, not a Module/Tensor)
    return scaled
