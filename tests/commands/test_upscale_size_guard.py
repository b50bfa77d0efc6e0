"""An upscaled output larger than mrisr's voxel limit is refused before it is allocated."""

from __future__ import annotations

import numpy as np

from mrisr.cli import main
from mrisr.io import Volume, write_volume
from mrisr.models import build_model
from mrisr.models.modelfile import save_model_file


def test_upscale_refuses_an_absurd_output_before_allocating(tmp_path, monkeypatch, capsys):
    src = write_volume(Volume(np.random.default_rng(0).random((16, 16, 4)).astype(np.float32), np.eye(4)),
                       tmp_path / "in.nii.gz")
    model = save_model_file(tmp_path / "m.safetensors", build_model("fast", scale=2, channels=4, shrink=4, n_layers=1))
    monkeypatch.setattr("mrisr.io.limits.MAX_VOXELS", 2000)  # the x2 output holds 4096 voxels
    for how in (["--method", "bicubic", "--scale", "2"], ["--model", str(model)]):
        assert main(["upscale", str(src), str(tmp_path / "out.nii.gz"), *how]) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "upscaled output" in err[0] and "more than the limit" in err[0]
        assert not (tmp_path / "out.nii.gz").exists()
    monkeypatch.setattr("mrisr.io.limits.MAX_VOXELS", 5000)
    assert main(["upscale", str(src), str(tmp_path / "out.nii.gz"), "--method", "bicubic", "--scale", "2"]) == 0
