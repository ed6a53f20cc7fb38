"""CPU threads for these tests: one (the CPUs are shared; OpenMP spin-waiting wastes them)."""

import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture
def batch():
    """Twelve images in [-1, 1] of 3 classes (4 each): the method tests' fixed batch."""
    gen = torch.Generator().manual_seed(0)
    return torch.rand(12, 3, 32, 32, generator=gen) * 2 - 1, torch.arange(3).repeat_interleave(4)
