#!/usr/bin/env python
"""Parameters and GFLOPs of every registered 2D network, per 256x256 -> 512x512 slice (the README table).

    .venv/bin/python scripts/count_flops.py            # markdown table on stdout
    .venv/bin/python scripts/count_flops.py --size 128 --scale 4

Counted with torch.utils.flop_counter.FlopCounterMode on the meta device (see mrisr.models.flops): one
multiply-add = 2 FLOPs; convolutions and matrix products only. Default constructor arguments.
"""

from __future__ import annotations

import argparse

from mrisr.models.flops import count_flops, flops_per_output_pixel
from mrisr.models.registry import REGISTRY, list_models


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=256, help="input slice edge (default 256)")
    ap.add_argument("--scale", type=int, default=2, help="upscaling factor of the main columns (default 2)")
    args = ap.parse_args()
    n, s = args.size, args.scale
    ref = {k: flops_per_output_pixel("srresnet", k) for k in (2, 3, 4)}
    print(f"Generators, {n}x{n} -> {n * s}x{n * s} (x{s}), default arguments:\n")
    print("| network | parameters | GFLOPs / slice | FLOPs / output pixel vs SRResNet-16 (x2 / x3 / x4) |")
    print("|---|---:|---:|---|")
    for name in list_models("generator"):
        if REGISTRY[name].spatial_dims != (2,):
            continue
        params, flops = count_flops(name, (1, 1, n, n), scale=s)
        rel = " / ".join(f"{100 * flops_per_output_pixel(name, k) / ref[k]:.1f}%" for k in (2, 3, 4))
        print(f"| {name} | {params / 1e6:.3f} M | {flops / 1e9:.2f} | {rel} |")
    hr = n * s
    print(f"\nDiscriminators (2D), on one {hr}x{hr} slice:\n")
    print("| network | parameters | GFLOPs / slice |")
    print("|---|---:|---:|")
    for name in list_models("discriminator"):
        if 2 not in REGISTRY[name].spatial_dims:
            continue
        params, flops = count_flops(name, (1, 1, hr, hr), spatial_dims=2)
        print(f"| {name} | {params / 1e6:.3f} M | {flops / 1e9:.2f} |")


if __name__ == "__main__":
    main()
