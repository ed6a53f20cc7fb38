"""osma-bench: benchmark suite and dataset toolkit for open-set model attribution (OSMA)."""

__version__ = "0.1.0"
