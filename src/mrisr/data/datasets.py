"""PyTorch datasets over a prepared folder: HR slices/patches with their low-resolution twin made on the fly.

Randomness (all reproducible from ``seed``, independent of ``num_workers`` and of the sampler):

- degradation: a generator seeded by ``(seed, epoch, volume)`` -- every slice and patch of a volume
  gets the same randomly drawn degradation parameters within an epoch (the scanner protocol is a
  property of the scan, not of the slice), new ones each epoch. Noise realisations are drawn from a
  generator seeded by ``(seed, epoch, volume, frame, slice, channel)``, so they differ between slices.
  An SNR refers to the foreground mean of the whole prepared volume (before intensity augmentation), so
  one scan has one noise sigma, as in an acquisition, not a sigma scaled to each slice's content.
- crop position and augmentation: seeded by ``(seed, epoch, index)``.

Call :meth:`SRDataset.set_epoch` at the start of every epoch (as with ``DistributedSampler``); the epoch
lives in shared memory, so persistent workers see it too.

Order of operations per sample: HR slice (+ context slices) -> geometric augmentation (flips, rot90)
and intensity augmentation (gamma, gain) of the HR -> degradation -> aligned crop of the LR/HR pair.
Augmenting the HR *before* degrading keeps the pair faithful to the degradation (e.g. the block
operator's "lower-left pixel" stays lower-left).
"""

from __future__ import annotations

import hashlib
import inspect
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch.utils.data import Dataset

from mrisr.data.manifest import Manifest, load_manifest
from mrisr.data.samples import Sample
from mrisr.data.slices import to_stack_order, to_volume_order
from mrisr.errors import ConfigError


class ArrayDegradation(Protocol):
    """What the dataset needs of a degradation (``mrisr.degrade.chain.Degradation`` provides it)."""

    def factors(self, ndim: int) -> tuple[int, ...]: ...

    def apply_array(self, x: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, dict[str, Any]]: ...


def as_degradation(spec: str | Mapping[str, Any] | Sequence[Any] | ArrayDegradation) -> ArrayDegradation:
    """A degradation object from a spec string/dict/list (``mrisr.degrade.chain``) or an object as is."""
    if hasattr(spec, "apply_array"):
        return spec  # type: ignore[return-value]
    from mrisr.degrade.chain import build_degradation

    return build_degradation(spec)  # type: ignore[arg-type]


