"""Differentiable collectives, written for every backend (gloo has no reduce-scatter).

Gradient convention: every process computes the same global loss from collective outputs, and
the backward pass sums the gradients that all processes send to a shared input. Together with
averaging parameter gradients over the N processes this yields exactly the single-process
gradient (N identical copies summed, then divided by N).
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch.autograd import Function


class _AllReduceSum(Function):
    """Sum over processes; backward: the sum over processes of the incoming gradients."""

    @staticmethod
    def forward(ctx, tensor: torch.Tensor) -> torch.Tensor:
        out = tensor.detach().clone().contiguous()
        dist.all_reduce(out, op=dist.ReduceOp.SUM)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.detach().clone().contiguous()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        return grad


class _AllGatherCat(Function):
    """Concatenate every process's tensor along dim 0 (rank order); backward: this process's slice
    of the gradient summed over processes."""

    @staticmethod
    def forward(ctx, tensor: torch.Tensor) -> torch.Tensor:
        tensor = tensor.detach().contiguous()
        parts = [torch.empty_like(tensor) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, tensor)
        ctx.rows = tensor.shape[0]
        return torch.cat(parts, dim=0)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.detach().clone().contiguous()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        start = dist.get_rank() * ctx.rows
        return grad[start : start + ctx.rows]


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Differentiable sum of ``tensor`` over all processes."""
    return _AllReduceSum.apply(tensor)


def all_gather_cat(tensor: torch.Tensor) -> torch.Tensor:
    """Every process's ``tensor`` (same shape everywhere) concatenated along dim 0, in rank order;
    differentiable when ``tensor`` requires grad."""
    if tensor.requires_grad:
        return _AllGatherCat.apply(tensor)
    tensor = tensor.contiguous()
    parts = [torch.empty_like(tensor) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, tensor)
    return torch.cat(parts, dim=0)
