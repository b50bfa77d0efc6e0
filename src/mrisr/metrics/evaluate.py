"""Evaluation protocols behind ``mrisr evaluate``: score given pairs, or degrade -> upscale -> score.

Both produce *rows* (one per case x degradation x scale x method, with the metrics of
:mod:`mrisr.metrics.volume`), then a *summary* per (degradation, scale, method) with mean, std and 95% CI
across cases (:func:`mrisr.metrics.aggregate.summarise`), printed as a table with the baselines first.

Inputs are files or folders. A folder whose entries include scan files (``.nii``, ``.nii.gz``, ``.npy``,
``.png``, ``.tif``) or sub-folders holds one case per entry (sub-folders are DICOM series), named by the
file name without extension; any other folder is one DICOM series.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mrisr.errors import InputError, MrisrError
from mrisr.io import Volume, read_volume
from mrisr.io.atomic import atomic_write_text, check_output
from mrisr.metrics.aggregate import summarise
from mrisr.metrics.masks import foreground_mask
from mrisr.metrics.volume import METRICS, score_arrays

log = logging.getLogger(__name__)

SCAN_SUFFIXES = (".nii.gz", ".nii", ".npy", ".png", ".tif", ".tiff")
COLUMNS = ("case", "degradation", "scale", "method", *METRICS, "data_range", "voxels", "mask", "seconds")


@dataclass
class CaseVolumes:
    """One case x degradation x scale with its volumes, handed to an ``on_case`` callback (e.g. a report
    figure) while they are in memory; dropped afterwards, so only one case's volumes are held at a time.

    ``reference``: the (cropped) high-resolution scan; ``lr``: the degraded input (protocol mode) or None
    (pair mode); ``outputs``: method name -> upscaled / test volume on the reference grid; ``mask``: the
    scoring mask or None; ``rows``: this case's result rows (see :data:`COLUMNS`).
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
class ScoreOptions:
    """How volumes are scored (see :func:`mrisr.metrics.volume.score_arrays`)."""

    gaussian: bool = False
    nrmse_normalization: str = "euclidean"
    slice_axis: int = 2
    device: str = "cpu"


def case_name(path: Path) -> str:
    name = path.name
    for suf in (*SCAN_SUFFIXES, ".dcm"):
        if name.lower().endswith(suf):
            return name[: -len(suf)]
    return name


