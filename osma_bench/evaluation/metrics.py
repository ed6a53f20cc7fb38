"""Functional metrics for open-set model attribution, in the style of torchmetrics' functional API.

Conventions: every score is "higher = more likely from a KNOWN class"; every metric returns a
fraction in [0, 1] (reports show percent). The default definitions are tie-aware and do not depend
on the order of the samples: AUROC equals the Mann-Whitney statistic (and scikit-learn's
``roc_auc_score``), OSCR (Dhamija et al., NeurIPS 2018, "Reducing Network Agnostophobia") places
thresholds only between distinct scores. Both are computed exactly in integer arithmetic from one
sort, O(n log n). ``legacy=True`` switches AUROC, OSCR and TNR to the numbers of the POSE/ARPL
evaluation code (see :mod:`osma_bench.evaluation.legacy`).

Bad input (NaN or infinite scores, length mismatch, an empty group) raises
:class:`MetricInputError`, which is both an :class:`~osma_bench.errors.OsmaError` (the CLI prints
it) and a ``ValueError``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from osma_bench.errors import OsmaError


class MetricInputError(OsmaError, ValueError):
    """Input a metric cannot be computed on (NaN, length mismatch, empty group, ...)."""


# --------------------------------------------------------------------------- input checking


def as_scores(values, name: str) -> np.ndarray:
    """``values`` as a non-empty, finite, 1-D float64 array, or a MetricInputError naming ``name``."""
    arr = np.asarray(values)
    if arr.dtype == object or arr.dtype.kind not in "biuf":
        raise MetricInputError(f"{name}: expected numbers, got dtype {arr.dtype}")
    if arr.ndim != 1:
        raise MetricInputError(f"{name}: expected a 1-D array, got shape {arr.shape}")
    if arr.size == 0:
        raise MetricInputError(f"{name}: empty (at least one sample is needed)")
    arr = arr.astype(np.float64, copy=False)
    bad = ~np.isfinite(arr)
    if bad.any():
        raise MetricInputError(
            f"{name}: {int(bad.sum())} of {arr.size} values are NaN or infinite "
            f"(first at position {int(np.flatnonzero(bad)[0])}); scores must be finite"
        )
    return arr


def as_labels(values, name: str, allow_empty: bool = False) -> np.ndarray:
    """``values`` as a 1-D int64 array of labels."""
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise MetricInputError(f"{name}: expected a 1-D array, got shape {arr.shape}")
    if arr.size == 0 and not allow_empty:
        raise MetricInputError(f"{name}: empty (at least one sample is needed)")
    if arr.dtype.kind == "f":
        if not np.isfinite(arr).all() or not np.all(arr == np.round(arr)):
            raise MetricInputError(f"{name}: labels must be whole numbers")
    elif arr.dtype.kind not in "biu" and arr.size:
        raise MetricInputError(f"{name}: expected integer labels, got dtype {arr.dtype}")
    return arr.astype(np.int64, copy=False)


def as_mask(values, name: str, length: int, length_name: str) -> np.ndarray:
    """``values`` as a boolean array of ``length`` entries."""
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise MetricInputError(f"{name}: expected a 1-D array, got shape {arr.shape}")
    if arr.dtype.kind not in "biu":
        raise MetricInputError(f"{name}: expected booleans, got dtype {arr.dtype}")
    if arr.size != length:
        raise MetricInputError(f"length mismatch: {name} has {arr.size} entries, {length_name} has {length}")
    return arr.astype(bool, copy=False)


def _same_length(a: np.ndarray, b: np.ndarray, name_a: str, name_b: str) -> None:
    if a.shape[0] != b.shape[0]:
        raise MetricInputError(f"length mismatch: {name_a} has {a.shape[0]} entries, {name_b} has {b.shape[0]}")


# --------------------------------------------------------------------------- closed set


def closed_set_accuracy(y_true, y_pred) -> float:
    """Fraction of samples whose predicted class equals the true class."""
    t = as_labels(y_true, "y_true")
    p = as_labels(y_pred, "y_pred")
    _same_length(t, p, "y_true", "y_pred")
    return float(np.count_nonzero(t == p) / t.size)


def confusion_matrix(y_true, y_pred, labels: Sequence[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(labels, counts)``: counts[i, j] = samples of true ``labels[i]`` predicted ``labels[j]``.

    ``labels`` defaults to the sorted union of the labels present in either array (as
    scikit-learn does).
    """
    t = as_labels(y_true, "y_true")
    p = as_labels(y_pred, "y_pred")
    _same_length(t, p, "y_true", "y_pred")
    lab = np.unique(np.concatenate([t, p])) if labels is None else np.asarray(labels, dtype=np.int64)
    ti = np.searchsorted(lab, t)
    pi = np.searchsorted(lab, p)
    ti_ok = (ti < lab.size) & (lab[np.minimum(ti, lab.size - 1)] == t)
    pi_ok = (pi < lab.size) & (lab[np.minimum(pi, lab.size - 1)] == p)
    keep = ti_ok & pi_ok
    counts = np.bincount(ti[keep] * lab.size + pi[keep], minlength=lab.size * lab.size)
    return lab, counts.reshape(lab.size, lab.size)


