"""``osma-bench robustness`` on finished smoke runs: the clean row, batch size, refusals, the file."""

from __future__ import annotations

import json
import shutil

import pytest

from osma_bench.cli import main
from osma_bench.robustness import ROBUSTNESS_FILE
from osma_bench.robustness.evaluate import RobustnessRequest, robustness_done, robustness_pass
from osma_bench.robustness.perturbations import Settings, parse_spec

from .conftest import smoke_run

SMALL = "jpeg:50 resize:0.5 blur:1 noise:0.05 crop:0.8"


def copy_run(run_dir, tmp_path):
    target = tmp_path / "syn" / "base" / "split1" / "seed0"
    shutil.copytree(run_dir, target)
    return target


def robustness(run_dir, synthetic, *extra):
    return main(["robustness", "--run", str(run_dir), "--data", str(synthetic), "--device", "cpu", *extra])


@pytest.mark.parametrize("method", ["base", "pose", "openmax", "prnu"])
def test_clean_row_reproduces_metrics_json_exactly(synthetic, tmp_path, method):
    """Through the same path as the perturbed rows; openmax and prnu fit state in finalize."""
    run_dir = smoke_run(synthetic, tmp_path, method)
    content = robustness_pass(RobustnessRequest(run_dir, parse_spec("jpeg:75"), data=synthetic, device="cpu"))
    metrics = json.loads((run_dir / "metrics.json").read_text())
    clean = content["rows"][0]
    assert clean["perturbation"] == "clean" and clean["strength"] is None
    assert clean["closed_set"] == metrics["closed_set"] and clean["open_set"] == metrics["open_set"]
    assert content["clean_matches_metrics"] is True
    assert json.loads((run_dir / ROBUSTNESS_FILE).read_text())["rows"] == json.loads(json.dumps(content["rows"]))


def test_the_file_records_spec_settings_and_timing(synthetic, base_run, tmp_path, capsys):
    run_dir = copy_run(base_run, tmp_path)
    assert robustness(run_dir, synthetic, "--perturb", "jpeg:90,50", "--perturb", "blur:1", "--interpolation",
                      "bicubic", "--seed", "7") == 0
    out = capsys.readouterr().out
    content = json.loads((run_dir / ROBUSTNESS_FILE).read_text())
    assert content["spec"] == "jpeg:90,50 blur:1" and content["interpolation"] == "bicubic"
    assert content["noise_seed"] == 7 and content["jpeg_subsampling"] == "4:4:4" and content["antialias"] is True
    assert content["checkpoint"] in ("checkpoint_best.pt", "checkpoint.pt") and content["images"] == 24
    assert [r["perturbation"] for r in content["rows"]] == ["clean", "jpeg:90", "jpeg:50", "blur:1"]
    for row in content["rows"]:
        assert set(row["open_set"]) == {"seed", "arch", "dataset", "all"}
        assert 0 <= row["closed_set"]["accuracy"] <= 1 and row["closed_set"]["n"] == 12
    timing = content["timing"]
    assert timing["passes"] == 4 and timing["total_s"] > 0
    assert timing["ratio_to_final_eval"] == pytest.approx(timing["total_s"] / timing["final_eval_s"], rel=1e-2)
    assert "4 passes (clean + 3 perturbed) over 24 test images" in out and "the run's final evaluation" in out
    assert robustness_done(run_dir, parse_spec("jpeg:90,50 blur:1"), Settings("bicubic", 7))
    assert not robustness_done(run_dir, parse_spec("jpeg:90 blur:1"), Settings("bicubic", 7))
    assert not robustness_done(run_dir, parse_spec("jpeg:90,50 blur:1"), Settings("bilinear", 7))


def test_output_does_not_depend_on_the_batch_size(synthetic, base_run, tmp_path):
    run_dir = copy_run(base_run, tmp_path)
    rows = []
    for size in (1, 7, 64):
        content = robustness_pass(RobustnessRequest(run_dir, parse_spec(SMALL), data=synthetic, device="cpu",
                                                    batch_size=size))
        assert content["batch_size"] == size
        rows.append([{k: v for k, v in r.items() if k != "seconds"} for r in content["rows"]])
    assert rows[0] == rows[1] == rows[2]
    assert any(r["open_set"] != rows[0][0]["open_set"] for r in rows[0][1:])  # the perturbations do something


def test_a_run_without_a_usable_checkpoint_is_refused(synthetic, base_run, tmp_path, capsys):
    run_dir = copy_run(base_run, tmp_path)
    (run_dir / ROBUSTNESS_FILE).write_text('{"kept": true}')
    for name in ("checkpoint_best.pt", "checkpoint.pt"):
        (run_dir / name).unlink()
    assert robustness(run_dir, synthetic) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "no usable checkpoint" in err and len(err.strip().splitlines()) == 1
    assert json.loads((run_dir / ROBUSTNESS_FILE).read_text()) == {"kept": True}  # nothing lost


def test_best_checkpoint_of_another_epoch_is_refused(synthetic, base_run, tmp_path, capsys):
    run_dir = copy_run(base_run, tmp_path)
    record = json.loads((run_dir / "run.json").read_text())
    record["selected_epoch"] = record["selected_epoch"] + 5
    (run_dir / "run.json").write_text(json.dumps(record))
    assert robustness(run_dir, synthetic) == 2
    assert "run.json selected epoch" in capsys.readouterr().err


@pytest.mark.parametrize("change, message", [
    (lambda d: (d / "run.json").write_text(json.dumps({**json.loads((d / "run.json").read_text()),
                                                        "status": "failed"})), "not 'complete'"),
    (lambda d: (d / "metrics.json").unlink(), "metrics.json is missing"),
    (lambda d: shutil.rmtree(d), "run directory not found"),
])
def test_unfinished_runs_are_refused(synthetic, base_run, tmp_path, capsys, change, message):
    run_dir = copy_run(base_run, tmp_path)
    change(run_dir)
    assert robustness(run_dir, synthetic) == 2
    assert message in capsys.readouterr().err
    assert not (run_dir / ROBUSTNESS_FILE).exists()


def test_bad_options_are_one_error_line(synthetic, base_run, tmp_path, capsys):
    run_dir = copy_run(base_run, tmp_path)
    assert robustness(run_dir, synthetic, "--perturb", "jpeg:200") == 2
    assert "outside [1, 100]" in capsys.readouterr().err
    assert robustness(run_dir, synthetic, "--interpolation", "area") == 2
    assert "bilinear or bicubic" in capsys.readouterr().err
    assert robustness(run_dir, synthetic, "--batch-size", "0") == 2
    assert "--batch-size must be at least 1" in capsys.readouterr().err
    assert main(["robustness", "--run", str(run_dir), "--data", str(tmp_path / "nowhere")]) == 2
    assert "dataset of run" in capsys.readouterr().err
    assert not (run_dir / ROBUSTNESS_FILE).exists()
