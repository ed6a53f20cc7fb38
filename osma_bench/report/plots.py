"""Plots from the score files of a report's runs: ROC and OSCR curves, score histograms, t-SNE.

For each section the curves of every method are drawn from one representative run per method
(its lowest split, then lowest seed, that has a readable ``scores.h5``): runs of different splits
are never pooled into one curve. The legend names each method as papers do (``ARPL+CS``,
``report/names.py``) with its area, ``POSE (AUC 84.9)``, and the run it shows when the methods'
runs differ; every curve has its own colour and line style, so the figures read in grey too.
t-SNE (scikit-learn, seeded) embeds a stratified subsample of known and unknown test features when
the score file has ``features``, together with a subsample of the features of the method's
augmented samples when it has those too.

Formats: ``png`` (300 dpi), ``pdf`` and ``svg`` (vector, fonts kept as text). Titles (dataset,
profile, run) can be left off for a paper, whose caption says it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from osma_bench.errors import OsmaError
from osma_bench.evaluation import metrics
from osma_bench.evaluation.scores import ScoreTable, read_scores
from osma_bench.protocol import SCORE_GROUPS as GROUPS
from osma_bench.report.names import display_name
from osma_bench.report.robustness import write_robustness_plots
from osma_bench.report.tables import Report, Section

TSNE_MAX_POINTS = 2000  # known and unknown test images in a t-SNE plot
TSNE_MAX_AUGMENTED = 500  # augmented samples in a t-SNE plot (on top of TSNE_MAX_POINTS)
TSNE_SOURCES_SHOWN = 5  # up to this many augmentation sources get a legend entry each; more share one
FORMATS = ("png", "pdf", "svg")
PNG_DPI = 300
LEGEND_INSIDE = 5  # up to this many curves the legend sits in the empty lower right corner
#: line styles cycled against the colours: no two of the first 40 curves look alike
LINE_STYLES = ("-", "--", "-.", ":", (0, (5, 1, 1, 1, 1, 1)), (0, (1, 1)), (0, (8, 2)), (0, (3, 1, 1, 1)))


def _figure():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    matplotlib.rcParams.update({"pdf.fonttype": 42, "ps.fonttype": 42, "svg.fonttype": "none",
                                "font.size": 9})
    return plt


def parse_formats(text: str) -> tuple[str, ...]:
    """``"pdf,svg,png"`` -> ``("pdf", "svg", "png")``; OsmaError for an unknown format."""
    formats = tuple(dict.fromkeys(f.strip().lower() for f in text.split(",") if f.strip()))
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        shown = ", ".join(unknown) if unknown else repr(text)
        raise OsmaError(f"--plot-format: unknown format(s) {shown}; choose from {', '.join(FORMATS)} "
                        "(comma-separated)")
    return formats


def _save(plt, fig, stem: Path, formats: tuple[str, ...]) -> list[Path]:
    paths = []
    for fmt in formats:
        path = stem.with_name(f"{stem.name}.{fmt}")
        fig.savefig(path, dpi=PNG_DPI if fmt == "png" else None, bbox_inches="tight")
        paths.append(path)
    plt.close(fig)
    return paths


def _style(i: int) -> dict:
    """Colour and line style of the i-th curve (10 colours x 8 styles, stepped so both change)."""
    return {"color": f"C{i % 10}", "linestyle": LINE_STYLES[(i + i // 10) % len(LINE_STYLES)]}


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


def _curves(plt, chosen, kind: str, title: str | None, stem: Path, formats: tuple[str, ...]) -> list[Path]:
    fig, ax = plt.subplots(figsize=(3.6, 3.4))
    runs_differ = len({which for _, which, _ in chosen}) > 1
    curves = []
    for method, which, table in chosen:
        k, c, u = _known_unknown(table)
        if kind == "roc":
            fpr, rate, _ = metrics.roc_curve(k, u)
            area, name = metrics.auroc(k, u), "AUC"
        else:
            fpr, rate, _ = metrics.oscr_curve(k, c, u)
            area, name = metrics.oscr(k, c, u), "OSCR"
        run = f", {which}" if runs_differ else ""
        curves.append((area, fpr, rate, f"{display_name(method)} ({name} {100 * area:.1f}{run})"))
    # the legend lists the best first; each method keeps its style from the section's method order
    styles = {label: _style(i) for i, (*_, label) in enumerate(curves)}
    for _, fpr, rate, label in sorted(curves, key=lambda c: -c[0]):
        ax.plot(fpr, rate, linewidth=1.4, label=label, **styles[label])
    if kind == "roc":
        ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=0.8)
    ax.set_xlabel("false positive rate (unknown accepted)")
    ax.set_ylabel("true positive rate (known accepted)" if kind == "roc" else "correct classification rate")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    if title:
        ax.set_title(title, fontsize=8)
    if len(curves) <= LEGEND_INSIDE:
        ax.legend(fontsize=7, loc="lower right", handlelength=2.8, frameon=False)
    else:  # many methods: beside the plot, not over the curves
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), handlelength=2.8, frameon=False)
    return _save(plt, fig, stem, formats)


def _histogram(plt, method: str, which: str, table: ScoreTable, stem: Path, formats: tuple[str, ...],
               titles: bool) -> list[Path]:
    k, _, u = _known_unknown(table)
    fig, ax = plt.subplots(figsize=(3.6, 2.6))
    lo, hi = float(min(k.min(), u.min())), float(max(k.max(), u.max()))
    bins = np.linspace(lo, hi if hi > lo else lo + 1.0, 51)
    ax.hist(k, bins=bins, alpha=0.55, density=True, color="C0", label=f"known ({k.size})")
    ax.hist(u, bins=bins, density=True, histtype="step", linewidth=1.4, color="C3", linestyle="--",
            label=f"unknown ({u.size})")
    ax.set_xlabel("score (higher = known)")
    ax.set_ylabel("density")
    if titles:
        ax.set_title(f"{display_name(method)} ({which})", fontsize=8)
    ax.legend(fontsize=7, frameon=False)
    return _save(plt, fig, stem, formats)


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


def _tsne(plt, method: str, which: str, table: ScoreTable, stem: Path, formats: tuple[str, ...], titles: bool,
          seed: int = 0) -> list[Path]:
    from sklearn.manifold import TSNE

    rng = np.random.default_rng(seed)
    rows, aug_rows = _tsne_rows(table, rng)
    features = table.features[rows].astype(np.float64)
    if aug_rows.size:  # one embedding for test images and augmented samples alike
        features = np.concatenate([features, table.augmented.features[aug_rows].astype(np.float64)])
    total = features.shape[0]
    perplexity = float(min(30.0, max(2.0, (total - 1) / 3.0)))
    emb = TSNE(n_components=2, init="pca", random_state=seed, perplexity=perplexity).fit_transform(features)
    fig, ax = plt.subplots(figsize=(3.8, 3.6))
    group = table.group[rows]
    for code, name in enumerate(GROUPS):
        sel = group == code
        if sel.any():
            ax.scatter(emb[:rows.size][sel, 0], emb[:rows.size][sel, 1], s=4, alpha=0.7,
                       label="known" if code == 0 else f"unknown {name}")
    if aug_rows.size:
        _scatter_augmented(ax, emb[rows.size:], table.augmented.source[aug_rows])
    if titles:
        ax.set_title(f"t-SNE of features: {display_name(method)} ({which})", fontsize=8)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.legend(fontsize=7, markerscale=3)
    return _save(plt, fig, stem, formats)


def write_plots(report: Report, out_dir: str | Path, tsne: bool = True, formats: tuple[str, ...] = ("png",),
                titles: bool = True) -> tuple[list[Path], list[str]]:
    """Write every plot of ``report`` into ``out_dir`` in each of ``formats``; return (files written,
    notes on what was skipped). ``titles=False`` leaves the titles off (a paper's caption says it)."""
    plt = _figure()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    notes: list[str] = []
    for section in report.sections:
        chosen = _representatives(section, notes)
        if not chosen:
            continue
        runs = sorted({which for _, which, _ in chosen})
        where = (f"{section.dataset}, profile {section.profile}"
                 + (f", {runs[0]}" if len(runs) == 1 else ""))
        for kind, title in (("roc", "ROC, known vs all unknown"), ("oscr", "OSCR, known vs all unknown")):
            written += _curves(plt, chosen, kind, f"{title}\n{where}" if titles else None,
                               out / f"{section.slug}_{kind}", formats)
        for method, which, table in chosen:
            written += _histogram(plt, method, which, table, out / f"{section.slug}_{method}_hist", formats, titles)
            if tsne and table.features is not None:
                written += _tsne(plt, method, which, table, out / f"{section.slug}_{method}_tsne", formats, titles)
            elif tsne:
                notes.append(f"{section.slug}: {method} has no features in scores.h5; no t-SNE")
    written += write_robustness_plots(report.results_dir, out)
    return written, notes
