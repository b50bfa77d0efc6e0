"""Evaluation protocols behind ``mrisr evaluate``: score given pairs, or degrade -> upscale -> score.

Both produce *rows*, one per case x degradation x scale x method x region, holding every metric of
:data:`mrisr.metrics.registry.METRICS` (see :mod:`mrisr.metrics.volume`) plus ``data_range``, ``voxels``,
``negative_voxels`` (output voxels below 0: a magnitude image has none), ``mask``, ``seconds`` and a ``note``
(e.g. that only the overlap of two grids was scored); :mod:`mrisr.evaluate.results` summarises, prints and
writes them.

A *region* is a variant of the scoring mask (:func:`mrisr.evaluate.cases.region_masks`): ``whole`` (the mask,
or every voxel without one), and with ``regions=REGIONS`` and a mask also ``interior`` (the mask eroded by
:data:`~mrisr.evaluate.cases.EDGE_WIDTH` voxels) and ``edge`` (the band between). A region that is empty for a
case (a mask thinner than the band) is left out for that case.
"""

from __future__ import annotations

import logging
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mrisr.degrade.baselines import is_baseline, upscale_volume
from mrisr.errors import InputError, MrisrError
from mrisr.evaluate.cases import case_mask, find_cases, grid_overlap, on_reference_grid, region_masks
from mrisr.io import Volume, read_volume
from mrisr.metrics.registry import METRICS, MetricOptions
from mrisr.metrics.volume import score_arrays

log = logging.getLogger(__name__)


@dataclass
class CaseVolumes:
    """One case x degradation x scale with its volumes, handed to an ``on_case`` callback (e.g. a report
    figure) while they are in memory; dropped afterwards, so only one case's volumes are held at a time.

    ``reference``: the (cropped) high-resolution scan; ``lr``: the degraded input (protocol mode) or None
    (pair mode); ``outputs``: method name -> upscaled / test volume on the reference grid; ``mask``: the
    scoring mask or None; ``rows``: this case's result rows (see :func:`mrisr.evaluate.results.columns`).
    """

    case: str
    degradation: str
    scale: int | str
    reference: Volume
    lr: Volume | None
    outputs: dict[str, Volume]
    mask: np.ndarray | None
    rows: list[dict[str, Any]]


OnCase = Callable[[CaseVolumes], None]


@dataclass(frozen=True)
class ScoreOptions(MetricOptions):
    """How volumes are scored (:class:`~mrisr.metrics.registry.MetricOptions`) and on which torch device."""

    device: str = "cpu"

    def settings(self) -> dict[str, object]:
        """The scoring conventions as recorded in ``summary.json`` and the report's provenance."""
        return {"ssim": "gaussian sigma 1.5" if self.gaussian else "uniform 7", "ssim_slice_axis": self.slice_axis,
                "nrmse": self.nrmse_normalization, "data_range": "reference max - min"}


def _score(ref: Volume, test: Volume, mask: np.ndarray | None, opts: ScoreOptions, case: str = "") -> dict[str, Any]:
    try:
        return score_arrays(
            ref.data, test.data, mask, spatial_ndim=len(ref.spatial_shape), gaussian=opts.gaussian,
            nrmse_normalization=opts.nrmse_normalization, slice_axis=opts.slice_axis, device=opts.device,
        )
    except ValueError as exc:  # a constant reference, an empty mask...: the user's data, one line naming the case
        raise InputError(f"{case or 'case'}: cannot score: {exc}") from None


def _region_rows(key: tuple[str, str, int | str, str], ref: Volume, test: Volume, mask: np.ndarray | None,
                 mask_name: str | None, regions: Sequence[str], opts: ScoreOptions, t0: float,
                 note: str = "") -> list[dict[str, Any]]:
    """The rows of one scored volume: the whole mask first, then each other region of ``regions`` that is not
    empty (regions other than ``whole`` need a mask)."""
    case = key[0]
    variants = {"whole": mask} if mask is None else region_masks(mask, len(ref.spatial_shape))
    negative = int(np.count_nonzero(np.asarray(test.data) < 0))
    rows = []
    for region in ("whole", *(r for r in regions if r != "whole")):
        m = variants.get(region)
        if region != "whole" and (m is None or not m.any()):
            continue
        scores = _score(ref, test, m, opts, case)
        rows.append({"case": case, "degradation": key[1], "scale": key[2], "method": key[3], "region": region,
                     **scores, "negative_voxels": negative, "mask": mask_name or "none",
                     "seconds": round(time.perf_counter() - t0, 3), "note": note})
    return rows


