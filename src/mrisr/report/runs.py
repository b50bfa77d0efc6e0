"""Reports of training runs: one run's page (``mrisr report RUN``) and a comparison of runs (``mrisr compare``).

Everything comes from the run folder that ``mrisr train`` writes (README "Run folder"): ``config.yaml`` (the
resolved config), ``metrics.csv`` (``step,epoch,phase,split,name,value``: train losses ``g_*`` / ``d_*``,
learning rates ``lr_*``, validation scores ``<method>.<metric>`` of the model and the baselines),
``summary.json`` (best score and step, final validation, wall time, throughput), ``samples/val_stepN.png``
(validation grids) and ``checkpoints/best/generator[_ema].json`` (the model card of the best checkpoint).
TensorBoard events hold the same scalars and are not read. Curves are inline SVG
(:mod:`mrisr.report.charts`), sample grids PNG data URIs: one file, no network, no URL.
"""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mrisr import __version__
from mrisr.errors import InputError
from mrisr.io.messages import one_line
from mrisr.metrics.registry import METRICS
from mrisr.report.charts import line_chart
from mrisr.report.html import page_with_sliders
from mrisr.report.page import esc, kv_table, num, png_data_uri

#: Validation sample grids shown on a run's page (evenly spread over the run, the best step always among them).
MAX_GRIDS = 6


@dataclass(frozen=True)
class LogRow:
    """One row of ``metrics.csv``."""

    step: int
    epoch: float
    phase: str
    split: str
    name: str
    value: float


@dataclass
class RunRecord:
    """What a run folder holds (see module doc); ``summary`` and ``model_card`` are empty for an unfinished run."""

    path: Path
    config: dict[str, Any]
    config_text: str
    log: list[LogRow]
    summary: dict[str, Any] = field(default_factory=dict)
    samples: list[tuple[int, Path]] = field(default_factory=list)
    model_card: dict[str, Any] = field(default_factory=dict)
    model_card_path: Path | None = None

    @property
    def name(self) -> str:
        return self.path.name

    def series(self, split: str, name: str, x: str = "step") -> list[tuple[float, float]]:
        """``(step or epoch, value)`` of one logged name."""
        return [(r.step if x == "step" else r.epoch, r.value) for r in self.log if r.split == split and r.name == name]

    def names(self, split: str, prefix: str = "") -> list[str]:
        """The logged names of ``split`` starting with ``prefix``, in first-seen order."""
        return list(dict.fromkeys(r.name for r in self.log if r.split == split and r.name.startswith(prefix)))

    @property
    def last_step(self) -> int:
        return max((r.step for r in self.log), default=0)

    @property
    def validation_methods(self) -> list[str]:
        """``model`` first, then the baselines, as logged (``<method>.<metric>``)."""
        methods = dict.fromkeys(n.split(".", 1)[0] for n in self.names("val") if "." in n)
        return sorted(methods, key=lambda m: m != "model")


def is_run_folder(folder: str | Path) -> bool:
    """True for a folder ``mrisr train`` wrote (``config.yaml`` and ``metrics.csv``)."""
    return (Path(folder) / "config.yaml").is_file() and (Path(folder) / "metrics.csv").is_file()


def read_run(folder: str | Path) -> RunRecord:
    """Read a run folder (see module doc); ``InputError`` when it is not one."""
    path = Path(folder)
    if not is_run_folder(path):
        raise InputError(f"{path}: not a training run folder (needs config.yaml and metrics.csv)")
    text = (path / "config.yaml").read_text()
    try:
        config = yaml.safe_load(text) or {}
        with open(path / "metrics.csv", newline="") as fh:
            log = [LogRow(int(r["step"]), float(r["epoch"]), r["phase"], r["split"], r["name"], float(r["value"]))
                   for r in csv.DictReader(fh)]
        summary = json.loads((path / "summary.json").read_text()) if (path / "summary.json").is_file() else {}
    except (yaml.YAMLError, KeyError, ValueError, TypeError) as exc:
        raise InputError(f"{path}: unreadable run records: {one_line(exc)}") from None
    samples = sorted((int(p.stem.removeprefix("val_step")), p) for p in (path / "samples").glob("val_step*.png")
                     if p.stem.removeprefix("val_step").isdigit())
    card_path = next((p for p in (path / "checkpoints" / "best" / "generator_ema.json",
                                  path / "checkpoints" / "best" / "generator.json") if p.is_file()), None)
    card = json.loads(card_path.read_text()) if card_path is not None else {}
    return RunRecord(path, config if isinstance(config, dict) else {}, text, log, summary, samples, card, card_path)


def chosen_samples(rec: RunRecord, count: int = MAX_GRIDS) -> list[tuple[int, Path]]:
    """At most ``count`` sample grids, evenly spread over the run, first, last and the best step included."""
    if len(rec.samples) <= count:
        return rec.samples
    best = (rec.summary.get("best") or {}).get("step")
    picks = {round(i * (len(rec.samples) - 1) / (count - 1)) for i in range(count)}
    chosen = [rec.samples[i] for i in sorted(picks)]
    if best is not None and best not in [s for s, _ in chosen]:
        extra = [s for s in rec.samples if s[0] == best]
        chosen = sorted(chosen[:-2] + extra + chosen[-1:])
    return chosen


