"""The protocols called from Python: degrade -> upscale -> score, and given pairs, with their on_case callback."""

import numpy as np
import pytest

from mrisr.data.phantoms import head_phantom
from mrisr.evaluate import CaseVolumes, ScoreOptions, evaluate_pairs, evaluate_protocol
from mrisr.io import Volume, write_volume
from mrisr.metrics.registry import METRICS


@pytest.fixture(scope="module")
def scans(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hr")
    paths = []
    for i in range(2):
        path = folder / f"case{i}.nii.gz"
        write_volume(Volume(head_phantom((21, 20, 8), seed=i) * 300.0, np.diag([1.0, 1.0, 3.0, 1.0])), path)
        paths.append(path)
    return paths


def test_protocol_rows_callback_and_order_independence(scans):
    seen: list[CaseVolumes] = []
    lines: list[str] = []
    rows = evaluate_protocol([str(p) for p in scans], ["kspace;noise:snr=20"], [2], ["nearest", "linear"],
                             seed=3, on_case=seen.append, progress=lines.append)
    assert [(r["case"], r["method"]) for r in rows] == [("case0", "nearest"), ("case0", "linear"),
                                                          ("case1", "nearest"), ("case1", "linear")]
    assert all(set(METRICS) <= set(r) and r["mask"] == "none" and r["scale"] == 2 for r in rows)
    assert [(cv.case, sorted(cv.outputs), len(cv.rows)) for cv in seen] == [
        ("case0", ["linear", "nearest"], 2), ("case1", ["linear", "nearest"], 2)]
    cv = seen[0]
    assert cv.reference.shape == (20, 20, 8)  # cropped to a multiple of the factors
    assert cv.lr is not None and cv.lr.shape == (10, 10, 8)
    assert all(v.shape == cv.reference.shape for v in cv.outputs.values())
    assert lines[0].startswith("case0 kspace;noise:snr=20 x2 nearest: PSNR ") and " dB, SSIM 0." in lines[0]
    # the per-case seed depends on the case name, not on the position of the input
    swapped = evaluate_protocol([str(p) for p in scans[::-1]], ["kspace;noise:snr=20"], [2], ["nearest", "linear"],
                                seed=3)
    key = lambda r: (r["case"], r["method"])  # noqa: E731
    assert {key(r): r["psnr"] for r in swapped} == {key(r): r["psnr"] for r in rows}


def test_pairs_api_and_options(scans, tmp_path):
    ref = Volume(head_phantom((21, 20, 8), seed=0) * 300.0, np.diag([1.0, 1.0, 3.0, 1.0]))
    write_volume(ref.with_data(ref.data + 3.0), tmp_path / "case0.nii.gz")
    seen: list[CaseVolumes] = []
    opts = ScoreOptions(gaussian=True, nrmse_normalization="min-max")
    rows = evaluate_pairs(scans[0], tmp_path / "case0.nii.gz", mask="auto", opts=opts, method="mine",
                          on_case=seen.append)
    assert [(r["case"], r["method"], r["degradation"], r["mask"]) for r in rows] == [("case0", "mine", "", "auto")]
    assert seen[0].lr is None and list(seen[0].outputs) == ["mine"] and seen[0].mask is not None
    plain = evaluate_pairs(scans[0], tmp_path / "case0.nii.gz", mask="auto")
    assert rows[0]["psnr"] == pytest.approx(plain[0]["psnr"])  # PSNR does not depend on the SSIM window
    assert rows[0]["ssim"] != pytest.approx(plain[0]["ssim"]) and rows[0]["nrmse"] != pytest.approx(plain[0]["nrmse"])
    assert opts.settings() == {"ssim": "gaussian sigma 1.5", "ssim_slice_axis": 2, "nrmse": "min-max",
                               "data_range": "reference max - min"}
