"""Aggregate runs into the paper's tables: Table 1, clustering, per unknown class.

Runs are pooled into one row only when they share dataset name, dataset version (content
SHA-256), protocol (budget profile) and metric definition (tie-aware or legacy): each such
combination is its own :class:`Section`. Within a section a method's row is the mean and sample
standard deviation (ddof = 1) over its runs (splits x seeds), with the number of runs.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from osma_bench.report.collect import GROUP_KEYS, RunRecord, collect_runs

GROUP_TITLES = {"seed": "Unseen Seed", "arch": "Unseen Arch", "dataset": "Unseen Dataset", "all": "Unseen All"}
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
    method: str
    runs: list[RunRecord]
    cells: dict[str, Cell]

    @property
    def n(self) -> int:
        return len(self.runs)


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


def _table1_row(method: str, runs: list[RunRecord]) -> MethodRow:
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
    return MethodRow(method, runs, cells)


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


def build_report(results_dir: str | Path) -> Report:
    """Collect every run under ``results_dir`` and aggregate them into sections and tables."""
    runs = collect_runs(results_dir)
    good = [r for r in runs if r.ok]
    problems = [r for r in runs if not r.ok]
    by_section: dict[tuple, dict[str, list[RunRecord]]] = defaultdict(lambda: defaultdict(list))
    for r in good:
        by_section[(r.dataset, r.dataset_sha256, r.profile, r.legacy)][r.method].append(r)
    sections = []
    for (dataset, sha, profile, legacy), methods in sorted(by_section.items()):
        names = sorted(methods)
        sections.append(Section(
            dataset, sha, profile, legacy,
            rows=[_table1_row(m, methods[m]) for m in names],
            clustering=[row for m in names for row in _clustering_rows(m, methods[m])],
            per_class=[row for m in names for row in _per_class_rows(m, methods[m])],
        ))
    return Report(Path(results_dir), sections, problems)


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
