"""Results of an evaluation: per-volume rows -> a summary per (degradation, scale, method) -> table and files.

The summary holds, per metric of :data:`mrisr.metrics.registry.METRICS`, the mean, std and 95% CI across
cases (:func:`mrisr.metrics.aggregate.summarise`). :func:`format_table` prints it as a Markdown table in the
order of the rows (the CLI runs the baselines first); :func:`write_results` writes ``per_case.csv`` (one row
per scored volume, :func:`columns`) and ``summary.json`` (settings and summary).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mrisr.io.atomic import atomic_write_text, check_output
from mrisr.metrics.aggregate import summarise
from mrisr.metrics.registry import METRICS


def columns() -> tuple[str, ...]:
    """Columns of ``per_case.csv``: the case keys (with the mask region), every metric in table order, then the
    scoring facts (``negative_voxels``: output voxels below 0; ``note``: e.g. an overlap scored)."""
    return ("case", "degradation", "scale", "method", "region", *METRICS, "data_range", "voxels", "negative_voxels",
            "mask", "seconds", "note")


def region_of(row: Mapping[str, Any]) -> str:
    """The mask region of a row or summary entry (``whole`` for rows written before regions existed)."""
    return str(row.get("region") or "whole")


def read_case_scores(folder: str | Path, region: str = "whole") -> dict[str, dict[str, dict[str, float]]]:
    """``case -> method -> metric -> value`` from an evaluation folder's ``per_case.csv``, for one mask
    region (empty metric cells are left out)."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    with open(Path(folder) / "per_case.csv", newline="") as fh:
        for r in csv.DictReader(fh):
            if region_of(r) == region:
                out.setdefault(r["case"], {})[r["method"]] = {m: float(r[m]) for m in METRICS if r.get(m)}
    return out


def summarise_rows(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per (degradation, scale, method, region), in first-seen order, with a summary per metric (None
    where no row has a value, e.g. 3D SSIM of 2D images) and the total of ``negative_voxels`` over the cases."""
    groups: dict[tuple[Any, Any, Any, str], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["degradation"], r["scale"], r["method"], region_of(r)), []).append(r)
    out = []
    for (deg, scale, method, region), rs in groups.items():
        entry: dict[str, Any] = {"degradation": deg, "scale": scale, "method": method, "region": region,
                                 "n": len(rs)}
        for metric in METRICS:
            vals = [r[metric] for r in rs if r.get(metric) is not None]
            entry[metric] = summarise(vals) if vals else None
        negative = [int(r["negative_voxels"]) for r in rs if r.get("negative_voxels") not in (None, "")]
        entry["negative_voxels"] = sum(negative) if negative else None
        out.append(entry)
    return out


def shown_metrics(summary: Sequence[Mapping[str, Any]]) -> list[str]:
    """The metrics with a value in at least one summary entry (3D SSIM is left out for 2D data)."""
    return [m for m in METRICS if any(e.get(m) is not None for e in summary)]


def _fmt(s: dict[str, Any] | None, digits: int) -> str:
    if s is None:
        return "-"
    text = f"{s['mean']:.{digits}f}"
    if s["std"] is not None:
        text += f" ± {s['std']:.{digits}f}"
    return text


def format_table(summary: Sequence[dict[str, Any]]) -> str:
    """Markdown table: one row per (degradation, scale, method, region), metrics as ``mean ± std``; a region
    other than the whole mask is named after the method, e.g. ``zerofill (interior)``."""
    specs = [METRICS[m] for m in shown_metrics(summary)]
    head = ["degradation", "scale", "method", "n", *(s.title for s in specs)]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * 3 + ["--:"] * (len(head) - 3)) + "|"]
    for e in summary:
        method = e["method"] if region_of(e) == "whole" else f"{e['method']} ({region_of(e)})"
        cells = [e["degradation"] or "-", f"x{e['scale']}" if e["scale"] else "-", method, str(e["n"]),
                 *(_fmt(e[s.name], s.digits) for s in specs)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_results(out_dir: str | Path, rows: Sequence[dict[str, Any]], summary: Sequence[dict[str, Any]],
                  settings: dict[str, Any], force: bool = False) -> tuple[Path, Path]:
    """Write ``per_case.csv`` and ``summary.json`` into ``out_dir`` (atomically, refusing to overwrite)."""
    out = Path(out_dir)
    csv_path, json_path = out / "per_case.csv", out / "summary.json"
    for p in (csv_path, json_path):
        check_output(p, force)
    cols = columns()
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(cols), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in cols})
    atomic_write_text(csv_path, buf.getvalue(), force=force)
    text = json.dumps(_finite({"settings": settings, "results": list(summary)}), indent=2, allow_nan=False)
    atomic_write_text(json_path, text + "\n", force=force)
    return csv_path, json_path


def _finite(o: Any) -> Any:
    """JSON-safe copy: numpy scalars as Python numbers, NaN/inf (e.g. PSNR of identical images) as null."""
    if isinstance(o, dict):
        return {k: _finite(v) for k, v in o.items()}
    if isinstance(o, list | tuple):
        return [_finite(v) for v in o]
    if isinstance(o, np.generic):
        o = o.item()
    if isinstance(o, float) and not np.isfinite(o):
        return None
    return o
