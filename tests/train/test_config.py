"""Typed config: YAML -> dataclasses, overrides with type conversion, errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from mrisr.errors import ConfigError
from mrisr.train.config import TrainConfig, config_from_dict, dump_config, load_config, phase_data

BASE = {
    "data": {"root": "prepared"},
    "model": {"generator": {"name": "srresnet", "args": {"scale": 2}}},
    "phases": [{"name": "sup", "steps": 10, "losses": [{"name": "l1"}]}],
}


def cfg(*overrides: str, **top: object) -> TrainConfig:
    return config_from_dict({**BASE, **top}, overrides)


def test_defaults_and_types() -> None:
    c = cfg()
    assert c.run.seed == 0 and c.data.batch_size == 16 and c.optim.generator.optimizer.name == "adam"
    assert c.phases[0].train == ["generator"] and c.phases[0].losses[0].weight == 1.0


def test_yaml_1e_minus_4_is_a_float(tmp_path: Path) -> None:
    p = tmp_path / "c.yaml"
    p.write_text("data: {root: x}\nmodel: {generator: {name: fast}}\n"
                 "optim: {generator: {optimizer: {lr: 1e-4}}}\nphases: [{name: a, steps: 1}]\n")
    c = load_config(p)
    assert c.optim.generator.optimizer.lr == pytest.approx(1e-4)
    assert isinstance(c.optim.generator.optimizer.lr, float)


def test_overrides_convert_to_the_field_type() -> None:
    c = cfg("optim.generator.optimizer.lr=3e-4", "phases.0.steps=25", "run.deterministic=true",
            "data.patch_size=null", "model.generator.args.n_blocks=4", "optim.generator.optimizer.betas=[0.5, 0.9]",
            "run.name=1.0", "data.degradation=kspace:scale=2;noise:snr=30", "run.progress=never",
            "data.dims=3", "validation.patch_size=[8, 16, 16]")
    assert c.optim.generator.optimizer.lr == pytest.approx(3e-4)
    assert c.phases[0].steps == 25 and c.run.deterministic is True and c.data.patch_size is None
    assert c.model.generator.args == {"scale": 2, "n_blocks": 4}
    assert c.optim.generator.optimizer.betas == (0.5, 0.9)
    assert c.run.name == "1.0"  # a string field takes the text verbatim
    assert c.data.degradation == "kspace:scale=2;noise:snr=30"
    assert c.run.progress == "never" and c.data.dims == 3 and c.validation.patch_size == [8, 16, 16]


def test_override_creates_optional_sections() -> None:
    c = cfg("model.discriminator.name=patch_discriminator", "init.generator=runs/sup")
    assert c.model.discriminator is not None and c.model.discriminator.name == "patch_discriminator"
    assert c.init.generator == "runs/sup"


@pytest.mark.parametrize(("override", "key"), [
    ("optim.generator.optimizer.lr=fast", "optim.generator.optimizer.lr"),
    ("phases.0.steps=2.5", "phases.0.steps"),
    ("run.deterministic=maybe", "run.deterministic"),
    ("optim.generator.optimizer.name=adagrad", "optim.generator.optimizer.name"),
    ("run.precision=fp8", "run.precision"),
    ("data.dims=4", "data.dims"),
    ("optim.generator.optimizer.betas=[0.9]", "optim.generator.optimizer.betas"),
    ("run.colour=blue", "run.colour"),
    ("phases.3.steps=1", "phases.3"),
    ("phases.x.steps=1", "phases.x"),
    ("model.generator.name", "model.generator.name"),
])
def test_bad_overrides_name_the_key(override: str, key: str) -> None:
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        cfg(override)


@pytest.mark.parametrize(("raw", "key"), [
    ({"optim": {"generator": {"optimiser": {}}}}, "optim.generator.optimiser"),
    ({"optim": {"generator": {"optimizer": {"lr": "1e-4x"}}}}, "optim.generator.optimizer.lr"),
    ({"phases": [{"name": "a", "steps": 1, "losses": [{"name": "l1", "wieght": 2}]}]}, "phases.0.losses.0.wieght"),
    ({"phases": [{"name": "a"}]}, "phases.0"),
    ({"phases": [{"name": "a", "steps": 1, "epochs": 2}]}, "phases.0"),
    ({"phases": [{"name": "a", "steps": 1, "ratio": "4-1"}]}, "phases.0.ratio"),
    ({"phases": [{"name": "a", "steps": 1, "train": ["generator", "discriminator"]}]}, "phases.0"),
    ({"phases": [{"name": "a", "steps": 1, "data": {"rooot": "x"}}]}, "phases.0.data.rooot"),
    ({"phases": [{"name": "a", "steps": 1, "data": {"config": "x.yaml"}}]}, "phases.0.data.config"),
    ({"data": {"root": "x", "context_slices": -1}}, "data.context_slices"),
    ({"phases": [{"name": "a", "steps": 1}, {"name": "a", "steps": 1}]}, "phases.1.name"),
    ({"phases": []}, "phases"),
    ({"model": {}}, "model.generator"),
    ({"ema": {"decay": 1.5}}, "ema.decay"),
    ({"data": {"root": "x", "batch_size": 0}}, "data.batch_size"),
])
def test_bad_values_name_the_key(raw: dict, key: str) -> None:
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        config_from_dict({**BASE, **raw})


def test_gan_phase_needs_a_discriminator_and_an_adversarial_kind() -> None:
    gan = {"name": "gan", "steps": 4, "train": ["generator", "discriminator"], "ratio": "4:1",
           "losses": [{"name": "l1"}, {"name": "adversarial", "weight": 1e-3}]}
    with pytest.raises(ConfigError, match=r"model\.discriminator"):
        config_from_dict({**BASE, "phases": [{**gan, "adversarial": "vanilla"}]})
    model = {"generator": {"name": "srresnet"}, "discriminator": {"name": "vgg_discriminator"}}
    with pytest.raises(ConfigError, match=r"phases\.0\.adversarial"):
        config_from_dict({**BASE, "model": model, "phases": [gan]})
    c = config_from_dict({**BASE, "model": model, "phases": [{**gan, "adversarial": "hinge"}]})
    assert c.phases[0].adversarial == "hinge"
    with pytest.raises(ConfigError, match=r"phases\.0\.adversarial: unknown kind 'hingee'.*smooth_l1"):
        config_from_dict({**BASE, "model": model, "phases": [{**gan, "adversarial": "hingee"}]})


def test_phase_data_overrides_merge_and_validate() -> None:
    c = cfg(phases=[{"name": "full", "steps": 1}, {"name": "heart", "steps": 1, "data": {"root": "crops", "patch_size": 32}}])
    assert phase_data(c, c.phases[0]).root == "prepared"
    heart = phase_data(c, c.phases[1])
    assert heart.root == "crops" and heart.patch_size == 32 and heart.batch_size == c.data.batch_size
    bad = cfg(phases=[{"name": "a", "steps": 1, "data": {"batch_size": "many"}}])
    with pytest.raises(ConfigError, match=r"phases\.0\.data\.batch_size"):
        phase_data(bad, bad.phases[0])


def test_phase_data_is_range_checked_like_the_data_section() -> None:
    c = cfg(phases=[{"name": "a", "steps": 1, "data": {"degrade_margin": -2}}])
    with pytest.raises(ConfigError, match=r"^phases\.0\.data\.degrade_margin: "):
        phase_data(c, c.phases[0])


def test_snapshot_round_trips(tmp_path: Path) -> None:
    c = cfg("optim.generator.optimizer.betas=[0.5, 0.9]")
    p = tmp_path / "snap.yaml"
    p.write_text(dump_config(c))
    assert load_config(p) == c


def test_missing_or_broken_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "nope.yaml")
    p = tmp_path / "bad.yaml"
    p.write_text("phases: [\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(p)
