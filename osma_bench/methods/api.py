"""The Method API: the contract between the harness and every method, built-in or outside.

The harness owns seeding, devices, data loading, the epoch loop, checkpoints, resume,
validation-based model selection, progress display and writing results. A method owns its models
and losses. See docs/CONTRACTS.md, section 2.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar, NamedTuple

import torch

from osma_bench.parallel.world import SINGLE_PROCESS, World


@dataclass
class MethodSpec:
    """What the harness tells a method about the problem and its budget."""

    num_classes: int
    image_size: int
    device: torch.device
    hparams: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    epochs: int = 1
    steps_per_epoch: int = 1
    profile: str = "smoke"
    #: The protocol split and the dataset's content hash (for methods that reuse another run).
    split: int | None = None
    dataset_sha256: str | None = None
    #: The processes this run trains on (docs/CONTRACTS.md, "Distributed training").
    world: World = SINGLE_PROCESS


class Prediction(NamedTuple):
    """A method's output for a batch: logits over known classes, a known-ness score, features."""

    logits: torch.Tensor
    score: torch.Tensor
    features: torch.Tensor | None = None


Batches = Iterable[tuple[torch.Tensor, torch.Tensor]]


class Method:
    """Base class of all methods.

    Subclasses set ``name``, ``paper`` and ``defaults`` (the paper's hyperparameters) and may set
    ``profile_defaults`` (per-profile scaling of those hyperparameters, documented in the class
    docstring). ``hparams`` in the spec already merges profile, defaults and CLI overrides.
    """

    name: ClassVar[str] = ""
    paper: ClassVar[str] = ""
    defaults: ClassVar[dict[str, Any]] = {}
    profile_defaults: ClassVar[dict[str, dict[str, Any]]] = {}
    #: Whether train_epoch needs the class-balanced loader (True) or a plain shuffled one.
    balanced_loader: ClassVar[bool] = True
    #: Whether the method trains at all (False: one accumulating pass, e.g. PRNU).
    trains: ClassVar[bool] = True
    #: Whether train_epoch is written for several processes (torchrun): each process sees its
    #: share of every batch and the method averages gradients through ``spec.world``.
    supports_distributed: ClassVar[bool] = False

    def __init__(self, spec: MethodSpec) -> None:
        self.spec = spec
        self.hp = dict(spec.hparams)
        self.device = spec.device
        self.world = spec.world
        #: Optional: the latest training step's losses; the harness shows them in its progress bar.
        self.step_losses: dict[str, float] = {}

    @classmethod
    def resolve_hparams(cls, profile: str, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
        """Paper defaults, then the profile's scaling, then user overrides."""
        resolved = dict(cls.defaults)
        resolved.update(cls.profile_defaults.get(profile, {}))
        resolved.update(overrides or {})
        return resolved

    def train_epoch(self, loader: Batches, epoch: int) -> dict[str, float]:
        raise NotImplementedError

    def finalize(self, train_loader: Batches, val_loader: Batches | None = None) -> None:
        """Post-hoc fitting after training (optional); ``val_loader`` holds known-class validation
        data in a fixed order, for choices a method makes on validation data only."""

    def predict(self, images: torch.Tensor) -> Prediction:
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        raise NotImplementedError

    def load_state_dict(self, state: dict[str, Any]) -> None:
        raise NotImplementedError

    def augmented_samples(self, images: torch.Tensor) -> dict[str, torch.Tensor] | None:
        """Images a method synthesises from ``images`` (for plots); None when it has none."""
        return None