def _key(text: str) -> int:
    """A stable 32-bit integer for a string (Python's hash() is salted per process)."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=4).digest(), "little")


def _sizes(value: int | Sequence[int] | None, n: int, name: str) -> tuple[int, ...] | None:
    if value is None:
        return None
    sizes = (int(value),) * n if isinstance(value, int | np.integer) else tuple(int(v) for v in value)
    if len(sizes) != n or min(sizes) <= 0:
        raise ConfigError(f"{name}: expected a positive integer or {n} of them, got {value!r}")
    return sizes


class _PreparedDataset(Dataset[Sample]):
    """What both datasets share: memmaps opened lazily in each (worker) process, the epoch in shared
    memory, and the augmentation (drawn from the sample's generator, applied to HR and LR alike)."""

    patch_size: tuple[int, ...] | None
    factors: tuple[int, ...]
    gamma_range: tuple[float, float]
    gain_range: tuple[float, float]

    def _init_shared(self) -> None:
        self._epoch = torch.zeros((), dtype=torch.int64).share_memory_()
        self._arrays: dict[object, np.ndarray] = {}
        self._pid = os.getpid()

    def set_epoch(self, epoch: int) -> None:
        """New degradation parameters, crops and augmentations for this epoch (call before iterating)."""
        self._epoch.fill_(int(epoch))

    @property
    def epoch(self) -> int:
        return int(self._epoch.item())

    def _open(self, key: object, path: Path) -> np.ndarray:
        if os.getpid() != self._pid:  # a forked worker: its own file handles
            self._arrays, self._pid = {}, os.getpid()
        arr = self._arrays.get(key)
        if arr is None:
            arr = self._arrays[key] = np.load(path, mmap_mode="r")
        return arr

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_arrays": {}}

    def _draw_augmentation(self, region: np.ndarray, rng: np.random.Generator) -> dict[str, Any]:
        flips = [ax for ax in range(1, region.ndim) if rng.random() < 0.5]
        # A quarter turn swaps H and W: fine when a square patch is cut afterwards or the image is square.
        h, w = region.shape[-2:]
        square_out = self.patch_size[-1] == self.patch_size[-2] if self.patch_size else h == w
        rot = int(rng.integers(4)) if square_out and self.factors[-1] == self.factors[-2] else 0
        gamma = float(math.exp(rng.uniform(math.log(self.gamma_range[0]), math.log(self.gamma_range[1]))))
        gain = float(rng.uniform(*self.gain_range))
        return {"flip": flips, "rot90": rot, "gamma": round(gamma, 4), "gain": round(gain, 4)}

    @staticmethod
    def _geometric(region: np.ndarray, aug: dict[str, Any]) -> np.ndarray:
        """Flips and quarter turns (views, no copy)."""
        if aug["flip"]:
            region = np.flip(region, axis=tuple(aug["flip"]))
        if aug["rot90"]:
            region = np.rot90(region, aug["rot90"], axes=(region.ndim - 2, region.ndim - 1))
        return region

    @staticmethod
    def _intensity(x: np.ndarray, aug: dict[str, Any]) -> np.ndarray:
        """``clip(gain * x**gamma, 0, 1)`` in place (pointwise: applied only to the pixels used)."""
        np.power(x, aug["gamma"], out=x)
        x *= aug["gain"]
        return np.clip(x, 0.0, 1.0, out=x)


class SRDataset(_PreparedDataset):
    """Samples (:class:`~mrisr.data.samples.Sample`) of one split of a prepared folder.

    Args:
        root: folder written by :func:`mrisr.data.prepare.prepare_dataset`.
        split: "train", "val", "test" (any split name of the manifest).
        degradation: spec for :func:`mrisr.degrade.chain.build_degradation` (e.g. ``"bicubic:scale=2"``)
            or an object with ``factors(ndim)`` and ``apply_array(x, rng)``.
        patch_size: HR patch size in pixels (int or per axis; 3D: ``(S, H, W)``, stack order), a multiple of
            the degradation's factors; None for whole slices/volumes (cropped down to a multiple of the factors).
        augment: random flips, rot90 (square patches only) and intensity gamma/gain.
        seed: base seed of all randomness (see the module docstring).
        dims: 2 (slices ``(H, W)``) or 3 (volumes: the prepared 3D patches when the folder has them, else
            every frame's whole stack; cut in stack order ``(S, H, W)``, returned in volume order
            ``(H, W, S)`` with the slicing axis last, see :mod:`mrisr.data.slices`).
        context_slices: 2D only: ``k`` neighbours on each side become extra LR channels (edge slices
            repeat), ``C = 2k + 1``.
        degrade_margin: None (default) degrades the whole slice/volume and crops the pair from it
            (exact for every degradation, k-space included). An integer degrades only the HR patch
            plus this many pixels around it (rounded up to a multiple of the factors, clipped to the
            image), then crops: much faster on large slices, and identical for degradations whose
            reach is within the margin (bicubic x s reaches 2 s pixels, block 0); not for k-space.
        gamma_range, gain_range: intensity augmentation ranges (``hr <- clip(gain * hr**gamma, 0, 1)``).
    """

    def __init__(
        self,
        root: str | Path,
        split: str,
        degradation: str | Mapping[str, Any] | Sequence[Any] | ArrayDegradation,
        patch_size: int | Sequence[int] | None = None,
        augment: bool = False,
        seed: int = 0,
        dims: int = 2,
        context_slices: int = 0,
        *,
        degrade_margin: int | None = None,
        gamma_range: tuple[float, float] = (0.8, 1.25),
        gain_range: tuple[float, float] = (0.9, 1.1),
    ) -> None:
        if dims not in (2, 3):
            raise ConfigError(f"dims: 2 or 3, got {dims!r}")
        if context_slices < 0 or (context_slices and dims != 2):
            raise ConfigError("context_slices: a non-negative number, for dims=2 only")
        self.root = Path(root)
        self.manifest: Manifest = load_manifest(self.root)
        self.split = split
        self.dims = dims
        self.context_slices = int(context_slices)
        self.augment = bool(augment)
        self.seed = int(seed)
        if self.seed < 0:  # numpy's SeedSequence takes non-negative entropy only
            raise ConfigError(f"seed: a non-negative integer, got {seed!r}")
        if degrade_margin is not None and int(degrade_margin) < 0:
            raise ConfigError(f"degrade_margin: None or >= 0, got {degrade_margin!r}")
        self.degrade_margin = None if degrade_margin is None else int(degrade_margin)
        self.gamma_range = gamma_range
        self.gain_range = gain_range
        self.degradation = as_degradation(degradation)
        factors = tuple(int(f) for f in self.degradation.factors(dims))
        if len(factors) != dims:
            raise ConfigError(f"degradation gives {len(factors)} factors for {dims} dims")
        # Degradations give factors in volume order; regions, patch sizes and origins are in stack order.
        self.factors = factors if dims == 2 else to_stack_order(factors)
        accepted = inspect.signature(self.degradation.apply_array).parameters
        self._noise_kw = "noise_rng" in accepted
        self._signal_kw = "signal" in accepted and bool(getattr(self.degradation, "uses_snr", False))
        self._signals: dict[int, float] = {}
        self.patch_size = _sizes(patch_size, dims, "patch_size")
        if self.patch_size is not None:
            bad = [p for p, f in zip(self.patch_size, self.factors, strict=True) if p % f]
            if bad:
                raise ConfigError(f"patch_size {self.patch_size} must be a multiple of the scale factors {self.factors}")
        self.volumes = self.manifest.in_split(split)
        if not self.volumes:
            raise ConfigError(
                f"{self.root}: no volumes in split {split!r} (splits: {', '.join(self.manifest.split_names) or 'none'})"
            )
        self.volume_keys = [_key(v.record.volume_id) for v in self.volumes]
        self.items = self._index()
        self._check_sizes()
        self._init_shared()

    def _check_sizes(self) -> None:
        """Whole slices/volumes (no patch size to pad to) must hold at least one block of the factors."""
        if self.patch_size is not None or not len(self.items):
            return
        small = sorted({self.volumes[int(r[0])].record.volume_id for r in self.items
                        if any(n < f for n, f in zip(r[8 - self.dims:], self.factors, strict=True))})
        if small:
            raise ConfigError(
                f"{len(small)} volume(s) of split {self.split!r} are smaller than the degradation's factors "
                f"{self.factors} ({', '.join(small[:3])}{' ...' if len(small) > 3 else ''}); give a patch_size "
                "(zero-padded) or leave them out of the prepared data"
            )

    # -- index --------------------------------------------------------------------------------------
    def _index(self) -> np.ndarray:
        """Rows ``(volume, t, z0, y0, x0, D, H, W)`` (stack order); 2D rows have ``D = 1`` and ``z0 = s``."""
        rows: list[list[int]] = []
        for i, v in enumerate(self.volumes):
            T, S, H, W = v.record.shape
            if self.dims == 2:
                rows.extend([i, t, s, 0, 0, 1, H, W] for t, s in v.slices)
            elif v.patches3d:
                pd, ph, pw = v.record.patch3d or (S, H, W)
                rows.extend([i, t, z, y, x, pd, ph, pw] for t, z, y, x in v.patches3d)
            else:
                rows.extend([i, t, 0, 0, 0, S, H, W] for t in range(T))
        return np.asarray(rows, dtype=np.int64).reshape(-1, 8)

    def __len__(self) -> int:
        return len(self.items)

    def _array(self, i: int) -> np.ndarray:
        return self._open(i, self.root / self.volumes[i].record.file)

    # -- samples ------------------------------------------------------------------------------------
    def _region(self, row: np.ndarray) -> np.ndarray:
        """HR region ``(C, H, W)`` (2D, C context channels) or ``(1, S, H, W)`` (3D, stack order): a view of the memmap
        where possible (copied later, only as far as it is needed)."""
        vi, t, z0, y0, x0, d, h, w = (int(v) for v in row)
        arr = self._array(vi)
        if self.dims == 2:
            k = self.context_slices
            idx = np.clip(np.arange(z0 - k, z0 + k + 1), 0, arr.shape[1] - 1)
            return arr[t, idx] if k else arr[t, z0 : z0 + 1]
        return arr[t, z0 : z0 + d, y0 : y0 + h, x0 : x0 + w][None]

    def _fit(self, region: np.ndarray) -> np.ndarray:
        """Zero-pad up to the patch size, then crop down to a multiple of the factors (bottom/right)."""
        spatial = region.shape[1:]
        want = self.patch_size or spatial
        pad = [(0, 0)] + [(0, max(p - n, 0)) for p, n in zip(want, spatial, strict=True)]
        if any(after for _, after in pad):
            region = np.pad(region, pad)
        keep = tuple(slice(0, n - n % f) for n, f in zip(region.shape[1:], self.factors, strict=True))
        return region[(slice(None), *keep)]

    def _apply(self, x: np.ndarray, vi: int, params_rng: np.random.Generator,
               noise_rng: np.random.Generator) -> tuple[np.ndarray, dict[str, Any]]:
        kw: dict[str, Any] = {}
        if self._noise_kw:  # else a custom object: one generator for everything
            kw["noise_rng"] = noise_rng
        if self._signal_kw:
            kw["signal"] = self._signal(vi)
        return self.degradation.apply_array(x, params_rng, **kw)

    def _signal(self, vi: int) -> float:
        """Foreground mean of volume ``vi`` (all frames, before augmentation): the signal an ``snr`` of
        the degradation refers to, so the noise sigma is one per scan, not one per slice or patch."""
        value = self._signals.get(vi)
        if value is None:
            from mrisr.degrade.noise import foreground_signal

            value = self._signals[vi] = foreground_signal(self._array(vi), max_voxels=1 << 21)
        return value

    def _degrade(self, region: np.ndarray, vi: int, t: int, s: int) -> tuple[np.ndarray, dict[str, Any]]:
        """Degrade every channel of ``region`` (``(C, H, W)`` or ``(1, S, H, W)``; the degradation sees volume order).

        Parameters come from a generator seeded by (seed, epoch, volume): the same for every slice of
        the volume; noise from one seeded by (seed, epoch, volume, frame, slice, channel).
        """
        key = [self.seed, self.epoch, self.volume_keys[vi]]
        outs: list[np.ndarray] = []
        dparams: dict[str, Any] = {}
        for c in range(region.shape[0]):
            x = region[c] if self.dims == 2 else to_volume_order(region[c])
            lr, dparams = self._apply(np.ascontiguousarray(x), vi, np.random.default_rng(key),
                                      np.random.default_rng([*key, t, s, c]))
            lr = np.asarray(lr, dtype=np.float32)
            outs.append(lr if self.dims == 2 else to_stack_order(lr))
        return np.stack(outs), dparams

    def __getitem__(self, index: int) -> Sample:
        row = self.items[index]
        vi, t, z0 = int(row[0]), int(row[1]), int(row[2])
        rec = self.volumes[vi].record
        rng = np.random.default_rng([self.seed, self.epoch, int(index), 0xA06])
        params: dict[str, Any] = {"frame": t}
        region = self._region(row)
        aug = self._draw_augmentation(region, rng) if self.augment else None
        if aug is not None:
            region = self._geometric(region, aug)
            params.update(aug)
        region = self._fit(region)
        spatial = region.shape[1:]
        if self.patch_size is not None:
            origin = [f * int(rng.integers((n - p) // f + 1)) for n, p, f in
                      zip(spatial, self.patch_size, self.factors, strict=True)]
            window = [(o, o + p) for o, p in zip(origin, self.patch_size, strict=True)]
        else:
            origin = [0] * self.dims
            window = [(0, n) for n in spatial]
        params["origin"] = origin
        if self.degrade_margin is None or self.patch_size is None:
            bounds = [(0, n) for n in spatial]
        else:  # the patch plus a margin, on the factors' grid so the pair stays aligned
            m = [-(-self.degrade_margin // f) * f for f in self.factors]
            bounds = [(max(a - mi, 0), min(b + mi, n)) for (a, b), mi, n in zip(window, m, spatial, strict=True)]
        # The only copy of HR pixels: the part that gets degraded.
        source = np.array(region[(slice(None), *(slice(a, b) for a, b in bounds))], dtype=np.float32)
        if aug is not None:
            source = self._intensity(source, aug)
        lr_src, dparams = self._degrade(source, vi, t, z0)
        c = self.context_slices
        # window relative to the source, on the HR and (scaled by the size ratio) on the LR grid
        rel = [(a - lo, b - lo) for (a, b), (lo, _) in zip(window, bounds, strict=True)]
        ratio = [n_lr / n_hr for n_lr, n_hr in zip(lr_src.shape[1:], source.shape[1:], strict=True)]
        hr = source[(slice(c, c + 1), *(slice(a, b) for a, b in rel))]
        lr = lr_src[(slice(None), *(slice(round(a * r), round(b * r)) for (a, b), r in zip(rel, ratio, strict=True)))]
        params["degradation"] = dparams
        if self.dims == 3:  # 3D samples leave in volume order, the slice axis last (mrisr.data.slices)
            lr, hr = to_volume_order(lr), to_volume_order(hr)
        return Sample(
            lr=torch.from_numpy(np.ascontiguousarray(lr, dtype=np.float32)),
            hr=torch.from_numpy(np.ascontiguousarray(hr, dtype=np.float32)),
            volume_id=rec.volume_id,
            slice_index=z0 + (origin[0] if self.dims == 3 else 0),
            data_range=1.0,
            params=params,
        )


class PairedDataset(_PreparedDataset):
    """Pre-degraded pairs: LR images that exist (acquired or degraded elsewhere) next to their HR scans.

    Prepare the HR and the LR folders separately with the same relative file names (so the volume ids
    match) and the same slicing axis, without resize/crop/ROI (the LR grid must stay a whole-number
    fraction of the HR grid): ``mrisr prepare HR_SRC hr/`` and ``mrisr prepare LR_SRC lr/``. Splits come
    from the HR manifest. The scale per in-plane axis is the ratio of the stored shapes (the slice
    count must match).

    Args:
        hr_root, lr_root: the two prepared folders.
        patch_size: HR patch size (a multiple of the scale) or None for whole slices.
        augment: the same flips/rot90 and gamma/gain on both images of a pair.
    """

    def __init__(self, hr_root: str | Path, lr_root: str | Path, split: str,
                 patch_size: int | Sequence[int] | None = None, augment: bool = False, seed: int = 0,
                 gamma_range: tuple[float, float] = (0.8, 1.25), gain_range: tuple[float, float] = (0.9, 1.1)) -> None:
        self.hr_root, self.lr_root = Path(hr_root), Path(lr_root)
        hr = load_manifest(self.hr_root)
        lr = {v.record.volume_id: v for v in load_manifest(self.lr_root).volumes}
        self.volumes = hr.in_split(split)
        if not self.volumes:
            raise ConfigError(f"{self.hr_root}: no volumes in split {split!r}")
        missing = [v.record.volume_id for v in self.volumes if v.record.volume_id not in lr]
        if missing:
            raise ConfigError(f"{self.lr_root}: no low-resolution twin for {', '.join(missing[:5])}")
        self.lr_records = [lr[v.record.volume_id].record for v in self.volumes]
        scales = set()
        for v, r in zip(self.volumes, self.lr_records, strict=True):
            (T, S, H, W), (t, s, h, w) = v.record.shape, r.shape
            if (T, S) != (t, s) or H % h or W % w:
                raise ConfigError(f"{r.volume_id}: LR stack {r.shape} is not a whole-number fraction of HR {v.record.shape}")
            scales.add((H // h, W // w))
        if len(scales) != 1:
            raise ConfigError(f"the pairs have different scales {sorted(scales)}")
        self.factors: tuple[int, int] = scales.pop()
        self.patch_size = _sizes(patch_size, 2, "patch_size")
        if self.patch_size and any(p % f for p, f in zip(self.patch_size, self.factors, strict=True)):
            raise ConfigError(f"patch_size {self.patch_size} must be a multiple of the scale {self.factors}")
        self.augment, self.seed = bool(augment), int(seed)
        self.gamma_range, self.gain_range = gamma_range, gain_range
        self.items = np.asarray([[i, t, s] for i, v in enumerate(self.volumes) for t, s in v.slices],
                                dtype=np.int64).reshape(-1, 3)
        self._init_shared()

    def __len__(self) -> int:
        return len(self.items)

    def _array(self, i: int, low: bool) -> np.ndarray:
        root, rec = (self.lr_root, self.lr_records[i]) if low else (self.hr_root, self.volumes[i].record)
        return self._open((i, low), root / rec.file)

    def __getitem__(self, index: int) -> Sample:
        vi, t, s = (int(v) for v in self.items[index])
        rng = np.random.default_rng([self.seed, self.epoch, int(index), 0xA06])
        fh, fw = self.factors
        hr_img, lr_img = self._array(vi, False)[t, s], self._array(vi, True)[t, s]
        H, W = (lr_img.shape[0] * fh, lr_img.shape[1] * fw)
        ph, pw = self.patch_size or (H, W)
        y = fh * int(rng.integers(max(H - ph, 0) // fh + 1))
        x = fw * int(rng.integers(max(W - pw, 0) // fw + 1))
        hr = np.array(hr_img[y : y + ph, x : x + pw], dtype=np.float32)[None]
        lr = np.array(lr_img[y // fh : (y + ph) // fh, x // fw : (x + pw) // fw], dtype=np.float32)[None]
        params: dict[str, Any] = {"frame": t, "origin": [y, x], "degradation": {"pre_degraded": self.lr_records[vi].source}}
        if self.augment:
            aug = self._draw_augmentation(hr, rng)
            hr, lr = (self._intensity(np.ascontiguousarray(self._geometric(a, aug)), aug) for a in (hr, lr))
            params.update(aug)
        return Sample(torch.from_numpy(np.ascontiguousarray(lr, dtype=np.float32)),
                      torch.from_numpy(np.ascontiguousarray(hr, dtype=np.float32)),
                      self.volumes[vi].record.volume_id, s, 1.0, params)
