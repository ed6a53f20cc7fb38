"""ARPL+CS: adversarial reciprocal points with confusing samples, on the Base classifier.

Paper: Chen, Peng, Wang, Tian. "Adversarial Reciprocal Points Learning for Open Set Recognition",
IEEE TPAMI 2021; official code github.com/iCGY96/ARPL (``loss/ARPLoss.py``, ``core/train.py``).
Applied on POSE's Base classifier as in POSE's Table 2 (Yang et al., CVPR 2023).
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from baselines.gan import (
    GAN_HPARAMS,
    GAN_PROFILE_DEFAULTS,
    Discriminator,
    GANStateMixin,
    Generator,
    add_auxiliary_batchnorm,
    discriminator_step,
    gan_optimizers,
    generator_adversarial_loss,
    route_batchnorm,
)
from osma_bench.hparams import Float, HParam
from osma_bench.methods.api import Batches, MethodSpec, Prediction
from osma_bench.methods.common import CLASSIFIER_HPARAMS, DCTClassifierMethod, LossMeter, with_profiles


class ReciprocalPoints(nn.Module):
    """K reciprocal points ``P`` (init 0.1 N(0, 1)) and the learned radius ``R`` (init 0).

    ``distances(x)`` is the squared Euclidean distance to each point divided by the feature size;
    ``logits(x) = distances(x) - x . P_k``. Far from every reciprocal point means "known".
    """

    def __init__(self, num_classes: int, feature_dim: int) -> None:
        super().__init__()
        self.points = nn.Parameter(0.1 * torch.randn(num_classes, feature_dim))
        self.radius = nn.Parameter(torch.zeros(1))

    def distances(self, x: torch.Tensor) -> torch.Tensor:
        x = x.float()
        sq = x.pow(2).sum(1, keepdim=True) - 2.0 * x @ self.points.t() + self.points.pow(2).sum(1).unsqueeze(0)
        return sq / x.shape[1]

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.distances(x) - x.float() @ self.points.t()


def arpl_loss(points: ReciprocalPoints, features: torch.Tensor, labels: torch.Tensor, temperature: float,
              weight_pl: float) -> tuple[torch.Tensor, torch.Tensor]:
    """ARPL loss: ``CE(logits / T) + weight_pl * mean(max(0, ||x - P_y||^2 / D - R + 1))``.

    Returns ``(logits, loss)``; the second term is PyTorch's MarginRankingLoss(R, d, 1, margin 1).
    """
    logits = points.logits(features)
    loss = F.cross_entropy(logits / temperature, labels)
    known_dist = (features.float() - points.points[labels]).pow(2).mean(1)
    loss_r = F.relu(known_dist - points.radius + 1.0).mean()
    return logits, loss + weight_pl * loss_r


def confusing_sample_loss(points: ReciprocalPoints, features: torch.Tensor) -> torch.Tensor:
    """``exp(-mean entropy)`` of ``softmax(distances)`` for generated samples (ARPL's ``fake_loss``).

    Minimising it pushes fakes to be equally far from all reciprocal points.
    """
    log_p = F.log_softmax(points.distances(features), dim=1)
    return (log_p.exp() * log_p).sum(1).mean().exp()


class ARPLCS(GANStateMixin, DCTClassifierMethod):
    """ARPL with confusing samples (ARPL+CS) on Simple_CNN (DCT input); score = max logit.

    Training, per step (the official code's CS pass and plain pass, interleaved batch by batch because
    the harness gives one pass over the loader per epoch):

    1. Discriminator: BCE, real images -> 1, generated -> 0.
    2. Generator: BCE(D(G(z)), 1) + ``beta`` * exp(-entropy(softmax of the distances of the fakes'
       features to the reciprocal points)); the fakes pass through the classifier (DCT inside its
       forward, like real inputs) with the auxiliary BatchNorm.
    3. Classifier, CS step: ARPL loss on the real batch + ``beta`` * the same entropy term on fresh
       fakes (auxiliary BatchNorm).
    4. Classifier, plain step: ARPL loss on the real batch.

    Points and radius are optimised with the classifier. The StepLR schedule (per iteration, as
    Base) advances once per batch.

    Defaults (paper / official code): ``weight_pl`` 0.1, ``arpl_temperature`` 1, ``beta`` 0.1,
    ``nz`` 100, ``ngf`` = ``ndf`` = 64, GAN Adam lr 2e-4 with betas (0.5, 0.999). The official classifier
    optimiser (SGD lr 0.1, momentum 0.9, wd 1e-4, milestones [30, 60, 90, 120], 100 epochs, batch 64)
    is replaced by the Base classifier's recipe from the profile (Adam ``lr``, StepLR(``lr_step``,
    ``lr_gamma``), class-balanced batches, the profile's epochs), because POSE's Table 2 applies the
    method on the Base classifier; the 512-d Simple_CNN feature takes the place of the official
    128-d pooled feature. Base's ``temperature`` (0.1) is not used: ARPL's logits have their own.

    Per-profile scaling: ``mini`` uses ``ngf`` = ``ndf`` = 16 (a GAN for 32x32 images within a CPU budget)
    and ``smoke`` 8; everything else as the profile (epochs, lr, width) and the paper.

    ``amp=true``: the classifier's forward passes (real images and fakes) run under autocast, DCT and
    first convolution in float32; the GAN, the reciprocal points and every loss stay float32.
    """

    name: ClassVar[str] = "arpl_cs"
    paper: ClassVar[str] = "Chen et al., Adversarial Reciprocal Points Learning for Open Set Recognition, TPAMI 2021"
    hparams: ClassVar[tuple[HParam, ...]] = (
        *CLASSIFIER_HPARAMS,
        Float("weight_pl", 0.1, "weight of the reciprocal points' radius (margin) loss", low=0.0, paper="0.1"),
        Float("arpl_temperature", 1.0, "temperature of ARPL's distance logits", low=0.0, low_open=True,
              paper="1"),
        Float("beta", 0.1, "weight of the confusing-sample entropy term (generator and classifier)", low=0.0,
              paper="0.1"),
        *GAN_HPARAMS,
    )
    profile_defaults: ClassVar[dict[str, dict[str, Any]]] = with_profiles(GAN_PROFILE_DEFAULTS)
    budget_notes: ClassVar[tuple[str, ...]] = (
        "two classifier updates per batch (the CS step on fakes, then the plain ARPL step), as the official "
        "code; Base and POSE take one",
    )

    def __init__(self, spec: MethodSpec) -> None:
        super().__init__(spec)
        hp = self.hp
        add_auxiliary_batchnorm(self.model)
        self.points = ReciprocalPoints(spec.num_classes, self.model.feature_dim).to(self.device)
        self.optimizer = torch.optim.Adam(
            list(self.model.parameters()) + list(self.points.parameters()), lr=float(hp.get("lr", 1e-4)))
        self.scheduler = torch.optim.lr_scheduler.StepLR(
            self.optimizer, step_size=int(hp.get("lr_step", 500)), gamma=float(hp.get("lr_gamma", 0.9)))
        self.generator = Generator(spec.image_size, int(hp["nz"]), int(hp["ngf"])).to(self.device)
        self.discriminator = Discriminator(spec.image_size, int(hp["ndf"])).to(self.device)
        self.opt_g, self.opt_d = gan_optimizers(self.generator, self.discriminator, float(hp["gan_lr"]),
                                                (float(hp["gan_beta1"]), float(hp["gan_beta2"])))
        self.weight_pl = float(hp["weight_pl"])
        self.arpl_temperature = float(hp["arpl_temperature"])
        self.beta = float(hp["beta"])

    def _features(self, images: torch.Tensor, route: str = "main") -> torch.Tensor:
        with route_batchnorm(self.model, route), self.autocast():
            return self.model.features(images).float()

    def _classifier_step(self, loss: torch.Tensor) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()

    def train_epoch(self, loader: Batches, epoch: int) -> dict[str, float]:
        """One epoch: per batch a discriminator, generator, CS classifier and plain classifier step."""
        self.model.train()
        self.generator.train()
        self.discriminator.train()
        meter = LossMeter()
        for images, labels in loader:
            batch = images.shape[0]
            fake = self.generator(self.generator.sample_noise(batch, self.device))
            loss_d = discriminator_step(self.discriminator, self.opt_d, images, fake)

            self.opt_g.zero_grad(set_to_none=True)
            loss_g = generator_adversarial_loss(self.discriminator, fake) + self.beta * confusing_sample_loss(
                self.points, self._features(fake, "aux"))
            loss_g.backward()
            self.opt_g.step()

            _, loss_real = arpl_loss(self.points, self._features(images), labels, self.arpl_temperature,
                                     self.weight_pl)
            with torch.no_grad():
                fresh = self.generator(self.generator.sample_noise(batch, self.device))
            loss_fake = confusing_sample_loss(self.points, self._features(fresh, "aux"))
            self._classifier_step(loss_real + self.beta * loss_fake)

            _, loss_plain = arpl_loss(self.points, self._features(images), labels, self.arpl_temperature,
                                      self.weight_pl)
            self._classifier_step(loss_plain)
            self.scheduler.step()
            self.step_losses = meter.add(loss_arpl=loss_plain.detach(), loss_cs=loss_fake.detach(),
                                         loss_g=loss_g.detach(), loss_d=loss_d)
        return meter.means()

    @torch.no_grad()
    def predict(self, images: torch.Tensor) -> Prediction:
        """ARPL logits (distance minus dot product), score = max logit, the 512-d feature."""
        self.model.eval()
        features = self._features(images)
        logits = self.points.logits(features)
        return Prediction(logits, logits.double().amax(dim=1), features)

    def state_dict(self) -> dict[str, Any]:
        return {
            **super().state_dict(),
            "points": self.points.state_dict(),
            **self.gan_state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.points.load_state_dict(state["points"])
        self.load_gan_state_dict(state)

    def augmented_samples(self, images: torch.Tensor) -> dict[str, torch.Tensor] | None:
        """Confusing samples from the generator, as many as ``images``."""
        return {"confusing samples": self.generator_samples(images.shape[0])}
