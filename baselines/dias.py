"""DIAS: the difficulty-aware simulator for open-set recognition, on the Base classifier.

Paper: WonJun Moon, Junho Park, Hyun Seok Seong, Cheol-Ho Cho, Jae-Pil Heo. "Difficulty-Aware Simulator for Open Set Recognition", ECCV 2022;
official code github.com/wjun0830/Difficulty-Aware-Simulator (``osr.py``, ``models/models.py``).
Applied on POSE's Base classifier as in POSE's Table 2 (Yang et al., CVPR 2023).
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F

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
from baselines.proser import features_from_stage, features_until_stage
from osma_bench.errors import OsmaError
from osma_bench.hparams import Choice, Float, HParam
from osma_bench.methods.api import Batches, MethodSpec
from osma_bench.methods.base_cnn import BaseMethod
from osma_bench.methods.common import CLASSIFIER_HPARAMS, DCTClassifierMethod, LossMeter, with_profiles


def smoothed_cross_entropy(logits: torch.Tensor, labels: torch.Tensor, smoothing: float) -> torch.Tensor:
    """Label-smoothed CE with target ``(1 - s) onehot + s / K`` (DIAS's SmoothCrossEntropy).

    ``smoothing`` 1 is the cross-entropy to the uniform distribution (the label plays no part).
    """
    return F.cross_entropy(logits.float(), labels, label_smoothing=float(smoothing))


def copycat_pull_loss(copycat_maps: list[torch.Tensor], classifier_maps: list[torch.Tensor]) -> torch.Tensor:
    """Mean over the given stages of the L1 distance between copycat and (detached) classifier maps."""
    losses = [F.l1_loss(c.flatten(1), t.detach().flatten(1)) for c, t in zip(copycat_maps, classifier_maps,
                                                                             strict=True)]
    return torch.stack(losses).mean()


def simulated_sample_loss(logits_stage1: torch.Tensor, logits_stage2: torch.Tensor, logits_final: torch.Tensor,
                          labels: torch.Tensor, smoothing: float, smoothing_final: float) -> torch.Tensor:
    """Mean of the smoothed CEs of the classifier on copycat features injected at stage 1, stage 2
    (``smoothing``) and at the final feature (``smoothing_final``)."""
    return (smoothed_cross_entropy(logits_stage1, labels, smoothing)
            + smoothed_cross_entropy(logits_stage2, labels, smoothing)
            + smoothed_cross_entropy(logits_final, labels, smoothing_final)) / 3.0


class DIAS(GANStateMixin, DCTClassifierMethod):
    """DIAS on Simple_CNN (DCT input): GAN stage, copycat stage with smoothed losses; score = MSP.

    Two networks: the classifier (net2, this method's Base model, with an auxiliary BatchNorm for
    simulated samples) and a copycat (net1, a composed :class:`~osma_bench.methods.base_cnn.BaseMethod`
    with its own optimiser). Per batch (the official GAN pass and copycat pass, interleaved batch by
    batch because the harness gives one pass over the loader per epoch):

    1. GAN stage. Discriminator: BCE. Generator: BCE(D(G(z)), 1) - ``beta`` * CE-to-uniform of the
       classifier on G(z) (hard fakes the classifier is sure about). Classifier: Base CE on the real batch +
       ``beta`` * CE-to-uniform on fresh fakes (auxiliary BatchNorm; fakes pass the DCT inside forward).
    2. Copycat stage. Copycat (train mode; classifier in eval mode): Base CE + ``pull_ratio`` * mean
       L1 between its stage-1 / stage-2 feature maps and the classifier's. Classifier (train mode;
       copycat in eval mode): Base CE + ``fake_ratio`` * mean of smoothed CEs of the classifier on the
       copycat's stage-1 and stage-2 maps injected into its own later stages (``smoothing``) and on the
       copycat's final feature through its head (``smoothing_final``).

    Simple_CNN's stages 1 and 2 stand for the official classifier32's first two conv groups. All
    classifier logits are Base's effective logits ``z / T`` (T = 0.1); score = MSP of the classifier.

    Copycat features: the official code passes them through the classifier's real-data BatchNorm
    (updating its running statistics with simulated samples); by default they use the auxiliary
    BatchNorm like the GAN's samples (``copycat_bn=aux``); ``copycat_bn=main`` reproduces the official code.

    Defaults (paper / official code): ``beta`` 0.1, ``fake_ratio`` 0.1, ``pull_ratio`` 1.0,
    ``smoothing`` 0.5, ``smoothing_final`` 1.0, ``nz`` 100, ``ngf`` = ``ndf`` = 64, GAN Adam 2e-4, betas
    (0.5, 0.999). The official classifier optimiser (SGD 0.1, momentum 0.9, wd 1e-4, milestones
    [60, 120, 180, 240], 200 epochs; or Adam 1e-3) is replaced by Base's recipe from the profile
    (Adam ``lr``, StepLR, the profile's epochs) for both networks, as the method is applied on the Base
    classifier. Per-profile scaling: ``mini`` uses ``ngf`` = ``ndf`` = 16 (the GAN within a CPU budget), ``smoke`` 8.

    ``amp=true``: the forward passes of the classifier and of the copycat run under autocast (DCT and
    first convolution in float32); the GAN and every loss stay float32.
    """

    name: ClassVar[str] = "dias"
    paper: ClassVar[str] = "Moon et al., Difficulty-Aware Simulator for Open Set Recognition (DIAS), ECCV 2022"
    hparams: ClassVar[tuple[HParam, ...]] = (
        *CLASSIFIER_HPARAMS,
        Float("beta", 0.1, "weight of the CE-to-uniform term on the GAN's fakes", low=0.0, paper="0.1"),
        Float("fake_ratio", 0.1, "weight of the copycat's simulated features in the classifier's loss",
              low=0.0, paper="0.1"),
        Float("pull_ratio", 1.0, "weight of the copycat's L1 pull towards the classifier's feature maps",
              low=0.0, paper="1.0"),
        Float("smoothing", 0.5, "label smoothing towards uniform for the copycat's stage-1/2 maps", low=0.0,
              high=1.0, paper="0.5"),
        Float("smoothing_final", 1.0, "label smoothing for the copycat's final feature", low=0.0, high=1.0,
              paper="1.0"),
        Choice("copycat_bn", "aux", ("aux", "main"), "BatchNorm for the copycat's features in the classifier "
               "(main = the official code's, updating real-data statistics)", paper="main (official code)"),
        *GAN_HPARAMS,
    )
    profile_defaults: ClassVar[dict[str, dict[str, Any]]] = with_profiles(GAN_PROFILE_DEFAULTS)
    budget_notes: ClassVar[tuple[str, ...]] = (
        "two classifier updates per batch (GAN stage and copycat stage), plus one copycat update, as the "
        "official code; Base and POSE take one",
    )

    def __init__(self, spec: MethodSpec) -> None:
        super().__init__(spec)
        hp = self.hp
        if hp["copycat_bn"] not in ("aux", "main"):
            raise OsmaError(f"dias: copycat_bn must be 'aux' or 'main', got {hp['copycat_bn']!r}")
        add_auxiliary_batchnorm(self.model)
        self.copycat = BaseMethod(spec)
        self.generator = Generator(spec.image_size, int(hp["nz"]), int(hp["ngf"])).to(self.device)
        self.discriminator = Discriminator(spec.image_size, int(hp["ndf"])).to(self.device)
        self.opt_g, self.opt_d = gan_optimizers(self.generator, self.discriminator, float(hp["gan_lr"]),
                                                (float(hp["gan_beta1"]), float(hp["gan_beta2"])))

    def _logits(self, images: torch.Tensor, route: str = "main") -> torch.Tensor:
        with route_batchnorm(self.model, route):
            logits, _ = self.forward_train(images)
        return logits.float() / self.temperature

    def _gan_stage(self, images: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        beta = float(self.hp["beta"])
        fake = self.generator(self.generator.sample_noise(len(labels), self.device))
        loss_d = discriminator_step(self.discriminator, self.opt_d, images, fake)
        self.opt_g.zero_grad(set_to_none=True)
        uniform_g = smoothed_cross_entropy(self._logits(fake, "aux"), labels, 1.0)
        loss_g = generator_adversarial_loss(self.discriminator, fake) - beta * uniform_g
        loss_g.backward()
        self.opt_g.step()

        logits, _ = self.forward_train(images)
        loss_real = self.classification_loss(logits, labels)
        with torch.no_grad():
            fresh = self.generator(self.generator.sample_noise(len(labels), self.device))
        uniform = smoothed_cross_entropy(self._logits(fresh, "aux"), labels, 1.0)
        self.optimizer.zero_grad(set_to_none=True)
        (loss_real + beta * uniform).backward()
        self.optimizer.step()
        return {"loss_d": loss_d, "loss_g": loss_g.detach(), "loss_uniform": uniform.detach()}

    def _maps(self, model, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Stage-1 map, stage-2 map and the 512-d feature of one forward pass."""
        h1 = features_until_stage(model, images, 1)
        h2 = model.stages[1:3](h1)
        return h1, h2, features_from_stage(model, h2, 2)

    def _copycat_stage(self, images: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        net1, net2 = self.copycat.model, self.model
        net1.train()
        net2.eval()
        with torch.no_grad(), self.autocast():
            t1, t2, _ = self._maps(net2, images)
        with self.autocast():
            c1, c2, feat = self._maps(net1, images)
            out1 = net1.head(net1.dropout(feat))
        loss_pull = copycat_pull_loss([c1.float(), c2.float()], [t1.float(), t2.float()])
        loss_copycat = self.copycat.classification_loss(out1, labels) + float(self.hp["pull_ratio"]) * loss_pull
        self.copycat.optimizer.zero_grad(set_to_none=True)
        loss_copycat.backward()
        self.copycat.optimizer.step()

        net1.eval()
        net2.train()
        with torch.no_grad(), self.autocast():
            c1, c2, feat = self._maps(net1, images)
        logits, _ = self.forward_train(images)
        loss_real = self.classification_loss(logits, labels)
        with route_batchnorm(net2, str(self.hp["copycat_bn"])), self.autocast():
            out_s1 = net2.head(net2.dropout(features_from_stage(net2, c1, 1)))
            out_s2 = net2.head(net2.dropout(features_from_stage(net2, c2, 2)))
        out_final = net2.head(net2.dropout(feat.float()))
        loss_sim = simulated_sample_loss(out_s1.float() / self.temperature, out_s2.float() / self.temperature,
                                         out_final.float() / self.temperature, labels,
                                         float(self.hp["smoothing"]), float(self.hp["smoothing_final"]))
        self.optimizer.zero_grad(set_to_none=True)
        (loss_real + float(self.hp["fake_ratio"]) * loss_sim).backward()
        self.optimizer.step()
        return {"loss_cls": loss_real.detach(), "loss_copycat": loss_copycat.detach(), "loss_sim": loss_sim.detach()}

    def train_epoch(self, loader: Batches, epoch: int) -> dict[str, float]:
        """One epoch: per batch the GAN stage, then the copycat stage; schedulers step once per batch."""
        self.generator.train()
        self.discriminator.train()
        meter = LossMeter()
        for images, labels in loader:
            self.model.train()
            losses = self._gan_stage(images, labels)
            losses.update(self._copycat_stage(images, labels))
            self.scheduler.step()
            self.copycat.scheduler.step()
            self.step_losses = meter.add(**losses)
        return meter.means()

    def state_dict(self) -> dict[str, Any]:
        return {
            **super().state_dict(),
            "copycat": self.copycat.state_dict(),
            **self.gan_state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.copycat.load_state_dict(state["copycat"])
        self.load_gan_state_dict(state)

    def augmented_samples(self, images: torch.Tensor) -> dict[str, torch.Tensor] | None:
        """Samples from the simulator's generator, as many as ``images``."""
        return {"simulated samples": self.generator_samples(images.shape[0])}
