"""SRDataset: shapes, seeding (per volume / per epoch / per index), workers, DistributedSampler, 3D, context."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, DistributedSampler

from mrisr.data.datasets import SRDataset
from mrisr.data.prepare import prepare_dataset
from mrisr.data.samples import Batch, Sample, collate_samples
from mrisr.degrade.chain import build_degradation
from mrisr.errors import ConfigError


@pytest.fixture(scope="module")
def prepared(example_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ds") / "cardiac"
    prepare_dataset(example_root / "cardiac", out, resize=48, split="train=0.5,val=0.25,test=0.25")
    return out


def equal(a: Sample, b: Sample) -> bool:
    return torch.equal(a.lr, b.lr) and torch.equal(a.hr, b.hr) and a.params == b.params


def test_2d_patches_shapes_and_fields(prepared: Path) -> None:
    ds = SRDataset(prepared, "train", "bicubic:scale=2", patch_size=16, augment=True, seed=1)
    assert len(ds) == 2 * 5 * 4  # 2 patients x 5 frames x 4 slices
    s = ds[3]
    assert isinstance(s, Sample)
    assert s.lr.shape == (1, 8, 8) and s.hr.shape == (1, 16, 16)
    assert s.lr.dtype == torch.float32 and s.data_range == 1.0
    assert s.volume_id.startswith("patient") and 0 <= s.slice_index < 4
    assert s.params["degradation"]["degradation"] == "bicubic:scale=2"
    assert {"flip", "rot90", "gamma", "gain", "origin", "frame"} <= set(s.params)
    assert float(s.hr.min()) >= 0 and float(s.hr.max()) <= 1


def test_lr_is_the_degraded_hr(prepared: Path) -> None:
    """Without augmentation, LR equals the degradation of the whole slice, cropped where HR was."""
    ds = SRDataset(prepared, "train", "bicubic:scale=2", patch_size=16, seed=0)
    s = ds[7]
    vol = ds.volumes[int(ds.items[7][0])]
    t, z = int(ds.items[7][1]), int(ds.items[7][2])
    slice_ = np.load(prepared / vol.record.file)[t, z]
    lr_full, _ = build_degradation("bicubic:scale=2").apply_array(slice_, np.random.default_rng(0))
    y, x = s.params["origin"]
    np.testing.assert_array_equal(s.hr[0].numpy(), slice_[y : y + 16, x : x + 16])
    np.testing.assert_allclose(s.lr[0].numpy(), lr_full[y // 2 : y // 2 + 8, x // 2 : x // 2 + 8], atol=1e-6)


def test_seeded_by_seed_epoch_and_index(prepared: Path) -> None:
    make = lambda seed: SRDataset(prepared, "train", "bicubic:scale=2;noise:snr=10..40", patch_size=16,  # noqa: E731
                                  augment=True, seed=seed)
    a, b = make(0), make(0)
    assert equal(a[5], b[5])
    assert not equal(a[5], make(1)[5])
    b.set_epoch(1)
    assert b.epoch == 1 and not equal(a[5], b[5])


def test_degradation_parameters_per_volume_noise_per_slice(prepared: Path) -> None:
    ds = SRDataset(prepared, "train", "noise:snr=5..50", patch_size=None, seed=0)
    rows = [i for i in range(len(ds)) if int(ds.items[i][0]) == 0]
    snrs = {ds[i].params["degradation"]["steps"][0]["snr"] for i in rows}
    assert len(snrs) == 1  # one drawn SNR for every slice of the volume
    other = {ds[i].params["degradation"]["steps"][0]["snr"] for i in range(len(ds)) if int(ds.items[i][0]) == 1}
    assert other != snrs
    noise = [(ds[i].lr - ds[i].hr).numpy() for i in rows[:2]]
    assert not np.allclose(noise[0], noise[1])  # but not the same noise field
    ds.set_epoch(3)
    assert {ds[i].params["degradation"]["steps"][0]["snr"] for i in rows[:2]} != snrs


def test_snr_gives_one_noise_sigma_per_volume(prepared: Path) -> None:
    # SNR refers to the whole volume's foreground mean: edge slices and small patches get the scan's
    # sigma, not one scaled to their own content (it varied ~50x between slices of one scan before)
    from mrisr.degrade.noise import foreground_signal

    for patch, margin in ((None, None), (16, 4)):
        ds = SRDataset(prepared, "train", "bicubic:scale=2;noise:snr=20", patch_size=patch, degrade_margin=margin)
        rows = [i for i in range(len(ds)) if int(ds.items[i][0]) == 0]
        sigmas = {ds[i].params["degradation"]["steps"][1]["sigma"] for i in rows}
        assert len(sigmas) == 1
        volume = np.load(prepared / ds.volumes[0].record.file)
        assert sigmas.pop() == pytest.approx(foreground_signal(volume) / 20, rel=0.05)


def test_workers_give_the_same_batches(prepared: Path) -> None:
    ds = SRDataset(prepared, "train", "bicubic:scale=2", patch_size=16, augment=True, seed=0)
    ds.set_epoch(2)
    kw = {"batch_size": 8, "collate_fn": collate_samples}
    serial = list(DataLoader(ds, **kw))
    parallel = list(DataLoader(ds, num_workers=2, persistent_workers=True, **kw))
    assert isinstance(parallel[0], Batch) and parallel[0].lr.shape == (8, 1, 8, 8)
    for a, b in zip(serial, parallel, strict=True):
        assert torch.equal(a.lr, b.lr) and torch.equal(a.hr, b.hr) and a.volume_id == b.volume_id


def test_distributed_sampler_shards(prepared: Path) -> None:
    ds = SRDataset(prepared, "train", "bicubic:scale=2", patch_size=16, seed=0)
    seen = []
    for rank in range(2):
        sampler = DistributedSampler(ds, num_replicas=2, rank=rank, shuffle=True, seed=0, drop_last=True)
        sampler.set_epoch(1)
        for batch in DataLoader(ds, batch_size=4, sampler=sampler, collate_fn=collate_samples, num_workers=1):
            seen.extend(zip(batch.volume_id, batch.slice_index, [p["frame"] for p in batch.params], strict=True))
    assert len(seen) == len(ds) and len(set(seen)) == len(ds)


def test_context_slices_are_extra_lr_channels(prepared: Path) -> None:
    ds = SRDataset(prepared, "val", "bicubic:scale=2", patch_size=None, context_slices=1)
    edge = next(i for i in range(len(ds)) if int(ds.items[i][2]) == 0)
    s = ds[edge]
    assert s.lr.shape == (3, 24, 24) and s.hr.shape == (1, 48, 48)
    torch.testing.assert_close(s.lr[0], s.lr[1])  # slice -1 repeats slice 0 at the edge
    mid = next(i for i in range(len(ds)) if int(ds.items[i][2]) == 1)
    assert not torch.equal(ds[mid].lr[0], ds[mid].lr[1])


def test_3d_items(prepared: Path) -> None:
    ds = SRDataset(prepared, "test", "bicubic:scale=2", patch_size=(2, 16, 16), dims=3, augment=True)
    assert len(ds) == 5  # one per frame of the single test patient
    s = ds[0]
    # patch_size is (slices, rows, columns); samples leave in volume order (X, Y, Z), slices last
    assert s.hr.shape == (1, 16, 16, 2) and s.lr.shape == (1, 8, 8, 2)
    thick = SRDataset(prepared, "test", "slice:scale=2", patch_size=None, dims=3)
    assert thick[0].lr.shape == (1, 48, 48, 2) and thick[0].hr.shape == (1, 48, 48, 4)
    # thick slices degrade the slice axis only: an anisotropic 3D generator (factors (1, 1, 2)) fits
    from mrisr.models import build_model

    gen = build_model("resnet3d", scale=2, anisotropic=True, channels=4, n_blocks=1)
    assert tuple(gen.factors) == (1, 1, 2)
    assert gen(thick[0].lr[None]).shape == thick[0].hr[None].shape


def test_3d_samples_are_the_volume_in_volume_order(example_root: Path, tmp_path: Path) -> None:
    # a 3D sample of a scan sliced along axis 2 is the (normalised) scan itself, axes as in the Volume
    from mrisr.data.manifest import load_manifest
    from mrisr.data.slices import to_volume_order

    prepare_dataset(example_root / "cardiac", tmp_path / "p", split="train=1.0")
    ds = SRDataset(tmp_path / "p", "train", "bicubic:scale=2", dims=3)
    rec = load_manifest(tmp_path / "p").in_split("train")[0].record
    stack = np.load(tmp_path / "p" / rec.file)[0]  # (S, H, W) of frame 0
    np.testing.assert_array_equal(ds[0].hr[0].numpy(), to_volume_order(stack))
    assert ds[0].hr.shape[1:] == (32, 32, 4) and ds.factors == (1, 2, 2)  # stack order: slices first


def test_prepared_3d_patches_are_items(example_root: Path, tmp_path: Path) -> None:
    prepare_dataset(example_root / "cardiac", tmp_path / "p", patch3d=(2, 16, 16), split="train=1.0")
    ds = SRDataset(tmp_path / "p", "train", "bicubic:scale=2", dims=3)
    assert len(ds) == 4 * 5 * 2 * 2 * 2  # patients x frames x (2 x 2 x 2) patch grid of a 4x32x32 stack
    assert ds[0].hr.shape == (1, 16, 16, 2)


def test_bad_arguments(prepared: Path) -> None:
    with pytest.raises(ConfigError, match="multiple"):
        SRDataset(prepared, "train", "bicubic:scale=3", patch_size=16)
    with pytest.raises(ConfigError, match="no volumes in split 'nope'"):
        SRDataset(prepared, "nope", "bicubic:scale=2")
    with pytest.raises(ConfigError):
        SRDataset(prepared, "train", "bicubic:scale=2", dims=3, context_slices=1)
    with pytest.raises(ConfigError, match="seed: a non-negative integer, got -1"):
        SRDataset(prepared, "train", "bicubic:scale=2", seed=-1)


def test_whole_volumes_smaller_than_the_factors_are_a_config_error(tmp_path: Path) -> None:
    # a one-slice scan in a 3D dataset with through-plane degradation crashed in the FFT / a division
    from mrisr.data.phantoms import head_phantom
    from mrisr.io import Volume, write_volume

    write_volume(Volume(head_phantom((16, 16, 1), seed=0), np.eye(4)), tmp_path / "s" / "p1" / "a.nii.gz")
    prepare_dataset(tmp_path / "s", tmp_path / "o", split="train=1.0")
    with pytest.raises(ConfigError, match=r"1 volume\(s\) of split 'train' are smaller .* \(2, 2, 2\) \(p1__a\)"):
        SRDataset(tmp_path / "o", "train", "kspace:scale=2,axes=all", dims=3)
    s = SRDataset(tmp_path / "o", "train", "slice:scale=2", dims=3, patch_size=4)[0]  # padded patch: fine
    assert s.hr.shape == (1, 4, 4, 4) and s.lr.shape == (1, 4, 4, 2)  # slice axis last


def test_collate_refuses_mixed_shapes() -> None:
    a = Sample(torch.zeros(1, 4, 4), torch.zeros(1, 8, 8), "a", 0)
    b = Sample(torch.zeros(1, 5, 4), torch.zeros(1, 10, 8), "b", 0)
    with pytest.raises(ConfigError, match="patch_size"):
        collate_samples([a, b])


def test_margin_mode_matches_whole_image_for_local_degradations(prepared: Path) -> None:
    whole = SRDataset(prepared, "train", "bicubic:scale=2", patch_size=16, seed=0)
    local = SRDataset(prepared, "train", "bicubic:scale=2", patch_size=16, seed=0, degrade_margin=8)
    for i in (0, 11, 25):
        a, b = whole[i], local[i]
        assert torch.equal(a.hr, b.hr)
        torch.testing.assert_close(a.lr, b.lr, atol=1e-5, rtol=0)
    block = SRDataset(prepared, "train", "block:scale=2,grid=original", patch_size=16, seed=0, degrade_margin=0)
    assert block[0].lr.shape == block[0].hr.shape == (1, 16, 16)


def test_paired_dataset_reads_pre_degraded_twins(example_root: Path, tmp_path: Path) -> None:
    from mrisr.data.datasets import PairedDataset
    from mrisr.io import read_volume, write_volume

    src = example_root / "cardiac"
    deg = build_degradation("block:scale=2")
    for i in (1, 2):
        name = f"patient00{i}/patient00{i}_4d.nii.gz"
        write_volume(deg(read_volume(src / name), seed=i), tmp_path / "lr_src" / name)
    prepare_dataset(src, tmp_path / "hr", include=["patient00[12]/*"], split="train=1.0")
    prepare_dataset(tmp_path / "lr_src", tmp_path / "lr", split="train=1.0")
    ds = PairedDataset(tmp_path / "hr", tmp_path / "lr", "train", patch_size=16, augment=True, seed=0)
    assert ds.factors == (2, 2) and len(ds) == 2 * 5 * 4
    s = ds[3]
    assert s.hr.shape == (1, 16, 16) and s.lr.shape == (1, 8, 8)
    plain = PairedDataset(tmp_path / "hr", tmp_path / "lr", "train", patch_size=None)
    whole = plain[0]
    assert whole.hr.shape == (1, 32, 32) and whole.lr.shape == (1, 16, 16)
    # block x2 keeps one pixel of each block (up to each volume's own normalisation): LR is aligned
    lr = whole.lr[0].numpy().ravel()
    corr = [np.corrcoef(lr, whole.hr[0, i::2, j::2].numpy().ravel())[0, 1] for i in (0, 1) for j in (0, 1)]
    assert max(corr) > 0.99
