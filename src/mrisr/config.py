"""The one configuration system: YAML -> typed dataclasses, ``a.b.c=value`` overrides, errors naming the key.

Both config kinds go through this module: training configs (``configs/*.yaml``,
:mod:`mrisr.train.config`) and data configs (``configs/data/*.yaml``, :mod:`mrisr.data.config`), and
so do the options of ``mrisr prepare`` (:class:`mrisr.data.prepare.PrepareOptions`).

- :func:`read_yaml` reads a file with :func:`load_yaml` (safe loading: no Python tags, no code; bounded:
  an alias bomb or a recursive alias is refused before it expands), and requires a mapping at the top level.
  Every YAML mrisr parses (``--set`` values, degradation specs, run snapshots) goes through
  :func:`load_yaml`.
- :func:`apply_overrides` sets ``key.sub=value`` entries in a copy of the raw mapping (``--set`` of
  ``mrisr train`` and of ``mrisr prepare``): dots address mappings, integers address list items
  (``phases.1.steps=500``); missing mappings are created. The value is parsed as YAML (``null``,
  ``true``, ``[1, 2]``, ``{a: 1}``) except where the field is a string, which takes the text verbatim
  (``run.name=1.0`` stays "1.0"; ``data.degradation=kspace:scale=2`` is a spec, not YAML).
- :func:`from_mapping` converts raw data into a dataclass, field by field from the type hints. An
  unknown key, a missing required key or a value of the wrong type raises
  :class:`~mrisr.errors.ConfigError` whose message starts with the full key (``phases.2.ratio: ...``).
  Values are converted, never guessed: ``1e-4`` (which YAML 1.1 reads as a string) becomes a float
  where a float is expected, an integer is accepted where a float is expected, an integral float where
  an integer is expected, and nothing else is coerced. A field whose metadata holds ``PARSE`` is
  converted by that function instead (``parse(value, key) -> value``), e.g. ``resize: 256`` -> (256, 256).
- :func:`to_plain` turns a config back into YAML-ready data (tuples as lists).
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml

from mrisr.errors import ConfigError

#: Field-metadata key of a parser that replaces the type-driven conversion of that field.
PARSE = "mrisr.config.parse"

T = TypeVar("T")


class _SetValue(str):
    """A ``--set`` value as typed on the command line: parsed as YAML unless the field is a string."""


# ----------------------------------------------------------------------------------------------- reading
#: Largest YAML text mrisr parses (configs and degradation specs are a few kB).
MAX_YAML_BYTES = 2**20
#: Most nodes a YAML document may hold once its aliases are expanded (a config has a few hundred): anchors
#: and aliases (``losses: *gan_losses``) are fine, an alias bomb ("billion laughs") is refused before it
#: is expanded.
MAX_YAML_NODES = 100_000
#: Deepest nesting of lists and mappings in a YAML document (a config nests about 6 levels).
MAX_YAML_DEPTH = 64


def load_yaml(text: str, source: str) -> Any:
    """Safe-load one YAML document (no Python tags, no code), refusing what would not end or not fit.

    Args:
        text: the YAML text.
        source: what it is, for messages (``"config configs/x.yaml"``, ``"--set a.b"``).

    Raises:
        ConfigError: ``"<source> is not valid YAML: ..."``; larger than :data:`MAX_YAML_BYTES`, aliases
            expanding to more than :data:`MAX_YAML_NODES` nodes, a recursive alias, or nesting deeper than
            :data:`MAX_YAML_DEPTH`.
    """
    if len(text) > MAX_YAML_BYTES:
        raise ConfigError(f"{source}: {len(text)} characters of YAML, more than the limit of {MAX_YAML_BYTES}")
    try:
        _check_depth(text, source)
        loader = yaml.SafeLoader(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source} is not valid YAML: {exc}") from None
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_expansion(node, source)
        return loader.construct_document(node)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source} is not valid YAML: {exc}") from None
    except RecursionError:
        raise ConfigError(f"{source}: YAML nested too deeply") from None
    finally:
        loader.dispose()


def _check_depth(text: str, source: str) -> None:
    """Refuse nesting deeper than :data:`MAX_YAML_DEPTH` from the parser's events (PyYAML's parser is a
    state machine; its composer recurses per level and would take seconds to hit Python's recursion limit)."""
    depth = 0
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_YAML_DEPTH:
                raise ConfigError(f"{source}: YAML nested more than {MAX_YAML_DEPTH} levels deep")
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


