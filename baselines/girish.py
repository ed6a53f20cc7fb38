"""Girish et al. (ICCV 2021): "Towards discovery and attribution of open-world GAN generated images".

Official code: github.com/Sharath-girish/openworld-gan (read for the details, not copied).

The classifier is a ResNet backbone with a fully connected head 2048 -> 512 -> 512 -> 128 (ReLU and
dropout 0.5 after each layer); the 128-d output is the feature and a linear layer on it gives the
logits. It trains with cross-entropy and Adam (lr 1e-4) on plain shuffled batches: the official code
uses batches of 256; here round 1 trains on the harness's batches (``per_class`` x K images: paper
8 x 15 = 120) and the later discovery rounds on batches of ``eval_batch_size`` (256 paper, 512 mini).

Unknown detection (the score, higher = known): features are standardised with the training
set's mean and standard deviation, then winner-take-all hashed (:mod:`baselines.wta_hash`, 2048
permutations, window 2). For every known class, the threshold is the 0.9 quantile of the hash
distances between its training images; an image is in-distribution for the class when its mean
hash distance to the class's training images is below that threshold. The score is
``max_c (threshold_c - mean distance_c) / num_hashes``: positive exactly when Girish et al. call
the image known. Pairwise distances for the quantiles are streamed in blocks (bounded memory);
mean distances need no pairwise matrix (see :mod:`baselines.wta_hash`).

Discovery (k-means over-clustering, SCC merging, SVM refinement, rounds that retrain on the
discovered clusters with weighted cross-entropy) works on the unlabelled test pool, so it is not
part of a harness run, which must never see test images while training: the run trains round 1
on the known classes only and writes the features; ``osma-bench discover --method girish`` then
runs the discovery rounds on the finished run's checkpoint and test pool
(:mod:`osma_bench.discovery.girish_rounds`). This class provides the pieces both need:
:meth:`embed`, :meth:`fit_detector`, :meth:`reset_classifier` and :meth:`train_weighted`.

Defaults (paper): ResNet-50 (``depth`` 50, ``width`` 64), Adam lr 1e-4, 50 epochs in round 1
(paper profile), 100 epochs in each later round, 4 rounds, 2048 hashes, window 2, quantile 0.9,
500 k-means clusters, SVM purity threshold 0.5 and size threshold 100, RBF SVMs with ``gamma``
'auto' (1 / features: ThunderSVM's default, which the official code uses; scikit-learn's own
default would be 'scale').
Per-profile scaling (documented, the method is the same):
- ``mini`` (32x32 images, ~22 sources, a 2-core CPU): a narrow ResNet-18-like backbone (depth 18,
  width 16), the profile's lr 1e-3, 512 hashes, 60 k-means clusters, SVM size threshold 10, 2 rounds
  with 4 epochs each later round; round 1 trains 120 epochs (a budget departure: in the profile's 12
  epochs it trains 216 steps in 21 s and 17 of the 18 committed Yu/Girish runs selected their last or
  last-but-one epoch; issue 15 measured validation accuracy 0.73 / 0.80 / 0.90 on datasets/mini
  splits 1-3, seed 0, with 48 epochs, at about Base's training time; ``osma-bench tune`` of it on
  split 1 seed 0, commit bf36a96, a loaded 2-core EPYC, 1 thread: 0.717 at epoch 47 of 48, 294 s of
  training = 0.74x Base's 397 s in the same conditions, still rising; 72 epochs 0.772 and 120 epochs
  0.823 (318 s of training, 0.80x Base's; selected epoch 106), so 120).
- ``smoke``: depth 18, width 8, 64 hashes, 8 k-means clusters, size threshold 1, 2 rounds with
  1 epoch each later round.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn as nn
import torch.nn.functional as F

from baselines.wta_hash import (
    DEFAULT_BLOCK,
    hash_distance_quantile,
    mean_code_profile,
    mean_hash_distance,
    wta_codes,
    wta_permutations,
)
from osma_bench.hparams import Bool, BudgetDeparture, Choice, Float, HParam, Int, IntList
from osma_bench.methods.api import Method, MethodSpec, Prediction


class GirishNet(nn.Module):
    """ResNet backbone + FC head (dims ``fc_dims``, ReLU + dropout after each) + linear classifier."""

    def __init__(self, num_classes: int, depth: int, width: int, fc_dims: list[int], dropout: float,
                 pretrained: bool = False) -> None:
        super().__init__()
        from osma_bench.nn.resnet import resnet_backbone

        self.backbone, in_dim = resnet_backbone(depth=depth, width=width, pretrained=pretrained)
        layers: list[nn.Module] = []
        for out_dim in fc_dims:
            layers += [nn.Linear(in_dim, out_dim), nn.ReLU(), nn.Dropout(dropout)]
            in_dim = out_dim
        self.head = nn.Sequential(*layers)
        self.feature_dim = in_dim
        self.classifier = nn.Linear(in_dim, num_classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(logits, feature)`` for images ``x`` (B, 3, H, W) in [-1, 1]."""
        feature = self.head(torch.flatten(self.backbone(x), 1))
        return self.classifier(feature), feature

    def reset_classifier(self, num_classes: int) -> None:
        """A fresh linear classifier over ``num_classes`` outputs (the rest keeps its weights)."""
        device = self.classifier.weight.device
        self.classifier = nn.Linear(self.feature_dim, num_classes).to(device)


