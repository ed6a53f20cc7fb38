"""Damaged or hostile result files: metrics.json, clustering.json, checkpoints, score files.

Data-driven: each row is (file format, mutation, expected message fragment) and goes through the
reader(s) of that format: ``report`` for metrics.json and clustering.json, ``run --resume`` for
checkpoints, ``eval`` for score files. Every refusal is one line naming the file and the field.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import h5py
import pytest
import torch

from osma_bench.cli import main
from osma_bench.harness import checkpoint
from osma_bench.report.collect import read_run

from .conftest import one_error_line

RUN = Path("syn") / "base" / "split1" / "seed0"


@pytest.fixture(scope="module")
def finished(synthetic, tmp_path_factory):
    out = tmp_path_factory.mktemp("results")
    assert main(_run_args(synthetic, out)) == 0
    return out


def _run_args(data, out, *extra):
    return ["run", "--method", "base", "--data", str(data), "--profile", "smoke", "--device", "cpu",
            "--out", str(out), "--no-progress", "--set", "num_threads=1", *extra]


@pytest.fixture
def results(finished, tmp_path):
    """A copy of the finished results folder (one good run), and a second run to damage."""
    target = tmp_path / "results"
    shutil.copytree(finished, target)
    shutil.copytree(target / RUN, target / "syn" / "pose" / "split1" / "seed0")
    return target


# ------------------------------------------------------------------ metrics.json / clustering.json

def _json_edit(name, edit):
    def mutate(run: Path):
        path = run / name
        data = json.loads(path.read_text()) if path.is_file() else {}
        path.write_text(json.dumps(edit(data)))
    return mutate


def _set(path, value):
    def edit(data):
        obj = data
        for k in path[:-1]:
            obj = obj[k]
        obj[path[-1]] = value
        return data
    return edit


JSON_CASES = [
    ("metrics.json", _json_edit("metrics.json", _set(["closed_set", "n"], "abc")), "field closed_set.n: expected an integer"),
    ("metrics.json", _json_edit("metrics.json", _set(["bootstrap"], "yes")), "field bootstrap: expected an object"),
    ("metrics.json", _json_edit("metrics.json", _set(["closed_set", "accuracy"], 7)), "field closed_set.accuracy"),
    ("metrics.json", _json_edit("metrics.json", _set(["open_set", "all", "auroc"], None)), "field open_set.all.auroc"),
    ("metrics.json", _json_edit("metrics.json", _set(["open_set", "bogus"], {})), "field open_set: expected groups"),
    ("metrics.json", _json_edit("metrics.json", _set(["per_class"], [1, 2])), "field per_class[0]"),
    ("metrics.json", _json_edit("metrics.json", lambda d: [d]), "field (top level): expected an object"),
    ("clustering.json", _json_edit("clustering.json", lambda d: {"results": [1, 2]}), "field results[0]: expected an object"),
    ("clustering.json", _json_edit("clustering.json", lambda d: {"results": [
        {"k": 1e400, "purity": 0.5, "nmi": 0.5, "ari": 0.1}]}), "field results[0].k: expected an integer"),
    ("clustering.json", _json_edit("clustering.json", lambda d: {"results": [
        {"k": 3, "purity": "x", "nmi": 0.5, "ari": 0.1}]}), "field results[0].purity"),
    ("clustering.json", _json_edit("clustering.json", lambda d: {"results": "none"}), "field results: expected a list"),
]


@pytest.mark.parametrize(("fmt", "mutate", "fragment"), JSON_CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(JSON_CASES)])
def test_report_names_the_bad_result_file_and_keeps_going(results, tmp_path, capsys, fmt, mutate, fragment):
    bad = results / "syn" / "pose" / "split1" / "seed0"
    (results / RUN / "clustering.json").write_text(json.dumps({"results": [
        {"method": "kmeans", "k": 3, "purity": 0.5, "nmi": 0.4, "ari": 0.2}]}))
    mutate(bad)
    board = tmp_path / "LEADERBOARD.md"
    assert main(["report", str(results), "--out", str(board)]) == 0
    out = capsys.readouterr()
    assert "Traceback" not in out.err and board.is_file()
    record = read_run(bad, "syn", "pose", 1, 0)
    problem = record.problem if fmt == "metrics.json" else record.extra["clustering_problem"]
    assert str(bad / fmt) in problem and fragment in problem
    if fmt == "metrics.json":
        assert fragment in board.read_text()  # the report says which run was left out and why


def test_report_on_empty_results_keeps_the_leaderboard(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    board = tmp_path / "LEADERBOARD.md"
    board.write_text("the real board\n")
    assert main(["report", str(tmp_path / "empty"), "--out", str(board)]) == 2
    assert "no runs" in one_error_line(capsys.readouterr().err)
    assert board.read_text() == "the real board\n"


def test_report_out_a_folder_is_refused(results, tmp_path, capsys):
    assert main(["report", str(results), "--out", str(tmp_path)]) == 2
    assert "is a folder" in one_error_line(capsys.readouterr().err)


# ------------------------------------------------------------------------------------ checkpoints

class _Boom:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def _ckpt(edit):
    def mutate(run: Path, marker: Path):
        payload = checkpoint.load(run / "checkpoint.pt")
        torch.save(edit(payload, marker), run / "checkpoint.pt")
    return mutate


def _raw_ckpt(data: bytes):
    def mutate(run: Path, marker: Path):
        (run / "checkpoint.pt").write_bytes(data)
    return mutate


def _first_weight(state):
    key = next(k for k, v in state["model"].items() if v.ndim > 1)
    return key


CKPT_CASES = [
    ("checkpoint.pt", _raw_ckpt(b"PK\x03\x04 not a zip at all"), "not a readable checkpoint"),
    ("checkpoint.pt", _raw_ckpt(b""), "not a readable checkpoint"),
    ("checkpoint.pt", _ckpt(lambda p, m: {**p, "evil": _Boom(m)}), "not a readable checkpoint"),
    ("checkpoint.pt", _ckpt(lambda p, m: {"weights": p["state"]}), "not an osma-bench checkpoint"),
    ("checkpoint.pt", _ckpt(lambda p, m: {**p, "state": {}}), "field state: expected the method's state"),
    ("checkpoint.pt", _ckpt(lambda p, m: {**p, "epoch": "abc"}), "field epoch: expected an integer"),
    ("checkpoint.pt", _ckpt(lambda p, m: {**p, "history": "x"}), "field history: expected a list"),
    ("checkpoint.pt", _ckpt(lambda p, m: {**p, "state": {**p["state"], "model": {
        **p["state"]["model"], _first_weight(p["state"]): torch.zeros(1, 2, 3)}}}), "field state: does not fit"),
    ("checkpoint.pt", _ckpt(lambda p, m: {**p, "rng": {"python": 5, "numpy": "x", "torch": torch.zeros(3)}}),
     "field rng: does not fit"),
    ("checkpoint.pt", _ckpt(lambda p, m: {**p, "rng": "garbage"}), "field rng: expected an object"),
]


@pytest.mark.parametrize(("fmt", "mutate", "fragment"), CKPT_CASES, ids=[f"ckpt-{i}" for i in range(len(CKPT_CASES))])
def test_resume_from_a_bad_checkpoint_is_one_line(synthetic, results, tmp_path, capsys, fmt, mutate, fragment):
    run = results / RUN
    record = json.loads((run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps({**record, "status": "running", "epochs_completed": 1}))
    marker = tmp_path / "pwned"
    mutate(run, marker)
    capsys.readouterr()
    assert main(_run_args(synthetic, results, "--resume")) == 2
    line = one_error_line(capsys.readouterr().err)
    assert str(run / fmt) in line and fragment in line
    assert not marker.exists()  # the pickle was refused, not executed


# ------------------------------------------------------------------------------------ score files

def _huge(name, shape, chunks):
    def mutate(path: Path):
        with h5py.File(path, "a") as fh:
            dtype = fh[name].dtype
            del fh[name]
            fh.create_dataset(name, shape=shape, dtype=dtype, chunks=chunks)  # declared, never written
    return mutate


SCORE_CASES = [
    ("scores.h5", _huge("index", (2**40,), (4096,)), "dataset 'index' declares shape (1099511627776,)"),
    ("scores.h5", _huge("features", (24, 2**33), (1, 4096)), "dataset 'features' declares shape (24, 8589934592)"),
    ("scores.h5", _huge("logits", (2**31, 3), (4096, 3)), "dataset 'logits' declares shape"),
]


@pytest.mark.parametrize(("fmt", "mutate", "fragment"), SCORE_CASES, ids=[f"scores-{i}" for i in range(len(SCORE_CASES))])
def test_eval_refuses_absurd_declared_sizes_before_allocating(synthetic, results, tmp_path, capsys, fmt, mutate,
                                                              fragment):
    scores = results / RUN / "scores.h5"
    mutate(scores)
    assert scores.stat().st_size < 2**24  # the file is small; only its declaration is absurd
    assert main(["eval", "--scores", str(scores), "--data", str(synthetic), "--split", "1", "--out",
                 str(tmp_path / "ev")]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert str(scores) in line and fragment in line and "refusing to read" in line
