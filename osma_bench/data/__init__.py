"""The data layer: build datasets into the HDF5 store, verify and audit them, and read them.

Public API (docs/CONTRACTS.md section 1): :class:`DatasetWriter` writes a dataset;
:func:`load_card`, :func:`read_split`, :class:`OSMADataset` and :class:`BalancedBatchSampler`
read it; :func:`verify_dataset` checks it; :func:`make_synthetic_dataset` writes a tiny one for
tests. Names are imported lazily so that build worker processes do not pay for importing torch.
"""

from importlib import import_module

_EXPORTS = {
    "BalancedBatchSampler": "osma_bench.data.reader",
    "OSMADataset": "osma_bench.data.reader",
    "SplitInfo": "osma_bench.data.reader",
    "load_card": "osma_bench.data.reader",
    "read_split": "osma_bench.data.reader",
    "DatasetWriter": "osma_bench.data.store",
    "make_synthetic_dataset": "osma_bench.data.synthetic",
    "verify_dataset": "osma_bench.data.verify",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'osma_bench.data' has no attribute {name!r}")
