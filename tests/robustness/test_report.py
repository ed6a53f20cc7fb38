"""The report's robustness section: pooling, cells, drops, problems, plots, exact regeneration."""

from __future__ import annotations

import json
import shutil

from osma_bench.cli import main
from osma_bench.report.robustness import build_sections, comparable_key, robustness_markdown
from osma_bench.robustness import ROBUSTNESS_FILE

CONFIG = {"lr": 0.001, "epochs": 2, "num_threads": 1, "eval_batch_size": 256}


def metrics(acc: float, auroc: float, oscr: float) -> dict:
    group = {"auroc": auroc, "oscr": oscr, "tnr_at_95tpr": 0.5, "n_unknown": 4}
    return {"closed_set": {"accuracy": acc, "macro_f1": acc, "n": 12},
            "open_set": {g: dict(group) for g in ("seed", "arch", "dataset", "all")}}


def write_run(root, method, split, rows, config=None, finished="t1", stale=False):
    """A run folder with run.json, metrics.json and a robustness.json of ``rows`` ({label: (acc, auroc, oscr)})."""
    folder = root / "syn" / method / f"split{split}" / "seed0"
    folder.mkdir(parents=True)
    record = {"status": "complete", "method": method, "dataset": "syn", "dataset_sha256": "ab" * 32,
              "profile": "smoke", "split": split, "seed": 0, "config": config or CONFIG, "finished": finished}
    (folder / "run.json").write_text(json.dumps(record))
    (folder / "metrics.json").write_text(json.dumps({**metrics(*rows["clean"]), "dataset_sha256": "ab" * 32}))
    content_rows = []
    for label, values in rows.items():
        kind, _, strength = label.partition(":")
        content_rows.append({"perturbation": label, "kind": kind, "strength": float(strength) if strength else None,
                             **metrics(*values)})
    content = {"schema_version": 1, "method": method, "dataset_sha256": "ab" * 32, "split": split,
               "run_finished": "old" if stale else finished, "spec": "", "interpolation": "bilinear",
               "jpeg_subsampling": "4:4:4", "clean_matches_metrics": True, "rows": content_rows}
    (folder / ROBUSTNESS_FILE).write_text(json.dumps(content))
    return folder


def results(tmp_path):
    root = tmp_path / "results"
    write_run(root, "base", 1, {"clean": (0.9, 0.8, 0.7), "jpeg:50": (0.7, 0.6, 0.5), "blur:1": (0.8, 0.7, 0.6)})
    write_run(root, "base", 2, {"clean": (0.8, 0.7, 0.6), "jpeg:50": (0.6, 0.6, 0.4), "jpeg:90": (0.8, 0.7, 0.6)})
    write_run(root, "base", 3, {"clean": (0.5, 0.5, 0.5), "jpeg:50": (0.4, 0.4, 0.4)}, config={**CONFIG, "lr": 0.5})
    write_run(root, "pose", 1, {"clean": (1.0, 0.9, 0.9), "jpeg:50": (1.0, 0.9, 0.9)})
    write_run(root, "pose", 2, {"clean": (0.8, 0.9, 0.7), "jpeg:50": (0.6, 0.7, 0.5)},
              config={**CONFIG, "num_threads": 2, "eval_batch_size": 64})  # same results-wise: pooled
    write_run(root, "pose", 3, {"clean": (0.1, 0.1, 0.1)}, stale=True)
    bad = write_run(root, "dias", 1, {"clean": (0.5, 0.5, 0.5)})
    (bad / ROBUSTNESS_FILE).write_text(json.dumps({"rows": [{"kind": "clean", "closed_set": {"accuracy": 2}}]}))
    return root


def test_pooling_rule_ignores_only_settings_that_do_not_change_results():
    a = {"dataset_sha256": "x", "method": "pose", "profile": "mini", "config": CONFIG}
    assert comparable_key(a) == comparable_key({**a, "config": {**CONFIG, "num_threads": 4, "num_workers": 2,
                                                                "preload_limit_mb": 1, "save_features": False}})
    for change in ({"config": {**CONFIG, "lr": 0.1}}, {"profile": "paper"}, {"dataset_sha256": "y"},
                   {"method": "base"}):
        assert comparable_key(a) != comparable_key({**a, **change})


