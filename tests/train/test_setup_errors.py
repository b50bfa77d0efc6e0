"""Mistakes in a config or its data fail before training, name the key, and leave no run folder behind."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mrisr.errors import ConfigError
from mrisr.train import loop
from mrisr.train.config import config_from_dict
from tests.train.helpers import small_gan

SUP = [{"name": "sup", "steps": 2, "losses": [{"name": "l1"}]}]


@pytest.mark.parametrize(("override", "key"), [
    ("optim.generator.optimizer.lr=-1", "optim.generator.optimizer.lr"),
    ("optim.discriminator.optimizer.betas=[0.5, 1.5]", "optim.discriminator.optimizer.betas.1"),
    ("validation.baselines=[bicubc]", "validation.baselines.0"),
    ("validation.max_samples=0", "validation.max_samples"),
    ("validation.batch_size=0", "validation.batch_size"),
    ("data.num_workers=-1", "data.num_workers"),
    ("run.seed=-1", "run.seed"),
    ("optim.generator.grad_clip=0", "optim.generator.grad_clip"),
    ("phases.0.lr_scale=0", "phases.0.lr_scale"),
])
def test_values_checked_when_the_config_is_read(override: str, key: str) -> None:
    with pytest.raises(ConfigError, match=rf"^{key}: "):
        config_from_dict(small_gan("x", SUP), [override])


def _fails(prepared: dict[str, str], tmp_path: Path, overrides: list[str], key: str) -> None:
    out = tmp_path / "run"
    cfg = config_from_dict(small_gan(prepared["data/prepared/pediatric"], SUP), overrides)
    with pytest.raises(ConfigError, match=rf"^{key}"):
        loop.train(cfg, out=str(out))
    assert not out.exists()


@pytest.mark.parametrize(("overrides", "key"), [
    (["data.root=/nonexistent/prepared"], r"data\.root: .* does not exist"),
    (["data.val_split=nosuch"], r"data \(val_split 'nosuch'\)"),
    (["data.patch_size=17"], r"data\.patch_size: "),
    (["data.batch_size=100000"], r"data\.batch_size: "),
    (["model.generator.name=nosuch"], r"model\.generator: "),
    (["model.generator.args.in_channels=3"], r"model\.generator\.args\.in_channels: "),
    (["data.dims=3", "data.batch_size=1", "data.patch_size=[8, 16, 16]"], r"data\.dims: "),
])
def test_setup_errors_name_the_key_and_write_nothing(prepared: dict[str, str], tmp_path: Path,
                                                     overrides: list[str], key: str) -> None:
    _fails(prepared, tmp_path, overrides, key)


def test_unprepared_root_says_how_to_prepare(prepared: dict[str, str], tmp_path: Path) -> None:
    raw_folder = tmp_path / "dicoms"
    raw_folder.mkdir()
    _fails(prepared, tmp_path, [f"data.root={raw_folder}"], r"data\.root: .*mrisr prepare")


@pytest.mark.parametrize("existed", [False, True])
def test_a_crash_before_the_first_checkpoint_removes_the_run_folder(
        prepared: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, existed: bool) -> None:
    def boom(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(loop, "train_step", boom)
    out = tmp_path / "run"
    if existed:
        out.mkdir()
    cfg = config_from_dict(small_gan(prepared["data/prepared/pediatric"], SUP))
    with pytest.raises(RuntimeError, match="boom"):
        loop.train(cfg, out=str(out))
    # the same --out works again: absent, or the empty folder the user made
    assert (out.is_dir() and not any(out.iterdir())) if existed else not out.exists()


def test_generator_scale_must_match_the_degradation(prepared: dict[str, str], tmp_path: Path) -> None:
    _fails(prepared, tmp_path, ["data.degradation=bicubic:scale=2", "model.generator.args.scale=4",
                                "data.patch_size=32"],
           r"model\.generator\.args\.scale: the generator upscales by \(4, 4\) but the degradation "
           r"'bicubic:scale=2' gives low-resolution inputs \(2, 2\)")


def test_init_from_another_architecture_names_both(prepared: dict[str, str], tmp_path: Path) -> None:
    from mrisr.models.modelfile import save_model_file
    from mrisr.models.registry import REGISTRY, build_model

    other = tmp_path / "fast.safetensors"
    save_model_file(other, build_model("fast", **{**REGISTRY["fast"].tiny, "scale": 2}))
    _fails(prepared, tmp_path, [f"init.generator={other}"],
           r"init\.generator: .*weights do not fit this network .*it holds a fast, this network is a srresnet")


@pytest.mark.parametrize("name", ["../elsewhere", "a/b", ".."])
def test_run_name_is_not_a_path(name: str) -> None:
    with pytest.raises(ConfigError, match=r"^run\.name: .*--out"):
        config_from_dict(small_gan("x", SUP), [f"run.name={name}"])


def test_out_must_be_a_new_or_empty_folder(prepared: dict[str, str], tmp_path: Path) -> None:
    from mrisr.errors import OutputExistsError

    cfg = config_from_dict(small_gan(prepared["data/prepared/pediatric"], SUP))
    (tmp_path / "file").write_text("x")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("x")
    with pytest.raises(OutputExistsError, match="is a file"):
        loop.train(cfg, out=str(tmp_path / "file"))
    with pytest.raises(OutputExistsError, match="--resume"):
        loop.train(cfg, out=str(tmp_path / "full"))
    assert (tmp_path / "file").read_text() == "x" and [p.name for p in (tmp_path / "full").iterdir()] == ["keep.txt"]