class HashDetector:
    """Girish et al.'s WTA-hash in-distribution test against a list of reference sets.

    ``fit`` standardises with the given mean/std, hashes each reference set, keeps its mean one-hot
    code (for mean distances) and the ``quantile`` of its within-set pairwise distances (the
    threshold). ``margins(x)[i, c] = threshold_c - mean distance of x_i to set c``; x_i is
    in-distribution for set c when the margin is positive.
    """

    def __init__(self, perms: torch.Tensor, window: int, mean: torch.Tensor, std: torch.Tensor,
                 block: int = DEFAULT_BLOCK) -> None:
        self.perms, self.window, self.block = perms, int(window), int(block)
        self.mean, self.std = mean, std.clamp_min(1e-12)
        self.profiles = torch.zeros(0, perms.shape[0] * window, dtype=torch.float64)
        self.thresholds = torch.zeros(0, dtype=torch.float64)

    def codes(self, features: torch.Tensor) -> torch.Tensor:
        z = (features.float().cpu() - self.mean) / self.std
        return wta_codes(z, self.perms, self.block)

    def fit(self, reference_sets: list[torch.Tensor], quantile: float) -> HashDetector:
        profiles, thresholds = [], []
        for ref in reference_sets:
            codes = self.codes(ref)
            profiles.append(mean_code_profile(codes, self.window, self.block))
            thresholds.append(float(hash_distance_quantile(codes, quantile, self.window, self.block)))
        self.profiles = torch.stack(profiles) if profiles else self.profiles
        self.thresholds = torch.tensor(thresholds, dtype=torch.float64)
        return self

    def margins(self, features: torch.Tensor) -> torch.Tensor:
        codes = self.codes(features)
        if self.profiles.shape[0] == 0:
            return torch.zeros(codes.shape[0], 0, dtype=torch.float64)
        dist = torch.stack([mean_hash_distance(codes, p, self.window, self.block) for p in self.profiles], 1)
        return self.thresholds[None, :] - dist


def make_detector(hp: dict[str, Any], train_features: torch.Tensor, seed: int) -> HashDetector:
    """An unfitted detector standardised on ``train_features``, permutations drawn from ``seed``.

    ``hp`` supplies ``num_hashes``, ``window`` and ``hash_block`` (Girish's hyperparameters).
    """
    x = train_features.float().cpu()
    perms = wta_permutations(int(hp["num_hashes"]), x.shape[1], int(hp["window"]), seed)
    return HashDetector(perms, int(hp["window"]), x.mean(0), x.std(0, unbiased=False), int(hp["hash_block"]))


