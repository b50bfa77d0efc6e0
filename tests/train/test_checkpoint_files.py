"""Checkpoint folders: what a killed process left half-written is cleaned up by the next save."""

from __future__ import annotations

from pathlib import Path

from mrisr.models.registry import REGISTRY, build_model
from mrisr.train.checkpoint import NetworkRecord, find_checkpoint, save_checkpoint


def test_partial_checkpoints_of_killed_processes_are_removed(tmp_path: Path) -> None:
    net = build_model("srresnet", **REGISTRY["srresnet"].tiny)
    rec = {"generator": NetworkRecord(net, net.mrisr_arch, net.mrisr_args, {})}
    stale = [tmp_path / "checkpoints" / ".last.tmp-99999999", tmp_path / "checkpoints" / ".best.tmp-99999999"]
    for folder in stale:  # a process killed while writing (another pid than ours)
        folder.mkdir(parents=True)
        (folder / "generator.safetensors").write_bytes(b"half")
    save_checkpoint(tmp_path, rec, {"step": 3}, also_best=True)
    assert not any(p.exists() for p in stale)
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["best", "last"]
    assert find_checkpoint(tmp_path, "last") == tmp_path / "checkpoints" / "last"
