"""How much of a CPU training step waits for data? (target: < 5 % with 2 workers, batch 16, 64x64 patches)

Builds synthetic patients (mrisr.data.example), prepares them (mrisr.data.prepare), then trains a small
SR network from the registry (``fast`` by default) for a few steps with a DataLoader over SRDataset
(on-the-fly degradation, random patches, augmentation). Prints the time spent blocked in the loader's
``next()`` as a share of the whole step (wait + forward/backward/optimizer).

    .venv/bin/python benchmarks/bench_loader.py                    # defaults of the acceptance test
    .venv/bin/python benchmarks/bench_loader.py --size 512 --degradation "kspace:scale=2;noise:snr=20..40"
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from mrisr.data.datasets import SRDataset
from mrisr.data.example import make_example_data
from mrisr.data.prepare import prepare_dataset
from mrisr.data.samples import collate_samples


def build_model(name: str, scale: int) -> torch.nn.Module:
    try:
        from mrisr.models.registry import build_model as registry_build

        return registry_build(name, scale=scale)
    except ImportError:  # models not there: a plain conv stack + pixel shuffle
        return torch.nn.Sequential(
            torch.nn.Conv2d(1, 32, 5, padding=2), torch.nn.PReLU(),
            *[m for _ in range(4) for m in (torch.nn.Conv2d(32, 32, 3, padding=1), torch.nn.PReLU())],
            torch.nn.Conv2d(32, scale * scale, 3, padding=1), torch.nn.PixelShuffle(scale),
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--patch", type=int, default=64, help="HR patch size (px)")
    ap.add_argument("--size", type=int, default=256, help="prepared slice size (px)")
    ap.add_argument("--degradation", default="bicubic:scale=2")
    ap.add_argument("--margin", type=int, default=None, help="degrade_margin (default: whole slices)")
    ap.add_argument("--model", default="fast", help="registry name (mrisr.models)")
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--data", type=Path, help="reuse/keep the prepared data here")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        root = args.data or Path(tmp)
        prepared = root / f"prepared-{args.size}"
        if not (prepared / "manifest.json").exists():
            t0 = time.perf_counter()
            source = root / f"source-{args.size}"
            if not (source / "pediatric").exists():
                make_example_data(source, n_patients=6, pediatric_shape=(args.size, args.size, 16), cardiac=False,
                                  bad_inputs=False)
            prepare_dataset(source / "pediatric", prepared, split="train=1.0")
            print(f"data: 6 patients x 16 slices of {args.size}x{args.size} prepared in {time.perf_counter() - t0:.1f} s")
        ds = SRDataset(prepared, "train", args.degradation, patch_size=args.patch, augment=True, seed=0,
                       degrade_margin=args.margin)
        scale = ds.factors[-1]
        model = build_model(args.model, scale)
        opt = torch.optim.Adam(model.parameters(), lr=1e-4)
        loader = DataLoader(ds, batch_size=args.batch, shuffle=True, num_workers=args.workers, drop_last=True,
                            collate_fn=collate_samples, persistent_workers=args.workers > 0)
        wait = compute = 0.0
        steps = 0
        it = iter(loader)
        t_start = time.perf_counter()
        while steps < args.warmup + args.steps:
            t0 = time.perf_counter()
            try:
                batch = next(it)
            except StopIteration:
                it = iter(loader)
                continue
            t1 = time.perf_counter()
            loss = torch.nn.functional.l1_loss(model(batch.lr), batch.hr)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            t2 = time.perf_counter()
            if steps >= args.warmup:
                wait += t1 - t0
                compute += t2 - t1
            steps += 1
        total = time.perf_counter() - t_start
    n = args.steps
    share = wait / (wait + compute)
    print(f"model {args.model} (x{scale}), batch {args.batch} of {args.patch}x{args.patch} HR patches from "
          f"{args.size}x{args.size} slices, degradation '{args.degradation}', "
          f"{'whole-slice' if args.margin is None else f'margin {args.margin} px'} degradation, "
          f"{args.workers} workers, torch threads {torch.get_num_threads()}")
    print(f"step {1000 * (wait + compute) / n:.1f} ms = compute {1000 * compute / n:.1f} ms + waiting for data "
          f"{1000 * wait / n:.1f} ms over {n} steps ({total:.1f} s with warm-up)")
    print(f"data-wait share of a training step: {100 * share:.2f} % (target < 5 %)")


if __name__ == "__main__":
    main()
