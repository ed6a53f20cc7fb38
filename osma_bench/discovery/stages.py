"""Clustering stages on feature vectors: k-means, SCC merging, SVM refinement, final attribution.

These are the feature-space stages of Girish et al.'s discovery pipeline (ICCV 2021, "Towards
discovery and attribution of open-world GAN generated images"; official code
Sharath-girish/openworld-gan), plus the plain k-means POSE uses for its clustering table. They
know nothing of networks or files: arrays in, cluster labels out.

Label convention (as in the official code): ``-1`` = not (yet) discovered; ``0 .. K-1`` = the K
seen (known) classes; ``K ..`` = discovered clusters, numbered contiguously.
"""

from __future__ import annotations

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components
from sklearn.cluster import KMeans
from sklearn.svm import SVC

UNDISCOVERED = -1


def kmeans_labels(features: np.ndarray, k: int, seed: int, n_init: int = 10, max_iter: int = 300) -> np.ndarray:
    """k-means (k-means++ init, ``n_init`` restarts, scikit-learn) cluster index of every row."""
    if not 1 <= k <= features.shape[0]:
        raise ValueError(f"k must be in [1, {features.shape[0]}] (the number of feature rows), got {k}")
    model = KMeans(n_clusters=k, n_init=n_init, max_iter=max_iter, random_state=seed)
    return model.fit_predict(np.asarray(features, dtype=np.float64)).astype(np.int64)


def relabel_contiguous(labels: np.ndarray) -> np.ndarray:
    """Map the distinct values of ``labels`` onto ``0 .. n-1`` in increasing order."""
    _, inverse = np.unique(labels, return_inverse=True)
    return inverse.astype(np.int64).reshape(labels.shape)


def centroids(features: np.ndarray, labels: np.ndarray, n: int) -> np.ndarray:
    """Mean feature of each cluster ``0 .. n-1`` (float64, (n, D)); labels must cover all of them."""
    sums = np.zeros((n, features.shape[1]), dtype=np.float64)
    np.add.at(sums, labels, features)
    counts = np.bincount(labels, minlength=n).astype(np.float64)
    if np.any(counts == 0):
        raise ValueError("every cluster needs at least one member to have a centroid")
    return sums / counts[:, None]


def scc_merge_mapping(centres: np.ndarray) -> np.ndarray:
    """Merge clusters through the strongly connected components of the 1-NN graph of their centres.

    Each centre gets a directed edge to its nearest other centre (Euclidean); clusters in one
    strongly connected component become one (in a 1-NN graph those are the mutual nearest
    neighbours). Returns the new cluster index of each old one (``0 .. components-1``).
    """
    n = centres.shape[0]
    if n < 2:
        return np.zeros(n, dtype=np.int64)
    sq = np.sum(centres**2, axis=1)
    dist = sq[:, None] + sq[None, :] - 2.0 * centres @ centres.T
    np.fill_diagonal(dist, np.inf)
    nearest = np.argmin(dist, axis=1)
    graph = csr_matrix((np.ones(n), (np.arange(n), nearest)), shape=(n, n))
    _, mapping = connected_components(graph, directed=True, connection="strong", return_labels=True)
    return relabel_contiguous(mapping)


def merge_clusters(features: np.ndarray, labels: np.ndarray, first: int) -> np.ndarray:
    """Apply :func:`scc_merge_mapping` to the clusters numbered ``>= first``; others untouched.

    As in the official code, nothing is merged unless there are more than two such clusters.
    Returns new labels; the merged clusters are renumbered contiguously from ``first``.
    """
    labels = labels.copy()
    mask = labels >= first
    if not mask.any():
        return labels
    local = relabel_contiguous(labels[mask])
    n = int(local.max()) + 1
    if n <= 2:
        labels[mask] = local + first
        return labels
    mapping = scc_merge_mapping(centroids(features[mask], local, n))
    labels[mask] = mapping[local] + first
    return labels


def refine_with_svms(
    features: np.ndarray,
    labels: np.ndarray,
    first: int,
    purity_threshold: float = 0.5,
    size_threshold: int = 100,
    gamma: str | float = "scale",
    C: float = 1.0,
) -> np.ndarray:
    """Refine discovered clusters (``>= first``) with one RBF SVM each (Girish et al.'s refine stage).

    For cluster c, an SVM is fit on every discovered row (label != -1), positives = members of c;
    its predictions on c's members act as a purity estimate. The cluster is dropped (members back
    to -1) when the fraction of members predicted positive is ``<= purity_threshold`` or their
    count is ``<= size_threshold``; otherwise its members predicted negative go back to -1.
    Surviving clusters are renumbered contiguously from ``first``. Seen-class labels stay.
    """
    labels = labels.copy()
    discovered = labels != UNDISCOVERED
    out = labels.copy()
    next_id = first
    for c in np.unique(labels[labels >= first]):
        members = labels == c
        target = members[discovered].astype(np.int64)
        if target.min() == target.max():  # only one class among the discovered rows: nothing to learn
            positive = np.ones(members.sum(), dtype=bool)
        else:
            svm = SVC(kernel="rbf", gamma=gamma, C=C)
            svm.fit(features[discovered], target)
            positive = svm.predict(features[members]) == 1
        kept = int(positive.sum())
        if kept / members.sum() <= purity_threshold or kept <= size_threshold:
            out[members] = UNDISCOVERED
            continue
        member_idx = np.flatnonzero(members)
        out[member_idx[positive]] = next_id
        out[member_idx[~positive]] = UNDISCOVERED
        next_id += 1
    return out


def attribute_to_nearest(features: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Give every undiscovered row (-1) the label of the nearest cluster centroid (cosine distance).

    This is how the official code turns a partial discovery into a clustering of the whole set
    before scoring it. With no labelled row at all, everything becomes one cluster (label 0).
    """
    labels = labels.copy()
    undiscovered = labels == UNDISCOVERED
    if not undiscovered.any():
        return labels
    if undiscovered.all():
        return np.zeros_like(labels)
    ids, local = np.unique(labels[~undiscovered], return_inverse=True)
    centres = centroids(features[~undiscovered], local, len(ids))
    centres /= np.maximum(np.linalg.norm(centres, axis=1, keepdims=True), 1e-12)
    rows = features[undiscovered].astype(np.float64)
    rows /= np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)
    labels[undiscovered] = ids[np.argmax(rows @ centres.T, axis=1)]
    return labels
