"""Untrusted files: a crafted pickle is refused and never executed; a forged safetensors header is refused
before anything is allocated. Each refusal is one stderr line, exit code 1, no output, input unchanged."""

from __future__ import annotations

import json
import os
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from mrisr.cli import main
from mrisr.errors import InputError
from tests.safety.conftest import checksums


class Payload:
    """Unpickling this creates the file ``marker``: proof that code in the file ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.makedirs, (str(self.marker),))


def _pickle_file(path: Path, marker: Path) -> Path:
    """A pickle carrying :class:`Payload` in the format its suffix suggests."""
    if path.suffix == ".npy":
        np.save(path, np.array([Payload(marker)], dtype=object), allow_pickle=True)
    elif path.suffix == ".pth":
        torch.save({"weight": Payload(marker)}, path)  # torch's zip format
    else:
        path.write_bytes(pickle.dumps({"state_dict": Payload(marker)}, protocol=2))
    return path


def _one_error(capsys, *words: str) -> str:
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1 and captured.err.startswith("mrisr: error: "), captured.err
    for word in words:
        assert word in captured.err, captured.err
    return captured.out


def test_the_payload_does_run_when_unpickled(tmp_path: Path) -> None:
    # the guard against a test that cannot fail: plain pickle.load executes it
    marker = tmp_path / "ran"
    pickle.loads(_pickle_file(tmp_path / "x.pt", marker).read_bytes())
    assert marker.exists()


@pytest.mark.parametrize("suffix", [".pt", ".pth", ".ckpt", ".bin"])
def test_upscale_refuses_a_pickled_model(nifti_scan: Path, tmp_path: Path, capsys, suffix: str) -> None:
    marker = tmp_path / "ran"
    model = _pickle_file(tmp_path / f"evil{suffix}", marker)
    before = checksums(nifti_scan.parent)
    assert main(["upscale", str(nifti_scan), str(tmp_path / "sr.nii.gz"), "--model", str(model)]) == 1
    _one_error(capsys, "pickle", model.name)
    assert not marker.exists() and not (tmp_path / "sr.nii.gz").exists()
    assert checksums(nifti_scan.parent) == before


def test_a_pickle_in_a_npy_input_is_refused(tmp_path: Path, capsys) -> None:
    marker = tmp_path / "ran"
    scan = _pickle_file(tmp_path / "scan.npy", marker)
    before = checksums(scan)
    assert main(["upscale", str(scan), str(tmp_path / "sr.nii.gz"), "--method", "bicubic", "--scale", "2"]) == 1
    _one_error(capsys, "scan.npy")
    assert not marker.exists() and not (tmp_path / "sr.nii.gz").exists() and checksums(scan) == before


def test_evaluate_refuses_a_pickle_before_scoring_anything(nifti_scan: Path, tmp_path: Path, capsys) -> None:
    marker = tmp_path / "ran"
    model = _pickle_file(tmp_path / "evil.pt", marker)
    out = tmp_path / "res"
    assert main(["evaluate", str(nifti_scan), "--methods", f"bicubic,{model}", "--scale", "2",
                 "--out", str(out)]) == 1
    stdout = _one_error(capsys, "evil.pt")
    assert stdout == "" and not marker.exists() and not out.exists()


def test_a_trainer_state_that_is_a_pickle_is_refused(tmp_path: Path) -> None:
    from mrisr.train.checkpoint import STATE_FILE, load_state

    marker = tmp_path / "ran"
    ckpt = tmp_path / "checkpoints" / "last"
    ckpt.mkdir(parents=True)
    torch.save({"step": 3, "rng": Payload(marker)}, ckpt / STATE_FILE)
    with pytest.raises(InputError, match="not a weights-only trainer state") as info:
        load_state(ckpt)
    assert "\n" not in str(info.value) and not marker.exists()


def test_vgg19_weights_that_are_a_pickle_are_refused(tmp_path: Path) -> None:
    from mrisr.losses.perceptual import load_vgg19_features

    marker = tmp_path / "ran"
    with pytest.raises(InputError, match="weights-only"):
        load_vgg19_features(_pickle_file(tmp_path / "vgg19.pth", marker), upto=3)
    assert not marker.exists()


def _forged_safetensors(path: Path, shape: list[int], stored: int) -> Path:
    """A safetensors file whose header claims one float32 tensor of ``shape`` but holds ``stored`` bytes."""
    header = json.dumps({"w": {"dtype": "F32", "shape": shape,
                               "data_offsets": [0, 4 * int(np.prod(shape, dtype=object))]},
                         "__metadata__": {"mrisr": "{}"}}).encode()
    path.write_bytes(struct.pack("<Q", len(header)) + header + b"\0" * stored)
    return path


@pytest.mark.parametrize("shape", [[100_000, 100_000, 100], [2**40, 2**40], [16]])
def test_a_safetensors_header_claiming_huge_tensors_is_refused(nifti_scan: Path, tmp_path: Path, capsys,
                                                              shape: list[int]) -> None:
    model = _forged_safetensors(tmp_path / "forged.safetensors", shape, stored=32)
    assert main(["upscale", str(nifti_scan), str(tmp_path / "sr.nii.gz"), "--model", str(model)]) == 1
    _one_error(capsys, "forged.safetensors", "claims shape")
    assert not (tmp_path / "sr.nii.gz").exists()
    assert main(["models", "show", str(model)]) == 1
    _one_error(capsys, "claims shape")


def test_a_malformed_tensor_entry_is_refused(tmp_path: Path) -> None:
    from mrisr.models.modelfile import load_model_file

    header = json.dumps({"w": {"dtype": "F32", "shape": [-4], "data_offsets": [0, 16]}}).encode()
    path = tmp_path / "bad.safetensors"
    path.write_bytes(struct.pack("<Q", len(header)) + header + b"\0" * 16)
    with pytest.raises(InputError, match="malformed entry"):
        load_model_file(path)
