"""Evaluation: metrics (tie-aware and legacy POSE/ARPL), score files, metrics.json, and the CLI.

- :mod:`osma_bench.evaluation.metrics`: functional metrics (accuracy, macro-F1, AUROC, OSCR, TNR
  at TPR, clustering scores, bootstrap intervals).
- :mod:`osma_bench.evaluation.legacy`: the POSE/ARPL evaluation code's numbers, reproduced.
- :mod:`osma_bench.evaluation.scores`: ``scores.h5`` write / read / validate.
- :mod:`osma_bench.evaluation.evaluate`: ``evaluate_scores`` and ``evaluate_file`` -> metrics.json.
"""
