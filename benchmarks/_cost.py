"""Shared by the per-epoch cost benchmarks: command-line options, method construction, batches."""

from __future__ import annotations

import argparse

import numpy as np
import torch

from osma_bench.data.synthetic import synthetic_images
from osma_bench.harness.config import resolve_config
from osma_bench.methods.api import MethodSpec


def cost_arguments(description: str) -> argparse.Namespace:
    """Parse the options every cost benchmark takes; set torch threads and the seed."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--profile", default="mini")
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--steps", type=int, default=4, help="class-balanced steps per timed epoch")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (0: leave as is)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    return args


def make_method(cls, profile: str, num_classes: int, epochs: int | None = None):
    """``cls`` with the profile's resolved hyperparameters, on the CPU."""
    config = resolve_config(cls, profile)
    if epochs is not None:
        config["epochs"] = epochs
    spec = MethodSpec(num_classes, int(config["image_size"]), torch.device("cpu"), config, seed=0,
                      epochs=int(config["epochs"]), steps_per_epoch=1, profile=profile)
    return cls(spec)


def synthetic_batches(num_classes: int, per_class: int, size: int, steps: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``steps`` class-balanced batches of synthetic images in [-1, 1]."""
    rng = np.random.default_rng(0)
    batches = []
    for _ in range(steps):
        images = np.concatenate([synthetic_images(k, per_class, size, rng) for k in range(num_classes)])
        x = torch.from_numpy(images).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)
        batches.append((x, torch.arange(num_classes).repeat_interleave(per_class)))
    return batches
