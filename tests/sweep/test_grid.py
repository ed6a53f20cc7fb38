"""Grid expansion, argument parsing, completion detection and Slurm option parsing."""

from __future__ import annotations

import json

import pytest

from osma_bench.errors import OsmaError
from osma_bench.report.collect import collect_runs
from osma_bench.sweep.grid import (
    card_splits,
    expand_grid,
    parse_int_list,
    parse_methods,
    parse_seeds,
    parse_splits,
)
from osma_bench.sweep.slurm import parse_slurm_params, parse_slurm_time
from osma_bench.sweep.state import COMPLETE, MISSING, PARTIAL, run_state


def test_int_lists_ranges_and_duplicates():
    assert parse_int_list("0,1,2", "seeds") == [0, 1, 2]
    assert parse_int_list("0-2", "seeds") == [0, 1, 2]
    assert parse_int_list("3, 0-1,3", "seeds") == [3, 0, 1]
    for bad in ("a", "2-1", "", "1.5"):
        with pytest.raises(OsmaError, match="--seeds"):
            parse_int_list(bad, "seeds")
    with pytest.raises(OsmaError, match="non-negative"):
        parse_seeds("-1")


def test_methods_all_and_unknown():
    known = ["pose", "base", "openmax"]
    assert parse_methods("all", known) == ["base", "openmax", "pose"]
    assert parse_methods("pose, base,pose", known) == ["pose", "base"]
    with pytest.raises(OsmaError, match="unknown method.*nope.*known methods: base, openmax, pose"):
        parse_methods("base,nope", known)
    with pytest.raises(OsmaError, match="no method"):
        parse_methods(" , ", known)


def test_splits_from_card():
    card = {"name": "d", "splits": {"2": {}, "1": {}, "3": {}}}
    assert card_splits(card) == [1, 2, 3]
    assert parse_splits("all", [1, 2, 3], "d") == [1, 2, 3]
    assert parse_splits("3,1", [1, 2, 3], "d") == [3, 1]
    with pytest.raises(OsmaError, match=r"split\(s\) 4 not in d \(it has 1, 2, 3\)"):
        parse_splits("1-4", [1, 2, 3], "d")


def test_grid_is_seed_major_and_logs_never_look_like_runs(tmp_path):
    out = tmp_path / "results"
    points = expand_grid("ds", ["a", "b"], [1, 2], [0, 1], out, out / ".sweep")
    assert len(points) == 8
    assert [p.label for p in points[:4]] == ["a split1 seed0", "b split1 seed0", "a split2 seed0", "b split2 seed0"]
    assert points[5].run_dir == out / "ds" / "b" / "split1" / "seed1"
    for p in points:  # the report's collector must not mistake sweep files for runs
        p.log.parent.mkdir(parents=True, exist_ok=True)
        p.log.write_text("x")
    assert collect_runs(out) == []


def test_run_state(tmp_path):
    run = tmp_path / "r"
    assert run_state(run).state == MISSING
    run.mkdir()
    assert run_state(run).state == MISSING  # empty folder
    (run / "log.txt").write_text("start")
    assert run_state(run).state == PARTIAL
    (run / "run.json").write_text("{not json")
    assert run_state(run).state == PARTIAL
    (run / "run.json").write_text(json.dumps({"status": "complete", "profile": "mini", "epochs_completed": 3,
                                              "config": {"epochs": 12}}))
    state = run_state(run)
    assert state.state == PARTIAL and state.progress == (3, 12)  # complete but no metrics.json
    (run / "metrics.json").write_text("{}")
    assert run_state(run).state == COMPLETE and run_state(run).profile == "mini"
    (run / "run.json").write_text(json.dumps({"status": "failed", "error": "OsmaError: x"}))
    assert run_state(run).state == PARTIAL and run_state(run).error == "OsmaError: x"


@pytest.mark.parametrize("text,minutes", [("90", 90), ("1:30:00", 90), ("0:30", 1), ("45:00", 45),
                                          ("1-00:00:00", 1440), ("1-2", 1560), ("2-01:30", 2970)])
def test_slurm_time(text, minutes):
    assert parse_slurm_time(text) == minutes


def test_slurm_time_and_params_errors():
    for bad in ("abc", "1h", "0", ""):
        with pytest.raises(OsmaError, match="--slurm-time"):
            parse_slurm_time(bad)
    assert parse_slurm_params(["qos=high", "mail-type=END"]) == {"qos": "high", "mail_type": "END"}
    with pytest.raises(OsmaError, match="key=value"):
        parse_slurm_params(["qos"])
