"""`mrisr evaluate --report`: report.html numbers, figures (panels, common windowing), orientation, refusals."""

import csv
import json
import re

import numpy as np
import pytest
from PIL import Image

from mrisr.cli import main
from mrisr.data.phantoms import head_phantom
from mrisr.degrade.baselines import upscale_volume
from mrisr.degrade.chain import build_degradation
from mrisr.evaluate import CaseVolumes
from mrisr.io import Volume, write_volume
from mrisr.report.figures import case_figure, choose_slice, display_orientation


@pytest.fixture(scope="module")
def hr_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hr")
    for i in range(2):
        write_volume(Volume(head_phantom((40, 36, 8), seed=i) * 500.0, np.diag([1.0, 1.0, 3.0, 1.0])),
                     folder / f"case{i}.nii.gz")
    return folder


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    from mrisr.models import build_model, save_model_file
    from mrisr.models.registry import REGISTRY

    net = build_model("fast", scale=2, residual="bicubic", **REGISTRY["fast"].tiny)
    return save_model_file(tmp_path_factory.mktemp("m") / "tinyfast", net,
                           meta={"training_data": "synthetic phantoms (test)",
                                 "validation_metrics": {"psnr": 12.5}})


@pytest.fixture(scope="module")
def protocol_report(tmp_path_factory, hr_folder, model_file):
    out = tmp_path_factory.mktemp("rep") / "out"
    rc = main(["evaluate", str(hr_folder), "--degradation", "kspace", "--scale", "2",
               "--methods", f"{model_file},bicubic,nearest", "--report", "--out", str(out), "--quiet"])
    assert rc == 0
    return out


def _row_html(text, method, group=None):
    """The <tr> of ``method`` (in the summary table of ``group`` when given)."""
    if group is not None:
        text = text.split(f'data-group="{group}"', 1)[1].split("</table>", 1)[0]
    m = re.search(rf"<tr [^>]*data-method='{re.escape(method)}'>(.*?)</tr>", text, re.S)
    assert m, method
    return m.group(1)


def test_summary_table_matches_summary_json(protocol_report, model_file):
    text = (protocol_report / "report.html").read_text()
    summary = json.loads((protocol_report / "summary.json").read_text())["results"]
    assert [e["method"] for e in summary][:2] == ["nearest", "bicubic"]
    table = text.split('data-group="kspace x2"', 1)[1].split("</table>", 1)[0]
    order = re.findall(r"data-method='([^']+)'", table)
    assert order == ["nearest", "bicubic", str(model_file)]  # baselines first
    for e in summary:
        row = _row_html(text, e["method"], "kspace x2")
        assert f"<td class='num'>{e['n']}</td>" in row
        for metric, digits in (("psnr", 2), ("ssim", 4), ("ssim3d", 4), ("nrmse", 4)):
            s = e[metric]
            assert f"{s['mean']:.{digits}f} ± {s['std']:.{digits}f}" in row
            lo, hi = s["ci95"]
            assert f"95% CI [{lo:.{digits}f}, {hi:.{digits}f}]" in row
    # best value per column highlighted, exactly once per metric here
    best_psnr = max(e["psnr"]["mean"] for e in summary)
    best_nrmse = min(e["nrmse"]["mean"] for e in summary)
    best_cells = re.findall(r"<td class='num best' data-metric='(\w+)'>([^<]*)", table)
    assert (("psnr", f"{best_psnr:.2f}") in [(m, v.split(" ")[0]) for m, v in best_cells])
    assert (("nrmse", f"{best_nrmse:.4f}") in [(m, v.split(" ")[0]) for m, v in best_cells])
    assert len([m for m, _ in best_cells if m == "psnr"]) == 1
    # gain of the model over the best baseline, in dB
    base = {e["method"]: e["psnr"]["mean"] for e in summary if e["method"] in ("nearest", "bicubic")}
    model = next(e for e in summary if e["method"] == str(model_file))
    gain = model["psnr"]["mean"] - max(base.values())
    assert f"{gain:+.2f}</span> <span class='muted'>vs bicubic" in _row_html(text, str(model_file), "kspace x2")


