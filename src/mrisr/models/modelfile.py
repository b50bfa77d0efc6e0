"""The model file: ``NAME.safetensors`` (weights + metadata in its header) and a ``NAME.json`` copy of the metadata.

Everything needed to rebuild and use the network travels with the weights: the registry architecture
name and its constructor arguments, the upscaling factors and the axes they refine (``geometry``:
``"isotropic"`` or ``"through_plane"``, see :mod:`mrisr.models.base`), the intensity normalisation the network
expects, the degradation it was trained for, what data it was trained on, its validation metrics and the
mrisr version that wrote it. The metadata is stored as JSON under the key ``"mrisr"`` of the safetensors
header (authoritative) and, for people and tools, in a sidecar ``.json`` next to it.

Loading never unpickles anything: weights are read with safetensors only, so a ``.pt``/``.pth``/``.ckpt``
file is refused with an explanation instead of being executed.

Intensity normalisation (``metadata["normalisation"]``, a description from :mod:`mrisr.data.normalise`),
applied per volume before the network and inverted on its output by :func:`mrisr.infer.upscale_with_model`.
``mrisr train`` writes the one its prepared data was normalised with; a file without one gets
:data:`~mrisr.data.normalise.DEFAULT_NORMALISATION`.
"""

from __future__ import annotations

import json
import math
import os
import struct
from collections.abc import Mapping
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mrisr import __version__
from mrisr.data.normalise import check_normalisation
from mrisr.errors import ConfigError, InputError
from mrisr.io.atomic import atomic_path, atomic_write_text, check_output
from mrisr.models.intended import intended_use

FORMAT = "mrisr-model"
FORMAT_VERSION = 1
METADATA_KEY = "mrisr"
SUFFIX = ".safetensors"
# Largest safetensors JSON header we accept (the format itself caps it at 100 MB).
_MAX_HEADER = 100_000_000


# ------------------------------------------------------------------------------------------------ helpers
def _jsonable(value: Any, where: str) -> Any:
    try:
        return json.loads(json.dumps(value))
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where} must be JSON-serialisable: {exc}") from exc


def _model_path(path: str | os.PathLike[str]) -> Path:
    p = Path(path)
    return p if p.name.endswith(SUFFIX) else p.with_name(p.name + SUFFIX)


def sidecar_path(path: str | os.PathLike[str]) -> Path:
    """``x.safetensors`` -> ``x.json``."""
    p = _model_path(path)
    return p.with_name(p.name[: -len(SUFFIX)] + ".json")


def pretrained_dir() -> Path:
    """The package folder holding shipped model files (``mrisr/pretrained``)."""
    return Path(str(resources.files("mrisr.pretrained")))


def list_pretrained() -> list[str]:
    """Names of the model files shipped inside the package."""
    return sorted(p.name[: -len(SUFFIX)] for p in pretrained_dir().glob(f"*{SUFFIX}"))


# ------------------------------------------------------------------------------------------------ saving
def unwrap_model(model: nn.Module) -> nn.Module:
    """The plain network inside ``torch.compile`` / ``DataParallel`` / ``DistributedDataParallel`` wrappers.

    Their state-dict keys carry ``_orig_mod.`` / ``module.`` prefixes that the rebuilt network lacks.
    """
    from torch.nn.parallel import DataParallel, DistributedDataParallel

    for _ in range(8):
        inner = getattr(model, "_orig_mod", None)
        if isinstance(inner, nn.Module):
            model = inner
        elif isinstance(model, DataParallel | DistributedDataParallel):
            model = model.module
        else:
            break
    return model


