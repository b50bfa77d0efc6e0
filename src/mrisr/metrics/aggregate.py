"""Aggregation across volumes: mean, standard deviation and a 95% confidence interval (Student's t).

Metrics are computed per volume first (one number per case), then summarised across cases, so a large
volume does not outweigh a small one and the interval reflects case-to-case variation.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any


def summarise(per_volume_values: Iterable[float]) -> dict[str, Any]:
    """``{"n", "mean", "std", "ci95"}`` of per-volume values.

    ``std`` is the sample standard deviation (``ddof=1``); ``ci95`` is ``[low, high]`` of the mean,
    ``mean -/+ t_{0.975, n-1} * std / sqrt(n)``. With one value ``std`` and ``ci95`` are ``None``.
    Values are used as given (an infinite PSNR of identical images gives an infinite mean).
    """
    from scipy import stats

    vals = [float(v) for v in per_volume_values]
    n = len(vals)
    if n == 0:
        raise ValueError("nothing to summarise")
    mean = math.fsum(vals) / n
    if n == 1:
        return {"n": 1, "mean": mean, "std": None, "ci95": None}
    if not all(math.isfinite(v) for v in vals):
        return {"n": n, "mean": mean, "std": None, "ci95": None}
    std = math.sqrt(math.fsum((v - mean) ** 2 for v in vals) / (n - 1))
    half = float(stats.t.ppf(0.975, n - 1)) * std / math.sqrt(n)
    return {"n": n, "mean": mean, "std": std, "ci95": [mean - half, mean + half]}
