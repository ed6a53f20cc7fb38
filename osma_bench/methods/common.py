"""Training pieces shared by Base and POSE (one implementation, imported by both).

:class:`DCTClassifierMethod` owns POSE's classifier (Simple_CNN on the unnormalised DCT), its
Adam optimiser with a StepLR stepped every iteration, the temperature-scaled cross-entropy, mixed
precision and the maximum-softmax-probability score. Base is this class plus a training loop;
POSE adds its augmentation models.

Mixed precision (``amp=true``, ``osma_bench.harness.precision``): the classifier's forward passes
run under ``torch.autocast`` (bfloat16 by default); the DCT and the first convolution block run in
float32 inside ``SimpleCNN``, and every loss, logit returned by ``predict`` and score is computed
in float32 (float64 for the softmax score). Parameters, gradients and optimiser states stay
float32 (autocast casts weights per operation).

Temperature: the paper trains with cross-entropy on ``z / T`` (T = 0.1); the official code applies
the softmax twice (cross-entropy of ``softmax(z) / T``). By default the suite trains on ``z / T``,
reports ``z / T`` as the logits and scores with ``max softmax(z / T)`` (computed in float64).
``legacy=true`` reproduces the official code: the double softmax in the loss, logits ``z``, the
score ``max softmax(z)`` computed in float32 as the official code does (it saturates to exactly
1.0 far sooner than float64, which creates the ties its evaluation then orders), and training
losses on the feature after dropout (the official model applies dropout in place on the feature
it returns).
"""

from __future__ import annotations

import contextlib
from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from osma_bench.harness.precision import amp_dtype
from osma_bench.hparams import Bool, Choice, Float, HParam, Int
from osma_bench.methods.api import Method, MethodSpec, Prediction
from osma_bench.nn import SimpleCNN

#: Hyperparameters every DCT classifier method shares (Base, POSE and the open-set baselines built on
#: Base). The shared budget (lr, StepLR, epochs, images per class) comes from the profile.
CLASSIFIER_HPARAMS: tuple[HParam, ...] = (
    Int("width", 64, "Simple_CNN channels of the first stage (doubling per stage)", low=1, high=4096,
        paper="64; mini 32, smoke 8"),
    Float("temperature", 0.1, "temperature T of the classifier's cross-entropy on z / T", low=0.0, low_open=True,
          paper="0.1"),
    Int("feature_dim", 512, "size of the feature vector before the head", low=1, paper="512"),
    Float("dropout", 0.2, "dropout on the feature before the head", low=0.0, high=1.0, high_open=True,
          paper="0.2"),
    Choice("input_transform", "dct", ("dct", "dct_ortho", "none"), "input of Simple_CNN: the unnormalised "
           "2-D DCT (POSE), the orthonormal DCT, or pixels", paper="dct"),
    Bool("legacy", False, "reproduce the official POSE code (double softmax, logits z, float32 MSP; POSE: the "
         "official step's forwards and draws, eval-mode training after epoch 0); the run also writes the "
         "official evaluation's metrics", paper="off: the official code's behaviour is a switch"),
    Bool("amp", False, "mixed precision (autocast) for the classifier; the DCT and first convolution stay "
         "float32", paper="off"),
    Choice("amp_dtype", "bfloat16", ("bfloat16", "float16"), "autocast dtype when amp is on", paper="-"),
)
#: The profiles' scaling of the classifier (Simple_CNN width: paper 64, mini 32, smoke 8).
CLASSIFIER_PROFILE_DEFAULTS: dict[str, dict[str, Any]] = {"paper": {"width": 64}, "mini": {"width": 32},
                                                           "smoke": {"width": 8}}


