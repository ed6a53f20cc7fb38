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

from osma_bench.hparams import BudgetDeparture, HParam, infer_declaration
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

    Subclasses set ``name``, ``paper`` and declare their hyperparameters once in ``hparams`` (a tuple
    of :class:`osma_bench.hparams.HParam`: name, type, default = the paper's value, allowed range,
    meaning). ``profile_defaults[profile]`` scales the method's own hyperparameters for a profile;
    ``budget_departures[profile]`` (or ``["*"]`` for every profile) declares where the method departs
    from the profile's shared budget (epochs, learning rate, ...) and why; ``unused_budget`` names
    budget keys the method ignores (``--set`` on them is refused). ``hparams`` in the spec holds the
    resolved values (harness budget and runtime keys included). A method that only sets the older
    ``defaults`` dict gets declarations inferred from the default values' types.
    """

    name: ClassVar[str] = ""
    paper: ClassVar[str] = ""
    hparams: ClassVar[tuple[HParam, ...]] = ()
    defaults: ClassVar[dict[str, Any]] = {}
    profile_defaults: ClassVar[dict[str, dict[str, Any]]] = {}
    budget_departures: ClassVar[dict[str, dict[str, BudgetDeparture]]] = {}
    #: Departures from the shared protocol that are not a budget value (e.g. two classifier updates
    #: per batch); recorded in run.json.
    budget_notes: ClassVar[tuple[str, ...]] = ()
    #: Budget keys the method does not use, with the reason (``--set`` on them is an error).
    unused_budget: ClassVar[dict[str, str]] = {}
    #: Whether train_epoch needs the class-balanced loader (True) or a plain shuffled one.
    balanced_loader: ClassVar[bool] = True
    #: Whether the method trains at all (False: one accumulating pass, e.g. PRNU).
    trains: ClassVar[bool] = True
    #: Whether train_epoch is written for several processes (torchrun): each process sees its
    #: share of every batch and the method averages gradients through ``spec.world``.
    supports_distributed: ClassVar[bool] = False
    #: Whether ``amp=true`` (autocast) is supported (see osma_bench/harness/precision.py).
    supports_amp: ClassVar[bool] = False
    #: Whether the method discovers unknown models itself (``discover(features, k)``, see
    #: :mod:`osma_bench.discovery`), e.g. Girish et al.; others are clustered by k-means.
    discovers: ClassVar[bool] = False

    @classmethod
    def discovery(cls):
        """With ``discovers``: the function ``(run, data_root, device, progress) -> result with
        .labels`` that discovers unknown models on a finished run's test pool (``osma-bench discover
        --method <name>``). None for methods that do not discover."""
        return None

    @classmethod
    def declared_hparams(cls) -> dict[str, HParam]:
        """The method's own hyperparameters by name (declared, or inferred from ``defaults``)."""
        declared = {p.name: p for p in cls.hparams}
        for key, value in cls.defaults.items():
            declared.setdefault(key, infer_declaration(key, value))
        return declared

    @classmethod
    def departures_for(cls, profile: str) -> dict[str, BudgetDeparture]:
        """The budget departures that apply under ``profile`` (``"*"`` first, then the profile's)."""
        return {**cls.budget_departures.get("*", {}), **cls.budget_departures.get(profile, {})}

    def __init__(self, spec: MethodSpec) -> None:
        self.spec = spec
        self.hp = dict(spec.hparams)
        self.device = spec.device
        self.world = spec.world
        #: Optional: the latest training step's losses; the harness shows them in its progress bar.
        self.step_losses: dict[str, float] = {}

    @classmethod
    def resolve_hparams(cls, profile: str, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
        """The method's own values: declared defaults, the profile's scaling, its budget departures,
        then ``overrides`` (unvalidated; the harness resolves and validates with
        :func:`osma_bench.harness.config.resolve`)."""
        resolved = {name: p.default for name, p in cls.declared_hparams().items()}
        resolved.update({k: d.value for k, d in cls.departures_for(profile).items()})
        resolved.update(cls.profile_defaults.get(profile, {}))
        resolved.update(overrides or {})
        return resolved

    def train_epoch(self, loader: Batches, epoch: int) -> dict[str, float]:
        raise NotImplementedError

    def finalize(self, train_loader: Batches, val_loader: Batches | None = None) -> None:
        """Post-hoc fitting after training (optional); ``val_loader`` holds known-class validation
        data in a fixed order, for choices a method makes on validation data only."""

    def validated(self, epoch: int, val_accuracy: float) -> None:
        """Called by the harness after each epoch's validation with that epoch's known-class
        validation accuracy (optional; the same value in every process). For methods whose later
        phase builds on their own validation-selected state, e.g. PROSER fine-tunes the selected
        epoch of its Base phase. Whatever a method keeps here belongs in its ``state_dict``."""

    def run_record(self) -> dict[str, Any]:
        """What the method chose or measured that a reader of the run needs (optional), e.g. the
        settings it selected on validation data; called after ``finalize`` and stored in run.json
        under ``method_record``. JSON-ready values only; never test-set figures."""
        return {}

    def predict(self, images: torch.Tensor) -> Prediction:
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        raise NotImplementedError

    def load_state_dict(self, state: dict[str, Any]) -> None:
        raise NotImplementedError

    def augmented_samples(self, images: torch.Tensor) -> dict[str, torch.Tensor] | None:
        """Images a method synthesises from ``images`` (for plots); None when it has none."""
        return None
