"""Aggregate runs into the paper's tables: Table 1, clustering, per unknown class.

Pooling rule (the fair protocol): runs are pooled into one row only when they share dataset name,
dataset version (content SHA-256), protocol (budget profile), metric definition (tie-aware or
legacy), method, variant and every non-runtime resolved setting (:func:`identity_key`). Dataset,
version, profile and metric definition make a :class:`Section`; within it, each (method, variant,
settings) is a row: the mean and sample standard deviation (ddof = 1) over its runs (splits x
seeds), with n and the splits and seeds it covers. Runs of one method with different settings are
separate rows (``pose (A)``, ``pose (B)``) with a note naming the settings that differ.

Rows are flagged when their runs come from a dirty tree or from several code versions. Best and
second marks compare only rows with the same n and the same (split, seed) coverage. A row whose
mean best validation accuracy is below :data:`VALIDATION_FLOOR` or more than :data:`CONVERGENCE_GAP`
below Base's on the same data is listed as not converged instead of being ranked. A row that
selects its last epoch in most runs is ranked but flagged ``still improving``: with 18-step epochs
the validation curve is noisy, and Base and POSE themselves end on their last epoch in 2 of 3
seed-0 runs of the committed grid, so the last-epoch share is evidence to show, not a verdict.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from osma_bench.protocol import GROUP_TITLES
from osma_bench.report.collect import GROUP_KEYS, RunRecord, collect_runs
from osma_bench.results import run_label

#: A row is "not converged" when its mean best validation accuracy is below this (the bar of the
#: baselines issue: a method that does not reach it on the embedded task has not learned it) ...
VALIDATION_FLOOR = 0.80
#: ... or this far below Base's on the same data.
CONVERGENCE_GAP = 0.20
#: A ranked row is flagged ``still improving`` when more than this fraction of its runs selected
#: their last epoch.
LAST_EPOCH_FRACTION = 0.5
#: Table 1 columns: (key, group or None, metric, short title)
TABLE1_COLUMNS: tuple[tuple[str, str | None, str, str], ...] = (("acc", None, "accuracy", "Acc"),) + tuple(
    (f"{g}_{m}", g, m, f"{GROUP_TITLES[g]} {'AUC' if m == 'auroc' else 'OSCR'}")
    for g in GROUP_KEYS for m in ("auroc", "oscr")
)


@dataclass
class Cell:
    """Mean, standard deviation and count of one metric over a row's runs (fractions)."""

    values: list[float]
    bootstrap: list[tuple[float, float]] = field(default_factory=list)

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float:
        return float(np.mean(self.values))

    @property
    def std(self) -> float | None:
        return float(np.std(self.values, ddof=1)) if self.n > 1 else None

    def ci(self, level: float = 0.95) -> tuple[float, float] | None:
        """Student-t interval of the mean over runs; for one run its bootstrap interval, if any."""
        if self.n > 1:
            from scipy.stats import t

            half = t.ppf(0.5 + level / 2, self.n - 1) * self.std / math.sqrt(self.n)
            return self.mean - half, self.mean + half
        if self.bootstrap:
            return self.bootstrap[0]
        return None


