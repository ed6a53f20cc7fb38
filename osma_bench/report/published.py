"""Numbers published in the POSE paper (Yang et al., CVPR 2023, arXiv:2303.06877), Tables 1-3.

Only numbers actually read from the paper belong here, each table with its source. When this
module was written, the text of the paper's result tables could not be retrieved from the sources
available to its author (the arXiv abstract page, the ICTMCG/POSE README and code, and paper
summaries hold no result tables), so no published number is listed and the report says so instead
of showing anything invented. To add a table, append a :class:`PublishedTable` with the exact
values (percent, as printed) and the page/table it comes from.
"""

from __future__ import annotations

from dataclasses import dataclass

PAPER = ("Yang, Wang, Tang, Zhao, Cao, Tang: Progressive Open Space Expansion for Open-Set Model "
         "Attribution, CVPR 2023 (arXiv:2303.06877)")


@dataclass(frozen=True)
class PublishedTable:
    """One table of the paper: column names, rows of (method, values in percent), and its source."""

    title: str
    source: str
    columns: tuple[str, ...]
    rows: tuple[tuple[str, tuple[float | None, ...]], ...]


PUBLISHED_TABLES: tuple[PublishedTable, ...] = ()

MISSING_NOTE = (
    "The result tables of the POSE paper (Tables 1, 2 and 3: full OSMA data, mean of five splits) could "
    "not be retrieved from the sources available when this report generator was written, so no published "
    "numbers are shown; compare with the paper itself (" + PAPER + ")."
)
