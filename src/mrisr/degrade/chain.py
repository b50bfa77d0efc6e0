"""Degradation chains: build one from a short string, a dict/list or YAML, apply it to Volumes or arrays.

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

Each method is a step class found by name in :data:`mrisr.degrade.registry.STEPS` (the list of methods); the
class sits beside its operation and reads and checks its own fields (:class:`mrisr.degrade.step.Step`, whose
subclasses document them). This module only splits a spec into steps, composes them, records the history
and multiplies the factors.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mrisr.degrade.grid import (
    crop_to_multiple,
    resampled_volume,
    spatial_ndim,
    tensor_to_data,
    volume_to_tensor,
)
from mrisr.degrade.registry import step_class
from mrisr.degrade.step import Step
from mrisr.errors import ConfigError
from mrisr.io.volume import Volume

log = logging.getLogger(__name__)


def _make_step(name: str, raw: Mapping[str, Any], scale: int | None, default_scale: int | None) -> Step:
    """The step ``name`` from its spec values; ``scale``/``default_scale`` as for :func:`build_degradation`."""
    cls = step_class(name)
    fill = default_scale if default_scale is not None else scale
    if "scale" in cls.field_names() and "scale" not in raw and fill is not None:
        raw = {**raw, "scale": fill}
    step = cls.from_mapping(raw)
    own = getattr(step, "scale", None)
    if scale is not None and own is not None and own != scale:
        raise ConfigError(f"{cls.method}: scale={own} conflicts with --scale {scale}")
    return step


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
        return any(s.uses_signal for s in self.steps)

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
            t = step.apply(t, params, rng if noise_rng is None else noise_rng, signal)
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
        history = [{"op": "degrade", **r, "seed": int(seed), **step.in_mm(r, cropped.spacing)}
                   for step, r in zip(self.steps, records, strict=True)]
        return resampled_volume(cropped, data, [1.0 / f for f in self.factors(nd)], history)


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
            if params is not None and not isinstance(params, Mapping):
                raise ConfigError(f"degradation {name!r}: its parameters must be a mapping, got {params!r}")
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
        source = "degradation spec"
        if text.lower().endswith((".yaml", ".yml")) and "\n" not in text:
            if not Path(text).is_file():
                raise ConfigError(f"degradation file {text} not found")
            source = f"degradation file {text}"
            try:
                text = Path(text).read_text()
            except (OSError, UnicodeDecodeError) as exc:
                raise ConfigError(f"{source}: cannot read it as text ({exc})") from None
        if "\n" in text or text.startswith(("{", "[", "-")):
            from mrisr.config import load_yaml

            obj = load_yaml(text, source)
        else:
            obj = text
    steps = tuple(_make_step(name, params, scale, default_scale) for name, params in _parse_obj(obj))
    if not steps:
        raise ConfigError("empty degradation spec")
    return Degradation(steps)
