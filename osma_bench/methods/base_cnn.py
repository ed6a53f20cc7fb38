"""Base: POSE's "Base" model, Simple_CNN on the DCT trained with cross-entropy only.

Paper: Tianyun Yang, Danding Wang, Fan Tang, Xinying Zhao, Juan Cao, Sheng Tang. "Progressive Open Space Expansion for Open-Set Model Attribution",
CVPR 2023 (Table 2, row "Base"); official code github.com/ICTMCG/POSE (``--mode baseline``).
"""

from __future__ import annotations

from typing import ClassVar

from osma_bench.methods.api import Batches
from osma_bench.methods.common import DCTClassifierMethod, LossMeter


class BaseMethod(DCTClassifierMethod):
    """Simple_CNN on the unnormalised 2-D DCT, cross-entropy with temperature T; score = MSP.

    Defaults (paper): T = 0.1, feature 512-d, dropout 0.2; from the profile: Adam ``lr`` (1e-4),
    StepLR(``lr_step`` = 500 iterations, ``lr_gamma`` = 0.9) stepped every iteration, ``width`` 64,
    class-balanced batches of ``per_class`` = 8 images per known class, 30 epochs.

    Per-profile scaling: the budget (lr, StepLR, epochs, images per class) from the profile files
    (``mini``: lr 1e-3 and StepLR(50, 0.9) because an epoch has about 19 steps instead of about
    509); ``width`` is the classifier's own scaling (paper 64, mini 32, smoke 8).

    ``legacy=true`` trains on cross-entropy of ``softmax(z) / T`` as the official code and scores
    with ``max softmax(z)``; ``amp=true`` enables mixed precision (bfloat16 by default, DCT and the
    first convolution in float32).
    """

    name: ClassVar[str] = "base"
    paper: ClassVar[str] = "Yang et al., Progressive Open Space Expansion (POSE), CVPR 2023: Base"

    def train_epoch(self, loader: Batches, epoch: int) -> dict[str, float]:
        """One pass of CE training over the class-balanced loader."""
        self.set_train_mode(epoch)
        meter = LossMeter()
        for images, labels in loader:
            logits, _ = self.forward_train(images)
            loss = self.classification_loss(logits, labels)
            self.classifier_update(loss)
            self.step_losses = meter.add(loss_cls=loss.detach())
        return meter.means()
