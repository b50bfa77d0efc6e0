"""The reports opened from disk in headless Chromium: no script errors, the slider changes the shown slice,
screenshots are written (``pytest --basetemp=DIR`` keeps them to look at)."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from pathlib import Path
from subprocess import CompletedProcess

import numpy as np
import pytest

from mrisr.cli import main
from mrisr.data.phantoms import head_phantom
from mrisr.io import Volume, write_volume
from mrisr.report.html import page_with_sliders
from tests.report.runs_helpers import tiny_run

Chromium = Callable[..., CompletedProcess[str]]


def _dom(chromium: Chromium, page: Path, fragment: str = "") -> str:
    res = chromium(page.as_uri() + fragment, "--dump-dom")
    assert res.returncode == 0, res.stderr[-2000:]
    return res.stdout


def _errors(dom: str) -> tuple[bool, str]:
    """(the page's scripts ran to their end, what the error recorder caught)."""
    m = re.search(r"<pre id=\"js-errors\" class=\"muted\"( data-ready=\"1\")?>(.*?)</pre>", dom, re.S)
    assert m, "no #js-errors element"
    return bool(m.group(1)), html.unescape(m.group(2))


def _shown(dom: str, axis: int) -> tuple[str, str, str]:
    """(data-index, src, position text) of the image of the slider of ``axis``."""
    block = dom.split(f'data-axis="{axis}"', 1)[1]
    img = re.search(r"<img [^>]*>", block).group(0)
    pos = re.search(r'<span class="pos">([^<]*)</span>', block).group(1)
    return re.search(r'data-index="(\d+)"', img).group(1), re.search(r'src="([^"]+)"', img).group(1), pos


def _screenshot(chromium: Chromium, page: Path, png: Path, size: str = "1400,1800") -> None:
    res = chromium(page.as_uri(), f"--screenshot={png}", f"--window-size={size}")
    assert res.returncode == 0, res.stderr[-2000:]
    assert png.is_file() and png.stat().st_size > 20_000 and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def evaluation_page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    hr = tmp_path_factory.mktemp("hr")
    for i in range(2):
        write_volume(Volume(head_phantom((64, 60, 24), seed=i) * 300.0, np.diag([1.0, 1.0, 2.0, 1.0])),
                     hr / f"case{i}.nii.gz")
    out = tmp_path_factory.mktemp("evaluation") / "out"
    assert main(["evaluate", str(hr), "--scale", "2", "--methods", "bicubic,zerofill", "--mask", "auto",
                 "--out", str(out), "--quiet"]) == 0
    return out / "report.html"


def test_error_recorder_catches_errors(chromium: Chromium, tmp_path: Path):
    # the check below is only worth something if a broken page does show its error
    broken = tmp_path / "broken.html"
    broken.write_text(page_with_sliders("broken", "<script>console.error('bad thing'); undefinedCall();</script>"))
    ran, errors = _errors(_dom(chromium, broken))
    assert ran and "bad thing" in errors and "undefinedCall" in errors


def test_evaluation_report_slider(chromium: Chromium, evaluation_page: Path):
    dom = _dom(chromium, evaluation_page)
    assert _errors(dom) == (True, "")  # the scripts ran to their end, nothing recorded
    first, moved = _dom(chromium, evaluation_page, "#slice=0"), _dom(chromium, evaluation_page, "#slice=20")
    for axis, n in ((0, 64), (1, 60), (2, 24)):
        shown = [int(v) for v in re.search(rf'data-axis="{axis}" data-slices="\[([^\]]*)\]', dom).group(1).split(",")]
        assert shown[0] == 0 and shown[-1] == n - 1
        idx0, src0, pos0 = _shown(first, axis)
        idx1, src1, pos1 = _shown(moved, axis)
        idx_mid, src_mid, _ = _shown(dom, axis)
        assert (idx0, idx1, idx_mid) == ("0", "20", str(len(shown) // 2))
        assert pos0 == f"slice 0 (1 of {len(shown)} shown)" and pos1 == f"slice {shown[20]} (21 of {len(shown)} shown)"
        assert src0.startswith("data:image/png;base64,") and len({src0, src1, src_mid}) == 3  # other slices shown
    assert _errors(first) == (True, "") and _errors(moved) == (True, "")


def test_screenshots_of_the_reports(chromium: Chromium, evaluation_page: Path, prepared: dict[str, str],
                                    tmp_path: Path):
    _screenshot(chromium, evaluation_page, tmp_path / "evaluation.png", "1400,4200")  # tables, figure, sliders
    run = tiny_run(prepared["data/prepared/pediatric"], tmp_path / "run")
    ran, errors = _errors(_dom(chromium, run / "report.html"))
    assert ran and errors == ""
    _screenshot(chromium, run / "report.html", tmp_path / "run.png", "1400,2400")
    other = tiny_run(prepared["data/prepared/pediatric"], tmp_path / "run_lr3e-4", lr=3e-4)
    assert main(["compare", str(run), str(other), "-o", str(tmp_path / "compare.html")]) == 0
    assert _errors(_dom(chromium, tmp_path / "compare.html")) == (True, "")
    _screenshot(chromium, tmp_path / "compare.html", tmp_path / "compare.png", "1400,900")
