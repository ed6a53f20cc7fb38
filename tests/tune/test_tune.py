"""osma-bench tune: the grid's checks, the choice on validation accuracy only, the compute cap."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from osma_bench.cli import main
from osma_bench.errors import OsmaError
from osma_bench.methods.base_cnn import BaseMethod
from osma_bench.tune.grid import grid_points, parse_grid, point_variant
from osma_bench.tune.record import selected_val_accuracy
from osma_bench.tune.search import TuneRequest, choose, tune

TEST_WORDS = ("closed_set", "open_set", "auroc", "oscr", "metrics")


def test_grid_is_typed_by_the_declarations():
    from baselines.prnu import PRNU

    grid = parse_grid(["lr=1e-3,3e-3", "width=8"], BaseMethod)
    assert grid == [("lr", ["1e-3", "3e-3"]), ("width", ["8"])]
    assert grid_points(grid) == [{"lr": "1e-3", "width": "8"}, {"lr": "3e-3", "width": "8"}]
    # a list-valued key's alternatives are separated by ';'
    assert parse_grid(["sigma_grid=0.05,0.5;5"], PRNU) == [("sigma_grid", ["0.05,0.5", "5"])]
    with pytest.raises(OsmaError, match="did you mean 'width'"):
        parse_grid(["widht=8"], BaseMethod)
    with pytest.raises(OsmaError, match="runtime"):
        parse_grid(["num_threads=1,2"], BaseMethod)
    with pytest.raises(OsmaError, match="twice"):
        parse_grid(["lr=1e-3", "lr=2e-3"], BaseMethod)
    with pytest.raises(OsmaError, match="at least one"):
        parse_grid([], BaseMethod)
    assert point_variant({"lr": 0.001}) == point_variant({"lr": 0.001}) != point_variant({"lr": 0.003})


def test_choice_is_the_best_validation_accuracy_ties_to_the_earlier_point():
    points = [{"status": "complete", "val_accuracy": 0.5}, {"status": "complete", "val_accuracy": 0.8},
              {"status": "over_cap", "val_accuracy": None}, {"status": "complete", "val_accuracy": 0.8}]
    best, why = choose(points)
    assert best == 1 and "tied" in why and "1 stopped over the cap" in why
    assert choose([{"status": "failed", "val_accuracy": None}])[0] is None


def test_criterion_is_the_kept_models_validation_accuracy():
    history = [{"val_accuracy": 0.4}, {"val_accuracy": 0.9}, {"val_accuracy": 0.7}]
    assert selected_val_accuracy({"status": "complete", "history": history, "selected_epoch": 1}) == 0.9
    assert selected_val_accuracy({"status": "complete", "history": history, "selected_epoch": 2}) == 0.7  # last
    assert selected_val_accuracy({"status": "complete", "history": history, "selected_epoch": 2,
                                  "method_record": {"val_accuracy": 0.95}}) == 0.95  # chosen after training
    assert selected_val_accuracy({"status": "failed", "history": history, "selected_epoch": 1}) is None


def _fake_base_run(path: Path, data: Path, train_s: float) -> Path:
    from osma_bench.harness.data import open_dataset

    dataset = open_dataset(data, 1, verify=False)
    path.mkdir(parents=True)
    (path / "run.json").write_text(json.dumps({"method": "base", "status": "complete", "split": 1,
                                               "dataset_sha256": dataset.content_sha256,
                                               "timings": {"train_s": train_s}}))
    return path


class _Opened:
    """Paths this process opens while recording (a Python audit hook; it stays installed, idle)."""

    paths: list[str] = []
    recording = False

    @classmethod
    def hook(cls, event, args):
        if cls.recording and event == "open" and args and isinstance(args[0], str | bytes | Path):
            cls.paths.append(str(args[0]))


sys.addaudithook(_Opened.hook)


def test_tune_chooses_on_validation_and_never_reads_test_metrics(synthetic, tmp_path):
    base = _fake_base_run(tmp_path / "base_run", synthetic, train_s=1e6)  # a cap nothing reaches
    _Opened.paths, _Opened.recording = [], True
    try:
        record = tune(TuneRequest(method="base", data=synthetic, profile="smoke", grid=["lr=0.001,0.02"],
                                  fixed=["num_threads=1"], cap=4, base_run=base, out=tmp_path / "out",
                                  device="cpu"), say=lambda _: None)
    finally:
        _Opened.recording = False
    assert not [p for p in _Opened.paths if p.endswith(("metrics.json", "scores.h5"))]
    points = record["points"]
    assert [p["status"] for p in points] == ["complete", "complete"]
    accuracies = []
    for p in points:  # each point's figure is its run's selected validation accuracy
        run = json.loads((tmp_path / "out" / p["run"] / "run.json").read_text())
        assert run["config"]["lr"] == p["settings"]["lr"] and run["variant"] == p["variant"]
        accuracies.append(max(h["val_accuracy"] for h in run["history"]))
        assert p["val_accuracy"] == accuracies[-1]
    assert record["chosen"]["index"] == max(range(2), key=lambda i: (accuracies[i], -i))
    text = (tmp_path / "out" / "syn" / "tune" / "base-split1-seed0.json").read_text()
    assert json.loads(text) == record
    assert not any(word in text for word in TEST_WORDS)
    assert record["cap"] == {"multiple": 4.0, "base_train_s": 1e6, "base_run": str(base), "cap_train_s": 4e6}


def test_tune_respects_the_cap(synthetic, tmp_path, capsys):
    base = _fake_base_run(tmp_path / "base_run", synthetic, train_s=1e-4)  # every point exceeds 4 x this
    code = main(["tune", "--method", "base", "--data", str(synthetic), "--profile", "smoke", "--grid", "lr=0.001",
                 "--set", "num_threads=1", "--cap", "4", "--base-run", str(base), "--out", str(tmp_path / "out"),
                 "--device", "cpu"])
    assert code == 0
    record = json.loads((tmp_path / "out" / "syn" / "tune" / "base-split1-seed0.json").read_text())
    (point,) = record["points"]
    assert point["status"] == "over_cap" and point["val_accuracy"] is None and point["train_s"] > 4e-4
    assert "cap" in point["note"] and record["chosen"] is None and "over the cap" in record["why"]


def test_bad_requests_fail_before_running(synthetic, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["tune", "--method", "base", "--data", str(synthetic), "--grid", "lr=-1", "--out", str(out)]) == 2
    assert "lr: expected" in capsys.readouterr().err and not out.exists()
    assert main(["tune", "--method", "base", "--data", str(synthetic), "--grid", "lr=1e-3", "--cap", "0",
                 "--out", str(out)]) == 2
    assert main(["tune", "--method", "base", "--data", str(synthetic), "--grid", "lr=1e-3", "--set", "lr=1e-2",
                 "--out", str(out)]) == 2
    assert "both" in capsys.readouterr().err
    wrong = tmp_path / "wrong_base"
    wrong.mkdir()
    (wrong / "run.json").write_text(json.dumps({"method": "pose", "status": "complete"}))
    assert main(["tune", "--method", "base", "--data", str(synthetic), "--grid", "lr=1e-3", "--base-run",
                 str(wrong), "--out", str(out)]) == 2
    assert "not 'base'" in capsys.readouterr().err


def test_point_folders_cover_fixed_settings_that_change_results():
    """Two searches with another fixed --set must not share (and resume) each other's runs."""
    from osma_bench.tune.search import resolve_points

    points = [{"lr": "0.001"}, {"lr": "0.01"}]
    plain = resolve_points(BaseMethod, "smoke", {}, points)
    assert [values for values, _ in plain] == [{"lr": 0.001}, {"lr": 0.01}]
    assert plain[0][1] != plain[1][1]
    runtime = resolve_points(BaseMethod, "smoke", {"num_threads": "1"}, points)
    assert [v for _, v in runtime] == [v for _, v in plain]  # a runtime key changes no result
    wider = resolve_points(BaseMethod, "smoke", {"width": "4"}, points)
    assert not {v for _, v in wider} & {v for _, v in plain}
    with pytest.raises(OsmaError, match="lr"):
        resolve_points(BaseMethod, "smoke", {}, [{"lr": "abc"}])
