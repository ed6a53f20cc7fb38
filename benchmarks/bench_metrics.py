"""Speed of the evaluation metrics (run by hand: ``.venv/bin/python benchmarks/bench_metrics.py``).

1. Every metric of ``evaluate_scores`` (closed set, AUROC / OSCR / TNR per unknown group and for all
   unknowns, per-class AUROC of 53 unknown classes) on 1,000,000 scored images, in both modes.
2. OSCR at the paper's test size (8,000 known + 26,500 unknown = 34,500 images): the
   straightforward quadratic loop of the POSE/ARPL code (a re-implementation below) against the
   vectorised legacy and tie-aware versions, side by side on the same data; checks they agree.
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np

from osma_bench.evaluation import metrics
from osma_bench.evaluation.evaluate import evaluate_scores
from osma_bench.evaluation.scores import make_table


def quadratic_legacy_oscr(known, correct, unknown, order):
    """The POSE/ARPL ``compute_oscr`` loop (slice sums per threshold, O(n^2)), re-implemented."""
    k_target = np.concatenate([correct.astype(np.float64), np.zeros(unknown.size)])
    u_target = np.concatenate([np.zeros(known.size), np.ones(unknown.size)])
    n = known.size + unknown.size
    ccr, fpr = [0] * (n + 2), [0] * (n + 2)
    s_k, s_u = k_target[order], u_target[order]
    for k in range(n - 1):
        ccr[k] = float(s_k[k + 1:].sum()) / float(known.size)
        fpr[k] = float(s_u[k:].sum()) / float(unknown.size)
    ccr[n], fpr[n], ccr[n + 1], fpr[n + 1] = 0.0, 0.0, 1.0, 1.0
    roc = sorted(zip(fpr, ccr, strict=True), reverse=True)
    total = 0
    for j in range(n + 1):
        total = total + (roc[j][0] - roc[j + 1][0]) * ((roc[j][1] + roc[j + 1][1]) / 2.0)
    return total


def msp_like(rng, n, shift):
    """Scores in (0, 1] with a block saturated at exactly 1.0, like POSE's MSP."""
    s = 1.0 / (1.0 + np.exp(-(rng.normal(shift, 1.5, n))))
    s[rng.random(n) < 0.3] = 1.0
    return s


def timed(fn, repeat=3):
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        value = fn()
        best = min(best, time.perf_counter() - t0)
    return best, value


def bench_million(rng):
    n_known, n = 250_000, 1_000_000
    group = np.concatenate([np.zeros(n_known, np.int8), rng.integers(1, 4, n - n_known).astype(np.int8)])
    label = np.where(group == 0, rng.integers(0, 15, n), rng.integers(0, 18, n))
    logits = rng.normal(size=(n, 15)).astype(np.float32)
    known = group == 0
    logits[known, label[known]] += 3.0
    score = np.where(group == 0, msp_like(rng, n, 2.0), msp_like(rng, n, 0.5))
    sha = np.full(n, b"0" * 64, dtype="S64")
    table = make_table(index=np.arange(n), sha256=sha, group=group, label=label, logits=logits, score=score,
                       split=1, dataset_sha256="0" * 64, method="bench", num_classes=15)
    for legacy in (False, True):
        seconds, out = timed(lambda legacy=legacy: evaluate_scores(table, legacy=legacy), repeat=2)
        print(f"all metrics, 1,000,000 images ({'legacy' if legacy else 'tie-aware'}): {seconds:.3f} s "
              f"(AUROC all {100 * out['open_set']['all']['auroc']:.2f}, OSCR all "
              f"{100 * out['open_set']['all']['oscr']:.2f}, {len(out['per_class'])} per-class AUROCs)")


def bench_oscr(rng, quick: bool):
    n_known, n_unknown = (800, 2650) if quick else (8000, 26500)
    k = msp_like(rng, n_known, 2.0)
    u = msp_like(rng, n_unknown, 0.5)
    c = rng.random(n_known) < 0.9
    order = np.lexsort((np.concatenate([np.where(c, 0, 1), np.full(n_unknown, 2)]), np.concatenate([k, u])))
    t_quad, v_quad = timed(lambda: quadratic_legacy_oscr(k, c, u, order), repeat=1)
    t_leg, v_leg = timed(lambda: metrics.oscr(k, c, u, legacy=True), repeat=5)
    t_new, v_new = timed(lambda: metrics.oscr(k, c, u), repeat=5)
    assert v_leg == v_quad, (v_leg, v_quad)
    print(f"OSCR at {n_known + n_unknown:,} images (30% of scores tied at 1.0):")
    print(f"  quadratic POSE/ARPL loop   {t_quad:8.3f} s   OSCR {100 * v_quad:.4f}")
    print(f"  vectorised legacy          {t_leg:8.4f} s   OSCR {100 * v_leg:.4f}   {t_quad / t_leg:7.0f}x faster")
    print(f"  vectorised tie-aware       {t_new:8.4f} s   OSCR {100 * v_new:.4f}   {t_quad / t_new:7.0f}x faster")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="OSCR comparison at a tenth of the size")
    args = parser.parse_args()
    print(f"{platform.processor() or platform.machine()}, numpy {np.__version__}, python {platform.python_version()}")
    rng = np.random.default_rng(0)
    bench_million(rng)
    bench_oscr(rng, args.quick)


if __name__ == "__main__":
    main()
