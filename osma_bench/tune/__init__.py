"""``osma-bench tune``: a small declared search over a method's hyperparameters.

Every grid point is an ordinary run (``osma-bench run --set ... --variant tune-<hash>``) in a tune
results folder; points are compared on known-class VALIDATION accuracy only, read from each run's
run.json (never metrics.json or scores.h5: test data never enter the choice), under a compute cap
relative to Base's training time on the same data. ``tune.json`` records what was tried, each
point's validation accuracy and time, what was chosen and why.
"""
