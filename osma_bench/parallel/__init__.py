"""Data-parallel training over ``torch.distributed`` (started with ``torchrun``).

:func:`world_from_env` gives a :class:`World`: the single-process world (every collective is the
identity) or a process group. Methods talk to it through four operations (gradient averaging,
parameter broadcast, a differentiable all-gather and a differentiable global mean) and convert
their BatchNorm layers to :class:`GlobalBatchNorm2d`, so that one step on N processes, each with
1/N of the class-balanced batch, computes what one process computes on the whole batch.
"""

from osma_bench.parallel.batchnorm import GlobalBatchNorm2d, convert_batchnorm
from osma_bench.parallel.sampling import ShardedBatchSampler, TurnTakingBatchSampler
from osma_bench.parallel.world import SINGLE_PROCESS, ProcessGroupWorld, World, world_from_env

__all__ = [
    "GlobalBatchNorm2d",
    "ProcessGroupWorld",
    "SINGLE_PROCESS",
    "ShardedBatchSampler",
    "TurnTakingBatchSampler",
    "World",
    "convert_batchnorm",
    "world_from_env",
]
