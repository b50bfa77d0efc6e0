"""Whole scans to files, one at a time or a folder at once: ``mrisr upscale IN OUT``.

* :func:`upscale_file`: read one scan, upscale it with a baseline or a model, stream the output slab by slab
  into its file (:func:`mrisr.io.stream.write_slabs`), so memory stays bounded whatever the slice count.
* Folder batches: :func:`list_scans` finds the scans under a folder (NIfTI files, DICOM series) and names each
  one's output by mirroring its path under the output folder (a DICOM series gives a DICOM series folder, a
  NIfTI file a NIfTI file, unless ``to`` says otherwise); :func:`run_batch` upscales them in order, skipping
  outputs that exist (each output is written atomically, so an output that exists is complete: an interrupted
  batch resumes where it stopped) and going on after a scan that fails; :func:`summary_line` says what
  happened.
* ``torchrun``: with ``WORLD_SIZE > 1`` in the environment, rank ``r`` takes every ``WORLD_SIZE``-th scan of
  the sorted list from the ``r``-th (:func:`shard`); each scan is computed as a single process would, so the
  outputs are the same. The ranks gather their results over ``torch.distributed`` (gloo) at the end, and rank
  0 prints the summary of all of them.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mrisr.errors import ConfigError, InputError, MrisrError
from mrisr.io.volume import Volume

#: Input names read as NIfTI scans in a folder batch (case-insensitive).
NIFTI_SUFFIXES = (".nii.gz", ".nii")
#: Output formats of a folder batch: as the input, or all NIfTI, or all DICOM.
OUTPUT_FORMATS = ("same", "nifti", "dicom")


@dataclass(frozen=True)
class UpscaleOptions:
    """How to upscale: a baseline (``method`` + ``scale`` + ``axes``) or a model (``model`` with ``scale`` checked,
    ``axis``, ``device``); ``model_options`` go to :func:`mrisr.infer.volume.prepare_upscale` as keywords."""

    method: str | None = None
    model: str | None = None
    scale: int | None = None
    axes: str | None = None
    axis: int | None = None
    device: str = "cpu"
    model_options: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        if self.method:
            return f"{self.method} x{self.scale}"
        return f"model {self.model}"


def _stream(vol: Volume, options: UpscaleOptions, progress: bool,
            in_memory: bool) -> tuple[Volume, Iterator[tuple[tuple[Any, ...], Any]], Callable[[], Volume], str]:
    """``(template, slabs, final, how)`` of one upscaling job (see :func:`mrisr.io.stream.write_slabs`)."""
    from mrisr.io.stream import placeholder

    if options.method:
        from mrisr.degrade.baselines import SLAB_BYTES, baseline_slabs
        from mrisr.degrade.grid import axis_factors
        from mrisr.degrade.step import parse_axes, resolve_axes
        from mrisr.io.memory import check_memory, volume_job_bytes
        from mrisr.io.stream import stream_job_bytes

        if options.scale is None:
            raise ConfigError("--scale is required with --method")
        nd = len(vol.spatial_shape)
        axes = resolve_axes(parse_axes(options.axes, "--axes"), nd)
        factors = [round(f) for f in axis_factors(nd, axes, options.scale)]
        out_shape = tuple(n * f for n, f in zip(vol.spatial_shape, factors, strict=True)) + vol.shape[nd:]
        template, slabs = baseline_slabs(vol, factors, options.method)
        what = f"{options.method} upscaling {vol.shape} to {out_shape}"
        if in_memory:
            check_memory(volume_job_bytes(out_shape, vol.shape), what)
        else:
            import math

            from mrisr.degrade.baselines import stream_axis

            axis, _ = stream_axis(factors, options.method)
            frame = math.prod(out_shape[:nd])
            slab = frame if axis is None else min(frame, max(SLAB_BYTES // 4, frame // vol.spatial_shape[axis]))
            check_memory(stream_job_bytes(vol.shape, slab), what)
        if progress:
            from tqdm import tqdm

            slabs = iter(tqdm(slabs, unit="slab", desc="upscale"))
        how = f"{options.method} x{options.scale} on axes {','.join(map(str, axes))}"
        return template, slabs, lambda: template, how
    from mrisr.infer.through_plane import upscale_self_supervised
    from mrisr.infer.volume import prepare_upscale

    if options.model is None:
        raise ConfigError("name --method or --model")
    extra = dict(options.model_options)
    if options.axis is not None:
        extra["axis"] = options.axis
    whole = upscale_self_supervised(vol, options.model, options.scale, options.device, progress, extra)
    if whole is not None:  # a self-supervised through-plane model: its own flow, the output in one piece
        done = whole
        return done.with_data(placeholder(done.shape)), iter([((), done.data)]), lambda: done, f"model {options.model}"
    run = prepare_upscale(vol, options.model, scale=options.scale, device=options.device, in_memory=in_memory,
                          **extra)
    return run.template(), run.slabs(progress), run.template, f"model {options.model}"


def upscale_file(source: str | Path, output: str | Path, options: UpscaleOptions, *, series: str | None = None,
                 force: bool = False, progress: bool = False,
                 adjust: Callable[[Volume], Volume] | None = None) -> tuple[Volume, Volume, Path, str]:
    """Read ``source``, upscale it, write ``output`` slab by slab (atomically).

    Args:
        source: a scan file or DICOM series folder (:func:`mrisr.io.read_volume`).
        output: the output path; its format from its name (:func:`mrisr.io.detect.output_format`).
        options: the method or model.
        series: SeriesInstanceUID to read from a folder holding several.
        force: replace an existing output.
        progress: a progress bar for this scan.
        adjust: applied to the output Volume (placeholder voxels) before it is written, e.g. ``--like``'s
            DICOM headers; called before the work starts (to fail early) and again at the end.

    Returns:
        ``(input volume, output volume with placeholder voxels, path written, how)``.
    """
    from mrisr.io import read_volume
    from mrisr.io.detect import output_format
    from mrisr.io.stream import WHOLE_BYTES, write_slabs

    vol = read_volume(source, series=series)
    fmt = output_format(output)
    in_memory = fmt not in ("nifti", "dicom-folder")
    template, slabs, final, how = _stream(vol, options, progress, in_memory)
    if adjust is not None:
        template = adjust(template)
        done = final

        def final() -> Volume:
            return adjust(done())

    path = write_slabs(output, template, slabs, final=final, force=force, whole_bytes=WHOLE_BYTES)
    return vol, final(), path, how


# ------------------------------------------------------------------------------------------- folder batches
@dataclass(frozen=True)
class Scan:
    """One scan of a folder batch: its name (path relative to the input folder, ``/``-separated), what to read
    (a file, or a folder and the SeriesInstanceUID in it) and the output path."""

    name: str
    source: Path
    output: Path
    series: str | None = None


def is_folder_batch(source: str | Path, series: str | None = None) -> bool:
    """True when ``source`` is a folder of scans rather than one DICOM series: a folder that holds NIfTI
    files, or DICOM images of several series or in sub-folders (no ``--series`` given)."""
    p = Path(source)
    if not p.is_dir() or series is not None:
        return False
    for _root, dirs, files in os.walk(p):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        if any(f.lower().endswith(NIFTI_SUFFIXES) and not f.startswith(".") for f in files):
            return True
    from mrisr.io.dicom.scanning import scan_folder

    found, _ = scan_folder(p)
    dirs_of = {os.path.commonpath([str(f.parent) for f, _ in items]) for items in found.values()}
    return len(found) > 1 or any(Path(d) != p for d in dirs_of)


def _strip_nifti(name: str) -> str:
    for suf in NIFTI_SUFFIXES:
        if name.lower().endswith(suf):
            return name[: -len(suf)]
    return name


def list_scans(source: str | Path, out_dir: str | Path, to: str = "same") -> list[Scan]:
    """The scans under the folder ``source``, sorted by name, with their outputs under ``out_dir``.

    NIfTI files (``.nii``, ``.nii.gz``) are scans; DICOM images are grouped into series
    (:func:`mrisr.io.dicom.scanning.scan_folder`), each series one scan that lives in the deepest folder
    holding all its files. Hidden files and folders, and other files, are left out. Outputs mirror the
    relative paths: ``a/b.nii.gz -> OUT/a/b.nii.gz``; a series in ``a/s1/`` -> the series folder
    ``OUT/a/s1``; a series sharing its folder with another series (or lying in ``source`` itself) gets its
    SeriesInstanceUID as folder name (``OUT/a/UID``). ``to="nifti"`` writes every output as ``.nii.gz``
    (``OUT/a/s1.nii.gz``), ``to="dicom"`` as a series folder (``OUT/a/b``).

    Raises:
        InputError: ``source`` is not a folder, holds no scans, or two scans would write the same output.
    """
    from mrisr.io.dicom.scanning import scan_folder

    root, out = Path(source), Path(out_dir)
    if to not in OUTPUT_FORMATS:
        raise ConfigError(f"unknown output format {to!r}; choose one of {', '.join(OUTPUT_FORMATS)}")
    if not root.is_dir():
        raise InputError(f"{root}: not a folder")
    scans: list[Scan] = []
    for dirpath, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for f in sorted(files):
            if f.startswith(".") or not f.lower().endswith(NIFTI_SUFFIXES):
                continue
            rel = (Path(dirpath) / f).relative_to(root).as_posix()
            target = rel if to == "same" else _strip_nifti(rel) + (".nii.gz" if to == "nifti" else "")
            scans.append(Scan(rel, Path(dirpath) / f, out / target))
    found, _ = scan_folder(root)
    homes = {uid: Path(os.path.commonpath([str(f.parent) for f, _ in items])) for uid, items in found.items()}
    for uid, home in homes.items():
        shared = home == root or sum(h == home for h in homes.values()) > 1
        rel_dir = home.relative_to(root).as_posix()
        rel = rel_dir
        if shared:
            tag = uid or "no-series-uid"
            rel = tag if rel_dir == "." else f"{rel_dir}/{tag}"
        target = rel + ".nii.gz" if to == "nifti" else rel
        scans.append(Scan(rel + "/", home, out / target, series=uid))
    if not scans:
        raise InputError(f"{root}: no NIfTI files or DICOM series found")
    scans.sort(key=lambda s: s.name)
    seen: dict[Path, str] = {}
    for s in scans:
        if s.output in seen:
            raise InputError(f"{seen[s.output]} and {s.name} would both be written to {s.output}; "
                             "rename one or choose another output format")
        seen[s.output] = s.name
    return scans


def shard(scans: list[Scan], rank: int, world: int) -> list[Scan]:
    """The scans rank ``rank`` of ``world`` processes takes: every ``world``-th from the ``rank``-th."""
    return scans[rank::world]


@dataclass(frozen=True)
class Ranks:
    """This process's place in a ``torchrun`` job (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``; 0, 1, 0 alone)."""

    rank: int = 0
    world: int = 1
    local: int = 0

    @classmethod
    def from_env(cls) -> Ranks:
        try:
            world = int(os.environ.get("WORLD_SIZE", "1"))
            rank = int(os.environ.get("RANK", "0"))
            local = int(os.environ.get("LOCAL_RANK", str(rank)))
        except ValueError as exc:
            raise ConfigError(f"WORLD_SIZE, RANK and LOCAL_RANK must be integers ({exc})") from None
        if world < 1 or not 0 <= rank < world:
            raise ConfigError(f"RANK {rank} is not one of the WORLD_SIZE {world} processes")
        return cls(rank, world, local)


