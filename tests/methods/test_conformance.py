"""The conformance suite over every registered method (built-ins and installed plugins alike).

Parametrized from the registry, as timm's tests over ``list_models()``: a new method is covered
without a test of its own. See :mod:`osma_bench.methods.conformance`.
"""

from __future__ import annotations

import pytest

from osma_bench.methods import conformance
from osma_bench.methods.registry import available_methods, get_method

METHODS = available_methods()


def test_the_registry_holds_every_built_in_and_the_outside_plugin():
    assert {"base", "pose", "openmax", "proser", "arpl_cs", "dias", "prnu", "yu", "dct_cnn", "dnadet", "repmix",
            "girish"} <= set(METHODS)
    assert "toy" in METHODS  # tests/plugin_example, installed by make test


@pytest.mark.parametrize("check", conformance.CHECKS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("name", METHODS)
def test_conformance(name, check):
    check(get_method(name))


def test_the_suite_catches_a_method_that_breaks_the_contract():
    """A method whose state_dict forgets its weights fails the round-trip check (the suite can fail)."""
    toy = get_method("toy")

    class Forgetful(toy):
        """A toy method that does not save its weights (for the conformance suite's own test)."""

        name = "forgetful"

        def state_dict(self):
            return {"optimizer": self.optimizer.state_dict()}

        def load_state_dict(self, state):
            self.optimizer.load_state_dict(state["optimizer"])

    with pytest.raises(AssertionError, match="state_dict round trip"):
        conformance.check_state_roundtrip(Forgetful)
