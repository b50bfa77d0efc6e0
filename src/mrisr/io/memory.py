"""Memory a job may use: what the machine has free, what a job will need, and the check between the two.

A job under the voxel limit (:mod:`mrisr.io.limits`) can still need more memory than the machine has;
its peak, not its output, is what counts. Jobs estimate their peak before they allocate and
:func:`check_memory` refuses them with one line naming both numbers. What the estimate misses, torch's
allocator reports as a ``RuntimeError``; :func:`is_out_of_memory` recognises it so the CLI prints the same
one-line out-of-memory error instead of an unexpected one.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

from mrisr.errors import MrisrError

#: Peak bytes of a whole-volume job per byte of its float32 output, and per byte of its float32 input:
#: the output array, its normalised / clipped-excess / interpolated copies and the zero-fill baseline's
#: complex spectrum (measured 1.8x to 5.4x the output for the baselines, up to 5.8x for models).
OUTPUT_FACTOR = 6
INPUT_FACTOR = 3

#: Environment variable capping the memory mrisr assumes is available (bytes, or with a K/M/G/T suffix).
LIMIT_ENV = "MRISR_MEMORY_LIMIT"

_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}

#: Messages of torch / CUDA allocation failures (``RuntimeError`` rather than ``MemoryError``).
_ALLOC_FAILURES = ("DefaultCPUAllocator", "alloc_cpu.cpp", "can't allocate memory", "out of memory",
                   "Cannot allocate memory")


def format_bytes(n: float) -> str:
    """``1536 -> "1.5 KiB"`` (binary units, three significant digits)."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.3g} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    raise AssertionError("unreachable")


def _parse_size(text: str) -> int:
    t = text.strip().upper().removesuffix("B").removesuffix("I")
    unit = t[-1:] if t[-1:] in _UNITS and not t[-1:].isdigit() else ""
    try:
        return int(float(t[: len(t) - len(unit)]) * _UNITS[unit])
    except ValueError:
        raise MrisrError(f"{LIMIT_ENV}={text!r}: expected a size such as 8G or 512M") from None


def _cgroup_free() -> int | None:
    """Bytes left under a cgroup v2 memory limit (containers), or ``None`` without one."""
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        used = Path("/sys/fs/cgroup/memory.current").read_text().strip()
    except OSError:
        return None
    if limit == "max":
        return None
    try:
        return max(0, int(limit) - int(used))
    except ValueError:
        return None


def available_bytes() -> int | None:
    """Memory a new allocation can get now: ``MemAvailable`` of ``/proc/meminfo`` (else free physical pages
    from ``os.sysconf``), at most what a cgroup limit leaves and at most ``$MRISR_MEMORY_LIMIT``;
    ``None`` when the platform tells nothing."""
    found: list[int] = []
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                found.append(int(line.split()[1]) * 1024)
                break
    except (OSError, ValueError, IndexError):
        pass
    if not found:
        try:
            found.append(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
        except (ValueError, OSError, AttributeError):
            pass
    cgroup = _cgroup_free()
    if cgroup is not None:
        found.append(cgroup)
    limit = os.environ.get(LIMIT_ENV)
    if limit:
        found.append(_parse_size(limit))
    return min(found) if found else None


def volume_job_bytes(out_shape: Sequence[int], in_shape: Sequence[int]) -> int:
    """Estimated peak bytes of a whole-volume job (upscaling, a baseline) from its output and input shapes
    (voxels, float32): :data:`OUTPUT_FACTOR` x the output + :data:`INPUT_FACTOR` x the input."""
    return 4 * (OUTPUT_FACTOR * math.prod(int(n) for n in out_shape) + INPUT_FACTOR * math.prod(int(n) for n in in_shape))


def check_memory(need: int, what: str) -> None:
    """Refuse a job whose estimated peak ``need`` (bytes) exceeds :func:`available_bytes`.

    Raises:
        MrisrError: one line: what, how much it needs, how much is available.
    """
    have = available_bytes()
    if have is not None and need > have:
        raise MrisrError(f"out of memory: {what} needs about {format_bytes(need)}, but only {format_bytes(have)} "
                         "is available (use a smaller input or scale, fewer slices per batch, or a larger machine)")


def is_out_of_memory(exc: BaseException) -> bool:
    """True for a ``MemoryError`` and for the ``RuntimeError`` torch raises when an allocation fails."""
    if isinstance(exc, MemoryError):
        return True
    return isinstance(exc, RuntimeError) and any(s in str(exc) for s in _ALLOC_FAILURES)
