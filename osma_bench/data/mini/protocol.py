"""The mini benchmark's open-set protocol: which generators are known and unknown in each split.

Built like POSE's protocol (Yang et al., CVPR 2023, Sec. 4.1), with three splits that rotate the
known architectures. In split k:

- known classes: ``real`` plus the three known architectures x the three known domains, seed 0
  (9 generators);
- unseen seed: four models with the architecture and domain of a known model and seed 1;
- unseen architecture: the four other architectures, each on one known domain, seed 0;
- unseen dataset: known architectures trained on the two unseen-dataset domains (4 models).

Every architecture is known in at least one split, so the full architecture x known-domain grid
(seed 0) is trained once and serves as known classes in one split and as unseen architectures in
another.
"""

from __future__ import annotations

from dataclasses import dataclass

from osma_bench.data.mini.generators import ARCHITECTURES
from osma_bench.data.mini.sources import KNOWN_DOMAINS, UNSEEN_DOMAINS

ARCH_ORDER: tuple[str, ...] = tuple(ARCHITECTURES)

SPLIT_KNOWN_ARCHS: tuple[tuple[str, str, str], ...] = (
    ("tconv", "nearest", "pixelshuffle"),
    ("bilinear", "deep", "gan"),
    ("tconv3_in", "tconv", "bilinear"),
)
"""The known architectures of splits 1, 2 and 3; the other four are the split's unseen architectures."""

NUM_UNSEEN_SEED = 4
NUM_UNSEEN_DATASET = 4


@dataclass(frozen=True, order=True)
class ModelKey:
    """One generator: architecture family, training domain and model seed."""

    arch: str
    domain: str
    seed: int

    @property
    def name(self) -> str:
        return f"{self.arch}-{self.domain}-s{self.seed}"


@dataclass(frozen=True)
class SplitDef:
    """One protocol split: the known generators and the three unknown groups."""

    known: tuple[ModelKey, ...]
    unseen_seed: tuple[ModelKey, ...]
    unseen_arch: tuple[ModelKey, ...]
    unseen_dataset: tuple[ModelKey, ...]

    def unknown_groups(self) -> dict[str, tuple[ModelKey, ...]]:
        return {"seed": self.unseen_seed, "arch": self.unseen_arch, "dataset": self.unseen_dataset}


def make_split(k: int) -> SplitDef:
    """Split ``k`` (0-based) of the protocol."""
    known_archs = SPLIT_KNOWN_ARCHS[k]
    unseen_archs = [a for a in ARCH_ORDER if a not in known_archs]
    nd = len(KNOWN_DOMAINS)
    known = tuple(ModelKey(a, d, 0) for a in known_archs for d in KNOWN_DOMAINS)
    na = len(known_archs)
    # (architecture i mod 3, domain i + k + i // 3): distinct cells, rotating with the split.
    seed = tuple(ModelKey(known_archs[i % na], KNOWN_DOMAINS[(i + k + i // na) % nd], 1) for i in range(NUM_UNSEEN_SEED))
    arch = tuple(ModelKey(a, KNOWN_DOMAINS[(i + k) % nd], 0) for i, a in enumerate(unseen_archs))
    dataset = tuple(
        ModelKey(known_archs[i % na], UNSEEN_DOMAINS[i % len(UNSEEN_DOMAINS)], 0)
        for i in range(NUM_UNSEEN_DATASET)
    )
    return SplitDef(known, seed, arch, dataset)


def make_protocol() -> list[SplitDef]:
    """All splits of the protocol, in order (split1, split2, split3)."""
    return [make_split(k) for k in range(len(SPLIT_KNOWN_ARCHS))]


def all_models(splits: list[SplitDef]) -> list[ModelKey]:
    """Every generator any split uses, in a stable order (architecture, domain, seed)."""
    keys: set[ModelKey] = set()
    for s in splits:
        keys.update(s.known)
        for group in s.unknown_groups().values():
            keys.update(group)
    domain_order = {d: i for i, d in enumerate(KNOWN_DOMAINS + UNSEEN_DOMAINS)}
    arch_order = {a: i for i, a in enumerate(ARCH_ORDER)}
    return sorted(keys, key=lambda m: (arch_order[m.arch], domain_order[m.domain], m.seed))


def known_anywhere(splits: list[SplitDef]) -> set[ModelKey]:
    """Generators that are a known class in at least one split (they need train/val/test images)."""
    return {m for s in splits for m in s.known}
