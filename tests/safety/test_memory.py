"""A job that needs more memory than the machine has is refused before it allocates, with one line naming
what it needs and what is available; an allocation failure inside torch gives the same one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from mrisr.cli import main
from mrisr.errors import MrisrError
from mrisr.io.memory import LIMIT_ENV, available_bytes, check_memory, is_out_of_memory, volume_job_bytes
from tests.safety.conftest import checksums


def _one_line(capsys, *words: str) -> None:
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1 and captured.err.startswith("mrisr: error: out of memory"), captured.err
    assert "unexpected" not in captured.err
    for word in words:
        assert word in captured.err, captured.err


@pytest.mark.parametrize("how", [["--method", "zerofill", "--scale", "4"], ["--model", "fast_kspace_x2"]])
def test_upscale_beyond_available_memory_is_refused(nifti_scan: Path, tmp_path: Path, capsys,
                                                    monkeypatch: pytest.MonkeyPatch, how: list[str]) -> None:
    monkeypatch.setenv(LIMIT_ENV, "1M")
    before = checksums(nifti_scan)
    out = tmp_path / "sr.nii.gz"
    assert main(["upscale", str(nifti_scan), str(out), *how]) == 1
    _one_line(capsys, "needs about", "MiB", "only 1 MiB is available")
    assert not out.exists() and checksums(nifti_scan) == before
    monkeypatch.setenv(LIMIT_ENV, "64G")
    assert main(["upscale", str(nifti_scan), str(out), *how]) == 0


def test_torch_allocation_failure_is_the_one_line_out_of_memory_error(nifti_scan: Path, tmp_path: Path, capsys,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    import mrisr.degrade.baselines as baselines

    def fail(*args: object, **kwargs: object) -> None:
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:127] data. DefaultCPUAllocator: not enough memory: "
                           "you tried to allocate 93312000000 bytes.")

    monkeypatch.setattr(baselines, "upscale_volume", fail)
    out = tmp_path / "sr.nii.gz"
    assert main(["upscale", str(nifti_scan), str(out), "--method", "bicubic", "--scale", "2"]) == 1
    _one_line(capsys, "93312000000 bytes")
    assert not out.exists()


def test_memory_helpers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(LIMIT_ENV, raising=False)
    free = available_bytes()
    assert free is None or free > 0
    for text, value in (("512M", 512 * 2**20), ("2GiB", 2 * 2**30), ("1000", 1000), ("1.5k", 1536)):
        monkeypatch.setenv(LIMIT_ENV, text)
        assert available_bytes() == min(value, free or value)
    monkeypatch.setenv(LIMIT_ENV, "lots")
    with pytest.raises(MrisrError, match=LIMIT_ENV):
        available_bytes()
    monkeypatch.setenv(LIMIT_ENV, "10M")
    check_memory(10 * 2**20, "a job that fits")
    with pytest.raises(MrisrError, match=r"a big job needs about 20 MiB, but only 10 MiB"):
        check_memory(20 * 2**20, "a big job")
    # 6x the float32 output + 3x the float32 input (the issue measured peaks of 2.5-5.8x the output)
    assert volume_job_bytes((10, 10, 2), (5, 5, 2)) == 4 * (6 * 200 + 3 * 50)
    assert is_out_of_memory(MemoryError()) and is_out_of_memory(RuntimeError("CUDA out of memory. Tried ..."))
    assert not is_out_of_memory(RuntimeError("shape mismatch"))
