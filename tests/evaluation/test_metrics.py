"""Metrics: hand-computed cases, properties (hypothesis), legacy parity, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import f1_score, roc_auc_score

from osma_bench.errors import OsmaError
from osma_bench.evaluation import metrics as M
from tests.evaluation.official_reference import (
    official_auroc,
    official_compute_oscr,
    official_oscr,
    official_tnr,
)

# --------------------------------------------------------------------------- hand-computed


def test_saturated_ties_legacy_vs_tie_aware():
    # 60% of the known and 40% of the unknown scores saturated at 1.0 (as MSP does under POSE's
    # double softmax). Pairs: 25; known > unknown strictly: 3*3 + 2 + 1 = 12; tied pairs: 3*2 = 6.
    known = np.array([1.0, 1.0, 1.0, 0.5, 0.2])
    unknown = np.array([1.0, 1.0, 0.6, 0.3, 0.1])
    assert M.auroc(known, unknown) == pytest.approx(15 / 25)  # tie-aware: 60.0
    assert M.auroc(known, unknown, legacy=True) == pytest.approx(12 / 25)  # legacy: 48.0
    assert M.auroc(known, unknown, legacy=True) == official_auroc(known, unknown)


def test_all_tied_scores():
    known, unknown = np.ones(4), np.ones(3)
    correct = np.array([True, True, False, True])
    assert M.auroc(known, unknown) == 0.5
    assert M.auroc(known, unknown, legacy=True) == 0.0
    assert M.oscr(known, correct, unknown) == pytest.approx(0.5 * 3 / 4)  # one diagonal segment
    assert M.oscr(known, correct, unknown, legacy=True) == 0.0  # tied known ranked below unknown
    # threshold 1.0 accepts everything: TPR 1, TNR 0
    assert M.tnr_at_tpr(known, unknown) == 0.0
    fpr, tpr, thr = M.roc_curve(known, unknown)
    assert fpr.tolist() == [0.0, 1.0] and tpr.tolist() == [0.0, 1.0] and thr[1] == 1.0


def test_single_unknown():
    known = np.array([0.9, 0.8, 0.3, 0.1])
    correct = np.array([True, False, True, True])
    unknown = np.array([0.5])
    assert M.auroc(known, unknown) == 0.5  # 2 of 4 known above it
    assert M.oscr(known, correct, unknown) == pytest.approx(1 / 4)  # correct and above: 0.9 only
    # TPR >= 0.95 needs all 4 known: threshold 0.1, the unknown is accepted
    assert M.tnr_at_tpr(known, unknown) == 0.0
    # TPR >= 0.5 needs 2 known: threshold 0.8; 0.5 is rejected, 0.85 accepted
    assert M.tnr_at_tpr(known, unknown, tpr=0.5) == 1.0
    assert M.tnr_at_tpr(known, np.array([0.85]), tpr=0.5) == 0.0


def test_tnr_at_tpr_hand_case():
    known = np.arange(1, 21) / 20.0  # 0.05 .. 1.0
    unknown = np.array([0.0, 0.04, 0.06, 0.2, 0.9])
    # 95% of 20 = 19 known -> threshold = 19th highest = 0.10; unknown below: 0.0, 0.04, 0.06
    assert M.tnr_at_tpr(known, unknown) == pytest.approx(3 / 5)
    assert M.tnr_at_tpr(known, unknown, legacy=True) == official_tnr(known, unknown)


def test_every_known_misclassified():
    known = np.array([0.9, 0.8, 0.7])
    unknown = np.array([0.1, 0.2])
    wrong = np.zeros(3, bool)
    assert M.oscr(known, wrong, unknown) == 0.0
    assert M.oscr(known, wrong, unknown, legacy=True) == 0.0
    assert M.auroc(known, unknown) == 1.0  # detection does not care about the class
    assert M.closed_set_accuracy([0, 1, 2], [1, 2, 0]) == 0.0
    assert M.macro_f1([0, 1, 2], [1, 2, 0]) == 0.0


def test_perfect_separation_oscr_equals_accuracy():
    known = np.array([0.9, 0.8, 0.7, 0.6])
    correct = np.array([True, True, False, True])
    unknown = np.array([0.1, 0.2, 0.3])
    assert M.oscr(known, correct, unknown) == pytest.approx(0.75)
    fpr, ccr, _ = M.oscr_curve(known, correct, unknown)
    assert ccr[-1] == pytest.approx(0.75) and fpr[-1] == 1.0


def test_closed_set_metrics_match_sklearn():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 5, 300)
    p = np.where(rng.random(300) < 0.6, y, rng.integers(0, 6, 300))
    assert M.closed_set_accuracy(y, p) == pytest.approx(np.mean(y == p))
    assert M.macro_f1(y, p) == pytest.approx(f1_score(y, p, average="macro"))


def test_clustering_scores():
    true = np.array([0, 0, 0, 1, 1, 2])
    pred = np.array([5, 5, 7, 7, 7, 7])
    # cluster 5: {0,0} -> 2; cluster 7: {0,1,1,2} -> 2; purity 4/6
    assert M.cluster_purity(true, pred) == pytest.approx(4 / 6)
    s = M.clustering_scores(true, true)
    assert s == {"purity": 1.0, "nmi": pytest.approx(1.0), "ari": pytest.approx(1.0)}


# --------------------------------------------------------------------------- properties

scores_st = st.lists(st.sampled_from([0.0, 0.25, 0.5, 0.75, 1.0]) | st.floats(0, 1), min_size=1, max_size=30)


@settings(max_examples=60, deadline=None)
@given(known=scores_st, unknown=scores_st, seed=st.integers(0, 2**16))
def test_auroc_matches_sklearn_and_order(known, unknown, seed):
    k, u = np.array(known), np.array(unknown)
    y = np.r_[np.ones(k.size), np.zeros(u.size)]
    assert M.auroc(k, u) == pytest.approx(roc_auc_score(y, np.r_[k, u]), abs=1e-12)
    rng = np.random.default_rng(seed)
    for legacy in (False, True):
        assert M.auroc(rng.permutation(k), rng.permutation(u), legacy=legacy) == M.auroc(k, u, legacy=legacy)
        assert M.tnr_at_tpr(rng.permutation(k), u, legacy=legacy) == M.tnr_at_tpr(k, u, legacy=legacy)


@settings(max_examples=60, deadline=None)
@given(known=scores_st, unknown=scores_st, data=st.data())
def test_oscr_order_invariance_and_bounds(known, unknown, data):
    k, u = np.array(known), np.array(unknown)
    c = np.array(data.draw(st.lists(st.booleans(), min_size=k.size, max_size=k.size)))
    perm = np.random.default_rng(data.draw(st.integers(0, 2**16))).permutation(k.size)
    value = M.oscr(k, c, u)
    assert M.oscr(k[perm], c[perm], u[::-1]) == value  # tie-aware: no order dependence
    for v in (value, M.oscr(k, c, u, legacy=True)):
        assert 0.0 <= v <= c.mean() + 1e-12
    # with every known correct, tie-aware OSCR is the AUROC
    assert M.oscr(k, np.ones(k.size, bool), u) == pytest.approx(M.auroc(k, u), abs=1e-12)


@settings(max_examples=60, deadline=None)
@given(known=scores_st, unknown=scores_st, data=st.data())
def test_legacy_matches_official_loops_bit_for_bit(known, unknown, data):
    k, u = np.array(known), np.array(unknown)
    c = np.array(data.draw(st.lists(st.booleans(), min_size=k.size, max_size=k.size)))
    assert M.auroc(k, u, legacy=True) == official_auroc(k, u)
    assert M.tnr_at_tpr(k, u, legacy=True) == official_tnr(k, u)
    assert M.oscr(k, c, u, legacy=True) == official_oscr(k, c, u)


def test_legacy_oscr_without_ties_equals_official_argsort_in_any_order():
    rng = np.random.default_rng(3)
    for _ in range(20):
        k, u = rng.random(int(rng.integers(1, 60))), rng.random(int(rng.integers(1, 60)))
        c = rng.random(k.size) < 0.7
        assert M.oscr(k, c, u, legacy=True) == official_oscr(k, c, u)
        assert M.oscr(k[::-1], c[::-1], u[::-1], legacy=True) == official_oscr(k, c, u)


def test_legacy_oscr_follows_the_official_tie_order():
    """With ties the official number depends on where NumPy's argsort puts tied samples; legacy
    makes the same call on the same concatenation, so it moves with the input order exactly as
    the official loop does."""
    k = np.array([1.0, 1.0, 1.0, 0.4])
    c = np.array([True, False, True, True])
    u = np.array([1.0, 1.0, 0.2])
    n = k.size + u.size
    values = {official_oscr(k, c, u, order) for order in (np.arange(n), np.arange(n)[::-1])}
    assert len(values) > 1  # the original's number moves with the tie order
    for kk, cc, uu in ((k, c, u), (k[::-1], c[::-1], u[::-1])):
        assert M.oscr(kk, cc, uu, legacy=True) == official_oscr(kk, cc, uu)


def saturated_probabilities(rng, n, classes, margin):
    """float32 softmax of logits whose top margin is ``margin`` on average (many exact 1.0)."""
    logits = rng.normal(0.0, 1.0, (n, classes)).astype(np.float32)
    top = rng.integers(0, classes, n)
    logits[np.arange(n), top] += rng.exponential(margin, n).astype(np.float32)
    shifted = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(shifted, dtype=np.float32)
    return (e / e.sum(axis=1, keepdims=True)).astype(np.float32), top


@pytest.mark.parametrize("n_known,n_unknown", [(40, 60), (600, 1900)])
def test_legacy_oscr_on_tied_float32_scores_equals_the_official_compute_oscr(n_known, n_unknown):
    """Many scores saturate to exactly 1.0 in float32 (as the official double softmax produces);
    the legacy number equals compute_oscr run on the probability matrices, ties included."""
    rng = np.random.default_rng(n_known)
    pk, top = saturated_probabilities(rng, n_known, 5, 20.0)
    pu, _ = saturated_probabilities(rng, n_unknown, 5, 14.0)
    labels = np.where(rng.random(n_known) < 0.9, top, (top + 1) % 5)
    sk, su = pk.max(axis=1), pu.max(axis=1)
    assert (sk == 1.0).mean() > 0.2 and (su == 1.0).mean() > 0.1  # ties in quantity
    correct = pk.argmax(axis=1) == labels
    expected = official_compute_oscr(pk, pu, labels)
    # scores as a score file holds them (float64 values of float32 probabilities)
    assert M.oscr(sk.astype(np.float64), correct, su.astype(np.float64), legacy=True) == expected
    assert M.oscr(sk, correct, su, legacy=True) == expected
    # the tie-aware definition does not depend on the tie order and differs here
    assert M.oscr(sk, correct, su) != expected


# --------------------------------------------------------------------------- bootstrap


def test_bootstrap_ci_is_seeded_and_order_free():
    rng = np.random.default_rng(0)
    k, u = rng.normal(1, 1, 200), rng.normal(0, 1, 150)
    c = rng.random(200) < 0.8
    a = M.bootstrap_ci(k, u, c, n_boot=200, seed=5)
    perm = rng.permutation(200)
    b = M.bootstrap_ci(k[perm], u[::-1], c[perm], n_boot=200, seed=5)
    assert a == b
    assert a["auroc"][0] < M.auroc(k, u) < a["auroc"][1]
    assert a["oscr"][0] < M.oscr(k, c, u) < a["oscr"][1]
    assert M.bootstrap_ci(k, u, c, n_boot=200, seed=6) != a


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("call, message", [
    (lambda: M.auroc([0.1, np.nan], [0.2]), "NaN"),
    (lambda: M.auroc([0.1, np.inf], [0.2]), "NaN or infinite"),
    (lambda: M.auroc([], [0.2]), "known_scores: empty"),
    (lambda: M.oscr([0.1], [True], []), "unknown_scores: empty"),
    (lambda: M.oscr([0.1, 0.2], [True], [0.3]), "length mismatch"),
    (lambda: M.closed_set_accuracy([0, 1], [0]), "length mismatch"),
    (lambda: M.auroc([[0.1]], [0.2]), "1-D"),
    (lambda: M.auroc(["a"], [0.2]), "expected numbers"),
    (lambda: M.tnr_at_tpr([0.1], [0.2], tpr=0.0), "tpr must be"),
    (lambda: M.bootstrap_ci([0.1], [0.2], None, metrics=("oscr",)), "needs known_correct"),
])
def test_bad_input_is_a_clear_error(call, message):
    with pytest.raises(M.MetricInputError, match=message) as info:
        call()
    assert isinstance(info.value, OsmaError) and isinstance(info.value, ValueError)
