"""Every hostile input of :mod:`tests.hostile.cases` through the real CLI.

The contract (README "Exit codes"): exit code 1, exactly one stderr line ``mrisr: error: ...`` naming the
input (or, for configs, the key), no output file or folder (nor a temporary), the input byte-identical.
Every case runs in-process (:func:`mrisr.cli.main`: fast; no mrisr WARNING record and no library warning
may escape); the cases whose warnings or log lines come from libraries' own handlers, or that used to
hang, run again as a real process with a timeout, where stderr is exactly what a user sees.
"""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from mrisr.cli import main
from mrisr.io.volume import Volume
from tests.hostile.cases import CASES, INPUT_ERROR, Case

#: A real process gets this long (a hang guard on 2 shared cores, not a speed test); a case that takes
#: more has hung.
TIMEOUT_S = 120
#: Library packages whose warnings must never reach the user directly.
LIBRARIES = ("nibabel", "pydicom", "numpy", "PIL", "mrisr")


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A prepared training folder (two patients: train and val) for the config cases."""
    from mrisr.io.nifti import write_nifti

    root = tmp_path_factory.mktemp("prepared")
    rng = np.random.default_rng(0)
    for patient in ("p1", "p2"):
        (root / "src" / patient).mkdir(parents=True)
        write_nifti(Volume(rng.random((32, 32, 4)).astype(np.float32) * 100, np.eye(4)),
                    root / "src" / patient / "t1.nii.gz")
    assert main(["prepare", str(root / "src"), str(root / "prep"), "--split", "train=0.5,val=0.5"]) == 0
    return root / "prep"


def _digests(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _tree(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def _setup(case: Case, tmp_path: Path, prepared: Path) -> tuple[list[str], Path, Path, Path]:
    """``(argv, input, input folder, output folder)``; inputs live under a path with a space and umlauts."""
    folder = tmp_path / "hostile input ü"
    folder.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    values = {"out": str(out), "prepared": str(prepared)}
    if any("{scan}" in a for a in case.argv):
        from mrisr.io.nifti import write_nifti

        scan = folder / "valid scan.nii.gz"
        write_nifti(Volume(np.arange(8 * 8 * 4, dtype=np.float32).reshape(8, 8, 4), np.eye(4)), scan)
        values["scan"] = str(scan)
    inp = case.build(folder, prepared)
    values["input"] = str(inp)
    return [a.format(**values) for a in case.argv], inp, folder, out


def _check_line(case: Case, err: str, inp: Path) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1, f"{case.name}: expected one stderr line, got:\n{err}"
    line = lines[0]
    assert line.startswith("mrisr: error: "), line
    named = case.names if case.names is not None else str(inp)
    assert named in line, f"{case.name}: the error does not name {named!r}: {line}"
    for word in case.expect:
        assert word in line, f"{case.name}: {word!r} missing from: {line}"


def test_corpus_size():
    assert len(CASES) >= 40
    assert len({c.name for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_refused_in_process(case: Case, tmp_path, prepared, capfd, caplog):
    argv, inp, folder, out = _setup(case, tmp_path, prepared)
    before, tree = _digests(folder), _tree(tmp_path)
    capfd.readouterr()
    with caplog.at_level(logging.WARNING), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code = main(argv)
    assert code == INPUT_ERROR, case.name
    _check_line(case, capfd.readouterr().err, inp)
    leaked = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING and r.name.startswith("mrisr")]
    assert not leaked, f"{case.name}: warnings before the refusal: {leaked}"
    library = [f"{w.category.__name__}: {w.message}" for w in caught
               if any(f"{os.sep}{lib}{os.sep}" in w.filename for lib in LIBRARIES)]
    assert not library, f"{case.name}: library warnings reached the user: {library}"
    assert _tree(tmp_path) == tree, f"{case.name}: files were created or removed"
    assert not any(out.iterdir())
    assert _digests(folder) == before, f"{case.name}: the input changed"


@pytest.mark.parametrize("case", [c for c in CASES if c.subprocess], ids=lambda c: c.name)
def test_refused_as_a_process(case: Case, tmp_path, prepared):
    argv, inp, folder, out = _setup(case, tmp_path, prepared)
    before, tree = _digests(folder), _tree(tmp_path)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONWARNINGS", "MRISR_DEBUG")}
    try:
        proc = subprocess.run([sys.executable, "-m", "mrisr", *argv], capture_output=True, text=True,
                              timeout=TIMEOUT_S, env=env, cwd=tmp_path)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{case.name}: still running after {TIMEOUT_S} s (a hang)")
    assert proc.returncode == INPUT_ERROR, (case.name, proc.returncode, proc.stderr)
    _check_line(case, proc.stderr, inp)
    assert proc.stdout == ""
    assert _tree(tmp_path) == tree, f"{case.name}: files were created or removed"
    assert not any(out.iterdir())
    assert _digests(folder) == before, f"{case.name}: the input changed"