def _loss_charts(rec: RunRecord, x: str) -> str:
    label = "step" if x == "step" else "epoch"
    charts = []
    for prefix, who in (("g_", "generator (G)"), ("d_", "discriminator (D)")):
        names = rec.names("train", prefix)
        if names:
            charts.append(line_chart({n: rec.series("train", n, x) for n in names}, title=f"{who} losses per {label}",
                                     xlabel=label, ylabel="loss", markers=x == "epoch"))
    return "".join(charts) or "<p class='muted'>no training losses logged</p>"


def epoch_means(rec: RunRecord, name: str) -> list[tuple[float, float]]:
    """Mean of a train loss over each epoch ``e`` (logged at fractional epochs in ``(e, e + 1]``), at ``e + 1``."""
    import math

    sums: dict[int, list[float]] = defaultdict(list)
    for epoch, value in rec.series("train", name, "epoch"):
        sums[max(math.ceil(epoch - 1e-9) - 1, 0)].append(value)
    return [(e + 1.0, sum(v) / len(v)) for e, v in sorted(sums.items())]


def _validation_charts(rec: RunRecord) -> str:
    charts = []
    methods = rec.validation_methods
    for metric, spec in METRICS.items():
        series = {m: rec.series("val", f"{m}.{metric}") for m in methods}
        if any(series.values()):
            charts.append(line_chart(series, title=f"validation {spec.label}", xlabel="step", ylabel=spec.title,
                                     markers=True, dashed=[m for m in methods if m != "model"]))
    return "".join(charts) or "<p class='muted'>no validation logged</p>"


def _final_table(rec: RunRecord) -> str:
    """Last and best validation score of every method and metric (best = the metric's direction)."""
    methods = rec.validation_methods
    metrics = [m for m in METRICS if any(rec.series("val", f"{x}.{m}") for x in methods)]
    if not metrics:
        return ""
    head = "".join(f"<th>{esc(METRICS[m].title)} last</th><th>best (step)</th>" for m in metrics)
    out = [f"<table class='validation'><tr><th>method</th>{head}</tr>"]
    for method in methods:
        cells = []
        for m in metrics:
            pts = rec.series("val", f"{method}.{m}")
            if not pts:
                cells.append("<td>-</td><td>-</td>")
                continue
            digits = METRICS[m].digits
            best = (max if METRICS[m].higher_is_better else min)(pts, key=lambda p: p[1])
            cells.append(f"<td class='num' data-metric='{m}' data-last='{pts[-1][1]}'>{num(pts[-1][1], digits)}</td>"
                         f"<td class='num'>{num(best[1], digits)} ({int(best[0])})</td>")
        out.append(f"<tr data-method='{esc(method)}'><td>{esc(method)}</td>" + "".join(cells) + "</tr>")
    out.append("</table>")
    return "".join(out)


def render_run_report(rec: RunRecord, max_grids: int = MAX_GRIDS) -> str:
    """The page of one training run (see module doc)."""
    s = rec.summary
    best = s.get("best") or {}
    facts: dict[str, Any] = {
        "run folder": str(rec.path),
        "steps": f"{rec.last_step} logged" + (f" of {s['steps']}" if s.get("steps") else " (unfinished: no summary.json)"),
        "wall time (s)": s.get("seconds"),
        "best checkpoint": (f"{best.get('metric')} = {num(best.get('value'), 4)} at step {best.get('step')} "
                            f"(checkpoints/best)") if best else None,
        "training throughput": s.get("training_throughput"),
    }
    grids = chosen_samples(rec, max_grids)
    grid_html = "".join(
        f"<figure data-step='{step}'><img src='{png_data_uri(p.read_bytes())}' alt='validation samples, step {step}'>"
        f"<figcaption>step {step}{' (best)' if step == best.get('step') else ''}: LR | baseline | SR | HR | "
        "absolute error, one row per validation sample</figcaption></figure>" for step, p in grids)
    means = {n: epoch_means(rec, n) for n in rec.names("train", "g_") + rec.names("train", "d_")}
    body = [
        f"<h1>mrisr training run: {esc(rec.name)}</h1>",
        f"<p class='muted'>Rendered by mrisr {esc(__version__)} from {esc(rec.path)} (metrics.csv, summary.json, "
        "samples/, checkpoints/best, config.yaml).</p>",
        "<h2>Run</h2>", kv_table(facts),
        "<h2>Validation</h2>",
        "<p>The model (its EMA when the run keeps one) and the baselines on the same validation samples; the "
        "best checkpoint follows the config's validation.metric.</p>",
        _final_table(rec), _validation_charts(rec),
        "<h2>Losses</h2>", "<h3>per step</h3>", _loss_charts(rec, "step"),
        "<h3>per epoch</h3>",
        line_chart(means, title="epoch means of the G and D losses", xlabel="epoch", ylabel="loss", markers=True)
        if any(means.values()) else "",
        _loss_charts(rec, "epoch"),
        "<h2>Validation samples</h2>",
        f"<div class='grids'>{grid_html}</div>" if grids else "<p class='muted'>no sample grids</p>",
        "<h2>Model card (best checkpoint)</h2>",
        (f"<p class='muted'>{esc(rec.model_card_path)}</p>" + kv_table(rec.model_card)) if rec.model_card
        else "<p class='muted'>no best checkpoint yet</p>",
        "<h2>Config</h2>", f"<pre class='config'>{esc(rec.config_text)}</pre>",
    ]
    return page_with_sliders(f"mrisr run {rec.name}", "\n".join(body))


