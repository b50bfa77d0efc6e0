"""Print the README's zoo tables from the shipped model files' measured ``test_metrics`` (nothing typed by hand).

    .venv/bin/python scripts/shipped/zoo_table.py > /tmp/zoo.md
"""

from __future__ import annotations

from mrisr.models.flops import model_flops_per_output_pixel
from mrisr.models.modelfile import list_pretrained, read_model_metadata

ZOO = ("kspace-x2", "kspace-x3", "kspace-x4", "bicubic-x2", "block-x3", "fast-kspace-x2")


def main() -> None:
    shipped = set(list_pretrained())
    print("| model | network | params | kFLOPs / output px | degradation | steps (budget) | mean PSNR / SSIM: "
          "bicubic | zero-fill | model | mean gain over zero-fill (worst case) | over bicubic (worst) |")
    print("|---|---|--:|--:|---|---|--:|--:|--:|--:|--:|")
    for name in ZOO:
        if name not in shipped:
            print(f"| `{name}` | not shipped | | | | | | | | | |")
            continue
        md = read_model_metadata(name)
        t = md.get("test_metrics", {})
        m, w = t.get("mean", {}), t.get("worst_case_over", {})
        if not m:
            print(f"| `{name}` | no held-out figures | | | | | | | | | |")
            continue
        kflops = model_flops_per_output_pixel(md) / 1e3
        td = md.get("training_data", {})
        print(f"| `{name}` | {md['arch']} | {md['num_parameters'] / 1e3:.0f} k | {kflops:.1f} | `{md['degradation']}` | "
              f"{td.get('steps')} ({td.get('budget') or '?'}) | "
              f"{m['bicubic.psnr']:.2f} / {m['bicubic.ssim']:.4f} | {m['zerofill.psnr']:.2f} / {m['zerofill.ssim']:.4f} | "
              f"**{m['model.psnr']:.2f} / {m['model.ssim']:.4f}** | {m['gain_db_over_zerofill']:+.2f} dB "
              f"({w['zerofill']['gain_db']:+.2f}, {w['zerofill']['case']}) | {m['gain_db_over_bicubic']:+.2f} dB "
              f"({w['bicubic']['gain_db']:+.2f}, {w['bicubic']['case']}) |")


if __name__ == "__main__":
    main()