def rank_device(device: str, ranks: Ranks) -> str:
    """The device of this rank: ``cuda:LOCAL_RANK`` (modulo the GPUs there are) for ``cuda`` / ``auto`` in a
    multi-process job with GPUs, else ``device`` as given."""
    if ranks.world > 1 and device in ("cuda", "auto"):
        import torch

        if torch.cuda.is_available():
            return f"cuda:{ranks.local % torch.cuda.device_count()}"
    return device


@dataclass
class BatchResult:
    """What a batch did, scan by scan: names upscaled, names skipped (output exists), ``(name, reason)`` failed."""

    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)

    def merged(self, others: list[BatchResult]) -> BatchResult:
        out = BatchResult()
        for r in [self, *others]:
            out.done += r.done
            out.skipped += r.skipped
            out.failed += r.failed
        out.done.sort()
        out.skipped.sort()
        out.failed.sort()
        return out


def summary_line(result: BatchResult) -> str:
    """``upscaled 7, skipped 2, failed 1 (scan3.nii.gz: <reason>)``."""
    line = f"upscaled {len(result.done)}, skipped {len(result.skipped)}, failed {len(result.failed)}"
    if result.failed:
        line += " (" + "; ".join(f"{name}: {why}" for name, why in result.failed) + ")"
    return line