def _strip_wrapper_prefixes(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Weights saved from a wrapped network by other tools: drop a prefix every key shares."""
    changed = True
    while changed and tensors:
        changed = False
        for prefix in ("_orig_mod.", "module."):
            if all(k.startswith(prefix) for k in tensors):
                tensors = {k[len(prefix):]: v for k, v in tensors.items()}
                changed = True
    return tensors


def build_metadata(model: nn.Module, arch: str, args: Mapping[str, Any], meta: Mapping[str, Any] | None) -> dict:
    """The metadata dict stored with the weights (see the module docstring)."""
    from mrisr.models.registry import get_entry, resolve_args

    meta = dict(meta or {})
    if "normalization" in meta and "normalisation" not in meta:
        meta["normalisation"] = meta.pop("normalization")
    entry = get_entry(arch)
    full_args = _jsonable(resolve_args(arch, dict(args)), "model arguments")
    md: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "arch": arch,
        "kind": entry.kind,
        "args": full_args,
        "spatial_dims": int(getattr(model, "spatial_dims", entry.spatial_dims[0])),
        "in_channels": int(getattr(model, "in_channels", 1)),
    }
    if entry.kind == "generator":
        gen: Any = model
        md["scale"] = int(gen.scale)
        md["factors"] = [int(f) for f in gen.factors]
        md["geometry"] = str(gen.geometry)
        md["context_slices"] = int(gen.in_channels) // 2
        md["normalisation"] = check_normalisation(meta.pop("normalisation", None))
    md.update({
        "degradation": meta.pop("degradation", None),
        "training_data": meta.pop("training_data", None),
        "validation_metrics": meta.pop("validation_metrics", None),
        "num_parameters": int(sum(p.numel() for p in model.parameters())),
        "mrisr_version": __version__,
        "torch_version": torch.__version__.split("+")[0],
        "created": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    })
    for key in list(meta):
        if key in md:
            raise ConfigError(f"metadata key {key!r} is set by mrisr and cannot be given")
    intended_use(meta)  # a malformed entry fails when the file is written, not when it is used
    md.update(meta)
    return _jsonable(md, "model metadata")


def save_model_file(path: str | os.PathLike[str], model: nn.Module, arch: str | None = None,
                    args: Mapping[str, Any] | None = None, meta: Mapping[str, Any] | None = None,
                    force: bool = False) -> Path:
    """Write ``path`` (``.safetensors`` appended if missing) and its ``.json`` sidecar, atomically.

    Args:
        path: output file.
        model: the network (its ``state_dict`` is saved, moved to CPU).
        arch: registry name; default ``model.mrisr_arch`` (set by :func:`~mrisr.models.registry.build_model`).
        args: constructor arguments; default ``model.mrisr_args``. Defaults are filled in and stored.
        meta: ``normalisation``, ``degradation``, ``training_data``, ``validation_metrics`` and any other
            JSON-serialisable fields (description, licence, ...).
        force: overwrite existing files.

    Returns:
        The path of the ``.safetensors`` file.
    """
    from safetensors.torch import save_file

    model = unwrap_model(model)
    arch = arch if arch is not None else getattr(model, "mrisr_arch", None)
    args = args if args is not None else getattr(model, "mrisr_args", None)
    if arch is None or args is None:
        raise ValueError("save_model_file needs arch and args (or a model built by mrisr.models.build_model)")
    md = build_metadata(model, arch, args, meta)
    out = _model_path(path)
    side = sidecar_path(out)
    check_output(out, force)
    check_output(side, force)
    state = {k: v.detach().to("cpu").clone().contiguous() for k, v in model.state_dict().items()}
    text = json.dumps(md, indent=2, sort_keys=False)
    with atomic_path(out, force=force) as tmp:
        save_file(state, str(tmp), metadata={METADATA_KEY: json.dumps(md, separators=(",", ":"))})
    atomic_write_text(side, text + "\n", force=True)
    return out


# ------------------------------------------------------------------------------------------------ loading
def resolve_model_path(ref: str | os.PathLike[str]) -> Path:
    """A model reference -> the ``.safetensors`` file.

    ``ref`` is a file; a folder holding ``model.safetensors`` or exactly one ``.safetensors`` file; or the
    name of a model shipped in ``mrisr/pretrained``.
    """
    p = Path(ref)
    if p.is_dir():
        if (p / "model.safetensors").is_file():
            return p / "model.safetensors"
        found = sorted(p.glob(f"*{SUFFIX}"))
        if len(found) == 1:
            return found[0]
        raise InputError(f"{p} is a folder with {len(found)} .safetensors files; name the model file")
    if p.is_file():
        if p.suffix == ".json" and _model_path(p.with_suffix("")).is_file():
            return _model_path(p.with_suffix(""))  # the sidecar names its model file
        return p
    name = str(ref)
    looks_like_path = os.sep in name or "/" in name or name.endswith((SUFFIX, ".json", ".pt", ".pth", ".ckpt"))
    if not looks_like_path:
        from mrisr.pretrained import canonical_name

        shipped = pretrained_dir() / f"{canonical_name(name)}{SUFFIX}"
        if shipped.is_file():
            return shipped
    from mrisr.models.registry import REGISTRY

    hint = ""
    if name in REGISTRY:
        hint = f" ({name!r} is an architecture; a model needs trained weights: a model file path or a shipped name)"
    names = list_pretrained()
    shipped_list = ", ".join(names) if names else "none"
    raise InputError(f"no model file or shipped model {name!r}{hint}; shipped models: {shipped_list}")


#: Bytes per element of the safetensors dtypes.
_DTYPE_BYTES = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
                "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8}


def _check_tensor_table(path: Path, header: bytes, data_size: int) -> None:
    """Every tensor the JSON ``header`` declares must be a known dtype whose shape fills exactly its byte
    range, and every range must lie inside the ``data_size`` bytes that follow the header: a header that
    claims huge tensors is refused here, before safetensors allocates anything."""
    try:
        table = json.loads(header)
    except (ValueError, RecursionError) as exc:
        raise InputError(f"{path}: the safetensors header is not valid JSON ({type(exc).__name__})") from None
    if not isinstance(table, dict):
        raise InputError(f"{path}: the safetensors header is not a JSON object")
    for name, entry in table.items():
        if name == "__metadata__":
            continue
        try:
            dtype, shape, (start, end) = entry["dtype"], entry["shape"], entry["data_offsets"]
            ok = (dtype in _DTYPE_BYTES and isinstance(shape, list)
                  and all(type(n) is int and n >= 0 for n in (*shape, start, end)))
        except (TypeError, KeyError, ValueError):
            ok = False
        if not ok:
            raise InputError(f"{path}: tensor {name!r} has a malformed entry in the safetensors header")
        need = math.prod(shape) * _DTYPE_BYTES[dtype]
        if need != end - start or end > data_size:
            raise InputError(f"{path}: tensor {name!r} claims shape {shape} ({need} bytes) but the file holds "
                             f"{max(0, min(end, data_size) - start)} bytes for it (truncated or forged file)")


def _check_safetensors(path: Path) -> None:
    """Refuse anything that is not a safetensors file *before* any parser sees it (pickles are never
    opened; a header that claims more data than the file holds is refused before any allocation)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(9)
            size = path.stat().st_size
            n = struct.unpack("<Q", head[:8])[0] if len(head) == 9 and head[8:9] == b"{" else 0
            header = head[8:] + fh.read(n - 1) if 0 < n <= min(_MAX_HEADER, size - 8) else b""
    except OSError as exc:
        raise InputError(f"cannot read model file {path}: {exc}") from exc
    pickle_like = head[:1] == b"\x80" or head[:2] == b"PK" or path.suffix in (".pt", ".pth", ".ckpt", ".pkl", ".bin")
    ok = len(head) == 9 and head[8:9] == b"{"
    if ok:
        (n,) = struct.unpack("<Q", head[:8])
        ok = 0 < n <= min(_MAX_HEADER, size - 8)
    if not ok:
        if pickle_like:
            raise InputError(
                f"{path} looks like a pickle-based PyTorch checkpoint; mrisr only loads .safetensors model files "
                "and never unpickles (unpickling can run arbitrary code). If you trust the file, convert it "
                "once with torch.load(path, weights_only=True) and mrisr.models.save_model_file.")
        raise InputError(f"{path} is not a safetensors model file")
    _check_tensor_table(path, header, size - 8 - n)


def _read(path: Path) -> tuple[dict[str, Any], dict[str, str] | None]:
    from safetensors import SafetensorError, safe_open

    _check_safetensors(path)
    try:
        with safe_open(str(path), framework="pt", device="cpu") as fh:
            header = fh.metadata()
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}
    except (SafetensorError, OSError, ValueError) as exc:
        raise InputError(f"{path} is not a valid safetensors file: {exc}") from exc
    return tensors, header


