"""Run by ``torchrun`` from test_distributed.py (and importable by it for the single-process side).

Every check computes the same quantities in one process on the whole batch (``world`` =
SINGLE_PROCESS, in the test) and in N processes on contiguous shares (here, under torchrun); rank 0
saves what it measured to ``<out>/rank0.pt``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from torch import nn
from torch.optim.optimizer import register_optimizer_step_pre_hook

from osma_bench.methods.api import MethodSpec
from osma_bench.methods.base_cnn import BaseMethod
from osma_bench.methods.pose import POSEMethod
from osma_bench.parallel import World, world_from_env

METHODS = {"base": BaseMethod, "pose": POSEMethod}


def batch(size: int = 12, classes: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    """A fixed class-interleaved batch (the balanced sampler's layout)."""
    g = torch.Generator().manual_seed(7)
    images = torch.rand(size, 3, 32, 32, generator=g) * 2 - 1
    labels = torch.arange(size) % classes
    return images, labels


def share(tensor: torch.Tensor, world: World) -> torch.Tensor:
    n = tensor.shape[0] // world.size
    return tensor[world.rank * n : (world.rank + 1) * n]


def batchnorm_check(world: World) -> dict[str, torch.Tensor]:
    """Output, input gradient, parameter gradients and running statistics of Conv + BN."""
    torch.manual_seed(3)
    block = world.prepare_module(nn.Sequential(nn.Conv2d(3, 4, 3, bias=False), nn.BatchNorm2d(4))).train()
    images, _ = batch()
    x = share(images, world).clone().requires_grad_(True)
    out = block(x)
    weights = torch.linspace(-1, 1, out[0].numel()).view_as(out[0])
    loss = world.global_mean((out * weights).sum(dim=(1, 2, 3)).square().mean())
    loss.backward()
    world.average_gradients(block.parameters())
    # x.grad holds N copies of this share's gradient of the global loss (see gather_check).
    result = {"out": world.gather(out.detach()), "x_grad": world.gather(x.grad) / world.size}
    result.update({f"grad.{k}": p.grad.clone() for k, p in block.named_parameters()})
    result.update({f"state.{k}": v.clone() for k, v in block.state_dict().items()})  # compared separately
    return result


def gather_check(world: World) -> dict[str, torch.Tensor]:
    """Gradient of a loss that mixes all rows (pairwise distances) through ``gather``."""
    g = torch.Generator().manual_seed(11)
    rows = torch.randn(8, 5, generator=g)
    x = share(rows, world).clone().requires_grad_(True)
    everything = world.gather(x)
    loss = torch.cdist(everything, everything).pow(2).mean() + world.global_mean(x.sum(dim=1).mean()).clamp_min(0.1)
    loss.backward()
    # Gradients of local rows of a global loss: N copies summed, so divide as gradient averaging does.
    return {"loss": loss.detach(), "x_grad": world.gather(x.grad) / world.size}


def make_method(name: str, world: World, device: torch.device, state_file: Path | None):
    hp = METHODS[name].resolve_hparams("smoke", {"dropout": 0.0, "width": 8, "lr": 1e-3, "lr_step": 50,
                                                 "lr_gamma": 0.9})
    spec = MethodSpec(num_classes=3, image_size=32, device=device, hparams=hp, seed=0, epochs=2,
                      steps_per_epoch=1, profile="smoke", world=world)
    torch.manual_seed(0)
    method = METHODS[name](spec)
    if state_file is not None:
        method.load_state_dict(torch.load(state_file, weights_only=True))
    return method


def step_gradients(name: str, world: World, device: torch.device, state_file: Path | None,
                   epoch: int) -> list[dict[str, torch.Tensor]]:
    """The (averaged) gradients every optimiser step of one training step sees, in order."""
    method = make_method(name, world, device, state_file)
    recorded: list[dict[str, torch.Tensor]] = []

    def record(optimizer, args, kwargs):  # a global step pre-hook: sees every optimiser's step
        grads = {}
        for gi, group in enumerate(optimizer.param_groups):
            for pi, p in enumerate(group["params"]):
                if p.grad is not None:
                    grads[f"{gi}.{pi}"] = p.grad.detach().clone()
        recorded.append(grads)

    images, labels = batch()
    handle = register_optimizer_step_pre_hook(record)
    try:
        method.train_epoch([(share(images, world), share(labels, world))], epoch)
    finally:
        handle.remove()
    return recorded


def main(out: Path, state_file: Path) -> None:
    torch.set_num_threads(1)
    world, device = world_from_env("cpu")
    try:
        result = {"world_size": world.size, "bn": batchnorm_check(world), "gather": gather_check(world),
                  "base": step_gradients("base", world, device, None, 0),
                  "pose": step_gradients("pose", world, device, state_file, 1)}
        if world.is_main:
            torch.save(result, out / "rank0.pt")
    finally:
        world.close()


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
