"""A run that failed before training anything (say, in the method's constructor) does not make the next
try pass --overwrite."""

from __future__ import annotations

import json

import pytest

from osma_bench.errors import OsmaError
from osma_bench.harness.runner import RunRequest, run
from osma_bench.methods.base_cnn import BaseMethod


def test_constructor_failure_does_not_block_the_next_try(synthetic, tmp_path, monkeypatch):
    def broken(self, spec):
        raise RuntimeError("out of memory while building the model")

    request = RunRequest(method="base", data=synthetic, split=1, seed=0, profile="smoke", device="cpu", out=tmp_path,
                         epochs=1, overrides={"num_threads": 1}, progress=False, verify=False)
    with monkeypatch.context() as patch:
        patch.setattr(BaseMethod, "__init__", broken)
        with pytest.raises(RuntimeError, match="out of memory"):
            run(request)
    record = json.loads((tmp_path / "syn/base/split1/seed0/run.json").read_text())
    assert record["status"] == "failed" and "out of memory" in record["error"]
    result = run(request)  # no --overwrite needed: nothing was trained
    assert json.loads((result.path / "run.json").read_text())["status"] == "complete"
    with pytest.raises(OsmaError, match="run directory exists"):
        run(request)  # a complete run is still protected