def _parse_metadata(path: Path, header: Mapping[str, str] | None) -> dict[str, Any]:
    text = (header or {}).get(METADATA_KEY)
    source = "header"
    if text is None:
        side = sidecar_path(path)
        if not side.is_file():
            raise InputError(f"{path} has no mrisr metadata (neither in its header nor in {side.name})")
        text, source = side.read_text(), side.name
    try:
        md = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: metadata ({source}) is not valid JSON: {exc}") from exc
    if not isinstance(md, dict) or md.get("format") != FORMAT:
        raise InputError(f"{path} is not an mrisr model file (metadata format is not {FORMAT!r})")
    version = md.get("format_version", 0)
    if not isinstance(version, int) or isinstance(version, bool):
        raise InputError(f"{path}: metadata format_version must be an integer, got {version!r}")
    if version > FORMAT_VERSION:
        raise InputError(f"{path} was written by a newer mrisr (format {version}); please upgrade")
    for key in ("arch", "args"):
        if key not in md:
            raise InputError(f"{path}: metadata lacks {key!r}")
    if not isinstance(md["arch"], str):
        raise InputError(f"{path}: metadata 'arch' must be a registry name, got {md['arch']!r}")
    if not isinstance(md["args"], dict):
        raise InputError(f"{path}: metadata 'args' must be a mapping of constructor arguments, got {md['args']!r}")
    if "normalization" in md and "normalisation" not in md:
        md["normalisation"] = md.pop("normalization")
    if md.get("kind", "generator") == "generator":
        md.setdefault("geometry", legacy_geometry(md.get("factors")))
        try:
            md["normalisation"] = check_normalisation(md.get("normalisation"))
        except ConfigError as exc:
            raise InputError(f"{path}: {exc}") from exc
    return md


