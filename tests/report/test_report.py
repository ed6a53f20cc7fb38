"""Report: aggregation, pooling rules, golden Markdown, CSV / LaTeX, plots and the CLI."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pytest

from osma_bench.cli import main
from osma_bench.evaluation.scores import write_scores
from osma_bench.report import build_report, to_csv, to_latex, to_markdown, write_plots
from osma_bench.report.tables import rank_marks
from tests.report.conftest import SHA_A, SHA_B, fake_metrics, write_run

GOLDEN = Path(__file__).with_name("golden_leaderboard.md")


def test_sections_never_pool_versions_or_protocols(results_tree):
    report = build_report(results_tree)
    keys = [(s.dataset_sha256, s.profile) for s in report.sections]
    assert keys == [(SHA_A, "external"), (SHA_A, "mini"), (SHA_B, "mini")]
    main_section = report.sections[1]
    assert [r.method for r in main_section.rows] == ["base", "pose"]
    pose = main_section.rows[1]
    assert pose.n == 2
    assert pose.cells["acc"].mean == pytest.approx(0.94)
    assert pose.cells["acc"].std == pytest.approx(np.std([0.95, 0.93], ddof=1))
    assert pose.cells["seed_auroc"].mean == pytest.approx(0.72)
    problems = {(r.method, r.split): r.problem for r in report.problems}
    assert problems[("pose", 3)] == "status failed: RuntimeError: out of memory"
    assert problems[("dias", 1)] == "status running"
    assert problems[("prnu", 1)] == "complete, but metrics.json is missing"


def test_rank_marks_ties_and_single_row():
    assert rank_marks({"a": 0.5, "b": 0.7, "c": 0.7, "d": 0.6}) == {"a": "", "b": "best", "c": "best", "d": "second"}
    assert rank_marks({"a": 0.5, "b": None}) == {"a": "", "b": ""}


def test_markdown_matches_golden(results_tree):
    text = to_markdown(build_report(results_tree))
    assert text == GOLDEN.read_text()


def test_csv_and_latex(results_tree):
    report = build_report(results_tree)
    rows = list(csv.DictReader(io.StringIO(to_csv(report))))
    assert [(r["profile"], r["method"], r["n"]) for r in rows] == [
        ("external", "ext", "1"), ("mini", "base", "2"), ("mini", "pose", "2"), ("mini", "base", "1")]
    assert float(rows[2]["acc_mean"]) == pytest.approx(0.94) and rows[0]["acc_std"] == ""
    tex = to_latex(report)
    assert tex.count(r"\begin{tabular}") == 3 * 2 and r"\toprule" in tex and r"\bottomrule" in tex
    assert r"\textbf{94.00 $\pm$ 1.41}" in tex and r"\underline{91.00 $\pm$ 1.41}" in tex


def test_ci_cells(results_tree):
    text = to_markdown(build_report(results_tree), ci=True)
    # two runs: Student-t interval of the mean, 0.94 +- 12.706 * 0.01414 / sqrt(2)
    assert "94.00 [81.29, 106.71]" in text


def test_plots_from_score_files(tmp_path):
    root = tmp_path / "results"
    rng = np.random.default_rng(0)
    for method in ("base", "pose"):
        folder = write_run(root, method, 1, 0, metrics=fake_metrics(0.9, 0.8, 0.7))
        n = 60
        group = np.repeat([0, 1, 2, 3], 15)
        label = np.tile(np.arange(3), 20)
        logits = rng.normal(size=(n, 3)).astype(np.float32)
        write_scores(folder / "scores.h5", index=np.arange(n), sha256=[f"{i:064x}" for i in range(n)],
                     group=group, label=label, logits=logits, score=logits.max(1) + (group == 0),
                     features=rng.normal(size=(n, 4)) if method == "pose" else None, split=1,
                     dataset_sha256=SHA_A, method=method, num_classes=3)
    written, notes = write_plots(build_report(root), tmp_path / "plots")
    names = sorted(p.name for p in written)
    slug = f"mini-{SHA_A[:8]}-mini"
    assert names == sorted([f"{slug}_roc.png", f"{slug}_oscr.png", f"{slug}_base_hist.png",
                            f"{slug}_pose_hist.png", f"{slug}_pose_tsne.png"])
    assert all(p.stat().st_size > 1000 and p.read_bytes()[:4] == b"\x89PNG" for p in written)
    assert any("base has no features" in n for n in notes)


def test_cli_report(results_tree, tmp_path, capsys):
    out = tmp_path / "LEADERBOARD.md"
    rc = main(["report", str(results_tree), "--out", str(out), "--csv", str(tmp_path / "t.csv"),
               "--latex", str(tmp_path / "t.tex")])
    assert rc == 0
    assert out.read_text() == GOLDEN.read_text()
    assert (tmp_path / "t.csv").is_file() and (tmp_path / "t.tex").is_file()
    assert "Failed or incomplete runs" in capsys.readouterr().out
    assert main(["report", str(tmp_path / "nope")]) == 2


# -- the fair-protocol pooling rules ------------------------------------------------------------

def _section(root):
    report = build_report(root)
    assert len(report.sections) == 1
    return report.sections[0]


def test_runs_differing_in_one_set_value_are_never_pooled(tmp_path):
    root = tmp_path / "results"
    write_run(root, "pose", 1, 0, metrics=fake_metrics(0.9, 0.8, 0.7), settings={"lr": 1e-3, "per_class": 16})
    write_run(root, "pose", 2, 0, metrics=fake_metrics(0.9, 0.8, 0.7), settings={"lr": 1e-3, "per_class": 16})
    write_run(root, "pose", 3, 0, metrics=fake_metrics(0.5, 0.6, 0.4), settings={"lr": 1e-3, "per_class": 8})
    section = _section(root)
    assert [(r.label, r.n) for r in section.rows] == [("pose (A)", 2), ("pose (B)", 1)]
    assert section.notes == ["pose: 2 groups of runs with different settings are not pooled (A, B); they "
                             "differ in per_class (16 / 8)"]
    assert "### Not pooled" in to_markdown(build_report(root))


def test_runtime_settings_do_not_separate_runs(tmp_path):
    root = tmp_path / "results"
    for seed in (0, 1):  # write_run gives each seed a different num_threads (a runtime key)
        write_run(root, "base", 1, seed, metrics=fake_metrics(0.9, 0.8, 0.7), settings={"lr": 1e-3})
    assert [(r.label, r.n) for r in _section(root).rows] == [("base", 2)]


def test_variant_is_its_own_row(tmp_path):
    root = tmp_path / "results"
    write_run(root, "pose", 1, 0, metrics=fake_metrics(0.9, 0.8, 0.7), settings={"w_div": 1e-4})
    write_run(root, "pose", 1, 0, metrics=fake_metrics(0.9, 0.7, 0.6), settings={"w_div": 0.0}, variant="no_div")
    section = _section(root)
    assert [r.label for r in section.rows] == ["pose", "pose [no_div]"] and not section.notes
    only = build_report(root, methods=["pose [no_div]"]).sections[0]
    assert [r.label for r in only.rows] == ["pose [no_div]"]


def test_marks_compare_only_rows_with_the_same_coverage(tmp_path):
    root = tmp_path / "results"
    for split in (1, 2, 3):
        write_run(root, "base", split, 0, metrics=fake_metrics(0.80, 0.70, 0.60))
        write_run(root, "pose", split, 0, metrics=fake_metrics(0.85, 0.75, 0.65))
    write_run(root, "dias", 1, 0, metrics=fake_metrics(0.94, 0.94, 0.9))  # one run only: not comparable
    text = to_markdown(build_report(root))
    line = next(line for line in text.splitlines() if line.startswith("| DIAS"))
    assert "**" not in line and "<u>" not in line
    pose = next(line for line in text.splitlines() if line.startswith("| POSE"))
    assert "**85.00 ± 0.00**" in pose and "splits 1-3 × seeds 0" in pose


def test_unconverged_rows_are_listed_with_evidence_not_ranked(tmp_path):
    root = tmp_path / "results"
    for split in (1, 2):
        write_run(root, "base", split, 0, metrics=fake_metrics(0.90, 0.70, 0.60), history=[0.5, 0.9, 0.8], selected=1)
        write_run(root, "yu", split, 0, metrics=fake_metrics(0.50, 0.55, 0.30), history=[0.3, 0.5], selected=1)
        write_run(root, "dct_cnn", split, 0, metrics=fake_metrics(0.88, 0.60, 0.50), history=[0.5, 0.7, 0.86])
    section = _section(root)
    reasons = {r.label: r.not_converged for r in section.rows}
    assert reasons["base"] == ""
    assert reasons["yu"] == ("validation accuracy 50.0 < 80; validation accuracy 50.0 vs Base 90.0; "
                             "last epoch selected in 2 of 2 runs")
    assert reasons["dct_cnn"] == ""  # last epoch in every run, but 86% on validation: ranked, flagged
    assert [r.label for r in section.ranked] == ["base", "dct_cnn"]
    assert [r.flags for r in section.ranked] == [[], ["still improving"]]
    text = to_markdown(build_report(root))
    assert "### Not converged at this budget" in text
    ranked_table = text.split("### Not converged")[0]
    assert "| Yu et al." not in ranked_table and "| Base" in ranked_table
    assert "| still improving |" in next(line for line in ranked_table.splitlines() if line.startswith("| DCT-CNN"))


def test_a_method_below_the_validation_floor_is_not_converged_even_near_base(tmp_path):
    root = tmp_path / "results"
    write_run(root, "base", 1, 0, metrics=fake_metrics(0.80, 0.70, 0.60), history=[0.78, 0.6], selected=0)
    write_run(root, "prnu", 1, 0, metrics=fake_metrics(0.60, 0.55, 0.40), history=[0.65])
    reasons = {r.label: r.not_converged for r in _section(root).rows}
    assert reasons == {"base": "validation accuracy 78.0 < 80", "prnu": "validation accuracy 65.0 < 80"}


def test_dirty_trees_and_several_versions_are_flagged(tmp_path):
    root = tmp_path / "results"
    write_run(root, "base", 1, 0, metrics=fake_metrics(0.9, 0.8, 0.7), version="0.1.0+gaaaaaaa")
    write_run(root, "base", 2, 0, metrics=fake_metrics(0.9, 0.8, 0.7), version="0.1.0+gbbbbbbb", dirty=True)
    write_run(root, "pose", 1, 0, metrics=fake_metrics(0.9, 0.8, 0.7), version="0.1.0+gaaaaaaa")
    rows = {r.label: r for r in _section(root).rows}
    assert rows["base"].flags == ["dirty", "2 versions"] and rows["pose"].flags == []


def test_runs_csv_lists_every_run_with_provenance(results_tree):
    from osma_bench.report.writers import runs_csv

    rows = list(csv.DictReader(io.StringIO(runs_csv(build_report(results_tree)))))
    assert len(rows) == 9  # every folder of the tree, failed ones included
    failed = next(r for r in rows if r["method"] == "pose" and r["split"] == "3")
    assert failed["status"] == "failed" and failed["acc"] == ""
    assert {r["external"] for r in rows if r["method"] == "ext"} == {"true"}


def test_report_filters(results_tree):
    report = build_report(results_tree, methods=["pose"], splits=[1])
    assert [(r.label, r.n) for s in report.sections for r in s.rows] == [("pose", 1)]


def test_score_file_with_declared_profile_pools_with_harness_runs(tmp_path):
    root = tmp_path / "results"
    write_run(root, "base", 1, 0, metrics=fake_metrics(0.9, 0.8, 0.7))
    metrics = dict(fake_metrics(0.8, 0.7, 0.6), protocol={"profile": "mini"})
    write_run(root, "mine", 1, 0, metrics=metrics, run_json=False)
    section = _section(root)
    assert section.profile == "mini" and [r.label for r in section.rows] == ["base", "mine"]
    assert section.rows[1].flags == ["external"]


def test_published_tables_beside_ours_with_rank_agreement_and_paired_differences(tmp_path):
    root = tmp_path / "results"
    # ours: POSE best on AUC, then Base, then DCT-CNN; 3 matched splits each
    for split, shift in ((1, 0.0), (2, 0.01), (3, -0.01)):
        write_run(root, "pose", split, 0, metrics=fake_metrics(0.90 + shift, 0.80 + shift, 0.70))
        write_run(root, "base", split, 0, metrics=fake_metrics(0.88 + shift, 0.70 + shift, 0.60))
        write_run(root, "dct_cnn", split, 0, metrics=fake_metrics(0.85 + shift, 0.60 + shift, 0.50))
    text = to_markdown(build_report(root))
    assert "#### Published Table 1: POSE vs GAN attribution methods" in text
    assert "Figures published on the full OSMA data at 128x128" in text
    # Table 1 holds DCT-CNN and POSE: published and ours agree on their order
    assert "- Rank agreement on Unseen All AUC: Kendall's tau = 1.00 over 2 methods" in text
    assert "#### Against POSE" in text and "#### Against Base" in text
    line = next(ln for ln in text.splitlines() if ln.startswith("| DCT-CNN | Unseen All AUC | 3 |"))
    assert "| -20.00 |" in line  # 0.60 - 0.80 on every matched run
