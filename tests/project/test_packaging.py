"""pyproject.toml: the licence as an SPDX expression (no setuptools deprecation warning when installing)."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_licence_is_an_spdx_string_with_a_setuptools_that_reads_it():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert project["project"]["license"] == "MIT"  # not the deprecated table form {text = "MIT"}
    assert not any(c.startswith("License ::") for c in project["project"].get("classifiers", []))
    requires = project["build-system"]["requires"]
    setuptools = next(r for r in requires if r.startswith("setuptools"))
    assert setuptools.startswith("setuptools>=") and int(setuptools.split(">=")[1].split(".")[0]) >= 77
