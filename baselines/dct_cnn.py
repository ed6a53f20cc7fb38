"""DCT-CNN: Frank et al. (ICML 2020), "Leveraging Frequency Analysis for Deep Fake Image Recognition".

Official code: github.com/RUB-SysSec/GANDCTAnalysis (Keras); read for the details, not copied.

Input: the per-channel orthonormal 2-D DCT-II of the raw image (pixel values 0..255), log-scaled as
``log(|c| + 1e-12)``, then standardised coefficient by coefficient with the mean and standard deviation
of the TRAINING partition only (the statistics are part of the saved state). Model: the paper's
small CNN, Conv(3) - Conv(8) - AvgPool(2) - Conv(16) - AvgPool(2) - Conv(32) - Flatten - Dense(K),
3x3 convolutions with "same" padding and ReLU, Glorot-uniform initialisation (Keras defaults).
Softmax cross-entropy, Adam lr 1e-3, batch 32, 50 epochs with early stopping (patience 5) on the
validation data. Score (higher = known): the maximum softmax probability.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from osma_bench.hparams import BudgetDeparture, HParam, Int, IntList
from osma_bench.methods.api import Batches, Method, MethodSpec, Prediction
from osma_bench.methods.batching import rebatch
from osma_bench.methods.common import LossMeter
from osma_bench.nn import dct_2d

LOG_EPS = 1e-12


def log_dct(images: torch.Tensor) -> torch.Tensor:
    """``log(|DCT_ortho(x_255)| + 1e-12)`` per channel, for images in [-1, 1] (float64 for accuracy)."""
    pixels = (images.double() + 1.0) * 127.5
    return torch.log(dct_2d(pixels, norm="ortho").abs() + LOG_EPS)


class DCTStandardiser(nn.Module):
    """Per-coefficient standardisation with statistics accumulated over the training data only.

    ``accumulate`` adds a batch of log-DCT features to float64 running sums; ``freeze`` turns them
    into ``mean`` and ``std`` buffers (population std; a zero std becomes 1); ``forward`` applies them.
    """

    def __init__(self, channels: int, size: int) -> None:
        super().__init__()
        shape = (channels, size, size)
        self.register_buffer("count", torch.zeros((), dtype=torch.float64))
        self.register_buffer("sum", torch.zeros(shape, dtype=torch.float64))
        self.register_buffer("sum_sq", torch.zeros(shape, dtype=torch.float64))
        self.register_buffer("mean", torch.zeros(shape))
        self.register_buffer("std", torch.ones(shape))
        self.register_buffer("frozen", torch.zeros((), dtype=torch.bool))

    @torch.no_grad()
    def accumulate(self, features: torch.Tensor) -> None:
        if bool(self.frozen):
            raise RuntimeError("DCTStandardiser: statistics are frozen")
        f = features.double()
        self.count += f.shape[0]
        self.sum += f.sum(dim=0)
        self.sum_sq += (f * f).sum(dim=0)

    @torch.no_grad()
    def freeze(self) -> None:
        if float(self.count) < 1:
            raise RuntimeError("DCTStandardiser: no training data accumulated")
        mean = self.sum / self.count
        var = (self.sum_sq / self.count - mean * mean).clamp_min(0.0)
        std = var.sqrt()
        self.mean.copy_(mean.float())
        self.std.copy_(torch.where(std > 0, std, torch.ones_like(std)).float())
        self.frozen.fill_(True)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return ((features - self.mean.double()) / self.std.double()).float()


class FrankCNN(nn.Module):
    """Frank et al.'s small CNN on standardised log-DCT input; ``forward`` -> (logits, feature)."""

    def __init__(self, num_classes: int, image_size: int, channels: tuple[int, ...] = (3, 8, 16, 32)) -> None:
        super().__init__()
        c1, c2, c3, c4 = channels
        self.body = nn.Sequential(
            nn.Conv2d(3, c1, 3, padding=1), nn.ReLU(),
            nn.Conv2d(c1, c2, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2),
            nn.Conv2d(c2, c3, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2),
            nn.Conv2d(c3, c4, 3, padding=1), nn.ReLU(),
        )
        self.head = nn.Linear(c4 * (image_size // 4) ** 2, num_classes)
        for m in self.modules():  # Keras defaults: Glorot-uniform kernels, zero biases
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feature = self.body(x).flatten(1)
        return self.head(feature), feature


class DCTCNN(Method):
    """Frank et al., ICML 2020: small CNN on the standardised log-magnitude orthonormal DCT; score = MSP.

    Defaults (paper): Adam ``lr`` 1e-3, ``batch_size`` 32, ``channels`` [3, 8, 16, 32], 50 training
    epochs with early stopping of patience 5 on validation accuracy.

    Training statistics: epoch 0 of a run is the statistics pass (Frank et al. compute them over the
    training set before training): it streams the whole training partition once, accumulates the
    per-coefficient mean and standard deviation and makes no gradient step; training starts at
    epoch 1. So ``epochs`` counts that pass: paper 51 (1 + 50), mini 13 (1 + the mini budget of 12),
    smoke 3 (1 + 2).

    Early stopping: after every epoch the harness measures known-class validation accuracy and keeps
    the best epoch's checkpoint (the model early stopping would restore); the method cannot see
    validation data during training, so it does not cut the loop short (the paper's patience of 5 is
    not a setting here; the remaining epochs only cost time).

    Per-profile scaling: none besides ``epochs`` (the network is already tiny).
    """

    name: ClassVar[str] = "dct_cnn"
    paper: ClassVar[str] = ("Frank, Eisenhofer, Schoenherr, Fischer, Kolossa, Holz. Leveraging Frequency Analysis "
                            "for Deep Fake Image Recognition, ICML 2020")
    balanced_loader: ClassVar[bool] = False
    hparams: ClassVar[tuple[HParam, ...]] = (
        Int("batch_size", 32, "images per optimiser step (the shuffled stream re-cut)", low=1, paper="32"),
        IntList("channels", [3, 8, 16, 32], "channels of the four convolution stages", length=4, low=1,
                paper="[3, 8, 16, 32]"),
    )
    budget_departures: ClassVar[dict[str, dict[str, BudgetDeparture]]] = {
        "*": {"lr": BudgetDeparture(1.0e-3, "Frank et al.'s Adam learning rate (constant)")},
        "paper": {"epochs": BudgetDeparture(51, "1 statistics pass + the paper's 50 epochs")},
        "mini": {"epochs": BudgetDeparture(13, "1 statistics pass + the profile's 12 epochs")},
        "smoke": {"epochs": BudgetDeparture(3, "1 statistics pass + the profile's 2 epochs")},
    }
    unused_budget: ClassVar[dict[str, str]] = {
        "lr_step": "its learning rate is constant (Frank et al.)",
        "lr_gamma": "its learning rate is constant (Frank et al.)",
    }

    def __init__(self, spec: MethodSpec) -> None:
        super().__init__(spec)
        channels = tuple(int(c) for c in self.hp["channels"])
        if len(channels) != 4:
            raise ValueError(f"channels must list 4 widths, got {self.hp['channels']!r}")
        self.standardiser = DCTStandardiser(3, spec.image_size).to(self.device)
        self.model = FrankCNN(spec.num_classes, spec.image_size, channels).to(self.device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=float(self.hp["lr"]))

    def inputs(self, images: torch.Tensor) -> torch.Tensor:
        """Standardised log-DCT of images in [-1, 1] (statistics must be frozen)."""
        return self.standardiser(log_dct(images))

    def train_epoch(self, loader: Batches, epoch: int) -> dict[str, float]:
        """The statistics pass (first call) or one epoch of cross-entropy on batches of ``batch_size``."""
        if not bool(self.standardiser.frozen):
            images_seen = 0
            for images, _ in loader:
                self.standardiser.accumulate(log_dct(images))
                images_seen += len(images)
            self.standardiser.freeze()
            return {"stats_images": float(images_seen)}
        self.model.train()
        meter = LossMeter()
        for images, labels in rebatch(loader, int(self.hp["batch_size"])):
            logits, _ = self.model(self.inputs(images))
            loss = F.cross_entropy(logits, labels)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            self.step_losses = meter.add(loss_cls=loss.detach())
        return meter.means()

    @torch.no_grad()
    def predict(self, images: torch.Tensor) -> Prediction:
        self.model.eval()
        logits, feature = self.model(self.inputs(images))
        return Prediction(logits, logits.double().softmax(dim=1).amax(dim=1), feature)

    def state_dict(self) -> dict[str, Any]:
        return {"model": self.model.state_dict(), "standardiser": self.standardiser.state_dict(),
                "optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.standardiser.load_state_dict(state["standardiser"])
        self.optimizer.load_state_dict(state["optimizer"])