def list_cases(path: str | Path) -> dict[str, Path]:
    """Cases under ``path`` (see module doc), by name."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: no such file or folder")
    if p.is_file():
        return {case_name(p): p}
    entries = sorted(e for e in p.iterdir() if not e.name.startswith("."))
    scans = [e for e in entries if e.is_dir() or e.name.lower().endswith(SCAN_SUFFIXES)]
    if not scans:
        return {p.name: p}  # a DICOM series folder
    cases: dict[str, Path] = {}
    for e in scans:
        name = case_name(e)
        if name in cases:
            raise InputError(f"two scans named {name!r} in {p}: {cases[name].name} and {e.name}")
        cases[name] = e
    return cases


def on_reference_grid(vol: Volume, ref_affine: np.ndarray) -> Volume:
    """``vol`` with its voxel axes permuted/flipped into the layout of ``ref_affine`` when that maps it onto the
    same grid (a DICOM series read back in the opposite slice order, a NIfTI saved RAS vs LPS...), else as is.

    Scores compare voxel by voxel, so two files of the same grid stored in different axis orders must be
    brought into one layout first; otherwise a perfect result scores like noise.
    """
    if len(vol.spatial_shape) != 3 or np.allclose(vol.affine, ref_affine, atol=1e-3):
        return vol
    from nibabel.orientations import apply_orientation, inv_ornt_aff, io_orientation, ornt_transform

    t = ornt_transform(io_orientation(vol.affine), io_orientation(ref_affine))
    affine = vol.affine @ inv_ornt_aff(t, vol.spatial_shape)
    if not np.allclose(affine, ref_affine, atol=1e-3):
        return vol
    return Volume(np.ascontiguousarray(apply_orientation(vol.data, t)), affine, vol.meta)


def _mask_for(mask: str | None, case: str, reference: np.ndarray, spatial: int,
              ref_affine: np.ndarray | None = None) -> np.ndarray | None:
    """None, the automatic foreground of the reference, or a mask file (folder: matched by case name)."""
    if mask is None or mask == "none":
        return None
    if mask == "auto":
        return foreground_mask(reference)
    path = Path(mask) if Path(mask).is_file() else list_cases(mask).get(case)
    if path is None:
        raise InputError(f"no mask named {case!r} in {mask}")
    mvol = read_volume(path)
    data = (mvol if ref_affine is None else on_reference_grid(mvol, ref_affine)).data
    if data.shape != reference.shape and data.shape != reference.shape[:spatial]:
        raise InputError(f"mask {path} has shape {data.shape}, the reference {reference.shape}")
    return data > 0


def _score(ref: Volume, test: Volume, mask: np.ndarray | None, opts: ScoreOptions, case: str = "") -> dict[str, Any]:
    try:
        return score_arrays(
            ref.data, test.data, mask, spatial_ndim=len(ref.spatial_shape), gaussian=opts.gaussian,
            nrmse_normalization=opts.nrmse_normalization, slice_axis=opts.slice_axis, device=opts.device,
        )
    except ValueError as exc:  # a constant reference, an empty mask...: the user's data, one line naming the case
        raise InputError(f"{case or 'case'}: cannot score: {exc}") from None


def evaluate_pairs(
    reference: str | Path, test: str | Path, mask: str | None = None, opts: ScoreOptions | None = None,
    method: str = "test",
    on_case: OnCase | None = None,
) -> list[dict[str, Any]]:
    """Score every test case against the reference case of the same name; ``on_case`` sees each pair."""
    import time

    opts = opts or ScoreOptions()
    refs, tests = list_cases(reference), list_cases(test)
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
    rows = []
    for name, rp, tp in pairs:
        t0 = time.perf_counter()
        ref = read_volume(rp)
        tst = on_reference_grid(read_volume(tp), ref.affine)
        if ref.shape != tst.shape:
            raise InputError(f"{name}: test shape {tst.shape} differs from reference shape {ref.shape}")
        if not np.allclose(ref.affine, tst.affine, atol=1e-3):
            log.warning("%s: test and reference affines differ (different grids?)", name)
        m = _mask_for(mask, name, ref.data, len(ref.spatial_shape), ref.affine)
        scores = _score(ref, tst, m, opts, name)
        rows.append({"case": name, "degradation": "", "scale": "", "method": method, **scores,
                     "mask": mask or "none", "seconds": round(time.perf_counter() - t0, 3)})
        if on_case is not None:
            on_case(CaseVolumes(name, "", "", ref, None, {method: tst}, m, rows[-1:]))
    return rows


def _upscaler(method: str, device: str) -> Callable[[Volume, Sequence[int], int], Volume]:
    from mrisr.degrade.baselines import BASELINES, upscale_volume

    if method in BASELINES:
        return lambda vol, factors, scale: upscale_volume(vol, factors, method)
    try:
        from mrisr.infer import upscale_with_model
    except ImportError as exc:
        raise MrisrError(f"{method!r} is not a baseline and model inference is unavailable ({exc})") from None
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
) -> list[dict[str, Any]]:
    """Degrade every input, upscale with each method, score against the (cropped) input.

    ``on_case`` (optional) is called once per case x degradation x scale with its volumes
    (:class:`CaseVolumes`), after all methods ran; only then are that case's outputs kept in memory.

    Each input is centre-cropped to a multiple of the degradation's factors (the reference is the
    cropped scan), degraded with a per-case seed (``seed`` + CRC32 of the case name, so results do not
    depend on the order of the inputs), upscaled back by the same factors and scored.
    """
    import time

    from mrisr.degrade.grid import crop_to_multiple

    opts = opts or ScoreOptions()
    cases: dict[str, Path] = {}
    for inp in inputs:
        for name, path in list_cases(inp).items():
            if name in cases:
                raise InputError(f"two inputs are named {name!r}: {cases[name]} and {path}")
            cases[name] = path
    chains = [(spec, *_chain(spec, s)) for spec in degradations for s in scales]
    upscalers = {m: _upscaler(m, opts.device) for m in methods}
    rows: list[dict[str, Any]] = []
    for name, path in cases.items():
        vol = read_volume(path)
        nd = len(vol.spatial_shape)
        case_seed = seed + zlib.crc32(name.encode())
        file_mask = None if mask in (None, "none", "auto") else _mask_for(mask, name, vol.data, nd, vol.affine)
        for spec, scale, deg in chains:
            factors = deg.factors(nd)
            hr = crop_to_multiple(vol, factors)
            lr = deg(hr, case_seed)
            if file_mask is None:
                m = _mask_for(mask, name, hr.data, nd)
            else:  # cropped like the reference
                m = crop_to_multiple(Volume(file_mask.astype(np.float32), vol.affine), factors).data > 0
            outputs: dict[str, Volume] = {}
            first = len(rows)
            for method in methods:
                t0 = time.perf_counter()
                sr = upscalers[method](lr, factors, max(factors))
                if sr.shape != hr.shape:
                    raise MrisrError(f"{method} returned shape {sr.shape} for {name}, expected {hr.shape}")
                scores = _score(hr, sr, m, opts, name)
                row = {"case": name, "degradation": spec, "scale": scale, "method": method, **scores,
                       "mask": mask or "none", "seconds": round(time.perf_counter() - t0, 3)}
                rows.append(row)
                if on_case is not None:
                    outputs[method] = sr
                if progress is not None:
                    progress(f"{name} {spec} x{scale} {method}: PSNR {row['psnr']:.2f} dB, SSIM {row['ssim']:.4f}")
            if on_case is not None:
                on_case(CaseVolumes(name, spec, scale, hr, lr, outputs, m, rows[first:]))
            del outputs
    return rows


def summarise_rows(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per (degradation, scale, method), in first-seen order, with a summary per metric."""
    groups: dict[tuple[Any, Any, Any], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["degradation"], r["scale"], r["method"]), []).append(r)
    out = []
    for (deg, scale, method), rs in groups.items():
        entry: dict[str, Any] = {"degradation": deg, "scale": scale, "method": method, "n": len(rs)}
        for metric in METRICS:
            vals = [r[metric] for r in rs if r.get(metric) is not None]
            entry[metric] = summarise(vals) if vals else None
        out.append(entry)
    return out


