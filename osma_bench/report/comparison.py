"""The report's comparison sections: the paper's published tables beside ours, the rank agreement
between them, and paired differences of every method against POSE and against Base.

Published numbers come from :mod:`osma_bench.report.published` (facts from the paper, on the full
OSMA data at 128x128, never pooled with our runs and never used to tune anything). The statistics
are :mod:`osma_bench.report.compare`'s.
"""

from __future__ import annotations

from osma_bench.report.compare import kendall_tau, order_by, paired_differences
from osma_bench.report.names import display_name
from osma_bench.report.published import PUBLISHED_METHODS, SCOPE, TABLES, PublishedTable
from osma_bench.report.tables import MethodRow, Section

DASH = "–"
#: Our Table 1 column for each published column key.
_OUR_KEY = {"closed_set_acc": "acc", "seed_auc": "seed_auroc", "seed_oscr": "seed_oscr", "arch_auc": "arch_auroc",
            "arch_oscr": "arch_oscr", "dataset_auc": "dataset_auroc", "dataset_oscr": "dataset_oscr",
            "all_auc": "all_auroc", "all_oscr": "all_oscr"}
#: Metrics of the paired differences: (our column key, title).
PAIRED_METRICS = (("acc", "Acc"), ("all_auroc", "Unseen All AUC"), ("all_oscr", "Unseen All OSCR"))
REFERENCES = ("pose", "base")


def _md(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join([":--"] + ["--:"] * (len(header) - 1)) + "|"]
    return lines + ["| " + " | ".join(r) + " |" for r in rows]


def _our_row(section: Section, method: str, variant: str | None) -> MethodRow | None:
    """Our pooled row for (method, variant): the one with the most runs when settings differ."""
    rows = [r for r in section.rows if r.method == method and r.variant == variant]
    return max(rows, key=lambda r: r.n) if rows else None


def _fmt(value: float | None) -> str:
    return DASH if value is None else f"{value:.2f}"


def published_beside_ours(table: PublishedTable, section: Section) -> list[str]:
    """One published table, then our numbers for the same methods, then the rank agreement."""
    if "all_auc" not in table.keys:  # Table 3 (clustering): shown as published, ours is the clustering table
        out = [f"#### {table.title} (published)", "", f"Source: {table.source}. {SCOPE}.", ""]
        return out + _md(["Method", *table.columns], [[m, *(_fmt(v) for v in vals)] for m, vals in table.rows]) + [""]
    out = [f"#### {table.title}", "", f"Figures {SCOPE}. Source: {table.source}.", ""]
    out += _md(["Method (published)", *table.columns], [[m, *(_fmt(v) for v in vals)] for m, vals in table.rows])
    ours_rows, ours = [], {}
    for printed, _values in table.rows:
        method, variant = PUBLISHED_METHODS.get(printed, (None, None))
        row = _our_row(section, method, variant) if method else None
        if row is None:
            ours_rows.append([printed, "no runs", *([DASH] * len(table.keys))])
            continue
        ours[printed] = row
        cells = [_fmt(100 * row.cells[_OUR_KEY[k]].mean) if _OUR_KEY[k] in row.cells else DASH for k in table.keys]
        note = f"n = {row.n}" + (", not converged" if row.not_converged else "")
        ours_rows.append([printed, note, *cells])
    out += ["", f"Ours on this dataset (mean over runs, percent; {section.dataset}, profile {section.profile}):", ""]
    out += _md(["Method", "runs", *table.columns], ours_rows) + [""]
    for key, title in (("all_auc", "Unseen All AUC"), ("closed_set_acc", "closed-set accuracy")):
        published = order_by({m: v for m, v in table.column(key).items() if m in ours})
        mine = order_by({m: ours[m].cells[_OUR_KEY[key]].mean for m in ours if _OUR_KEY[key] in ours[m].cells})
        agreement = kendall_tau(published, mine)
        if agreement.n >= 2:
            out.append(f"- Rank agreement on {title}: Kendall's tau = {agreement.tau:.2f} over {agreement.n} methods "
                       f"(published order: {', '.join(published)}; ours: {', '.join(mine)}).")
        else:
            out.append(f"- Rank agreement on {title}: fewer than 2 methods in common.")
    return out + [""]


def paired_markdown(section: Section) -> list[str]:
    """``method - reference`` over matched (split, seed) runs, for POSE and Base as references."""
    rows = {r.label: r for r in section.rows}
    out = []
    for reference in REFERENCES:
        if reference not in rows:
            continue
        body = []
        for key, title in PAIRED_METRICS:
            runs = {label: {(run.split, run.seed): _run_value(run, key) for run in row.runs}
                    for label, row in rows.items()}
            for diff in paired_differences(runs, reference):
                if diff.n == 0:
                    continue
                interval = DASH if diff.low is None else f"[{100 * diff.low:+.2f}, {100 * diff.high:+.2f}]"
                p = DASH if diff.p_value is None else f"{diff.p_value:.3g}"
                body.append([display_name(diff.method), title, str(diff.n), f"{100 * diff.mean:+.2f}", interval, p,
                             diff.note or ""])
        if body:
            out += [f"#### Against {display_name(reference)}", ""]
            out += _md(["Method", "Metric", "pairs", "mean diff", "95% bootstrap CI", "Wilcoxon p", "note"], body)
            out += [""]
    if out:
        out = ["### Paired differences over matched splits and seeds", "",
               "Method minus reference on the runs both have (same split and seed), in points; the interval is a "
               "seeded percentile bootstrap of the mean difference, p a two-sided Wilcoxon signed-rank test. "
               "\"Level with\" means the interval contains 0.", ""] + out
    return out


def _run_value(run, key: str) -> float | None:
    metrics = run.metrics or {}
    if key == "acc":
        return (metrics.get("closed_set") or {}).get("accuracy")
    group, metric = key.split("_", 1)
    return ((metrics.get("open_set") or {}).get(group) or {}).get(metric)


def comparison_markdown(section: Section) -> list[str]:
    """The comparison block of one report section: paired differences, then the published tables."""
    out = paired_markdown(section)
    out += ["### The paper's numbers beside ours", "",
            "The published figures are the paper's (full OSMA data, 128x128, five splits); ours are this "
            "section's runs. They are not the same experiment: compare orders, not values.", ""]
    for table in TABLES:
        out += published_beside_ours(table, section)
    return out
