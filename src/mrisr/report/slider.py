"""Slice sliders: scroll through a case's volumes in the report, every panel at the same slice.

Per view (the three orthogonal planes of a 3D volume, the image itself in 2D) one strip per shown slice:
``LR | baselines... | models... | HR`` in one grey window (the reference volume's 0.5-99.5 percentiles, the
same for every panel, view and slice), and below it ``|method - HR|`` on one colour scale (0 to the 99.5th
percentile of every method's error over the volume). The scoring mask's outline is drawn on the HR panel.
Panels keep the physical aspect ratio (spacing) and the radiological orientation of
:func:`mrisr.report.figures.display_orientation`; 4D data shows the middle frame.

The strips are PNG data URIs inside the page (no file beside it, nothing fetched), at most
:data:`MAX_SLICES` per view (evenly spread) and :data:`MAX_SIDE` pixels per panel side, so a case adds about
1-3 MB. A plain inline script (:data:`SCRIPT`) swaps the shown strip when the range input moves; the page's
address may set the position of every slider, e.g. ``report.html#slice=5`` (index into the shown slices).
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mrisr.evaluate.protocol import CaseVolumes
from mrisr.report.figures import (
    ERROR_PERCENTILE,
    WINDOW_PERCENTILES,
    Orientation,
    _nearest_upsample,
    _oriented,
    display_name,
    display_orientation,
    frame_picker,
    grey_window,
)
from mrisr.report.page import esc, png_data_uri

MAX_SLICES = 48
MAX_SIDE = 128
GAP = 3  # px between panels
LABEL_H = 12  # px of the name strip above each row
MASK_RGB = (0, 220, 255)

#: Records uncaught script errors and ``console.error`` calls into ``#js-errors`` (read by the browser test),
#: before anything else runs.
ERROR_RECORDER = (
    "window.mrisrErrors=[];function mrisrRecord(t){window.mrisrErrors.push(t);"
    "var e=document.getElementById('js-errors');if(e){e.textContent=window.mrisrErrors.join('\\n');}}"
    "window.onerror=function(m,s,l){mrisrRecord(m+' (line '+l+')');};"
    "var mrisrConsoleError=console.error;console.error=function(){"
    "mrisrRecord(Array.prototype.join.call(arguments,' '));mrisrConsoleError.apply(console,arguments);};"
)

#: Wires every ``div.slider``: its range input shows strip i of the JSON list in its ``script`` element.
SCRIPT = """
(function () {
  var hash = /(?:^#|&)slice=(\\d+)/.exec(location.hash);
  var sliders = document.querySelectorAll('div.slider');
  for (var k = 0; k < sliders.length; k++) {
    (function (div) {
      var strips = JSON.parse(div.querySelector('script.strips').textContent);
      var slices = JSON.parse(div.getAttribute('data-slices'));
      var input = div.querySelector('input'), img = div.querySelector('img'), pos = div.querySelector('.pos');
      function show() {
        var i = Math.max(0, Math.min(strips.length - 1, parseInt(input.value, 10) || 0));
        img.src = strips[i];
        img.setAttribute('data-index', String(i));
        pos.textContent = 'slice ' + slices[i] + ' (' + (i + 1) + ' of ' + strips.length + ' shown)';
      }
      if (hash) { input.value = String(Math.min(parseInt(hash[1], 10), strips.length - 1)); }
      input.addEventListener('input', show);
      show();
    })(sliders[k]);
  }
  var e = document.getElementById('js-errors');
  if (e) { e.textContent = window.mrisrErrors.join('\\n'); e.setAttribute('data-ready', '1'); }
})();
"""


@dataclass(frozen=True)
class View:
    """One slider's plane: the array axis it steps along and the shown slice indices."""

    axis: int
    plane: str
    slices: tuple[int, ...]


@dataclass(frozen=True)
class _Cut:
    """How one view's slices become display panels: orientation and the nearest-neighbour resampling."""

    axis: int
    in_plane: tuple[int, int]
    orientation: Orientation
    rows: np.ndarray
    cols: np.ndarray

    def __call__(self, a: np.ndarray, index: int) -> np.ndarray:
        """Slice ``index`` of 3D ``a`` along ``axis``, oriented for display, ``(len(rows), len(cols))``."""
        img = _oriented(np.take(a, index, axis=self.axis), self.in_plane, self.orientation)
        return img[np.ix_(self.rows, self.cols)]


def shown_slices(n: int, max_slices: int = MAX_SLICES) -> tuple[int, ...]:
    """At most ``max_slices`` indices of ``range(n)``, evenly spread, first and last included."""
    if n <= max_slices:
        return tuple(range(n))
    return tuple(int(v) for v in np.rint(np.linspace(0, n - 1, max_slices)))


def _resize_index(n: int, target: int) -> np.ndarray:
    """Nearest-neighbour source index of each of ``target`` output pixels over ``n`` input pixels."""
    return np.minimum(((np.arange(target) + 0.5) * n / target).astype(int), n - 1)


def _grey(img: np.ndarray, lo: float, hi: float) -> np.ndarray:
    g = np.clip((img - lo) / (hi - lo), 0.0, 1.0)
    return np.repeat((g * 255 + 0.5).astype(np.uint8)[..., None], 3, axis=2)


def _outline(mask: np.ndarray) -> np.ndarray:
    """Pixels of ``mask`` with a 4-neighbour outside it (the drawn outline)."""
    m = np.pad(mask, 1)
    inner = m[1:-1, 1:-1] & m[:-2, 1:-1] & m[2:, 1:-1] & m[1:-1, :-2] & m[1:-1, 2:]
    return mask & ~inner


def _label(canvas: np.ndarray, names: Sequence[str], x0s: Sequence[int], y: int) -> np.ndarray:
    from PIL import Image, ImageDraw

    im = Image.fromarray(canvas)
    draw = ImageDraw.Draw(im)
    for name, x in zip(names, x0s, strict=True):
        draw.text((x + 1, y), name, fill=(30, 30, 30))
    return np.asarray(im)


def _png(rgb: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG", compress_level=4)
    return buf.getvalue()


def case_slider(cv: CaseVolumes, *, max_slices: int = MAX_SLICES, max_side: int = MAX_SIDE) -> str:
    """The HTML of the sliders of one case (see module doc): one ``div.slider`` per view."""
    import matplotlib

    ref_vol = cv.reference
    nsp = len(ref_vol.spatial_shape)
    ref = np.asarray(ref_vol.data, dtype=np.float64)
    frame, spatial = frame_picker(ref, nsp)
    ref3 = spatial(ref)
    if nsp == 2:  # one "slice": the image itself, as a 3D volume of one slice along axis 2
        ref3 = ref3[:, :, None]
    lo, hi = grey_window(ref)

    def as3(a: np.ndarray) -> np.ndarray:
        a = spatial(a).astype(np.float64)
        return a[:, :, None] if nsp == 2 else a

    panels: list[tuple[str, str, np.ndarray]] = []
    if cv.lr is not None:
        panels.append(("lr", "LR", as3(_nearest_upsample(np.asarray(cv.lr.data), ref.shape, nsp))))
    outs = {name: as3(v.data) for name, v in cv.outputs.items()}
    panels += [("method", display_name(n), a) for n, a in outs.items()]
    panels.append(("hr", "HR", ref3))
    errors = {n: np.abs(a - ref3) for n, a in outs.items()}
    pooled = np.concatenate([e.ravel() for e in errors.values()]) if errors else np.zeros(1)
    emax = float(np.percentile(pooled, ERROR_PERCENTILE)) if pooled.size else 0.0
    if not np.isfinite(emax) or emax <= 0:
        emax = float(pooled.max()) if pooled.max() > 0 else 1.0
    mask3 = None if cv.mask is None else as3(np.asarray(cv.mask, dtype=bool)).astype(bool)
    cmap = matplotlib.colormaps["magma"]
    views = [View(a, display_orientation(ref_vol.affine, a, 3).plane, shown_slices(ref3.shape[a], max_slices))
             for a in ((0, 1, 2) if nsp == 3 else (2,))]
    blocks = []
    for view in views:
        in_plane = [a for a in range(3) if a != view.axis]
        o = display_orientation(ref_vol.affine, view.axis, nsp)
        spacing = ref_vol.spacing if nsp == 3 else (*ref_vol.spacing[:2], 1.0)
        h0, w0 = _oriented(np.take(ref3, 0, axis=view.axis), in_plane, o).shape
        mm_h, mm_w = h0 * spacing[o.row_axis], w0 * spacing[o.col_axis]
        # at most max_side px per panel side, never more than one pixel per voxel along the finer axis
        scale = min(max_side / max(mm_h, mm_w), 1.0 / min(spacing[o.row_axis], spacing[o.col_axis]))
        ph, pw = max(1, round(mm_h * scale)), max(1, round(mm_w * scale))
        cut = _Cut(view.axis, (in_plane[0], in_plane[1]), o, _resize_index(h0, ph), _resize_index(w0, pw))
        x0s = [i * (pw + GAP) for i in range(len(panels))]
        width = x0s[-1] + pw
        height = 2 * (LABEL_H + ph) + GAP
        # the names are the same on every strip of the view: drawn once
        blank = np.full((height, width, 3), 255, dtype=np.uint8)
        blank = _label(blank, [n for _, n, _ in panels], x0s, 0)
        blank = _label(blank, [f"|{n} - HR|" if k == "method" else "" for k, n, _ in panels], x0s,
                       LABEL_H + ph + GAP)
        strips = []
        for index in view.slices:
            canvas = blank.copy()
            for (kind, name, vol), x in zip(panels, x0s, strict=True):
                rgb = _grey(cut(vol, index), lo, hi)
                if kind == "hr" and mask3 is not None:
                    rgb[_outline(cut(mask3, index).astype(bool))] = MASK_RGB
                canvas[LABEL_H:LABEL_H + ph, x:x + pw] = rgb
                if kind == "method":
                    source = next(n for n in outs if display_name(n) == name)
                    err = np.clip(cut(errors[source], index) / emax, 0.0, 1.0)
                    y = 2 * LABEL_H + ph + GAP
                    canvas[y:y + ph, x:x + pw] = (cmap(err)[..., :3] * 255 + 0.5).astype(np.uint8)
            strips.append(png_data_uri(_png(canvas)))
        mid = len(view.slices) // 2
        zoom = max(1, max_side // max(ph, pw))  # small volumes are shown enlarged (pixelated), not resampled
        title = (f"{view.plane} view, slices along array axis {view.axis}" if nsp == 3
                 else "2D image (no slices to scroll)")
        blocks.append(
            f"<div class='slider' data-axis='{view.axis}' data-slices='{esc(json.dumps(list(view.slices)))}'>"
            f"<div><b>{esc(title)}</b> <input type='range' min='0' max='{len(strips) - 1}' value='{mid}' "
            f"aria-label='{esc(title)}'> <span class='pos'></span></div>"
            f"<img src='{strips[mid]}' width='{width * zoom}' height='{height * zoom}' "
            f"alt='{esc(cv.case)} {esc(title)}'>"
            f"<script type='application/json' class='strips'>{json.dumps(strips)}</script></div>")
    caption = (f"<p class='muted'>Scroll with the slider (or the arrow keys): every panel shows the same slice. "
               f"Grey window [{lo:.4g}, {hi:.4g}] for all panels (reference {WINDOW_PERCENTILES[0]:g}-"
               f"{WINDOW_PERCENTILES[1]:g} percentiles); error maps 0 to {emax:.4g} (p{ERROR_PERCENTILE:g} of all "
               "errors in the volume)"
               + ("; the cyan outline on HR is the scoring mask" if mask3 is not None else "")
               + (f"; frame {frame} of the time axis" if frame is not None else "")
               + (f"; at most {max_slices} slices per view, evenly spread" if max(
                   ref3.shape[v.axis] for v in views) > max_slices else "") + ".</p>")
    return "<div class='sliders'>" + caption + "".join(blocks) + "</div>"