def macro_f1(y_true, y_pred, labels: Sequence[int] | None = None) -> float:
    """Unweighted mean over classes of F1 = 2 TP / (2 TP + FP + FN).

    Classes default to those present in ``y_true`` or ``y_pred`` (scikit-learn's ``f1_score(...,
    average="macro")``, which POSE's evaluation calls); a class with no true and no predicted
    sample scores 0.
    """
    _, cm = confusion_matrix(y_true, y_pred, labels)
    tp = np.diag(cm).astype(np.float64)
    denom = cm.sum(axis=0) + cm.sum(axis=1)
    f1 = np.divide(2 * tp, denom, out=np.zeros_like(tp), where=denom > 0)
    return float(f1.mean())


# --------------------------------------------------------------------------- open set (tie-aware)


class KnownSet:
    """The known test images, sorted once, to score many unknown sets against (tie-aware metrics).

    ``KnownSet(known_scores, known_correct).auroc(u)`` equals ``auroc(known_scores, u)``, and so on
    for :meth:`oscr` and :meth:`tnr_at_tpr`; evaluating every group and class against one
    ``KnownSet`` sorts the known scores only once.
    """

    def __init__(self, known_scores, known_correct=None) -> None:
        k = as_scores(known_scores, "known_scores")
        self.n = k.size
        self.sorted = np.sort(k)
        if known_correct is None:
            self.correct_sorted = None
        else:
            c = as_mask(known_correct, "known_correct", k.size, "known_scores")
            self.correct_sorted = np.sort(k[c])

    @staticmethod
    def _twice_u(pos_sorted: np.ndarray, neg: np.ndarray) -> int:
        """2 U: twice the (pos, neg) pairs with pos > neg, plus the tied pairs (exact integer)."""
        neg = np.sort(neg)  # sorted needles make the binary searches cache-friendly (several x faster)
        left = np.searchsorted(pos_sorted, neg, side="left")
        right = np.searchsorted(pos_sorted, neg, side="right")
        greater = pos_sorted.size * neg.size - right.sum(dtype=np.int64)
        return int(2 * greater + (right - left).sum(dtype=np.int64))

    def auroc(self, unknown_scores) -> float:
        u = as_scores(unknown_scores, "unknown_scores")
        return self._twice_u(self.sorted, u) / (2.0 * self.n * u.size)

    def oscr(self, unknown_scores) -> float:
        if self.correct_sorted is None:
            raise MetricInputError("OSCR needs known_correct")
        u = as_scores(unknown_scores, "unknown_scores")
        if not self.correct_sorted.size:
            return 0.0
        return self._twice_u(self.correct_sorted, u) / (2.0 * self.n * u.size)

    def tnr_at_tpr(self, unknown_scores, tpr: float = 0.95) -> float:
        u = as_scores(unknown_scores, "unknown_scores")
        m = max(1, int(np.ceil(round(_check_rate(tpr) * self.n, 9))))
        threshold = self.sorted[self.n - m]
        return float(np.count_nonzero(u < threshold) / u.size)


def auroc(known_scores, unknown_scores, legacy: bool = False) -> float:
    """Area under the ROC curve of known (positive) against unknown images on the score.

    Tie-aware (default): P(s_known > s_unknown) + 1/2 P(s_known = s_unknown), the Mann-Whitney
    statistic, equal to ``sklearn.metrics.roc_auc_score``, computed exactly from one sort.
    ``legacy=True``: the POSE/ARPL code's value, which counts tied pairs as errors.
    """
    if legacy:
        from osma_bench.evaluation.legacy import legacy_auroc

        return legacy_auroc(as_scores(known_scores, "known_scores"), as_scores(unknown_scores, "unknown_scores"))
    return KnownSet(known_scores).auroc(unknown_scores)


