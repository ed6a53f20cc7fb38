"""The open-set model attribution protocol's vocabulary: the one home every other module imports.

A protocol split has known classes (real images and known generative models) and three groups of
unknown models (POSE, CVPR 2023): models differing only in their training **seed**, in their
**arch**\\ itecture, or in their training **dataset**. Partitions of a split in the dataset store:
``train``/``val``/``test`` (known classes) and ``out_<group>`` (each unknown group), plus ``out``
(all unknowns, as the official ``test_out.txt``).
"""

from __future__ import annotations

#: The three groups of unknown models, in the paper's column order.
UNKNOWN_GROUPS: tuple[str, ...] = ("seed", "arch", "dataset")
#: Partitions of the known classes.
KNOWN_PARTITIONS: tuple[str, ...] = ("train", "val", "test")
#: One partition per unknown group.
OUT_PARTITIONS: tuple[str, ...] = tuple(f"out_{g}" for g in UNKNOWN_GROUPS)
#: Every partition of a split in the store.
ALL_PARTITIONS: tuple[str, ...] = KNOWN_PARTITIONS + OUT_PARTITIONS + ("out",)
#: Score-file group codes -> names (0 = known test images).
SCORE_GROUPS: tuple[str, ...] = ("known", *UNKNOWN_GROUPS)
#: Score-file group codes -> the partition they are read from.
TEST_PARTITIONS: tuple[str, ...] = ("test", *OUT_PARTITIONS)
#: Open-set result groups in metrics.json and the report: each unknown group, then all unknowns.
REPORT_GROUPS: tuple[str, ...] = (*UNKNOWN_GROUPS, "all")
#: How the report names them (the paper's "Unseen Seed", ...).
GROUP_TITLES: dict[str, str] = {"seed": "Unseen Seed", "arch": "Unseen Arch", "dataset": "Unseen Dataset",
                                "all": "Unseen All"}
