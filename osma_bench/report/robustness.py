"""The report's robustness section: tables and plots from every run's ``robustness.json``.

A run's ``robustness.json`` (``osma-bench robustness``) holds closed-set accuracy and open-set
metrics of its model on perturbed copies of its test images, one row per perturbation and
strength, plus a ``clean`` row. Runs are pooled only when :func:`comparable_key` agrees (dataset
version, method, profile and every result-changing setting); a section per dataset version and
profile has one column per pooled group. Cells are mean ± sample standard deviation (ddof = 1) over
the group's runs and, for perturbed rows, the mean change from the same runs' clean values.
Everything shown comes from the JSON files, so the section regenerates exactly from them.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from osma_bench.harness.config import RUNTIME_KEYS
from osma_bench.report.names import display_name
from osma_bench.results import run_label
from osma_bench.robustness import ROBUSTNESS_FILE
from osma_bench.robustness.perturbations import CLEAN, KINDS, severity_key

#: (key, title): closed-set accuracy, and AUROC / OSCR of known test images against all unknowns.
METRICS = (("accuracy", "Closed-set accuracy"), ("auroc", "AUROC, all unknowns"), ("oscr", "OSCR, all unknowns"))
#: The setting of each kind that makes two rows of the same strength different perturbations.
_VARIANT = {"resize": "interpolation", "crop": "interpolation", "jpeg": "jpeg_subsampling"}


def comparable_key(record: dict[str, Any]) -> tuple:
    """Runs with equal keys may be pooled, by the report's one rule (:func:`osma_bench.report.tables.
    identity_key`): dataset version, profile, method, variant and every non-runtime setting."""
    from osma_bench.report.collect import _identity

    identity = json.dumps(_identity(record), sort_keys=True, default=str)
    return (str(record.get("dataset_sha256", "")), str(record.get("method", "")), str(record.get("profile", "")),
            identity, str(record.get("variant") or ""))


@dataclass
class RobustRun:
    """One run with a usable ``robustness.json``."""

    path: Path
    dataset: str
    record: dict[str, Any]
    content: dict[str, Any]

    def values(self) -> dict[tuple, dict[str, float]]:
        """``{row key: {metric: value}}`` (fractions) of this run's rows."""
        out = {}
        for row in self.content["rows"]:
            kind = str(row["kind"])
            variant = str(self.content.get(_VARIANT.get(kind, ""), "")) if kind in _VARIANT else ""
            strength = None if kind == CLEAN else float(row["strength"])
            every = row["open_set"]["all"]
            out[(kind, strength, variant)] = {"accuracy": float(row["closed_set"]["accuracy"]),
                                              "auroc": float(every["auroc"]), "oscr": float(every["oscr"])}
        return out


@dataclass
class Group:
    """Runs that may be pooled (one column)."""

    label: str
    method: str
    runs: list[RobustRun]
    differs: str = ""

    def cell(self, row: tuple, metric: str) -> tuple[list[float], list[float]]:
        """Values of ``metric`` at ``row`` over the runs that have it, and their changes from clean."""
        values, drops = [], []
        for run in self.runs:
            table = run.values()
            clean = table.get((CLEAN, None, ""))
            if row in table:
                values.append(table[row][metric])
                if clean is not None:
                    drops.append(table[row][metric] - clean[metric])
        return values, drops


@dataclass
class RobustSection:
    """Groups on one dataset version and profile."""

    dataset: str
    dataset_sha256: str
    profile: str
    groups: list[Group]
    rows: list[tuple] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)

    @property
    def title(self) -> str:
        return f"Dataset {self.dataset} (version {self.dataset_sha256[:12] or 'unknown'}), profile {self.profile}"

    @property
    def slug(self) -> str:
        return f"{self.dataset}-{self.dataset_sha256[:8] or 'nosha'}-{self.profile}"


def _fraction(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and 0 <= value <= 1


def check_content(content: Any) -> str | None:
    """Why ``content`` is not a usable robustness.json, or None."""
    if not isinstance(content, dict) or not isinstance(content.get("rows"), list) or not content["rows"]:
        return "robustness.json has no rows"
    for row in content["rows"]:
        try:
            kind, every = row["kind"], row["open_set"]["all"]
            numbers = (row["closed_set"]["accuracy"], every["auroc"], every["oscr"])
        except (KeyError, TypeError):
            return "robustness.json has a row without closed_set.accuracy and open_set.all auroc/oscr"
        if not all(_fraction(v) for v in numbers):
            return f"robustness.json row {row.get('perturbation')!r} has a value outside [0, 1]"
        if kind != CLEAN and not (isinstance(row.get("strength"), int | float) and math.isfinite(row["strength"])):
            return f"robustness.json row {row.get('perturbation')!r} has no numeric strength"
    if not any(row["kind"] == CLEAN for row in content["rows"]):
        return "robustness.json has no clean row"
    return None


def collect(results_dir: str | Path) -> tuple[list[RobustRun], list[tuple[Path, str]]]:
    """Runs under ``results_dir`` with a usable robustness.json, and (folder, problem) for the others."""
    runs, problems = [], []
    for path in sorted(Path(results_dir).glob(f"*/*/split*/seed*/{ROBUSTNESS_FILE}")):
        folder = path.parent
        try:
            content = json.loads(path.read_text())
            record = json.loads((folder / "run.json").read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            problems.append((folder, f"unreadable robustness.json or run.json ({type(exc).__name__})"))
            continue
        problem = check_content(content)
        if problem is None and (not isinstance(record, dict) or record.get("status") != "complete"):
            problem = "run.json does not say complete"
        elif problem is None and content.get("run_finished") != record.get("finished"):
            problem = "robustness.json is of an earlier run in this folder (rerun osma-bench robustness)"
        elif problem is None and content.get("dataset_sha256") != record.get("dataset_sha256"):
            problem = "robustness.json and run.json name different dataset versions"
        if problem:
            problems.append((folder, problem))
            continue
        runs.append(RobustRun(folder, folder.parent.parent.parent.name, record, content))
    return runs, problems


def _config_difference(a: dict[str, Any], b: dict[str, Any]) -> str:
    keys = sorted(k for k in set(a) | set(b) if k not in RUNTIME_KEYS and a.get(k) != b.get(k))
    return ", ".join(f"{k}={b.get(k)!r}" for k in keys)


def _row_order(row: tuple) -> tuple:
    kind, strength, variant = row
    if kind == CLEAN:
        return (0, 0, "", 0.0)
    known = list(KINDS)
    rank = known.index(kind) + 1 if kind in known else len(known) + 1
    return (rank, kind, variant, severity_key(kind, strength) if kind in KINDS else strength)


def build_sections(results_dir: str | Path) -> tuple[list[RobustSection], list[tuple[Path, str]]]:
    """Group the runs (:func:`comparable_key`) into sections per dataset version and profile."""
    runs, problems = collect(results_dir)
    groups: dict[tuple, list[RobustRun]] = defaultdict(list)
    for run in runs:
        groups[comparable_key(run.record)].append(run)
    by_section: dict[tuple, list[tuple[tuple, list[RobustRun]]]] = defaultdict(list)
    for key, members in sorted(groups.items()):
        first = members[0]
        by_section[(first.dataset, key[0], key[2])].append((key, members))
    sections = []
    for (dataset, sha, profile), entries in sorted(by_section.items()):
        seen: dict[str, list[RobustRun]] = {}
        section_groups = []
        for key, members in entries:
            method = run_label(key[1], key[4] or None)
            count = sum(1 for g in section_groups if g.method == method)
            shown = display_name(key[1]) + method[len(key[1]):]
            label = shown if count == 0 else f"{shown} [{count + 1}]"
            differs = "" if count == 0 else _config_difference(seen[method][0].record.get("config") or {},
                                                               members[0].record.get("config") or {})
            seen.setdefault(method, members)
            section_groups.append(Group(label, method, sorted(members, key=lambda r: (r.record.get("split"),
                                                                                        r.record.get("seed"))),
                                        differs))
        rows = sorted({row for g in section_groups for run in g.runs for row in run.values()}, key=_row_order)
        mismatched = [f"{g.label} split{r.record.get('split')} seed{r.record.get('seed')}"
                      for g in section_groups for r in g.runs if not r.content.get("clean_matches_metrics", True)]
        sections.append(RobustSection(dataset, sha, profile, section_groups, rows, mismatched))
    return sections, problems


def row_label(section: RobustSection, row: tuple) -> str:
    """``clean``, ``jpeg 75``, ``resize 0.5`` (with the variant when a section mixes variants)."""
    kind, strength, variant = row
    if kind == CLEAN:
        return CLEAN
    text = f"{kind} {strength:g}"
    mixed = len({r[2] for r in section.rows if r[0] == kind}) > 1
    return f"{text} ({variant})" if mixed and variant else text


def _stats(values: list[float]) -> tuple[float, float | None]:
    return float(np.mean(values)), (float(np.std(values, ddof=1)) if len(values) > 1 else None)


def format_cell(values: list[float], drops: list[float], clean: bool, n_group: int) -> str:
    """``93.10 ± 1.20 (−2.05)``: percent, mean ± std over runs, mean change from clean."""
    if not values:
        return "–"
    mean, std = _stats(values)
    text = f"{100 * mean:.2f}" + (f" ± {100 * std:.2f}" if std is not None else "")
    if not clean and drops:
        change = 100 * float(np.mean(drops))
        sign = "" if round(change, 2) == 0 else "−" if change < 0 else "+"
        text += f" ({sign}{abs(change):.2f})"
    if len(values) != n_group:
        text += f" [n={len(values)}]"
    return text


def _runs_line(group: Group) -> str:
    splits = sorted({int(r.record.get("split", 0)) for r in group.runs})
    seeds = sorted({int(r.record.get("seed", 0)) for r in group.runs})
    text = (f"{group.label}: n = {len(group.runs)} (split {', '.join(map(str, splits))}; seed "
            f"{', '.join(map(str, seeds))})")
    return text + (f"; settings differ from {group.method}: {group.differs}" if group.differs else "")


def robustness_markdown(results_dir: str | Path) -> list[str]:
    """The section's Markdown lines (none when no run has a robustness.json)."""
    sections, problems = build_sections(results_dir)
    if not sections and not problems:
        return []
    out = ["## Robustness to post-processing", "",
           "Each run's selected model scored on perturbed copies of its known test and unknown images "
           "(`osma-bench robustness`; perturbations defined in docs/ROBUSTNESS.md). Percent, mean ± std over "
           "runs; in brackets the mean change from the same runs' clean value. Runs are pooled only when "
           "dataset version, profile, method and every result-changing setting agree.", ""]
    for section in sections:
        out += [f"### {section.title}", ""]
        out += [f"- {_runs_line(g)}" for g in section.groups] + [""]
        if section.mismatched:
            out += [f"Clean row differs from metrics.json for: {', '.join(section.mismatched)}.", ""]
        for metric, title in METRICS:
            out += [f"#### {title}", ""]
            header = ["Perturbation"] + [g.label for g in section.groups]
            out += ["| " + " | ".join(header) + " |", "|:--|" + "--:|" * len(section.groups)]
            for row in section.rows:
                cells = [format_cell(*g.cell(row, metric), row[0] == CLEAN, len(g.runs)) for g in section.groups]
                out.append("| " + " | ".join([row_label(section, row)] + cells) + " |")
            out.append("")
    if problems:
        out += ["### Robustness files left out", "", "| Run | Problem |", "|:--|:--|"]
        out += [f"| {'/'.join(folder.parts[-4:])} | {problem} |" for folder, problem in problems] + [""]
    return out


def write_robustness_plots(results_dir: str | Path, out_dir: str | Path) -> list[Path]:
    """Per section and metric one PNG: value against strength, one panel per perturbation kind,
    one line per group (mean, with a ± std band); the clean value is the first point of each panel."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sections, _ = build_sections(results_dir)
    out = Path(out_dir)
    written = []
    for section in sections:
        kinds = [k for k in dict.fromkeys((r[0], r[2]) for r in section.rows) if k[0] != CLEAN]
        if not kinds:
            continue
        clean_row = next((r for r in section.rows if r[0] == CLEAN), None)
        for metric, title in METRICS:
            fig, axes = plt.subplots(1, len(kinds), figsize=(3.2 * len(kinds), 3.4), squeeze=False, sharey=True)
            for ax, (kind, variant) in zip(axes[0], kinds, strict=True):
                rows = ([clean_row] if clean_row else []) + [r for r in section.rows if (r[0], r[2]) == (kind, variant)]
                x = np.arange(len(rows))
                for group in section.groups:
                    stats = [_stats(v) if (v := group.cell(r, metric)[0]) else (np.nan, None) for r in rows]
                    mean = np.array([100 * m for m, _ in stats])
                    std = np.array([100 * (s or 0.0) for _, s in stats])
                    ax.plot(x, mean, marker="o", markersize=3, label=group.label)
                    ax.fill_between(x, mean - std, mean + std, alpha=0.15)
                ax.set_xticks(x, [CLEAN if r[0] == CLEAN else f"{r[1]:g}" for r in rows], fontsize=7)
                ax.set_title(f"{kind}" + (f" ({variant})" if variant else ""), fontsize=9)
                ax.set_xlabel({"jpeg": "quality", "resize": "scale", "blur": "sigma (px)", "noise": "std",
                               "crop": "fraction"}.get(kind, "strength"), fontsize=8)
            axes[0][0].set_ylabel(f"{title} (%)", fontsize=8)
            axes[0][-1].legend(fontsize=7, loc="best")
            fig.suptitle(f"{title} under post-processing (mean ± std over runs)\n{section.title}", fontsize=9)
            fig.tight_layout()
            path = out / f"{section.slug}_robustness_{metric}.png"
            out.mkdir(parents=True, exist_ok=True)
            fig.savefig(path, dpi=120)
            plt.close(fig)
            written.append(path)
    return written
