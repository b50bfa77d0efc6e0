"""A model file records the normalisation of the data it was trained on, and inference applies it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from mrisr.cli import main
from mrisr.data.normalise import (
    DEFAULT_NORMALISATION,
    apply_normalisation,
    denormalise,
    fit_normalisation,
    percentile_normalisation,
)
from mrisr.errors import ConfigError
from mrisr.infer.volume import clip_excess, upscale_excess, upscale_with_model
from mrisr.io.volume import Volume
from mrisr.models.modelfile import load_model_file, read_model_metadata
from mrisr.train.config import config_from_dict
from mrisr.train.loop import train
from tests.train.helpers import small_gan

SUP = [{"name": "sup", "steps": 2, "losses": [{"name": "l1"}]}]


@pytest.fixture(scope="module")
def prepared_1_99(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The pediatric cohort prepared with ``mrisr prepare --percentiles 1 99``."""
    from mrisr.data.example import make_example_data

    root = tmp_path_factory.mktemp("norm")
    ex = make_example_data(root / "raw", n_patients=3, seed=0, pediatric_shape=(48, 48, 4), cardiac=False,
                           bad_inputs=False)
    out = root / "p1_99"
    assert main(["prepare", str(ex["pediatric"]), str(out), "--percentiles", "1", "99",
                 "--split", "train=1,val=1,test=1", "--no-progress"]) == 0
    return out


def _network_by_hand(model: torch.nn.Module, stack: np.ndarray) -> np.ndarray:
    """``(X, Y, Z)`` normalised slices (slice axis last) through the 2D network, one slice at a time."""
    with torch.no_grad():
        out = [model(torch.from_numpy(np.ascontiguousarray(stack[..., z]))[None, None])[0, 0].numpy()
               for z in range(stack.shape[-1])]
    return np.stack(out, axis=-1)


def test_the_model_file_states_the_data_normalisation_and_inference_uses_it(prepared_1_99: Path,
                                                                            tmp_path: Path) -> None:
    run = train(config_from_dict(small_gan(str(prepared_1_99), SUP)), out=str(tmp_path / "run"))
    model_file = run / "checkpoints" / "last" / "generator.safetensors"
    assert read_model_metadata(model_file)["normalisation"] == percentile_normalisation(1.0, 99.0)

    rng = np.random.default_rng(1)
    scan = Volume(rng.gamma(2.0, 150.0, size=(12, 10, 3)).astype(np.float32), np.diag([1.0, 1.0, 3.0, 1.0]))
    got = upscale_with_model(scan, model_file, axis=2, batch_size=2).data

    model, _ = load_model_file(model_file)
    norm = fit_normalisation(scan.data, 1.0, 99.0)
    want = denormalise(_network_by_hand(model, apply_normalisation(scan.data, norm)), norm)
    excess = clip_excess(scan.data, norm.intensity_map)  # what the 1/99 window cut off, added back
    assert excess is not None
    want = want + upscale_excess(excess, [2, 2, 1])
    assert got.shape == (24, 20, 3)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-3)
    assert DEFAULT_NORMALISATION["low_percentile"] != 1.0
    default = upscale_with_model(scan, (model, {"normalisation": DEFAULT_NORMALISATION}), axis=2).data
    assert np.abs(default - got).max() > 1.0  # the 0.5/99.5 window the file used to claim differs


def test_phases_on_differently_normalised_data_are_refused(prepared_1_99: Path, prepared: dict[str, str],
                                                           tmp_path: Path) -> None:
    phases = [*SUP, {"name": "tune", "steps": 2, "losses": [{"name": "l1"}],
                     "data": {"root": prepared["data/prepared/pediatric"]}}]
    with pytest.raises(ConfigError, match=r"^phases\.1\.data\.root: .* percentiles 0\.5/99\.5 but data\.root "
                                          r"\(.*\) with percentiles 1/99; .*--percentiles"):
        train(config_from_dict(small_gan(str(prepared_1_99), phases)), out=str(tmp_path / "run"))
    assert not (tmp_path / "run").exists()
