"""A run killed with SIGKILL, resumed, stopped with Ctrl-C, resumed again ends with exactly the weights
of an uninterrupted run (CPU, same seed): RNG states, data position, optimiser and EMA state all restored."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from mrisr.train.checkpoint import load_state
from mrisr.train.config import config_from_dict
from mrisr.train.loop import train
from tests.train.helpers import small_gan

TOTAL = 90


def _config(root: str) -> dict:
    gan_losses = [{"name": "l1"}, {"name": "adversarial", "weight": 1e-2}]
    return small_gan(
        root,
        [{"name": "sup", "steps": 12, "losses": [{"name": "l1"}, {"name": "ssim", "weight": 0.1}]},
         {"name": "gan", "steps": TOTAL - 12, "train": ["generator", "discriminator"], "ratio": "2:1",
          "adversarial": "lsgan", "losses": gan_losses}],
        # randomness everywhere: augmentation, noise drawn per volume, dropout in D, two loader workers
        data={"augment": True, "degradation": "bicubic:scale=2;noise:snr=20..40", "num_workers": 2},
        model={"discriminator": {"name": "vgg_discriminator",
                                 "args": {"channels": 4, "n_layers": 4, "fc_channels": 8, "pool_size": 2,
                                          "batch_norm": False, "dropout": 0.3}}},
        ema={"decay": 0.9},
        checkpoint={"every": 5},
        run={"log_every": 5},
    )


def _checkpoint_step(run: Path) -> int:
    try:
        return json.loads((run / "checkpoints/last/COMPLETE").read_text())["step"]
    except (OSError, ValueError):
        return -1


def _start(*args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "mrisr", "train", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _wait_for(run: Path, proc: subprocess.Popen, min_step: int, timeout: float = 120.0) -> int:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        step = _checkpoint_step(run)
        if step >= min_step:
            return step
        if proc.poll() is not None:
            pytest.fail(f"training ended before a checkpoint at step >= {min_step}:\n{proc.stdout.read()}")
        time.sleep(0.005)
    proc.kill()
    pytest.fail("no checkpoint in time")


def _weights(run: Path) -> dict[str, torch.Tensor]:
    out = {}
    for stem in ("generator", "generator_ema", "discriminator"):
        for k, v in load_file(str(run / f"checkpoints/last/{stem}.safetensors")).items():
            out[f"{stem}.{k}"] = v
    state = load_state(run / "checkpoints/last")
    for role, opt in state["optimizers"].items():
        for pid, s in opt["state"].items():
            for k, v in s.items():
                out[f"opt.{role}.{pid}.{k}"] = torch.as_tensor(v)
    return out


def test_sigkill_and_ctrl_c_then_resume_give_identical_weights(prepared: dict[str, str], tmp_path: Path) -> None:
    raw = _config(prepared["data/prepared/pediatric"])
    cfg_file = tmp_path / "gan.yaml"
    cfg_file.write_text(yaml.safe_dump(raw))
    run = tmp_path / "interrupted"

    first = _start(str(cfg_file), "--out", str(run))
    killed_at = _wait_for(run, first, min_step=6)
    first.send_signal(signal.SIGKILL)
    first.wait()
    assert first.returncode == -signal.SIGKILL
    assert not (run / "summary.json").exists()

    second = _start("--resume", str(run))
    stopped_after = _wait_for(run, second, min_step=killed_at + 6)
    second.send_signal(signal.SIGINT)  # Ctrl-C: stop at the next step, save, exit 130
    out = second.communicate(timeout=120)[0]
    assert second.returncode == 130, out
    assert "checkpoint saved" in out
    stopped_at = _checkpoint_step(run)
    assert stopped_after <= stopped_at < TOTAL

    third = _start("--resume", str(run))
    out = third.communicate(timeout=300)[0]
    assert third.returncode == 0, out
    assert f"resumed {run} at step {stopped_at}/{TOTAL}" in out

    reference = train(config_from_dict(raw), out=str(tmp_path / "reference"))
    got, want = _weights(run), _weights(reference)
    assert got.keys() == want.keys()
    different = [k for k in want if not torch.equal(got[k], want[k])]
    assert not different, f"{len(different)} tensors differ, e.g. {different[:5]}"

    # The records are those of one run: metrics rows are not duplicated across the restarts.
    rows = [line.split(",")[:5] for line in (run / "metrics.csv").read_text().splitlines()[1:]]
    assert len(rows) == len({tuple(r) for r in rows})
