"""The one table of image-quality metrics: every metric is declared once, here, as a :class:`MetricSpec`.

Everything that shows, stores or compares metric values iterates over :data:`METRICS` instead of naming
metrics: the volume scores of :func:`mrisr.metrics.volume.score_arrays`, the evaluation table, CSV and JSON
(:mod:`mrisr.evaluate.results`), the HTML report and its figure titles (:mod:`mrisr.report`), training
validation and best-checkpoint selection (:mod:`mrisr.train.validate`) and the check of the training
config's ``validation.metric``. Adding a metric is one :class:`MetricSpec` in :data:`METRICS` (plus its test).

A spec scores in one or two ways:

* ``per_sample(reference, test, data_range, mask, options) -> (N,)`` on batched tensors ``(N, C, *spatial)``
  (2 or 3 spatial dims): used by training validation and by the per-slice scores of the report figures;
* ``volume(pair) -> float | None`` on a whole volume (a :class:`~mrisr.metrics.volume.VolumePair`); when not
  given, the volume score is the mean over time frames of ``per_sample`` (over the frames holding mask
  voxels when there is a mask).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from mrisr.metrics.image import nrmse, psnr, ssim

if TYPE_CHECKING:
    from mrisr.metrics.volume import VolumePair


@dataclass(frozen=True)
class MetricOptions:
    """How the metrics are computed (the same for every method, baseline or model).

    ``gaussian``: Wang et al.'s Gaussian SSIM (sigma 1.5, 11 taps) instead of scikit-image's uniform 7-window.
    ``nrmse_normalization``: ``euclidean``, ``min-max`` or ``mean`` (see :func:`mrisr.metrics.image.nrmse`).
    ``slice_axis``: array axis (0, 1 or 2) of the 2D slices of the slice-wise SSIM of 3D volumes.
    """

    gaussian: bool = False
    nrmse_normalization: str = "euclidean"
    slice_axis: int = 2


#: ``(reference, test, data_range, mask, options) -> (N,)``: tensors ``(N, C, *spatial)``, ``data_range`` a
#: float or an ``(N,)`` tensor (reference max - min), ``mask`` bool broadcastable to the inputs or None.
PerSample = Callable[[torch.Tensor, torch.Tensor, "float | torch.Tensor", "torch.Tensor | None", MetricOptions],
                     torch.Tensor]


@dataclass(frozen=True)
class MetricSpec:
    """One metric: its key, how it is shown and compared, and how it is computed.

    ``name``: the key in result rows, ``per_case.csv``, ``summary.json``, validation scores and
    ``validation.metric``. ``label`` / ``unit``: shown as ``"PSNR (dB)"`` in table heads and ``"PSNR 31.20 dB"``
    in figure titles. ``digits``: decimals everywhere it is printed. ``higher_is_better``: the direction used to
    pick the best method and the best checkpoint. ``description``: one phrase for the report's method note.
    ``headline``: one of the few metrics shown where space is short: the report's panel titles (per slice,
    needs ``per_sample``) and the progress lines of ``mrisr evaluate``.
    ``volume`` may return None where the metric does not apply (e.g. 3D SSIM of a 2D image).
    """

    name: str
    label: str
    unit: str
    digits: int
    higher_is_better: bool
    description: str
    per_sample: PerSample | None = None
    volume: Callable[[VolumePair], float | None] | None = None
    headline: bool = False

    def __post_init__(self) -> None:
        if self.per_sample is None and self.volume is None:
            raise ValueError(f"metric {self.name!r} needs a per_sample or a volume function")
        if self.headline and self.per_sample is None:
            raise ValueError(f"headline metric {self.name!r} needs a per_sample function (figure slices)")

    @property
    def title(self) -> str:
        """Column head, e.g. ``"PSNR (dB)"`` or ``"SSIM"``."""
        return f"{self.label} ({self.unit})" if self.unit else self.label

    @property
    def validated(self) -> bool:
        """Scored by training validation (and so a valid ``validation.metric``)."""
        return self.per_sample is not None

    def short(self, value: float) -> str:
        """``"PSNR 31.20 dB"``, ``"SSIM 0.9012"``; an infinite value (PSNR of identical images) as ``"PSNR inf"``."""
        if math.isinf(value):
            return f"{self.label} {'inf' if value > 0 else '-inf'}"
        return f"{self.label} {value:.{self.digits}f}" + (f" {self.unit}" if self.unit else "")

    def score_volume(self, pair: VolumePair) -> float | None:
        """The score of one volume pair (see module doc)."""
        if self.volume is not None:
            return self.volume(pair)
        assert self.per_sample is not None
        ref, test, mask = pair.masked_frames()
        return float(self.per_sample(ref, test, pair.data_range, mask, pair.options).mean())

    def better(self, value: float, best: float | None) -> bool:
        """True when ``value`` beats ``best`` (any non-NaN value beats None)."""
        if best is None:
            return value == value  # not NaN
        return value > best if self.higher_is_better else value < best


def _psnr(ref: torch.Tensor, test: torch.Tensor, data_range: float | torch.Tensor, mask: torch.Tensor | None,
          options: MetricOptions) -> torch.Tensor:
    return psnr(ref, test, data_range, mask)


def _ssim(ref: torch.Tensor, test: torch.Tensor, data_range: float | torch.Tensor, mask: torch.Tensor | None,
          options: MetricOptions) -> torch.Tensor:
    return ssim(ref, test, data_range, gaussian=options.gaussian, mask=mask)


def _nrmse(ref: torch.Tensor, test: torch.Tensor, data_range: float | torch.Tensor, mask: torch.Tensor | None,
           options: MetricOptions) -> torch.Tensor:
    return nrmse(ref, test, options.nrmse_normalization, mask)


def _slice_ssim(pair: VolumePair) -> float | None:
    return pair.ssim_scores()[0]


def _volume_ssim(pair: VolumePair) -> float | None:
    return pair.ssim_scores()[1]


#: name -> spec, in the order of every table. Tests may add an entry (and remove it afterwards).
METRICS: dict[str, MetricSpec] = {s.name: s for s in (
    MetricSpec("psnr", "PSNR", "dB", 2, True, "over all voxels (or the mask)", per_sample=_psnr, headline=True),
    MetricSpec("ssim", "SSIM", "", 4, True, "2D SSIM per slice along the slice axis, averaged",
               per_sample=_ssim, volume=_slice_ssim, headline=True),
    MetricSpec("ssim3d", "SSIM-3D", "", 4, True, "SSIM with a cubic window over the volume", volume=_volume_ssim),
    MetricSpec("nrmse", "NRMSE", "", 4, False, "over all voxels (or the mask)", per_sample=_nrmse),
)}


def metric(name: str) -> MetricSpec:
    """The spec of ``name``; a ``KeyError`` names the known metrics."""
    try:
        return METRICS[name]
    except KeyError:
        raise KeyError(f"unknown metric {name!r}; known: {', '.join(METRICS)}") from None


def validation_metrics() -> list[MetricSpec]:
    """The metrics training validation scores (those with a ``per_sample`` function), in table order."""
    return [s for s in METRICS.values() if s.validated]


def is_better(name: str, value: float, best: float | None) -> bool:
    """True when ``value`` of metric ``name`` beats ``best`` (see :meth:`MetricSpec.better`)."""
    return metric(name).better(value, best)