def with_profiles(extra: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The classifier's per-profile scaling merged with a subclass's own (``extra`` wins)."""
    names = set(CLASSIFIER_PROFILE_DEFAULTS) | set(extra)
    return {n: {**CLASSIFIER_PROFILE_DEFAULTS.get(n, {}), **extra.get(n, {})} for n in names}


class DCTClassifierMethod(Method):
    """Simple_CNN on the DCT input, trained with temperature-scaled CE; score = MSP.

    Subclasses implement ``train_epoch`` with :meth:`classifier_step` helpers and may extend
    :meth:`state_dict` / :meth:`load_state_dict`.
    """

    hparams: ClassVar[tuple[HParam, ...]] = CLASSIFIER_HPARAMS
    profile_defaults: ClassVar[dict[str, dict[str, Any]]] = CLASSIFIER_PROFILE_DEFAULTS
    supports_distributed: ClassVar[bool] = True
    #: ``amp=true`` trains the classifier under autocast (see the module docstring).
    supports_amp: ClassVar[bool] = True

    def __init__(self, spec: MethodSpec) -> None:
        super().__init__(spec)
        hp = self.hp
        self.model = SimpleCNN(
            spec.num_classes,
            image_size=spec.image_size,
            input_transform=str(hp.get("input_transform", "dct")),
            width=int(hp.get("width", 64)),
            feature_dim=int(hp.get("feature_dim", 512)),
            dropout=float(hp.get("dropout", 0.2)),
        ).to(self.device)
        # Several processes: global BatchNorm statistics and rank 0's initial weights.
        self.model = self.world.prepare_module(self.model)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=float(hp.get("lr", 1e-4)))
        self.scheduler = torch.optim.lr_scheduler.StepLR(
            self.optimizer, step_size=int(hp.get("lr_step", 500)), gamma=float(hp.get("lr_gamma", 0.9))
        )
        self.temperature = float(hp.get("temperature", 0.1))
        self.legacy = bool(hp.get("legacy", False))
        self.amp = bool(hp.get("amp", False))
        self.amp_dtype = amp_dtype(hp.get("amp_dtype", "bfloat16"))

    # -- pieces for training loops -------------------------------------------------------------

    def autocast(self) -> contextlib.AbstractContextManager:
        """Autocast to ``amp_dtype`` when ``amp`` is on (the DCT and first convolution stay float32)."""
        if not self.amp:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype)

    def set_train_mode(self, epoch: int) -> None:
        """Put the classifier in training mode (legacy POSE keeps it in eval mode after epoch 0)."""
        self.model.train()

    def forward_train(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Training forward: ``(logits, feature)`` under mixed precision when enabled.

        The feature is the 512-d vector before dropout. Legacy: the official Simple_CNN applies
        dropout in place on the feature, so its training losses see the dropped-out feature.
        """
        with self.autocast():
            feature = self.model.features(images)
            if self.legacy:
                feature = self.model.dropout(feature)
                return self.model.head(feature), feature
            return self.model.head(self.model.dropout(feature)), feature

    @contextlib.contextmanager
    def running_stats_frozen(self):
        """Forward passes inside use batch statistics but leave BatchNorm running statistics as
        they are (momentum 0), so the statistics used at test time describe known images only."""
        norms = [m for m in self.model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
        saved = [m.momentum for m in norms]
        for m in norms:
            m.momentum = 0.0
        try:
            yield
        finally:
            for m, momentum in zip(norms, saved, strict=True):
                m.momentum = momentum

    def classification_loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Cross-entropy on ``z / T``; legacy: on ``softmax(z) / T`` as the official code."""
        logits = logits.float()
        if self.legacy:
            return F.cross_entropy(logits.softmax(dim=1) / self.temperature, labels)
        return F.cross_entropy(logits / self.temperature, labels)

    def classifier_update(self, loss: torch.Tensor) -> None:
        """One optimiser and scheduler step of the classifier (the scheduler counts iterations)."""
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.world.average_gradients(self.model.parameters())
        self.optimizer.step()
        self.scheduler.step()

    # -- Method API -----------------------------------------------------------------------------

    @torch.no_grad()
    def predict(self, images: torch.Tensor) -> Prediction:
        """Logits ``z / T`` (legacy: ``z``), score = maximum softmax probability (float64; legacy:
        the float32 softmax's maximum, as the official code), 512-d feature."""
        self.model.eval()
        with self.autocast():
            logits, features = self.model(images)
        logits = logits.float()
        if self.legacy:
            # The official score: the maximum of its float32 softmax, which saturates to exactly 1.0
            # at far smaller logit margins than float64 does (ties the legacy metrics then order).
            score = logits.softmax(dim=1).amax(dim=1).double()
        else:
            logits = logits / self.temperature
            score = logits.double().softmax(dim=1).amax(dim=1)
        return Prediction(logits, score, features.float())

    def state_dict(self) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])


class LossMeter:
    """Accumulates per-step losses (as Python floats) for the epoch summary and the progress bar."""

    def __init__(self) -> None:
        self.sums: dict[str, float] = {}
        self.counts: dict[str, int] = {}
        self.last: dict[str, float] = {}

    def add(self, **values: torch.Tensor | float) -> dict[str, float]:
        """Record one step's losses; returns them as floats."""
        self.last = {key: float(value) for key, value in values.items()}
        for key, value in self.last.items():
            self.sums[key] = self.sums.get(key, 0.0) + value
            self.counts[key] = self.counts.get(key, 0) + 1
        return self.last

    def means(self) -> dict[str, float]:
        """Mean of each loss over the steps where it was computed."""
        return {key: self.sums[key] / max(self.counts[key], 1) for key in self.sums}
