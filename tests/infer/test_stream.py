"""Streaming: an output written slab by slab equals the in-memory one (bytes for NIfTI, voxels and geometry for
DICOM), model slabs with context halos equal the network on the whole stack, and post-processing per slab keeps
its guarantees (the measured band, the affine)."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
import torch

import mrisr.infer.volume as volume_module
from mrisr.degrade.baselines import BASELINES, baseline_slabs, stream_axis, upscale_volume
from mrisr.degrade.grid import resampled_volume
from mrisr.degrade.kspace import kspace_truncate
from mrisr.errors import InputError
from mrisr.infer.volume import prepare_upscale, upscale_with_model
from mrisr.io import Volume, read_volume, write_volume
from mrisr.io.stream import placeholder, write_slabs
from mrisr.models import build_model
from mrisr.models.registry import REGISTRY
from tests.conftest import oblique_affine


def _volume(shape, seed=0, integers=False):
    data = np.random.default_rng(seed).random(shape).astype(np.float32) * 900 + 50
    return Volume(np.rint(data) if integers else data, oblique_affine(), {"time_spacing": 0.25,
                                                                         "series_description": "t1"})


def _slabs_along(data, axis, step):
    """``(index, voxels)`` pairs cutting ``data`` along ``axis`` (a spatial axis or the time axis), last first."""
    n = data.shape[axis]
    pieces = []
    for s0 in range(0, n, step):
        index = [slice(None)] * data.ndim
        index[axis] = slice(s0, min(n, s0 + step))
        pieces.append((tuple(index), data[tuple(index)]))
    return pieces[::-1]


@pytest.mark.parametrize("shape", [(10, 8, 5), (6, 5, 4, 3), (9, 7)])
@pytest.mark.parametrize("name", ["out.nii", "out.nii.gz"])
def test_a_streamed_nifti_has_the_bytes_write_volume_writes(tmp_path, shape, name):
    vol = _volume(shape)
    ref = write_volume(vol, tmp_path / f"ref_{name}")
    template = vol.with_data(placeholder(vol.shape))
    for axis in range(vol.ndim):  # slabs along x / y go through a short-lived memory map, along z / t in place
        out = tmp_path / f"{axis}_{name}"
        write_slabs(out, template, _slabs_along(vol.data, axis, 2), whole_bytes=0)
        opened = gzip.open if name.endswith(".gz") else open
        with opened(out, "rb") as a, opened(ref, "rb") as b:
            assert a.read() == b.read()
    if name.endswith(".gz"):  # deterministic: no time stamp in the gzip header
        assert (tmp_path / f"0_{name}").read_bytes() == (tmp_path / f"1_{name}").read_bytes()


@pytest.mark.parametrize(("shape", "integers"), [((10, 8, 5), True), ((6, 5, 4, 3), False)])
def test_a_streamed_dicom_series_equals_write_volume(tmp_path, shape, integers):
    vol = _volume(shape, integers=integers)
    write_volume(vol, tmp_path / "ref")
    write_slabs(tmp_path / "out", vol.with_data(placeholder(vol.shape)), _slabs_along(vol.data, 2, 2), whole_bytes=0)
    ref, got = read_volume(tmp_path / "ref"), read_volume(tmp_path / "out")
    np.testing.assert_array_equal(got.data, ref.data)  # same integer storage chosen from the measured range
    np.testing.assert_allclose(got.affine, ref.affine, atol=1e-6)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(p.name for p in (tmp_path / "ref").iterdir())
    if integers:
        np.testing.assert_array_equal(got.data, vol.data)


def test_slabs_that_do_not_fill_the_output_or_hold_nan_leave_nothing(tmp_path):
    vol = _volume((8, 6, 4))
    template = vol.with_data(placeholder(vol.shape))
    with pytest.raises(ValueError, match="filled"):
        write_slabs(tmp_path / "a.nii.gz", template, _slabs_along(vol.data, 2, 2)[:1], whole_bytes=0)
    bad = vol.data.copy()
    bad[0, 0, 3] = np.nan
    with pytest.raises(InputError, match="NaN or Inf"):
        write_slabs(tmp_path / "b.nii", template, _slabs_along(bad, 2, 2), whole_bytes=0)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("method", BASELINES)
@pytest.mark.parametrize("factors", [[2, 2, 1], [2, 2, 2], [1, 3, 1]])
def test_baseline_slabs_equal_the_whole_volume(method, factors):
    vol = _volume((12, 10, 9, 2))
    ref = upscale_volume(vol, factors, method)
    template, slabs = baseline_slabs(vol, factors, method, slab_bytes=4 * 24 * 20 * 2)  # 1-2 slices per slab
    out = np.full(ref.shape, np.nan, dtype=np.float32)
    count = 0
    for index, slab in slabs:
        out[index] = slab
        count += 1
    axis, _ = stream_axis(factors, method)
    assert count > (2 if axis is not None else 1)
    np.testing.assert_allclose(out, ref.data, atol=1e-3)
    np.testing.assert_array_equal(template.affine, ref.affine)
    assert template.meta["history"] == ref.meta["history"]


def _tiny_2d(in_channels=1, dc=False):
    torch.manual_seed(0)
    return build_model("fast", scale=2, in_channels=in_channels, residual="zerofill" if dc else None,
                       data_consistency=dc, **REGISTRY["fast"].tiny).eval()


@pytest.fixture
def small_slabs(monkeypatch):
    """Slabs of 2 slices (of a 96 x 80 output plane) and outputs written in slabs, not in one piece."""
    monkeypatch.setattr(volume_module, "SLAB_BYTES", 4 * 96 * 80 * 2)
    monkeypatch.setattr("mrisr.io.stream.WHOLE_BYTES", 0)


@pytest.mark.parametrize("axis", [2, 0])
def test_model_slabs_with_context_halos_equal_the_network_on_every_slice(phantom3d, small_slabs, axis):
    model = _tiny_2d(in_channels=5)
    out = upscale_with_model(phantom3d, (model, {"normalisation": {"method": "none"}}), axis=axis, batch_size=3)
    data = torch.from_numpy(np.moveaxis(phantom3d.data, axis, 0).copy())
    n = data.shape[0]
    for k in range(n):  # every slice, with its true neighbours (edge slices repeated at the ends of the scan)
        idx = [min(max(k + d, 0), n - 1) for d in (-2, -1, 0, 1, 2)]
        with torch.no_grad():
            ref = model(data[idx][None])[0, 0].numpy()
        np.testing.assert_allclose(np.take(out.data, k, axis=axis), ref, rtol=1e-5, atol=1e-3)


def test_a_dc_model_keeps_the_measured_band_slab_by_slab(phantom3d, small_slabs, tmp_path):
    scan = phantom3d.with_data(phantom3d.data - 300.0)  # negatives: no magnitude clamp
    run = prepare_upscale(scan, (_tiny_2d(dc=True), {"intended_use": {"image": "real"}}), in_memory=False)
    path = write_slabs(tmp_path / "sr.nii.gz", run.template(), run.slabs(), final=run.template)
    back = read_volume(path)
    t = torch.from_numpy(back.data.astype(np.float64))
    np.testing.assert_allclose(kspace_truncate(t, [2, 2], [0, 1], magnitude=False).numpy(), scan.data, atol=1e-2)
    # the geometry is the foundation's: resampled_volume of the one set of factors
    want = resampled_volume(scan, back.data, [2, 2, 1], {"op": "upscale"})
    np.testing.assert_allclose(back.affine, want.affine, atol=1e-5)
    assert run.template().meta["history"][-1]["data_consistency"].startswith("measured")


def test_streamed_file_equals_the_in_memory_volume(phantom3d, small_slabs, tmp_path):
    model = (_tiny_2d(), {})
    whole = upscale_with_model(phantom3d, model)
    run = prepare_upscale(phantom3d, model, in_memory=False)
    write_slabs(tmp_path / "sr.nii.gz", run.template(), run.slabs(), final=run.template)
    write_volume(whole, tmp_path / "ref.nii.gz")
    assert gzip.open(tmp_path / "sr.nii.gz").read() == gzip.open(tmp_path / "ref.nii.gz").read()
    assert run.template().meta["history"] == whole.meta["history"]


def test_a_model_that_outputs_nan_leaves_no_file(phantom3d, small_slabs, tmp_path):
    model = _tiny_2d()
    torch.nn.init.constant_(model.tail[0].bias, float("nan"))
    run = prepare_upscale(phantom3d, (model, {}), in_memory=False)
    with pytest.raises(InputError, match="NaN or Inf"):
        write_slabs(tmp_path / "sr.nii", run.template(), run.slabs(), final=run.template)
    assert list(tmp_path.iterdir()) == []


def test_the_streamed_memory_estimate_leaves_out_the_output(phantom3d):
    model = (_tiny_2d(), {})
    whole = prepare_upscale(phantom3d, model, in_memory=True)
    streamed = prepare_upscale(phantom3d, model, in_memory=False)
    assert whole.out_shape == streamed.out_shape == (96, 80, 12)
    args = (streamed.module, phantom3d.spatial_shape, phantom3d.shape, streamed.out_shape, 2, 8, 64)
    diff = volume_module.inference_memory_bytes(*args) - volume_module.inference_memory_bytes(*args, in_memory=False)
    assert diff == 4 * 96 * 80 * 12
