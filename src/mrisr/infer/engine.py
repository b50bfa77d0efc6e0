"""Running a network on batches: the per-batch engine of :func:`mrisr.infer.upscale_with_model`.

A generator (:class:`mrisr.models.base.SRGenerator`) is run in two parts (:class:`NetworkRunner`):

* the network proper (``reconstruct``: convolutions, local), by one of :data:`ENGINES`: PyTorch
  (``inference_mode``, channels-last weights and inputs, on CUDA float16 autocast) or ONNX Runtime
  (:mod:`mrisr.infer.onnx`, the optional ``mrisr[onnx]`` extra);
* then, always in PyTorch float32 on whole slices, what the generator adds after it: the residual baseline
  (zero-fill / bicubic upsampling of the input) and the k-space data-consistency step. These are global (FFTs
  over the slice), so they are neither tiled nor exported, and both engines give the same result.

:func:`run_slices` runs a 2D network over a stack of slices: slices are fed to the network as views of the
stack (no copy for networks without context slices), batched by :func:`choose_batch`, slices larger than
:data:`TILE` coarse pixels are tiled and blended (:func:`mrisr.infer.tiling.blend_tiles`), and each batch's
output is written straight into the preallocated output array. CPU threads come from :func:`choose_threads`.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from mrisr.errors import ConfigError

#: Values of ``engine=`` / ``mrisr upscale --engine``.
ENGINES: tuple[str, ...] = ("auto", "torch", "onnx")

#: What ``engine="auto"`` picks on CPU when ONNX Runtime is installed (the faster one in
#: ``benchmarks/infer.py`` on the shipped default model; the figures are in the README).
AUTO_CPU_ENGINE = "torch"

#: 2D slices with more coarse pixels than this along either axis are run in blended tiles of this size.
TILE = 1024

#: Coarse pixels shared by neighbouring 2D tiles; the blend is exact for receptive fields up to a quarter of
#: it (16: the shipped SRResNet models' reach, 4 + 8 + 1 + 1 + 2 coarse pixels).
TILE_OVERLAP = 64

#: Coarse pixels of one batch of slices on CPU (:func:`choose_batch`).
CPU_BATCH_PIXELS = 256 * 256


def device_of(device: str | torch.device) -> torch.device:
    """``"cpu"``, ``"cuda"``, ``"cuda:1"`` or ``"auto"`` -> a torch device (CUDA checked to be there)."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ConfigError(f"unknown device {device!r}: {exc}") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' requested but no CUDA GPU is available (use --device cpu)")
    return dev


def onnxruntime_available() -> bool:
    """Whether ONNX Runtime can be imported (the ``mrisr[onnx]`` extra)."""
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def resolve_engine(engine: str, device: torch.device) -> str:
    """The engine that runs: ``"torch"`` or ``"onnx"``.

    ``"auto"`` is :data:`AUTO_CPU_ENGINE` on CPU when ONNX Runtime is installed, else ``"torch"`` (on CUDA
    always ``"torch"``).

    Raises:
        ConfigError: an unknown engine, or ``"onnx"`` without ONNX Runtime installed.
    """
    if engine not in ENGINES:
        raise ConfigError(f"unknown engine {engine!r}; known: {', '.join(ENGINES)}")
    if engine == "auto":
        if device.type == "cpu" and AUTO_CPU_ENGINE == "onnx" and onnxruntime_available():
            return "onnx"
        return "torch"
    if engine == "onnx" and not onnxruntime_available():
        raise ConfigError("engine 'onnx' needs ONNX Runtime: install mrisr[onnx]")
    return engine


def choose_threads(threads: int | None = None) -> int:
    """CPU threads for inference: ``threads`` if given, else ``OMP_NUM_THREADS`` if set, else the CPUs this
    process may run on (``os.sched_getaffinity``; in containers often fewer than ``os.cpu_count()``).

    Sets PyTorch's intra-op thread count to it (process-wide) and returns it.

    Raises:
        ConfigError: ``threads`` < 1 or an unreadable ``OMP_NUM_THREADS``.
    """
    if threads is None:
        env = os.environ.get("OMP_NUM_THREADS", "").strip()
        if env:
            try:
                threads = int(env)
            except ValueError:
                raise ConfigError(f"OMP_NUM_THREADS must be an integer, got {env!r}") from None
        else:
            threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if threads < 1:
        raise ConfigError(f"threads must be >= 1, got {threads}")
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    return threads


