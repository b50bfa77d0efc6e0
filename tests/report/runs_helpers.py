"""Tiny training runs through ``mrisr train`` (seconds on a CPU), for the run and compare reports."""

from __future__ import annotations

from pathlib import Path

import yaml

from mrisr.cli import main
from tests.train.helpers import small_gan

PHASES = [{"name": "sup", "steps": 4, "losses": [{"name": "l1"}]},
          {"name": "gan", "steps": 4, "train": ["generator", "discriminator"],
           "losses": [{"name": "l1"}, {"name": "adversarial", "weight": 0.01}], "adversarial": "vanilla"}]


def tiny_run(root: str, out: Path, lr: float = 1e-3) -> Path:
    """Train the tiny GAN of :func:`tests.train.helpers.small_gan` for 8 steps (validation every 2) into ``out``."""
    raw = small_gan(root, PHASES)
    raw["validation"]["every"] = 2
    raw["run"]["progress"] = "never"
    raw["optim"]["generator"]["optimizer"]["lr"] = lr
    cfg = out.parent / f"{out.name}.yaml"
    cfg.write_text(yaml.safe_dump(raw))
    assert main(["train", str(cfg), "--out", str(out)]) == 0
    return out
