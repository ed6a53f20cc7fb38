"""Girish et al.'s discovery rounds (ICCV 2021) on a finished ``girish`` run.

Why here and not in the run: discovery clusters the unlabelled test pool (known test images and
every unknown), and later rounds retrain on the clusters found there. A harness run must never
train on test images, so the run stops after round 1 (the classifier on the known classes, the
WTA-hash detector, the test features); this module continues from that run's selected checkpoint.

One round (official pipeline: attribution, clustering, merge, refine, then retraining):
1. embed the known training images and the pool; standardise on the training features;
2. attribution: an undiscovered pool image whose WTA-hash mean distance is within a known class's
   threshold and which the network assigns to a known class gets that class; likewise for the
   clusters discovered so far (their members are the reference sets) and network outputs beyond
   the known classes;
3. k-means over-clustering (``overcluster`` clusters) of the images still undiscovered
   (standardised features), skipped when there are no more images than clusters;
4. merging through strongly connected components of the 1-NN graph of cluster centres, first
   among the new clusters, then among all discovered clusters;
5. refinement with one RBF SVM per discovered cluster (purity and size thresholds);
6. unless it is the last round: a new classifier head over known classes + discovered clusters,
   trained ``round_epochs`` epochs from the current weights on the training images plus the
   discovered pool images, with cross-entropy weighted by ``max count / count``.
After the last round, every image still undiscovered joins the nearest cluster centre (cosine);
the number of distinct labels is the k Girish et al. return.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from osma_bench.discovery.runs import RunFeatures
from osma_bench.discovery.stages import (
    UNDISCOVERED,
    attribute_to_nearest,
    kmeans_labels,
    merge_clusters,
    refine_with_svms,
)
from osma_bench.errors import OsmaError


@dataclass
class RoundLog:
    """What one round did (for the run log and tests)."""

    round: int
    attributed_known: int
    attributed_discovered: int
    new_clusters: int
    after_merge: int
    after_refine: int
    undiscovered: int


@dataclass
class DiscoveryResult:
    """The final clustering of the pool and the log of every round."""

    labels: np.ndarray
    rounds: list[RoundLog] = field(default_factory=list)

    @property
    def k(self) -> int:
        return int(np.unique(self.labels).size)


def _batches(images: torch.Tensor, labels: torch.Tensor, batch: int, device: torch.device, order=None):
    order = torch.arange(len(images)) if order is None else order
    for start in range(0, len(order), batch):
        pos = order[start : start + batch]
        yield images[pos].to(device).float().div(127.5).sub(1.0), labels[pos].to(device)


def _embed_all(method, images: torch.Tensor, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
    feats, logits = [], []
    for x, _ in _batches(images, torch.zeros(len(images), dtype=torch.int64), batch, method.device):
        f, z = method.embed(x)
        feats.append(f.cpu())
        logits.append(z.cpu())
    return torch.cat(feats), torch.cat(logits)


def attribute(hp: dict, labels: np.ndarray, train_feats, train_labels, pool_feats, preds: np.ndarray,
              num_known: int, seed: int) -> tuple[np.ndarray, int, int]:
    """Step 2 of a round: attribution of undiscovered images to known classes and found clusters.

    ``hp``: Girish's hyperparameters (``num_hashes``, ``window``, ``hash_block``, ``quantile``).
    """
    from baselines.girish import make_detector

    labels = labels.copy()
    detector = make_detector(hp, train_feats, seed)
    known_sets = [train_feats[train_labels == c] for c in range(num_known)]
    in_known = detector.fit(known_sets, float(hp["quantile"])).margins(pool_feats).max(1).values > 0
    in_known = in_known.numpy()
    found = np.unique(labels[labels >= num_known])
    if found.size:
        sets = [pool_feats[torch.from_numpy(labels == c)] for c in found]
        in_found = (detector.fit(sets, float(hp["quantile"])).margins(pool_feats).max(1).values > 0).numpy()
    else:
        in_found = np.zeros(len(labels), dtype=bool)
    open_rows = labels == UNDISCOVERED
    to_known = open_rows & in_known & (preds < num_known)
    to_found = open_rows & in_found & (preds >= num_known)
    labels[to_known] = preds[to_known]
    labels[to_found] = preds[to_found]
    return labels, int(to_known.sum()), int(to_found.sum())


def discover_round(hp: dict, labels: np.ndarray, train_feats, train_labels, pool_feats, preds, num_known: int,
                   round_index: int, seed: int) -> tuple[np.ndarray, RoundLog]:
    """Steps 2-5 of a round on given features; returns the new labels and the round's log."""
    labels, n_known, n_found = attribute(hp, labels, train_feats, train_labels, pool_feats, preds,
                                         num_known, seed + round_index)
    first_new = max(num_known, int(labels.max()) + 1)
    open_rows = labels == UNDISCOVERED
    k_over = int(hp["overcluster"])
    raw = pool_feats.double().numpy()
    new = 0
    if open_rows.sum() > k_over:
        mean, std = train_feats.double().mean(0).numpy(), train_feats.double().std(0, unbiased=False).numpy()
        z = (raw[open_rows] - mean) / np.maximum(std, 1e-12)
        labels[open_rows] = kmeans_labels(z, k_over, seed=seed + round_index, n_init=1,
                                          max_iter=int(hp["kmeans_max_iter"])) + first_new
        new = k_over
    labels = merge_clusters(raw, labels, first_new)
    labels = merge_clusters(raw, labels, num_known)
    merged = int(np.unique(labels[labels >= num_known]).size)
    labels = refine_with_svms(raw, labels, num_known, float(hp["svm_purity"]), int(hp["svm_min_size"]),
                              gamma=str(hp.get("svm_gamma", "auto")))
    log = RoundLog(round_index, n_known, n_found, new, merged, int(np.unique(labels[labels >= num_known]).size),
                   int((labels == UNDISCOVERED).sum()))
    return labels, log