class Girish(Method):
    """Girish et al., ICCV 2021: ResNet + FC-128 classifier, WTA-hash unknown detection (see module doc)."""

    name: ClassVar[str] = "girish"
    paper: ClassVar[str] = ("Girish et al., Towards discovery and attribution of open-world GAN generated "
                            "images, ICCV 2021")
    balanced_loader: ClassVar[bool] = False
    discovers: ClassVar[bool] = True

    @classmethod
    def discovery(cls):
        """Girish et al.'s discovery rounds (:func:`osma_bench.discovery.girish_rounds.discover_run`)."""
        from osma_bench.discovery.girish_rounds import discover_run

        return discover_run

    hparams: ClassVar[tuple[HParam, ...]] = (
        Int("depth", 50, "ResNet depth of the backbone", choices=(18, 34, 50), paper="50; mini/smoke 18"),
        Int("width", 64, "ResNet channels of the first stage", low=1, high=4096, paper="64; mini 16, smoke 8"),
        Bool("pretrained", False, "ImageNet weights for the backbone (from the local torch hub cache)",
             paper="true (ImageNet); off here: no download"),
        IntList("fc_dims", [512, 512, 128], "sizes of the fully connected layers after the backbone", low=1,
                paper="[512, 512, 128]"),
        Float("dropout", 0.5, "dropout between the fully connected layers", low=0.0, high=1.0, high_open=True,
              paper="0.5"),
        Int("num_hashes", 2048, "WTA hashes of the unknown detector", low=1, paper="2048; mini 512, smoke 64"),
        Int("window", 2, "WTA hash window", low=2, paper="2"),
        Float("quantile", 0.9, "quantile of a class's hash distances that sets its threshold", low=0.0,
              high=1.0, paper="0.9"),
        Int("hash_block", 1024, "rows per block when streaming hash distances (memory only)", low=1,
            paper="-"),
        Int("overcluster", 500, "k-means clusters in discovery", low=2, paper="500; mini 60, smoke 8"),
        Int("kmeans_max_iter", 300, "k-means iterations in discovery", low=1, paper="300"),
        Float("svm_purity", 0.5, "SVM refinement purity threshold", low=0.0, high=1.0, paper="0.5"),
        Int("svm_min_size", 100, "SVM refinement cluster size threshold", low=1, paper="100; mini 10, smoke 1"),
        Choice("svm_gamma", "auto", ("auto", "scale"), "RBF kernel width of the refinement SVMs ('auto': "
               "1 / features, ThunderSVM's default; 'scale': scikit-learn's)", paper="auto (ThunderSVM default)"),
        Int("rounds", 4, "discovery rounds", low=1, paper="4; mini/smoke 2"),
        Int("round_epochs", 100, "training epochs in each later discovery round", low=1,
            paper="100; mini 4, smoke 1"),
        Bool("weighted_ce", True, "class-weighted cross-entropy in the later rounds", paper="true"),
    )
    profile_defaults: ClassVar[dict[str, dict[str, Any]]] = {
        "mini": {"depth": 18, "width": 16, "num_hashes": 512, "overcluster": 60, "svm_min_size": 10, "rounds": 2,
                 "round_epochs": 4},
        "smoke": {"depth": 18, "width": 8, "num_hashes": 64, "overcluster": 8, "svm_min_size": 1, "rounds": 2,
                  "round_epochs": 1},
    }
    budget_departures: ClassVar[dict[str, dict[str, BudgetDeparture]]] = {
        "paper": {"epochs": BudgetDeparture(50, "Girish et al.'s 50 epochs in round 1")},
        "mini": {"epochs": BudgetDeparture(120, "under-trained in 12 epochs (216 steps, 21 s): osma-bench tune on "
                                            "datasets/mini (bbc71af52794) split 1 seed 0, validation accuracy only: "
                                            "48 epochs 0.717, 72 epochs 0.772 (217 s), 120 epochs 0.823 (318 s of "
                                            "training, 0.80x Base's 397 s; selected epoch 106); commits badd9f3 and "
                                            "c17cd72 (girish code unchanged between them)")},
    }
    unused_budget: ClassVar[dict[str, str]] = {
        "lr_step": "Girish et al. train with a constant Adam learning rate",
        "lr_gamma": "Girish et al. train with a constant Adam learning rate",
    }

    def __init__(self, spec: MethodSpec) -> None:
        super().__init__(spec)
        hp = self.hp
        self.model = GirishNet(spec.num_classes, int(hp["depth"]), int(hp["width"]), list(hp["fc_dims"]),
                               float(hp["dropout"]), bool(hp.get("pretrained", False))).to(self.device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=float(hp["lr"]))
        self.detector: HashDetector | None = None

    # -- training --------------------------------------------------------------------------------

    def train_epoch(self, loader, epoch: int) -> dict[str, float]:
        return self.train_weighted(loader, None)

    def train_weighted(self, loader, class_weights: torch.Tensor | None) -> dict[str, float]:
        """One pass of (optionally class-weighted) cross-entropy over ``loader``."""
        self.model.train()
        weight = None if class_weights is None else class_weights.to(self.device)
        total, steps = 0.0, 0
        for images, labels in loader:
            logits, _ = self.model(images.to(self.device))
            loss = F.cross_entropy(logits, labels.to(self.device), weight=weight)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            total += float(loss.detach())
            steps += 1
            self.step_losses = {"ce": float(loss.detach())}
        return {"ce": total / max(steps, 1)}

    def reset_classifier(self, num_classes: int) -> None:
        """New classifier over ``num_classes`` outputs and a fresh optimiser (a later discovery round)."""
        self.model.reset_classifier(num_classes)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=float(self.hp["lr"]))

    # -- features and the detector --------------------------------------------------------------

    @torch.no_grad()
    def embed(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(features (B, 128), logits (B, classes))`` in eval mode."""
        self.model.eval()
        logits, feature = self.model(images.to(self.device))
        return feature.float(), logits.float()

    def fit_detector(self, train_features: torch.Tensor, train_labels: torch.Tensor) -> HashDetector:
        """Detector for the known classes (per-class quantile thresholds on training distances)."""
        detector = make_detector(self.hp, train_features, self.spec.seed)
        sets = [train_features[train_labels == c] for c in range(self.spec.num_classes)]
        return detector.fit([s for s in sets if len(s)], float(self.hp["quantile"]))

    def finalize(self, train_loader, val_loader=None) -> None:
        """Embed the training set and fit the WTA-hash detector on it."""
        feats, labels = [], []
        for images, y in train_loader:
            feats.append(self.embed(images)[0].cpu())
            labels.append(y.cpu())
        self.detector = self.fit_detector(torch.cat(feats), torch.cat(labels))

    @torch.no_grad()
    def predict(self, images: torch.Tensor) -> Prediction:
        feature, logits = self.embed(images)
        if self.detector is None:  # before finalize (validation during training): logits only
            score = torch.zeros(len(images), dtype=torch.float64)
        else:
            score = self.detector.margins(feature).max(dim=1).values / self.detector.perms.shape[0]
        return Prediction(logits, score.to(logits.device), feature)

    # -- checkpoints -----------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {"girish_network": self.model.state_dict(),
                                 "optimizer": self.optimizer.state_dict()}
        if self.detector is not None:
            d = self.detector
            state["girish_detector"] = {"perms": d.perms, "mean": d.mean, "std": d.std,
                                        "profiles": d.profiles, "thresholds": d.thresholds}
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        network = state["girish_network"]
        classes = network["classifier.weight"].shape[0]
        if classes != self.model.classifier.out_features:
            self.model.reset_classifier(classes)
        self.model.load_state_dict(network)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=float(self.hp["lr"]))
        if "optimizer" in state:
            self.optimizer.load_state_dict(state["optimizer"])
        det = state.get("girish_detector")
        if det is not None:
            self.detector = HashDetector(det["perms"], int(self.hp["window"]), det["mean"], det["std"],
                                         int(self.hp["hash_block"]))
            self.detector.profiles, self.detector.thresholds = det["profiles"], det["thresholds"]
