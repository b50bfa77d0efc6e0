"""``report.html`` of an evaluation: summary table, per-case figures and tables, histories, provenance.

One HTML file (inline CSS, an inline slider script, no external assets, no URL); the figures are PNG
files in ``figures/`` next to it, referenced by relative paths, so the folder can be copied or zipped as a
whole; the slice sliders' strips are embedded (:mod:`mrisr.report.slider`). Per method the mask regions
(whole, interior, edge band) sit beside each other, with the count of negative output voxels; a best value
or a gain resting on one case says n = 1. The metric columns, titles, decimals and best-value direction come from
:data:`mrisr.metrics.registry.METRICS`, as in ``mrisr evaluate``'s table.
"""

from __future__ import annotations

import json
import platform
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from mrisr import __version__
from mrisr.degrade.baselines import baselines_first, is_baseline
from mrisr.evaluate.cases import EDGE_WIDTH, REGIONS
from mrisr.evaluate.results import region_of, shown_metrics
from mrisr.io.atomic import atomic_write_text
from mrisr.metrics.registry import METRICS
from mrisr.report.figures import ERROR_PERCENTILE, WINDOW_PERCENTILES, CaseEntry, headline_metrics
from mrisr.report.page import as_json as _json
from mrisr.report.page import document, png_data_uri
from mrisr.report.page import esc as _e
from mrisr.report.page import kv_table as _kv_table
from mrisr.report.page import num as _num
from mrisr.report.slider import ERROR_RECORDER, SCRIPT


def _groups(summary: Sequence[Mapping[str, Any]]) -> dict[tuple[Any, Any], list[Mapping[str, Any]]]:
    """Summary entries per (degradation, scale): baselines first, each method's mask regions together."""
    groups: dict[tuple[Any, Any], list[Mapping[str, Any]]] = {}
    for e in summary:
        groups.setdefault((e["degradation"], e["scale"]), []).append(e)
    for key, entries in groups.items():
        order = {m: i for i, m in enumerate(baselines_first(dict.fromkeys(e["method"] for e in entries)))}
        groups[key] = sorted(entries, key=lambda e: (order[e["method"]], REGIONS.index(region_of(e))
                                                     if region_of(e) in REGIONS else len(REGIONS)))
    return groups


def _group_title(deg: Any, scale: Any) -> str:
    return f"{deg} x{scale}" if deg else "given pairs"


