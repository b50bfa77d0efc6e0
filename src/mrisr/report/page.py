"""Pieces every mrisr HTML page shares: the style sheet, escaping, number formatting, key-value tables, PNG
data URIs and the document shell.

Pages are self-contained: inline CSS, images as ``data:image/png;base64`` URIs or relative paths, inline
scripts only; nothing is fetched from a network (no URL of any kind is written).
"""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Mapping
from typing import Any

import numpy as np

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 1.5em auto;
       max-width: 1500px; padding: 0 1em; color: #222; line-height: 1.35; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #ccc; margin-top: 1.8em; }
h3 { margin-bottom: 0.3em; }
table { border-collapse: collapse; margin: 0.5em 0 1em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; vertical-align: top; }
th { background: #f0f0f0; text-align: left; } table.kv th { white-space: nowrap; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.best { background: #d9f2d9; font-weight: bold; }
tr.model td:first-child { font-weight: bold; }
.ci { color: #666; font-size: 0.85em; }
.gain-pos { color: #0a6b0a; font-weight: bold; } .gain-neg { color: #a30000; font-weight: bold; }
figure { margin: 0.5em 0 1.5em; } figure img { max-width: 100%; height: auto; border: 1px solid #ddd; }
figcaption { font-size: 0.85em; color: #444; max-width: 1200px; }
code, pre { font-size: 0.85em; background: #f6f6f6; } pre { padding: 0.4em; white-space: pre-wrap; margin: 0; }
.note { background: #fff6d6; border: 1px solid #e6d28a; padding: 0.4em 0.7em; display: inline-block; }
.muted { color: #666; }
.chart { margin: 0.3em 1em 1em 0; display: inline-block; vertical-align: top; }
.chart text { font-size: 11px; fill: #333; } .chart .grid { stroke: #e4e4e4; } .chart .axis { stroke: #888; }
.slider { margin: 0.4em 0 1.2em; } .slider input { width: 320px; vertical-align: middle; }
.slider img { display: block; margin-top: 0.3em; image-rendering: pixelated; border: 1px solid #ddd; }
.grids img { max-width: 100%; border: 1px solid #ddd; }
"""

def esc(x: Any) -> str:
    return html.escape(str(x), quote=True)


def num(v: Any, digits: int) -> str:
    if v is None or v == "":
        return "-"
    f = float(v)
    if not np.isfinite(f):
        return "inf" if f > 0 else "-"
    return f"{f:.{digits}f}"


def as_json(v: Any) -> str:
    return json.dumps(v, default=str, sort_keys=False)


def kv_table(d: Mapping[str, Any]) -> str:
    rows = []
    for k, v in d.items():
        if isinstance(v, list | tuple) and all(not isinstance(x, Mapping | list | tuple) for x in v):
            val = esc(", ".join(str(x) for x in v)) if v else "<span class='muted'>-</span>"
        elif isinstance(v, Mapping) and v:
            val = "<br>".join(f"{esc(k2)} = <code>{esc(json.dumps(v2, default=str))}</code>" for k2, v2 in v.items())
        elif isinstance(v, Mapping | list | tuple):
            short = json.dumps(v, default=str)
            val = (f"<code>{esc(short)}</code>" if len(short) <= 100
                   else f"<pre>{esc(json.dumps(v, indent=1, default=str))}</pre>") if v else \
                "<span class='muted'>-</span>"
        else:
            val = esc(v) if v not in (None, "") else "<span class='muted'>-</span>"
        rows.append(f"<tr><th>{esc(k)}</th><td>{val}</td></tr>")
    return "<table class='kv'>" + "".join(rows) + "</table>"



def png_data_uri(png: bytes) -> str:
    """``data:image/png;base64,...`` of PNG bytes (embedded in the page, nothing to copy beside it)."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def document(title: str, body: str, head_script: str = "", script: str = "") -> str:
    """The HTML document: ``head_script`` runs before the body (e.g. an error recorder), ``script`` after it."""
    return ("<!DOCTYPE html>\n<html lang='en'>\n<head>\n<meta charset='utf-8'>\n"
            f"<meta name='viewport' content='width=device-width, initial-scale=1'>\n<title>{esc(title)}</title>\n"
            f"<style>{CSS}</style>\n"
            + (f"<script>{head_script}</script>\n" if head_script else "")
            + f"</head>\n<body>\n{body}\n"
            + (f"<script>{script}</script>\n" if script else "")
            + "</body>\n</html>\n")
