"""Training pairs from a thick-slice scan's own in-plane slices, and a seeded patch sampler.

For each in-plane axis ``q`` (spacing ``d_q``) every in-plane slice is degraded along ``q`` by the scan's
acquisition (:mod:`mrisr.selfsr.simulate`: slices ``S / d_q`` fine voxels apart, profile ``T / d_q`` voxels
thick) and stored with ``q`` as tensor dim ``H`` (dim -2), the other in-plane axis as ``W``: the layout in
which :mod:`mrisr.infer.through_plane` feeds the network (``H`` = the through-plane axis). The fine truth is
a view of the normalised scan (no copy); the degraded slices are one float32 array per axis, so memory is about
twice the scan.

Patches are drawn where the scan has signal (Otsu foreground of the whole scan, :mod:`mrisr.metrics.masks`),
with random flips of ``H`` and ``W`` (the simulation is symmetric), from a ``torch.Generator`` seeded once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from mrisr.errors import InputError
from mrisr.metrics.masks import foreground_mask
from mrisr.selfsr.acquisition import Acquisition
from mrisr.selfsr.simulate import axis_simulation, simulate_axis

#: Stride (fine voxels) of the grid of candidate patch corners.
CANDIDATE_STRIDE = 4


@dataclass(frozen=True)
class PairSet:
    """Degraded/truth in-plane slices of one scan, degraded along one in-plane axis.

    Attributes:
        lr: ``(K, L, W)`` float32: cubic interpolation of the simulated thick slices (``H = L`` the degraded axis).
        hr: ``(K, L, W)`` float32 view: the truth.
        corners: ``(C, 3)`` int64 candidate ``(slice, h0, w0)`` patch corners with foreground in the patch.
        ratio: fine voxels per simulated slice (``L / n_lr``).
        source: where the slices come from (for the model file's record).
    """

    lr: np.ndarray
    hr: np.ndarray
    corners: np.ndarray
    ratio: float
    source: str


def make_pairs(data: np.ndarray, acq: Acquisition, patch: int, source: str = "") -> list[PairSet]:
    """The two :class:`PairSet` of a normalised scan ``data`` ``(X, Y, Z)`` (one per in-plane axis).

    Raises:
        InputError: an in-plane axis is too short for two simulated slices or for a patch.
    """
    vol = np.moveaxis(np.asarray(data, dtype=np.float32), acq.axis, 0)  # (K, A, B): in-plane slices
    fg = np.moveaxis(foreground_mask(data), acq.axis, 0)
    out = []
    for q, (_, d_q) in enumerate(acq.in_plane):
        slices = vol if q == 0 else vol.transpose(0, 2, 1)  # (K, n_q, n_other): H = q
        mask = fg if q == 0 else fg.transpose(0, 2, 1)
        try:
            sim = axis_simulation(slices.shape[1], acq.ratio(d_q), acq.thickness / d_q, acq.profile)
        except ValueError as exc:
            raise InputError(f"{source or 'scan'}: in-plane axis {acq.in_plane[q][0]}: {exc}") from None
        t = torch.from_numpy(np.ascontiguousarray(slices))
        lr, _ = simulate_axis(t, 1, sim)
        hr = slices[:, sim.start:sim.start + sim.length]
        m = mask[:, sim.start:sim.start + sim.length]
        ph, pw = min(patch, hr.shape[1]), min(patch, hr.shape[2])
        if ph < 8 or pw < 8:
            raise InputError(f"{source or 'scan'}: in-plane slices {hr.shape[1:]} are too small for training patches")
        out.append(PairSet(lr.numpy(), hr, _corners(m, ph, pw), sim.ratio, source))
    return out


def _corners(mask: np.ndarray, ph: int, pw: int) -> np.ndarray:
    """Corners on a :data:`CANDIDATE_STRIDE` grid whose ``(ph, pw)`` patch holds foreground (all if none does)."""
    k, h, w = mask.shape
    hs = np.arange(0, h - ph + 1, CANDIDATE_STRIDE)
    ws = np.arange(0, w - pw + 1, CANDIDATE_STRIDE)
    # foreground at the patch's centre region (a quarter of its area) keeps background-only patches out
    ch, cw = ph // 2, pw // 2
    cs = np.cumsum(np.cumsum(np.pad(mask.astype(np.int32), ((0, 0), (1, 0), (1, 0))), 1), 2)
    h0, w0 = hs[:, None] + ph // 4, ws[None, :] + pw // 4
    count = cs[:, h0 + ch, w0 + cw] - cs[:, h0, w0 + cw] - cs[:, h0 + ch, w0] + cs[:, h0, w0]
    kk, ii, jj = np.nonzero(count > 0)
    if kk.size == 0:
        kk, ii, jj = (a.ravel() for a in np.meshgrid(np.arange(k), np.arange(hs.size), np.arange(ws.size),
                                                      indexing="ij"))
    return np.stack([kk, hs[ii], ws[jj]], axis=1).astype(np.int64)


class PatchSampler:
    """Seeded batches of ``(lr, hr)`` patches ``(B, 1, P, P)`` drawn from several :class:`PairSet`.

    A set is chosen with probability proportional to its candidate count, then a candidate uniformly, then
    flips. Everything comes from one ``torch.Generator(seed)``: the same seed gives the same batches.
    """

    def __init__(self, sets: Sequence[PairSet], patch: int, batch: int, seed: int):
        if not sets:
            raise InputError("no training pairs")
        self.sets = list(sets)
        self.patch = patch
        self.batch = batch
        self.gen = torch.Generator().manual_seed(int(seed))
        counts = torch.tensor([len(s.corners) for s in self.sets], dtype=torch.float64)
        self.weights = counts / counts.sum()

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        which = torch.multinomial(self.weights, self.batch, replacement=True, generator=self.gen).tolist()
        picks = torch.rand(self.batch, generator=self.gen).tolist()
        flips = torch.randint(0, 2, (self.batch, 2), generator=self.gen).tolist()
        lrs, hrs = [], []
        for s_idx, u, (fh, fw) in zip(which, picks, flips, strict=True):
            s = self.sets[s_idx]
            k, h0, w0 = (int(v) for v in s.corners[min(int(u * len(s.corners)), len(s.corners) - 1)])
            ph, pw = min(self.patch, s.hr.shape[1]), min(self.patch, s.hr.shape[2])
            lo = s.lr[k, h0:h0 + ph, w0:w0 + pw]
            hi = s.hr[k, h0:h0 + ph, w0:w0 + pw]
            if fh:
                lo, hi = lo[::-1], hi[::-1]
            if fw:
                lo, hi = lo[:, ::-1], hi[:, ::-1]
            lrs.append(_pad(lo, self.patch))
            hrs.append(_pad(hi, self.patch))
        return (torch.from_numpy(np.stack(lrs))[:, None], torch.from_numpy(np.stack(hrs))[:, None])


def _pad(a: np.ndarray, p: int) -> np.ndarray:
    """Reflect-pad a patch from a slice smaller than ``p`` up to ``(p, p)`` (a batch needs one size)."""
    if a.shape == (p, p):
        return np.ascontiguousarray(a)
    return np.pad(a, ((0, p - a.shape[0]), (0, p - a.shape[1])), mode="symmetric")
