"""Peak memory of `mrisr upscale` on a whole scan (target: under 3 GB for 512 x 512 x 300 x2, any method).

Writes a synthetic head phantom of the given shape (MR-like intensities, 1 x 1 x 1.5 mm) to a temporary
folder, then runs `python -m mrisr upscale IN OUT.nii.gz` once per method in a child process (the shipped
default model of the scale and every baseline of :data:`mrisr.degrade.baselines.BASELINES`) and reads that
child's peak resident set size from ``os.wait4`` (``ru_maxrss``, the child alone), with its wall time.

    .venv/bin/python benchmarks/infer_memory.py                     # 512 x 512 x 300, x2, all methods
    .venv/bin/python benchmarks/infer_memory.py --slices 20         # quick run: 512 x 512 x 20
    .venv/bin/python benchmarks/infer_memory.py --methods zerofill,bicubic --slices 300

Peak RSS grows with the slice count only by the input (a float32 copy or two: 1 MiB per 512 x 512 slice)
when the output streams; running the same method at two slice counts shows it.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def default_methods(scale: int = 2) -> tuple[str, ...]:
    """The shipped default model of ``scale`` (``kspace-x2`` for 2), then every baseline."""
    from mrisr.degrade.baselines import BASELINES
    from mrisr.pretrained import default_model

    return (default_model(scale), *BASELINES)


def write_phantom(path: Path, shape: Sequence[int]) -> Path:
    """A head phantom of ``shape`` in [0, 1000] (float32), written slab by slab into an uncompressed NIfTI."""
    import numpy as np

    from mrisr.data.phantoms import head_phantom
    from mrisr.io.stream import placeholder, write_slabs
    from mrisr.io.volume import Volume

    nx, ny, nz = (int(n) for n in shape)
    plane = head_phantom((nx, ny, 1), seed=0)[..., 0] * 1000.0
    profile = np.cos(np.linspace(-1.2, 1.2, nz)).astype(np.float32)  # the head narrows towards its ends
    template = Volume(placeholder((nx, ny, nz)), np.diag([1.0, 1.0, 1.5, 1.0]), {})

    def slabs():  # type: ignore[no-untyped-def]
        for k in range(0, nz, 16):
            stop = min(nz, k + 16)
            yield (slice(None), slice(None), slice(k, stop)), plane[..., None] * profile[None, None, k:stop]

    return write_slabs(path, template, slabs(), whole_bytes=0)


def _run(argv: list[str], env: dict[str, str]) -> tuple[int, float, int, str]:
    """``(peak RSS bytes, wall seconds, exit code, stderr tail)`` of one child process."""
    start = time.perf_counter()
    with tempfile.TemporaryFile(mode="w+") as err:
        proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - start
        err.seek(0)
        tail = err.read()[-300:]
    return int(usage.ru_maxrss) * 1024, wall, proc.returncode, tail


def peak_rss_table(shape: Sequence[int] = (512, 512, 300), scale: int = 2,
                   methods: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Run each method as ``mrisr upscale`` in a child process on a phantom of ``shape``; one row per method.

    Rows: ``method``, ``shape`` (input), ``out_shape``, ``peak_rss_mib`` (the child's peak resident set size),
    ``wall_s``, ``ok`` (exit code 0) and ``error`` (the end of its stderr when it failed). Baselines upscale the
    in-plane axes (0, 1) by ``scale``; models run with ``--scale`` checked.
    """
    from mrisr.degrade.baselines import is_baseline

    methods = tuple(methods) if methods is not None else default_methods(scale)
    rows: list[dict[str, Any]] = []
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with tempfile.TemporaryDirectory(prefix="mrisr-infer-memory-") as tmp:
        src = write_phantom(Path(tmp) / "scan.nii", shape)
        for method in methods:
            out = Path(tmp) / f"{method}.nii.gz"
            how = ["--method", method] if is_baseline(method) else ["--model", method]
            argv = [sys.executable, "-m", "mrisr", "upscale", str(src), str(out), *how, "--scale", str(scale)]
            rss, wall, code, tail = _run(argv, env)
            rows.append({"method": method, "shape": tuple(int(n) for n in shape),
                         "out_shape": (int(shape[0]) * scale, int(shape[1]) * scale, int(shape[2])),
                         "peak_rss_mib": rss / 2**20, "wall_s": wall, "ok": code == 0,
                         "error": "" if code == 0 else tail.strip().splitlines()[-1:]})
            out.unlink(missing_ok=True)
    return rows


def format_table(rows: list[dict[str, Any]], limit_gb: float = 3.0) -> str:
    """The rows as a Markdown table, with each peak against ``limit_gb`` (10^9 bytes)."""
    lines = [f"| method | input | output | peak RSS (MiB) | under {limit_gb:g} GB | wall (s) |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        shape = " x ".join(map(str, r["shape"]))
        out = " x ".join(map(str, r["out_shape"]))
        under = ("yes" if r["peak_rss_mib"] * 2**20 < limit_gb * 1e9 else "no") if r["ok"] else f"failed: {r['error']}"
        lines.append(f"| {r['method']} | {shape} | {out} | {r['peak_rss_mib']:.0f} | {under} | {r['wall_s']:.1f} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slices", type=int, default=300, help="slices of the 512 x 512 phantom (default 300)")
    parser.add_argument("--size", type=int, default=512, help="in-plane size (default 512)")
    parser.add_argument("--scale", type=int, default=2)
    parser.add_argument("--methods", help="comma-separated methods (default: the scale's default model and "
                        "every baseline)")
    args = parser.parse_args(argv)
    methods = [m for m in args.methods.split(",") if m] if args.methods else None
    rows = peak_rss_table((args.size, args.size, args.slices), args.scale, methods)
    print(format_table(rows))
    return 0 if all(r["ok"] for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
