"""Checkpoints: everything a run needs to continue bit for bit, written atomically.

Layout inside a run folder::

    checkpoints/last/    generator.safetensors (+ its JSON metadata, the model file format)
                         generator_ema.safetensors   (when EMA is on)
                         discriminator.safetensors   (when the run has one)
                         trainer_state.pt            step, epoch, batch position, phase, best metric,
                                                     optimiser and grad-scaler states, RNG states
                         COMPLETE                    written last: the folder is whole
    checkpoints/best/    the same, at the best validation score so far

The network files are ordinary model files (``mrisr upscale --model RUN/checkpoints/best/generator...``
works). ``trainer_state.pt`` is loaded with ``weights_only=True``: tensors and plain containers only,
never pickled code. A checkpoint is built in a hidden sibling folder and renamed into place; the
previous one is renamed aside first and removed after, and :func:`find_checkpoint` recovers it if a
kill lands between the two renames.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from mrisr.errors import ConfigError, InputError

CHECKPOINTS = "checkpoints"
STATE_FILE = "trainer_state.pt"
COMPLETE = "COMPLETE"
MODEL_SUFFIX = ".safetensors"


@dataclass(frozen=True)
class NetworkRecord:
    """A network to save: the module and what rebuilds it (registry name + constructor arguments)."""

    module: nn.Module
    arch: str
    args: Mapping[str, Any]
    meta: Mapping[str, Any]


# ------------------------------------------------------------------------------------------------ RNG
def capture_rng() -> dict[str, Any]:
    """Host and device RNG states as tensors / plain values (loadable with ``weights_only=True``)."""
    np_state: Any = np.random.get_state()  # noqa: NPY002 - the legacy global RNG is part of the stream
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": [np_state[0], torch.from_numpy(np.asarray(np_state[1], dtype=np.int64)),
                  int(np_state[2]), int(np_state[3]), float(np_state[4])],
        "python": random.getstate(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: Mapping[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    name, keys, pos, has_gauss, cached = state["numpy"]
    np_state = (name, keys.numpy().astype(np.uint32), pos, has_gauss, cached)
    np.random.set_state(np_state)  # noqa: NPY002
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# ------------------------------------------------------------------------------------------- writing
def _fsync_tree(folder: Path) -> None:
    for p in folder.iterdir():
        if p.is_file():
            with open(p, "rb") as fh:
                os.fsync(fh.fileno())
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _publish(tmp: Path, final: Path) -> None:
    """Replace folder ``final`` by ``tmp`` (both in one parent): rename the old aside, rename in, delete."""
    old = final.with_name(f".{final.name}.old")
    if old.exists():
        shutil.rmtree(old)
    if final.exists():
        os.rename(final, old)
    os.rename(tmp, final)
    shutil.rmtree(old, ignore_errors=True)
    fd = os.open(final.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def save_checkpoint(run_dir: Path, networks: Mapping[str, NetworkRecord], state: Mapping[str, Any],
                    also_best: bool = False) -> Path:
    """Write ``checkpoints/last`` (and copy it to ``checkpoints/best`` when ``also_best``).

    ``networks`` maps a file stem (``generator``, ``generator_ema``, ``discriminator``) to its record;
    ``state`` is the trainer state (tensors and plain containers).
    """
    from mrisr.models.modelfile import save_model_file

    root = Path(run_dir) / CHECKPOINTS
    root.mkdir(parents=True, exist_ok=True)
    for stale in (*root.glob(".last.tmp-*"), *root.glob(".best.tmp-*")):  # left by a killed process
        shutil.rmtree(stale, ignore_errors=True)
    tmp = root / f".last.tmp-{os.getpid()}"
    tmp.mkdir()
    try:
        for stem, rec in networks.items():
            save_model_file(tmp / f"{stem}{MODEL_SUFFIX}", rec.module, arch=rec.arch, args=dict(rec.args),
                            meta=dict(rec.meta), force=True)
        torch.save(dict(state), tmp / STATE_FILE)
        (tmp / COMPLETE).write_text(json.dumps({"step": int(state["step"]), "files": sorted(networks)}) + "\n")
        _fsync_tree(tmp)
        _publish(tmp, root / "last")
        if also_best:
            tmp_best = root / f".best.tmp-{os.getpid()}"
            if tmp_best.exists():
                shutil.rmtree(tmp_best)
            shutil.copytree(root / "last", tmp_best)
            _fsync_tree(tmp_best)
            _publish(tmp_best, root / "best")
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return root / "last"


# ------------------------------------------------------------------------------------------- reading
def find_checkpoint(path: str | Path, which: str = "last") -> Path | None:
    """The complete checkpoint folder ``which`` (last/best) of a run folder, or ``path`` itself when it
    is a checkpoint folder; ``None`` when there is none. Recovers a checkpoint renamed aside by a kill."""
    p = Path(path)
    if (p / COMPLETE).is_file():
        return p
    root = p / CHECKPOINTS
    final = root / which
    if (final / COMPLETE).is_file():
        return final
    old = root / f".{which}.old"
    if (old / COMPLETE).is_file():
        if final.exists():
            shutil.rmtree(final)  # a half-written replacement
        os.rename(old, final)
        return final
    return None


def load_state(ckpt: Path) -> dict[str, Any]:
    """The trainer state of a checkpoint folder (tensors and plain containers only).

    Raises:
        InputError: the file is not a weights-only state (a pickle naming code is refused by torch's
            weights-only unpickler before anything of it runs), or it is truncated.
    """
    import pickle

    path = ckpt / STATE_FILE
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"{path} is not a weights-only trainer state (refused, nothing of it was run): "
                         f"{first[:200]}") from None


def load_weights_into(module: nn.Module, model_file: Path) -> dict[str, Any]:
    """Copy the weights of a model file into ``module`` (same architecture); returns the file's metadata."""
    from mrisr.models.modelfile import load_model_file

    loaded, meta = load_model_file(model_file)
    try:
        module.load_state_dict(loaded.state_dict())
    except RuntimeError as exc:
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        detail = next((ln for ln in lines[1:]), lines[0] if lines else "")
        theirs, ours = meta.get("arch"), getattr(module, "mrisr_arch", None)
        if theirs and ours and theirs != ours:
            detail = f"it holds a {theirs}, this network is a {ours}"
        elif len(detail) > 300:
            detail = detail[:300] + " ..."
        raise ConfigError(f"{model_file}: weights do not fit this network (same name, other args?): {detail}") from None
    return meta


def network_file(ckpt: Path, stem: str) -> Path:
    return ckpt / f"{stem}{MODEL_SUFFIX}"


def resolve_init(ref: str, role: str, which: str) -> Path:
    """A model file for ``init.<role>``: a model file itself, or a run / checkpoint folder whose
    ``which`` (then the other) checkpoint holds ``<role>`` (EMA weights preferred for the generator)."""
    p = Path(ref)
    if p.is_file():
        return p
    if not p.exists():
        raise ConfigError(f"init.{role}: {ref} does not exist")
    other = "last" if which == "best" else "best"
    ckpt = find_checkpoint(p, which) or find_checkpoint(p, other)
    if ckpt is None:
        raise ConfigError(f"init.{role}: {ref} holds no complete checkpoint")
    stems = [f"{role}_ema", role] if role == "generator" else [role]
    for stem in stems:
        f = network_file(ckpt, stem)
        if f.is_file():
            return f
    raise ConfigError(f"init.{role}: checkpoint {ckpt} has no {role}")
