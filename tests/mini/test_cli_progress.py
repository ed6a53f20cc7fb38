"""``build-data mini`` off a terminal: one line per phase instead of a silent wait."""

from __future__ import annotations

import re

from osma_bench.cli import main
from osma_bench.data.mini import build as mini_build


def test_build_mini_prints_a_line_per_phase_when_not_a_terminal(tiny_mini, tmp_path, monkeypatch, capsys):
    def fake_build(out, progress=None, **kw):  # the stages and calls of the real build, without the work
        for stage, total in (("real photographs", 2), ("training generators", 41), ("writing", 43)):
            for done in range(total + 1):
                progress(stage, done, total)
        return tiny_mini

    monkeypatch.setattr(mini_build, "build_mini", fake_build)
    assert main(["build-data", "mini", "--out", str(tmp_path / "m")]) == 0
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "real photographs: 0/2 ..." and err[2] == "training generators: 0/41 ..."
    assert [line.split(":")[0] for line in err if "done in" in line] == ["real photographs", "training generators",
                                                                         "writing"]
    assert all(re.fullmatch(r".+: (\d+/\d+ \.\.\.|done in \d+\.\d s)", line) for line in err)
