"""Degradations as data: build a chain from a short string, a dict/list or YAML, apply it to Volumes or arrays.

Spec string: steps separated by ``;``, each ``method[:key=value,key=value...]``::

    "kspace:scale=2,window=hamming;noise:snr=30"
    "bicubic:scale=4"
    "block:scale=2,grid=original"
    "slice:scale=3,profile=rect,gap=0.5"
    "kspace:scale=2,axes=0+1+2,window=hamming|tukey|none;noise:snr=20..40"

Random parameters: ``a..b`` draws uniformly from ``[a, b]``; ``x|y|z`` picks one. A random degradation draws
its parameters from a generator seeded per volume, then calls the deterministic operation with them, and
the drawn values are recorded. ``axes`` are spatial axes joined by ``+`` (or ``all``); the default is the
in-plane pair ``0+1`` (axis 2 is the slice axis), the same default as ``mrisr upscale``.

Dict / YAML forms: ``{"method": "kspace", "scale": 2, "window": "hamming"}``, ``{"kspace": {"scale": 2}}``,
a list of those (a chain), or ``{"steps": [...]}``; ranges as ``"20..40"`` or ``{"uniform": [20, 40]}``,
choices as ``"a|b"`` or ``{"choice": ["a", "b"]}``.

Methods (tensor operations in the sibling modules):

* ``kspace`` (scale, axes, window): :func:`~mrisr.degrade.kspace.kspace_truncate` (magnitude image).
* ``bicubic`` (scale, axes): anti-aliased bicubic downscaling (MATLAB ``imresize``).
* ``block`` (scale, axes, grid=coarse|original): :func:`~mrisr.degrade.blocks.block_downsample`.
* ``slice`` (scale, axis, thickness, gap, profile=gaussian|rect): :func:`~mrisr.degrade.slice_profile.thick_slices`;
  ``axis`` defaults to the last spatial axis.
* ``noise`` (snr or sigma): :func:`~mrisr.degrade.noise.add_rician`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from mrisr.degrade.blocks import GRIDS, block_downsample
from mrisr.degrade.grid import (
    crop_to_multiple,
    normalise_axes,
    resampled_volume,
    spatial_ndim,
    tensor_to_data,
    volume_to_tensor,
)
from mrisr.degrade.kspace import WINDOWS, kspace_truncate
from mrisr.degrade.noise import add_rician, sigma_for_snr
from mrisr.degrade.resample import resize
from mrisr.degrade.slice_profile import PROFILES, thick_slices
from mrisr.errors import ConfigError
from mrisr.io.volume import Volume

log = logging.getLogger(__name__)


# -- random parameter values ------------------------------------------------------------------------
@dataclass(frozen=True)
class Uniform:
    """A float drawn uniformly from ``[low, high]``."""

    low: float
    high: float

    def draw(self, rng: np.random.Generator) -> float:
        return float(rng.uniform(self.low, self.high))

    def __str__(self) -> str:
        return f"{self.low:g}..{self.high:g}"


@dataclass(frozen=True)
class Choice:
    """One of ``options``, drawn with equal probability."""

    options: tuple[Any, ...]

    def draw(self, rng: np.random.Generator) -> Any:
        return self.options[int(rng.integers(len(self.options)))]

    def __str__(self) -> str:
        return "|".join("none" if o is None else str(o) for o in self.options)


def _draw(value: Any, rng: np.random.Generator) -> Any:
    return value.draw(rng) if isinstance(value, Uniform | Choice) else value


def _as_float(key: str, raw: Any) -> float | Uniform:
    if isinstance(raw, Mapping) and "uniform" in raw:
        lo, hi = raw["uniform"]
        return _as_float(key, f"{lo}..{hi}")
    if isinstance(raw, str) and ".." in raw:
        lo, hi = raw.split("..", 1)
        a, b = _as_float(key, lo), _as_float(key, hi)
        assert isinstance(a, float) and isinstance(b, float)
        if b < a:
            raise ConfigError(f"{key}: range {raw!r} is empty")
        return Uniform(a, b)
    try:
        v = float(raw)
    except (TypeError, ValueError):
        raise ConfigError(f"{key} must be a number or a range a..b, got {raw!r}") from None
    if not np.isfinite(v):
        raise ConfigError(f"{key} must be a finite number, got {raw!r}")
    return v


def _check_bounds(key: str, value: float | Uniform | None, low: float, *, strict: bool,
                  high: float | None = None) -> None:
    """``value`` (every value of a range) must be > ``low`` (``>=`` unless ``strict``) and < ``high``."""
    if value is None:
        return
    lo, hi = (value.low, value.high) if isinstance(value, Uniform) else (value, value)
    if lo < low or (strict and lo == low) or (high is not None and hi >= high):
        bound = f"{'>' if strict else '>='} {low:g}" + ("" if high is None else f" and < {high:g}")
        raise ConfigError(f"{key} must be {bound}, got {value}")


def _as_scale(key: str, raw: Any) -> int:
    try:
        v = float(raw)
    except (TypeError, ValueError):
        raise ConfigError(f"{key} must be an integer >= 1, got {raw!r}") from None
    if v != int(v) or v < 1:
        raise ConfigError(f"{key} must be an integer >= 1, got {raw!r}")
    return int(v)


def _as_axis(key: str, raw: Any) -> int:
    try:
        return int(str(raw))
    except ValueError:
        raise ConfigError(f"{key} must be a spatial axis (0, 1 or 2), got {raw!r}") from None


def _as_choice(key: str, raw: Any, allowed: Sequence[str], none_ok: bool) -> Any:
    if isinstance(raw, Mapping) and "choice" in raw:
        raw = "|".join("none" if o is None else str(o) for o in raw["choice"])
    opts: list[Any] = []
    for item in (str(raw).split("|") if raw is not None else ["none"]):
        item = item.strip().lower()
        if item in ("none", "null", "") and none_ok:
            opts.append(None)
        elif item in allowed:
            opts.append(item)
        else:
            choices = ", ".join([*allowed, *(["none"] if none_ok else [])])
            raise ConfigError(f"{key}: unknown value {item!r}; choose from {choices}")
    return opts[0] if len(opts) == 1 else Choice(tuple(opts))


def parse_axes(raw: Any, key: str = "axes") -> tuple[int, ...] | str | None:
    """Spatial axes from ``"0+1"``, ``"0,1"``, ``"all"``, an int or a list; ``None`` stays ``None`` (in-plane)."""
    if raw is None:
        return None
    if isinstance(raw, str):
        if raw.strip().lower() == "all":
            return "all"
        parts = [p for p in raw.replace(",", "+").replace(" ", "+").split("+") if p]
    elif isinstance(raw, int):
        parts = [str(raw)]
    else:
        parts = [str(p) for p in raw]
    try:
        axes = tuple(int(p) for p in parts)
    except ValueError:
        raise ConfigError(f"{key} must be spatial axes like 0+1 or 'all', got {raw!r}") from None
    if not axes:
        raise ConfigError(f"{key} must name at least one spatial axis (like 0+1 or 'all'), got {raw!r}")
    return axes


def resolve_axes(axes: tuple[int, ...] | str | None, ndim: int) -> tuple[int, ...]:
    """Axes for ``ndim`` spatial dims: ``"all"``, the given ones, or the in-plane ``(0, 1)`` for ``None``."""
    if isinstance(axes, str):  # "all"
        return tuple(range(ndim))
    return normalise_axes(axes, ndim)


# -- steps ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Step:
    """One operation of a chain. Subclasses declare typed fields and implement ``draw``/``apply``."""

    method: ClassVar[str]

    def factors(self, ndim: int) -> tuple[int, ...]:
        """Downscale per spatial axis (1 where the grid is unchanged)."""
        return (1,) * ndim

    def draw(self, rng: np.random.Generator, ndim: int) -> dict[str, Any]:
        """Concrete parameters (random ones drawn), as recorded in the history."""
        return {"method": self.method}

    def apply(self, t: torch.Tensor, params: dict[str, Any], rng: np.random.Generator) -> torch.Tensor:
        """Apply to ``t`` of shape ``(B, 1, *spatial)`` with the drawn ``params``."""
        raise NotImplementedError

    def to_spec(self) -> str:
        parts = []
        for f in fields(self):
            v = getattr(self, f.name)
            if v is None or (v == f.default and f.name != "scale"):
                continue
            if isinstance(v, tuple):
                v = "+".join(str(a) for a in v)
            parts.append(f"{f.name}={v}")
        return self.method + (":" + ",".join(parts) if parts else "")


@dataclass(frozen=True)
class _Resampling(Step):
    """A step with an integer ``scale`` applied along spatial ``axes``."""

    scale: int = 2
    axes: tuple[int, ...] | str | None = None

    def factors(self, ndim: int) -> tuple[int, ...]:
        axes = resolve_axes(self.axes, ndim)
        return tuple(self.scale if a in axes else 1 for a in range(ndim))

    def draw(self, rng: np.random.Generator, ndim: int) -> dict[str, Any]:
        return {"method": self.method, "scale": self.scale, "axes": list(resolve_axes(self.axes, ndim))}


@dataclass(frozen=True)
class KSpaceStep(_Resampling):
    method: ClassVar[str] = "kspace"
    window: str | Choice | None = None

    def draw(self, rng: np.random.Generator, ndim: int) -> dict[str, Any]:
        return {**super().draw(rng, ndim), "window": _draw(self.window, rng)}

    def apply(self, t: torch.Tensor, params: dict[str, Any], rng: np.random.Generator) -> torch.Tensor:
        dims = [a + 2 for a in params["axes"]]
        return kspace_truncate(t, [params["scale"]] * len(dims), dims, params["window"])


@dataclass(frozen=True)
class BicubicStep(_Resampling):
    method: ClassVar[str] = "bicubic"

    def apply(self, t: torch.Tensor, params: dict[str, Any], rng: np.random.Generator) -> torch.Tensor:
        dims = [a + 2 for a in params["axes"]]
        for d in dims:
            if t.shape[d] % params["scale"]:
                raise ValueError(f"size {t.shape[d]} is not divisible by scale {params['scale']}")
        return resize(t, [t.shape[d] // params["scale"] for d in dims], dims, "cubic", antialias=True)


@dataclass(frozen=True)
class BlockStep(_Resampling):
    method: ClassVar[str] = "block"
    grid: str = "coarse"

    def factors(self, ndim: int) -> tuple[int, ...]:
        return super().factors(ndim) if self.grid == "coarse" else (1,) * ndim

    def draw(self, rng: np.random.Generator, ndim: int) -> dict[str, Any]:
        return {**super().draw(rng, ndim), "grid": self.grid}

    def apply(self, t: torch.Tensor, params: dict[str, Any], rng: np.random.Generator) -> torch.Tensor:
        return block_downsample(t, params["scale"], [a + 2 for a in params["axes"]], params["grid"])


@dataclass(frozen=True)
class SliceStep(Step):
    method: ClassVar[str] = "slice"
    scale: int = 2
    axis: int | None = None
    thickness: float | Uniform | None = None
    gap: float | Uniform | None = None
    profile: str = "gaussian"

    def _axis(self, ndim: int) -> int:
        return normalise_axes([ndim - 1 if self.axis is None else self.axis], ndim)[0]

    def factors(self, ndim: int) -> tuple[int, ...]:
        ax = self._axis(ndim)
        return tuple(self.scale if a == ax else 1 for a in range(ndim))

    def draw(self, rng: np.random.Generator, ndim: int) -> dict[str, Any]:
        gap = _draw(self.gap, rng)
        thickness = _draw(self.thickness, rng)
        if thickness is None:
            thickness = self.scale - (gap or 0.0)
        if thickness <= 0:
            raise ConfigError(f"slice: thickness {thickness:g} must be positive (gap {gap} >= scale {self.scale}?)")
        return {
            "method": self.method, "scale": self.scale, "axis": self._axis(ndim),
            "thickness": float(thickness), "gap": None if gap is None else float(gap), "profile": self.profile,
        }

    def apply(self, t: torch.Tensor, params: dict[str, Any], rng: np.random.Generator) -> torch.Tensor:
        return thick_slices(t, params["scale"], params["axis"] + 2, params["thickness"], params["profile"])


@dataclass(frozen=True)
class NoiseStep(Step):
    method: ClassVar[str] = "noise"
    snr: float | Uniform | None = None
    sigma: float | Uniform | None = None

    def draw(self, rng: np.random.Generator, ndim: int) -> dict[str, Any]:
        return {"method": self.method, "snr": _draw(self.snr, rng), "sigma": _draw(self.sigma, rng)}

    def apply(self, t: torch.Tensor, params: dict[str, Any], rng: np.random.Generator) -> torch.Tensor:
        if params["sigma"] is None:  # recorded: the sigma this image got for its SNR
            params["sigma"] = sigma_for_snr(t, params["snr"])
        return add_rician(t, params["sigma"], rng)


STEPS: dict[str, type[Step]] = {
    s.method: s for s in (KSpaceStep, BicubicStep, BlockStep, SliceStep, NoiseStep)
}
#: Methods that change the grid by ``scale`` (what ``mrisr degrade --method`` and ``--degradation`` take).
METHODS = tuple(STEPS)

_CONVERTERS: dict[str, Callable[[str, Any], Any]] = {
    "scale": _as_scale,
    "axes": lambda k, v: parse_axes(v, k),
    "axis": lambda k, v: None if v is None else _as_axis(k, v),
    "window": lambda k, v: _as_choice(k, v, WINDOWS, none_ok=True),
    "grid": lambda k, v: _as_choice(k, v, GRIDS, none_ok=False),
    "profile": lambda k, v: _as_choice(k, v, PROFILES, none_ok=False),
    "thickness": _as_float,
    "gap": _as_float,
    "snr": _as_float,
    "sigma": _as_float,
}


def _make_step(method: str, raw: Mapping[str, Any], default_scale: int | None, fill_scale: int | None = None) -> Step:
    name = str(method).strip().lower()
    if name not in STEPS:
        raise ConfigError(f"unknown degradation {method!r}; choose from {', '.join(STEPS)}")
    cls = STEPS[name]
    known = {f.name for f in fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in known:
            raise ConfigError(f"{name}: unknown parameter {key!r}; known: {', '.join(sorted(known))}")
        kwargs[key] = _CONVERTERS[key](f"{name}.{key}", value)
    if "scale" in known:
        if "scale" not in kwargs and fill_scale is not None:
            kwargs["scale"] = fill_scale
        if "scale" not in kwargs:
            if default_scale is None:
                raise ConfigError(f"{name} needs a scale (e.g. {name}:scale=2)")
            kwargs["scale"] = default_scale
        elif default_scale is not None and kwargs["scale"] != default_scale:
            raise ConfigError(f"{name}: scale={kwargs['scale']} conflicts with --scale {default_scale}")
    for key in ("grid", "profile"):
        if isinstance(kwargs.get(key), Choice):
            raise ConfigError(f"{name}.{key} cannot be random")
    if name == "noise" and (kwargs.get("snr") is None) == (kwargs.get("sigma") is None):
        raise ConfigError("noise needs exactly one of snr=... (relative to the foreground mean) or sigma=...")
    if name == "slice" and kwargs.get("thickness") is not None and kwargs.get("gap") is not None:
        raise ConfigError("slice: give thickness or gap, not both (thickness = scale - gap)")
    _check_bounds(f"{name}.snr", kwargs.get("snr"), 0.0, strict=True)
    _check_bounds(f"{name}.sigma", kwargs.get("sigma"), 0.0, strict=False)
    _check_bounds(f"{name}.thickness", kwargs.get("thickness"), 0.0, strict=True)
    if name == "slice":  # thickness = scale - gap must stay positive
        _check_bounds(f"{name}.gap", kwargs.get("gap"), 0.0, strict=False, high=float(kwargs["scale"]))
    return cls(**kwargs)


# -- the chain --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Degradation:
    """A chain of steps applied in order. Build with :func:`build_degradation`."""

    steps: tuple[Step, ...]

    def factors(self, ndim: int) -> tuple[int, ...]:
        """Overall integer downscale per spatial axis (``ndim`` = 2 or 3)."""
        out = np.ones(ndim, dtype=int)
        for s in self.steps:
            out *= np.asarray(s.factors(ndim), dtype=int)
        return tuple(int(f) for f in out)

    @property
    def uses_snr(self) -> bool:
        """Whether a noise step gives its level as an SNR (whose signal reference then matters)."""
        return any(isinstance(s, NoiseStep) and s.snr is not None for s in self.steps)

    @property
    def spec(self) -> str:
        """Canonical spec string (parses back to an equal chain)."""
        return ";".join(s.to_spec() for s in self.steps)

    def apply_tensor(self, t: torch.Tensor, rng: np.random.Generator,
                     noise_rng: np.random.Generator | None = None,
                     signal: float | None = None) -> tuple[torch.Tensor, list[dict[str, Any]]]:
        """Apply to ``(B, 1, *spatial)``; parameters drawn from ``rng`` once for the whole tensor.

        Noise realisations come from ``noise_rng`` (default ``rng``): a dataset draws parameters per
        volume (``rng`` seeded per volume) but noise per slice. ``signal`` is the foreground mean an
        ``snr`` refers to (default: that of ``t`` as it reaches the noise step); a dataset passes the whole
        volume's (:func:`mrisr.degrade.noise.foreground_signal`), so every slice of a scan gets the same
        noise sigma, as in a real acquisition, instead of one scaled to each slice's own content.
        """
        ndim = t.ndim - 2
        records = []
        for step in self.steps:
            params = step.draw(rng, ndim)
            if signal is not None and params.get("method") == "noise" and params.get("sigma") is None:
                params["sigma"] = sigma_for_snr(t, params["snr"], signal)
            t = step.apply(t, params, rng if noise_rng is None else noise_rng)
            records.append(params)
        return t, records

    def apply_array(self, x: np.ndarray, rng: np.random.Generator,
                    noise_rng: np.random.Generator | None = None,
                    signal: float | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        """Degrade one 2D or 3D array (spatial dims only; sizes multiples of :meth:`factors`).

        Parameters are drawn from ``rng``, noise from ``noise_rng`` (default ``rng``); ``signal`` is the
        foreground mean an SNR refers to (default ``x``'s own; see :meth:`apply_tensor`). Returns the
        float32 low-resolution array and ``{"degradation": spec, "steps": [params...]}``.
        """
        a = np.asarray(x)
        if a.ndim not in (2, 3):
            raise ValueError(f"expected a 2D or 3D array, got shape {a.shape}")
        t = torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))[None, None]
        out, records = self.apply_tensor(t, rng, noise_rng, signal)
        return out[0, 0].numpy(), {"degradation": self.spec, "steps": records}

    def __call__(self, vol: Volume, seed: int) -> Volume:
        """Degrade a Volume: parameters and noise drawn from ``default_rng(seed)`` (one seed per volume).

        Spatial sizes that are not multiples of :meth:`factors` are centre-cropped first (recorded as a
        ``crop`` entry). The result's affine keeps the field of view; each step is appended to
        ``meta["history"]`` with its drawn parameters and the seed.
        """
        if int(seed) < 0:
            raise ConfigError(f"seed must be a non-negative integer, got {seed}")
        nd = spatial_ndim(vol)
        cropped = crop_to_multiple(vol, self.factors(nd))
        if cropped is not vol:
            log.warning("cropped %s to %s to fit the degradation's factors %s",
                        vol.spatial_shape, cropped.spatial_shape, self.factors(nd))
        rng = np.random.default_rng(seed)
        out, records = self.apply_tensor(volume_to_tensor(cropped), rng)
        data = tensor_to_data(out, time_axis=vol.ndim == 4)
        history = [{"op": "degrade", **r, "seed": int(seed)} for r in records]
        for entry in history:  # the slice profile in mm, for writers (DICOM SliceThickness)
            if entry.get("method") == "slice" and entry.get("thickness") is not None:
                entry["thickness_mm"] = float(entry["thickness"]) * cropped.spacing[int(entry["axis"])]
        return resampled_volume(cropped, data, history)


def _parse_string(spec: str) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for part in spec.split(";"):
        part = part.strip()
        if not part:
            continue
        name, _, rest = part.partition(":")
        params: dict[str, Any] = {}
        for item in rest.split(","):
            if not item.strip():
                continue
            key, eq, value = item.partition("=")
            if not eq:
                raise ConfigError(f"{name}: expected key=value, got {item.strip()!r}")
            params[key.strip()] = value.strip()
        out.append((name, params))
    return out


def _parse_obj(obj: Any) -> list[tuple[str, dict[str, Any]]]:
    if isinstance(obj, str):
        return _parse_string(obj)
    if isinstance(obj, Mapping):
        if "steps" in obj:
            if len(obj) != 1 or not isinstance(obj["steps"], str | Sequence):
                raise ConfigError(f"degradation 'steps' must be the only key and hold a list, got {dict(obj)!r}")
            return _parse_obj(obj["steps"])
        if "method" in obj:
            return [(str(obj["method"]), {k: v for k, v in obj.items() if k != "method"})]
        if len(obj) == 1:
            (name, params), = obj.items()
            return [(str(name), dict(params or {}))]
        raise ConfigError(f"cannot read degradation {dict(obj)!r}: need 'method', 'steps' or {{name: params}}")
    if isinstance(obj, Sequence):
        return [item for o in obj for item in _parse_obj(o)]
    raise ConfigError(f"cannot read degradation of type {type(obj).__name__}")


def build_degradation(spec: str | Mapping[str, Any] | Sequence[Any], scale: int | None = None, *,
                      default_scale: int | None = None) -> Degradation:
    """Build a :class:`Degradation` from a spec string, a dict/list, YAML text or a ``.yaml`` file.

    Args:
        spec: see the module doc.
        scale: fills in ``scale`` for steps that do not give one (``--scale`` on the CLI); a step giving
            a different scale is an error.
        default_scale: fills in ``scale`` for steps that do not give one; steps giving their own keep it.

    Raises:
        ConfigError: unknown method or parameter, bad value, missing scale.
    """
    obj: Any = spec
    if isinstance(spec, str):
        text = spec.strip()
        if text.lower().endswith((".yaml", ".yml")) and "\n" not in text:
            if not Path(text).is_file():
                raise ConfigError(f"degradation file {text} not found")
            text = Path(text).read_text()
        if "\n" in text or text.startswith(("{", "[", "-")):
            import yaml

            try:
                obj = yaml.safe_load(text)
            except yaml.YAMLError as exc:
                raise ConfigError(f"degradation YAML: {exc}") from None
        else:
            obj = text
    steps = tuple(_make_step(name, params, scale, default_scale) for name, params in _parse_obj(obj))
    if not steps:
        raise ConfigError("empty degradation spec")
    return Degradation(steps)
