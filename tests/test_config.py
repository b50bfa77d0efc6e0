"""The one configuration system (mrisr.config): typed conversion, one override syntax, safe YAML, and
one owner for the dataset options (a training config's data section or the data config it names)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest
import yaml

from mrisr.cli import main
from mrisr.config import PARSE, apply_overrides, from_mapping, read_yaml
from mrisr.data.config import DataPipelineConfig, DatasetOptions, load_data_config
from mrisr.data.prepare import PrepareOptions
from mrisr.errors import ConfigError
from mrisr.train.config import config_from_dict, dump_config, load_config

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
DATASET_KEYS = ("degradation", "patch_size", "augment", "dims", "context_slices", "degrade_margin")
TRAIN = {
    "data": {"root": "prepared"},
    "model": {"generator": {"name": "srresnet", "args": {"scale": 2}}},
    "phases": [{"name": "sup", "steps": 10, "losses": [{"name": "l1"}]}],
}


# ------------------------------------------------------------------------------------- generic conversion
@dataclass
class _Inner:
    size: int = 1


@dataclass
class _Example:
    rate: float
    mode: Literal["a", "b"] = "a"
    sizes: tuple[int, int] = (1, 2)
    items: list[str] = field(default_factory=list)
    limit: int | None = None
    inner: _Inner = field(default_factory=_Inner)
    doubled: int = field(default=0, metadata={PARSE: lambda value, key: 2 * int(value)})


def test_conversion_follows_the_type_hints() -> None:
    ex = from_mapping(_Example, {"rate": "1e-4", "sizes": [3, 4], "limit": 5.0, "inner": {"size": 2}, "doubled": 3})
    assert ex.rate == pytest.approx(1e-4) and isinstance(ex.rate, float)  # YAML 1.1 reads 1e-4 as text
    assert ex.sizes == (3, 4) and ex.limit == 5 and isinstance(ex.limit, int)
    assert ex.inner == _Inner(2) and ex.doubled == 6 and ex.mode == "a" and ex.items == []


@pytest.mark.parametrize(("raw", "message"), [
    ({}, r"^rate: required key is missing"),
    ({"rate": True}, r"^rate: expected a number"),
    ({"rate": 1, "mode": "c"}, r"^mode: expected one of 'a', 'b', got 'c'"),
    ({"rate": 1, "sizes": [1]}, r"^sizes: expected a list of 2 items"),
    ({"rate": 1, "items": ["x", 2]}, r"^items\.1: expected a string"),
    ({"rate": 1, "limit": 2.5}, r"^limit: expected an integer"),
    ({"rate": 1, "inner": {"size": 1, "colour": "red"}}, r"^inner\.colour: unknown key \(known here: size\)"),
    ({"rate": float("nan")}, r"^rate: expected a finite number"),
])
def test_conversion_errors_name_the_key(raw: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        from_mapping(_Example, raw)


def test_one_override_syntax_with_yaml_values() -> None:
    raw = {"rate": 1, "items": ["x", "y"], "inner": {"size": 1}}
    ex = from_mapping(_Example, apply_overrides(raw, ["items.1=z", "inner.size=3", "limit=null", "sizes=[5, 6]",
                                                      "mode=b", "rate=2.5e-3"]))
    assert ex.items == ["x", "z"] and ex.inner.size == 3 and ex.limit is None and ex.sizes == (5, 6)
    assert ex.mode == "b" and ex.rate == pytest.approx(2.5e-3)
    assert raw["items"] == ["x", "y"]  # the caller's data is not touched
    with pytest.raises(ConfigError, match=r"^items\.2: index out of range"):
        apply_overrides(raw, ["items.2=w"])
    with pytest.raises(ConfigError, match=r"--set expects key=value, got 'rate'"):
        apply_overrides(raw, ["rate"])


def test_yaml_is_loaded_safely(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    p = tmp_path / "evil.yaml"
    p.write_text(f'run: !!python/object/apply:os.system ["touch {marker}"]\n')
    with pytest.raises(ConfigError, match="not valid YAML"):
        read_yaml(p)
    assert not marker.exists()
    p.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="must be a mapping"):
        read_yaml(p)
    p.write_text("")
    assert read_yaml(p) == {}


# ------------------------------------------------------------------------ unknown keys anywhere are errors
@pytest.mark.parametrize("key", [
    "colour", "run.colour", "data.patchsize", "model.generator.nme", "optim.generator.scheduler.gama",
    "optim.discriminator.optimiser", "phases.0.losses.0.wieght", "phases.0.epoch", "validation.metrics",
    "ema.decays", "checkpoint.keep", "init.generatr", "distributed.backnd",
])
def test_an_unknown_training_key_names_its_full_path(key: str) -> None:
    with pytest.raises(ConfigError, match=rf"^{re.escape(key)}: unknown key"):
        config_from_dict(TRAIN, [f"{key}=1"])


@pytest.mark.parametrize("key", ["colour", "prepare.resise", "dataset.patchsize"])
def test_an_unknown_data_config_key_names_its_full_path(key: str) -> None:
    with pytest.raises(ConfigError, match=rf"^{re.escape(key)}: unknown key"):
        load_data_config(CONFIGS / "data" / "cardiac.yaml", [f"{key}=1"])


def test_an_unknown_key_in_a_named_data_config_names_the_file_and_the_key(tmp_path: Path) -> None:
    (tmp_path / "study.yaml").write_text("dataset: {patch_size: 32, agument: true}\n")
    with pytest.raises(ConfigError, match=r"^data\.config: dataset\.agument: unknown key"):
        config_from_dict({**TRAIN, "data": {"root": "x", "config": "study.yaml"}}, base=tmp_path)
    with pytest.raises(ConfigError, match=r"^data\.config: cannot read config .*nowhere\.yaml"):
        config_from_dict({**TRAIN, "data": {"root": "x", "config": "nowhere.yaml"}}, base=tmp_path)


def test_prepare_options_are_typed_by_the_same_conversion() -> None:
    opts = PrepareOptions.from_mapping({"resize": 256, "modalities": "mr", "split": "train=0.5,val=0.5"},
                                       crop=[40], seed=3.0)
    assert opts.resize == (256, 256) and opts.crop == (40, 40) and opts.modalities == ("MR",)
    assert opts.split == {"train": 0.5, "val": 0.5} and opts.seed == 3 and isinstance(opts.seed, int)
    for values, message in (({"resise": 3}, r"^prepare\.resise: unknown option"),
                            ({"resize": "big"}, r"^prepare\.resize: expected an integer or 2 integers"),
                            ({"axis": 3}, r"^prepare\.axis: expected one of 0, 1, 2"),
                            ({"seed": -1}, r"^prepare\.seed: a non-negative integer, got -1"),
                            ({"split": "train=0.5,val=x"}, r"^prepare\.split\.val: expected a fraction"),
                            ({"include": [1]}, r"^prepare\.include: expected a name or a list of names")):
        with pytest.raises(ConfigError, match=message):
            PrepareOptions.from_mapping(values)
    # the data config's prepare section and --set go through the same parsers
    cfg = load_data_config(None, ["prepare.resize=64", "prepare.modalities=[mr, ct]"])
    assert cfg.prepare.resize == (64, 64) and cfg.prepare.modalities == ("MR", "CT")


# ------------------------------------------------------------------- one owner of the dataset options
def _study(tmp_path: Path, dataset: str) -> Path:
    (tmp_path / "data").mkdir(exist_ok=True)
    path = tmp_path / "data" / "study.yaml"
    path.write_text(f"name: study\nprepare: {{resize: 64}}\ndataset: {dataset}\n")
    return path


def test_a_training_config_takes_the_dataset_section_of_the_data_config_it_names(tmp_path: Path) -> None:
    _study(tmp_path, '{degradation: "bicubic:scale=2", patch_size: 32, augment: false}')
    train_yaml = tmp_path / "train.yaml"
    train_yaml.write_text(yaml.safe_dump({**TRAIN, "data": {"config": "data/study.yaml", "root": "x",
                                                            "context_slices": 1}}))
    cfg = load_config(train_yaml)  # relative to the training config's folder
    assert (cfg.data.degradation, cfg.data.patch_size, cfg.data.augment) == ("bicubic:scale=2", 32, False)
    assert cfg.data.context_slices == 1 and cfg.data.root == "x"  # what the data config leaves open
    # the run's snapshot is self-contained: merged values, no reference, and it reloads to the same config
    snap = yaml.safe_load(dump_config(cfg))
    assert "config" not in snap["data"] and snap["data"]["patch_size"] == 32
    assert config_from_dict(snap) == cfg


def test_a_dataset_option_set_in_both_files_is_an_error_and_set_wins(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    _study(tmp_path, '{degradation: "bicubic:scale=2", patch_size: 32}')
    both = {**TRAIN, "data": {"config": "data/study.yaml", "root": "x", "patch_size": 96}}
    with pytest.raises(ConfigError, match=r"^data\.patch_size: also set in the dataset section of .*study\.yaml"):
        config_from_dict(both, base=tmp_path)
    one = {**TRAIN, "data": {"config": "data/study.yaml", "root": "x"}}
    assert config_from_dict(one, ["data.patch_size=24"], base=tmp_path).data.patch_size == 24
    monkeypatch.chdir(tmp_path / "data")  # a path given with --set is relative to the current folder
    assert config_from_dict(TRAIN, ["data.config=study.yaml"], base=CONFIGS).data.patch_size == 32
    _study(tmp_path, '{degradation: "bicubic:scael=2"}')
    with pytest.raises(ConfigError, match=r"^data\.config: dataset\.degradation: "):  # checked when read
        config_from_dict(one, base=tmp_path)


def _data_config_of(path: Path) -> Path | None:
    ref = read_yaml(path).get("data", {}).get("config")
    return None if ref is None else path.parent / ref


def test_shipped_training_and_data_configs_cannot_disagree() -> None:
    named = {p.stem: _data_config_of(p) for p in CONFIGS.glob("*.yaml")}
    assert named["cardiac_srgan_x3"] == CONFIGS / "data" / "cardiac.yaml"
    assert named["pediatric_srgan_x2"] == CONFIGS / "data" / "pediatric.yaml"
    for stem, data_config in named.items():
        if data_config is None:
            continue
        train = load_config(CONFIGS / f"{stem}.yaml").data
        dataset = load_data_config(data_config).dataset
        assert {k: getattr(train, k) for k in DATASET_KEYS} == {k: getattr(dataset, k) for k in DATASET_KEYS}, stem
    cardiac = load_config(CONFIGS / "cardiac_srgan_x3.yaml")
    assert cardiac.data.patch_size == 96 and cardiac.data.degradation == "block:scale=3,grid=original"
    assert "patch_size" not in cardiac.phases[1].data  # the heart-crop phase changes the folder only
    pediatric = load_config(CONFIGS / "pediatric_srgan_x2.yaml")
    assert pediatric.data.patch_size is None and pediatric.data.augment is False  # as the study trained


def test_one_dataset_options_class() -> None:
    from mrisr.train.config import DataConfig

    assert issubclass(DataConfig, DatasetOptions)
    assert isinstance(DataPipelineConfig().dataset, DatasetOptions)
    with pytest.raises(ConfigError, match=r"^data\.degrade_margin: null \(whole image\) or pixels >= 0"):
        config_from_dict(TRAIN, ["data.degrade_margin=-1"])
    with pytest.raises(ConfigError, match=r"^dataset\.context_slices: must be >= 0"):
        load_data_config(None, ["dataset.context_slices=-1"])


# ------------------------------------------------------------------------- both commands, one --set
def test_train_and_prepare_share_the_override_syntax(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    train_yaml = tmp_path / "train.yaml"
    train_yaml.write_text(yaml.safe_dump(TRAIN))
    errors = []
    for argv in (["train", str(train_yaml), "--set", "phases.0"], ["prepare", str(tmp_path), str(tmp_path / "out"),
                                                                   "--set", "phases.0"]):
        assert main(argv) == 1
        errors.append(capsys.readouterr().err.strip())
    assert errors == ["mrisr: error: --set expects key=value, got 'phases.0'"] * 2
    assert main(["prepare", str(tmp_path), str(tmp_path / "out"), "--set", "prepare.resise=3"]) == 1
    assert "prepare.resise: unknown key" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
