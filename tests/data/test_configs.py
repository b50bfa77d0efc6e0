"""The two studies' data configs run on `make-example-data` output (sizes scaled down by overrides)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mrisr.cli import main
from mrisr.data.config import DataPipelineConfig, load_data_config
from mrisr.data.manifest import load_manifest
from mrisr.data.samples import collate_samples
from mrisr.degrade.blocks import block_downsample
from mrisr.errors import ConfigError

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "data"


def test_configs_say_what_the_studies_did() -> None:
    ped = load_data_config(CONFIGS / "pediatric.yaml")
    assert ped.prepare.resize == (512, 512) and ped.prepare.group_by == "dicom"
    assert ped.prepare.split["test"] == 64 and ped.prepare.split_unit == "images"
    assert ped.dataset.degradation == "bicubic:scale=2"
    card = load_data_config(CONFIGS / "cardiac.yaml")
    assert card.prepare.resize == (256, 256) and card.prepare.roi_from_masks and card.prepare.roi_margin == 10
    assert card.prepare.split_unit == "patients" and card.dataset.degradation == "block:scale=3,grid=original"


def test_pediatric_pipeline_on_example_data(example_root: Path, tmp_path: Path) -> None:
    sets = ["prepare.resize=64", "prepare.split={test: 4, val: 4, train: rest}"]
    assert main(["prepare", str(example_root / "pediatric"), str(tmp_path / "p"), "--no-progress",
                 "--config", str(CONFIGS / "pediatric.yaml"), *[a for s in sets for a in ("--set", s)]]) == 0
    manifest = load_manifest(tmp_path / "p")
    assert {v.split for v in manifest.volumes} == {"train", "val", "test"}
    assert sum(len(v.slices) for v in manifest.in_split("test")) == 4
    cfg = load_data_config(CONFIGS / "pediatric.yaml", ["dataset.patch_size=32"])
    batch = collate_samples([cfg.dataset.build(tmp_path / "p", "train")[i] for i in range(4)])
    assert batch.hr.shape == (4, 1, 32, 32) and batch.lr.shape == (4, 1, 16, 16)


def test_cardiac_pipeline_on_example_data(example_root: Path, tmp_path: Path) -> None:
    cfg = load_data_config(CONFIGS / "cardiac.yaml", ["prepare.resize=96", "dataset.patch_size=24"])
    assert main(["prepare", str(example_root / "cardiac"), str(tmp_path / "c"), "--no-progress",
                 "--config", str(CONFIGS / "cardiac.yaml"), "--set", "prepare.resize=96"]) == 0
    manifest = load_manifest(tmp_path / "c")
    for v in manifest.volumes:
        assert v.record.roi is not None and v.record.roi["margin"] == 10
        assert v.record.shape[0] == 5 and v.record.shape[2] < 96  # every frame, cropped to the heart
    ds = cfg.dataset.build(tmp_path / "c", "train")
    s = ds[0]
    assert s.hr.shape == s.lr.shape == (1, 24, 24)  # block x3 on the original grid
    assert s.params["degradation"]["steps"][0]["grid"] == "original"


def test_bad_config_keys_are_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="resise"):
        DataPipelineConfig.from_mapping({"prepare": {"resise": 3}})
    with pytest.raises(ConfigError, match="patchsize"):
        DataPipelineConfig.from_mapping({"dataset": {"patchsize": 3}})
    with pytest.raises(ConfigError, match="dims"):
        DataPipelineConfig.from_mapping({"dataset": {"dims": 4}})
    with pytest.raises(ConfigError, match="cannot read"):
        load_data_config(tmp_path / "missing.yaml")
    # the dataset section is checked when the config is read, not when training builds the dataset
    with pytest.raises(ConfigError, match=r"dataset\.degradation: kspace: unknown parameter 'scael'"):
        load_data_config(CONFIGS / "cardiac.yaml", ["dataset.degradation=kspace:scael=2"])
    with pytest.raises(ConfigError, match=r"patch_size 50 must be a multiple of the degradation's factors \(3, 3\)"):
        load_data_config(CONFIGS / "pediatric.yaml", ["dataset.degradation=bicubic:scale=3", "dataset.patch_size=50"])
    # original-grid block: any patch size; 3D items are (D, H, W) with the slice axis first
    assert load_data_config(CONFIGS / "cardiac.yaml", ["dataset.patch_size=50"]).dataset.patch_size == 50
    with pytest.raises(ConfigError, match=r"factors \(3, 1, 1\)"):
        load_data_config(CONFIGS / "cardiac.yaml", ["dataset.dims=3", "dataset.patch_size=[4, 48, 48]",
                                                   "dataset.degradation=slice:scale=3"])


def test_cardiac_whole_slices_not_multiples_of_the_block(example_root: Path, tmp_path: Path) -> None:
    # Validation on whole heart crops (patch_size null): sizes such as 43 x 36 are not multiples of 3;
    # the original-grid block degradation takes a partial last block instead of failing.
    sets = ["prepare.resize=100", "prepare.roi_margin=7"]
    assert main(["prepare", str(example_root / "cardiac"), str(tmp_path / "c"), "--no-progress",
                 "--config", str(CONFIGS / "cardiac.yaml"), *[a for s in sets for a in ("--set", s)]]) == 0
    cfg = load_data_config(CONFIGS / "cardiac.yaml", [*sets, "dataset.patch_size=null"])
    sizes = set()
    for split in ("train", "val", "test"):
        ds = cfg.dataset.build(tmp_path / "c", split, augment=False)
        for i in range(len(ds)):
            s = ds[i]
            assert s.hr.shape == s.lr.shape
            sizes.add(tuple(s.hr.shape[1:]))
        assert (s.lr == block_downsample(s.hr, 3, [1, 2], grid="original")).all()
    assert any(n % 3 for size in sizes for n in size), sizes