# ------------------------------------------------------------------------------------------------ compare
def flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    """``{"a.b.0.c": value}`` of nested mappings and lists (the ``--set`` key syntax)."""
    if isinstance(d, Mapping):
        out: dict[str, Any] = {}
        for k, v in d.items():
            out |= flatten(v, f"{prefix}{k}.")
        return out
    if isinstance(d, list) and d and any(isinstance(v, Mapping | list) for v in d):
        out = {}
        for i, v in enumerate(d):
            out |= flatten(v, f"{prefix}{i}.")
        return out
    return {prefix[:-1]: d}


def differing_params(configs: Sequence[Mapping[str, Any]]) -> dict[str, list[Any]]:
    """Config keys (flattened) whose values are not the same in every config, with each config's value
    (None where a config lacks the key). Paths of the data root differ between machines and stay in."""
    flat = [flatten(c) for c in configs]
    keys = list(dict.fromkeys(k for f in flat for k in f))
    return {k: [f.get(k) for f in flat] for k in keys if len({json.dumps(f.get(k), default=str) for f in flat}) > 1}


def _run_scores(rec: RunRecord, metric: str) -> tuple[float | None, tuple[float, int] | None]:
    pts = rec.series("val", f"model.{metric}")
    if not pts:
        return None, None
    best = (max if METRICS[metric].higher_is_better else min)(pts, key=lambda p: p[1])
    return pts[-1][1], (best[1], int(best[0]))


def render_compare(recs: Sequence[RunRecord]) -> str:
    """One table (final and best validation metrics of the model, steps, wall time, the hyper-parameters that
    differ) and one set of curves overlaid across runs (validation metrics of the model, G and D losses)."""
    names = [r.name for r in recs]
    if len(set(names)) < len(names):  # same folder names under different parents
        names = [str(r.path) for r in recs]
    metrics = [m for m in METRICS if any(r.series("val", f"model.{m}") for r in recs)]
    diff = differing_params([r.config for r in recs])
    head = ["run", "steps", "wall time (s)"]
    for m in metrics:
        head += [f"{METRICS[m].title} final", f"{METRICS[m].title} best (step)"]
    head += list(diff)
    rows = ["<table class='compare'><tr>" + "".join(f"<th>{esc(h)}</th>" for h in head) + "</tr>"]
    for i, (name, rec) in enumerate(zip(names, recs, strict=True)):
        cells = [f"<td>{esc(name)}</td>", f"<td class='num'>{rec.last_step}</td>",
                 f"<td class='num'>{num(rec.summary.get('seconds'), 1)}</td>"]
        for m in metrics:
            final, best = _run_scores(rec, m)
            digits = METRICS[m].digits
            cells.append(f"<td class='num' data-metric='{m}' data-final='{final}'>{num(final, digits)}</td>")
            cells.append(f"<td class='num'>{num(best[0], digits)} ({best[1]})</td>" if best else "<td>-</td>")
        cells += [f"<td><code>{esc(json.dumps(v[i], default=str))}</code></td>" for v in diff.values()]
        rows.append(f"<tr data-run='{esc(name)}'>" + "".join(cells) + "</tr>")
    rows.append("</table>")
    charts = [line_chart({n: r.series("val", f"model.{m}") for n, r in zip(names, recs, strict=True)},
                         title=f"validation {METRICS[m].label} of the model", xlabel="step",
                         ylabel=METRICS[m].title, markers=True) for m in metrics]
    for loss in ("g_total", "d_total"):
        series = {n: r.series("train", loss) for n, r in zip(names, recs, strict=True)}
        if any(series.values()):
            charts.append(line_chart(series, title=f"{loss} per step", xlabel="step", ylabel="loss"))
    body = [f"<h1>mrisr: {len(recs)} training runs compared</h1>",
            f"<p class='muted'>Rendered by mrisr {esc(__version__)}. Final = the last validation, best = the best "
            "validation of the model and its step. Columns after the scores: the config values that differ.</p>",
            "".join(rows), "<h2>Curves</h2>", "".join(charts) or "<p class='muted'>nothing logged</p>",
            "<h2>Runs</h2>",
            "<ul>" + "".join(f"<li>{esc(n)}: {esc(r.path)}</li>" for n, r in zip(names, recs, strict=True)) + "</ul>"]
    return page_with_sliders("mrisr compare", "\n".join(body))