def _reason(exc: BaseException) -> str:
    from mrisr.io.memory import is_out_of_memory
    from mrisr.io.messages import one_line

    if isinstance(exc, MrisrError):
        return one_line(exc)
    if is_out_of_memory(exc):
        return f"out of memory ({one_line(exc)})"
    return f"unexpected {type(exc).__name__}: {one_line(exc)}"


def run_batch(scans: list[Scan], options: UpscaleOptions, *, force: bool = False, progress: bool = False,
              echo: Callable[[str], None] | None = None) -> BatchResult:
    """Upscale ``scans`` one after the other; existing outputs are skipped (unless ``force``), a scan that fails
    is recorded with its reason and the batch goes on. ``echo`` gets one line per scan written."""
    result = BatchResult()
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(scans), unit="scan", desc="batch", position=0)
    try:
        for scan in scans:
            if not force and (scan.output.exists() or scan.output.is_symlink()):
                result.skipped.append(scan.name)
            else:
                start = time.perf_counter()
                try:
                    vol, out, path, how = upscale_file(scan.source, scan.output, options, series=scan.series,
                                                       force=force, progress=progress)
                except (KeyboardInterrupt, SystemExit):
                    raise
                except Exception as exc:  # a scan that fails does not stop the batch
                    result.failed.append((scan.name, _reason(exc)))
                else:
                    result.done.append(scan.name)
                    if echo is not None:
                        echo(f"wrote {path}: {how}; shape {vol.shape} -> {out.shape} "
                             f"({time.perf_counter() - start:.1f} s)")
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return result


def gather_results(result: BatchResult, ranks: Ranks) -> BatchResult:
    """All ranks' results merged (every rank gets them), over a gloo process group; alone: ``result``."""
    if ranks.world == 1:
        return result
    import datetime

    import torch.distributed as dist

    own = not dist.is_initialized()
    if own:
        # a long batch: ranks may finish hours apart, so the gather waits as long as it must
        dist.init_process_group("gloo", timeout=datetime.timedelta(days=7))
    try:
        parts: list[Any] = [None] * ranks.world
        dist.all_gather_object(parts, (result.done, result.skipped, result.failed))
    finally:
        if own:
            dist.destroy_process_group()
    others = [BatchResult(list(d), list(s), [tuple(f) for f in fl]) for d, s, fl in parts]  # type: ignore[misc]
    return BatchResult().merged(others)


def progress_wanted(flag: bool) -> bool:
    """Progress bars: when asked for, or when stderr is a terminal."""
    return flag or sys.stderr.isatty()
