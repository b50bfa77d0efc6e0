"""Cost of mrisr's k-space steps against a plain FFT of the same size, measured in this one process.

For each coarse slice size ``n x n`` and factor ``f`` (default 256 x 256 at x2, and a training batch of
8 x 24 x 24 at x2 with the backward pass), prints the median time of

* ``torch.fft.fft2`` + ``ifft2`` of a complex ``(n f) x (n f)`` image (the floor: any zero-fill needs at
  least that much FFT work);
* :func:`mrisr.degrade.kspace.zerofill_upsample` ``n -> n f``;
* :func:`mrisr.degrade.kspace.kspace_truncate` ``n f -> n`` (magnitude);
* :func:`mrisr.degrade.kspace.data_consistency` on an ``n f`` image with an ``n`` measurement;

and each as a ratio to the floor (with ``backward``, the floor includes its backward pass too).

    .venv/bin/python benchmarks/kspace.py [--threads 1] [--repeats 30]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch

from mrisr.degrade.kspace import data_consistency, kspace_truncate, zerofill_upsample


def median_ms(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up (plans, caches)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times)


def row(label: str, batch: int, n: int, f: int, repeats: int, backward: bool) -> None:
    g = torch.Generator().manual_seed(0)
    lr = torch.rand(batch, 1, n, n, generator=g, requires_grad=backward)
    sr = torch.rand(batch, 1, n * f, n * f, generator=g, requires_grad=backward)
    fine = torch.rand(batch, 1, n * f, n * f, generator=g, requires_grad=backward)

    def run(op: Callable[[], torch.Tensor]) -> Callable[[], object]:
        if not backward:
            return op
        return lambda: op().sum().backward()

    floor = median_ms(run(lambda: torch.fft.ifft2(torch.fft.fft2(fine.to(torch.complex64))).real), repeats)
    ops = {
        "zerofill_upsample": run(lambda: zerofill_upsample(lr, [f, f], [2, 3])),
        "kspace_truncate": run(lambda: kspace_truncate(sr, [f, f], [2, 3])),
        "data_consistency": run(lambda: data_consistency(sr, lr, [f, f], [2, 3])),
    }
    print(f"\n{label}: batch {batch}, {n}x{n} -> {n * f}x{n * f}{' (forward + backward)' if backward else ''}")
    print(f"  fft2 + ifft2 of the fine image (floor): {floor:8.2f} ms")
    for name, fn in ops.items():
        ms = median_ms(fn, repeats)
        print(f"  {name:18s}: {ms:8.2f} ms  = {ms / floor:5.2f}x the floor")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    ap.add_argument("--repeats", type=int, default=30)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    row("inference slice", 1, 256, 2, args.repeats, backward=False)
    row("training batch", 8, 24, 2, max(args.repeats, 100), backward=True)


if __name__ == "__main__":
    main()
