"""Numbers published in the POSE paper (Yang et al., CVPR 2023, arXiv:2303.06877), Tables 1-3.

They are facts from the paper, kept here as data (the project never reads ``../shared`` at run
time): percent, exactly as printed, on the full OSMA data at 128x128 inputs. Source: the paper's
result tables as the authors' CVPR 2023 poster reproduces them (the per-split values behind them
are not given there). Label them as published wherever they are shown, never mix them into our
runs' statistics, and never tune anything to them.

``PUBLISHED_METHODS`` maps each printed row name to this suite's run (method, variant), for the
rank agreement between published and our orders (:mod:`osma_bench.report.compare`).
"""

from __future__ import annotations

from dataclasses import dataclass

PAPER = ("Yang, Wang, Tang, Zhao, Cao, Tang: Progressive Open Space Expansion for Open-Set Model "
         "Attribution, CVPR 2023 (arXiv:2303.06877)")
SOURCE = f"{PAPER}; the result tables as the authors' CVPR 2023 poster reproduces them"
SCOPE = "published on the full OSMA data at 128x128 (percent, as printed), not reproduced here"


@dataclass(frozen=True)
class PublishedTable:
    """One table of the paper: column labels and keys, rows of (method as printed, values), source."""

    title: str
    source: str
    columns: tuple[str, ...]
    rows: tuple[tuple[str, tuple[float | None, ...]], ...]
    #: Machine names of the columns (the reference CSVs' headers), in the order of ``columns``.
    keys: tuple[str, ...] = ()

    def column(self, key: str) -> dict[str, float | None]:
        """``{method as printed: value}`` of the column ``key``."""
        i = self.keys.index(key)
        return {method: values[i] for method, values in self.rows}


_OPEN_SET_KEYS = ("closed_set_acc", "seed_auc", "seed_oscr", "arch_auc", "arch_oscr", "dataset_auc",
                  "dataset_oscr", "all_auc", "all_oscr")
_OPEN_SET_COLUMNS = ("Closed-set acc.", "Unseen seed AUC", "Unseen seed OSCR", "Unseen arch. AUC",
                     "Unseen arch. OSCR", "Unseen dataset AUC", "Unseen dataset OSCR", "Unseen all AUC",
                     "Unseen all OSCR")

TABLE1 = PublishedTable(
    title="Published Table 1: POSE vs GAN attribution methods",
    source=SOURCE, columns=_OPEN_SET_COLUMNS, keys=_OPEN_SET_KEYS,
    rows=(
        ("PRNU", (55.27, 69.20, 49.16, 70.02, 49.49, 67.68, 48.57, 68.94, 49.06)),
        ("Yu et al.", (85.71, 53.14, 50.99, 69.04, 64.17, 78.79, 72.20, 69.90, 64.86)),
        ("DCT-CNN", (86.16, 55.46, 52.68, 72.56, 67.43, 72.87, 67.57, 69.46, 64.70)),
        ("DNA-Det", (93.56, 61.46, 59.34, 80.93, 76.45, 66.14, 63.27, 71.40, 68.00)),
        ("RepMix", (93.69, 54.70, 53.26, 72.86, 70.49, 78.69, 76.02, 71.74, 69.43)),
        ("POSE", (94.81, 68.15, 67.25, 84.17, 81.62, 88.24, 85.64, 82.76, 80.50)),
    ),
)

TABLE2 = PublishedTable(
    title="Published Table 2: POSE vs open-set recognition methods on the Base classifier",
    source=SOURCE, columns=_OPEN_SET_COLUMNS, keys=_OPEN_SET_KEYS,
    rows=(
        ("Base", (90.68, 62.02, 60.58, 76.03, 72.92, 77.01, 73.88, 73.78, 70.97)),
        ("Base+OpenMax", (91.11, 63.27, 61.60, 76.40, 73.29, 75.33, 72.32, 73.50, 70.70)),
        ("Base+PROSER", (92.12, 63.32, 62.19, 79.55, 76.57, 81.43, 78.64, 77.22, 74.66)),
        ("Base+ARPL+CS", (91.77, 54.94, 54.17, 79.09, 75.97, 80.48, 77.52, 75.08, 72.47)),
        ("Base+DIAS", (92.77, 62.15, 61.02, 79.34, 76.49, 84.14, 81.13, 78.00, 75.41)),
        ("Base+AM", (93.41, 66.17, 65.04, 82.21, 79.42, 85.04, 82.20, 80.31, 77.80)),
        ("Base+AM+Ldiv (POSE)", (94.81, 68.15, 67.25, 84.17, 81.62, 88.24, 85.64, 82.76, 80.50)),
    ),
)

TABLE3 = PublishedTable(
    title="Published Table 3: clustering of unknown models (GAN discovery)",
    source=SOURCE + "; k = 68 is the true number of seen + unseen classes, k = 49 the number of clusters "
    "Girish et al. return after four iterations",
    columns=("k", "Avg. purity", "NMI", "ARI"), keys=("k", "avg_purity", "nmi", "ari"),
    rows=(
        ("Girish et al.", (49, 32.89, 61.89, 21.05)),
        ("POSE", (49, 39.16, 61.91, 27.48)),
        ("POSE", (68, 41.04, 60.59, 26.39)),
    ),
)

#: The paper's Tables 1-3.
TABLES: tuple[PublishedTable, ...] = (TABLE1, TABLE2, TABLE3)
#: The tables the current report writer prints. Empty until the report shows the published tables
#: beside ours with the rank agreement (issue 15, the report's restructuring), so that LEADERBOARD.md
#: keeps regenerating exactly from the committed results in the meantime; then it becomes ``TABLES``.
PUBLISHED_TABLES: tuple[PublishedTable, ...] = ()

#: Printed row name -> this suite's (method, variant); Base+AM is POSE without the diversity loss.
PUBLISHED_METHODS: dict[str, tuple[str, str | None]] = {
    "PRNU": ("prnu", None), "Yu et al.": ("yu", None), "DCT-CNN": ("dct_cnn", None), "DNA-Det": ("dnadet", None),
    "RepMix": ("repmix", None), "POSE": ("pose", None), "Base": ("base", None), "Base+OpenMax": ("openmax", None),
    "Base+PROSER": ("proser", None), "Base+ARPL+CS": ("arpl_cs", None), "Base+DIAS": ("dias", None),
    "Base+AM": ("pose", "base_am"), "Base+AM+Ldiv (POSE)": ("pose", None), "Girish et al.": ("girish", None),
}

#: What the current report writer prints while ``PUBLISHED_TABLES`` is empty (the committed
#: LEADERBOARD.md's wording, kept until the report is rewired).
MISSING_NOTE = (
    "The result tables of the POSE paper (Tables 1, 2 and 3: full OSMA data, mean of five splits) could "
    "not be retrieved from the sources available when this report generator was written, so no published "
    "numbers are shown; compare with the paper itself (" + PAPER + ")."
)
