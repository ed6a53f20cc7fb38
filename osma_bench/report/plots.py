"""PNG plots from the score files of a report's runs: ROC and OSCR curves, score histograms, t-SNE.

For each section the curves of every method are drawn from one representative run per method
(its lowest split, then lowest seed, that has a readable ``scores.h5``), named in the legend:
runs of different splits are never pooled into one curve. t-SNE (scikit-learn, seeded) embeds a
stratified subsample of known and unknown test features when the score file has ``features``, together
with a subsample of the features of the method's augmented samples when it has those too.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from osma_bench.errors import OsmaError
from osma_bench.evaluation import metrics
from osma_bench.evaluation.scores import ScoreTable, read_scores
from osma_bench.protocol import SCORE_GROUPS as GROUPS
from osma_bench.report.robustness import write_robustness_plots
from osma_bench.report.tables import Report, Section

TSNE_MAX_POINTS = 2000  # known and unknown test images in a t-SNE plot
TSNE_MAX_AUGMENTED = 500  # augmented samples in a t-SNE plot (on top of TSNE_MAX_POINTS)
TSNE_SOURCES_SHOWN = 5  # up to this many augmentation sources get a legend entry each; more share one


def _figure():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _representatives(section: Section, notes: list[str]) -> list[tuple[str, str, ScoreTable]]:
    chosen = []
    for row in section.rows:
        for run in sorted(row.runs, key=lambda r: (r.split, r.seed)):
            if not run.scores_path.is_file():
                continue
            try:
                table = read_scores(run.scores_path)
            except OsmaError as exc:
                notes.append(f"skipped {run.scores_path}: {exc}")
                continue
            chosen.append((row.method, f"split{run.split} seed{run.seed}", table))
            break
        else:
            notes.append(f"{section.slug}: no readable scores.h5 for {row.method}; no curves drawn for it")
    return chosen


def _known_unknown(table: ScoreTable):
    known = table.rows(0)
    correct = np.argmax(table.logits[known], axis=1) == table.label[known]
    return table.score[known], correct, table.score[table.group > 0]


def _curves(plt, chosen, kind: str, title: str, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(5, 5))
    for method, which, table in chosen:
        k, c, u = _known_unknown(table)
        if kind == "roc":
            fpr, rate, _ = metrics.roc_curve(k, u)
            area = metrics.auroc(k, u)
        else:
            fpr, rate, _ = metrics.oscr_curve(k, c, u)
            area = metrics.oscr(k, c, u)
        ax.plot(fpr, rate, label=f"{method} ({which}) {100 * area:.2f}")
    if kind == "roc":
        ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
    ax.set_xlabel("false positive rate (unknown accepted)")
    ax.set_ylabel("true positive rate (known accepted)" if kind == "roc" else "correct classification rate")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _histogram(plt, method: str, which: str, table: ScoreTable, path: Path) -> None:
    k, _, u = _known_unknown(table)
    fig, ax = plt.subplots(figsize=(5, 3.5))
    lo, hi = float(min(k.min(), u.min())), float(max(k.max(), u.max()))
    bins = np.linspace(lo, hi if hi > lo else lo + 1.0, 51)
    ax.hist(k, bins=bins, alpha=0.6, density=True, label=f"known ({k.size})")
    ax.hist(u, bins=bins, alpha=0.6, density=True, label=f"unknown ({u.size})")
    ax.set_xlabel("score (higher = known)")
    ax.set_ylabel("density")
    ax.set_title(f"{method} ({which})", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _tsne_rows(table: ScoreTable, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Seeded, stratified subsample: rows of the test images (per group) and of the augmented samples
    (per source), at most TSNE_MAX_POINTS and TSNE_MAX_AUGMENTED."""
    chosen = []
    per_group = TSNE_MAX_POINTS // len(GROUPS)
    for code in range(len(GROUPS)):
        rows = table.rows(code)
        chosen.append(rng.permutation(rows)[:per_group] if rows.size > per_group else rows)
    aug_chosen = []
    if table.augmented is not None:
        names = table.augmented.sources()
        per_source = max(1, TSNE_MAX_AUGMENTED // len(names))
        for name in names:
            rows = table.augmented.rows(name)
            aug_chosen.append(rng.permutation(rows)[:per_source] if rows.size > per_source else rows)
    aug_rows = np.sort(np.concatenate(aug_chosen)) if aug_chosen else np.zeros(0, np.int64)
    if aug_rows.size > TSNE_MAX_AUGMENTED:  # more sources than TSNE_MAX_AUGMENTED
        aug_rows = np.sort(rng.permutation(aug_rows)[:TSNE_MAX_AUGMENTED])
    return np.sort(np.concatenate(chosen)), aug_rows


def _scatter_augmented(ax, emb: np.ndarray, source: np.ndarray) -> None:
    """Augmented samples as crosses: one colour and legend entry per source when there are few."""
    names = list(dict.fromkeys(source.tolist()))
    if len(names) > TSNE_SOURCES_SHOWN:
        ax.scatter(emb[:, 0], emb[:, 1], s=12, alpha=0.85, marker="x", linewidths=0.9, color="black",
                   label=f"augmented ({len(names)} sources)")
        return
    colours = ["tab:purple", "tab:brown", "tab:pink", "tab:olive", "tab:cyan"]
    for i, name in enumerate(names):
        sel = source == name
        ax.scatter(emb[sel, 0], emb[sel, 1], s=12, alpha=0.85, marker="x", linewidths=0.9,
                   color=colours[i % len(colours)], label=f"augmented {name.decode('utf-8')}")


def _tsne(plt, method: str, which: str, table: ScoreTable, path: Path, seed: int = 0) -> None:
    from sklearn.manifold import TSNE

    rng = np.random.default_rng(seed)
    rows, aug_rows = _tsne_rows(table, rng)
    features = table.features[rows].astype(np.float64)
    if aug_rows.size:  # one embedding for test images and augmented samples alike
        features = np.concatenate([features, table.augmented.features[aug_rows].astype(np.float64)])
    total = features.shape[0]
    perplexity = float(min(30.0, max(2.0, (total - 1) / 3.0)))
    emb = TSNE(n_components=2, init="pca", random_state=seed, perplexity=perplexity).fit_transform(features)
    fig, ax = plt.subplots(figsize=(5.5, 5))
    group = table.group[rows]
    for code, name in enumerate(GROUPS):
        sel = group == code
        if sel.any():
            ax.scatter(emb[:rows.size][sel, 0], emb[:rows.size][sel, 1], s=4, alpha=0.7,
                       label="known" if code == 0 else f"unknown {name}")
    if aug_rows.size:
        _scatter_augmented(ax, emb[rows.size:], table.augmented.source[aug_rows])
    ax.set_title(f"t-SNE of features: {method} ({which})", fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.legend(fontsize=7, markerscale=3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_plots(report: Report, out_dir: str | Path, tsne: bool = True) -> tuple[list[Path], list[str]]:
    """Write every plot of ``report`` into ``out_dir``; return (files written, notes on what was skipped)."""
    plt = _figure()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    notes: list[str] = []
    for section in report.sections:
        chosen = _representatives(section, notes)
        if not chosen:
            continue
        for kind, title in (("roc", "ROC, known vs all unknown"), ("oscr", "OSCR curve, all unknown")):
            path = out / f"{section.slug}_{kind}.png"
            _curves(plt, chosen, kind, f"{title}\n{section.title}", path)
            written.append(path)
        for method, which, table in chosen:
            path = out / f"{section.slug}_{method}_hist.png"
            _histogram(plt, method, which, table, path)
            written.append(path)
            if tsne and table.features is not None:
                path = out / f"{section.slug}_{method}_tsne.png"
                _tsne(plt, method, which, table, path)
                written.append(path)
            elif tsne:
                notes.append(f"{section.slug}: {method} has no features in scores.h5; no t-SNE")
    written += write_robustness_plots(report.results_dir, out)
    return written, notes
