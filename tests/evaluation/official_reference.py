"""Straightforward re-implementations of the POSE/ARPL evaluation loops, used only as test oracles.

Written from a reading of ICTMCG/POSE ``utils/evaluation.py`` (``get_curve_online``,
``metric_ood`` AUROC/TNR, ``compute_oscr``): the same merge order, staircase, off-by-one,
point set and trapezoidal loop, in plain Python, O(n^2) for OSCR. ``order`` lets a test choose
how tied samples are arranged; without it, as in the original, NumPy's default ``argsort`` of the
concatenation (known, then unknown) decides, in the dtype of the inputs (the original's
probabilities are float32). :func:`official_compute_oscr` starts, as the original does, from the
probability matrices.
"""

from __future__ import annotations

import numpy as np


def official_curve(known, novel):
    known = np.sort(np.asarray(known, dtype=np.float64))
    novel = np.sort(np.asarray(novel, dtype=np.float64))
    num_k, num_n = known.size, novel.size
    tp = -np.ones(num_k + num_n + 1, dtype=int)
    fp = -np.ones(num_k + num_n + 1, dtype=int)
    tp[0], fp[0] = num_k, num_n
    k = n = 0
    for step in range(num_k + num_n):
        if k == num_k:
            tp[step + 1:] = tp[step]
            fp[step + 1:] = np.arange(fp[step] - 1, -1, -1)
            break
        if n == num_n:
            tp[step + 1:] = np.arange(tp[step] - 1, -1, -1)
            fp[step + 1:] = fp[step]
            break
        if novel[n] < known[k]:
            n += 1
            tp[step + 1], fp[step + 1] = tp[step], fp[step] - 1
        else:
            k += 1
            tp[step + 1], fp[step + 1] = tp[step] - 1, fp[step]
    return tp, fp


def official_auroc(known, novel):
    """Fraction (the original prints 100 x this)."""
    tp, fp = official_curve(known, novel)
    tpr = np.concatenate([[1.0], tp / tp[0], [0.0]])
    fpr = np.concatenate([[1.0], fp / fp[0], [0.0]])
    return -np.trapezoid(1.0 - fpr, tpr)


def official_tnr(known, novel, rate=0.95):
    tp, fp = official_curve(known, novel)
    pos = np.abs(tp / len(known) - rate).argmin()
    return 1.0 - fp[pos] / len(novel)


def official_oscr(known_scores, known_correct, unknown_scores, order=None):
    """compute_oscr's loop; ``order`` (a permutation of the concatenation) replaces its argsort."""
    x1 = np.asarray(known_scores)
    x2 = np.asarray(unknown_scores)
    k_target = np.concatenate([np.asarray(known_correct, dtype=np.float64), np.zeros(len(x2))])
    u_target = np.concatenate([np.zeros(len(x1)), np.ones(len(x2))])
    predict = np.concatenate([x1, x2])
    n = len(predict)
    ccr = [0 for _ in range(n + 2)]
    fpr = [0 for _ in range(n + 2)]
    idx = predict.argsort() if order is None else np.asarray(order)
    s_k, s_u = k_target[idx], u_target[idx]
    for k in range(n - 1):
        ccr[k] = float(s_k[k + 1:].sum()) / float(len(x1))
        fpr[k] = float(s_u[k:].sum()) / float(len(x2))
    ccr[n], fpr[n] = 0.0, 0.0
    ccr[n + 1], fpr[n + 1] = 1.0, 1.0
    roc = sorted(zip(fpr, ccr, strict=True), reverse=True)
    total = 0
    for j in range(n + 1):
        h = roc[j][0] - roc[j + 1][0]
        w = (roc[j][1] + roc[j + 1][1]) / 2.0
        total = total + h * w
    return total


def official_compute_oscr(pred_k, pred_u, labels):
    """``compute_oscr(pred_k, pred_u, labels)``: max probability as the score, argmax as the class."""
    pred_k, pred_u = np.asarray(pred_k), np.asarray(pred_u)
    correct = np.argmax(pred_k, axis=1) == np.asarray(labels)
    return official_oscr(np.max(pred_k, axis=1), correct, np.max(pred_u, axis=1))