def _check_expansion(root: yaml.Node, source: str) -> None:
    """Count the nodes of ``root`` with every alias expanded, without expanding (each distinct node once)."""
    size: dict[int, int] = {}
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    open_nodes: set[int] = set()
    while stack:
        node, done = stack.pop()
        if done:
            open_nodes.discard(id(node))
            size[id(node)] = 1 + sum(size[id(c)] for c in _children(node))
            if size[id(node)] > MAX_YAML_NODES:
                raise ConfigError(f"{source}: YAML aliases expand to more than {MAX_YAML_NODES} values "
                                  "(an alias bomb?)")
            continue
        if id(node) in size:
            continue
        if id(node) in open_nodes:
            raise ConfigError(f"{source}: a YAML alias refers to its own enclosing value (a recursive structure)")
        open_nodes.add(id(node))
        stack.append((node, True))
        stack.extend((c, False) for c in _children(node) if id(c) not in size)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def read_yaml(path: str | Path) -> dict[str, Any]:
    """The mapping in a YAML file (``{}`` for an empty file); :func:`load_yaml` (safe, bounded) only."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read config {p}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config {p} is not valid YAML: not UTF-8 text ({exc.reason})") from None
    raw = load_yaml(text, f"config {p}")
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"config {p}: a config must be a mapping of keys, got {type(raw).__name__}")
    return plain(raw)


def plain(value: Any) -> Any:
    """Deep copy of YAML data into plain dicts/lists (so overrides never touch the caller's data)."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def to_plain(cfg: Any) -> Any:
    """A config dataclass as plain data (dicts, lists, scalars), e.g. for a ``config.yaml`` snapshot."""
    return plain(dataclasses.asdict(cfg))


def is_override(value: Any) -> bool:
    """Whether a raw value came from the command line (:func:`apply_override`), not from a file."""
    return isinstance(value, _SetValue)


# ------------------------------------------------------------------------------------------------ overrides
def apply_overrides(raw: Mapping[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """A copy of ``raw`` with each ``key.sub=value`` of ``overrides`` set (see :func:`apply_override`)."""
    out: dict[str, Any] = plain(raw)
    for item in overrides:
        apply_override(out, item)
    return out


def apply_override(raw: dict[str, Any], item: str) -> None:
    """Set ``key.sub=value`` in the raw (pre-validation) dict, creating intermediate mappings."""
    key, sep, value = item.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"--set expects key=value, got {item!r}")
    parts = key.split(".")
    node: Any = raw
    for depth, part in enumerate(parts[:-1]):
        where = ".".join(parts[: depth + 1])
        if isinstance(node, list):
            node = node[_index(part, node, where)]
        elif isinstance(node, dict):
            if node.get(part) is None:
                node[part] = {}
            node = node[part]
        else:
            raise ConfigError(f"{'.'.join(parts[:depth])}: is a value, cannot set {key}")
    last = parts[-1]
    if isinstance(node, list):
        node[_index(last, node, key)] = _SetValue(value)
    elif isinstance(node, dict):
        node[last] = _SetValue(value)
    else:
        raise ConfigError(f"{'.'.join(parts[:-1])}: is a value, cannot set {key}")


def _index(part: str, seq: list[Any], where: str) -> int:
    try:
        i = int(part)
    except ValueError:
        raise ConfigError(f"{where}: a list; address its items by index (e.g. .0.)") from None
    if not -len(seq) <= i < len(seq):
        raise ConfigError(f"{where}: index out of range (the list has {len(seq)} items)")
    return i


# ----------------------------------------------------------------------------------------------- conversion
def from_mapping(cls: type[T], raw: Any, key: str = "", *, what: str = "key") -> T:
    """Convert raw data (YAML, overrides applied) into the dataclass ``cls``, validating every value.

    Args:
        key: the dotted key of ``raw`` in the whole config ("" at the top), the prefix of every message.
        what: the word for a mapping key in messages ("key"; ``mrisr prepare``'s keyword arguments are
            "option"s).

    Raises:
        ConfigError: ``"<full.key>: ..."`` for an unknown or missing key or a value of the wrong type.
    """
    out: T = _convert(cls, raw, key, what)
    return out


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in typing.get_args(tp))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if origin in (list, tuple, dict):
        return {list: "a list", tuple: "a list", dict: "a mapping"}[origin]
    if dataclasses.is_dataclass(tp):
        return "a mapping"
    return {int: "an integer", float: "a number", bool: "true/false", str: "a string",
            type(None): "null"}.get(tp, getattr(tp, "__name__", str(tp)))


def _from_command_line(tp: Any, value: Any, name: str) -> Any:
    """A ``--set`` value: the text itself for a string field, else the YAML it spells."""
    if not isinstance(value, _SetValue):
        return value
    if _wants_text(tp, value):
        return str(value)
    return load_yaml(str(value), f"{name}: {str(value)!r}") if str(value).strip() else ""


def _convert(tp: Any, value: Any, key: str, what: str = "key") -> Any:
    """Convert ``value`` to type ``tp`` or raise ConfigError naming ``key``."""
    name = key or "config"
    value = _from_command_line(tp, value, name)
    if tp is Any:
        return value
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        return _convert_dataclass(tp, value, key, what)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None:
            if type(None) in args:
                return None
            raise ConfigError(f"{name}: must not be null (expected {_type_name(tp)})")
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(arg, value, key, what)
            except ConfigError as exc:
                errors.append(exc)
        if len(errors) == 1:
            raise errors[0]
        raise ConfigError(f"{name}: expected {_type_name(tp)}, got {value!r}")
    if origin is Literal:
        choices = typing.get_args(tp)
        if value in choices and type(value) in {type(c) for c in choices}:
            return value
        raise ConfigError(f"{name}: expected one of {', '.join(repr(c) for c in choices)}, got {value!r}")
    if origin is list:
        (item_tp,) = typing.get_args(tp) or (Any,)
        if not isinstance(value, list):
            raise ConfigError(f"{name}: expected a list, got {value!r}")
        return [_convert(item_tp, v, f"{key}.{i}", what) for i, v in enumerate(value)]
    if origin is tuple:
        args = typing.get_args(tp)
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{name}: expected a list, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(args[0], v, f"{key}.{i}", what) for i, v in enumerate(value))
        if len(value) != len(args):
            raise ConfigError(f"{name}: expected a list of {len(args)} items, got {len(value)}")
        return tuple(_convert(a, v, f"{key}.{i}", what) for i, (a, v) in enumerate(zip(args, value, strict=True)))
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{name}: expected a mapping, got {value!r}")
        _, val_tp = typing.get_args(tp) or (str, Any)
        return {str(k): _convert(val_tp, v, f"{key}.{k}", what) for k, v in value.items()}
    return _convert_scalar(tp, value, name)


