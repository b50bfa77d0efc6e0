"""`mrisr models list` and `mrisr models show NAME|PATH`: registered networks and model files."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from mrisr.errors import InputError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list networks and shipped models, show a model file's metadata")
    msub = p.add_subparsers(dest="models_command", metavar="ACTION")
    msub.required = True
    pl = msub.add_parser("list", help="registered architectures and the models shipped with mrisr")
    pl.add_argument("--json", action="store_true", help="print machine-readable JSON")
    pl.set_defaults(func=run_list)
    ps = msub.add_parser("show", help="metadata of a model file / shipped model, or an architecture's arguments")
    ps.add_argument("model", help="model file (.safetensors), folder holding one, shipped model name or architecture")
    ps.add_argument("--json", action="store_true", help="print machine-readable JSON")
    ps.set_defaults(func=run_show)


def _shipped() -> list[dict[str, Any]]:
    from mrisr.models.modelfile import list_pretrained, read_model_metadata

    out: list[dict[str, Any]] = []
    for name in list_pretrained():
        try:
            md = read_model_metadata(name)
        except InputError as exc:
            out.append({"name": name, "error": str(exc)})
            continue
        out.append({"name": name, "arch": md.get("arch"), "scale": md.get("scale"), "factors": md.get("factors"),
                    "geometry": md.get("geometry"), "degradation": md.get("degradation"), "validation_metrics": md.get("validation_metrics"),
                    "description": md.get("description")})
    return out


def run_list(args: argparse.Namespace) -> int:
    from mrisr.models.registry import list_models, model_info

    archs = [model_info(n) for n in list_models()]
    shipped = _shipped()
    if args.json:
        print(json.dumps({"architectures": archs, "shipped_models": shipped}, indent=2))
        return 0
    print("Architectures (mrisr.models.build_model NAME; configs' model names):")
    w = max(len(a["name"]) for a in archs)
    for a in archs:
        dims = "/".join(f"{d}D" for d in a["spatial_dims"])
        scales = f" x{','.join(str(s) for s in a['scales'])}" if a["scales"] else ""
        print(f"  {a['name']:<{w}}  {a['kind']:<13} {dims:<6}{scales:<10}  {a['description']}")
    print()
    if not shipped:
        print("Shipped models: none yet (train one with `mrisr train`, then use --model PATH)")
        return 0
    print("Shipped models (mrisr upscale --model NAME):")
    w = max(len(s["name"]) for s in shipped)
    for s in shipped:
        if "error" in s:
            print(f"  {s['name']:<{w}}  unreadable: {s['error']}")
            continue
        extra = f"  {s['description']}" if s.get("description") else ""
        print(f"  {s['name']:<{w}}  {s['arch']} x{s['scale']} {s['geometry']}  trained for {s.get('degradation') or '?'}{extra}")
    return 0


def _print_mapping(d: dict[str, Any], indent: int = 0) -> None:
    w = max((len(k) for k in d), default=0)
    for k, v in d.items():
        if isinstance(v, dict) and v:
            print(f"{' ' * indent}{k}:")
            _print_mapping(v, indent + 2)
        else:
            text = json.dumps(v) if isinstance(v, list | dict) else v
            print(f"{' ' * indent}{k:<{w}}  {text}")


def run_show(args: argparse.Namespace) -> int:
    from mrisr.models.modelfile import list_pretrained, read_model_metadata
    from mrisr.models.registry import REGISTRY, build_model, model_info

    ref = args.model
    if Path(ref).exists() or ref in list_pretrained() or ref not in REGISTRY:
        info = read_model_metadata(ref)
    else:
        info = model_info(ref)
        model = build_model(ref)
        info["num_parameters_default"] = int(sum(p.numel() for p in model.parameters()))
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        _print_mapping(info)
    return 0
