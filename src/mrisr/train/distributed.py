"""Processes, devices and data sharding: one process per device, launched by ``torchrun``.

``torchrun --nproc_per_node=N -m mrisr train ...`` (and multi-node through torchrun's rendezvous) sets
RANK / WORLD_SIZE / LOCAL_RANK / MASTER_ADDR / MASTER_PORT; :func:`init_distributed` reads them and
joins the process group (NCCL on CUDA, gloo on CPU). A plain ``mrisr train`` is a world of one and
never touches torch.distributed.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import Dataset, DistributedSampler, Sampler

from mrisr.errors import ConfigError


@dataclass(frozen=True)
class DistEnv:
    """This process's place in the job."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        """Rank 0 logs, validates and saves."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"environment variable {name}={value!r} is not an integer") from None


def pick_device(spec: str, local_rank: int) -> torch.device:
    """``auto``: CUDA device ``local_rank`` when CUDA is available, else CPU."""
    if spec == "auto":
        return torch.device("cuda", local_rank) if torch.cuda.is_available() else torch.device("cpu")
    try:
        device = torch.device(spec)
    except RuntimeError:
        raise ConfigError(f"run.device: unknown device {spec!r}") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"run.device: {spec!r} asked for but CUDA is not available")
        if device.index is None:
            device = torch.device("cuda", local_rank)
    return device


def init_distributed(device_spec: str = "auto", backend: str = "auto") -> DistEnv:
    """Read torchrun's environment, choose the device, join the process group when WORLD_SIZE > 1."""
    world = _env_int("WORLD_SIZE", 1)
    rank = _env_int("RANK", 0)
    local_rank = _env_int("LOCAL_RANK", 0)
    device = pick_device(device_spec, local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if world > 1 and not dist.is_initialized():
        if backend == "auto":
            backend = "nccl" if device.type == "cuda" else "gloo"
        if backend == "nccl" and device.type != "cuda":
            raise ConfigError("distributed.backend: nccl needs CUDA devices (use gloo on CPU)")
        dist.init_process_group(backend=backend, init_method="env://", rank=rank, world_size=world,
                                timeout=datetime.timedelta(minutes=60),
                                device_id=device if backend == "nccl" else None)
    return DistEnv(rank=rank, world_size=world, local_rank=local_rank, device=device)


def shutdown(env: DistEnv) -> None:
    if env.distributed and dist.is_initialized():
        dist.destroy_process_group()


def barrier(env: DistEnv) -> None:
    if env.distributed:
        if env.device.type == "cuda":
            dist.barrier(device_ids=[env.device.index])
        else:
            dist.barrier()


def broadcast_object(env: DistEnv, obj: Any) -> Any:
    """Rank 0's ``obj`` on every rank (e.g. the run folder chosen on rank 0)."""
    if not env.distributed:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def all_gather_object(env: DistEnv, obj: Any) -> list[Any]:
    if not env.distributed:
        return [obj]
    out: list[Any] = [None] * env.world_size
    dist.all_gather_object(out, obj)
    return out


def any_rank(env: DistEnv, flag: bool) -> bool:
    """True on every rank when ``flag`` is true on any (so all ranks stop together on Ctrl-C)."""
    if not env.distributed:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=env.device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


def wrap(module: nn.Module, env: DistEnv, find_unused_parameters: bool = False,
         sync_batchnorm: bool = True) -> nn.Module:
    """DistributedDataParallel around ``module`` when the world is larger than one, else ``module``."""
    if not env.distributed:
        return module
    if sync_batchnorm and env.device.type == "cuda":
        module = nn.SyncBatchNorm.convert_sync_batchnorm(module)
    device_ids = [env.device.index] if env.device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(module, device_ids=device_ids,
                                               find_unused_parameters=find_unused_parameters)


def unwrap(module: nn.Module) -> nn.Module:
    """The plain network inside DDP / torch.compile wrappers."""
    while True:
        if isinstance(module, nn.parallel.DistributedDataParallel):
            module = module.module
        elif hasattr(module, "_orig_mod"):
            module = module._orig_mod  # type: ignore[assignment]
        else:
            return module


class ResumableSampler(Sampler[int]):
    """This rank's share of a seeded, epoch-dependent permutation, starting after ``skip`` indices.

    Wraps :class:`~torch.utils.data.DistributedSampler` (``drop_last=True``) so every rank sees the same
    number of samples, and consecutive global batches of size ``B`` are the same samples whether they
    are drawn by one process or split over ``N`` (``B / N`` each): rank ``r`` takes positions
    ``r, r + N, ...`` of the permutation. ``skip`` resumes mid-epoch without touching earlier samples.
    """

    def __init__(self, dataset: Dataset[Any], env: DistEnv, seed: int, epoch: int = 0, skip: int = 0):
        self.inner: DistributedSampler[Any] = DistributedSampler(dataset, num_replicas=env.world_size, rank=env.rank, shuffle=True,
                                        seed=seed, drop_last=True)
        self.set_position(epoch, skip)

    def set_position(self, epoch: int, skip: int = 0) -> None:
        """Iterate ``epoch``'s permutation from index ``skip`` on (takes effect at the next ``iter``)."""
        self.inner.set_epoch(epoch)
        self.skip = skip

    def __iter__(self) -> Iterator[int]:
        indices = list(self.inner)
        return iter(indices[self.skip:])

    def __len__(self) -> int:
        return max(0, len(self.inner) - self.skip)
