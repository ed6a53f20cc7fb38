"""Shared network building blocks, defined once and imported by every method."""

from osma_bench.nn.augment import AugmentationModel
from osma_bench.nn.dct import DCT2d, dct_2d, dct_matrix
from osma_bench.nn.simple_cnn import SimpleCNN
from osma_bench.nn.triplet import batch_hard_triplet_loss

__all__ = ["AugmentationModel", "DCT2d", "SimpleCNN", "batch_hard_triplet_loss", "dct_2d", "dct_matrix"]