def oscr(known_scores, known_correct, unknown_scores, legacy: bool = False) -> float:
    """Area under the open-set classification rate curve (Dhamija et al., 2018).

    As the threshold t sweeps the scores, CCR(t) = known images correctly classified with score
    >= t over all known images, FPR(t) = unknown images with score >= t over all unknown images;
    OSCR is the area under CCR against FPR. Tie-aware (default): thresholds only between distinct
    scores, so a tie between a correct known and an unknown counts one half; this equals
    AUROC(correct known vs unknown) x accuracy, computed exactly. ``legacy=True``: the POSE/ARPL
    code's number (its threshold placement, off-by-one and tie order; see ``legacy.legacy_oscr``).
    """
    if legacy:
        from osma_bench.evaluation.legacy import legacy_oscr

        k = as_scores(known_scores, "known_scores")
        c = as_mask(known_correct, "known_correct", k.size, "known_scores")
        return legacy_oscr(k, c, as_scores(unknown_scores, "unknown_scores"))
    return KnownSet(known_scores, known_correct).oscr(unknown_scores)


def _check_rate(tpr: float) -> float:
    tpr = float(tpr)
    if not 0.0 < tpr <= 1.0:
        raise MetricInputError(f"tpr must be in (0, 1], got {tpr}")
    return tpr


def tnr_at_tpr(known_scores, unknown_scores, tpr: float = 0.95, legacy: bool = False) -> float:
    """True negative rate on unknown images at the highest threshold that keeps TPR >= ``tpr``.

    The threshold t is the m-th highest known score, m = ceil(tpr x n_known): accepting every
    image with score >= t accepts at least that fraction of known images (ties can add more);
    TNR is the fraction of unknown images with score < t. ``legacy=True``: the POSE/ARPL code's
    choice (the curve point whose TPR is nearest to ``tpr``, ties counted pessimistically).
    """
    if legacy:
        from osma_bench.evaluation.legacy import legacy_tnr_at_tpr

        k, u = as_scores(known_scores, "known_scores"), as_scores(unknown_scores, "unknown_scores")
        return legacy_tnr_at_tpr(k, u, _check_rate(tpr))
    return KnownSet(known_scores).tnr_at_tpr(unknown_scores, tpr)


def roc_curve(known_scores, unknown_scores) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(fpr, tpr, thresholds)`` with one point per distinct score, from (0, 0) to (1, 1)."""
    k = as_scores(known_scores, "known_scores")
    u = as_scores(unknown_scores, "unknown_scores")
    return _rate_curve(k, np.ones(k.size, bool), u)


def oscr_curve(known_scores, known_correct, unknown_scores) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(fpr, ccr, thresholds)`` of the OSCR curve, one point per distinct score plus (0, 0)."""
    k = as_scores(known_scores, "known_scores")
    c = as_mask(known_correct, "known_correct", k.size, "known_scores")
    u = as_scores(unknown_scores, "unknown_scores")
    return _rate_curve(k, c, u)


def _rate_curve(k: np.ndarray, positive: np.ndarray, u: np.ndarray):
    scores = np.concatenate([k, u])
    order = np.argsort(scores)[::-1]
    s = scores[order]
    pos = np.concatenate([positive, np.zeros(u.size, bool)])[order]
    neg = np.concatenate([np.zeros(k.size, bool), np.ones(u.size, bool)])[order]
    ends = np.append(np.flatnonzero(s[1:] != s[:-1]), s.size - 1)
    tp = np.cumsum(pos)[ends]
    fp = np.cumsum(neg)[ends]
    fpr = np.concatenate([[0.0], fp / u.size])
    rate = np.concatenate([[0.0], tp / k.size])
    thresholds = np.concatenate([[np.inf], s[ends]])
    return fpr, rate, thresholds


# --------------------------------------------------------------------------- clustering


def cluster_purity(labels_true, labels_pred) -> float:
    """Size-weighted cluster purity: sum over clusters of the largest true-class count, over N."""
    t = as_labels(labels_true, "labels_true")
    p = as_labels(labels_pred, "labels_pred")
    _same_length(t, p, "labels_true", "labels_pred")
    _, cm = confusion_matrix(p, t)
    return float(cm.max(axis=1).sum() / t.size)


