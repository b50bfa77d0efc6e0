"""Do no harm: k-space models return the measured band as measured; magnitude models never go negative;
a scan unlike the training data is named in one warning line per difference."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from mrisr.degrade.kspace import kspace_truncate
from mrisr.errors import ConfigError
from mrisr.infer import upscale_with_model
from mrisr.infer.volume import keep_measured_band, nonnegative_output
from mrisr.io.volume import Volume
from mrisr.models import build_model, save_model_file
from mrisr.models.intended import intended_use, use_warnings
from mrisr.models.registry import REGISTRY

USE = {"modality": "MR", "image": "magnitude", "voxel_size_mm": [0.8, 1.2], "degradation": "kspace:scale=2"}


def _dc_net(seed: int = 0) -> torch.nn.Module:
    """A randomly initialised network (its guesses are wrong) ending in data consistency."""
    torch.manual_seed(seed)
    return build_model("fast", scale=2, residual="zerofill", data_consistency=True, **REGISTRY["fast"].tiny).eval()


def _truncate(x: np.ndarray, factors: list[int]) -> np.ndarray:
    dims = [d for d, f in enumerate(factors) if f > 1]
    t = torch.from_numpy(x).double()
    return kspace_truncate(t, [factors[d] for d in dims], dims, magnitude=False).numpy()


@pytest.mark.parametrize(("shape", "factors"), [((12, 10, 5), [2, 2, 1]), ((9, 6, 4, 3), [3, 1, 2]),
                                                ((8, 6), [2, 2])])
def test_the_measured_band_is_put_back_exactly(rng, shape, factors):
    measured = rng.normal(size=shape).astype(np.float32)
    fine = rng.normal(size=tuple(n * f for n, f in zip(shape, factors, strict=False)) + shape[len(factors):])
    out = fine.astype(np.float32)
    keep_measured_band(out, measured, factors, chunk=2)
    np.testing.assert_allclose(_truncate(out, factors), measured, atol=1e-5)
    # and it only changed the band: the unmeasured frequencies are the network's
    assert not np.allclose(out, fine.astype(np.float32), atol=1e-3)


def test_a_dc_model_keeps_what_the_scan_measured_in_input_units(phantom3d, tmp_path):
    path = save_model_file(tmp_path / "dc.safetensors", _dc_net(), meta={"intended_use": {"image": "real"}})
    shifted = Volume(phantom3d.data - 300.0, phantom3d.affine, dict(phantom3d.meta))  # negatives: no clamp
    out = upscale_with_model(shifted, str(path))
    assert out.shape == (96, 80, 12)
    np.testing.assert_allclose(_truncate(out.data.astype(np.float64), [2, 2, 1]), shifted.data, atol=1e-2)
    assert "data_consistency" in out.meta["history"][-1]
    assert "negative_voxels_set_to_zero" not in out.meta["history"][-1]


def test_a_magnitude_model_never_returns_negative_voxels(phantom3d, tmp_path):
    path = save_model_file(tmp_path / "mag.safetensors", _dc_net(), meta={"intended_use": USE})
    out = upscale_with_model(phantom3d, str(path), calibrate=False)  # the random network's full correction
    assert out.data.min() >= 0.0
    rec = out.meta["history"][-1]
    assert rec["negative_voxels_set_to_zero"] > 0  # zero-fill ringing at the phantom's edges was negative
    # where nothing was clamped the measured band holds: the clamp is the only change after consistency
    plain = upscale_with_model(phantom3d, (_dc_net(), {"intended_use": {"image": "real"}}), calibrate=False)
    np.testing.assert_array_equal(out.data, np.maximum(plain.data, 0.0))


def test_nonnegative_output_leaves_signed_inputs_alone():
    out = np.array([-1.0, 2.0], dtype=np.float32)
    assert nonnegative_output(out, np.array([-5.0, 1.0])) is None and out[0] == -1.0
    assert nonnegative_output(out, np.array([0.0, 1.0])) == 1 and out[0] == 0.0


def test_use_warnings_name_each_difference():
    meta = {"intended_use": USE}
    assert use_warnings(meta, "MR", [1.0, 1.0]) == []
    assert use_warnings(meta, None, [1.1, 0.9]) == []  # NIfTI: modality unknown
    (line,) = use_warnings(meta, "CT", [1.0, 1.0], "kspace-x2")
    assert "CT" in line and "kspace-x2" in line and "MR" in line
    (line,) = use_warnings(meta, "MR", [4.0, 4.0])
    assert "4 x 4 mm" in line and "0.8-1.2 mm" in line
    assert len(use_warnings(meta, "CT", [0.3, 0.3])) == 2
    assert use_warnings({}, "CT", [9.0, 9.0]) == []  # an older file says nothing: no warning


def test_the_voxel_check_is_on_the_output_grid(phantom3d, tmp_path, caplog):
    # a 2 mm scan through a x2 model trained on 0.8-1.2 mm targets writes 1 mm voxels: no warning;
    # a 4 mm scan would write 2 mm voxels: one warning naming them
    path = save_model_file(tmp_path / "mag.safetensors", _dc_net(), meta={"intended_use": USE})
    for mm, expected in ((2.0, 0), (4.0, 1)):
        vol = Volume(phantom3d.data, np.diag([mm, mm, 3.0, 1.0]), {})
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="mrisr"):
            upscale_with_model(vol, str(path))
        lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
        assert len(lines) == expected
        if expected:
            assert "output's voxels (2 x 2 mm)" in lines[0]


def test_upscale_warns_once_for_a_ct_scan(phantom3d, tmp_path, caplog):
    use = {**USE, "voxel_size_mm": [0.4, 0.6]}  # the phantom's 0.9 x 1.1 mm written at 0.45 x 0.55 mm: in range
    path = save_model_file(tmp_path / "mag.safetensors", _dc_net(), meta={"intended_use": use})
    ct = Volume(phantom3d.data, phantom3d.affine, {**phantom3d.meta, "modality": "CT"})
    with caplog.at_level(logging.WARNING, logger="mrisr"):
        upscale_with_model(ct, str(path))
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(lines) == 1 and lines[0].startswith("mrisr: warning: the scan is CT")


@pytest.mark.parametrize("bad", [{"image": "phase"}, {"voxel_size_mm": [2, 1]}, {"voxel_size_mm": 1.0},
                                 {"colour": "blue"}, "MR"])
def test_a_malformed_intended_use_is_refused_when_the_file_is_written(tmp_path, bad):
    with pytest.raises(ConfigError, match="intended_use"):
        save_model_file(tmp_path / "x.safetensors", _dc_net(), meta={"intended_use": bad})
    with pytest.raises(ConfigError, match="intended_use"):
        intended_use({"intended_use": bad})
