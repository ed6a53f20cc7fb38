"""The processes a run trains on: one (the default) or a ``torch.distributed`` process group.

A method calls the same five operations either way; in a single process they cost nothing:

* ``prepare_module(m)``: global BatchNorm and rank 0's initial weights (call before building the
  optimiser or right after creating a module during training);
* ``average_gradients(params)``: after ``backward``, before ``optimizer.step``;
* ``gather(x)``: the whole batch's rows of a per-image tensor (differentiable), for losses that
  compare images with each other (batch-hard triplet mining);
* ``global_mean(x)``: the batch mean from this process's mean (differentiable), for losses with a
  non-linearity applied to a batch mean (a clamp, a margin);
* ``all_sum(t)``: a non-differentiable sum (counts for validation accuracy).

Gradient averaging is one fused all-reduce per parameter group and step, the arithmetic of
``DistributedDataParallel``; it is done explicitly because POSE's two-phase step backpropagates
through the classifier for the augmentation model only (``backward(inputs=...)``), which DDP's
reducer does not support.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from datetime import timedelta

import torch
import torch.distributed as dist
from torch import nn

from osma_bench.errors import OsmaError
from osma_bench.parallel.batchnorm import convert_batchnorm
from osma_bench.parallel.collectives import all_gather_cat, all_reduce_sum
from osma_bench.parallel.sampling import ShardedBatchSampler, TurnTakingBatchSampler


class World:
    """A single process: rank 0 of 1; every operation is the identity."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0
    backend: str | None = None

    @property
    def is_main(self) -> bool:
        """Whether this process writes results, checkpoints and logs (rank 0)."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1

    def prepare_module(self, module: nn.Module) -> nn.Module:
        return module

    def average_gradients(self, params: Iterable[torch.Tensor]) -> None:
        return None

    def gather(self, tensor: torch.Tensor) -> torch.Tensor:
        return tensor

    def global_mean(self, tensor: torch.Tensor) -> torch.Tensor:
        return tensor

    def all_sum(self, tensor: torch.Tensor) -> torch.Tensor:
        return tensor

    def shard(self, sampler):
        """This process's share of every training batch."""
        return sampler

    def take_turns(self, sampler):
        """Every ``size``-th batch, starting at ``rank`` (evaluation)."""
        return sampler

    def barrier(self) -> None:
        return None

    def close(self) -> None:
        return None

    def describe(self) -> dict:
        """What run.json records."""
        return {"world_size": self.size, "backend": self.backend}


SINGLE_PROCESS = World()


class ProcessGroupWorld(World):
    """Rank ``rank`` of ``size`` processes in the default ``torch.distributed`` process group."""

    def __init__(self, rank: int, size: int, local_rank: int, backend: str) -> None:
        self.rank, self.size, self.local_rank, self.backend = rank, size, local_rank, backend

    def prepare_module(self, module: nn.Module) -> nn.Module:
        module = convert_batchnorm(module)
        self.broadcast_module(module)
        return module

    @torch.no_grad()
    def broadcast_module(self, module: nn.Module) -> None:
        """Copy rank 0's parameters and buffers to every process."""
        for tensor in module.state_dict().values():
            if torch.is_tensor(tensor):
                dist.broadcast(tensor, src=0)

    @torch.no_grad()
    def average_gradients(self, params: Iterable[torch.Tensor]) -> None:
        """Replace each gradient by its mean over processes (one all-reduce per dtype).

        Every process must have gradients for the same parameters (the same graph), as with DDP.
        """
        by_dtype: dict[torch.dtype, list[torch.Tensor]] = {}
        for param in params:
            if param.grad is not None:
                by_dtype.setdefault(param.grad.dtype, []).append(param.grad)
        for grads in by_dtype.values():
            flat = torch.cat([g.reshape(-1) for g in grads])
            dist.all_reduce(flat, op=dist.ReduceOp.SUM)
            flat.div_(self.size)
            offset = 0
            for g in grads:
                g.copy_(flat[offset : offset + g.numel()].view_as(g))
                offset += g.numel()

    def gather(self, tensor: torch.Tensor) -> torch.Tensor:
        return all_gather_cat(tensor)

    def global_mean(self, tensor: torch.Tensor) -> torch.Tensor:
        return all_reduce_sum(tensor) / self.size

    @torch.no_grad()
    def all_sum(self, tensor: torch.Tensor) -> torch.Tensor:
        out = tensor.detach().clone()
        dist.all_reduce(out, op=dist.ReduceOp.SUM)
        return out

    def shard(self, sampler):
        return ShardedBatchSampler(sampler, self.rank, self.size)

    def take_turns(self, sampler):
        return TurnTakingBatchSampler(sampler, self.rank, self.size)

    def barrier(self) -> None:
        dist.barrier()

    def close(self) -> None:
        if dist.is_initialized():
            dist.destroy_process_group()


def world_from_env(device_name: str = "auto", timeout_minutes: float = 60.0) -> tuple[World, torch.device]:
    """The world and device of this process.

    Without ``WORLD_SIZE`` > 1 in the environment (not started by ``torchrun``): the single
    process on the requested device. Under ``torchrun``: join the process group (NCCL on CUDA,
    gloo on the CPU); each process uses ``cuda:LOCAL_RANK`` when the device is CUDA.
    """
    from osma_bench.harness.device import select_device

    size = int(os.environ.get("WORLD_SIZE", "1") or 1)
    if size <= 1:
        return SINGLE_PROCESS, select_device(device_name)
    try:
        rank = int(os.environ["RANK"])
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    except (KeyError, ValueError):
        raise OsmaError("WORLD_SIZE is set but RANK is not; start distributed runs with torchrun") from None
    requested = select_device(device_name)
    if requested.type == "cuda":
        if local_rank >= torch.cuda.device_count():
            raise OsmaError(f"LOCAL_RANK {local_rank}: only {torch.cuda.device_count()} CUDA device(s) here; "
                            "use torchrun --nproc-per-node at most the number of GPUs")
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
        backend = "nccl"
    else:
        device = torch.device("cpu")
        backend = "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend, rank=rank, world_size=size,
                                timeout=timedelta(minutes=timeout_minutes))
    return ProcessGroupWorld(rank, size, local_rank, backend), device
