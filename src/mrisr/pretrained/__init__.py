"""Model files shipped with mrisr: ``<name>.safetensors`` + ``<name>.json`` (see :mod:`mrisr.models.modelfile`)
and a model card ``<name>.md`` for people.

``mrisr upscale --model NAME`` and ``load_model_file("NAME")`` resolve ``NAME`` here (or through
:data:`ALIASES`); ``mrisr upscale IN OUT --scale S`` without ``--model``/``--method`` uses
:func:`default_model` (``kspace-xS``); ``mrisr models list`` shows what is available. This module imports
nothing heavy: the CLI's parsers read it.
"""

from __future__ import annotations

#: Older names of shipped models -> their current names.
ALIASES: dict[str, str] = {"fast_kspace_x2": "fast-kspace-x2"}


def canonical_name(name: str) -> str:
    """The current name of a shipped model (``name`` itself unless it is an alias)."""
    return ALIASES.get(name, name)


def default_model(scale: int) -> str:
    """The shipped model ``mrisr upscale --scale S`` uses when no model or method is named."""
    return f"kspace-x{int(scale)}"
