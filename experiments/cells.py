"""The names a run directory is made of, shared by the runner (which writes cells) and the report (which reads them).

A cell is one (scenario, agent label, seed) of the grid: ``cells/SCENARIO__LABEL__sSEED/``, done once its
``cell.json`` exists (written last, atomically).
"""

from __future__ import annotations

CELL_MARKER = "cell.json"


def cell_name(scenario: str, label: str, seed: int) -> str:
    return f"{scenario}__{label}__s{seed}"


__all__ = ["CELL_MARKER", "cell_name"]