def best_values(entries: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """Best mean per metric among ``entries`` (max, or min where lower is better); metrics without values omitted."""
    best: dict[str, float] = {}
    for metric, spec in METRICS.items():
        vals = [float(e[metric]["mean"]) for e in entries if e.get(metric) and e[metric]["mean"] is not None]
        vals = [v for v in vals if not np.isnan(v)]
        if vals:
            best[metric] = max(vals) if spec.higher_is_better else min(vals)
    return best


def psnr_gains(entries: Sequence[Mapping[str, Any]]) -> dict[str, tuple[float, str]]:
    """Model method -> (mean PSNR minus the best baseline's mean PSNR in dB, that baseline's name)."""
    base = [(float(e["psnr"]["mean"]), e["method"]) for e in entries
            if is_baseline(e["method"]) and e.get("psnr")]
    if not base:
        return {}
    best, name = max(base)
    return {e["method"]: (float(e["psnr"]["mean"]) - best, name) for e in entries
            if not is_baseline(e["method"]) and e.get("psnr")}


N1_NOTE = ("n = 1: one case, so no spread and no confidence interval; a highlighted best value or a gain "
           "here is that one case's result, not evidence of a trend.")

REGION_NOTE = (f"Regions of the scoring mask: <b>whole</b> = the mask; <b>interior</b> = the mask eroded by "
               f"{EDGE_WIDTH} voxels; <b>edge</b> = the {EDGE_WIDTH}-voxel band between (the object against its "
               "background, where a sharp edge is worth many dB). A gain that lives only in the edge band is "
               "not a gain on the anatomy inside.")


def summary_tables(summary: Sequence[Mapping[str, Any]]) -> str:
    """One table per (degradation, scale): methods (x mask regions) x metrics (mean ± std, 95% CI, n), the best
    value per column and region highlighted, the negative output voxels, and each model's PSNR gain over the
    best baseline per region; values resting on n = 1 say so."""
    parts = []
    metrics = shown_metrics(summary)
    with_regions = any(region_of(e) != "whole" for e in summary)
    with_negative = any(e.get("negative_voxels") is not None for e in summary)
    for (deg, scale), entries in _groups(summary).items():
        by_region: dict[str, list[Mapping[str, Any]]] = {}
        for e in entries:
            by_region.setdefault(region_of(e), []).append(e)
        best = {r: best_values(es) if len(es) > 1 else {} for r, es in by_region.items()}
        gains = {r: psnr_gains(es) for r, es in by_region.items()}
        any_gain = any(gains.values())
        head = ["method", *(["region"] if with_regions else []), "n", *(METRICS[m].title for m in metrics)]
        if with_negative:
            head.append("negative output voxels")
        if any_gain:
            head.append("PSNR gain over best baseline (dB)")
        out = [f'<h3>{_e(_group_title(deg, scale))}</h3>',
               f'<table class="summary" data-group="{_e(_group_title(deg, scale))}">',
               "<tr>" + "".join(f"<th>{_e(h)}</th>" for h in head) + "</tr>"]
        for e in entries:
            region, n1 = region_of(e), e["n"] == 1
            flag = "<span class='n1'> (n = 1)</span>" if n1 else ""
            kind = "baseline" if is_baseline(e["method"]) else "model" if deg else "test"
            label = f" <span class='muted'>({kind})</span>" if deg else ""  # pair mode: no baseline/model kind
            cells = [f"<td>{_e(e['method'])}{label}</td>"]
            if with_regions:
                cells.append(f"<td>{_e(region)}</td>")
            cells.append(f"<td class='num'>{_e(e['n'])}</td>")
            for m in metrics:
                s, digits = e.get(m), METRICS[m].digits
                if not s:
                    cells.append("<td class='num'>-</td>")
                    continue
                text = _num(s["mean"], digits)
                if s.get("std") is not None:
                    text += f" ± {_num(s['std'], digits)}"
                if s.get("ci95"):
                    lo, hi = s["ci95"]
                    text += f"<br><span class='ci'>95% CI [{_num(lo, digits)}, {_num(hi, digits)}]</span>"
                is_best = m in best[region] and s["mean"] is not None and float(s["mean"]) == best[region][m]
                cells.append(f"<td class='num{' best' if is_best else ''}' data-metric='{m}'>{text}"
                             f"{flag if is_best else ''}</td>")
            if with_negative:
                neg = e.get("negative_voxels")
                cells.append(f"<td class='num' data-negative='{_e(neg)}'>{'-' if neg is None else _e(neg)}</td>")
            if any_gain:
                if e["method"] in gains[region]:
                    g, name = gains[region][e["method"]]
                    cls = "gain-pos" if g > 0 else "gain-neg"
                    cells.append(f"<td class='num'><span class='{cls}'>{g:+.2f}</span> "
                                 f"<span class='muted'>vs {_e(name)}</span>{flag}</td>")
                else:
                    cells.append("<td class='num muted'>-</td>")
            attr = "" if region == "whole" else f" data-region='{_e(region)}'"
            out.append(f"<tr class='{kind}'{attr} data-method='{_e(e['method'])}'>" + "".join(cells) + "</tr>")
        out.append("</table>")
        if any(e["n"] == 1 for e in entries):
            out.append(f"<p class='note n1-note'>{_e(N1_NOTE)}</p>")
        parts.append("\n".join(out))
    if with_regions:
        parts.insert(0, f"<p>{REGION_NOTE}</p>")
    return "\n".join(parts)


def case_rows_table(rows: Sequence[Mapping[str, Any]], with_case: bool = True,
                    slice_scores: Mapping[str, Mapping[str, float | None]] | None = None) -> str:
    """Per-case metrics table (case, degradation/scale, method, every metric); ``slice_scores`` (method ->
    headline metric -> value on the figure's slice) adds a column per headline metric."""
    with_regions = any(region_of(r) != "whole" for r in rows)
    head = ((["case", "degradation", "scale"] if with_case else []) + ["method"] + (["region"] if with_regions else [])
            + [s.title for s in METRICS.values()] + ["negative output voxels"])
    if slice_scores:
        head += [f"{s.label} on the shown slice" for s in headline_metrics()]
    out = ["<table class='cases'>", "<tr>" + "".join(f"<th>{_e(h)}</th>" for h in head) + "</tr>"]
    for r in rows:
        cells = []
        if with_case:
            cells += [f"<td>{_e(r['case'])}</td>", f"<td>{_e(r['degradation'] or '-')}</td>",
                      f"<td>{_e(('x' + str(r['scale'])) if r['scale'] not in ('', None) else '-')}</td>"]
        note = f" <span class='muted'>({_e(r['note'])})</span>" if r.get("note") else ""
        cells.append(f"<td>{_e(r['method'])}{note}</td>")
        if with_regions:
            cells.append(f"<td>{_e(region_of(r))}</td>")
        for m, spec in METRICS.items():
            cells.append(f"<td class='num' data-metric='{m}'>{_num(r.get(m), spec.digits)}</td>")
        neg = r.get("negative_voxels")
        cells.append(f"<td class='num'>{'-' if neg in (None, '') else _e(neg)}</td>")
        if slice_scores:
            on_slice = slice_scores.get(r["method"], {}) if region_of(r) == "whole" else {}
            cells += [f"<td class='num'>{_num(on_slice.get(s.name), s.digits)}</td>" for s in headline_metrics()]
        region = "" if region_of(r) == "whole" else f" data-region='{_e(region_of(r))}'"
        out.append(f"<tr data-case='{_e(r['case'])}'{region} data-method='{_e(r['method'])}'>" + "".join(cells)
                   + "</tr>")
    out.append("</table>")
    return "\n".join(out)


def _history_list(history: Sequence[Any]) -> str:
    if not history:
        return "<span class='muted'>none recorded</span>"
    return "<pre>" + "\n".join(_e(_json(h)) for h in history) + "</pre>"


def _case_history(entry: CaseEntry) -> str:
    """Protocol mode: the LR input's history (it starts with the reference's, e.g. the crop); pair mode: the
    reference's and each test volume's recorded history."""
    if entry.lr_shape is not None:
        return _history_list(entry.lr_history or entry.reference_history)
    parts = [f"reference: {_history_list(entry.reference_history)}"]
    parts += [f"{_e(m)}: {_history_list(h)}" for m, h in entry.output_history.items()]
    return "<br>".join(parts)


def _case_section(entry: CaseEntry, figures_rel: str) -> str:
    fig = entry.figure
    assert fig is not None
    o = fig.orientation
    title = f"{entry.case}" + (f" - {entry.degradation} x{entry.scale}" if entry.degradation else "")
    if o.labels[0]:
        orient = (f"{o.plane} slice in radiological orientation: {o.labels[0]} at the top, "
                  f"{o.labels[2]} on the left (patient's right on the image's left)")
    else:
        orient = "no geometry (4x4 identity affine): shown as stored, rows = second in-plane array axis"
    where = f"slice {fig.slice_index} along array axis {fig.slice_axis}" if fig.slice_axis is not None else ""
    if fig.frame is not None:
        where += f", time frame {fig.frame}"
    lo, hi = fig.window
    caption = (
        f"{_e(where)} (centre of mass of the reference's foreground); {_e(orient)}. All image panels share "
        f"the grey window [{lo:.4g}, {hi:.4g}] (reference {WINDOW_PERCENTILES[0]:g}-{WINDOW_PERCENTILES[1]:g} "
        f"percentiles); error maps share 0 to {fig.error_max:.4g} (p{ERROR_PERCENTILE:g} of all errors on the "
        f"slice). Panel titles give {'/'.join(s.label for s in headline_metrics())} on this slice only (data range "
        "= the reference volume's). "
        + ("The bottom row zooms into the outlined region of the HR panel (largest detail). "
           if fig.zoom is not None else "")
        + ("The LR panel is the degraded input, nearest-upsampled for display. " if entry.lr_shape else "")
    )
    slice_scores = {p.name: p.scores for p in fig.panels if p.kind == "method"}
    parts = [f"<section class='case' id='{_e(fig.path.stem)}'>", f"<h3>{_e(title)}</h3>",
             f"<figure><img src='{_e(figures_rel + '/' + fig.path.name)}' width='{fig.size_px[0]}' "
             f"height='{fig.size_px[1]}' alt='{_e(title)}'><figcaption>{caption}</figcaption></figure>",
             case_rows_table(entry.rows, with_case=False, slice_scores=slice_scores),
             "<p><b>Reference</b>: shape " + _e(entry.shape) + ", spacing "
             + _e(tuple(round(s, 4) for s in entry.spacing)) + " mm"
             + (f", LR input shape {_e(entry.lr_shape)}" if entry.lr_shape else "") + "</p>",
             "<p><b>Degradation history</b> (parameters as drawn, with the seed):</p>" + _case_history(entry),
             entry.slider, "</section>"]
    return "\n".join(parts)


def model_metadata(methods: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Model file metadata (architecture, training data, validation metrics...) of each non-baseline method."""
    from mrisr.errors import MrisrError

    out: dict[str, dict[str, Any]] = {}
    for m in methods:
        if is_baseline(m):
            continue
        try:
            from mrisr.models.modelfile import read_model_metadata

            md = read_model_metadata(m)
        except (MrisrError, ImportError, OSError) as exc:
            out[m] = {"error": str(exc)}
            continue
        keys = ("path", "arch", "args", "scale", "factors", "spatial_dims", "context_slices", "num_parameters",
                "normalisation", "degradation", "training_data", "validation_metrics", "created",
                "mrisr_version", "torch_version")
        out[m] = {k: md.get(k) for k in keys} | {k: v for k, v in md.items() if k not in keys and
                                                  k not in ("format", "format_version", "kind", "in_channels")}
    return out


def provenance(command_line: str, settings: Mapping[str, Any]) -> dict[str, Any]:
    """Version, date and command of the run, plus the evaluation settings."""
    import torch

    return {
        "mrisr version": __version__,
        "date (UTC)": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S"),
        "command line": command_line,
        "python / numpy / torch": f"{platform.python_version()} / {np.__version__} / {torch.__version__}",
        **{f"setting: {k}": v for k, v in settings.items()},
    }


def render_report(summary: Sequence[Mapping[str, Any]], rows: Sequence[Mapping[str, Any]],
                  entries: Sequence[CaseEntry], prov: Mapping[str, Any], models: Mapping[str, Mapping[str, Any]],
                  *, max_cases: int, n_cases: int, figures_rel: str = "figures", title: str = "mrisr evaluation",
                  skipped: Sequence[Sequence[str]] = ()) -> str:
    """The whole HTML document as a string; ``skipped``: ``(path, why)`` of the inputs left out."""
    drawn = [e for e in entries if e.figure is not None]
    n_methods = len({r["method"] for r in rows})
    intro = (f"{n_cases} case(s), {n_methods} method(s), {len(rows)} scored volume(s). "
             "Means ± sample standard deviation across cases, 95% t-interval of the mean, n = cases. "
             + "; ".join(f"{s.label} {s.description}" for s in METRICS.values())
             + "; data range = reference max - min. Best value per column highlighted.")
    cap_note = ""
    if n_cases > max_cases:
        cap_note = (f"<p class='note'>Figures are shown for the first {max_cases} of {n_cases} cases; every case "
                    "is in the per-case table below and in per_case.csv.</p>")
    body = [
        f"<h1>{_e(title)}</h1>",
        f"<p class='muted'>mrisr {_e(__version__)} - {_e(prov.get('date (UTC)', ''))} UTC</p>",
        "<h2>Summary</h2>", f"<p>{_e(intro)}</p>", summary_tables(summary), skipped_list(skipped),
        "<h2>Cases</h2>", cap_note,
        *(_case_section(e, figures_rel) for e in drawn),
        "<h2>All cases</h2>", case_rows_table(rows),
        "<h2>Degradation history per case</h2>",
        "<table class='history'><tr><th>case</th><th>degradation</th><th>input shape</th><th>history</th></tr>"
        + "".join(
            f"<tr><td>{_e(e.case)}</td><td>{_e(_group_title(e.degradation, e.scale))}</td>"
            f"<td>{_e(e.shape)} -&gt; {_e(e.lr_shape) if e.lr_shape else '-'}</td>"
            f"<td>{_case_history(e)}</td></tr>"
            for e in entries) + "</table>",
        "<h2>Provenance</h2>", _kv_table(prov),
        "<h3>Inputs</h3>",
        "<table><tr><th>case</th><th>source</th><th>shape</th><th>spacing (mm)</th></tr>" + "".join(
            f"<tr><td>{_e(e.case)}</td><td>{_e(e.source or '-')}</td><td>{_e(e.shape)}</td>"
            f"<td>{_e(tuple(round(s, 4) for s in e.spacing))}</td></tr>"
            for e in {e.case: e for e in entries}.values()) + "</table>",
    ]
    if models:
        body.append("<h3>Models</h3>")
        for name, md in models.items():
            body += [f"<h4>{_e(name)}</h4>", _kv_table(md)]
    return page_with_sliders(title, "\n".join(body))


def page_with_sliders(title: str, body: str) -> str:
    """The document of a report: its scripts are the inline slider script and an error recorder whose
    ``#js-errors`` element stays empty on a page that runs cleanly."""
    return document(title, body + "\n<pre id='js-errors' class='muted'></pre>", head_script=ERROR_RECORDER,
                    script=SCRIPT)


def skipped_list(skipped: Sequence[Sequence[str]]) -> str:
    """``<h3>Skipped inputs</h3>`` and a table of ``(path, why)``; empty when nothing was skipped."""
    if not skipped:
        return ""
    return ("<h3>Skipped inputs</h3><p class='note'>These inputs were not scored.</p>"
            "<table class='skipped'><tr><th>path</th><th>why</th></tr>"
            + "".join(f"<tr><td>{_e(p)}</td><td>{_e(why)}</td></tr>" for p, why in skipped) + "</table>")


def write_report(out_dir: str | Path, summary: Sequence[Mapping[str, Any]], rows: Sequence[Mapping[str, Any]],
                 entries: Sequence[CaseEntry], prov: Mapping[str, Any], models: Mapping[str, Mapping[str, Any]],
                 *, max_cases: int, n_cases: int, force: bool = False, skipped: Sequence[Sequence[str]] = ()) -> Path:
    """Write ``out_dir/report.html`` atomically (refusing to overwrite without ``force``)."""
    text = render_report(summary, rows, entries, prov, models, max_cases=max_cases, n_cases=n_cases, skipped=skipped)
    return atomic_write_text(Path(out_dir) / "report.html", text, force=force)


def is_evaluation_folder(folder: str | Path) -> bool:
    """True for a folder ``mrisr evaluate --out`` wrote (``summary.json`` with results and ``per_case.csv``)."""
    return (Path(folder) / "summary.json").is_file() and (Path(folder) / "per_case.csv").is_file()


def render_folder_report(folder: str | Path) -> str:
    """The report of an evaluation folder from its files alone (``mrisr report DIR``): the summary tables from
    ``summary.json``, every row of ``per_case.csv``, the comparison figures of ``figures/`` embedded as PNG data
    URIs (one strip per drawn case, so the page stands alone) and the recorded settings."""
    import csv

    folder = Path(folder)
    data = json.loads((folder / "summary.json").read_text())
    with open(folder / "per_case.csv", newline="") as fh:
        rows = [{k: (None if v == "" else v) for k, v in r.items()} for r in csv.DictReader(fh)]
    settings = dict(data.get("settings") or {})
    skipped = settings.pop("skipped", None) or []
    figures = sorted((folder / "figures").glob("*.png")) if (folder / "figures").is_dir() else []
    strips = "".join(
        f"<figure class='strip' data-figure='{_e(f.name)}'><img src='{png_data_uri(f.read_bytes())}' "
        f"alt='{_e(f.stem)}'><figcaption>{_e(f.stem)}</figcaption></figure>" for f in figures)
    cases = len({r["case"] for r in rows})
    body = [f"<h1>mrisr evaluation: {_e(folder.name)}</h1>",
            f"<p class='muted'>Rendered by mrisr {_e(__version__)} from {_e(folder / 'summary.json')} and "
            f"{_e(folder / 'per_case.csv')}: {cases} case(s), {len(rows)} scored volume(s).</p>",
            "<h2>Summary</h2>", summary_tables(data.get("results") or []), skipped_list(skipped),
            "<h2>Cases</h2>", strips or "<p class='muted'>no figures in this folder</p>",
            "<h2>All cases</h2>", case_rows_table(rows),
            "<h2>Settings</h2>", _kv_table(settings)]
    return page_with_sliders(f"mrisr evaluation: {folder.name}", "\n".join(body))