def test_per_case_table_history_and_provenance(protocol_report, model_file):
    text = (protocol_report / "report.html").read_text()
    rows = list(csv.DictReader((protocol_report / "per_case.csv").open()))
    assert len(rows) == 2 * 3
    all_cases = text.split("<h2>All cases</h2>", 1)[1].split("</table>", 1)[0]
    for r in rows:
        m = re.search(rf"<tr data-case='{r['case']}' data-method='{re.escape(r['method'])}'>(.*?)</tr>", all_cases)
        assert m
        for metric, digits in (("psnr", 2), ("ssim", 4), ("ssim3d", 4), ("nrmse", 4)):
            assert f"data-metric='{metric}'>{float(r[metric]):.{digits}f}</td>" in m.group(1)
    history = text.split("<h2>Degradation history per case</h2>", 1)[1].split("</table>", 1)[0]
    assert history.count("&quot;op&quot;: &quot;degrade&quot;") == 2
    assert "&quot;seed&quot;" in history and "kspace" in history
    prov = text.split("<h2>Provenance</h2>", 1)[1]
    from mrisr import __version__

    assert f"<th>mrisr version</th><td>{__version__}</td>" in prov
    assert "command line" in prov and "date (UTC)" in prov
    assert "case0.nii.gz" in prov and "case1.nii.gz" in prov  # inputs
    assert "<h4>" + str(model_file) + "</h4>" in prov
    assert "<th>arch</th><td>fast</td>" in prov
    assert "synthetic phantoms (test)" in prov and "12.5" in prov
    # self-contained: inline scripts only (the slice sliders), no remote assets, no URL
    assert "<script src" not in text and "http://" not in text and "https://" not in text


def test_report_figures_exist_with_declared_size(protocol_report):
    text = (protocol_report / "report.html").read_text()
    imgs = re.findall(r"<img src='(figures/[^']+\.png)' width='(\d+)' height='(\d+)'", text)
    assert len(imgs) == 2
    for src, w, h in imgs:
        with Image.open(protocol_report / src) as im:
            assert im.format == "PNG"
            assert im.size == (int(w), int(h))
            assert im.size[0] > 5 * 200  # 5 columns: LR | nearest | bicubic | model | HR


def _case(tmp_path, n=64, zoom_ok=True):
    aff = np.diag([0.9, 0.9, 2.0, 1.0])
    ref = Volume(head_phantom((n, n, 12), seed=3) * 1000.0, aff, {"history": []})
    lr = build_degradation("kspace", scale=2)(ref, 0)
    bic = upscale_volume(lr, (2, 2, 1), "bicubic")
    bright = ref.with_data(ref.data * 1.5)  # an intensity error a per-panel auto-window would hide
    rows = [{"case": "c", "method": m} for m in ("bicubic", "bright")]
    return CaseVolumes("c", "kspace", 2, ref, lr, {"bicubic": bic, "bright": bright}, None, rows)


def test_case_figure_panels_and_common_window(tmp_path):
    cv = _case(tmp_path)
    info = case_figure(cv, tmp_path / "f.png")
    kinds = [p.kind for p in info.panels]
    assert kinds.count("lr") == 1 and kinds.count("method") == 2 and kinds.count("hr") == 1
    assert kinds.count("error") == 2 and kinds.count("zoom") == 4
    lo, hi = np.percentile(cv.reference.data, (0.5, 99.5))
    assert info.window == pytest.approx((lo, hi))
    for p in info.panels:
        if p.kind in ("lr", "method", "hr", "zoom"):
            assert p.clim == pytest.approx((lo, hi)), p.title
            if p.kind != "zoom":
                assert p.shape == (64, 64)
        else:
            assert p.clim == pytest.approx((0.0, info.error_max))
    titles = {p.name: p.title for p in info.panels if p.kind == "method"}
    assert re.search(r"PSNR \d+\.\d\d dB  SSIM 0\.\d{4}", titles["bicubic"])
    with Image.open(tmp_path / "f.png") as im:
        assert im.size == info.size_px
        px = np.asarray(im.convert("L"), dtype=float)
    assert px.std() > 10  # not blank
    assert info.slice_index == choose_slice(cv.reference.data, 2)
    # the brighter output is drawn brighter (common window), its panel scores worse than bicubic
    by = {p.name: p for p in info.panels if p.kind == "method"}
    assert by["bright"].scores["psnr"] < by["bicubic"].scores["psnr"]


