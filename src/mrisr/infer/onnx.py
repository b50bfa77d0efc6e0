"""ONNX export of a generator's network proper and its ONNX Runtime session (the optional ``mrisr[onnx]`` extra).

What is exported is the part :class:`mrisr.infer.engine.NetworkRunner` runs through an engine: for an
:class:`~mrisr.models.base.SRGenerator` its ``reconstruct`` (convolutions and pixel shuffles, input
``x`` ``(N, C, *spatial)`` float32 -> output ``y`` ``(N, 1, *(spatial * factors))``), with the batch and
spatial dims dynamic. The residual baseline and the data-consistency step are FFTs over whole slices; mrisr
applies them in PyTorch for both engines (so the engines agree), and the file records them in its metadata
(``mrisr.*`` keys: the model's JSON metadata, ``residual``, ``data_consistency``, ``factors``) for anyone
running the file elsewhere.

The exporter is PyTorch's TorchScript-based one (``torch.onnx.export(..., dynamo=False)``, opset
:data:`OPSET`): on the shipped models it gives the same graph as the ``torch.export``-based exporter, in
seconds instead of a minute on the development machines, and byte-identical files from run to run.
"""

from __future__ import annotations

import io
import json
import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from mrisr.errors import ConfigError

#: ONNX operator set of exported files.
OPSET = 17

#: Spatial size of the example input the export traces (any size the network accepts works).
_EXAMPLE = {2: (40, 48), 3: (16, 16, 20)}


def _require(module: str) -> Any:
    try:
        return __import__(module)
    except ImportError:
        raise ConfigError(f"ONNX support needs the {module} package: install mrisr[onnx]") from None


class _NetworkProper(nn.Module):
    """``reconstruct`` of a generator as a module's ``forward`` (what the exporter traces)."""

    def __init__(self, generator: nn.Module):
        super().__init__()
        self.generator = generator

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        reconstruct: Any = self.generator.reconstruct
        return reconstruct(x)


def network_proper(model: nn.Module) -> nn.Module:
    """The module an engine runs: a generator's ``reconstruct``, or any other module whole."""
    from mrisr.models.base import SRGenerator

    return _NetworkProper(model) if isinstance(model, SRGenerator) else model


def export_onnx_bytes(model: nn.Module, metadata: Mapping[str, str] | None = None) -> bytes:
    """Serialised ONNX model of ``model``'s network proper (module docstring), float32, on CPU.

    Args:
        model: a 2D or 3D generator (``in_channels``, ``spatial_dims`` attributes) or a module taking
            ``(N, 1, H, W)``; it is not modified (a CPU copy of its weights is traced).
        metadata: extra ``metadata_props`` (string keys and values).

    Returns:
        The ``.onnx`` file's bytes; the same model gives the same bytes.
    """
    import copy

    onnx = _require("onnx")
    dims = int(getattr(model, "spatial_dims", 2))
    channels = int(getattr(model, "in_channels", 1))
    twin = copy.deepcopy(model).cpu().float()
    twin.to(memory_format=torch.contiguous_format)  # type: ignore[call-overload]
    net = network_proper(twin).eval()
    example = torch.zeros(2, channels, *_EXAMPLE[dims])
    spatial = {2 + i: f"s{i}" for i in range(dims)}
    out_spatial = {2 + i: f"o{i}" for i in range(dims)}
    buf = io.BytesIO()
    target: Any = buf  # the TorchScript exporter writes to file objects too
    with warnings.catch_warnings():
        # the TorchScript exporter's deprecation notice and tracer warnings about shape checks in Python
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (example,), target, dynamo=False, opset_version=OPSET, input_names=["x"],
                          output_names=["y"], dynamic_axes={"x": {0: "n", **spatial}, "y": {0: "n", **out_spatial}},
                          do_constant_folding=True)
    proto = onnx.load_from_string(buf.getvalue())
    props = {"mrisr.exported_part": "reconstruct" if isinstance(net, _NetworkProper) else "forward", **dict(metadata or {})}
    for attr in ("factors", "residual", "data_consistency", "geometry", "in_channels", "spatial_dims"):
        if hasattr(model, attr):
            props.setdefault(f"mrisr.{attr}", json.dumps(getattr(model, attr)))
    del proto.metadata_props[:]
    for k in sorted(props):
        entry = proto.metadata_props.add()
        entry.key, entry.value = k, str(props[k])
    proto.producer_name = "mrisr"
    return bytes(proto.SerializeToString())


def write_onnx(model: nn.Module, meta: Mapping[str, Any], path: str | os.PathLike[str], force: bool = False) -> Path:
    """Export ``model`` (with its model file's ``meta``, kept under ``mrisr.meta``) to ``path`` atomically.

    Raises:
        OutputExistsError: ``path`` exists and not ``force``.
    """
    from mrisr.io.atomic import atomic_write, check_output

    check_output(path, force)
    keep = {k: v for k, v in meta.items() if k != "path"}
    data = export_onnx_bytes(model, {"mrisr.meta": json.dumps(keep, sort_keys=True, default=str)})
    return atomic_write(path, lambda p: p.write_bytes(data), force=force)


class OnnxSession:
    """An ONNX Runtime session over an exported network: ``run(x) -> y`` on float32 NumPy arrays.

    Args:
        model: ``.onnx`` bytes or a path.
        threads: intra-op threads (``None``: ONNX Runtime's default).
        cuda: use the CUDA execution provider when this ONNX Runtime has it (else CPU).
    """

    def __init__(self, model: bytes | str | os.PathLike[str], threads: int | None = None, cuda: bool = False):
        ort = _require("onnxruntime")
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = int(threads)
            opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        providers = ["CPUExecutionProvider"]
        if cuda and "CUDAExecutionProvider" in ort.get_available_providers():  # untested here: no GPU
            providers.insert(0, "CUDAExecutionProvider")
        src = model if isinstance(model, bytes) else str(model)
        self.session = ort.InferenceSession(src, sess_options=opts, providers=providers)
        self.input_name = self.session.get_inputs()[0].name

    def run(self, x: np.ndarray) -> np.ndarray:
        """``(N, C, *spatial)`` float32 -> the network's output, float32."""
        (y,) = self.session.run(None, {self.input_name: np.ascontiguousarray(x, dtype=np.float32)})
        return np.asarray(y, dtype=np.float32)