def choose_batch(plane_pixels: int, batch_size: int, device: torch.device) -> int:
    """Slices per forward pass: on CPU at most ``batch_size`` and about :data:`CPU_BATCH_PIXELS` coarse
    pixels (larger batches only add memory there: ``benchmarks/infer.py``); on CUDA ``batch_size``."""
    if device.type != "cpu":
        return max(1, batch_size)
    return max(1, min(batch_size, CPU_BATCH_PIXELS // max(1, plane_pixels)))


def _finisher(model: nn.Module) -> tuple[Callable[[torch.Tensor], torch.Tensor], Callable[..., torch.Tensor] | None]:
    """``(network proper, finish)`` of a generator; a module that is no :class:`SRGenerator` is all network."""
    from mrisr.models.base import SRGenerator

    if not isinstance(model, SRGenerator):
        return model, None
    gen = model

    def finish(y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        # SRGenerator.forward after reconstruct, in float32 on whole slices
        return gen.finish(y.float(), x.float())

    return gen.reconstruct, finish


#: ONNX Runtime sessions by weights (:func:`_weights_key`), with the tensors they were exported from (held,
#: so that their ids are not reused); the shallow per-scan copies of :mod:`mrisr.infer.calibrate` share one.
_SESSIONS: dict[tuple[Any, ...], tuple[list[torch.Tensor], Any]] = {}
_SESSIONS_SIZE = 4


def _weights_key(model: nn.Module) -> tuple[Any, ...]:
    """Changes when the weights are replaced or updated in place (tensor identities and versions)."""
    return (type(model).__name__,
            *(v for t in (*model.parameters(), *model.buffers()) for v in (id(t), t._version)))


class NetworkRunner:
    """A generator ready to run batches on ``device`` with ``engine`` (module docstring).

    ``net(x)`` runs the network proper, ``finish(y, x)`` adds the residual baseline and data consistency,
    ``forward(x)`` is both (equal to ``model(x)`` up to float rounding). Tensors are ``(N, C, *spatial)``
    float32; ``net`` and ``forward`` return float32 on ``device``. The PyTorch engine puts the model's weights
    in channels-last memory format (in place; values unchanged). The ONNX engine exports the network proper
    once per model and weights (cached while the model lives).
    """

    def __init__(self, model: nn.Module, device: torch.device, *, engine: str = "auto", threads: int | None = None):
        self.model = model.eval()
        self.device = device
        self.engine = resolve_engine(engine, device)
        self.threads = choose_threads(threads) if device.type == "cpu" else threads
        self.spatial_dims = int(getattr(model, "spatial_dims", 2))
        self._net, self._finish = _finisher(model)
        self._check = getattr(model, "check_input", None)
        self._format = torch.channels_last if self.spatial_dims == 2 else torch.channels_last_3d
        self._session: Any = None
        if self.engine == "torch":
            model.to(memory_format=self._format)  # type: ignore[call-overload]
        else:
            self._session = self._onnx_session()

    def _onnx_session(self) -> Any:
        from mrisr.infer.onnx import OnnxSession, export_onnx_bytes

        key = (*_weights_key(self.model), self.device.type == "cuda", self.threads or 0)
        if key not in _SESSIONS:
            if len(_SESSIONS) >= _SESSIONS_SIZE:
                _SESSIONS.pop(next(iter(_SESSIONS)))
            session = OnnxSession(export_onnx_bytes(self.model), threads=self.threads,
                                  cuda=self.device.type == "cuda")
            _SESSIONS[key] = ([*self.model.parameters(), *self.model.buffers()], session)
        return _SESSIONS[key][1]

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.device.type == "cuda":  # untested here (no GPU on the development machines)
            return torch.autocast("cuda", dtype=torch.float16)
        return contextlib.nullcontext()

    def net(self, x: torch.Tensor) -> torch.Tensor:
        """The network proper on ``x`` ``(N, C, *spatial)`` (float32) -> ``(N, 1, *fine)`` float32 on ``device``."""
        if self._check is not None:
            self._check(x)
        if self._session is not None:
            y = torch.from_numpy(self._session.run(x.detach().cpu().numpy()))
            return y.to(self.device)
        with torch.inference_mode(), self._autocast():
            return self._net(x.to(self.device).contiguous(memory_format=self._format)).float()

    def finish(self, y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Residual baseline and data consistency of the generator (identity for other modules)."""
        if self._finish is None:
            return y
        with torch.inference_mode():
            return self._finish(y, x.to(y.device))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``finish(net(x), x)``: the generator's whole forward pass."""
        return self.finish(self.net(x), x)


def _pinned(shape: tuple[int, ...]) -> torch.Tensor:
    return torch.empty(shape, dtype=torch.float32, pin_memory=True)


def run_slices(model: nn.Module, stack: np.ndarray, batch_size: int, device: torch.device,
               progress: Any = None, *, engine: str = "auto", threads: int | None = None,
               tile: int = TILE, tile_overlap: int = TILE_OVERLAP, out: np.ndarray | None = None) -> np.ndarray:
    """Run a 2D network over a stack of normalised slices.

    Args:
        model: 2D generator; ``in_channels = 1 + 2 * context`` neighbouring slices are fed (edge slices
            repeated at the ends of the stack), ``factors`` gives the output pixels per input pixel.
        stack: ``(S, a, b)`` normalised intensities (read, never modified; float32 C-contiguous avoids a copy).
        batch_size: most slices per forward pass (:func:`choose_batch` may take fewer on CPU).
        device: where the network runs.
        progress: object with ``update(n)`` called with the number of slices done.
        engine: ``"auto"``, ``"torch"`` or ``"onnx"`` (:func:`resolve_engine`).
        threads: CPU threads (:func:`choose_threads`).
        tile, tile_overlap: slices with more than ``tile`` coarse pixels along an axis are run in tiles of
            ``tile`` sharing ``tile_overlap`` pixels, blended (:func:`mrisr.infer.tiling.blend_tiles`).
        out: optional C-contiguous float32 ``(S, a * fa, b * fb)`` array to write into.

    Returns:
        ``(S, a * fa, b * fb)`` float32 (``out`` when given).
    """
    from mrisr.infer.tiling import blend_tiles, measure_reach

    runner = NetworkRunner(model, device, engine=engine, threads=threads)
    c = int(getattr(model, "in_channels", 1)) // 2
    n, a, b = stack.shape
    fa, fb = (int(v) for v in getattr(model, "factors"))  # noqa: B009
    shape = (n, a * fa, b * fb)
    if out is None:
        out = np.empty(shape, dtype=np.float32)
    elif out.shape != shape or out.dtype != np.float32 or not out.flags.c_contiguous:
        raise ValueError(f"out must be a C-contiguous float32 array of shape {shape}")
    dst = torch.from_numpy(out)
    src = torch.from_numpy(np.ascontiguousarray(stack, dtype=np.float32))
    bs = choose_batch(a * b, batch_size, device)
    cuda = device.type == "cuda"
    reach: list[int | None] | None = None
    for start in range(0, n, bs):
        stop = min(start + bs, n)
        if c == 0:
            x = src[start:stop, None]  # a view: no copy
        else:
            idx = torch.arange(start, stop)
            # (B, C) neighbour indices, clamped at the ends of the stack
            x = src[(idx[:, None] + torch.arange(-c, c + 1)[None, :]).clamp(0, n - 1)]
        if cuda:  # pinned host memory, asynchronous copies (untested here: no GPU)
            x = _pinned(tuple(x.shape)).copy_(x).to(device, non_blocking=True)
        if max(a, b) > tile:
            if reach is None:  # measured once per stack (mrisr.infer.tiling.measure_reach)
                probe = [min(tile, a, 2 * tile_overlap + 1), min(tile, b, 2 * tile_overlap + 1)]
                reach = measure_reach(runner.net, x, (fa, fb), probe)
            y = blend_tiles(runner.net, x, (fa, fb), (tile, tile), tile_overlap, reach=reach)
        else:
            y = runner.net(x)
        y = runner.finish(y, x)
        dst[start:stop] = y[:, 0].cpu() if cuda else y[:, 0]
        if progress is not None:
            progress.update(stop - start)
    return out
