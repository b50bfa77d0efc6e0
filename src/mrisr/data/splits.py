"""Patient-level train/val/test splits: seeded, by fractions or counts, never one patient in two splits."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TypeAlias

import numpy as np

from mrisr.errors import ConfigError

#: The split sizes: a fraction in (0, 1), a count (int >= 0), or "rest" (whatever is left).
SplitSize: TypeAlias = float | int | str

DEFAULT_SPLIT: dict[str, SplitSize] = {"train": 0.8, "val": 0.1, "test": 0.1}


def _split_size(name: str, raw: object) -> SplitSize:
    """One split's size: "rest", a count (int, "64") or a fraction (float <= 1, "0.8", "1.0")."""
    if isinstance(raw, str) and raw.lower() == "rest":
        return "rest"
    try:
        num = float(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ConfigError(f"split.{name}: expected a fraction, a count or 'rest', got {raw!r}") from None
    if num < 0 or not np.isfinite(num):
        raise ConfigError(f"split.{name}: must be >= 0, got {raw!r}")
    if isinstance(raw, int) or (isinstance(raw, str) and raw.strip().isdigit()):
        return int(num)
    if num > 1:
        raise ConfigError(f"split.{name}: a fraction must be <= 1 (write a count without a point), got {raw!r}")
    return num


def parse_split_spec(spec: str | Mapping[str, object]) -> dict[str, SplitSize]:
    """Validate a split spec: ``"train=0.8,val=0.1,test=0.1"``, ``"test=64,val=8,train=rest"`` or a mapping.

    Fractions (floats below 1) and counts (ints) cannot be mixed; at most one split is ``"rest"``.
    With fractions and no ``rest``, the fractions must sum to 1.

    Raises:
        ConfigError: naming the bad entry.
    """
    if isinstance(spec, str):
        items: dict[str, object] = {}
        for part in filter(None, (p.strip() for p in spec.split(","))):
            name, sep, value = part.partition("=")
            if not sep or not name.strip():
                raise ConfigError(f"split: expected NAME=SIZE, got {part!r}")
            items[name.strip()] = value.strip()
    else:
        items = dict(spec)
    if not items:
        raise ConfigError("split: no splits given")
    out: dict[str, SplitSize] = {str(name): _split_size(str(name), raw) for name, raw in items.items()}
    kinds = {type(v) for v in out.values() if v != "rest"}
    if len(kinds) > 1:
        raise ConfigError(f"split: mix of fractions and counts in {items}")
    if sum(v == "rest" for v in out.values()) > 1:
        raise ConfigError("split: at most one split can be 'rest'")
    if kinds == {float} and "rest" not in out.values():
        total = sum(float(v) for v in out.values())
        if abs(total - 1.0) > 1e-6:
            raise ConfigError(f"split: fractions sum to {total:g}, not 1 (or name one split 'rest')")
    return out


def _targets(spec: Mapping[str, SplitSize], total: float) -> dict[str, float]:
    fixed = {k: (float(v) * total if isinstance(v, float) else float(v)) for k, v in spec.items() if v != "rest"}
    return fixed


def assign_splits(
    patients: Sequence[str],
    spec: str | Mapping[str, object],
    seed: int = 0,
    weights: Mapping[str, int] | None = None,
) -> dict[str, str]:
    """Assign every patient to exactly one split.

    Patients are sorted, shuffled with ``seed`` and dealt to the splits in the order of ``spec`` (the
    ``rest`` split last). Without ``weights`` sizes count patients (fractions rounded by largest
    remainder, and every split with a nonzero fraction gets a patient while there are enough). With
    ``weights`` (e.g. images per patient) sizes count weight: a split takes whole patients until it
    holds at least its target; the caller trims a count-sized split to its exact size.

    Returns:
        ``{patient: split_name}``; patients left over by counts without a ``rest`` split are absent
        (unused).

    Raises:
        ConfigError: counts ask for more patients (or, with ``weights``, more images) than there are,
            or leave nothing for the ``rest`` split.
    """
    sizes = parse_split_spec(spec)
    order = sorted(set(patients))
    counted = {k: v for k, v in sizes.items() if isinstance(v, int)}
    if counted:
        have = len(order) if weights is None else sum(weights.get(p, 0) for p in order)
        unit = "patients" if weights is None else "images"
        asked = sum(counted.values())
        rest = [k for k, v in sizes.items() if v == "rest"]
        if asked > have or (rest and 0 < asked >= have):
            want = ", ".join(f"{k}={v}" for k, v in counted.items())
            raise ConfigError(f"split: {want} asks for {asked} {unit} but there are {have}"
                              + (f", leaving none for {rest[0]!r}" if rest and asked <= have else ""))
    rng = np.random.default_rng(seed)
    order = [order[i] for i in rng.permutation(len(order))]
    names = [k for k, v in sizes.items() if v != "rest"] + [k for k, v in sizes.items() if v == "rest"]
    fractional = any(isinstance(v, float) for v in sizes.values())
    if weights is None:
        n = len(order)
        targets = _targets(sizes, n)
        counts = {k: int(np.floor(t)) for k, t in targets.items()}
        if fractional and "rest" not in sizes.values():
            left = n - sum(counts.values())
            by_remainder = sorted(targets, key=lambda k: (counts[k] - targets[k], names.index(k)))
            for k in by_remainder[:left]:
                counts[k] += 1
            # A split asked for (fraction > 0) should not end up empty while another has patients to spare.
            for k in names:
                if counts[k] == 0 and targets[k] > 0:
                    donor = max(counts, key=lambda d: counts[d])
                    if counts[donor] > 1:
                        counts[donor] -= 1
                        counts[k] += 1
        result: dict[str, str] = {}
        i = 0
        for k in names:
            take = n - i if sizes[k] == "rest" else min(counts[k], n - i)
            for p in order[i : i + take]:
                result[p] = k
            i += take
        return result
    total = float(sum(weights.get(p, 0) for p in order))
    targets = _targets(sizes, total)
    result = {}
    i = 0
    last_fixed = names[-1] if "rest" not in sizes.values() else None
    for k in names:
        if sizes[k] == "rest" or (k == last_fixed and fractional):
            if sizes[k] == "rest" and i >= len(order):
                raise ConfigError(f"split: whole patients filling the counted splits leave none for {k!r}")
            for p in order[i:]:
                result[p] = k
            i = len(order)
            break
        acc = 0.0
        while i < len(order) and acc < targets[k]:
            result[order[i]] = k
            acc += weights.get(order[i], 0)
            i += 1
    return result
