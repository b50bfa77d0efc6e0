"""A run whose loss or weights turn NaN/Inf stops with a one-line error and never checkpoints them."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from mrisr.models.modelfile import load_model_file
from mrisr.train import loop
from mrisr.train.checkpoint import find_checkpoint, load_state
from mrisr.train.config import config_from_dict
from tests.train.helpers import small_gan

SUP = [{"name": "sup", "steps": 6, "losses": [{"name": "l1"}]}]


def test_nan_loss_stops_the_run_and_keeps_the_last_good_checkpoint(prepared: dict[str, str], tmp_path: Path) -> None:
    raw = small_gan(prepared["data/prepared/pediatric"], SUP)
    cfg = config_from_dict(raw, ["optim.generator.optimizer.lr=1e30", "validation.every=1", "run.log_every=3"])
    with pytest.raises(loop.TrainingDiverged, match=r"^training diverged at step \d+ \(phase 'sup'\): .*NaN/Inf"):
        loop.train(cfg, out=str(tmp_path / "run"))
    last = find_checkpoint(tmp_path / "run", "last")
    assert last is not None and load_state(last)["step"] < 6
    model, _ = load_model_file(last / "generator.safetensors")  # refuses NaN weights
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert (tmp_path / "run" / "metrics.csv").is_file()  # a diverged run is kept for inspection


def test_nan_weights_are_never_saved(prepared: dict[str, str], tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    real_step = loop.train_step

    def poisoning_step(run, *args, **kwargs):  # type: ignore[no-untyped-def]
        out = real_step(run, *args, **kwargs)
        with torch.no_grad():
            next(run.nets.g_plain.parameters()).fill_(float("nan"))  # losses of this step are still finite
        return out

    monkeypatch.setattr(loop, "train_step", poisoning_step)
    cfg = config_from_dict(small_gan(prepared["data/prepared/pediatric"], SUP), ["phases.0.steps=1"])
    with pytest.raises(loop.TrainingDiverged, match="generator weight"):
        loop.train(cfg, out=str(tmp_path / "run"))
    assert find_checkpoint(tmp_path / "run", "last") is None
