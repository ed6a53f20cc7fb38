"""Figures and tables for a paper: PDF/SVG/PNG plots, no titles on request, labelled legends, display
names, LaTeX tables that fit a page with a label and a caption."""

from __future__ import annotations

import re

import numpy as np
import pytest

from osma_bench.cli import main
from osma_bench.errors import OsmaError
from osma_bench.evaluation.scores import write_scores
from osma_bench.report import build_report, to_latex, to_markdown, write_plots
from osma_bench.report.names import DISPLAY_NAMES, display_name
from osma_bench.report.plots import LINE_STYLES, _style, parse_formats
from tests.report.conftest import SHA_A, fake_metrics, write_run

HEADERS = {"pdf": b"%PDF-", "png": b"\x89PNG\r\n\x1a\n"}


@pytest.fixture
def scored_tree(tmp_path):
    root = tmp_path / "results"
    rng = np.random.default_rng(0)
    for method, shift in (("base", 0.5), ("arpl_cs", 1.5), ("yu", 0.1)):
        folder = write_run(root, method, 1, 0, metrics=fake_metrics(0.9, 0.8, 0.7))
        group = np.repeat([0, 1, 2, 3], 15)
        logits = rng.normal(size=(60, 3)).astype(np.float32)
        write_scores(folder / "scores.h5", index=np.arange(60), sha256=[f"{i:064x}" for i in range(60)],
                     group=group, label=np.tile(np.arange(3), 20), logits=logits,
                     score=rng.normal(size=60) + shift * (group == 0), features=None, split=1,
                     dataset_sha256=SHA_A, method=method, num_classes=3)
    return root


def test_display_names_one_map():
    assert display_name("arpl_cs") == "ARPL+CS" and display_name("yu") == "Yu et al."
    assert display_name("my_plugin") == "my_plugin"
    assert len(set(DISPLAY_NAMES.values())) == len(DISPLAY_NAMES)


def test_plots_in_pdf_svg_png_with_labelled_legends(scored_tree, tmp_path, monkeypatch):
    legends: list[str] = []
    titles: list[str] = []
    import matplotlib.axes

    original_legend, original_title = matplotlib.axes.Axes.legend, matplotlib.axes.Axes.set_title

    def spy_legend(ax, *a, **kw):
        legends.extend(line.get_label() for line in ax.get_lines() if not line.get_label().startswith("_"))
        return original_legend(ax, *a, **kw)

    def spy_title(ax, text, *a, **kw):
        titles.append(text)
        return original_title(ax, text, *a, **kw)

    monkeypatch.setattr(matplotlib.axes.Axes, "legend", spy_legend)
    monkeypatch.setattr(matplotlib.axes.Axes, "set_title", spy_title)
    written, _ = write_plots(build_report(scored_tree), tmp_path / "plots", tsne=False,
                             formats=("pdf", "svg", "png"), titles=False)
    assert sorted({p.suffix for p in written}) == [".pdf", ".png", ".svg"]
    assert len(written) == 3 * (2 + 3)  # ROC and OSCR, a histogram per method, in 3 formats
    for path in written:
        head = path.read_bytes()[:200]
        if path.suffix == ".svg":
            assert b"<svg" in path.read_bytes()[:2000]
        else:
            assert head.startswith(HEADERS[path.suffix[1:]])
    assert titles == []  # --no-plot-titles
    roc = [label for label in legends if "AUC" in label]
    assert len(roc) == 3 and all(re.fullmatch(r"(Base|ARPL\+CS|Yu et al\.) \(AUC \d+\.\d\)", x) for x in roc)
    assert roc[0].startswith("ARPL+CS")  # best first
    assert any(re.fullmatch(r"Base \(OSCR \d+\.\d\)", x) for x in legends)


def test_line_styles_distinguish_curves():
    styles = [(_style(i)["color"], str(_style(i)["linestyle"])) for i in range(40)]
    assert len(set(styles)) == 40
    assert len({s for _, s in styles[:len(LINE_STYLES)]}) == len(LINE_STYLES)  # the first curves differ in style too


def test_plot_formats_are_checked():
    assert parse_formats("pdf, SVG,png,pdf") == ("pdf", "svg", "png")
    with pytest.raises(OsmaError, match="unknown format\\(s\\) jpg"):
        parse_formats("pdf,jpg")


def test_cli_plot_format_and_titles(scored_tree, tmp_path, capsys):
    assert main(["report", str(scored_tree), "--out", str(tmp_path / "R.md"), "--plots", str(tmp_path / "p"),
                 "--plot-format", "pdf", "--no-plot-titles"]) == 0
    files = sorted(p.name for p in (tmp_path / "p").iterdir())
    assert files and all(name.endswith(".pdf") for name in files)
    assert main(["report", str(scored_tree), "--out", str(tmp_path / "R.md"), "--plot-format", "gif"]) == 2
    assert "error: --plot-format" in capsys.readouterr().err


def test_latex_tables_fit_a_page_with_label_and_caption(scored_tree):
    report = build_report(scored_tree)
    tex = to_latex(report)
    tables = tex.split(r"\begin{table}")[1:]
    assert len(tables) == 2 * len(report.sections)
    labels = re.findall(r"\\label\{(tab:[^}]+)\}", tex)
    assert len(labels) == len(tables) == len(set(labels))
    for table in tables:
        assert table.count(r"\caption{") == 1 and table.count(r"\label{") == 1
        spec = re.search(r"\\begin\{tabular\}\{([lrc]+)\}", table).group(1)
        assert len(spec) <= 7  # method, n and at most five numbers
        assert r"\resizebox{\ifdim\width>\linewidth\linewidth\else\width\fi}{!}{%" in table
        assert table.count("{") == table.count("}")
        rows = [line for line in table.splitlines() if line.endswith(r"\\") and " & " in line]
        for row in rows:  # every row fills exactly the declared columns (multicolumn spans counted)
            spans = [int(m.group(1)) if (m := re.match(r"\\multicolumn\{(\d+)\}", cell.strip())) else 1
                     for cell in row[:-2].split(" & ")]
            assert sum(spans) == len(spec), row
    assert "ARPL+CS" in tex and "Yu et al." in tex and "arpl\\_cs" not in tex
    assert "| ARPL+CS | 1 |" in to_markdown(report)