def _read(name: str, path: Path, skipped: list[tuple[str, str]] | None) -> Volume | None:
    """``read_volume(path)``; with a ``skipped`` list an unreadable scan is listed there (None) instead of raising."""
    try:
        return read_volume(path)
    except MrisrError as exc:
        if skipped is None:
            raise
        skipped.append((str(path), f"unreadable: {exc}"))
        log.warning("%s: skipped (%s)", name, exc)
        return None


def _cropped(vol: Volume, index: tuple[slice, ...]) -> Volume:
    """``vol`` restricted to ``index`` (spatial slices), its affine's origin moved to the first kept voxel."""
    affine = np.array(vol.affine, dtype=np.float64)
    start = [s.start for s in index] + [0] * (3 - len(index))
    affine[:3, 3] = affine[:3, :3] @ np.asarray(start, dtype=np.float64) + affine[:3, 3]
    return Volume(np.ascontiguousarray(vol.data[index]), affine, vol.meta)


def evaluate_pairs(
    reference: str | Path, test: str | Path, mask: str | None = None, opts: ScoreOptions | None = None,
    method: str = "test",
    on_case: OnCase | None = None,
    *,
    regions: Sequence[str] = ("whole",),
    skipped: list[tuple[str, str]] | None = None,
) -> list[dict[str, Any]]:
    """Score every test case against the reference case of the same name; ``on_case`` sees each pair.

    A test scan on another grid than its reference is scored over the voxels the two share when the affines
    say how they overlap (:func:`~mrisr.evaluate.cases.grid_overlap`: e.g. the output of ``mrisr degrade``'s
    crop); the rows' ``note`` says so. ``regions``: see the module doc. ``skipped``: when given, files of
    the inputs that are not scans, and scans that cannot be read, are appended as ``(path, why)`` instead of
    stopping the evaluation.
    """
    opts = opts or ScoreOptions()
    found_refs, found_tests = find_cases(reference), find_cases(test)
    refs, tests = found_refs.cases, found_tests.cases
    if skipped is not None:
        skipped += found_refs.skipped + found_tests.skipped
    if len(refs) == 1 and len(tests) == 1:
        pairs = [(next(iter(refs)), next(iter(refs.values())), next(iter(tests.values())))]
    else:
        missing = sorted(set(refs) - set(tests))
        extra = sorted(set(tests) - set(refs))
        if extra:
            log.warning("no reference for test case(s): %s", ", ".join(extra))
        if missing:
            raise InputError(f"no test scan for reference case(s): {', '.join(missing)}")
        pairs = [(name, refs[name], tests[name]) for name in refs]
    rows: list[dict[str, Any]] = []
    for name, rp, tp in pairs:
        t0 = time.perf_counter()
        ref, raw = _read(name, rp, skipped), _read(name, tp, skipped)
        if ref is None or raw is None:
            continue
        tst = on_reference_grid(raw, ref.affine)
        m = case_mask(mask, name, ref.data, len(ref.spatial_shape), ref.affine)
        note = ""
        if ref.shape != tst.shape:
            overlap = grid_overlap(ref, tst)
            if overlap is None:
                raise InputError(f"{name}: test shape {tst.shape} differs from reference shape {ref.shape} and "
                                 "their affines do not say how the grids overlap")
            in_ref, in_test = overlap
            note = (f"scored the overlap of the grids: {'x'.join(str(s.stop - s.start) for s in in_ref)} voxels "
                    f"(reference {'x'.join(map(str, ref.shape))}, test {'x'.join(map(str, tst.shape))})")
            log.warning("%s: %s", name, note)
            ref, tst = _cropped(ref, in_ref), _cropped(tst, in_test)
            m = None if m is None else m[in_ref]
        elif not np.allclose(ref.affine, tst.affine, atol=1e-3):
            log.warning("%s: test and reference affines differ (different grids?)", name)
        first = len(rows)
        rows += _region_rows((name, "", "", method), ref, tst, m, mask, regions, opts, t0, note)
        if on_case is not None:
            on_case(CaseVolumes(name, "", "", ref, None, {method: tst}, m, rows[first:]))
    return rows


