"""BatchNorm over the global batch of a data-parallel step, on any backend (CPU/gloo included).

torch's ``SyncBatchNorm`` runs on CUDA only; this layer is the same computation written with
differentiable all-reduces, so the 2-process CPU test and a multi-GPU run share one code path.
It subclasses ``nn.BatchNorm2d`` (same parameters, buffers and state-dict keys), so checkpoints of
a distributed run load into a single-process model and ``running_stats_frozen`` still applies.
"""

from __future__ import annotations

import torch
from torch import nn

from osma_bench.parallel.collectives import all_reduce_sum


class GlobalBatchNorm2d(nn.BatchNorm2d):
    """``BatchNorm2d`` whose training statistics are those of the batch across all processes.

    Two collectives per call: the per-channel sum (with the element count), then the per-channel
    sum of squared deviations from the global mean (two-pass variance, as accurate as
    BatchNorm2d's). Evaluation mode is plain ``BatchNorm2d`` and communicates nothing.
    Statistics are computed in float32 under autocast.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:  # evaluation never communicates (rank 0 evaluates alone)
            return super().forward(x)
        channels = x.shape[1]
        x32 = x.float()
        local_sum = x32.sum(dim=(0, 2, 3))
        local_count = torch.full((1,), x32.numel() / channels, dtype=torch.float32, device=x.device)
        totals = all_reduce_sum(torch.cat([local_sum, local_count]))
        count = totals[-1].detach()
        mean = totals[:channels] / count
        centred = x32 - mean.view(1, -1, 1, 1)
        var = all_reduce_sum(centred.square().sum(dim=(0, 2, 3))) / count
        if self.track_running_stats:
            self._update_running_stats(mean.detach(), var.detach(), float(count))
        out = centred * torch.rsqrt(var + self.eps).view(1, -1, 1, 1)
        if self.affine:
            out = out * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)
        return out

    @torch.no_grad()
    def _update_running_stats(self, mean: torch.Tensor, var: torch.Tensor, count: float) -> None:
        """As ``BatchNorm2d``: momentum (or the cumulative average when None), unbiased variance."""
        self.num_batches_tracked.add_(1)
        factor = (1.0 / float(self.num_batches_tracked)) if self.momentum is None else float(self.momentum)
        unbiased = var * (count / max(count - 1.0, 1.0))
        self.running_mean.mul_(1.0 - factor).add_(mean.to(self.running_mean.dtype), alpha=factor)
        self.running_var.mul_(1.0 - factor).add_(unbiased.to(self.running_var.dtype), alpha=factor)


def convert_batchnorm(module: nn.Module) -> nn.Module:
    """Replace every ``BatchNorm2d`` in ``module`` by a :class:`GlobalBatchNorm2d` sharing its
    parameters and buffers (an optimiser built before the conversion stays valid)."""
    if isinstance(module, nn.BatchNorm2d) and not isinstance(module, GlobalBatchNorm2d):
        converted = GlobalBatchNorm2d(module.num_features, module.eps, module.momentum, module.affine,
                                      module.track_running_stats)
        if module.affine:
            converted.weight = module.weight
            converted.bias = module.bias
        if module.track_running_stats:
            converted.running_mean = module.running_mean
            converted.running_var = module.running_var
            converted.num_batches_tracked = module.num_batches_tracked
        converted.train(module.training)
        return converted
    for name, child in module.named_children():
        replaced = convert_batchnorm(child)
        if replaced is not child:
            setattr(module, name, replaced)
    return module