def _fmt(s: dict[str, Any] | None, digits: int) -> str:
    if s is None:
        return "-"
    text = f"{s['mean']:.{digits}f}"
    if s["std"] is not None:
        text += f" ± {s['std']:.{digits}f}"
    return text


def format_table(summary: Sequence[dict[str, Any]]) -> str:
    """Markdown table: one row per (degradation, scale, method), metrics as ``mean ± std``."""
    show3d = any(e["ssim3d"] is not None for e in summary)
    head = ["degradation", "scale", "method", "n", "PSNR (dB)", "SSIM", *(["SSIM-3D"] if show3d else []), "NRMSE"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * 3 + ["--:"] * (len(head) - 3)) + "|"]
    for e in summary:
        cells = [e["degradation"] or "-", f"x{e['scale']}" if e["scale"] else "-", e["method"], str(e["n"]),
                 _fmt(e["psnr"], 2), _fmt(e["ssim"], 4), *([_fmt(e["ssim3d"], 4)] if show3d else []),
                 _fmt(e["nrmse"], 4)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_results(out_dir: str | Path, rows: Sequence[dict[str, Any]], summary: Sequence[dict[str, Any]],
                  settings: dict[str, Any], force: bool = False) -> tuple[Path, Path]:
    """Write ``per_case.csv`` and ``summary.json`` into ``out_dir`` (atomically, refusing to overwrite)."""
    out = Path(out_dir)
    csv_path, json_path = out / "per_case.csv", out / "summary.json"
    for p in (csv_path, json_path):
        check_output(p, force)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(COLUMNS), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in COLUMNS})
    atomic_write_text(csv_path, buf.getvalue(), force=force)
    text = json.dumps(_finite({"settings": settings, "results": list(summary)}), indent=2, allow_nan=False)
    atomic_write_text(json_path, text + "\n", force=force)
    return csv_path, json_path


def _finite(o: Any) -> Any:
    """JSON-safe copy: numpy scalars as Python numbers, NaN/inf (e.g. PSNR of identical images) as null."""
    if isinstance(o, dict):
        return {k: _finite(v) for k, v in o.items()}
    if isinstance(o, list | tuple):
        return [_finite(v) for v in o]
    if isinstance(o, np.generic):
        o = o.item()
    if isinstance(o, float) and not np.isfinite(o):
        return None
    return o
