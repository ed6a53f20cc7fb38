"""Girish et al.'s feature-space stages on planted data where the right clusters are known."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import adjusted_rand_score

from osma_bench.discovery.stages import (
    UNDISCOVERED,
    attribute_to_nearest,
    kmeans_labels,
    merge_clusters,
    refine_with_svms,
    relabel_contiguous,
    scc_merge_mapping,
)


def blobs(centres, n, spread, seed=0):
    rng = np.random.default_rng(seed)
    centres = np.asarray(centres, dtype=np.float64)
    x = np.concatenate([c + spread * rng.standard_normal((n, centres.shape[1])) for c in centres])
    return x, np.repeat(np.arange(len(centres)), n)


def test_kmeans_recovers_planted_blobs_and_is_seeded():
    x, y = blobs([[0, 0], [10, 0], [0, 10], [10, 10]], 30, 0.5)
    pred = kmeans_labels(x, 4, seed=0)
    assert adjusted_rand_score(y, pred) == 1.0
    assert np.array_equal(pred, kmeans_labels(x, 4, seed=0))


def test_relabel_contiguous():
    assert relabel_contiguous(np.array([7, 3, 7, 9])).tolist() == [1, 0, 1, 2]


def test_scc_merges_mutual_nearest_pairs():
    # three true groups, each over-split into two sub-clusters whose centres are mutual nearest neighbours
    centres = np.array([[0, 0], [0, 1], [20, 0], [21, 0], [0, 20], [1, 20.5]], dtype=np.float64)
    mapping = scc_merge_mapping(centres)
    assert mapping[0] == mapping[1] and mapping[2] == mapping[3] and mapping[4] == mapping[5]
    assert len(set(mapping.tolist())) == 3
    # a chain a -> b <-> c: only the 2-cycle is a strongly connected component, a stays alone
    chain = scc_merge_mapping(np.array([[0.0], [3.0], [4.0], [100.0]]))
    assert chain[1] == chain[2] and chain[0] != chain[1] and len(set(chain.tolist())) == 3


def test_merge_clusters_reunites_an_over_split_clustering():
    x, y = blobs([[0, 0], [30, 0], [0, 30]], 40, 1.0)
    # split every true blob into two halves along its first coordinate: 6 over-split clusters
    over = y * 2 + (x[:, 0] > np.array([0, 30, 0])[y]).astype(int)
    labels = over + 2  # two seen classes (0, 1) come first and must stay untouched
    labels = np.concatenate([[0, 1], labels])
    feats = np.concatenate([[[100.0, 100.0], [-100.0, 100.0]], x])
    merged = merge_clusters(feats, labels, first=2)
    assert merged[:2].tolist() == [0, 1]
    assert adjusted_rand_score(y, merged[2:]) == 1.0 and set(merged[2:].tolist()) == {2, 3, 4}


def test_merge_leaves_two_or_fewer_clusters_alone():
    x, _ = blobs([[0, 0], [1, 0]], 5, 0.1)
    labels = np.repeat([4, 9], 5)
    assert np.array_equal(merge_clusters(x, labels, first=3), np.repeat([3, 4], 5))


def test_refine_drops_stray_members_small_and_impure_clusters():
    x, y = blobs([[0, 0], [8, 0], [0, 8], [8, 8]], 30, 0.6, seed=1)
    labels = y + 1  # seen class 0 unused here; discovered clusters 1..4 from index 1
    # cluster 1 swallowed three points of blob 2: the SVM (trained on all discovered rows) rejects them
    stray = np.flatnonzero(y == 1)[:3]
    labels[stray] = 1
    # cluster 4 is tiny: only 5 members survive as such, below the size threshold of 10
    labels[np.flatnonzero(y == 3)[5:]] = UNDISCOVERED
    out = refine_with_svms(x, labels, first=1, purity_threshold=0.5, size_threshold=10)
    assert np.all(out[stray] == UNDISCOVERED)
    assert np.all(out[np.flatnonzero(y == 3)] == UNDISCOVERED)
    kept = out != UNDISCOVERED
    assert adjusted_rand_score(y[kept], out[kept]) == 1.0 and set(out[kept].tolist()) == {1, 2, 3}


def test_refine_drops_an_inseparable_cluster():
    x, y = blobs([[0, 0], [8, 0]], 50, 0.5, seed=2)
    labels = y + 3
    # cluster 5 = ten points drawn from the same blob as cluster 3: its SVM cannot tell them apart,
    # predicts most members negative, so the estimated purity is <= 0.5 and the cluster is dropped
    inside = np.flatnonzero(y == 0)[:10]
    labels[inside] = 5
    out = refine_with_svms(x, labels, first=3, purity_threshold=0.5, size_threshold=1)
    assert np.all(out[inside] == UNDISCOVERED)
    assert set(out.tolist()) == {3, 4, UNDISCOVERED} and np.array_equal(out[y == 1], np.full(50, 4))


def test_attribute_to_nearest_by_cosine():
    feats = np.array([[1.0, 0.0], [0.0, 1.0], [5.0, 0.5], [0.2, 3.0], [2.0, 2.1]])
    labels = np.array([7, 2, UNDISCOVERED, UNDISCOVERED, UNDISCOVERED])
    assert attribute_to_nearest(feats, labels).tolist() == [7, 2, 7, 2, 2]
    assert attribute_to_nearest(feats, np.full(5, UNDISCOVERED)).tolist() == [0] * 5
