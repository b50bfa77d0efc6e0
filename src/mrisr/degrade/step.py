"""One degradation step: typed fields that read and check their own spec values, a draw, an operation.

A step is a frozen dataclass whose fields carry a parser in their metadata (:func:`reads`); the parser turns
a spec value (a string from ``"kspace:scale=2,window=hamming"``, a YAML/dict value or a CLI option) into
the typed value and checks its range, and :meth:`Step.check` checks rules between fields. A field without
a default is required. Random values: a parser may return :class:`Uniform` (``"a..b"`` or
``{"uniform": [a, b]}``) or :class:`Choice` (``"x|y"`` or ``{"choice": [x, y]}``); :meth:`Step.draw`
draws them from the volume's generator and :meth:`Step.apply` runs the deterministic operation with
the drawn values (which the chain records in the history).

Names map to step classes in :mod:`mrisr.degrade.registry`; :mod:`mrisr.degrade.chain` composes steps.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import MISSING, dataclass, field, fields
from typing import TYPE_CHECKING, Any, ClassVar, Self

from mrisr.degrade.grid import normalise_axes
from mrisr.errors import ConfigError

if TYPE_CHECKING:
    import numpy as np
    import torch


# -- random values ----------------------------------------------------------------------------------
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


def draw_value(value: Any, rng: np.random.Generator) -> Any:
    """``value`` itself, or a draw from ``rng`` when it is a :class:`Uniform` or :class:`Choice`."""
    return value.draw(rng) if isinstance(value, Uniform | Choice) else value


# -- parsers: (label, raw spec value) -> typed value; errors name the label ---------------------------
Parser = Callable[[str, Any], Any]


def reads(parse: Parser, example: str | None = None) -> dict[str, Any]:
    """Field metadata: the field's value is read by ``parse`` (``example``: a value shown when it is missing).

    Use as ``window: str | None = field(default=None, metadata=reads(one_of(WINDOWS, none_ok=True)))``; a
    field without a default is required.
    """
    return {"parse": parse, "example": example}


def parse_scale(key: str, raw: Any) -> int:
    """An integer downscale factor >= 1 (``2``, ``"2"``, ``2.0``)."""
    try:
        v = float(raw)
    except (TypeError, ValueError):
        raise ConfigError(f"{key} must be an integer >= 1, got {raw!r}") from None
    if not math.isfinite(v) or v != int(v) or v < 1:
        raise ConfigError(f"{key} must be an integer >= 1, got {raw!r}")
    return int(v)


def parse_axes(raw: Any, key: str = "axes") -> tuple[int, ...] | str | None:
    """Spatial axes from ``"0+1"``, ``"0,1"``, ``"all"``, an int or a list; ``None`` stays ``None`` (in-plane)."""
    if raw is None:
        return None
    if isinstance(raw, str):
        if raw.strip().lower() == "all":
            return "all"
        parts = [p for p in raw.replace(",", "+").replace(" ", "+").split("+") if p]
    elif isinstance(raw, int) and not isinstance(raw, bool):
        parts = [str(raw)]
    elif isinstance(raw, list | tuple):
        parts = [str(p) for p in raw]
    else:
        raise ConfigError(f"{key} must be spatial axes like 0+1 or 'all', got {raw!r}")
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


def parse_axes_field(key: str, raw: Any) -> tuple[int, ...] | str | None:
    """:func:`parse_axes` as a field parser."""
    return parse_axes(raw, key)


def parse_one_axis(key: str, raw: Any) -> int | None:
    """One spatial axis (``2``, ``"2"``); ``None`` stays ``None`` (the step's default axis)."""
    if raw is None:
        return None
    try:
        axes = parse_axes(raw, key)
    except ConfigError:
        axes = None
    if not isinstance(axes, tuple) or len(axes) != 1:
        raise ConfigError(f"{key} takes one axis, a spatial axis 0, 1 or 2, got {raw!r}")
    return axes[0]


def check_bounds(key: str, value: float | Uniform | None, low: float, *, strict: bool,
                 high: float | None = None) -> None:
    """``value`` (every value of a range) must be > ``low`` (``>=`` unless ``strict``) and < ``high``."""
    if value is None:
        return
    lo, hi = (value.low, value.high) if isinstance(value, Uniform) else (value, value)
    if lo < low or (strict and lo == low) or (high is not None and hi >= high):
        bound = f"{'>' if strict else '>='} {low:g}" + ("" if high is None else f" and < {high:g}")
        raise ConfigError(f"{key} must be {bound}, got {value}")


def _number(key: str, raw: Any) -> float | Uniform:
    if isinstance(raw, Mapping) and "uniform" in raw:
        lo, hi = raw["uniform"]
        return _number(key, f"{lo}..{hi}")
    if isinstance(raw, str) and ".." in raw:
        lo, hi = raw.split("..", 1)
        a, b = _number(key, lo), _number(key, hi)
        assert isinstance(a, float) and isinstance(b, float)
        if b < a:
            raise ConfigError(f"{key}: range {raw!r} is empty")
        return Uniform(a, b)
    try:
        v = float(raw)
    except (TypeError, ValueError):
        raise ConfigError(f"{key} must be a number or a range a..b, got {raw!r}") from None
    if not math.isfinite(v):
        raise ConfigError(f"{key} must be a finite number, got {raw!r}")
    return v


def number(*, above: float | None = None, at_least: float | None = None) -> Parser:
    """Parser of a finite float or a range ``a..b``, every value ``> above`` or ``>= at_least``."""

    def parse(key: str, raw: Any) -> float | Uniform:
        v = _number(key, raw)
        if above is not None:
            check_bounds(key, v, above, strict=True)
        if at_least is not None:
            check_bounds(key, v, at_least, strict=False)
        return v

    return parse


def one_of(allowed: Sequence[str], *, none_ok: bool = False, random: bool = True) -> Parser:
    """Parser of one name of ``allowed`` (``none`` too if ``none_ok``), or a random ``a|b`` if ``random``."""

    def parse(key: str, raw: Any) -> Any:
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
        if len(opts) > 1 and not random:
            raise ConfigError(f"{key} cannot be random")
        return opts[0] if len(opts) == 1 else Choice(tuple(opts))

    return parse


# -- steps ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Step(ABC):
    """One operation of a chain. Subclasses set ``method`` (the registry name), declare fields with
    :func:`reads` metadata and implement :meth:`apply`; :meth:`check` holds rules between fields."""

    method: ClassVar[str]

    def __post_init__(self) -> None:
        self.check()

    def check(self) -> None:
        """Raise :class:`~mrisr.errors.ConfigError` for field values that do not go together."""
        return None

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        """The declared fields, in order."""
        return tuple(f.name for f in fields(cls))

    @classmethod
    def required(cls) -> tuple[str, ...]:
        """The fields without a default (a spec must give them)."""
        return tuple(f.name for f in fields(cls) if f.default is MISSING and f.default_factory is MISSING)

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any], labels: Mapping[str, str] | None = None) -> Self:
        """The step from spec values (``{"scale": "2", "window": "hamming|none"}``), each read by its parser.

        ``labels`` names keys in error messages the way the user wrote them (``{"axis": "--axes"}``); the
        default is ``method.key``.

        Raises:
            ConfigError: an unknown key, a bad value, a missing required field or a failed :meth:`check`.
        """
        declared = {f.name: f for f in fields(cls)}
        kwargs: dict[str, Any] = {}
        for key, value in raw.items():
            if key not in declared:
                raise ConfigError(f"{cls.method}: unknown parameter {key!r}; known: {', '.join(sorted(declared))}")
            label = (labels or {}).get(key, f"{cls.method}.{key}")
            kwargs[key] = declared[key].metadata["parse"](label, value)
        for name in cls.required():
            if name not in kwargs:
                example = declared[name].metadata.get("example") or "..."
                raise ConfigError(f"{cls.method} needs a {name} (e.g. {cls.method}:{name}={example})")
        return cls(**kwargs)

    def factors(self, ndim: int) -> tuple[int, ...]:
        """Downscale per spatial axis (1 where the grid is unchanged)."""
        return (1,) * ndim

    @property
    def uses_signal(self) -> bool:
        """Whether :meth:`apply` depends on the ``signal`` it is given (a noise level set as an SNR)."""
        return False

    def draw(self, rng: np.random.Generator, ndim: int) -> dict[str, Any]:
        """Concrete parameters (random ones drawn from ``rng``, in field order), as recorded in the history."""
        return {"method": self.method, **{name: draw_value(getattr(self, name), rng) for name in self.field_names()}}

    @abstractmethod
    def apply(self, t: torch.Tensor, params: dict[str, Any], rng: np.random.Generator,
              signal: float | None = None) -> torch.Tensor:
        """Apply to ``t`` of shape ``(B, 1, *spatial)`` with the drawn ``params``.

        ``rng`` draws noise realisations; ``signal`` is the foreground mean an SNR refers to (``None``: that
        of ``t``). A step may add derived values to ``params`` (they are recorded).
        """

    def in_mm(self, params: dict[str, Any], spacing: Sequence[float]) -> dict[str, float]:
        """History entries in mm for a volume with ``spacing`` (mm per spatial axis); none by default."""
        return {}

    def to_spec(self) -> str:
        """``method:key=value,...`` with the fields that differ from their defaults (parses back equal)."""
        parts = []
        for f in fields(self):
            v = getattr(self, f.name)
            if v is None or v == f.default:
                continue
            if isinstance(v, tuple):
                v = "+".join(str(a) for a in v)
            parts.append(f"{f.name}={v}")
        return self.method + (":" + ",".join(parts) if parts else "")


#: Metadata of the required integer ``scale`` field (the chain fills it from ``--scale`` when a spec leaves it out).
SCALE = reads(parse_scale, example="2")


@dataclass(frozen=True)
class ResamplingStep(Step):
    """A step with an integer ``scale`` applied along spatial ``axes`` (default in-plane ``0+1``)."""

    scale: int = field(metadata=SCALE)
    axes: tuple[int, ...] | str | None = field(default=None, metadata=reads(parse_axes_field))

    def factors(self, ndim: int) -> tuple[int, ...]:
        axes = resolve_axes(self.axes, ndim)
        return tuple(self.scale if a in axes else 1 for a in range(ndim))

    def draw(self, rng: np.random.Generator, ndim: int) -> dict[str, Any]:
        return {**super().draw(rng, ndim), "axes": list(resolve_axes(self.axes, ndim))}
