"""``mrisr evaluate --save-outputs``: keep every method's upscaled volume (and the LR input) of each case.

An ``on_case`` callback of :func:`mrisr.evaluate.protocol.evaluate_protocol`: it writes, per case x degradation x
scale, ``<case>_<degradation>_x<scale>_<method>.nii.gz`` for every method and ``..._lr.nii.gz`` for the degraded
input into one folder (NIfTI with the geometry of the output grid; unsafe characters of the name replaced),
so the volumes that were scored can be opened in a viewer.
"""

from __future__ import annotations

import re
from pathlib import Path

from mrisr.evaluate.protocol import CaseVolumes
from mrisr.io import Volume, write_volume


def output_name(case: str, degradation: str, scale: object, what: str) -> str:
    """File name of one saved volume: ``case_degradation_xS_what.nii.gz`` (a model path shows as its file stem)."""
    what = Path(what).name.removesuffix(".safetensors") if ("/" in what or what.endswith(".safetensors")) else what
    stem = "_".join(p for p in (case, degradation, f"x{scale}" if degradation else "", what) if p)
    return re.sub(r"[^A-Za-z0-9.=-]+", "_", stem)[:180] + ".nii.gz"


class OutputSaver:
    """Writes each case's volumes into ``folder`` (see module doc); ``written`` lists the files so far."""

    def __init__(self, folder: str | Path, force: bool = False) -> None:
        self.folder = Path(folder)
        self.force = force
        self.written: list[Path] = []

    def _write(self, vol: Volume, name: str) -> None:
        self.written.append(write_volume(vol, self.folder / name, force=self.force))

    def __call__(self, cv: CaseVolumes) -> None:
        if cv.lr is not None:
            self._write(cv.lr, output_name(cv.case, cv.degradation, cv.scale, "lr"))
        for method, vol in cv.outputs.items():
            self._write(vol, output_name(cv.case, cv.degradation, cv.scale, method))

    def discard(self) -> None:
        """Remove what this run wrote (after a failed run)."""
        for path in self.written:
            path.unlink(missing_ok=True)
        self.written.clear()