@dataclass
class MethodRow:
    """One pooled row: a method (and variant) with one set of settings, over its runs."""

    method: str
    runs: list[RunRecord]
    cells: dict[str, Cell]
    label: str = ""
    variant: str | None = None
    #: Why the row is not ranked (empty: converged or unknown).
    not_converged: str = ""

    def __post_init__(self) -> None:
        self.label = self.label or run_label(self.method, self.variant)

    @property
    def n(self) -> int:
        return len(self.runs)

    @property
    def coverage(self) -> tuple[tuple[int, int], ...]:
        """The (split, seed) pairs of the row's runs, sorted."""
        return tuple(sorted((r.split, r.seed) for r in self.runs))

    @property
    def splits(self) -> list[int]:
        return sorted({r.split for r in self.runs})

    @property
    def seeds(self) -> list[int]:
        return sorted({r.seed for r in self.runs})

    @property
    def code_versions(self) -> list[str]:
        return sorted({r.code_version for r in self.runs})

    @property
    def flags(self) -> list[str]:
        """``dirty`` (a run from a tree with uncommitted changes), ``N versions`` (several code
        versions pooled), ``external`` (score files evaluated with osma-bench eval), ``still improving``
        (more than :data:`LAST_EPOCH_FRACTION` of the runs selected their last epoch)."""
        flags = []
        if any(r.external for r in self.runs):
            flags.append("external")
        if any(r.dirty for r in self.runs):
            flags.append("dirty")
        versions = [v for v in self.code_versions if v != "external"]
        if len(versions) > 1:
            flags.append(f"{len(versions)} versions")
        last = self.last_epoch_fraction
        if last is not None and last > LAST_EPOCH_FRACTION:
            flags.append("still improving")
        return flags

    @property
    def best_val_accuracy(self) -> float | None:
        """Mean over runs of each run's best validation accuracy (None without histories)."""
        values = [r.best_val_accuracy for r in self.runs if r.best_val_accuracy is not None]
        return float(np.mean(values)) if values else None

    @property
    def last_epoch_fraction(self) -> float | None:
        """Fraction of runs (selecting on validation accuracy) whose selected epoch was the last."""
        values = [r.selected_last for r in self.runs if r.selected_last is not None and r.select_on != "last"]
        return float(np.mean(values)) if values else None


@dataclass
class ClusterRow:
    method: str
    algorithm: str
    k: int
    purity: Cell
    nmi: Cell
    ari: Cell


@dataclass
class PerClassRow:
    method: str
    group: str
    name: str
    n_images: int
    auroc: Cell
    most_confused_with: str


@dataclass
class Section:
    """Runs that may be pooled: same dataset, dataset version, protocol and metric definition."""

    dataset: str
    dataset_sha256: str
    profile: str
    legacy: bool
    rows: list[MethodRow]
    clustering: list[ClusterRow]
    per_class: list[PerClassRow]
    #: Why some runs of one method were not pooled (settings that differ).
    notes: list[str] = field(default_factory=list)

    @property
    def ranked(self) -> list[MethodRow]:
        """Rows that are ranked (converged, or no evidence of the opposite)."""
        return [r for r in self.rows if not r.not_converged]

    @property
    def unconverged(self) -> list[MethodRow]:
        return [r for r in self.rows if r.not_converged]

    @property
    def title(self) -> str:
        sha = self.dataset_sha256[:12] or "unknown version"
        return (f"Dataset {self.dataset} (version {sha}), profile {self.profile}, "
                f"{'legacy POSE/ARPL' if self.legacy else 'tie-aware'} metrics")

    @property
    def slug(self) -> str:
        return f"{self.dataset}-{self.dataset_sha256[:8] or 'nosha'}-{self.profile}{'-legacy' if self.legacy else ''}"


@dataclass
class Report:
    """Everything ``osma-bench report`` shows: sections, unusable runs, and the published numbers."""

    results_dir: Path
    sections: list[Section]
    problems: list[RunRecord]

    @property
    def runs(self) -> list[RunRecord]:
        return [r for s in self.sections for row in s.rows for r in row.runs]


def _table1_row(method: str, runs: list[RunRecord], variant: str | None = None, label: str = "") -> MethodRow:
    cells: dict[str, Cell] = {}
    for key, group, metric, _ in TABLE1_COLUMNS:
        values, boot = [], []
        for r in runs:
            m = r.metrics
            if group is None:
                values.append(float(m["closed_set"]["accuracy"]))
                continue
            g = m["open_set"].get(group)
            if g is None:
                continue
            values.append(float(g[metric]))
            b = (m.get("bootstrap") or {}).get("open_set", {}).get(group, {}).get(metric)
            if isinstance(b, list) and len(b) == 2:
                boot.append((float(b[0]), float(b[1])))
        if values:
            cells[key] = Cell(values, boot if len(boot) == len(values) else [])
    return MethodRow(method, runs, cells, label=label, variant=variant)


