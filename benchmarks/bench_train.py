"""Samples/s of `mrisr train`'s loop vs a hand-written minimal PyTorch loop (target ratio >= 0.95).

Both train the same network (registry name, default a small SRResNet) with Adam on an L1 loss, on the
same prepared synthetic patients (mrisr.data.example + prepare), through the same SRDataset (on-the-fly
degradation, random patches, augmentation) and DataLoader settings. The minimal loop is what one would
write by hand: shuffle, forward, loss, backward, step. `mrisr train` adds its phase schedule, learning-
rate schedule, loss bookkeeping, logging, progress bar, EMA (off here) and the resumable sampler; its
throughput is read from the run's summary.json (warm-up steps, validation and checkpoints excluded);
the minimal loop is timed over the same steps after the same warm-up. Runs alternate (mrisr, minimal,
mrisr, ...); the best run of each is compared (on a shared machine the least disturbed run is the
closest to the code's own speed), and the medians are printed too.

    .venv/bin/python benchmarks/bench_train.py
    .venv/bin/python benchmarks/bench_train.py --device cuda --batch 64 --patch 96 --workers 4 --precision bf16
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from mrisr.data.datasets import SRDataset
from mrisr.data.example import make_example_data
from mrisr.data.prepare import prepare_dataset
from mrisr.data.samples import collate_samples
from mrisr.models.registry import build_model
from mrisr.train.config import config_from_dict
from mrisr.train.loop import train


def mrisr_config(args: argparse.Namespace, root: Path, model_args: dict[str, Any]) -> dict[str, Any]:
    return {
        "run": {"seed": 0, "device": args.device, "precision": args.precision, "log_every": 50,
                "progress": "never"},
        "data": {"root": str(root), "degradation": args.degradation, "patch_size": args.patch,
                 "batch_size": args.batch, "num_workers": args.workers, "augment": True},
        "model": {"generator": {"name": args.model, "args": model_args}},
        "optim": {"generator": {"optimizer": {"name": "adam", "lr": 1e-4}}},
        "phases": [{"name": "bench", "steps": args.warmup + args.steps, "losses": [{"name": "l1"}]}],
        "validation": {"every": 10**9, "max_samples": 1, "batch_size": 1, "grid_samples": 1},
        "checkpoint": {"every": 10**9},
    }


def run_mrisr(args: argparse.Namespace, root: Path, model_args: dict[str, Any], out: Path) -> tuple[float, float]:
    """(samples per second, samples per CPU second of this process)."""
    cfg = config_from_dict(mrisr_config(args, root, model_args))
    run = train(cfg, out=str(out))
    thr = json.loads((run / "summary.json").read_text())["training_throughput"]
    assert thr["timed_steps"] == args.steps, thr
    return float(thr["samples_per_second"]), float(thr["samples_per_cpu_second"])


def run_minimal(args: argparse.Namespace, root: Path, model_args: dict[str, Any]) -> tuple[float, float]:
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          "cpu" if args.device == "auto" else args.device)
    torch.manual_seed(0)
    ds = SRDataset(root, "train", args.degradation, patch_size=args.patch, augment=True, seed=0)
    loader = DataLoader(ds, batch_size=args.batch, shuffle=True, drop_last=True, num_workers=args.workers,
                        collate_fn=collate_samples, pin_memory=device.type == "cuda",
                        persistent_workers=args.workers > 0)
    model = build_model(args.model, **model_args).to(device).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    amp = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(args.precision) if device.type == "cuda" else None
    scaler = torch.amp.GradScaler("cuda") if amp == torch.float16 else None

    def batches():  # endless, epoch after epoch
        epoch = 0
        while True:
            ds.set_epoch(epoch)
            yield from loader
            epoch += 1

    it = batches()
    done, t0, c0 = 0, 0.0, 0.0
    for step in range(args.warmup + args.steps):
        if step == args.warmup:
            if device.type == "cuda":
                torch.cuda.synchronize()
            t0, c0 = time.perf_counter(), time.process_time()
        batch = next(it)
        lr, hr = batch.lr.to(device, non_blocking=True), batch.hr.to(device, non_blocking=True)
        with torch.autocast(device.type, dtype=amp or torch.float32, enabled=amp is not None):
            loss = torch.nn.functional.l1_loss(model(lr), hr)
        opt.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
        else:
            loss.backward()
            opt.step()
        if step >= args.warmup:
            done += len(batch)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return done / (time.perf_counter() - t0), done / (time.process_time() - c0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="srresnet")
    ap.add_argument("--model-args", default='{"scale": 2, "channels": 32, "n_blocks": 4}', help="JSON")
    ap.add_argument("--degradation", default="bicubic:scale=2")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--patch", type=int, default=48)
    ap.add_argument("--workers", type=int, default=0)
    ap.add_argument("--steps", type=int, default=40, help="timed steps per run")
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "fp16"])
    ap.add_argument("--threads", type=int, default=None, help="torch intra-op threads (CPU)")
    ap.add_argument("--data", type=Path, help="a prepared folder to use instead of synthetic patients")
    args = ap.parse_args()
    # mrisr train excludes its first min(10, steps // 5) steps from its throughput; time the same steps
    total = args.warmup + args.steps
    trainer_warmup = min(10, total // 5)
    if args.warmup != trainer_warmup:
        print(f"note: mrisr train warms up for {trainer_warmup} of {total} steps; timing "
              f"{total - trainer_warmup} steps after {trainer_warmup} in both loops")
        args.warmup, args.steps = trainer_warmup, total - trainer_warmup
    if args.threads:
        torch.set_num_threads(args.threads)
    model_args = json.loads(args.model_args)

    with tempfile.TemporaryDirectory() as tmp:
        root = args.data
        if root is None:
            ex = make_example_data(Path(tmp) / "raw", n_patients=5, seed=0, cardiac=False, bad_inputs=False,
                                   pediatric_shape=(128, 128, 24))
            root = Path(tmp) / "prepared"
            prepare_dataset(ex["pediatric"], root, split={"train": 3, "val": 1, "test": 1})
        ours, theirs, ours_cpu, theirs_cpu = [], [], [], []
        for r in range(args.repeats):
            wall, cpu = run_mrisr(args, root, model_args, Path(tmp) / f"run{r}")
            ours.append(wall)
            ours_cpu.append(cpu)
            wall, cpu = run_minimal(args, root, model_args)
            theirs.append(wall)
            theirs_cpu.append(cpu)
            print(f"repeat {r + 1}: mrisr train {ours[-1]:8.1f} samples/s ({ours_cpu[-1]:8.1f} per CPU s)   "
                  f"minimal loop {theirs[-1]:8.1f} samples/s ({theirs_cpu[-1]:8.1f} per CPU s)", flush=True)
    print(f"\nmodel {args.model} {model_args}, batch {args.batch}, patch {args.patch}, workers {args.workers}, "
          f"device {args.device}, precision {args.precision}, threads {torch.get_num_threads()}")
    med_a, med_b = statistics.median(ours), statistics.median(theirs)
    print(f"median samples/s: mrisr train {med_a:.1f}, minimal loop {med_b:.1f} (ratio {med_a / med_b:.3f})")
    a, b = max(ours), max(theirs)
    print(f"best   samples/s: mrisr train {a:.1f}, minimal loop {b:.1f}")
    print(f"ratio mrisr/minimal (best runs): {a / b:.3f} (target >= 0.95)")
    if args.workers == 0:  # all work in this process: CPU seconds measure the same thing, less disturbed
        ca, cb = statistics.median(ours_cpu), statistics.median(theirs_cpu)
        print(f"median samples per CPU second: mrisr train {ca:.1f}, minimal loop {cb:.1f} (ratio {ca / cb:.3f})")


if __name__ == "__main__":
    main()