def test_section_tables_pool_comparable_runs_with_drops_from_clean(tmp_path):
    root = results(tmp_path)
    sections, problems = build_sections(root)
    assert len(sections) == 1
    assert [g.label for g in sections[0].groups] == ["Base", "Base [2]", "POSE"]
    assert [len(g.runs) for g in sections[0].groups] == [2, 1, 2]
    text = "\n".join(robustness_markdown(root))
    assert "## Robustness to post-processing" in text and "### Dataset syn (version abababababab), profile smoke" in text
    assert "- Base [2]: n = 1 (split 3; seed 0); settings differ from base: lr=0.5" in text
    accuracy = text.split("#### Closed-set accuracy")[1].split("####")[0]
    lines = [ln for ln in accuracy.splitlines() if ln.startswith("| ")]
    assert lines[0] == "| Perturbation | Base | Base [2] | POSE |"
    assert lines[1] == "| clean | 85.00 ± 7.07 | 50.00 | 90.00 ± 14.14 |"
    # rows milder first: jpeg 90 before jpeg 50, then blur; cells a run lacks say so
    assert lines[2] == "| jpeg 90 | 80.00 (0.00) [n=1] | – | – |"
    assert lines[3] == "| jpeg 50 | 65.00 ± 7.07 (−20.00) | 40.00 (−10.00) | 80.00 ± 28.28 (−10.00) |"
    assert lines[4] == "| blur 1 | 80.00 (−10.00) [n=1] | – | – |"
    oscr = text.split("#### OSCR, all unknowns")[1]
    assert "| jpeg 50 | 45.00 ± 7.07 (−20.00) | 40.00 (−10.00) | 70.00 ± 28.28 (−10.00) |" in oscr
    left_out = {str(folder.relative_to(root)): problem for folder, problem in problems}
    assert "earlier run" in left_out["syn/pose/split3/seed0"]
    assert "without closed_set.accuracy" in left_out["syn/dias/split1/seed0"]
    assert "### Robustness files left out" in text


def test_report_has_the_section_and_plots_and_regenerates_exactly(tmp_path, capsys):
    root = results(tmp_path)
    out1, out2 = tmp_path / "a.md", tmp_path / "b.md"
    assert main(["report", str(root), "--out", str(out1), "--plots", str(tmp_path / "plots")]) == 0
    assert main(["report", str(root), "--out", str(out2)]) == 0
    assert out1.read_text() == out2.read_text()
    text = out1.read_text()
    assert text.index("### The paper's numbers beside ours") < text.index("## Robustness to post-processing")
    names = {p.name for p in (tmp_path / "plots").glob("*robustness*.png")}
    assert names == {f"syn-abababab-smoke_robustness_{m}.png" for m in ("accuracy", "auroc", "oscr")}


def test_no_robustness_files_no_section(tmp_path):
    root = tmp_path / "results"
    folder = write_run(root, "base", 1, {"clean": (0.9, 0.8, 0.7)})
    (folder / ROBUSTNESS_FILE).unlink()
    assert robustness_markdown(root) == []


def test_section_from_a_real_pass_regenerates_from_the_committed_files_alone(synthetic, base_run, tmp_path):
    """Checkpoints and score files are not committed: run.json, metrics.json and robustness.json suffice."""
    full = tmp_path / "full" / "syn" / "base" / "split1" / "seed0"
    shutil.copytree(base_run, full)
    assert main(["robustness", "--run", str(full), "--data", str(synthetic), "--device", "cpu", "--perturb",
                 "jpeg:60 noise:0.03"]) == 0
    committed = tmp_path / "committed" / "syn" / "base" / "split1" / "seed0"
    committed.mkdir(parents=True)
    for name in ("run.json", "metrics.json", ROBUSTNESS_FILE):
        shutil.copy(full / name, committed / name)
    section = robustness_markdown(tmp_path / "full")
    assert section and section == robustness_markdown(tmp_path / "committed")
    assert any(line.startswith("| noise 0.03 |") for line in section)
