"""CPU threads for these tests: one (the CPUs are shared; OpenMP spin-waiting wastes them)."""

import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
