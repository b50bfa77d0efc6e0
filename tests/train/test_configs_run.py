"""Every shipped config runs end to end on the synthetic patients (tiny networks, two steps per phase)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch

from mrisr.models.modelfile import load_model_file
from mrisr.train.config import config_from_dict, load_config
from mrisr.train.loop import train
from tests.train.helpers import SHIPPED, read_raw, shrink


def test_the_shipped_configs_exist() -> None:
    names = {p.stem for p in SHIPPED}
    assert {"pediatric_srgan_x2", "cardiac_srgan_x3", "cardiac_wgan3d_x2",
            "recommended_x2", "recommended_x3", "recommended_x4"} <= names


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_shipped_config_runs(path: Path, prepared: dict[str, str], vgg19_env: Path, tmp_path: Path) -> None:
    load_config(path)  # the file as shipped validates
    cfg = config_from_dict(shrink(read_raw(path), prepared))
    run = train(cfg, out=str(tmp_path / "run"))

    for rel in ("config.yaml", "metrics.csv", "summary.json", "checkpoints/last/COMPLETE",
                "checkpoints/best/COMPLETE", "plots/losses_generator.png"):
        assert (run / rel).is_file(), rel
    assert list((run / "samples").glob("val_step*.png"))
    assert list((run / "tensorboard").glob("events.out.tfevents.*"))
    if cfg.model.discriminator is not None:
        assert (run / "plots/losses_discriminator.png").is_file()

    with open(run / "metrics.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    val = {r["name"] for r in rows if r["split"] == "val"}
    for method in ("model", *cfg.validation.baselines):
        assert {f"{method}.psnr", f"{method}.ssim", f"{method}.nrmse"} <= val
    phases_logged = [r["phase"] for r in rows if r["split"] == "train"]
    assert sorted(set(phases_logged), key=phases_logged.index) == [p.name for p in cfg.phases]

    # The checkpoint's generator is an ordinary model file that rebuilds and runs.
    model, meta = load_model_file(run / "checkpoints/best/generator.safetensors")
    assert meta["arch"] == cfg.model.generator.name
    x = torch.rand((1, 1, 4, 8, 8) if cfg.data.dims == 3 else (1, 1, 8, 8))
    with torch.no_grad():
        assert torch.isfinite(model(x)).all()
    summary = json.loads((run / "summary.json").read_text())
    assert summary["steps"] == sum(p.steps or 0 for p in cfg.phases)


def test_anisotropic_3d_training_runs(prepared: dict[str, str], tmp_path: Path) -> None:
    # thick slices (through-plane degradation) + an anisotropic 3D generator: the dataset's 3D samples
    # put the slice axis last, where the 3D networks put their through-plane factor
    raw = shrink(read_raw(next(p for p in SHIPPED if p.stem == "cardiac_wgan3d_x2")), prepared)
    raw["data"]["degradation"] = "slice:scale=2"
    raw["model"]["generator"]["args"]["anisotropic"] = True
    run = train(config_from_dict(raw), out=str(tmp_path / "run"))
    model, meta = load_model_file(run / "checkpoints" / "last" / "generator.safetensors")
    assert tuple(meta["factors"]) == (1, 1, 2)
    assert model(torch.rand(1, 1, 8, 8, 4)).shape == (1, 1, 8, 8, 8)
