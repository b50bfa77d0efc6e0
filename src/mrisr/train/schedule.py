"""The phase schedule: which phase a step belongs to, which networks update on it, and the learning rate.

A *step* is one batch. Phases follow each other; a phase's length is given in steps or in epochs of
its own training data (converted with that data's steps per epoch). Within a phase, the G:D ratio
decides on which steps each network updates (see :func:`updates_at`). Learning rates are pure
functions of the global step, so a resumed run needs no scheduler state.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from mrisr.errors import ConfigError
from mrisr.train.config import PhaseConfig, SchedulerConfig

_RATIO = re.compile(r"^\s*(\d+)\s*:\s*(\d+)\s*$")


def parse_ratio(text: str, key: str = "ratio") -> tuple[int, int]:
    """``"G:D"`` -> (g, d), both >= 1 (updates of G and of D per cycle of ``max(g, d)`` steps)."""
    m = _RATIO.match(text)
    if not m:
        raise ConfigError(f"{key}: expected 'G:D' such as '1:1', '4:1' or '1:5', got {text!r}")
    g, d = int(m.group(1)), int(m.group(2))
    if g < 1 or d < 1:
        raise ConfigError(f"{key}: both sides of {text!r} must be >= 1")
    return g, d


def updates_at(ratio: tuple[int, int], step_in_phase: int) -> tuple[bool, bool]:
    """Whether (G, D) update on this step of a phase training both networks.

    The cycle is ``max(g, d)`` steps; G updates on the last ``g`` steps of each cycle and D on the last
    ``d``. So "4:1" gives G,G,G,G+D (D once per 4 G updates) and "1:5" gives D,D,D,D,D+G (5 critic
    updates per G update, G after the critic). Counting over any whole number of cycles gives exactly
    the ratio.
    """
    g, d = ratio
    cycle = max(g, d)
    pos = step_in_phase % cycle
    return pos >= cycle - g, pos >= cycle - d


@dataclass(frozen=True)
class PhaseSpan:
    """Phase ``index`` covers global steps ``[start, end)``."""

    index: int
    phase: PhaseConfig
    start: int
    end: int
    ratio: tuple[int, int] = (1, 1)

    @property
    def length(self) -> int:
        return self.end - self.start

    def trains(self, role: str) -> bool:
        return role in self.phase.train

    def updates(self, step: int) -> tuple[bool, bool]:
        """(update G, update D) at global ``step`` (which must lie in this phase)."""
        train_g, train_d = self.trains("generator"), self.trains("discriminator")
        if train_g and train_d:
            return updates_at(self.ratio, step - self.start)
        return train_g, train_d


class Schedule:
    """Phases laid out on the global step axis."""

    def __init__(self, phases: Sequence[PhaseConfig], steps_per_epoch: Callable[[int], int]):
        """``steps_per_epoch(i)``: batches in one epoch of phase ``i``'s training data (only asked for
        phases whose length is in epochs)."""
        spans = []
        start = 0
        for i, ph in enumerate(phases):
            if ph.steps is not None:
                length = ph.steps
            else:
                assert ph.epochs is not None
                length = max(1, round(ph.epochs * steps_per_epoch(i)))
            spans.append(PhaseSpan(i, ph, start, start + length, parse_ratio(ph.ratio, f"phases.{i}.ratio")))
            start += length
        self.spans: list[PhaseSpan] = spans
        self.total_steps = start

    def at(self, step: int) -> PhaseSpan:
        """The phase containing global ``step`` (0-based)."""
        for span in self.spans:
            if span.start <= step < span.end:
                return span
        raise IndexError(f"step {step} is outside the schedule (0..{self.total_steps - 1})")

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.spans)

    def __len__(self) -> int:
        return len(self.spans)


def lr_factor(cfg: SchedulerConfig, total_steps: int) -> Callable[[int], float]:
    """The learning-rate multiplier as a function of the global step (0-based)."""
    horizon = cfg.total_steps or total_steps
    warm = cfg.warmup_steps
    floor = cfg.eta_min_factor

    def base(step: int) -> float:
        if cfg.name == "constant":
            return 1.0
        if cfg.name == "step":
            return cfg.gamma ** (step // max(1, cfg.step_size))
        if cfg.name == "multistep":
            return cfg.gamma ** sum(1 for m in cfg.milestones if step >= m)
        if cfg.name == "exponential":
            return cfg.gamma ** (step / max(1, cfg.step_size))
        t = min(1.0, max(0, step - warm) / max(1, horizon - warm))
        if cfg.name == "cosine":
            return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * t))
        if cfg.name == "linear":
            return 1.0 - (1.0 - floor) * t
        raise ValueError(cfg.name)  # guarded by the config's Literal

    def factor(step: int) -> float:
        f = base(step)
        if warm > 0 and step < warm:
            f *= (step + 1) / warm
        return f

    return factor
