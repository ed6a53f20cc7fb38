"""The published tables in code equal the reference CSVs (when ../shared is there)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from osma_bench.report.published import PUBLISHED_METHODS, TABLE1, TABLE2, TABLE3, TABLES

REFERENCE = Path(__file__).resolve().parents[3] / "shared" / "reference" / "pose-paper"
FILES = {TABLE1: "table1_attribution.csv", TABLE2: "table2_osr.csv", TABLE3: "table3_discovery.csv"}


@pytest.mark.skipif(not REFERENCE.is_dir(), reason=f"{REFERENCE} not present")
@pytest.mark.parametrize("table", [TABLE1, TABLE2, TABLE3], ids=lambda t: t.title.split(":")[0])
def test_tables_equal_the_reference_csvs(table):
    with open(REFERENCE / FILES[table], newline="") as fh:
        rows = list(csv.reader(fh))
    assert tuple(rows[0][1:]) == table.keys and len(table.columns) == len(table.keys)
    expected = [(r[0], tuple(float(v) for v in r[1:])) for r in rows[1:]]
    assert [(m, tuple(float(v) for v in vals)) for m, vals in table.rows] == expected


def test_every_row_maps_to_a_suite_method():
    from osma_bench.methods.registry import get_method

    assert TABLES == (TABLE1, TABLE2, TABLE3)
    for table in TABLES:
        for method, _ in table.rows:
            name, _variant = PUBLISHED_METHODS[method]
            assert get_method(name).name == name
    assert TABLE2.column("all_auc")["Base+AM"] == 80.31 and TABLE1.column("closed_set_acc")["PRNU"] == 55.27