def retrain(method, train_images, train_labels, pool_images, labels: np.ndarray, num_known: int, epochs: int,
            batch: int, seed: int) -> None:
    """Step 6: retrain on the known training images plus the discovered clusters (weighted CE)."""
    found = labels >= num_known
    n_classes = max(num_known, int(labels.max()) + 1)
    images = torch.cat([train_images, pool_images[torch.from_numpy(found)]])
    targets = torch.cat([train_labels, torch.from_numpy(labels[found])])
    counts = torch.bincount(targets, minlength=n_classes).double()
    weights = (counts.max() / counts.clamp_min(1)).float() if bool(method.hp["weighted_ce"]) else None
    method.reset_classifier(n_classes)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        order = torch.randperm(len(images), generator=gen)
        method.train_weighted(_batches(images, targets, batch, method.device, order), weights)


def run_discovery(method, train_images: torch.Tensor, train_labels: torch.Tensor, pool_images: torch.Tensor,
                  num_known: int, seed: int, batch: int = 256, progress=None) -> DiscoveryResult:
    """All rounds on uint8 images (train: known classes with labels; pool: unlabelled test images)."""
    hp = method.hp
    labels = np.full(len(pool_images), UNDISCOVERED, dtype=np.int64)
    logs = []
    rounds = int(hp["rounds"])
    pool_feats = None
    for r in range(1, rounds + 1):
        if r > 1:
            found = int(np.unique(labels[labels >= num_known]).size)
            if found == 0:  # nothing to retrain on: the next round would repeat this one
                break
            retrain(method, train_images, train_labels, pool_images, labels, num_known,
                    int(hp["round_epochs"]), batch, seed + r)
        train_feats, _ = _embed_all(method, train_images, batch)
        pool_feats, pool_logits = _embed_all(method, pool_images, batch)
        preds = pool_logits.argmax(1).numpy()
        labels, log = discover_round(hp, labels, train_feats, train_labels, pool_feats, preds, num_known, r,
                                     seed)
        logs.append(log)
        if progress is not None:
            progress(log)
    final = attribute_to_nearest(pool_feats.double().numpy(), labels)
    return DiscoveryResult(final, logs)


# --------------------------------------------------------------------------- from a run directory


def _method_state(payload) -> dict:
    """The Girish method state inside a harness checkpoint (``state``), found by its marker key."""
    if isinstance(payload, dict):
        if "girish_network" in payload:
            return payload
        for value in payload.values():
            if isinstance(value, dict) and "girish_network" in value:
                return value
    raise KeyError("girish_network")


def load_girish(run: RunFeatures, data_root: Path, device: torch.device):
    """The run's Girish method with its selected weights (checkpoint_best.pt, else checkpoint.pt)."""
    from osma_bench.data import load_card, read_split
    from osma_bench.harness import checkpoint
    from osma_bench.methods.api import MethodSpec
    from osma_bench.methods.registry import get_method

    record = run.record
    if record.get("method") != "girish":
        raise OsmaError(f"{run.run_dir}: --method girish needs a run of method 'girish', this one is "
                        f"{record.get('method')!r}; use --method kmeans for other methods' features")
    card = load_card(data_root)
    if card.get("content_sha256") != record.get("dataset_sha256"):
        raise OsmaError(f"{data_root}: dataset content differs from the one {run.run_dir} was trained on; "
                        "pass --data with the run's dataset")
    split = int(record["split"])
    info = read_split(data_root, split)
    config = dict(record.get("config") or {})
    spec = MethodSpec(num_classes=len(info.known_classes), image_size=int(card["image_size"]), device=device,
                      hparams=config, seed=int(record.get("seed", 0)), epochs=int(config.get("epochs", 1)),
                      profile=str(record.get("profile", "smoke")))
    method = get_method("girish")(spec)
    for name in (checkpoint.BEST, checkpoint.LAST):
        path = run.run_dir / name
        if path.is_file():
            try:
                method.load_state_dict(_method_state(checkpoint.load(path, device)))
            except KeyError:
                raise OsmaError(f"{path}: holds no Girish network state") from None
            return method, info
    raise OsmaError(f"{run.run_dir}: no checkpoint_best.pt or checkpoint.pt; rerun the girish run")


def discover_run(run: RunFeatures, data_root: str | os.PathLike, device: torch.device, progress=None
                 ) -> DiscoveryResult:
    """Girish et al.'s discovery on a finished girish run's test pool (rows in scores.h5 order)."""
    from osma_bench.data import OSMADataset

    data_root = Path(data_root)
    method, info = load_girish(run, data_root, device)
    split = int(run.record["split"])
    train_images, train_labels = OSMADataset(data_root, split, "train").load_all()
    pool = []
    for name in ("test", "out_seed", "out_arch", "out_dataset"):
        ds = OSMADataset(data_root, split, name)
        if len(ds):
            pool.append((ds.indices, ds.load_all()[0]))
    index = np.concatenate([p[0] for p in pool])
    if not np.array_equal(index, run.table.index):
        raise OsmaError(f"{run.run_dir / 'scores.h5'}: rows do not match split {split} of {data_root}")
    pool_images = torch.cat([p[1] for p in pool])
    batch = int(run.record.get("config", {}).get("eval_batch_size", 256))
    seed = int(run.record.get("seed", 0))
    torch.manual_seed(seed)
    return run_discovery(method, train_images, train_labels.long(), pool_images, len(info.known_classes), seed,
                         batch, progress)