def _convert_scalar(tp: Any, value: Any, name: str) -> Any:
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{name}: expected true/false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ConfigError(f"{name}: expected an integer, got {value!r}")
    if tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            out = float(value)
        elif isinstance(value, str):
            try:
                out = float(value)  # YAML 1.1 reads "1e-4" as a string
            except ValueError:
                raise ConfigError(f"{name}: expected a number, got {value!r}") from None
        else:
            raise ConfigError(f"{name}: expected a number, got {value!r}")
        if not math.isfinite(out):
            raise ConfigError(f"{name}: expected a finite number, got {value!r}")
        return out
    if tp is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{name}: expected a string, got {value!r}")
    raise TypeError(f"unsupported config type {tp!r} at {name}")  # programming error


def _wants_text(tp: Any, text: str) -> bool:
    """Whether a command-line value for a field of type ``tp`` is taken verbatim rather than as YAML.

    Strings (and string choices) are verbatim, so ``name=1.0`` stays "1.0" and ``progress=never`` never
    becomes a boolean; in a union with a string, ``null`` still means None and ``{...}``/``[...]`` YAML.
    """
    if tp is str:
        return True
    origin = typing.get_origin(tp)
    if origin is Literal:
        return all(isinstance(c, str) for c in typing.get_args(tp))
    if origin in (typing.Union, types.UnionType) and str in typing.get_args(tp):
        stripped = text.strip()
        if stripped in ("null", "~", "") and type(None) in typing.get_args(tp):
            return False
        return not stripped.startswith(("{", "["))
    return False


def _convert_dataclass(cls: Any, value: Any, key: str, what: str) -> Any:
    if not isinstance(value, dict):
        raise ConfigError(f"{key or 'config'}: expected a mapping, got {value!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    prefix = f"{key}." if key else ""
    unknown = [k for k in value if k not in fields]
    if unknown:
        known = ", ".join(fields)
        raise ConfigError(f"{prefix}{unknown[0]}: unknown {what} (known here: {known})")
    kwargs = {}
    for fname, f in fields.items():
        sub = f"{prefix}{fname}"
        if fname in value:
            parse = f.metadata.get(PARSE)
            if parse is None:
                kwargs[fname] = _convert(hints[fname], value[fname], sub, what)
            else:  # the field's own parser; a --set value is YAML to it (``prepare.resize=256``)
                kwargs[fname] = parse(_from_command_line(Any, value[fname], sub), sub)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{sub}: required {what} is missing")
    try:
        return cls(**kwargs)
    except ConfigError as exc:  # the class's own checks (``__post_init__``) name fields without the section
        raise ConfigError(f"{prefix}{exc}") from None
