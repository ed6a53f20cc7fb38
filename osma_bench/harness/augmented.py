"""Feature vectors of the samples a method synthesises, for the report's t-SNE plot.

A method that makes samples from known images (``Method.augmented_samples``: POSE's augmentation
models, a GAN's samples, ...) has them embedded by its own ``predict``. Only a bounded, deterministic
subset is used: the first ``augmented_plot_images`` known test images, in partition order, with
torch's global random state seeded and restored around the pass. The rows go to the score file's
optional ``augmented`` group (docs/CONTRACTS.md section 3).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from osma_bench.evaluation.scores import MAX_AUGMENTED_ROWS
from osma_bench.harness.data import Batches, Partition, SequentialSampler
from osma_bench.methods.api import Method

#: Seed of torch's global generator while augmented samples are drawn (noise-driven generators).
AUGMENTED_SEED = 0


@torch.no_grad()
def augmented_features(method: Method, known_test: Partition, config: dict[str, Any]) -> dict[str, np.ndarray] | None:
    """``{"augmented_features": float32 (M, D), "augmented_source": S (M,)}`` for ``write_scores``.

    None when the method makes no samples (``augmented_samples`` returns None), its ``predict``
    gives no features, or ``augmented_plot_images`` is 0. At most ``MAX_AUGMENTED_ROWS`` rows.
    """
    n = min(int(config["augmented_plot_images"]), len(known_test))
    if n <= 0:
        return None
    batches = Batches(known_test, SequentialSampler(n, int(config["eval_batch_size"])))
    devices = [method.device] if torch.device(method.device).type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(AUGMENTED_SEED)
        blocks = _collect(method, batches)
    if not blocks:
        return None
    names = np.concatenate([np.full(len(rows), source) for source, rows in blocks])
    return {"augmented_features": np.concatenate([rows for _, rows in blocks]),
            "augmented_source": np.char.encode(names, "utf-8")}


def _collect(method: Method, batches: Batches) -> list[tuple[str, np.ndarray]] | None:
    """``(source, features)`` blocks in batch, then source order, ``MAX_AUGMENTED_ROWS`` rows in all;
    None when the method's ``predict`` gives no features."""
    blocks: list[tuple[str, np.ndarray]] = []
    room = MAX_AUGMENTED_ROWS
    for images, _ in batches:
        for source, samples in (method.augmented_samples(images) or {}).items():
            if room <= 0:
                return blocks
            feats = method.predict(samples[:room]).features
            if feats is None:
                return None
            blocks.append((str(source), feats.float().cpu().numpy()))
            room -= len(blocks[-1][1])
    return blocks
