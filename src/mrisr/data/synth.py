"""Synthetic MR contrasts from label maps (the SynthSeg / SynthSR idea), and noisy training targets.

A network trained on one template learns that template's look. Drawing a random image from a label map
instead (random intensity and texture per label, random smooth bias field, random elastic deformation,
random gamma, sometimes an inverted contrast, partial-volume blur, Rician noise) shows it edges and
textures of any contrast, and noise it cannot predict (so it does not learn to paint a smooth image).

Random parameters are drawn first (:func:`draw_synth_params`, a small :class:`SynthParams` record that
can be logged), then :func:`render_synth` is a deterministic function of the labels and those parameters
(the random fields come from the recorded ``field_seed``). :func:`synth_volume` does both.

Pure numpy / scipy. Arrays are 2D or 3D, in array order, any voxel size (``spacing`` in mm). Intensities
of the output are in about [0, 1] (the noise-free image spans [0, 1]; Rician noise adds a little above 1).
SNR is mrisr's definition (:mod:`mrisr.degrade.noise`): mean of the noise-free image over its foreground
divided by the noise sigma; the foreground of a real image is :func:`mrisr.metrics.masks.foreground_mask`,
that of a synthetic one its deformed labels > 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, NamedTuple

import numpy as np
from scipy import ndimage

from mrisr.metrics.masks import foreground_mask

Range = tuple[float, float]


@dataclass(frozen=True)
class SynthRanges:
    """The ranges :func:`draw_synth_params` draws from (uniformly unless said otherwise).

    Attributes:
        intensity: mean intensity of each non-background label, in [0, 1] units.
        background: mean intensity of label 0 (air is dark in MR).
        texture: within-label standard deviation of a smooth random texture, as a fraction of the full
            range (about 1-voxel grain).
        blur_sigma: partial-volume Gaussian blur, sigma in voxels, drawn per axis.
        gamma: exponent applied to the [0, 1]-scaled image, drawn log-uniformly.
        inversion: probability of inverting the contrast (``1 - x`` over the foreground labels; the
            background stays dark), in [0, 1].
        bias: standard deviation of the log of the multiplicative bias field (0.3 = about +-30%).
        bias_grid: control points of the bias field per axis (smooth: a few per axis).
        deform_mm: standard deviation of the elastic displacement, in mm.
        deform_grid: control points of the elastic displacement per axis.
        rotate_deg: largest rotation of the random global affine, in degrees (about one random axis).
        scaling: range of the random global scale factor (isotropic).
        snr: Rician noise SNR (foreground mean / sigma); ``None`` for no noise.
    """

    intensity: Range = (0.05, 1.0)
    background: Range = (0.0, 0.05)
    texture: Range = (0.0, 0.06)
    blur_sigma: Range = (0.0, 1.0)
    gamma: Range = (0.6, 1.6)
    inversion: float = 0.25
    bias: Range = (0.0, 0.3)
    bias_grid: int = 4
    deform_mm: Range = (0.0, 3.0)
    deform_grid: int = 6
    rotate_deg: float = 10.0
    scaling: Range = (0.9, 1.1)
    snr: Range | None = (20.0, 60.0)

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, tuple) and (len(v) != 2 or v[0] > v[1]):
                raise ValueError(f"synth range {f.name}: expected (low, high) with low <= high, got {v}")
        if not 0.0 <= self.inversion <= 1.0:
            raise ValueError(f"synth inversion is a probability in [0, 1], got {self.inversion}")
        if self.gamma[0] <= 0 or (self.snr is not None and self.snr[0] <= 0):
            raise ValueError("synth gamma and snr must be positive")
        if self.bias_grid < 2 or self.deform_grid < 2:
            raise ValueError("synth bias_grid and deform_grid need at least 2 control points per axis")


@dataclass(frozen=True)
class SynthParams:
    """The drawn parameters of one synthetic image (JSON-friendly via :meth:`as_json`).

    Attributes:
        labels: the label values present, ascending (``means``/``stds`` follow this order).
        means: mean intensity per label before gamma / inversion, [0, 1] units.
        stds: texture standard deviation per label, [0, 1] units.
        blur_sigma: partial-volume blur per axis, voxels.
        gamma: exponent on the [0, 1]-scaled image.
        inverted: whether the foreground contrast is inverted.
        bias: standard deviation of the log bias field.
        deform_mm: standard deviation of the elastic displacement, mm.
        rotate_deg: rotation of the global affine, degrees; ``axis`` its unit axis (array order, 3D).
        axis: rotation axis (3D) or ``(0, 0, 1)`` for 2D images (in-plane rotation).
        scaling: global scale factor of the affine.
        snr: Rician noise SNR, or ``None`` for a noise-free image.
        field_seed: seed of the random fields (texture, bias, deformation, noise).
    """

    labels: tuple[int, ...]
    means: tuple[float, ...]
    stds: tuple[float, ...]
    blur_sigma: tuple[float, ...]
    gamma: float
    inverted: bool
    bias: float
    deform_mm: float
    rotate_deg: float
    axis: tuple[float, float, float]
    scaling: float
    snr: float | None
    field_seed: int
    bias_grid: int = 4
    deform_grid: int = 6

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


class NoisyTarget(NamedTuple):
    """A target image with Rician noise: the image (same shape, float32), the drawn SNR and its sigma."""

    image: np.ndarray
    snr: float
    sigma: float


def _uniform(rng: np.random.Generator, r: Range) -> float:
    return float(rng.uniform(r[0], r[1])) if r[1] > r[0] else float(r[0])


def draw_synth_params(labels: np.ndarray, rng: np.random.Generator, ranges: SynthRanges | None = None,
                      **overrides: Any) -> SynthParams:
    """Draw the parameters of one synthetic image of ``labels`` (see :class:`SynthRanges`).

    ``overrides`` replace fields of ``ranges`` (a misspelt name is a ``TypeError``).
    """
    r = replace(ranges or SynthRanges(), **overrides)
    values = tuple(int(v) for v in np.unique(np.asarray(labels)))
    means = [_uniform(rng, r.background if v == 0 else r.intensity) for v in values]
    stds = [_uniform(rng, r.texture) for _ in values]
    draw = rng.standard_normal(3)
    axis = np.array([0.0, 0.0, 1.0]) if labels.ndim == 2 else draw / np.linalg.norm(draw)
    return SynthParams(
        labels=values, means=tuple(means), stds=tuple(stds),
        blur_sigma=tuple(_uniform(rng, r.blur_sigma) for _ in range(labels.ndim)),
        gamma=float(np.exp(_uniform(rng, (float(np.log(r.gamma[0])), float(np.log(r.gamma[1])))))),
        inverted=bool(rng.random() < r.inversion), bias=_uniform(rng, r.bias),
        deform_mm=_uniform(rng, r.deform_mm), rotate_deg=_uniform(rng, (-r.rotate_deg, r.rotate_deg)),
        axis=(float(axis[0]), float(axis[1]), float(axis[2])), scaling=_uniform(rng, r.scaling),
        snr=None if r.snr is None else _uniform(rng, r.snr), field_seed=int(rng.integers(2**31)),
        bias_grid=r.bias_grid, deform_grid=r.deform_grid,
    )


def smooth_field(rng: np.random.Generator, shape: Sequence[int], grid: int, std: float) -> np.ndarray:
    """A smooth random field of ``shape``: ``grid`` control points per axis of ``N(0, std^2)``, cubic-upsampled.

    The cubic-spline upsampling is applied one axis at a time as a small matrix (spline interpolation is
    separable), so the cost is about ``grid`` multiply-adds per output voxel.
    """
    field = rng.standard_normal((grid,) * len(shape)) * std
    for a, n in enumerate(shape):
        weights = ndimage.zoom(np.eye(grid), (n / grid, 1), order=3, mode="nearest", grid_mode=True)
        field = np.moveaxis(np.tensordot(weights, field, axes=([1], [a])), 0, a)
    return np.asarray(field, dtype=np.float32)


def _rotation(axis: Sequence[float], degrees: float) -> np.ndarray:
    """3x3 rotation about a unit ``axis`` (Rodrigues)."""
    k = np.asarray(axis, dtype=np.float64)
    kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    t = np.deg2rad(degrees)
    return np.eye(3) + np.sin(t) * kx + (1 - np.cos(t)) * kx @ kx


def deform_labels(labels: np.ndarray, params: SynthParams, rng: np.random.Generator,
                  spacing: Sequence[float] | None = None) -> np.ndarray:
    """``labels`` warped by the random affine and elastic field of ``params`` (nearest neighbour: order 0).

    The output has the input's shape and only label values present in the input; the global affine turns
    about the array centre. ``spacing`` (mm per voxel, default 1) converts ``deform_mm`` to voxels.
    """
    labels = np.asarray(labels)
    nd = labels.ndim
    sp = np.ones(nd) if spacing is None else np.asarray(spacing, dtype=np.float64)[:nd]
    centre = (np.asarray(labels.shape, dtype=np.float64) - 1) / 2
    rot = _rotation(params.axis, params.rotate_deg)[:nd, :nd] if nd == 3 else _rotation(
        (0.0, 0.0, 1.0), params.rotate_deg)[:2, :2]
    # Output voxel -> input voxel in mm, so rotation is isotropic for anisotropic voxels.
    inverse = np.diag(1 / sp) @ rot.T @ np.diag(sp) / params.scaling
    grid = np.indices(labels.shape, dtype=np.float32).reshape(nd, -1)
    coords = (inverse @ (grid - centre[:, None].astype(np.float32))).astype(np.float32) + centre[:, None]
    for a in range(nd):
        disp = smooth_field(rng, labels.shape, params.deform_grid, params.deform_mm / sp[a])
        coords[a] += disp.reshape(-1)
    out = ndimage.map_coordinates(labels, coords, order=0, mode="nearest")
    return np.asarray(out.reshape(labels.shape), dtype=labels.dtype)


def rician(image: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """``sqrt((x + n1)^2 + n2^2)`` with i.i.d. ``N(0, sigma^2)`` from ``rng`` (numpy twin of ``add_rician``)."""
    if sigma < 0:
        raise ValueError(f"noise sigma must be >= 0, got {sigma}")
    x = np.asarray(image, dtype=np.float32)
    if sigma == 0:
        return x
    n1 = rng.standard_normal(x.shape, dtype=np.float32) * np.float32(sigma)
    n2 = rng.standard_normal(x.shape, dtype=np.float32) * np.float32(sigma)
    return np.sqrt((x + n1) ** 2 + n2**2)


def snr_sigma(image: np.ndarray, snr: float, mask: np.ndarray | None = None) -> float:
    """Noise sigma giving ``snr`` for ``image``: its foreground mean / ``snr``.

    The foreground is ``mask`` when given (a synthetic image knows it: labels > 0), else
    :func:`~mrisr.metrics.masks.foreground_mask` (Otsu; the whole image if it finds none).
    """
    if snr <= 0:
        raise ValueError(f"SNR must be positive, got {snr}")
    a = np.asarray(image, dtype=np.float64)
    fg = foreground_mask(a) if mask is None else np.asarray(mask, dtype=bool)
    return float(abs(a[fg].mean() if fg.any() else a.mean()) / snr)


def render_synth(labels: np.ndarray, params: SynthParams, spacing: Sequence[float] | None = None) -> np.ndarray:
    """The synthetic image of ``labels`` for drawn ``params``: float32, ``labels``' shape, about [0, 1].

    Steps, in order: deform the labels (order 0), intensity + smooth texture per label, partial-volume
    blur, scale to [0, 1], gamma, inversion of the foreground (labels > 0), multiplicative bias field,
    scale to [0, 1], Rician noise at ``params.snr`` (relative to the mean over the deformed labels > 0). Deterministic: the random fields come from
    ``params.field_seed``, the noise last, so ``replace(params, snr=None)`` gives the same image without
    noise.

    Args:
        labels: integer label volume, 2D or 3D; must hold the values ``params.labels`` was drawn for.
        params: from :func:`draw_synth_params` on these labels.
        spacing: voxel size in mm per array axis (default 1 mm); scales the elastic displacement.
    """
    labels = np.asarray(labels)
    if labels.ndim not in (2, 3):
        raise ValueError(f"labels must be 2D or 3D, got shape {labels.shape}")
    rng = np.random.default_rng(params.field_seed)
    drawn_for = np.asarray(params.labels)
    if not np.isin(labels, drawn_for).all():
        raise ValueError("labels hold values the parameters were not drawn for")
    warped = deform_labels(labels, params, rng, spacing)
    index = np.searchsorted(drawn_for, warped)
    texture = ndimage.gaussian_filter(rng.standard_normal(labels.shape).astype(np.float32), 1.0)
    texture /= max(float(texture.std()), 1e-12)
    img = np.asarray(params.means, dtype=np.float32)[index] + np.asarray(params.stds, dtype=np.float32)[index] * texture
    if any(s > 0 for s in params.blur_sigma):
        img = ndimage.gaussian_filter(img, params.blur_sigma, mode="nearest")
    img = _unit(img) ** np.float32(params.gamma)
    fg = warped != 0
    if params.inverted and fg.any():
        lo, hi = float(img[fg].min()), float(img[fg].max())
        img = np.where(fg, lo + hi - img, img)
    img = _unit(img * np.exp(smooth_field(rng, labels.shape, params.bias_grid, params.bias)))
    if params.snr is not None:
        img = rician(img, snr_sigma(img, params.snr, fg), rng)
    return img.astype(np.float32, copy=False)


def _unit(x: np.ndarray) -> np.ndarray:
    """``x`` scaled to [0, 1] by its minimum and maximum (a constant image becomes 0)."""
    x = np.clip(np.asarray(x, dtype=np.float32), 0.0, None)
    lo, hi = float(x.min()), float(x.max())
    return (x - lo) / (hi - lo) if hi > lo else np.zeros_like(x)


def synth_volume(labels: np.ndarray, rng: np.random.Generator, ranges: SynthRanges | None = None,
                 spacing: Sequence[float] | None = None, **overrides: Any) -> np.ndarray:
    """One random synthetic MR image of ``labels``: float32, same shape, about [0, 1].

    :func:`draw_synth_params` then :func:`render_synth`; ``overrides`` replace fields of ``ranges`` (see
    :class:`SynthRanges` for every range and its default), e.g. ``synth_volume(lab, rng, snr=(30, 30))``.
    The same generator state gives the same image.
    """
    return render_synth(labels, draw_synth_params(labels, rng, ranges, **overrides), spacing)


def noisy_target(image: np.ndarray, rng: np.random.Generator, snr_range: Range = (20.0, 60.0)) -> NoisyTarget:
    """``image`` with Rician noise at an SNR drawn uniformly from ``snr_range`` (a real HR scan's noise).

    The SNR is relative to the foreground mean of ``image`` (mrisr's definition), so the noise is in
    ``image``'s intensity units, whatever their range. Returns the noisy image (float32, same shape), the
    SNR and the sigma.
    """
    if snr_range[0] <= 0 or snr_range[0] > snr_range[1]:
        raise ValueError(f"snr_range: expected 0 < low <= high, got {snr_range}")
    snr = _uniform(rng, snr_range)
    sigma = snr_sigma(image, snr)
    return NoisyTarget(rician(image, sigma, rng), snr, sigma)


def tissue_labels(t1: np.ndarray, gm: np.ndarray, wm: np.ndarray, head_levels: int = 3) -> np.ndarray:
    """Tissue label volume from a T1 image and its grey/white-matter probability maps (e.g. MNI152).

    Labels: 0 background (air), 1 CSF, 2 grey matter, 3 white matter, and ``4 .. 3 + head_levels``
    non-brain head tissue (scalp, fat, muscle, bone marrow) split by T1 intensity quantiles, so a synthetic
    image has a head around the brain. Intracranial = grey + white matter > 0.5, closed and hole-filled
    (ventricles and sulci); there the largest of CSF = 1 - GM - WM, GM and WM wins.

    Args:
        t1: T1 image, any intensity units; background near 0.
        gm, wm: probability maps of the same shape, in [0, 1] or scaled (e.g. uint8 0-255: divided by
            their maximum).
        head_levels: how many intensity classes the non-brain head tissue gets.

    Returns:
        uint8 array of ``t1``'s shape.
    """
    t1 = np.asarray(t1, dtype=np.float32)
    g = np.asarray(gm, dtype=np.float32)
    w = np.asarray(wm, dtype=np.float32)
    if not t1.shape == g.shape == w.shape:
        raise ValueError(f"t1, gm and wm must have one shape, got {t1.shape}, {g.shape}, {w.shape}")
    g = g / max(float(g.max()), 1e-12)
    w = w / max(float(w.max()), 1e-12)
    brain = (g + w) > 0.5
    intracranial = ndimage.binary_fill_holes(ndimage.binary_closing(brain, iterations=3))
    head = ndimage.binary_fill_holes(t1 > 0.1 * float(np.percentile(t1, 99))) | intracranial
    out = np.zeros(t1.shape, dtype=np.uint8)
    tissue = np.stack([np.clip(1 - g - w, 0, 1), g, w])
    out[intracranial] = 1 + np.argmax(tissue[:, intracranial], axis=0).astype(np.uint8)
    outer = head & ~intracranial
    if outer.any():
        edges = np.quantile(t1[outer], np.linspace(0, 1, head_levels + 1)[1:-1])
        out[outer] = 4 + np.searchsorted(edges, t1[outer]).astype(np.uint8)
    return out


def subdivide(tissue: np.ndarray, parcels: np.ndarray) -> np.ndarray:
    """Tissue labels split by an atlas's parcels on the same grid: more labels, one anatomy.

    ``tissue * K + parcel`` with ``K = max(parcels) + 1``, where ``parcel`` is 0 outside the atlas; the
    background (tissue 0) stays 0 whatever the atlas says, so air stays air. int32, ``tissue``'s shape.
    """
    t = np.asarray(tissue).astype(np.int32)
    p = np.asarray(parcels).astype(np.int32)
    if t.shape != p.shape:
        raise ValueError(f"tissue and parcels must have one shape, got {t.shape} and {p.shape}")
    if p.min(initial=0) < 0 or t.min(initial=0) < 0:
        raise ValueError("labels must be non-negative")
    k = int(p.max(initial=0)) + 1
    return np.where(t > 0, t * k + p, 0).astype(np.int32)
