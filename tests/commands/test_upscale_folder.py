"""`mrisr upscale IN_FOLDER OUT_FOLDER`: every scan upscaled with the foundation's geometry, existing outputs
skipped, a failing scan reported without stopping the batch, a SIGKILL mid-batch resumed to identical outputs,
and a 2-process torchrun batch equal to a single process."""

from __future__ import annotations

import gzip
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest
import torch

from mrisr.cli import main
from mrisr.degrade.grid import resampled_volume
from mrisr.io import Volume, read_volume, write_volume
from mrisr.io.dicom import find_series
from mrisr.io.volume import LPS_TO_RAS
from mrisr.models import build_model, save_model_file
from mrisr.models.registry import REGISTRY
from tests.conftest import oblique_affine

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    """A tiny randomly initialised 2D x2 network (its output is no baseline: any mix-up of scans shows)."""
    torch.manual_seed(3)
    model = build_model("fast", scale=2, **REGISTRY["fast"].tiny).eval()
    return save_model_file(tmp_path_factory.mktemp("model") / "tiny.safetensors", model)


def _scan(shape, seed, **meta):
    data = np.rint(np.random.default_rng(seed).random(shape) * 800 + 100).astype(np.float32)
    return Volume(data, oblique_affine(), dict(meta))


@pytest.fixture
def batch_in(tmp_path):
    """in/a.nii.gz (3D), in/b/cine.nii.gz (4D), in/c/ (a DICOM series), in/d.nii.gz (3D)."""
    root = tmp_path / "in"
    write_volume(_scan((12, 10, 4), 1), root / "a.nii.gz")
    write_volume(Volume(_scan((10, 8, 3, 2), 2).data, np.diag([1.4, 1.2, 6.0, 1.0]), {"time_spacing": 0.05}),
                 root / "b" / "cine.nii.gz")
    write_volume(_scan((12, 10, 3), 3, patient_id="P9"), root / "c")
    write_volume(_scan((10, 12, 5), 4), root / "d.nii.gz")
    return root


def _check_outputs(src: Path, out: Path) -> None:
    for name in ("a.nii.gz", "b/cine.nii.gz", "d.nii.gz"):
        vol, got = read_volume(src / name), read_volume(out / name)
        factors = [2, 2, 1]
        assert got.shape == tuple(n * f for n, f in zip(vol.shape, [*factors, 1], strict=False))
        want = resampled_volume(vol, got.data, factors, {"op": "upscale"})
        np.testing.assert_allclose(got.affine, want.affine, atol=1e-5)
    # DICOM in, DICOM out: the grid attributes of the upscaled geometry
    vol, got = read_volume(src / "c"), read_volume(out / "c")
    want = resampled_volume(vol, np.zeros((24, 20, 3), np.float32), [2, 2, 1], {"op": "upscale"})
    files = sorted(find_series(out / "c").values().__iter__().__next__())
    headers = sorted((pydicom.dcmread(f) for f in files), key=lambda d: int(d.InstanceNumber))
    assert len(headers) == 3
    sx, sy, _ = want.spacing
    for k, ds in enumerate(headers):
        assert (ds.Rows, ds.Columns) == (20, 24)
        np.testing.assert_allclose([float(v) for v in ds.PixelSpacing], [sy, sx], atol=1e-4)
        ipp = (LPS_TO_RAS @ want.affine @ np.array([0.0, 0.0, k, 1.0]))[:3]
        np.testing.assert_allclose([float(v) for v in ds.ImagePositionPatient], ipp, atol=1e-3)
        assert ds.PatientID == "P9" and ds.SeriesDescription.endswith("[mrisr SR x2]")
    np.testing.assert_allclose(got.affine, want.affine, atol=1e-4)


