"""The Makefile: `make demo` installs the project only; the test plugin `toy` is for `make test`."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def _dry_run(target: str, venv: Path) -> str:
    """The commands `make TARGET` would run from an empty environment (-B: every target out of date)."""
    done = subprocess.run(["make", "-n", "-B", target, f"VENV={venv}"], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_demo_does_not_install_the_test_plugin(tmp_path):
    recipe = _dry_run("demo", tmp_path / "venv")
    assert "pip install -q -e '.[dev]'" in recipe  # it does install the project
    assert "osma-bench run --method pose" in recipe
    assert "plugin_example" not in recipe and "toy" not in recipe


def test_test_target_installs_the_test_plugin(tmp_path):
    recipe = _dry_run("test", tmp_path / "venv")
    assert "pip install -q -e tests/plugin_example" in recipe
    assert recipe.index("pip install -q -e '.[dev]'") < recipe.index("tests/plugin_example")
