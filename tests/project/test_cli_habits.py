"""CLI habits: --version, -h, shell completion, help that reads as words, a clear dataset error."""

from __future__ import annotations

import re

import pytest

import osma_bench
from osma_bench.cli import main


def test_version_and_short_help(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"osma-bench {osma_bench.__version__}"
    for args in (["-h"], ["run", "-h"], ["build-data", "mini", "-h"]):
        assert main(args) == 0
        assert "Usage: osma-bench" in capsys.readouterr().out


@pytest.mark.parametrize("shell", ["bash", "zsh"])
def test_completion_scripts(shell, capsys):
    assert main(["completion", shell]) == 0
    script = capsys.readouterr().out
    assert len(script) > 150 and "osma-bench" in script and "_OSMA_BENCH_COMPLETE" in script
    assert ("complete -o" in script) if shell == "bash" else ("compdef" in script)


def test_completion_answers_and_unknown_shell(monkeypatch, capsys):
    monkeypatch.setenv("_OSMA_BENCH_COMPLETE", "complete_bash")
    monkeypatch.setenv("COMP_WORDS", "osma-bench ru")
    monkeypatch.setenv("COMP_CWORD", "1")
    assert main([]) == 0
    assert capsys.readouterr().out.split() == ["run"]
    monkeypatch.delenv("_OSMA_BENCH_COMPLETE")
    assert main(["completion", "tcsh"]) == 2
    assert "unknown shell 'tcsh'" in capsys.readouterr().err


@pytest.mark.parametrize("command", [["run"], ["report"], ["verify-data"], ["sweep"], ["eval"], ["discover"],
                                     ["build-data", "pose"]])
def test_help_metavars_are_words(command, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    assert main([*command, "--help"]) == 0
    text = capsys.readouterr().out
    assert not re.search(r"<(bool|str|int|path|float|list\[[a-z]+\])>", text), text
    assert not re.search(r"\{[a-z_]+\}", text)
    if command == ["run"]:
        assert "KEY=VALUE" in text and re.search(r"--data\s+DATA\s", text)
    if command == ["verify-data"]:
        assert "Usage: osma-bench verify-data [OPTIONS] ROOT" in text


def test_folder_without_dataset_json(tmp_path, capsys):
    empty = tmp_path / "not_data"
    empty.mkdir()
    expected = f"{empty}: not a dataset folder (no dataset.json; build one with osma-bench build-data)"
    assert main(["run", "--method", "base", "--data", str(empty), "--profile", "smoke", "--out",
                 str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == f"error: {expected}" and sum(line.startswith("error:") for line in err) == 1
    assert main(["verify-data", str(empty)]) != 0
    assert expected in capsys.readouterr().out
