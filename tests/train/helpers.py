"""Shared pieces of the training tests: shrinking a shipped config to a seconds-long CPU run."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from mrisr.models.registry import REGISTRY
from mrisr.train.config import merge_data_config

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
SHIPPED = sorted(CONFIGS.glob("*.yaml")) + sorted((CONFIGS / "zoo").glob("*.yaml"))

# Constructor arguments that define *what* a network is (kept); the rest (width, depth) become tiny.
ARCH_KEYS = {"scale", "in_channels", "residual", "data_consistency", "output_activation", "spatial_dims",
             "dropout", "batch_norm", "upsampling", "anisotropic", "pre_method", "upsampler"}
PATCH_2D = 24  # a multiple of 2, 3 and 4
PATCH_3D = [8, 16, 16]


def read_raw(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())


def shrink(raw: dict[str, Any], roots: dict[str, str], steps: int = 2) -> dict[str, Any]:
    """A shipped config with tiny networks, a few steps per phase, small batches and the test data.

    ``roots`` maps data roots named in the config to prepared test folders (others get the pediatric
    slices, or the cardiac stacks for 3D).
    """
    raw = copy.deepcopy(raw)
    for role in ("generator", "discriminator"):
        net = raw["model"].get(role)
        if net:
            kept = {k: v for k, v in (net.get("args") or {}).items() if k in ARCH_KEYS}
            net["args"] = {**REGISTRY[net["name"]].tiny, **kept}
    # the data config a shipped config names (data.config) gives its dataset options; shrink those too
    data = raw["data"] = merge_data_config(raw.setdefault("data", {}), CONFIGS)
    three_d = data.get("dims", 2) == 3
    patch = PATCH_3D if three_d else PATCH_2D
    fallback = roots["data/prepared/cardiac_3d" if three_d else "data/prepared/pediatric"]
    data.update(root=roots.get(data["root"], fallback), batch_size=2, num_workers=0, patch_size=patch)
    for ph in raw["phases"]:
        ph.pop("epochs", None)
        g, d = (int(n) for n in str(ph.get("ratio", "1:1")).split(":"))
        ph["steps"] = max(steps, g, d)  # at least one whole G:D cycle, so both networks update
        if ph.get("data"):
            if "root" in ph["data"]:
                ph["data"]["root"] = roots.get(ph["data"]["root"], fallback)
            if "patch_size" in ph["data"]:
                ph["data"]["patch_size"] = patch
        for term in ph.get("losses") or []:
            if term["name"] == "vgg19":
                term["args"] = {**(term.get("args") or {}), "layers": ["relu1_2"]}
    raw.setdefault("validation", {}).update(every=1000, max_samples=2, batch_size=2, grid_samples=1,
                                            patch_size=PATCH_3D if three_d else None)
    raw.setdefault("run", {}).update(log_every=1, progress="never", precision="fp32")
    raw.setdefault("checkpoint", {})["every"] = 1000
    return raw


def small_gan(root: str, phases: list[dict[str, Any]], **sections: Any) -> dict[str, Any]:
    """A raw config: tiny SRResNet x2 (no batch norm) against a tiny patch discriminator on 16 px patches."""
    raw: dict[str, Any] = {
        "run": {"seed": 0, "log_every": 1, "progress": "never"},
        "data": {"root": root, "degradation": "bicubic:scale=2", "patch_size": 16, "batch_size": 2,
                 "num_workers": 0},
        "model": {"generator": {"name": "srresnet", "args": {"scale": 2, "channels": 4, "n_blocks": 1,
                                                             "batch_norm": False}},
                  "discriminator": {"name": "patch_discriminator", "args": {"channels": 4, "n_down": 2}}},
        "optim": {"generator": {"optimizer": {"name": "adam", "lr": 1e-3}},
                  "discriminator": {"optimizer": {"name": "adam", "lr": 1e-3}}},
        "phases": phases,
        "validation": {"every": 1000, "max_samples": 1, "batch_size": 1, "grid_samples": 1},
        "checkpoint": {"every": 1000},
    }
    for name, values in sections.items():
        raw.setdefault(name, {}).update(values)
    return raw


def adam_steps(trainer_state: dict[str, Any], role: str) -> int:
    """How many times the optimiser of ``role`` stepped (Adam counts per parameter)."""
    opt = trainer_state["optimizers"].get(role)
    if opt is None or not opt["state"]:
        return 0
    counts = {int(s["step"]) for s in opt["state"].values()}
    assert len(counts) == 1, counts
    return counts.pop()
