"""``report.html`` of an evaluation: summary table, per-case figures and tables, histories, provenance.

One self-contained HTML file (inline CSS, no JavaScript, no external assets); the figures are PNG files
in ``figures/`` next to it, referenced by relative paths, so the folder can be copied or zipped as a
whole. The metric columns, titles, decimals and best-value direction come from
:data:`mrisr.metrics.registry.METRICS`, as in ``mrisr evaluate``'s table.
"""

from __future__ import annotations

import platform
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from mrisr import __version__
from mrisr.degrade.baselines import baselines_first, is_baseline
from mrisr.evaluate.results import shown_metrics
from mrisr.io.atomic import atomic_write_text
from mrisr.metrics.registry import METRICS
from mrisr.report.figures import ERROR_PERCENTILE, WINDOW_PERCENTILES, CaseEntry, headline_metrics
from mrisr.report.page import CSS as _CSS
from mrisr.report.page import as_json as _json
from mrisr.report.page import esc as _e
from mrisr.report.page import kv_table as _kv_table
from mrisr.report.page import num as _num


def _groups(summary: Sequence[Mapping[str, Any]]) -> dict[tuple[Any, Any], list[Mapping[str, Any]]]:
    groups: dict[tuple[Any, Any], list[Mapping[str, Any]]] = {}
    for e in summary:
        groups.setdefault((e["degradation"], e["scale"]), []).append(e)
    for key, entries in groups.items():  # baselines first
        by_method = {e["method"]: e for e in entries}
        groups[key] = [by_method[m] for m in baselines_first(by_method)]
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


def summary_tables(summary: Sequence[Mapping[str, Any]]) -> str:
    """One table per (degradation, scale): methods x metrics (mean ± std, 95% CI, n), best highlighted."""
    parts = []
    metrics = shown_metrics(summary)
    for (deg, scale), entries in _groups(summary).items():
        best = best_values(entries) if len(entries) > 1 else {}
        gains = psnr_gains(entries)
        head = ["method", "n", *(METRICS[m].title for m in metrics)]
        if gains:
            head.append("PSNR gain over best baseline (dB)")
        out = [f'<h3>{_e(_group_title(deg, scale))}</h3>',
               f'<table class="summary" data-group="{_e(_group_title(deg, scale))}">',
               "<tr>" + "".join(f"<th>{_e(h)}</th>" for h in head) + "</tr>"]
        for e in entries:
            kind = "baseline" if is_baseline(e["method"]) else "model" if deg else "test"
            label = f" <span class='muted'>({kind})</span>" if deg else ""  # pair mode: no baseline/model kind
            cells = [f"<td>{_e(e['method'])}{label}</td>",
                     f"<td class='num'>{_e(e['n'])}</td>"]
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
                is_best = m in best and s["mean"] is not None and float(s["mean"]) == best[m]
                cells.append(f"<td class='num{' best' if is_best else ''}' data-metric='{m}'>{text}</td>")
            if gains:
                if e["method"] in gains:
                    g, name = gains[e["method"]]
                    cls = "gain-pos" if g > 0 else "gain-neg"
                    cells.append(f"<td class='num'><span class='{cls}'>{g:+.2f}</span> "
                                 f"<span class='muted'>vs {_e(name)}</span></td>")
                else:
                    cells.append("<td class='num muted'>-</td>")
            out.append(f"<tr class='{kind}' data-method='{_e(e['method'])}'>" + "".join(cells) + "</tr>")
        out.append("</table>")
        parts.append("\n".join(out))
    return "\n".join(parts)


def case_rows_table(rows: Sequence[Mapping[str, Any]], with_case: bool = True,
                    slice_scores: Mapping[str, Mapping[str, float | None]] | None = None) -> str:
    """Per-case metrics table (case, degradation/scale, method, every metric); ``slice_scores`` (method ->
    headline metric -> value on the figure's slice) adds a column per headline metric."""
    head = (["case", "degradation", "scale"] if with_case else []) + ["method", *(s.title for s in METRICS.values())]
    if slice_scores:
        head += [f"{s.label} on the shown slice" for s in headline_metrics()]
    out = ["<table class='cases'>", "<tr>" + "".join(f"<th>{_e(h)}</th>" for h in head) + "</tr>"]
    for r in rows:
        cells = []
        if with_case:
            cells += [f"<td>{_e(r['case'])}</td>", f"<td>{_e(r['degradation'] or '-')}</td>",
                      f"<td>{_e(('x' + str(r['scale'])) if r['scale'] not in ('', None) else '-')}</td>"]
        cells.append(f"<td>{_e(r['method'])}</td>")
        for m, spec in METRICS.items():
            cells.append(f"<td class='num' data-metric='{m}'>{_num(r.get(m), spec.digits)}</td>")
        if slice_scores:
            on_slice = slice_scores.get(r["method"], {})
            cells += [f"<td class='num'>{_num(on_slice.get(s.name), s.digits)}</td>" for s in headline_metrics()]
        out.append(f"<tr data-case='{_e(r['case'])}' data-method='{_e(r['method'])}'>" + "".join(cells) + "</tr>")
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
             "</section>"]
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
                  *, max_cases: int, n_cases: int, figures_rel: str = "figures", title: str = "mrisr evaluation") -> str:
    """The whole HTML document as a string."""
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
        "<h2>Summary</h2>", f"<p>{_e(intro)}</p>", summary_tables(summary),
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
    return ("<!DOCTYPE html>\n<html lang='en'>\n<head>\n<meta charset='utf-8'>\n"
            f"<meta name='viewport' content='width=device-width, initial-scale=1'>\n<title>{_e(title)}</title>\n"
            f"<style>{_CSS}</style>\n</head>\n<body>\n" + "\n".join(body) + "\n</body>\n</html>\n")


def write_report(out_dir: str | Path, summary: Sequence[Mapping[str, Any]], rows: Sequence[Mapping[str, Any]],
                 entries: Sequence[CaseEntry], prov: Mapping[str, Any], models: Mapping[str, Mapping[str, Any]],
                 *, max_cases: int, n_cases: int, force: bool = False) -> Path:
    """Write ``out_dir/report.html`` atomically (refusing to overwrite without ``force``)."""
    text = render_report(summary, rows, entries, prov, models, max_cases=max_cases, n_cases=n_cases)
    return atomic_write_text(Path(out_dir) / "report.html", text, force=force)
