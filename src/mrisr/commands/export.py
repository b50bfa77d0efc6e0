"""`mrisr export MODEL OUT.onnx [--force]`: a model's network as an ONNX file (needs the mrisr[onnx] extra)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export",
        help="export a trained model's network to ONNX (mrisr[onnx])",
        description="Write the network proper of MODEL (its reconstruct part, dynamic batch and spatial size) as "
                    "an ONNX file. The residual baseline and k-space data consistency are not in the graph; the "
                    "file's metadata (mrisr.*) names them and keeps the model file's metadata.",
    )
    p.add_argument("model", help="shipped model name, .safetensors model file or a folder holding one")
    p.add_argument("output", help="output .onnx file")
    p.add_argument("--force", action="store_true", help="overwrite an existing output")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from mrisr.errors import ConfigError
    from mrisr.infer.onnx import write_onnx
    from mrisr.io.atomic import check_not_input, check_output
    from mrisr.models.modelfile import load_model_file, resolve_model_path

    if Path(args.output).suffix.lower() != ".onnx":
        raise ConfigError(f"the output must be an .onnx file, got {args.output!r}")
    src = resolve_model_path(args.model)
    check_not_input(args.output, [src])
    check_output(args.output, args.force)
    model, meta = load_model_file(src)
    if getattr(model, "kind", "generator") != "generator":
        raise ConfigError(f"{src.name} is not a super-resolution generator")
    path = write_onnx(model, meta, args.output, force=args.force)
    print(f"wrote {path}: {meta.get('arch')} x{getattr(model, 'scale', '?')} network proper "
          f"(residual={getattr(model, 'residual', None)}, data consistency={getattr(model, 'data_consistency', False)} "
          "applied outside the graph)")
    return 0