def _upscaler(method: str, device: str) -> Callable[[Volume, Sequence[int], int], Volume]:
    if is_baseline(method):
        return lambda vol, factors, scale: upscale_volume(vol, factors, method)
    try:
        from mrisr.infer import upscale_with_model
        from mrisr.models.modelfile import load_model_file
    except ImportError as exc:
        raise MrisrError(f"{method!r} is not a baseline and model inference is unavailable ({exc})") from None
    load_model_file(method)  # refuse a pickle, a broken or missing file now, before any case is scored
    return lambda vol, factors, scale: upscale_with_model(vol, method, scale=scale, device=device)


def _chain(spec: str, scale: int | None) -> tuple[int | str, Any]:
    """(scale label, Degradation): ``scale`` fills steps without one (a conflicting step is an error);
    ``None`` keeps the steps' own scales (2 where a step gives none), labelled by the chain's factors."""
    from mrisr.degrade.chain import build_degradation

    if scale is not None:
        return scale, build_degradation(spec, scale=scale)
    deg = build_degradation(spec, default_scale=2)
    factors = sorted({f for f in deg.factors(3) if f > 1}) or [1]
    return (factors[0] if len(factors) == 1 else "x".join(map(str, factors))), deg


def _progress_line(row: dict[str, Any]) -> str:
    """``case spec xS method: PSNR 31.20 dB, SSIM 0.9012`` (the headline metrics of the registry)."""
    scores = ", ".join(s.short(row[s.name]) for s in METRICS.values() if s.headline and row.get(s.name) is not None)
    return f"{row['case']} {row['degradation']} x{row['scale']} {row['method']}: {scores}"


def evaluate_protocol(
    inputs: Sequence[str | Path],
    degradations: Sequence[str],
    scales: Sequence[int | None],
    methods: Sequence[str],
    *,
    seed: int = 0,
    mask: str | None = None,
    opts: ScoreOptions | None = None,
    progress: Callable[[str], None] | None = None,
    on_case: OnCase | None = None,
    regions: Sequence[str] = ("whole",),
    skipped: list[tuple[str, str]] | None = None,
) -> list[dict[str, Any]]:
    """Degrade every input, upscale with each method, score against the (cropped) input.

    ``on_case`` (optional) is called once per case x degradation x scale with its volumes
    (:class:`CaseVolumes`), after all methods ran; only then are that case's outputs kept in memory.
    ``regions``: see the module doc. ``skipped``: as in :func:`evaluate_pairs`.

    Each input is centre-cropped to a multiple of the degradation's factors (the reference is the
    cropped scan), degraded with a per-case seed (``seed`` + CRC32 of the case name, so results do not
    depend on the order of the inputs), upscaled back by the same factors and scored.
    """
    from mrisr.degrade.grid import crop_to_multiple

    opts = opts or ScoreOptions()
    cases: dict[str, Path] = {}
    for inp in inputs:
        found = find_cases(inp)
        if skipped is not None:
            skipped += found.skipped
        for name, path in found.cases.items():
            if name in cases:
                raise InputError(f"two inputs are named {name!r}: {cases[name]} and {path}")
            cases[name] = path
    chains = [(spec, *_chain(spec, s)) for spec in degradations for s in scales]
    upscalers = {m: _upscaler(m, opts.device) for m in methods}
    rows: list[dict[str, Any]] = []
    for name, path in cases.items():
        read = _read(name, path, skipped)
        if read is None:
            continue
        vol = read
        nd = len(vol.spatial_shape)
        case_seed = seed + zlib.crc32(name.encode())
        file_mask = None if mask in (None, "none", "auto") else case_mask(mask, name, vol.data, nd, vol.affine)
        for spec, scale, deg in chains:
            factors = deg.factors(nd)
            hr = crop_to_multiple(vol, factors)
            lr = deg(hr, case_seed)
            if file_mask is None:
                m = case_mask(mask, name, hr.data, nd)
            else:  # cropped like the reference
                m = crop_to_multiple(Volume(file_mask.astype(np.float32), vol.affine), factors).data > 0
            outputs: dict[str, Volume] = {}
            first = len(rows)
            for method in methods:
                t0 = time.perf_counter()
                sr = upscalers[method](lr, factors, max(factors))
                if sr.shape != hr.shape:
                    raise MrisrError(f"{method} returned shape {sr.shape} for {name}, expected {hr.shape}")
                scored = _region_rows((name, spec, scale, method), hr, sr, m, mask, regions, opts, t0)
                rows += scored
                if on_case is not None:
                    outputs[method] = sr
                if progress is not None:
                    progress(_progress_line(scored[0]))
            if on_case is not None:
                on_case(CaseVolumes(name, spec, scale, hr, lr, outputs, m, rows[first:]))
            del outputs
    return rows