def test_a_folder_batch_upscales_every_scan_then_resumes(batch_in, tmp_path, model_file, capsys):
    out = tmp_path / "out"
    assert main(["upscale", str(batch_in), str(out), "--model", str(model_file)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-1] == "upscaled 4, skipped 0, failed 0"
    assert sum(line.startswith("wrote ") for line in lines) == 4
    _check_outputs(batch_in, out)
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    # a rerun skips what exists; a removed output is made again, the others are left alone
    (out / "d.nii.gz").unlink()
    assert main(["upscale", str(batch_in), str(out), "--model", str(model_file)]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == "upscaled 1, skipped 3, failed 0"
    after = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    assert all(after[p] == t for p, t in before.items() if p.name != "d.nii.gz")
    assert main(["upscale", str(batch_in), str(out), "--model", str(model_file), "--force"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == "upscaled 4, skipped 0, failed 0"
    assert [p for p in out.rglob(".*")] == []


def test_a_failing_scan_does_not_stop_the_batch(batch_in, tmp_path, capsys):
    (batch_in / "bad.nii.gz").write_bytes(gzip.compress(b"not a nifti header" * 40))
    out = tmp_path / "out"
    assert main(["upscale", str(batch_in), str(out), "--method", "bicubic", "--scale", "2", "--to", "nifti"]) == 1
    summary = capsys.readouterr().out.strip().splitlines()[-1]
    assert summary.startswith("upscaled 4, skipped 0, failed 1 (bad.nii.gz: ")
    assert (out / "c.nii.gz").is_file() and not (out / "bad.nii.gz").exists()
    vol, got = read_volume(batch_in / "a.nii.gz"), read_volume(out / "a.nii.gz")
    np.testing.assert_allclose(got.data, resampled_volume(vol, got.data, [2, 2, 1], {}).data)


def test_batch_options_that_apply_to_one_scan_are_refused(batch_in, tmp_path, capsys):
    assert main(["upscale", str(batch_in), str(tmp_path / "o"), "--method", "linear", "--scale", "2",
                 "--like", str(batch_in / "c")]) == 1
    assert "apply to one scan" in capsys.readouterr().err
    assert main(["upscale", str(batch_in), str(batch_in / "o"), "--method", "linear", "--scale", "2"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "lies inside the input" in err[0]
    assert main(["upscale", str(batch_in / "a.nii.gz"), str(tmp_path / "x.nii.gz"), "--method", "linear",
                 "--scale", "2", "--to", "dicom"]) == 1
    assert "--to applies to a folder" in capsys.readouterr().err


#: Runs the CLI with the outputs streamed in slabs and the writer paused (then killed) in the middle of its
#: ``after + 1``-th slab: the second scan of the batch.
_PAUSED_BATCH = """
import sys, time
import mrisr.io.stream as stream
import mrisr.infer.volume as volume
stream.WHOLE_BYTES = 0
volume.SLAB_BYTES = 4 * 24 * 20 * 2
after = int(sys.argv[1])
original = stream._RawBody.write
calls = [0]
def paused(self, index, slab):
    calls[0] += 1
    if calls[0] > after:
        print("paused", flush=True)
        time.sleep(600)
    return original(self, index, slab)
stream._RawBody.write = paused
from mrisr.cli import main
sys.exit(main(sys.argv[2:]))
"""


def test_a_batch_killed_mid_scan_resumes_to_identical_outputs(batch_in, tmp_path, model_file):
    out, reference = tmp_path / "out", tmp_path / "reference"
    argv = ["upscale", str(batch_in), str(out), "--model", str(model_file)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(ROOT)}
    # scan a.nii.gz: 2 slabs of 2 slices; then killed in the first slab of b/cine.nii.gz
    proc = subprocess.Popen([sys.executable, "-c", _PAUSED_BATCH, "2", *argv], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    seen = []
    for line in proc.stdout:
        if line.strip() == "paused":
            break
        seen.append(line)
    else:
        proc.wait(timeout=60)
        pytest.fail(f"the batch never paused: {''.join(seen)}")
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert (out / "a.nii.gz").is_file() and not (out / "b" / "cine.nii.gz").exists()
    # a .nii.gz streams into an unlinked scratch file until its last slab: a kill leaves no file at all
    assert list((out / "b").iterdir()) == []
    rerun = subprocess.run([sys.executable, "-c", _PAUSED_BATCH, "1000000", *argv], env=env, capture_output=True,
                           text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert rerun.stdout.strip().splitlines()[-1] == "upscaled 3, skipped 1, failed 0"
    # an uninterrupted batch with the same slabs (the slab size decides the network's batches, hence the bits)
    uninterrupted = subprocess.run([sys.executable, "-c", _PAUSED_BATCH, "1000000", argv[0], argv[1],
                                    str(reference), *argv[3:]], env=env, capture_output=True, text=True, timeout=300)
    assert uninterrupted.returncode == 0, uninterrupted.stderr
    assert [p for p in out.rglob(".*")] == []
    for name in ("a.nii.gz", "b/cine.nii.gz", "d.nii.gz"):
        assert gzip.open(out / name).read() == gzip.open(reference / name).read(), name
    np.testing.assert_array_equal(read_volume(out / "c").data, read_volume(reference / "c").data)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_two_process_torchrun_batch_equals_a_single_process(batch_in, tmp_path, model_file):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    single, shared = tmp_path / "single", tmp_path / "shared"
    argv = ["upscale", str(batch_in), "OUT", "--model", str(model_file)]
    one = subprocess.run([sys.executable, "-m", "mrisr", *[str(single) if a == "OUT" else a for a in argv]],
                         env=env, capture_output=True, text=True, timeout=300)
    assert one.returncode == 0, one.stderr
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr",
                          "127.0.0.1", "--master_port", str(_free_port()), "-m", "mrisr",
                          *[str(shared) if a == "OUT" else a for a in argv]],
                         env=env, capture_output=True, text=True, timeout=300)
    assert two.returncode == 0, two.stderr
    # each rank wrote its share; rank 0 printed the summary of both
    assert two.stdout.count("upscaled 4, skipped 0, failed 0") == 1
    assert sum(line.startswith("wrote ") for line in two.stdout.splitlines()) == 4
    for name in ("a.nii.gz", "b/cine.nii.gz", "d.nii.gz"):
        assert gzip.open(shared / name).read() == gzip.open(single / name).read(), name
    np.testing.assert_array_equal(read_volume(shared / "c").data, read_volume(single / "c").data)
