"""How methods are named where people read them (tables, plots, the terminal): the one map.

Registered names (``arpl_cs``) stay what commands, folders and CSV files use; readers see the
papers' names (``ARPL+CS``). A method not listed here (an outside plugin) is shown as registered.
"""

from __future__ import annotations

DISPLAY_NAMES: dict[str, str] = {
    "base": "Base",
    "pose": "POSE",
    "openmax": "OpenMax",
    "proser": "PROSER",
    "arpl_cs": "ARPL+CS",
    "dias": "DIAS",
    "prnu": "PRNU",
    "yu": "Yu et al.",
    "dct_cnn": "DCT-CNN",
    "dnadet": "DNA-Det",
    "repmix": "RepMix",
    "girish": "Girish et al.",
}


def display_name(method: str) -> str:
    """The name shown for the registered method ``method``."""
    return DISPLAY_NAMES.get(method, method)
