"""CLI misuse: out-of-range numbers, paths of the wrong kind, a run's own metrics, Rich markup in
names. Data-driven: each row is (command line, expected fragment of its one ``error:`` line)."""

from __future__ import annotations

import json
import shutil

import pytest

from osma_bench.cli import main

from .conftest import one_error_line


@pytest.fixture(scope="module")
def finished(synthetic, tmp_path_factory):
    out = tmp_path_factory.mktemp("results")
    assert main(["run", "--method", "base", "--data", str(synthetic), "--profile", "smoke", "--device", "cpu",
                 "--out", str(out), "--no-progress", "--set", "num_threads=1"]) == 0
    return out / "syn" / "base" / "split1" / "seed0"


RUN = ["run", "--method", "base", "--data", "{data}", "--profile", "smoke", "--device", "cpu", "--out", "{tmp}/res",
       "--no-progress", "--set", "num_threads=1"]
EVAL = ["eval", "--scores", "{run}/scores.h5", "--data", "{data}", "--split", "1"]

CASES = [
    (RUN + ["--seed", "-1"], "--seed must be an integer from 0"),
    (RUN + ["--seed", str(2**70)], "--seed must be an integer from 0"),
    (RUN + ["--split", "0"], "--split must be 1 or more"),
    (RUN + ["--epochs", "0"], "--epochs must be 1 or more"),
    ([a if a != "{tmp}/res" else "{tmp}/afile" for a in RUN], "exists and is not a directory"),
    (EVAL + ["--bootstrap", "1000000000", "--out", "{tmp}/ev"], "--bootstrap must be between 0 and 100000"),
    (EVAL + ["--bootstrap", "-1", "--out", "{tmp}/ev"], "--bootstrap must be between"),
    (EVAL + ["--seed", "-5", "--out", "{tmp}/ev"], "--seed must be between"),
    (EVAL + ["--legacy"], "--legacy would replace its tie-aware metrics"),
    (EVAL + ["--out", "{tmp}/afile"], "exists and is not a folder"),
    (["report", "{results}", "--out", "{tmp}"], "is a folder"),
    (["report", "{results}", "--csv", "{tmp}"], "is a folder"),
    (["report", "{tmp}/empty"], "no runs"),
    (["verify-data", "{tmp}/nowhere"], "dataset folder not found"),
]


@pytest.mark.parametrize(("argv", "fragment"), CASES, ids=[f"cli-{i}" for i in range(len(CASES))])
def test_cli_misuse_is_one_error_line(synthetic, finished, tmp_path, capsys, argv, fragment):
    (tmp_path / "afile").write_text("mine")
    (tmp_path / "empty").mkdir()
    before = (finished / "metrics.json").read_bytes()
    values = {"data": synthetic, "tmp": tmp_path, "run": finished, "results": finished.parents[3]}
    code = main([a.format(**values) for a in argv])
    assert code == 2
    assert fragment in one_error_line(capsys.readouterr().err)
    assert (tmp_path / "afile").read_text() == "mine"
    assert (finished / "metrics.json").read_bytes() == before  # the run's own metrics untouched


def test_legacy_metrics_of_a_run_go_elsewhere_with_out(synthetic, finished, tmp_path):
    assert main(EVAL[:2] + [str(finished / "scores.h5"), "--data", str(synthetic), "--split", "1", "--legacy",
                            "--out", str(tmp_path)]) == 0
    assert json.loads((tmp_path / "metrics.json").read_text())["legacy"] is True
    assert json.loads((finished / "metrics.json").read_text())["legacy"] is False


def test_rich_markup_in_a_dataset_name_is_printed_literally(synthetic, tmp_path, capsys):
    data = tmp_path / "data"
    shutil.copytree(synthetic, data)
    card = json.loads((data / "dataset.json").read_text())
    card["name"] = "[bold red]syn[link=x]"
    (data / "dataset.json").write_text(json.dumps(card))
    capsys.readouterr()
    assert main(["run", "--method", "base", "--data", str(data), "--profile", "smoke", "--device", "cpu",
                 "--out", str(tmp_path / "res"), "--no-progress", "--set", "num_threads=1"]) == 0
    out = capsys.readouterr().out
    assert "[bold red]syn[link=x]/base/split1/seed0: accuracy" in out.replace("\n", "")