def _clustering_rows(method: str, runs: list[RunRecord]) -> list[ClusterRow]:
    acc: dict[tuple[str, int], dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in runs:
        for res in (r.clustering or {}).get("results", []):
            try:
                key = (str(res.get("method", "kmeans")), int(res["k"]))
                vals = {m: float(res[m]) for m in ("purity", "nmi", "ari")}
            except (KeyError, TypeError, ValueError):
                continue
            for m, v in vals.items():
                acc[key][m].append(v)
    return [ClusterRow(method, alg, k, Cell(v["purity"]), Cell(v["nmi"]), Cell(v["ari"]))
            for (alg, k), v in sorted(acc.items())]


def _per_class_rows(method: str, runs: list[RunRecord]) -> list[PerClassRow]:
    auc: dict[tuple[str, str], list[float]] = defaultdict(list)
    images: Counter = Counter()
    confused: dict[tuple[str, str], Counter] = defaultdict(Counter)
    order: list[tuple[str, str]] = []
    for r in runs:
        for entry in r.metrics.get("per_class", []) or []:
            try:
                key = (str(entry["group"]), str(entry["class"]))
                value = float(entry["auroc"])
            except (KeyError, TypeError, ValueError):
                continue
            if key not in auc:
                order.append(key)
            auc[key].append(value)
            images[key] += int(entry.get("n", 0) or 0)
            confused[key][str(entry.get("most_confused_with", "?"))] += 1
    group_rank = {g: i for i, g in enumerate(GROUP_KEYS)}
    order.sort(key=lambda k: (group_rank.get(k[0], 9), k[1]))
    return [PerClassRow(method, g, c, images[(g, c)], Cell(auc[(g, c)]),
                        sorted(confused[(g, c)].items(), key=lambda kv: (-kv[1], kv[0]))[0][0])
            for g, c in order]


def identity_key(run: RunRecord) -> str:
    """The canonical text of a run's identity settings: runs pool only when these agree."""
    import json

    return json.dumps(run.identity, sort_keys=True, default=str)


def _setting_differences(groups: list[list[RunRecord]]) -> str:
    """``lr (0.001 / 0.0003), width (32 / 8)``: the identity keys whose values differ between groups."""
    keys = sorted({k for g in groups for k in g[0].identity})
    parts = []
    for key in keys:
        values = [g[0].identity.get(key, "<absent>") for g in groups]
        if any(v != values[0] for v in values[1:]):
            parts.append(f"{key} ({' / '.join(str(v) for v in values)})")
    return ", ".join(parts[:8]) + (f", and {len(parts) - 8} more" if len(parts) > 8 else "")


def _pooled_rows(runs: list[RunRecord]) -> tuple[list[tuple[str, str | None, str, list[RunRecord]]], list[str]]:
    """``[(method, variant, label, runs)]`` pooled by identity, and notes on what was kept apart."""
    by_method: dict[tuple[str, str], dict[str, list[RunRecord]]] = defaultdict(lambda: defaultdict(list))
    for r in runs:
        by_method[(r.method, r.variant or "")][identity_key(r)].append(r)
    rows, notes = [], []
    for (method, variant), by_identity in sorted(by_method.items()):
        name = run_label(method, variant or None)
        groups = [by_identity[k] for k in sorted(by_identity, key=lambda k: (-len(by_identity[k]), k))]
        if len(groups) == 1:
            rows.append((method, variant or None, name, groups[0]))
            continue
        letters = [chr(ord("A") + i) if i < 26 else str(i) for i in range(len(groups))]
        for letter, group in zip(letters, groups, strict=True):
            rows.append((method, variant or None, f"{name} ({letter})", group))
        notes.append(f"{name}: {len(groups)} groups of runs with different settings are not pooled "
                     f"({', '.join(letters)}); they differ in {_setting_differences(groups)}")
    return rows, notes


def _mark_unconverged(rows: list[MethodRow]) -> None:
    """Set ``not_converged`` with the evidence: validation accuracy below :data:`VALIDATION_FLOOR` or
    more than :data:`CONVERGENCE_GAP` below Base's (the last-epoch share is a flag, not a reason)."""
    bases = [r for r in rows if r.method == "base" and r.variant is None and r.best_val_accuracy is not None]
    base_val = max(bases, key=lambda r: r.n).best_val_accuracy if bases else None
    for row in rows:
        reasons = []
        val = row.best_val_accuracy
        if val is not None and val < VALIDATION_FLOOR:
            reasons.append(f"validation accuracy {100 * val:.1f} < {100 * VALIDATION_FLOOR:.0f}")
        if base_val is not None and val is not None and val < base_val - CONVERGENCE_GAP:
            reasons.append(f"validation accuracy {100 * val:.1f} vs Base {100 * base_val:.1f}")
        last = row.last_epoch_fraction
        if reasons and last is not None and last > LAST_EPOCH_FRACTION:
            reasons.append(f"last epoch selected in {round(last * row.n)} of {row.n} runs")
        row.not_converged = "; ".join(reasons)


def build_report(results_dir: str | Path, methods: list[str] | None = None, splits: list[int] | None = None,
                 seeds: list[int] | None = None, profile: str | None = None) -> Report:
    """Collect the runs under ``results_dir`` (optionally only these methods, splits, seeds, profile)
    and aggregate them into sections and tables (see the module docstring for the pooling rule)."""
    runs = [r for r in collect_runs(results_dir)
            if (not methods or r.method in methods or run_label(r.method, r.variant) in methods)
            and (not splits or r.split in splits) and (not seeds or r.seed in seeds)
            and (not profile or r.profile == profile)]
    good = [r for r in runs if r.ok]
    problems = [r for r in runs if not r.ok]
    by_section: dict[tuple, list[RunRecord]] = defaultdict(list)
    for r in good:
        by_section[(r.dataset, r.dataset_sha256, r.profile, r.legacy)].append(r)
    sections = []
    for (dataset, sha, prof, legacy), section_runs in sorted(by_section.items()):
        pooled, notes = _pooled_rows(section_runs)
        rows = [_table1_row(method, group, variant, label) for method, variant, label, group in pooled]
        _mark_unconverged(rows)
        sections.append(Section(
            dataset, sha, prof, legacy, rows=rows,
            clustering=[c for method, variant, label, group in pooled for c in _clustering_rows(label, group)],
            per_class=[p for method, variant, label, group in pooled for p in _per_class_rows(label, group)],
            notes=notes,
        ))
    return Report(Path(results_dir), sections, problems)


def comparable_marks(rows: list[MethodRow], key: str, decimals: int = 2) -> dict[str, str]:
    """Best / second marks of column ``key``, given only among ranked rows with the same n and the
    same (split, seed) coverage (``{label: mark}``; unranked rows get none)."""
    marks = {r.label: "" for r in rows}
    classes: dict[tuple, list[MethodRow]] = defaultdict(list)
    for r in rows:
        if not r.not_converged:
            classes[(r.n, r.coverage)].append(r)
    for members in classes.values():
        marks.update(rank_marks({r.label: (r.cells[key].mean if key in r.cells else None) for r in members},
                                decimals))
    return marks


def rank_marks(values: dict[str, float | None], decimals: int = 2) -> dict[str, str]:
    """``{row: "best" | "second" | ""}`` by the value shown (percent, rounded); ties share a mark.

    Marks are only given when at least two rows have a value.
    """
    shown = {k: round(100 * v, decimals) for k, v in values.items() if v is not None}
    marks = {k: "" for k in values}
    distinct = sorted(set(shown.values()), reverse=True)
    if len(shown) < 2:
        return marks
    for k, v in shown.items():
        if v == distinct[0]:
            marks[k] = "best"
        elif len(distinct) > 1 and v == distinct[1]:
            marks[k] = "second"
    return marks
