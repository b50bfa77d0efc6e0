"""Phases switch at the right steps and G:D ratios are honoured, counted on the optimisers themselves."""

from __future__ import annotations

import csv
from pathlib import Path

import torch

from mrisr.train.checkpoint import load_state
from mrisr.train.config import config_from_dict
from mrisr.train.loop import train
from tests.train.helpers import adam_steps, small_gan

GAN_LOSSES = [{"name": "l1"}, {"name": "adversarial", "weight": 1e-2}]
PHASES = [
    {"name": "pre", "steps": 5, "train": ["generator"]},
    {"name": "dwarm", "steps": 3, "train": ["discriminator"], "adversarial": "hinge"},
    {"name": "g4d1", "steps": 8, "train": ["generator", "discriminator"], "ratio": "4:1",
     "adversarial": "vanilla", "losses": GAN_LOSSES},
    {"name": "g1d5", "steps": 10, "train": ["generator", "discriminator"], "ratio": "1:5",
     "adversarial": "wgan", "gp_weight": 10.0, "losses": GAN_LOSSES},
]


def test_phases_and_ratios(prepared: dict[str, str], tmp_path: Path) -> None:
    cfg = config_from_dict(small_gan(prepared["data/prepared/pediatric"], PHASES))
    run = train(cfg, out=str(tmp_path / "run"))

    state = load_state(run / "checkpoints/last")
    # pre 5 G; dwarm 3 D; g4d1 8 steps -> 8 G + 2 D; g1d5 10 steps -> 2 G + 10 D
    assert adam_steps(state, "generator") == 5 + 8 + 2
    assert adam_steps(state, "discriminator") == 3 + 2 + 10
    assert state["step"] == 26

    with open(run / "metrics.csv", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["split"] == "train"]
    phase_of = {int(r["step"]): r["phase"] for r in rows}
    assert [phase_of[s] for s in range(1, 27)] == ["pre"] * 5 + ["dwarm"] * 3 + ["g4d1"] * 8 + ["g1d5"] * 10
    # log_every=1: each row holds the losses of the updates made at that step (1-based step numbers)
    g_steps = sorted(int(r["step"]) for r in rows if r["name"] == "g_total")
    d_steps = sorted(int(r["step"]) for r in rows if r["name"] == "d_total")
    assert g_steps == [1, 2, 3, 4, 5, *range(9, 17), 21, 26]
    assert d_steps == [6, 7, 8, 12, 16, *range(17, 27)]
    assert {r["name"] for r in rows if r["phase"] == "g1d5"} >= {"d_gp", "d_adv", "g_adversarial", "g_l1"}
    assert torch.isfinite(torch.tensor([float(r["value"]) for r in rows])).all()
