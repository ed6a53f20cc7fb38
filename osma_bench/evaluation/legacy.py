"""The POSE/ARPL evaluation code's numbers, reproduced exactly and vectorised (``legacy=True``).

POSE (ICTMCG/POSE, ``utils/evaluation.py``) evaluates with the functions it took from ARPL
(iCGY96/ARPL, ``core/evaluation.py``): ``get_curve_online`` + ``metric_ood`` for AUROC and TNR,
and ``compute_oscr`` for OSCR. Their behaviour, which this module reproduces (written from a
reading of that code, not copied):

AUROC / TNR (``get_curve_online``)
    Both score lists are sorted and merged; at a tie the known sample is consumed first, i.e. a
    known image tied with an unknown one is ranked below it. The TPR/FPR staircase is then
    integrated with the trapezoidal rule, which gives P(s_known > s_unknown): tied pairs count as
    errors (pessimistic), where the Mann-Whitney statistic counts them one half. TNR at 95% TPR is
    read at the staircase point whose TPR is nearest to 0.95 (first such point).
    The original sorts its arguments in place and calls ``np.trapz`` (removed in NumPy 2.4);
    here nothing is modified and the same trapezoidal sum is taken with ``np.trapezoid``, on the
    same arrays, so the value is bit-identical (the original prints it x 100).

OSCR (``compute_oscr``)
    All scores are concatenated (known, then unknown) and sorted ascending with NumPy's default
    ``argsort`` (``kind="quicksort"``: an introsort, not stable). For each position
    k = 0 .. n-2: CCR_k = correct known images at positions > k (off by one) over all known,
    FPR_k = unknown images at positions >= k over all unknown; the points (0, 0), (0, 0) and
    (1, 1) are added, the points are sorted by (FPR, CCR) descending and integrated with the
    trapezoidal rule in a Python loop (O(n^2) through slice sums). Thresholds therefore fall
    between tied scores, so the result depends on where ``argsort`` puts tied samples. Legacy mode
    makes the same call on the same concatenation, so with ties too it gives the official number
    for that input order. Where tied samples land depends on the arrays' size and content: small
    arrays keep known before unknown within a tie (as a stable sort would), large ones mix them
    (8,000 known + 26,500 unknown synthetic scores, 60% / 40% at 1.0: mean relative rank within the
    tied block 0.47 for known, 0.52 for unknown; NumPy 2.4, AVX2). The order of the rows matters only through ties: the official test loaders shuffle, so the
    official number itself moves with the loader's order; here the score file's row order is
    used. The official scores are float32 (its softmax); when every score is a float32 value the
    sort runs in float32 as the official one did (NumPy's SIMD sorts are dtype-specific).
    Without ties the number is bit-identical to the official one for any input order.
"""

from __future__ import annotations

import numpy as np


def legacy_curve(known: np.ndarray, unknown: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The ``tp`` and ``fp`` count arrays of ARPL's ``get_curve_online`` (length n_k + n_u + 1)."""
    nk, nu = known.size, unknown.size
    scores = np.concatenate([known, unknown])
    is_unknown = np.concatenate([np.zeros(nk, np.int8), np.ones(nu, np.int8)])
    order = np.lexsort((is_unknown, scores))  # ascending score; at a tie, known first
    consumed_unknown = np.cumsum(is_unknown[order], dtype=np.int64)
    consumed_known = np.arange(1, nk + nu + 1, dtype=np.int64) - consumed_unknown
    tp = np.concatenate([[nk], nk - consumed_known])
    fp = np.concatenate([[nu], nu - consumed_unknown])
    return tp, fp


def legacy_auroc(known: np.ndarray, unknown: np.ndarray) -> float:
    """AUROC as ARPL's ``metric_ood`` computes it, as a fraction (the original prints x 100)."""
    tp, fp = legacy_curve(known, unknown)
    tpr = np.concatenate([[1.0], tp / tp[0], [0.0]])
    fpr = np.concatenate([[1.0], fp / fp[0], [0.0]])
    return float(-np.trapezoid(1.0 - fpr, tpr))


def legacy_tnr_at_tpr(known: np.ndarray, unknown: np.ndarray, tpr: float = 0.95) -> float:
    """TNR at the staircase point whose TPR is nearest to ``tpr`` (ARPL's ``tnr_at_tpr95``)."""
    tp, fp = legacy_curve(known, unknown)
    pos = int(np.abs(tp / known.size - tpr).argmin())
    return float(1.0 - fp[pos] / unknown.size)


def official_dtype(scores: np.ndarray) -> np.ndarray:
    """``scores`` as float32 when every value is a float32 value (the official probabilities are
    float32), else unchanged: the official sort then runs on the dtype the official code had."""
    narrow = scores.astype(np.float32)
    return narrow if np.array_equal(narrow.astype(scores.dtype), scores) else scores


def legacy_oscr(known: np.ndarray, correct: np.ndarray, unknown: np.ndarray) -> float:
    """OSCR as ARPL's ``compute_oscr`` computes it, ties in NumPy's default argsort order (module doc)."""
    nk, nu = known.size, unknown.size
    n = nk + nu
    scores = official_dtype(np.concatenate([known, unknown]))
    order = scores.argsort()  # NumPy's default (quicksort, unstable), as the official code calls it
    k_target = np.concatenate([np.asarray(correct, bool), np.zeros(nu, bool)])[order].astype(np.int64)
    u_target = np.concatenate([np.zeros(nk, bool), np.ones(nu, bool)])[order].astype(np.int64)
    # k = 0 .. n-2:  CC_k = sum(k_target[k+1:]),  FP_k = sum(u_target[k:])
    cc = k_target.sum() - np.cumsum(k_target)[: n - 1]
    fp = u_target.sum() - np.concatenate([[0], np.cumsum(u_target)[: n - 2]])
    ccr = np.concatenate([cc / float(nk), [0.0, 0.0, 1.0]])
    fpr = np.concatenate([fp / float(nu), [0.0, 0.0, 1.0]])
    # Python's sorted(zip(FPR, CCR), reverse=True): by FPR, then CCR, descending.
    rank = np.lexsort((ccr, fpr))[::-1]
    f, c = fpr[rank], ccr[rank]
    terms = (f[:-1] - f[1:]) * ((c[:-1] + c[1:]) / 2.0)
    return float(np.cumsum(terms)[-1])  # sequential left-to-right sum, as the original loop adds
