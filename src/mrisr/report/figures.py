"""Comparison figures of one case: a representative slice of every method beside the LR input and the reference.

Layout (one PNG per case x degradation x scale), columns ``LR | baselines... | models... | HR``:

* row 1: the slice, every panel in the *same* grey window (the reference volume's 0.5-99.5 percentiles;
  no per-panel scaling, which would hide intensity errors), each method titled with its headline metrics
  (:data:`mrisr.metrics.registry.METRICS`: PSNR/SSIM) on this slice (data range = the reference volume's
  max - min, as the volume scores); the scoring mask (when there is one) outlined in cyan on the HR panel;
* row 2: ``|method - HR|`` for each method on one common colour scale (0 to the 99.5th percentile of
  all methods' errors on the slice, shown by the colour bar);
* row 3: a zoomed crop of the most detailed region (largest gradient energy of the reference inside
  its foreground, a quarter of the slice wide), same window; the crop is outlined on the HR panel.

Slice choice: normal to the scoring slice axis (default 2), through the centre of mass of the
reference's foreground (Otsu, or the scoring mask) along that axis; 4D data shows the middle frame.
The LR input is shown nearest-upsampled onto the reference grid (same size as the other panels).

Orientation: radiological, as a DICOM viewer shows the standard planes. From the affine's dominant
axes: patient right on the image's left, anterior up (axial), superior up (coronal, sagittal; sagittal
with anterior on the left). Without geometry (a 4x4 identity affine: PNG, TIFF, NPY) the slice is shown as
stored, rows = the second in-plane array axis (as DICOM frames and images are read). Pixels keep their
physical aspect ratio (spacing).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mrisr.evaluate.protocol import CaseVolumes
from mrisr.io.atomic import atomic_write
from mrisr.metrics.registry import METRICS, MetricOptions, MetricSpec

#: World direction letters (RAS+): (axis, sign) -> letter.
_LETTERS = {(0, 1): "R", (0, -1): "L", (1, 1): "A", (1, -1): "P", (2, 1): "S", (2, -1): "I"}
WINDOW_PERCENTILES = (0.5, 99.5)
ERROR_PERCENTILE = 99.5


def _pyplot():  # type: ignore[no-untyped-def]
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


@dataclass(frozen=True)
class Orientation:
    """How a slice's two in-plane array axes map onto the displayed rows and columns."""

    row_axis: int
    col_axis: int
    flip_rows: bool
    flip_cols: bool
    #: side letters (top, bottom, left, right), empty without geometry
    labels: tuple[str, str, str, str] = ("", "", "", "")
    plane: str = "as stored"


def display_orientation(affine: np.ndarray, slice_axis: int = 2, spatial_ndim: int = 3) -> Orientation:
    """Radiological display of the slice normal to ``slice_axis`` (see module doc)."""
    in_plane = [0, 1] if spatial_ndim == 2 else [a for a in range(3) if a != slice_axis % 3]
    stored = Orientation(row_axis=in_plane[1], col_axis=in_plane[0], flip_rows=False, flip_cols=False)
    if np.allclose(np.asarray(affine, dtype=np.float64), np.eye(4)):  # PNG/TIFF/NPY: no geometry known
        return stored
    m = np.asarray(affine, dtype=np.float64)[:3, :3]
    dirs = {a: m[:, a] / (np.linalg.norm(m[:, a]) or 1.0) for a in in_plane}
    dom = {a: int(np.argmax(np.abs(dirs[a]))) for a in in_plane}
    if dom[in_plane[0]] == dom[in_plane[1]]:
        return stored
    normal = ({0, 1, 2} - set(dom.values())).pop()
    if normal == 0:
        plane, (hw, hs), (vw, vs) = "sagittal", (1, -1), (2, -1)
    elif normal == 1:
        plane, (hw, hs), (vw, vs) = "coronal", (0, -1), (2, -1)
    else:
        plane, (hw, hs), (vw, vs) = "axial", (0, -1), (1, -1)
    col = next(a for a in in_plane if dom[a] == hw)
    row = next(a for a in in_plane if a != col)
    return Orientation(
        row_axis=row, col_axis=col,
        flip_rows=bool(np.sign(dirs[row][vw]) != vs), flip_cols=bool(np.sign(dirs[col][hw]) != hs),
        labels=(_LETTERS[(vw, -vs)], _LETTERS[(vw, vs)], _LETTERS[(hw, -hs)], _LETTERS[(hw, hs)]),
        plane=plane,
    )