def test_case_figure_pair_mode_has_no_lr_column(tmp_path):
    cv = _case(tmp_path)
    cv = CaseVolumes("c", "", "", cv.reference, None, {"test": cv.outputs["bicubic"]}, None, cv.rows[:1])
    info = case_figure(cv, tmp_path / "p.png", zoom=False)
    assert [p.kind for p in info.panels] == ["method", "error", "hr"]


def test_display_orientation_radiological():
    ras = display_orientation(np.diag([1.0, 1.0, 1.0, 1.0]) * 2.0, 2)  # not identity: RAS+ axial
    assert (ras.row_axis, ras.col_axis, ras.flip_rows, ras.flip_cols) == (1, 0, True, True)
    assert ras.labels == ("A", "P", "R", "L") and ras.plane == "axial"
    lps = display_orientation(np.diag([-1.0, -1.0, 1.0, 1.0]), 2)  # DICOM axial: as the frame is read
    assert (lps.row_axis, lps.col_axis, lps.flip_rows, lps.flip_cols) == (1, 0, False, False)
    none = display_orientation(np.eye(4), 2)  # images without geometry: as stored
    assert (none.row_axis, none.col_axis, none.flip_rows, none.flip_cols, none.labels[0]) == (1, 0, False, False, "")
    sag = display_orientation(np.diag([1.0, 1.0, 1.0, 1.0]) * 2.0, 0)
    assert sag.plane == "sagittal" and sag.labels == ("S", "I", "A", "P")
    assert (sag.row_axis, sag.col_axis, sag.flip_rows, sag.flip_cols) == (2, 1, True, True)


def test_choose_slice_centre_of_foreground():
    x = np.zeros((10, 10, 20))
    x[3:8, 3:7, 4:9] = 1.0
    assert choose_slice(x, 2) == 6
    assert choose_slice(x, 0) == 5


def test_report_needs_out(hr_folder, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["evaluate", str(hr_folder), "--methods", "nearest", "--report", "--quiet"])
    assert exc.value.code == 2
    assert "--report needs --out" in capsys.readouterr().err


def test_existing_report_refused_without_force(tmp_path, hr_folder, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "report.html").write_text("mine")
    args = ["evaluate", str(hr_folder / "case0.nii.gz"), "--methods", "nearest", "--report", "--out", str(out),
            "--quiet"]
    assert main(args) == 1
    assert "report.html already exists" in capsys.readouterr().err
    assert (out / "report.html").read_text() == "mine" and not (out / "per_case.csv").exists()
    assert main([*args, "--force"]) == 0
    assert "<table class=\"summary\"" in (out / "report.html").read_text()
    # figures of an earlier report are not overwritten without --force either
    (out / "report.html").unlink()
    (out / "per_case.csv").unlink()
    (out / "summary.json").unlink()
    assert main(args) == 1
    assert "already holds files" in capsys.readouterr().err


def test_pair_mode_report_and_case_cap(tmp_path, hr_folder):
    test_dir = tmp_path / "sr"
    for i in range(2):
        ref = Volume(head_phantom((40, 36, 8), seed=i) * 500.0, np.diag([1.0, 1.0, 3.0, 1.0]))
        write_volume(ref.with_data(ref.data + 5.0), test_dir / f"case{i}.nii.gz")
    out = tmp_path / "out"
    assert main(["evaluate", "--reference", str(hr_folder), "--test", str(test_dir), "--report", "--out", str(out),
                 "--report-cases", "1"]) == 0
    text = (out / "report.html").read_text()
    assert 'data-group="given pairs"' in text
    assert "<tr class='test' data-method='test'><td>test</td>" in text  # not called a model
    assert "first 1 of 2 cases" in text
    assert len(list((out / "figures").glob("*.png"))) == 1
    assert text.count("data-case='case") >= 2  # both cases in the all-cases table


def test_failed_run_leaves_no_figures(tmp_path, hr_folder, model_file, capsys):
    out = tmp_path / "out"
    # the x2 figure of case0 is drawn before the x2 model fails on x4
    rc = main(["evaluate", str(hr_folder), "--scale", "2,4", "--methods", f"bicubic,{model_file}", "--report",
               "--out", str(out), "--quiet"])
    assert rc == 1
    assert "scale 4" in capsys.readouterr().err
    assert not (out / "figures").exists() and not (out / "report.html").exists()
