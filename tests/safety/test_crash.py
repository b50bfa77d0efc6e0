"""Crash safety: a SIGKILL in the middle of a write leaves the old state (no output, or the previous
checkpoint); a rerun removes the temporaries, completes with the same result, and no input changed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from mrisr.cli import main
from mrisr.io import read_volume
from tests.safety.conftest import checksums

#: Runs the mrisr CLI with one function patched: the call after the first ``after`` calls does its work,
#: then prints "paused" and sleeps, so the parent kills the writer mid-write at a known point.
_PAUSED_CLI = """
import sys, time
target, after = sys.argv[1], int(sys.argv[2])
module_name, _, attr = target.rpartition(".")
import importlib
module = importlib.import_module(module_name)
owner = module
if ":" in attr:
    cls, attr = attr.split(":")
    owner = getattr(module, cls)
original = getattr(owner, attr)
calls = [0]
def paused(*args, **kwargs):
    calls[0] += 1
    result = original(*args, **kwargs)
    if calls[0] > after:
        print("paused", flush=True)
        time.sleep(600)
    return result
setattr(owner, attr, paused)
from mrisr.cli import main
sys.exit(main(sys.argv[3:]))
"""


def _run_until_paused(target: str, after: int, argv: list[str]) -> None:
    """Start the CLI with ``target`` paused after ``after`` calls, then SIGKILL it there."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-c", _PAUSED_CLI, target, str(after), *argv], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    seen = []
    for line in proc.stdout:  # the command's own output, then "paused" (or its end: a failure)
        if line.strip() == "paused":
            break
        seen.append(line)
    else:
        proc.wait(timeout=60)
        pytest.fail(f"the writer never paused: {''.join(seen)}")
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL


def _hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob(".*"))


def test_upscale_killed_while_writing_a_nifti_then_rerun(nifti_scan: Path, tmp_path: Path) -> None:
    before = checksums(nifti_scan.parent)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    out = out_dir / "sr.nii.gz"
    argv = ["upscale", str(nifti_scan), str(out), "--method", "lanczos", "--scale", "2"]
    _run_until_paused("nibabel.save", 0, argv)  # killed in the writer: file written, not yet renamed
    assert not out.exists() and len(_hidden(out_dir)) == 1  # only the temporary is there
    assert main(argv) == 0  # no --force needed: nothing was published
    assert _hidden(out_dir) == []  # the rerun removed the killed writer's temporary
    reference = tmp_path / "reference.nii.gz"
    assert main([*argv[:2], str(reference), *argv[3:]]) == 0
    got, want = read_volume(out), read_volume(reference)
    assert np.array_equal(got.data, want.data) and np.array_equal(got.affine, want.affine)
    assert checksums(nifti_scan.parent) == before


def test_upscale_killed_in_the_middle_of_a_dicom_series_then_rerun(phi_series: Path, tmp_path: Path) -> None:
    before = checksums(phi_series)
    out = tmp_path / "sr_series"
    argv = ["upscale", str(phi_series), str(out), "--model", "fast_kspace_x2"]
    _run_until_paused("pydicom.dataset.Dataset:save_as", 3, argv)  # 4 of 6 slices written
    hidden = [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert not out.exists() and len(hidden) == 1 and len(list(hidden[0].iterdir())) == 4
    assert main(argv) == 0
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    reference = tmp_path / "reference"
    assert main([argv[0], argv[1], str(reference), *argv[3:]]) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in reference.iterdir())
    got, want = read_volume(out), read_volume(reference)
    assert np.array_equal(got.data, want.data) and np.allclose(got.affine, want.affine)
    assert checksums(phi_series) == before


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mrisr.data.example import make_example_data
    from mrisr.data.prepare import prepare_dataset

    root = tmp_path_factory.mktemp("crash_data")
    ex = make_example_data(root / "raw", n_patients=3, seed=0, pediatric_shape=(32, 32, 4), cardiac=False,
                           bad_inputs=False)
    return Path(prepare_dataset(ex["pediatric"], root / "prepared", split={"train": 1, "val": 1, "test": 1})["out"])


def test_train_killed_while_writing_a_checkpoint_resumes_to_the_same_weights(prepared: Path,
                                                                            tmp_path: Path) -> None:
    import torch
    from safetensors.torch import load_file

    from tests.train.helpers import small_gan

    raw = small_gan(str(prepared), [{"name": "sup", "steps": 9, "losses": [{"name": "l1"}]}],
                    checkpoint={"every": 3}, run={"log_every": 3})
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(yaml.safe_dump(raw))
    before = checksums(prepared)
    run = tmp_path / "run"
    # the second checkpoint (step 6) is killed after its networks, while the trainer state is written
    _run_until_paused("torch.save", 1, ["train", str(cfg), "--out", str(run)])
    complete = json.loads((run / "checkpoints" / "last" / "COMPLETE").read_text())
    assert complete["step"] == 3  # the previous checkpoint is whole
    assert any(p.name.startswith(".last.tmp-") for p in (run / "checkpoints").iterdir())
    assert main(["train", "--resume", str(run)]) == 0
    assert not [p.name for p in (run / "checkpoints").iterdir() if p.name.startswith(".")]
    reference = tmp_path / "reference"
    assert main(["train", str(cfg), "--out", str(reference)]) == 0
    for stem in ("generator", "generator_ema", "discriminator"):
        file = Path("checkpoints/last") / f"{stem}.safetensors"
        if not (reference / file).exists():
            continue
        got, want = load_file(str(run / file)), load_file(str(reference / file))
        assert got.keys() == want.keys() and all(torch.equal(got[k], want[k]) for k in want), stem
    assert checksums(prepared) == before
