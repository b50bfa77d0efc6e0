"""The shipped zoo: every model loads from its file alone, says what it is for, has a card, and the
k-space ones end in data consistency; `upscale --scale S` picks kspace-xS; the old name still resolves."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mrisr.cli import main
from mrisr.degrade.kspace import kspace_truncate
from mrisr.io import read_volume, write_volume
from mrisr.io.volume import Volume
from mrisr.models.intended import intended_use
from mrisr.models.modelfile import list_pretrained, load_model_file, pretrained_dir, resolve_model_path
from mrisr.pretrained import ALIASES, default_model

ZOO = ("kspace-x2", "kspace-x3", "kspace-x4", "bicubic-x2", "block-x3", "fast-kspace-x2")


def test_the_zoo_is_shipped():
    assert set(ZOO) <= set(list_pretrained())
    for s in (2, 3, 4):
        assert default_model(s) in list_pretrained()


@pytest.mark.parametrize("name", ZOO)
def test_a_zoo_model_knows_what_it_is_for(name):
    model, meta = load_model_file(name)
    use = intended_use(meta)
    assert use["modality"] == "MR" and use["image"] == "magnitude"
    assert use["voxel_size_mm"][0] <= 1.0 <= use["voxel_size_mm"][1]
    assert meta["degradation"].split(":")[0] == name.split("-")[-2]
    assert int(meta["scale"]) == int(name[-1])
    sources = meta["training_data"]["sources"]
    assert sources and not any("pydicom-data" in s or "dipy" in s.lower() for s in sources)
    assert model.data_consistency == ("kspace" in name)
    cases = meta["test_metrics"]["cases"]
    assert len(cases) >= 4 and "worst_case_over" in meta["test_metrics"]
    card = (pretrained_dir() / f"{name}.md").read_text()
    assert f"`{name}`" in card and "Worst case" in card and "pydicom-data" in card


def test_the_old_name_is_an_alias():
    for old, new in ALIASES.items():
        assert resolve_model_path(old) == resolve_model_path(new)


def test_upscale_with_only_a_scale_uses_the_kspace_model_and_keeps_the_measured_band(phantom3d, tmp_path, capsys):
    src = tmp_path / "lr.nii.gz"
    lr = Volume(phantom3d.data[:, :, :4], phantom3d.affine, {})
    write_volume(lr, src)
    out = tmp_path / "sr.nii.gz"
    assert main(["upscale", str(src), str(out), "--scale", "2"]) == 0
    sr = read_volume(out)
    assert sr.shape == (96, 80, 4) and sr.data.min() >= 0
    assert "model kspace-x2" in capsys.readouterr().out
    # the measured band comes back as measured, except where negative ringing was set to 0
    band = kspace_truncate(torch.from_numpy(sr.data.astype(np.float64)), [2, 2], [0, 1], magnitude=False).numpy()
    assert np.abs(band - lr.data).mean() < 0.01 * float(lr.data.max())
