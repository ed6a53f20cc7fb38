"""From a score table (and its split) to the content of ``metrics.json`` (docs/CONTRACTS.md section 4).

Closed-set accuracy and macro-F1 on the known test images (prediction = argmax of the logits;
unseen-real test images carry the label ``real``); AUROC, OSCR and TNR at 95% TPR of the known
test images against each unknown group and against all unknown images; per unknown class its
AUROC and the known class its images are most often attributed to; optional bootstrap intervals.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from osma_bench.errors import OsmaError
from osma_bench.evaluation import metrics
from osma_bench.evaluation.scores import ScoreTable, read_scores, validate_against_split
from osma_bench.protocol import SCORE_GROUPS as GROUPS
from osma_bench.protocol import UNKNOWN_GROUPS


def evaluate_scores(
    table: ScoreTable,
    split_info=None,
    *,
    known_classes: Sequence[str] | None = None,
    unknown_classes: dict[str, Sequence[str]] | None = None,
    legacy: bool = False,
    with_legacy: bool = False,
    bootstrap: int = 0,
    seed: int = 0,
) -> dict:
    """Compute the metrics.json content of one score table.

    Class names come from ``split_info`` (a :class:`osma_bench.data.SplitInfo`) or, without it,
    from ``known_classes`` / ``unknown_classes`` (``{"seed": [...], ...}``); missing names are
    written ``class<i>``. ``legacy`` selects the POSE/ARPL numbers for AUROC, OSCR and TNR;
    ``bootstrap`` > 0 adds percentile 95% intervals of tie-aware AUROC and OSCR from that many
    resamples seeded with ``seed``.
    """
    if split_info is not None:
        known_classes = list(split_info.known_classes)
        unknown_classes = {g: list(split_info.unknown[g]) for g in UNKNOWN_GROUPS}
    known_classes = list(known_classes or [])
    unknown_classes = dict(unknown_classes or {})
    where = table.source

    known_rows = table.rows(0)
    if not known_rows.size:
        raise OsmaError(f"{where}: no known test images (group 0); nothing to evaluate")
    unknown_all = np.flatnonzero(table.group > 0)
    if not unknown_all.size:
        raise OsmaError(f"{where}: no unknown test images (groups 1-3); open-set metrics need them")

    y_true = table.label[known_rows]
    y_pred = np.argmax(table.logits, axis=1)
    known_pred = y_pred[known_rows]
    correct = known_pred == y_true
    known_score = table.score[known_rows]

    out: dict = {
        "closed_set": {
            "accuracy": metrics.closed_set_accuracy(y_true, known_pred),
            "macro_f1": metrics.macro_f1(y_true, known_pred),
            "n": int(known_rows.size),
        },
        "open_set": {},
        "per_class": [],
        "legacy": bool(legacy),
        "method": table.method,
        "split": table.split,
        "dataset_sha256": table.dataset_sha256,
    }
    group_rows = {g: table.rows(code) for code, g in enumerate(GROUPS) if code > 0}
    group_rows["all"] = unknown_all
    ref = metrics.KnownSet(known_score, correct)

    def auroc(u):
        return metrics.auroc(known_score, u, legacy=True) if legacy else ref.auroc(u)

    for g, rows in group_rows.items():
        if not rows.size:
            continue
        u = table.score[rows]
        out["open_set"][g] = {
            "auroc": auroc(u),
            "oscr": metrics.oscr(known_score, correct, u, legacy=True) if legacy else ref.oscr(u),
            "tnr_at_95tpr": metrics.tnr_at_tpr(known_score, u, 0.95, legacy=True) if legacy else ref.tnr_at_tpr(u),
            "n_unknown": int(rows.size),
        }

    for g in UNKNOWN_GROUPS:
        rows = group_rows[g]
        names = list(unknown_classes.get(g, []))
        for c in np.unique(table.label[rows]):
            c_rows = rows[table.label[rows] == c]
            confused = np.bincount(y_pred[c_rows], minlength=table.num_classes).argmax()
            out["per_class"].append({
                "group": g,
                "class": names[c] if c < len(names) else f"class{int(c)}",
                "n": int(c_rows.size),
                "auroc": auroc(table.score[c_rows]),
                "most_confused_with": (known_classes[confused] if confused < len(known_classes)
                                       else f"class{int(confused)}"),
            })

    if with_legacy:
        out["legacy_metrics"] = official_metrics(table, known_rows, group_rows)

    if bootstrap:
        intervals = {}
        for g, rows in group_rows.items():
            if rows.size:
                ci = metrics.bootstrap_ci(known_score, table.score[rows], correct, n_boot=int(bootstrap), seed=seed)
                intervals[g] = {m: [lo, hi] for m, (lo, hi) in ci.items()}
        out["bootstrap"] = {"n": int(bootstrap), "seed": int(seed), "level": 0.95,
                            "definition": "tie-aware", "open_set": intervals}
    return out


#: The label of the ``legacy_metrics`` block of metrics.json.
LEGACY_NOTE = ("official ICTMCG/POSE evaluation (utils/evaluation.py): class = argmax of the float32 softmax, "
               "AUROC/TNR with ties counted as errors, OSCR with ties in NumPy's unstable argsort order over "
               "the score file's rows")


def official_metrics(table: ScoreTable, known_rows: np.ndarray, group_rows: dict[str, np.ndarray]) -> dict:
    """The numbers the official POSE evaluation prints for this score table, as a labelled block.

    Closed set: ``evaluate_multiclass`` on the argmax of the float32 softmax of the logits (the
    official code takes the argmax of its float32 probabilities; a tie there goes to the first
    class). Open set per group: ``metric_ood`` AUROC and TNR at 95% TPR, ``compute_oscr`` OSCR
    (:mod:`osma_bench.evaluation.legacy`), on the score file's scores in its row order.
    """
    import torch  # the official probabilities are torch's float32 softmax

    probs = torch.from_numpy(np.ascontiguousarray(table.logits, dtype=np.float32)).softmax(dim=1).numpy()
    y_true = table.label[known_rows]
    pred = probs[known_rows].argmax(axis=1)
    known_score = table.score[known_rows]
    correct = pred == y_true
    block: dict = {
        "note": LEGACY_NOTE,
        "numpy": np.__version__,
        "closed_set": {"accuracy": metrics.closed_set_accuracy(y_true, pred),
                       "macro_f1": metrics.macro_f1(y_true, pred), "n": int(known_rows.size)},
        "open_set": {},
    }
    for g, rows in group_rows.items():
        if not rows.size:
            continue
        u = table.score[rows]
        block["open_set"][g] = {
            "auroc": metrics.auroc(known_score, u, legacy=True),
            "oscr": metrics.oscr(known_score, correct, u, legacy=True),
            "tnr_at_95tpr": metrics.tnr_at_tpr(known_score, u, 0.95, legacy=True),
            "n_unknown": int(rows.size),
        }
    return block


def evaluate_file(scores_path: str | os.PathLike, data_root: str | os.PathLike, split: int, legacy: bool = False,
                  bootstrap: int = 0, seed: int = 0, with_legacy: bool = False) -> dict:
    """Read and validate ``scores_path`` against split ``split`` of the dataset at ``data_root``,
    then compute its metrics.json content (see :func:`evaluate_scores`)."""
    table = read_scores(scores_path)
    info = validate_against_split(table, data_root, split)
    return evaluate_scores(table, info, legacy=legacy, with_legacy=with_legacy, bootstrap=bootstrap, seed=seed)
