"""One normalisation module: prepare's per-volume mapping, the manifest's record of it, inference's map."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mrisr.data.manifest import load_manifest
from mrisr.data.normalise import (
    DEFAULT_NORMALISATION,
    apply_normalisation,
    denormalise,
    fit_intensity_map,
    fit_normalisation,
    percentile_normalisation,
)
from mrisr.data.prepare import prepare_dataset
from mrisr.errors import ConfigError, InputError


def test_prepare_and_inference_fit_the_same_window() -> None:
    rng = np.random.default_rng(0)
    vol = rng.gamma(2.0, 100.0, size=(20, 24, 6)).astype(np.float32)
    norm = fit_normalisation(vol, 1.0, 99.0)
    imap = fit_intensity_map(vol, percentile_normalisation(1.0, 99.0))
    assert (imap.low, imap.high) == (norm.low, norm.high)
    assert (norm.low, norm.high) == pytest.approx(tuple(np.percentile(vol, [1.0, 99.0])), rel=1e-6)
    prepared = apply_normalisation(vol, norm)
    assert np.array_equal(prepared, imap.forward(vol))
    assert prepared.min() == 0.0 and prepared.max() == 1.0
    inside = (vol > norm.low) & (vol < norm.high)
    assert np.allclose(denormalise(prepared, norm)[inside], vol[inside], rtol=1e-5)


def test_a_constant_volume_maps_to_zero() -> None:
    vol = np.full((4, 4, 2), 7.0, np.float32)
    assert not apply_normalisation(vol, fit_normalisation(vol)).any()
    assert fit_intensity_map(vol, None).high == 8.0


def test_percentile_description_is_checked() -> None:
    assert percentile_normalisation(0.5, 99.5) == DEFAULT_NORMALISATION
    with pytest.raises(ConfigError, match="percentiles"):
        percentile_normalisation(99.0, 1.0)


@pytest.fixture(scope="module")
def prepared_1_99(example_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("norm") / "p"
    prepare_dataset(example_root / "pediatric", out, low_percentile=1, high_percentile=99)
    return out


def test_the_manifest_records_the_normalisation(prepared_1_99: Path) -> None:
    manifest = load_manifest(prepared_1_99)
    assert manifest.normalisation == percentile_normalisation(1.0, 99.0)
    assert json.loads((prepared_1_99 / "manifest.json").read_text())["normalisation"]["low_percentile"] == 1.0
    for v in manifest.volumes:  # each volume's own window, fitted with the recorded percentiles
        assert (v.record.normalisation["low_percentile"], v.record.normalisation["high_percentile"]) == (1.0, 99.0)


def test_a_manifest_without_the_entry_reads_its_options(prepared_1_99: Path, tmp_path: Path) -> None:
    doc = json.loads((prepared_1_99 / "manifest.json").read_text())
    del doc["normalisation"]
    (tmp_path / "manifest.json").write_text(json.dumps(doc))
    assert load_manifest(tmp_path).normalisation == percentile_normalisation(1.0, 99.0)
    doc["normalisation"] = {"method": "zscore"}
    (tmp_path / "manifest.json").write_text(json.dumps(doc))
    with pytest.raises(InputError, match="normalisation method"):
        load_manifest(tmp_path)
