"""Validation: the metrics of the model *and* of the interpolation baselines on the same samples.

The metrics are the registry's validation metrics (:func:`mrisr.metrics.registry.validation_metrics`:
PSNR, SSIM, NRMSE), computed per sample with their ``per_sample`` function.

Scores are computed per sample, averaged per volume, then over volumes (a volume with many slices
does not outweigh one with few). Baseline scores never change during a run and are computed once per
validation set.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from mrisr.metrics.registry import MetricOptions, validation_metrics
from mrisr.train.plots import GridRow, middle_slice


def centre_channel(lr: Tensor) -> Tensor:
    """``(N, C, ...)`` -> ``(N, 1, ...)``: the slice itself when neighbouring slices ride along as channels."""
    c = lr.shape[1] // 2
    return lr[:, c:c + 1]


def scale_factors(lr: Tensor, hr: Tensor) -> list[int]:
    """Integer per-axis factors between the LR and HR grids (1 where a degradation kept the grid)."""
    out = []
    for small, big in zip(lr.shape[2:], hr.shape[2:], strict=True):
        if big % small:
            raise ValueError(f"HR size {tuple(hr.shape[2:])} is not a multiple of LR size {tuple(lr.shape[2:])}")
        out.append(big // small)
    return out


def baseline(lr: Tensor, hr: Tensor, method: str) -> Tensor:
    from mrisr.degrade.baselines import upscale_tensor

    x = centre_channel(lr)
    factors = scale_factors(x, hr)
    if all(f == 1 for f in factors):
        return x
    return upscale_tensor(x, factors, method)


def score(sr: Tensor, hr: Tensor, data_range: Tensor, ssim_gaussian: bool) -> dict[str, Tensor]:
    """Per-sample scores ``(N,)`` of ``sr`` against ``hr`` (fp32, ``(N, 1, *spatial)``), one per validation
    metric; ``data_range`` ``(N,)`` is each sample's reference range."""
    sr, hr = sr.float(), hr.float()
    options = MetricOptions(gaussian=ssim_gaussian)
    out = {}
    for spec in validation_metrics():
        assert spec.per_sample is not None  # what makes it a validation metric
        out[spec.name] = spec.per_sample(hr, sr, data_range, None, options)
    return out


@dataclass
class _Tally:
    """Per-volume sums of per-sample scores."""

    sums: dict[tuple[str, str], float] = field(default_factory=lambda: defaultdict(float))
    counts: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def add(self, volume_ids: Sequence[str], scores: dict[str, Tensor]) -> None:
        host = {k: v.detach().double().cpu().tolist() for k, v in scores.items()}
        for i, vid in enumerate(volume_ids):
            for k, vals in host.items():
                self.sums[(vid, k)] += vals[i]

    def count(self, volume_ids: Sequence[str]) -> None:
        for vid in volume_ids:
            self.counts[vid] += 1

    def means(self) -> dict[str, float]:
        out = {}
        for k in (s.name for s in validation_metrics()):
            per_volume = [self.sums[(vid, k)] / n for vid, n in self.counts.items()]
            out[k] = sum(per_volume) / len(per_volume) if per_volume else float("nan")
        return out


@dataclass
class ValidationResult:
    """``scores[method][metric]`` (method "model" and each baseline) and rows for the sample grid."""

    scores: dict[str, dict[str, float]]
    grid: list[GridRow]

    def flat(self) -> dict[str, float]:
        return {f"{method}.{metric}": v for method, d in self.scores.items() for metric, v in d.items()}


class Validator:
    """Scores a generator on a fixed validation loader; caches the baselines' scores and images."""

    def __init__(self, loader: Iterable[list[Any]], device: torch.device, baselines: Sequence[str], grid_samples: int,
                 ssim_gaussian: bool):
        self.loader = loader
        self.device = device
        self.baselines = list(baselines)
        self.grid_samples = grid_samples
        self.ssim_gaussian = ssim_gaussian
        self._baseline_scores: dict[str, dict[str, float]] | None = None
        self._baseline_grid: list[Tensor] = []

    @torch.no_grad()
    def __call__(self, model: nn.Module, autocast_dtype: torch.dtype | None = None) -> ValidationResult:
        was_training = model.training
        model.eval()
        first = self._baseline_scores is None
        tally = _Tally()
        base_tallies = {m: _Tally() for m in self.baselines} if first else {}
        grid: list[GridRow] = []
        try:
            for batch in (b for group in self.loader for b in group):
                batch = batch.to(self.device, non_blocking=True)
                with torch.autocast(self.device.type, dtype=autocast_dtype or torch.float32,
                                    enabled=autocast_dtype is not None):
                    sr = model(batch.lr)
                sr = sr.float()
                tally.count(batch.volume_id)
                tally.add(batch.volume_id, score(sr, batch.hr, batch.data_range, self.ssim_gaussian))
                for method, t in base_tallies.items():
                    up = baseline(batch.lr, batch.hr, method)
                    t.count(batch.volume_id)
                    t.add(batch.volume_id, score(up, batch.hr, batch.data_range, self.ssim_gaussian))
                    if method == self.baselines[0] and len(self._baseline_grid) < self.grid_samples:
                        self._baseline_grid.extend(up[: self.grid_samples - len(self._baseline_grid)].cpu())
                for i in range(min(len(batch), self.grid_samples - len(grid))):
                    j = len(grid)
                    base_img = (middle_slice(self._baseline_grid[j]) if j < len(self._baseline_grid)
                                else middle_slice(centre_channel(batch.lr)[i]))
                    grid.append(GridRow(lr=middle_slice(centre_channel(batch.lr)[i]), baseline=base_img,
                                        sr=middle_slice(sr[i]), hr=middle_slice(batch.hr[i]),
                                        label=f"{batch.volume_id[i]}:{batch.slice_index[i]}"))
        finally:
            model.train(was_training)
        if first:
            self._baseline_scores = {m: t.means() for m, t in base_tallies.items()}
        assert self._baseline_scores is not None
        return ValidationResult(scores={"model": tally.means(), **self._baseline_scores}, grid=grid)