def _check_weights_fit(path: Path, arch: str, model: nn.Module, tensors: Mapping[str, torch.Tensor]) -> None:
    """One-line :class:`InputError` when the stored tensors are not exactly the network's parameters."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    wrong = sorted(k for k in set(expected) & set(tensors) if tuple(expected[k].shape) != tuple(tensors[k].shape))
    problems = []
    for what, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong)):
        if keys:
            shown = ", ".join(keys[:3]) + (f" and {len(keys) - 3} more" if len(keys) > 3 else "")
            if what == "wrong shape":
                k = keys[0]
                shown += f" (e.g. {k}: file {tuple(tensors[k].shape)}, network {tuple(expected[k].shape)})"
            problems.append(f"{len(keys)} {what} ({shown})")
    if problems:
        raise InputError(f"{path}: weights do not fit architecture {arch!r} with the stored arguments: "
                         + "; ".join(problems))
    bad = [k for k, v in tensors.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        raise InputError(f"{path}: {len(bad)} weight tensor(s) hold NaN or Inf (e.g. {bad[0]}); the model is broken")


def legacy_geometry(factors: Any) -> str:
    """``geometry`` of a model file written before mrisr recorded it: ``"through_plane"`` for 3D factors
    ``[1, 1, s]`` with ``s > 1`` (the only anisotropic networks mrisr builds), else ``"isotropic"``."""
    if isinstance(factors, list) and len(factors) == 3 and factors[:2] == [1, 1] and factors[2] != 1:
        return "through_plane"
    return "isotropic"


def _check_factors(path: Path, md: Mapping[str, Any], model: nn.Module) -> None:
    """The metadata's ``scale`` / ``factors`` / ``geometry`` must describe the rebuilt network (they are
    what users read)."""
    if not hasattr(model, "factors"):
        return
    have = {"scale": int(getattr(model, "scale")), "factors": [int(f) for f in getattr(model, "factors")],  # noqa: B009
            "geometry": str(getattr(model, "geometry", "isotropic"))}
    for key, value in have.items():
        if key in md and md[key] != value:
            raise InputError(f"{path}: metadata says {key} {md[key]!r} but the stored network "
                             f"{'has geometry' if key == 'geometry' else 'upscales by'} {value!r} (inconsistent file)")


def read_model_metadata(ref: str | os.PathLike[str]) -> dict[str, Any]:
    """Metadata of a model file (reads only the header, not the weights)."""
    from safetensors import SafetensorError, safe_open

    path = resolve_model_path(ref)
    _check_safetensors(path)
    try:
        with safe_open(str(path), framework="pt", device="cpu") as fh:
            header = fh.metadata()
    except (SafetensorError, OSError, ValueError) as exc:
        raise InputError(f"{path} is not a valid safetensors file: {exc}") from exc
    md = _parse_metadata(path, header)
    md["path"] = str(path)
    return md


def load_model_file(ref: str | os.PathLike[str], device: str | torch.device = "cpu") -> tuple[nn.Module, dict]:
    """Rebuild a network from a model file; returns ``(model in eval mode, metadata)``.

    ``ref``: path to a ``.safetensors`` model file, a folder holding one, or a shipped model's name.
    Raises :class:`~mrisr.errors.InputError` for anything else (pickles are refused, never opened).
    """
    from mrisr.models.registry import build_model

    path = resolve_model_path(ref)
    tensors, header = _read(path)
    md = _parse_metadata(path, header)
    try:
        model = build_model(md["arch"], **md["args"])
    except ConfigError as exc:
        raise InputError(f"{path}: cannot rebuild the network: {exc}") from exc
    tensors = _strip_wrapper_prefixes(tensors)
    _check_weights_fit(path, md["arch"], model, tensors)
    model.load_state_dict(tensors, strict=True)
    _check_factors(path, md, model)
    model.to(device).eval()
    md["path"] = str(path)
    return model, md
