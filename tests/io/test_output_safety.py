"""Outputs: --force never deletes what mrisr did not write; an interrupted write leaves nothing behind."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from mrisr.cli import main
from mrisr.errors import OutputExistsError
from mrisr.io import read_volume, write_volume
from mrisr.io.atomic import atomic_path


def test_force_refuses_to_delete_a_folder_with_other_files(tmp_path, phantom3d, capsys):
    home = tmp_path / "home"
    (home / "projects").mkdir(parents=True)
    (home / "notes.txt").write_text("precious")
    src = tmp_path / "in.nii.gz"
    write_volume(phantom3d, src)
    assert main(["convert", str(src), str(home), "--force"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not DICOM" in err
    assert (home / "notes.txt").read_text() == "precious" and (home / "projects").is_dir()
    # a file output onto a folder of other things is refused the same way
    with pytest.raises(OutputExistsError):
        write_volume(phantom3d, home, force=True)
    assert sorted(p.name for p in home.iterdir()) == ["notes.txt", "projects"]


def test_force_replaces_an_earlier_dicom_series_and_an_empty_folder(tmp_path, phantom3d):
    vol = phantom3d.with_data(np.rint(phantom3d.data))
    out = tmp_path / "series"
    write_volume(vol, out)
    write_volume(vol.with_data(vol.data + 1), out, force=True)
    assert np.array_equal(read_volume(out).data, vol.data + 1)
    (tmp_path / "empty").mkdir()
    write_volume(vol, tmp_path / "empty", force=True)
    assert len(list((tmp_path / "empty").iterdir())) == vol.shape[2]


def test_failed_write_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError), atomic_path(tmp_path / "out.nii.gz") as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


# The child restores Python's default SIGINT handler: a parent started in the background (nohup, CI
# runners without job control) passes SIGINT down as ignored, and Python then never raises
# KeyboardInterrupt, which is not what this test is about.
_SLOW_WRITER = """
import signal, sys, time
signal.signal(signal.SIGINT, signal.default_int_handler)
from pathlib import Path
from mrisr.io.atomic import atomic_path
with atomic_path(Path(sys.argv[1]) / "series") as tmp:
    tmp.mkdir()
    for i in range(600):
        (tmp / f"IM{i:05d}.dcm").write_bytes(b"x")
        if i == 3:
            print("writing", flush=True)
        time.sleep(0.05)
"""


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_during_write_leaves_nothing(tmp_path, sig):
    proc = subprocess.Popen([sys.executable, "-c", _SLOW_WRITER, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "writing"
    assert any(p.name.startswith(".series.") for p in tmp_path.iterdir())
    proc.send_signal(sig)
    proc.wait(timeout=30)
    assert proc.returncode != 0
    time.sleep(0.05)
    assert list(tmp_path.iterdir()) == []


def test_output_under_a_file_is_a_one_line_error(tmp_path, phantom3d, capsys):
    (tmp_path / "afile").write_text("x")
    src = tmp_path / "in.nii.gz"
    write_volume(phantom3d, src)
    assert main(["convert", str(src), str(tmp_path / "afile" / "out.nii.gz")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot write" in err and "unexpected" not in err


def test_disk_full_while_writing_leaves_nothing(tmp_path):
    import errno

    from mrisr.errors import MrisrError

    with pytest.raises(MrisrError, match="No space left"), atomic_path(tmp_path / "out.nii.gz") as tmp:
        tmp.write_bytes(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")
    assert list(tmp_path.iterdir()) == []