def clustering_scores(labels_true, labels_pred) -> dict[str, float]:
    """``{"purity", "nmi", "ari"}`` of a clustering against the true classes.

    NMI and ARI are scikit-learn's ``normalized_mutual_info_score`` (arithmetic normalisation)
    and ``adjusted_rand_score``; purity is :func:`cluster_purity`.
    """
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    purity = cluster_purity(labels_true, labels_pred)
    t = as_labels(labels_true, "labels_true")
    p = as_labels(labels_pred, "labels_pred")
    return {
        "purity": purity,
        "nmi": float(normalized_mutual_info_score(t, p)),
        "ari": float(adjusted_rand_score(t, p)),
    }


# --------------------------------------------------------------------------- bootstrap


class _WeightedPairs:
    """Tie-aware AUROC / OSCR under integer sample weights, from one sort (for the bootstrap)."""

    def __init__(self, k: np.ndarray, correct: np.ndarray, u: np.ndarray) -> None:
        self.order = np.argsort(k, kind="stable")
        ks = k[self.order]
        self.left = np.searchsorted(ks, u, side="left")
        self.right = np.searchsorted(ks, u, side="right")
        self.correct_sorted = correct[self.order]

    def area(self, wk: np.ndarray, wu: np.ndarray, correct_only: bool) -> float:
        w = wk[self.order].astype(np.float64)
        total_known = w.sum()
        if correct_only:
            w = w * self.correct_sorted
        cw = np.concatenate([[0.0], np.cumsum(w)])
        greater = cw[-1] - cw[self.right]
        equal = cw[self.right] - cw[self.left]
        total_unknown = wu.sum()
        if total_known == 0 or total_unknown == 0:
            return float("nan")
        return float((wu * (greater + 0.5 * equal)).sum() / (total_known * total_unknown))


def bootstrap_ci(
    known_scores,
    unknown_scores,
    known_correct=None,
    metrics: Sequence[str] = ("auroc", "oscr"),
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, tuple[float, float]]:
    """Percentile bootstrap confidence intervals of tie-aware AUROC and OSCR.

    Known and unknown test images are resampled with replacement separately (each keeps its
    size), ``n_boot`` times, from ``numpy.random.default_rng(seed)``: same inputs and seed, same
    interval, whatever the sample order. Returns ``{metric: (low, high)}``.
    """
    k = as_scores(known_scores, "known_scores")
    u = as_scores(unknown_scores, "unknown_scores")
    if known_correct is None:
        if "oscr" in metrics:
            raise MetricInputError("bootstrap_ci: OSCR needs known_correct")
        c = np.ones(k.size, bool)
    else:
        c = as_mask(known_correct, "known_correct", k.size, "known_scores")
    unknown_metrics = set(metrics) - {"auroc", "oscr"}
    if unknown_metrics:
        raise MetricInputError(f"bootstrap_ci: unknown metric(s) {sorted(unknown_metrics)}; use auroc, oscr")
    if int(n_boot) < 1:
        raise MetricInputError(f"bootstrap_ci: n_boot must be at least 1, got {n_boot}")
    if not 0.0 < level < 1.0:
        raise MetricInputError(f"bootstrap_ci: level must be in (0, 1), got {level}")
    # Canonical sample order (by score, then correctness) so that the resamples, and hence the
    # interval, do not depend on the order the caller passed the samples in.
    ko = np.lexsort((c, k))
    k, c = k[ko], c[ko]
    u = np.sort(u)
    pairs = _WeightedPairs(k, c, u)
    rng = np.random.default_rng(seed)
    values = {m: np.empty(int(n_boot)) for m in metrics}
    for b in range(int(n_boot)):
        wk = np.bincount(rng.integers(0, k.size, k.size), minlength=k.size)
        wu = np.bincount(rng.integers(0, u.size, u.size), minlength=u.size)
        for m in metrics:
            values[m][b] = pairs.area(wk, wu, correct_only=(m == "oscr"))
    alpha = (1.0 - level) / 2.0
    return {m: (float(np.quantile(v, alpha)), float(np.quantile(v, 1.0 - alpha))) for m, v in values.items()}
