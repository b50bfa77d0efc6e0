"""Phase schedule: phase boundaries, G:D update patterns, learning-rate factors."""

from __future__ import annotations

import math

import pytest

from mrisr.errors import ConfigError
from mrisr.train.config import PhaseConfig, SchedulerConfig
from mrisr.train.schedule import Schedule, lr_factor, parse_ratio, updates_at


def phases() -> list[PhaseConfig]:
    return [
        PhaseConfig("g_pretrain", steps=100),
        PhaseConfig("d_warmup", steps=20, train=["discriminator"]),
        PhaseConfig("ped", epochs=2.5, train=["generator", "discriminator"], ratio="4:1"),
        PhaseConfig("wgan", steps=60, train=["generator", "discriminator"], ratio="1:5"),
    ]


def test_phase_boundaries() -> None:
    s = Schedule(phases(), steps_per_epoch=lambda i: 8)  # phase 2: 2.5 epochs of 8 steps = 20 steps
    assert [(sp.start, sp.end) for sp in s] == [(0, 100), (100, 120), (120, 140), (140, 200)]
    assert s.total_steps == 200
    assert [s.at(k).phase.name for k in (0, 99, 100, 119, 120, 139, 140, 199)] == [
        "g_pretrain", "g_pretrain", "d_warmup", "d_warmup", "ped", "ped", "wgan", "wgan"]
    with pytest.raises(IndexError):
        s.at(200)


@pytest.mark.parametrize(("ratio", "pattern"), [
    ("1:1", [(True, True)]),
    ("4:1", [(True, False)] * 3 + [(True, True)]),
    ("1:5", [(False, True)] * 4 + [(True, True)]),
    ("2:3", [(False, True), (True, True), (True, True)]),
])
def test_update_patterns(ratio: str, pattern: list[tuple[bool, bool]]) -> None:
    r = parse_ratio(ratio)
    assert [updates_at(r, k) for k in range(len(pattern) * 3)] == pattern * 3


def test_counts_follow_the_ratio_in_every_phase() -> None:
    s = Schedule(phases(), steps_per_epoch=lambda i: 8)
    counts = {sp.phase.name: [0, 0] for sp in s}
    for step in range(s.total_steps):
        sp = s.at(step)
        g, d = sp.updates(step)
        counts[sp.phase.name][0] += g
        counts[sp.phase.name][1] += d
    assert counts == {"g_pretrain": [100, 0], "d_warmup": [0, 20], "ped": [20, 5], "wgan": [12, 60]}


@pytest.mark.parametrize("bad", ["4", "0:1", "a:b", "4:1:1", ""])
def test_bad_ratios(bad: str) -> None:
    with pytest.raises(ConfigError, match=r"phases\.0\.ratio"):
        parse_ratio(bad, "phases.0.ratio")


def test_lr_factors() -> None:
    assert lr_factor(SchedulerConfig(), 100)(57) == 1.0
    step = lr_factor(SchedulerConfig(name="step", step_size=10, gamma=0.5), 100)
    assert [step(k) for k in (0, 9, 10, 25)] == [1.0, 1.0, 0.5, 0.25]
    multi = lr_factor(SchedulerConfig(name="multistep", milestones=[5, 8], gamma=0.1), 100)
    assert [multi(k) for k in (4, 5, 8)] == pytest.approx([1.0, 0.1, 0.01])
    cos = lr_factor(SchedulerConfig(name="cosine", eta_min_factor=0.1), 101)
    assert cos(0) == pytest.approx(1.0) and cos(50) == pytest.approx(0.55, abs=0.01) and cos(101) == pytest.approx(0.1)
    warm = lr_factor(SchedulerConfig(name="cosine", warmup_steps=10), 110)
    assert warm(0) == pytest.approx(0.1) and warm(9) == pytest.approx(1.0)
    assert warm(60) == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.5)))
    lin = lr_factor(SchedulerConfig(name="linear", total_steps=10), 1000)
    assert lin(5) == pytest.approx(0.5) and lin(20) == pytest.approx(0.0)
