"""A GAN run starts from a supervised run's generator; a phase fine-tunes on a second dataset."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from mrisr.errors import ConfigError
from mrisr.train.config import config_from_dict
from mrisr.train.loop import train
from tests.train.helpers import small_gan


def test_init_from_supervised_run_then_finetune_on_heart_crops(prepared: dict[str, str], tmp_path: Path) -> None:
    full, heart = prepared["data/prepared/cardiac_full"], prepared["data/prepared/cardiac_heart"]
    sup = train(config_from_dict(small_gan(full, [{"name": "sup", "steps": 3}])), out=str(tmp_path / "sup"))
    g_sup = load_file(str(sup / "checkpoints/best/generator.safetensors"))

    phases = [
        # The critic warms up against the initialised generator: G must stay exactly as loaded.
        {"name": "critic", "steps": 2, "train": ["discriminator"], "adversarial": "hinge"},
        {"name": "heart", "steps": 3, "train": ["generator", "discriminator"], "adversarial": "hinge",
         "losses": [{"name": "l1"}, {"name": "adversarial", "weight": 0.01}],
         "data": {"root": heart, "patch_size": 16}},
    ]
    raw = small_gan(full, phases, init={"generator": str(sup)}, checkpoint={"every": 2})
    gan = train(config_from_dict(raw), out=str(tmp_path / "gan"))

    with open(gan / "metrics.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    epochs = {r["phase"]: float(r["epoch"]) for r in rows if r["split"] == "train"}
    assert epochs["heart"] >= 1.0  # the second dataset starts a new epoch
    val_hr = {r["phase"] for r in rows if r["split"] == "val"}
    assert val_hr == {"critic", "heart"}  # validated at both phase ends (on each phase's val split)
    g_end = load_file(str(gan / "checkpoints/last/generator.safetensors"))
    assert any(not torch.equal(g_end[k], g_sup[k]) for k in g_sup)  # G trained on the heart crops

    # The same run with a critic-only second phase ends with the loaded generator untouched.
    short = train(config_from_dict(raw, ["phases.1.steps=1", "phases.1.train=[discriminator]"]),
                  out=str(tmp_path / "short"))
    g_short = load_file(str(short / "checkpoints/last/generator.safetensors"))
    assert all(torch.equal(g_short[k], g_sup[k]) for k in g_sup)


def test_init_errors_name_the_key(prepared: dict[str, str], tmp_path: Path) -> None:
    raw = small_gan(prepared["data/prepared/pediatric"], [{"name": "sup", "steps": 1}],
                    init={"generator": str(tmp_path / "missing")})
    with pytest.raises(ConfigError, match=r"init\.generator"):
        train(config_from_dict(raw), out=str(tmp_path / "x"))


def test_existing_low_resolution_twins_and_patch_only_degradation(tmp_path: Path) -> None:
    from mrisr.data.example import make_example_data
    from mrisr.data.prepare import prepare_dataset

    split = {"train": 1, "val": 1, "test": 1}
    ex = make_example_data(tmp_path / "raw", n_patients=3, seed=0, pediatric_shape=(64, 64, 6), cardiac=False,
                           bad_inputs=False)
    # the same scans prepared at half the size stand in for acquired low-resolution twins
    folders = {name: str(prepare_dataset(ex["pediatric"], tmp_path / name, split=split, resize=size)["out"])
               for name, size in (("hr", None), ("lr", 32))}
    paired = small_gan(folders["hr"], [{"name": "sup", "steps": 2}], data={"lr_root": folders["lr"]})
    run = train(config_from_dict(paired), out=str(tmp_path / "paired"))
    assert (run / "checkpoints/last/COMPLETE").is_file()

    margin = small_gan(folders["hr"], [{"name": "sup", "steps": 2}], data={"degrade_margin": 4})
    run = train(config_from_dict(margin), out=str(tmp_path / "margin"))
    assert (run / "checkpoints/last/COMPLETE").is_file()