def _oriented(img: np.ndarray, in_plane: Sequence[int], o: Orientation) -> np.ndarray:
    """``img`` indexed ``[in_plane[0], in_plane[1]]`` -> ``[row, column]`` for display."""
    a = img if o.row_axis == in_plane[0] else img.T
    if o.flip_rows:
        a = a[::-1]
    if o.flip_cols:
        a = a[:, ::-1]
    return np.ascontiguousarray(a)


def choose_slice(reference: np.ndarray, slice_axis: int, mask: np.ndarray | None = None) -> int:
    """Index along ``slice_axis`` through the foreground's centre of mass (3D ``reference``)."""
    from mrisr.metrics.masks import foreground_mask

    fg = mask if mask is not None else foreground_mask(reference)
    counts = np.asarray(fg, dtype=bool).sum(axis=tuple(a for a in range(3) if a != slice_axis)).astype(float)
    n = reference.shape[slice_axis]
    if counts.sum() == 0:
        return n // 2
    return int(np.clip(round(float((counts * np.arange(n)).sum() / counts.sum())), 0, n - 1))


def _nearest_upsample(lr: np.ndarray, shape: Sequence[int], spatial: int) -> np.ndarray:
    """Repeat every coarse voxel over its block of fine voxels (the field of view is the same)."""
    out = lr
    for a in range(spatial):
        f = shape[a] // lr.shape[a]
        if f * lr.shape[a] != shape[a]:
            idx = np.minimum((np.arange(shape[a]) * lr.shape[a]) // shape[a], lr.shape[a] - 1)
            out = np.take(out, idx, axis=a)
        elif f > 1:
            out = np.repeat(out, f, axis=a)
    return out


def _detail_box(img: np.ndarray, fg: np.ndarray | None) -> tuple[int, int, int] | None:
    """(row, col, side) of the square with the largest gradient energy of ``img`` (a quarter of the
    shorter side, at least 16 px), its centre inside ``fg`` when given; None for small images."""
    h, w = img.shape
    side = max(16, min(h, w) // 4)
    if side * 2 > min(h, w):
        return None
    gy, gx = np.gradient(img.astype(np.float64))
    energy = np.hypot(gx, gy)
    c = np.pad(energy.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    sums = c[side:, side:] - c[:-side, side:] - c[side:, :-side] + c[:-side, :-side]
    if fg is not None:
        centre_ok = fg[side // 2: side // 2 + sums.shape[0], side // 2: side // 2 + sums.shape[1]]
        if centre_ok.any():
            sums = np.where(centre_ok, sums, -np.inf)
    r, q = np.unravel_index(int(np.argmax(sums)), sums.shape)
    return int(r), int(q), side


def headline_metrics() -> list[MetricSpec]:
    """The metrics shown per slice in panel titles (the registry's headline metrics, in table order)."""
    return [s for s in METRICS.values() if s.headline]


def _slice_scores(ref: np.ndarray, test: np.ndarray, data_range: float, mask: np.ndarray | None,
                  gaussian: bool) -> dict[str, float | None]:
    """Headline metric -> its value on one displayed 2D slice (over ``mask`` when given); None where the
    metric cannot be computed on the slice (SSIM of a slice narrower than its window)."""
    import torch

    r = torch.from_numpy(np.ascontiguousarray(ref, dtype=np.float64))[None, None]
    t = torch.from_numpy(np.ascontiguousarray(test, dtype=np.float64))[None, None]
    m = None if mask is None else torch.from_numpy(np.ascontiguousarray(mask))[None, None]
    options = MetricOptions(gaussian=gaussian)
    out: dict[str, float | None] = {}
    for spec in headline_metrics():
        assert spec.per_sample is not None  # a headline metric has one (MetricSpec checks)
        try:
            out[spec.name] = float(spec.per_sample(r, t, data_range, m, options)[0])
        except ValueError:  # e.g. the SSIM window exceeds the slice
            out[spec.name] = None
    return out


@dataclass
class Panel:
    """One drawn panel: its title and the colour limits matplotlib actually used."""

    kind: str  # "lr" | "method" | "hr" | "error" | "zoom"
    name: str
    title: str
    clim: tuple[float, float]
    shape: tuple[int, int]
    #: headline metric -> value on this slice (``lr`` and ``method`` panels)
    scores: dict[str, float | None] = field(default_factory=dict)


@dataclass
class FigureInfo:
    """What :func:`case_figure` drew (for the HTML caption and for tests)."""

    path: Path
    slice_axis: int
    slice_index: int
    frame: int | None
    window: tuple[float, float]
    error_max: float
    orientation: Orientation
    zoom: tuple[int, int, int] | None
    panels: list[Panel] = field(default_factory=list)
    size_px: tuple[int, int] = (0, 0)


def _clim(im: Any) -> tuple[float, float]:
    lo, hi = im.get_clim()
    return float(lo), float(hi)


def display_name(method: str) -> str:
    """Short panel name: a model file path shows as its file name without ``.safetensors``."""
    if "/" in method or "\\" in method or method.endswith(".safetensors"):
        name = Path(method).name
        return name[: -len(".safetensors")] if name.endswith(".safetensors") else name
    return method


def _fmt_title(name: str, scores: dict[str, float | None]) -> str:
    parts = [METRICS[m].short(v) for m, v in scores.items() if v is not None]
    return name + ("\n" + "  ".join(parts) if parts else "")


def frame_picker(data: np.ndarray, nsp: int) -> tuple[int | None, Callable[[np.ndarray], np.ndarray]]:
    """(the middle time frame of ``data`` with ``nsp`` spatial axes, or None for 2D/3D data; a function that
    takes that frame of an array of the same layout, leaving arrays without a time axis as they are)."""
    frame = data.shape[-1] // 2 if data.ndim > nsp else None

    def spatial(a: np.ndarray) -> np.ndarray:
        a = np.asarray(a)
        return a[..., frame] if frame is not None and a.ndim > nsp else a

    return frame, spatial


def grey_window(reference: np.ndarray) -> tuple[float, float]:
    """The one grey window of every panel: the reference volume's :data:`WINDOW_PERCENTILES` (its min and max,
    or ``[v, v + 1]``, where those coincide)."""
    lo, hi = (float(v) for v in np.percentile(reference, WINDOW_PERCENTILES))
    if hi <= lo:
        lo, hi = float(reference.min()), float(reference.max()) if reference.max() > reference.min() else lo + 1.0
    return lo, hi


def case_figure(cv: CaseVolumes, path: str | Path, *, slice_axis: int = 2, gaussian: bool = False,
                zoom: bool = True, force: bool = False, panel_inches: float = 2.6, dpi: int = 100) -> FigureInfo:
    """Draw the comparison figure of one case (see module doc) and write it to ``path`` (PNG, atomic)."""
    plt = _pyplot()
    ref_vol = cv.reference
    nsp = len(ref_vol.spatial_shape)
    ref_data = np.asarray(ref_vol.data, dtype=np.float64)
    frame, spatial = frame_picker(ref_data, nsp)
    ref3 = spatial(ref_data)
    mask3 = None if cv.mask is None else spatial(np.asarray(cv.mask, dtype=bool))
    if nsp == 2:
        axis, index, in_plane = 2, 0, [0, 1]

        def take(a: np.ndarray) -> np.ndarray:
            return np.asarray(a, dtype=np.float64)
    else:
        axis = slice_axis % 3
        index = choose_slice(ref3, axis, mask3)
        in_plane = [a for a in range(3) if a != axis]

        def take(a: np.ndarray) -> np.ndarray:
            return np.asarray(np.take(a, index, axis=axis), dtype=np.float64)

    o = display_orientation(ref_vol.affine, axis, nsp)
    show = lambda a: _oriented(take(a), in_plane, o)  # noqa: E731
    hr2 = show(ref3)
    mask2 = None if mask3 is None else show(mask3).astype(bool)
    if mask2 is not None and not mask2.any():
        mask2 = None
    data_range = float(ref_data.max() - ref_data.min())
    lo, hi = grey_window(ref_data)

    outs = {name: show(spatial(v.data)) for name, v in cv.outputs.items()}
    errs = {name: np.abs(img - hr2) for name, img in outs.items()}
    pooled = np.concatenate([e.ravel() for e in errs.values()]) if errs else np.zeros(1)
    emax = float(np.percentile(pooled, ERROR_PERCENTILE)) if pooled.size else 0.0
    if not np.isfinite(emax) or emax <= 0:
        emax = float(pooled.max()) if pooled.size and pooled.max() > 0 else max(data_range, 1.0) * 1e-6

    columns: list[tuple[str, str, np.ndarray]] = []
    if cv.lr is not None:
        lr_full = _nearest_upsample(np.asarray(cv.lr.data), ref_data.shape, nsp)
        factors = "x".join(str(ref_vol.spatial_shape[a] // cv.lr.spatial_shape[a]) for a in range(nsp))
        columns.append(("lr", f"LR (nearest, {factors})", show(spatial(lr_full))))
    columns += [("method", name, img) for name, img in outs.items()]
    shown = {name: display_name(name) for name in outs}
    columns.append(("hr", "HR reference", hr2))

    from mrisr.metrics.masks import foreground_mask

    box = _detail_box(hr2, mask2 if mask2 is not None else foreground_mask(hr2)) if zoom else None
    spacing = ref_vol.spacing
    aspect = float(spacing[o.row_axis] / spacing[o.col_axis])  # rows/columns in mm keep their shape
    h, w = hr2.shape
    panel_h = panel_inches * min(max(h * aspect / w, 0.4), 2.5)
    nrows = 3 if box is not None else 2
    ncols = len(columns)
    heights = [panel_h, panel_h, panel_inches][:nrows]
    fig, axes = plt.subplots(nrows, ncols, figsize=(ncols * panel_inches, sum(heights) + 0.4 * nrows + 0.3),
                             squeeze=False, dpi=dpi, layout="constrained",
                             gridspec_kw={"height_ratios": heights})
    info = FigureInfo(path=Path(path), slice_axis=axis, slice_index=index, frame=frame, window=(lo, hi),
                      error_max=emax, orientation=o, zoom=box)
    where = f"slice {index} of axis {axis}" if nsp == 3 else "2D image"
    if frame is not None:
        where += f", frame {frame}"
    deg = f" - {cv.degradation} x{cv.scale}" if cv.degradation else ""
    fig.suptitle(f"{cv.case}{deg} - {where} ({o.plane}) - window [{lo:.4g}, {hi:.4g}]", fontsize=10)

    def label_sides(ax: Any) -> None:
        top, bottom, left, right = o.labels
        style = {"color": "yellow", "fontsize": 8, "fontweight": "bold"}
        if top:
            ax.text(0.5, 0.99, top, transform=ax.transAxes, ha="center", va="top", **style)
            ax.text(0.5, 0.01, bottom, transform=ax.transAxes, ha="center", va="bottom", **style)
            ax.text(0.01, 0.5, left, transform=ax.transAxes, ha="left", va="center", **style)
            ax.text(0.99, 0.5, right, transform=ax.transAxes, ha="right", va="center", **style)

    err_im = None
    for c, (kind, name, img) in enumerate(columns):
        ax = axes[0, c]
        scores = _slice_scores(hr2, img, data_range, mask2, gaussian) if kind in ("method", "lr") else {}
        title = _fmt_title(shown.get(name, name) if kind == "method" else name, scores)
        im = ax.imshow(img, cmap="gray", vmin=lo, vmax=hi, interpolation="nearest", aspect=aspect)
        ax.set_title(title, fontsize=8)
        label_sides(ax)
        info.panels.append(Panel(kind, name, title, _clim(im), img.shape, scores))
        if kind == "hr" and mask2 is not None:  # the scoring mask, outlined
            ax.contour(mask2.astype(float), levels=[0.5], colors="cyan", linewidths=0.6)
        if kind == "hr" and box is not None:
            from matplotlib.patches import Rectangle

            r0, c0, side = box
            ax.add_patch(Rectangle((c0 - 0.5, r0 - 0.5), side, side, fill=False, edgecolor="yellow", linewidth=1))
        ax_e = axes[1, c]
        if kind == "method":
            err_im = ax_e.imshow(errs[name], cmap="magma", vmin=0.0, vmax=emax, interpolation="nearest",
                                 aspect=aspect)
            et = f"|{shown[name]} - HR|"
            ax_e.set_title(et, fontsize=8)
            info.panels.append(Panel("error", name, et, _clim(err_im), img.shape))
        if box is not None:
            r0, c0, side = box
            ax_z = axes[2, c]
            crop = img[r0:r0 + side, c0:c0 + side]
            zi = ax_z.imshow(crop, cmap="gray", vmin=lo, vmax=hi, interpolation="nearest", aspect=aspect)
            zt = f"zoom: {shown.get(name, name)}" if kind != "lr" else "zoom: LR"
            ax_z.set_title(zt, fontsize=8)
            info.panels.append(Panel("zoom", name, zt, _clim(zi), crop.shape))
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
        if not ax.images:
            ax.axis("off")
    if err_im is not None:
        # in the empty HR cell of the error row, so the image panels keep their width
        cb = fig.colorbar(err_im, cax=axes[1, -1].inset_axes((0.05, 0.05, 0.09, 0.9)))
        cb.set_label(f"absolute error (0 to p{ERROR_PERCENTILE:g} = {emax:.3g})", fontsize=8)
        cb.ax.tick_params(labelsize=7)
    fig.canvas.draw()
    info.size_px = tuple(int(v) for v in fig.canvas.get_width_height())  # type: ignore[assignment]
    atomic_write(path, functools.partial(fig.savefig, format="png", dpi=dpi), force=force)
    plt.close(fig)
    return info


def figure_name(index: int, case: str, degradation: str, scale: Any) -> str:
    """File name of a case figure: ``NNN_case[_degradation_xS].png`` with unsafe characters replaced."""
    stem = f"{index:03d}_{case}" + (f"_{degradation}_x{scale}" if degradation else "")
    return re.sub(r"[^A-Za-z0-9._=-]+", "_", stem)[:150] + ".png"


@dataclass
class CaseEntry:
    """What the report keeps of one case x degradation x scale once its volumes are gone."""

    case: str
    degradation: str
    scale: Any
    rows: list[dict[str, Any]]
    shape: tuple[int, ...]
    spacing: tuple[float, ...]
    reference_history: list[Any]
    lr_shape: tuple[int, ...] | None
    lr_history: list[Any]
    output_history: dict[str, list[Any]]
    source: str | None
    figure: FigureInfo | None = None
    #: HTML of the case's slice sliders (:func:`mrisr.report.slider.case_slider`), empty when not drawn
    slider: str = ""


class ReportCollector:
    """``on_case`` callback for :func:`mrisr.evaluate.protocol.evaluate_protocol` / ``evaluate_pairs``:
    draws the figure of each of the first ``max_cases`` cases into ``figures_dir`` while its volumes are
    in memory (with slice sliders for the first ``sliders`` of them: a few MB each) and keeps the facts
    (shapes, histories, rows) of every case."""

    def __init__(self, figures_dir: str | Path, *, max_cases: int = 12, slice_axis: int = 2,
                 gaussian: bool = False, force: bool = False, sliders: int = 3) -> None:
        self.figures_dir = Path(figures_dir)
        self.sliders = sliders
        self.max_cases = max_cases
        self.slice_axis = slice_axis
        self.gaussian = gaussian
        self.force = force
        self.entries: list[CaseEntry] = []
        self.cases: list[str] = []
        self.written: list[Path] = []
        self._made_dir = not self.figures_dir.exists()

    def discard(self) -> None:
        """Remove the figures written so far (after a failed run), and the folder if this run made it."""
        for path in self.written:
            path.unlink(missing_ok=True)
        self.written.clear()
        if self._made_dir and self.figures_dir.is_dir() and not any(self.figures_dir.iterdir()):
            self.figures_dir.rmdir()

    @property
    def capped(self) -> bool:
        """True when more cases were seen than drawn."""
        return len(self.cases) > self.max_cases

    def __call__(self, cv: CaseVolumes) -> None:
        if cv.case not in self.cases:
            self.cases.append(cv.case)
        ref = cv.reference
        entry = CaseEntry(
            case=cv.case, degradation=cv.degradation, scale=cv.scale, rows=list(cv.rows), shape=ref.shape,
            spacing=tuple(float(s) for s in ref.spacing), reference_history=list(ref.meta.get("history", [])),
            lr_shape=None if cv.lr is None else cv.lr.shape,
            lr_history=[] if cv.lr is None else list(cv.lr.meta.get("history", [])),
            output_history={m: list(v.meta.get("history", [])) for m, v in cv.outputs.items()},
            source=None if ref.meta.get("source") is None else str(ref.meta.get("source")),
        )
        if self.cases.index(cv.case) < self.max_cases:
            name = figure_name(len(self.entries), cv.case, cv.degradation, cv.scale)
            entry.figure = case_figure(cv, self.figures_dir / name, slice_axis=self.slice_axis,
                                       gaussian=self.gaussian, force=self.force)
            self.written.append(entry.figure.path)
            if sum(bool(e.slider) for e in self.entries) < self.sliders:
                from mrisr.report.slider import case_slider

                entry.slider = case_slider(cv)
        self.entries.append(entry)
