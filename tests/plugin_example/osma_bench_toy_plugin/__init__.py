"""A toy outside method for osma-bench: a linear classifier on 4x4 average-pooled pixels.

It exists to prove the plugin path (an outside package registering under the entry-point group
``osma_bench.methods`` and run by name with ``osma-bench run --method toy``) and to serve as the
smallest complete example for docs/METHODS_GUIDE.md. It is not a method from a paper.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from osma_bench.hparams import HParam, Int
from osma_bench.methods.api import Method, MethodSpec, Prediction


class ToyMethod(Method):
    """Linear softmax classifier on 4x4-pooled RGB; score = maximum softmax probability.

    Defaults: ``lr`` comes from the profile (Adam); ``pool`` = 4 (side of the pooled image).
    """

    name: ClassVar[str] = "toy"
    paper: ClassVar[str] = "none (example plugin)"
    hparams: ClassVar[tuple[HParam, ...]] = (
        Int("pool", 4, "side of the average-pooled image the linear layer sees", low=1, high=64),
    )
    unused_budget: ClassVar[dict[str, str]] = {"lr_step": "constant learning rate",
                                               "lr_gamma": "constant learning rate"}

    def __init__(self, spec: MethodSpec) -> None:
        super().__init__(spec)
        pool = int(self.hp["pool"])
        self.net = nn.Sequential(nn.AdaptiveAvgPool2d(pool), nn.Flatten(), nn.Linear(3 * pool * pool, spec.num_classes))
        self.net.to(self.device)
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=float(self.hp.get("lr", 1e-3)))

    def train_epoch(self, loader, epoch: int) -> dict[str, float]:
        self.net.train()
        total, steps = 0.0, 0
        for images, labels in loader:
            loss = nn.functional.cross_entropy(self.net(images), labels)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            total += loss.item()
            steps += 1
        return {"loss": total / max(steps, 1)}

    @torch.no_grad()
    def predict(self, images: torch.Tensor) -> Prediction:
        self.net.eval()
        logits = self.net(images)
        return Prediction(logits, logits.softmax(dim=1).amax(dim=1), None)

    def state_dict(self) -> dict[str, Any]:
        return {"net": self.net.state_dict(), "optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.net.load_state_dict(state["net"])
        self.optimizer.load_state_dict(state["optimizer"])
