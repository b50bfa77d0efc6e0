"""The evaluation page's honest reading of a gain and its volumes: mask regions beside the whole mask, negative
output voxels, n = 1 said, one slider strip set per case, and ``mrisr report`` of an evaluation folder."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest

from mrisr.cli import main
from mrisr.data.phantoms import head_phantom
from mrisr.io import Volume, write_volume
from mrisr.report.slider import MAX_SLICES, shown_slices


@pytest.fixture(scope="module")
def model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mrisr.models import build_model, save_model_file
    from mrisr.models.registry import REGISTRY

    net = build_model("fast", scale=2, residual="zerofill", **REGISTRY["fast"].tiny)
    return save_model_file(tmp_path_factory.mktemp("m") / "tiny", net, meta={"training_data": "none (test)"})


@pytest.fixture(scope="module")
def masked_report(tmp_path_factory: pytest.TempPathFactory, model_file: Path) -> Path:
    hr = tmp_path_factory.mktemp("hr")
    write_volume(Volume(head_phantom((48, 44, 20), seed=0) * 300.0, np.diag([1.0, 1.0, 1.5, 1.0])),
                 hr / "one.nii.gz")
    out = tmp_path_factory.mktemp("rep") / "out"
    assert main(["evaluate", str(hr), "--scale", "2", "--methods", f"lanczos,zerofill,{model_file}",
                 "--mask", "auto", "--out", str(out), "--quiet"]) == 0  # the report is the default
    return out


def test_regions_side_by_side_negative_voxels_and_n1(masked_report: Path, model_file: Path):
    text = (masked_report / "report.html").read_text()
    rows = list(csv.DictReader((masked_report / "per_case.csv").open()))
    summary = json.loads((masked_report / "summary.json").read_text())["results"]
    assert [(e["method"], e["region"]) for e in summary][:3] == [("lanczos", "whole"), ("lanczos", "interior"),
                                                                 ("lanczos", "edge")]
    table = text.split('data-group="kspace x2"', 1)[1].split("</table>", 1)[0]
    # every method's three regions, in that order, each row's PSNR equal to summary.json
    order = re.findall(r"<tr class='\w+'(?: data-region='(\w+)')? data-method='([^']+)'>", table)
    assert [(m, r or "whole") for r, m in order] == [(e["method"], e["region"]) for e in summary]
    for e in summary:
        attr = "" if e["region"] == "whole" else f" data-region='{e['region']}'"
        row = re.search(rf"<tr class='\w+'{attr} data-method='{re.escape(e['method'])}'>(.*?)</tr>", table).group(1)
        assert f"<td>{e['region']}</td>" in row
        assert f"data-metric='psnr'>{e['psnr']['mean']:.2f}" in row
        # negative output voxels: the sum over the cases of per_case.csv
        negative = sum(int(r["negative_voxels"]) for r in rows if r["method"] == e["method"] and
                       r["region"] == e["region"])
        assert f"data-negative='{negative}'" in row and negative == e["negative_voxels"]
    assert any(e["negative_voxels"] > 0 for e in summary if e["method"] == "lanczos")  # Lanczos rings below 0
    # one case: the highlighted best values and the gains say n = 1, and the note explains it
    assert table.count("(n = 1)") >= 3 and "n1-note" in text and "n = 1: one case" in text
    gain_cells = re.findall(r"vs \w+</span>(.{0,40})", table)
    assert gain_cells and all("(n = 1)" in g for g in gain_cells)
    assert "eroded by 6 voxels" in text


def test_one_slider_set_per_case_with_every_panel(masked_report: Path):
    text = (masked_report / "report.html").read_text()
    assert "http://" not in text and "https://" not in text
    sliders = re.findall(r"<div class='slider' data-axis='(\d)' data-slices='([^']+)'>", text)
    assert [a for a, _ in sliders] == ["0", "1", "2"]  # one case, the three orthogonal views
    for axis, slices in sliders:
        shown = json.loads(slices.replace("&quot;", '"'))
        assert shown == list(shown_slices((48, 44, 20)[int(axis)])) and len(shown) <= MAX_SLICES
    strips = re.findall(r"<script type='application/json' class='strips'>(.*?)</script>", text)
    assert [len(json.loads(s)) for s in strips] == [len(shown_slices(n)) for n in (48, 44, 20)]
    assert all(u.startswith("data:image/png;base64,") for s in strips for u in json.loads(s))
    assert "the cyan outline on HR is the scoring mask" in text
    assert len(text) < 8e6  # a few MB for one case


def test_slider_strip_holds_every_panel_in_one_window(masked_report: Path):
    import base64
    import io

    from PIL import Image

    from mrisr.report.slider import GAP, MAX_SIDE

    text = (masked_report / "report.html").read_text()
    strips = json.loads(re.findall(r"<script type='application/json' class='strips'>(.*?)</script>", text)[2])
    im = np.asarray(Image.open(io.BytesIO(base64.b64decode(strips[10].split(",", 1)[1]))).convert("RGB"))
    # LR | lanczos | zerofill | model | HR: five panels of at most MAX_SIDE px with gaps
    panel_w = (im.shape[1] - 4 * GAP) / 5
    assert panel_w == int(panel_w) and panel_w <= MAX_SIDE
    hr = im[:, 4 * (int(panel_w) + GAP):]
    assert ((hr[..., 0] == 0) & (hr[..., 1] == 220) & (hr[..., 2] == 255)).any()  # the mask outline


def test_mrisr_report_of_an_evaluation_folder(masked_report: Path, capsys: pytest.CaptureFixture[str]):
    assert main(["report", str(masked_report)]) == 0
    out = masked_report / "report_files.html"
    assert f"report: {out.resolve()}" in capsys.readouterr().out
    text = out.read_text()
    assert "http://" not in text and "https://" not in text
    rows = list(csv.DictReader((masked_report / "per_case.csv").open()))
    all_cases = text.split("<h2>All cases</h2>", 1)[1]
    for r in rows:
        attr = "" if r["region"] == "whole" else f" data-region='{r['region']}'"
        row = re.search(rf"<tr data-case='one'{attr} data-method='{re.escape(r['method'])}'>(.*?)</tr>",
                        all_cases).group(1)
        assert f"data-metric='psnr'>{float(r['psnr']):.2f}</td>" in row
    # one embedded strip per drawn case
    assert len(re.findall(r"<figure class='strip' data-figure='[^']+'><img src='data:image/png;base64,", text)) == 1
    assert main(["report", str(masked_report)]) == 1  # exists: needs --force


def test_sliders_only_for_the_first_cases(tmp_path: Path):
    hr = tmp_path / "hr"
    for i in range(3):
        write_volume(Volume(head_phantom((24, 20, 6), seed=i) * 300.0, np.eye(4)), hr / f"c{i}.nii.gz")
    out = tmp_path / "out"
    assert main(["evaluate", str(hr), "--scale", "2", "--methods", "linear", "--out", str(out), "--quiet",
                 "--report-sliders", "2"]) == 0
    text = (out / "report.html").read_text()
    assert text.count("<section class='case'") == 3 and text.count("<div class='sliders'>") == 2
    assert text.split("<section class='case' id='002_c2_kspace_x2'>", 1)[1].count("<div class='slider'") == 0
