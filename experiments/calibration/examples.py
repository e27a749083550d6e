"""Shipped real transaction logs, found through importlib.resources so that they load from an installed wheel.

``online_retail_ii``: UCI Online Retail II (Chen 2019, CC BY 4.0), one row per customer-invoice; attribution and
what was changed in ``experiments/datasets/README.md``; rebuilt by ``build_example``.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pandas as pd

EXAMPLES = {"online_retail_ii": "online_retail_ii.csv.gz"}


def example_path(name: str) -> Path:
    """The file of the shipped example ``name`` (``ValueError`` naming the examples for an unknown one)."""
    if name not in EXAMPLES:
        raise ValueError(f"unknown example {name!r}; allowed: {', '.join(sorted(EXAMPLES))}")
    resource = resources.files("stickyrec.experiments").joinpath("datasets", EXAMPLES[name])
    path = Path(str(resource))
    if not path.is_file():
        raise ValueError(f"example {name!r} is missing from the installed package (looked for {path})")
    return path


def load_example(name: str = "online_retail_ii", *, frame: bool = False) -> Path | pd.DataFrame:
    """The shipped example's path, or with ``frame=True`` its rows as a DataFrame (``invoice_date`` parsed).

    Pass the path to ``transactions.read_transactions``: its columns (customer_id, invoice, invoice_date, value)
    are recognised without arguments.
    """
    path = example_path(name)
    if not frame:
        return path
    table = pd.read_csv(path, dtype={"customer_id": "string", "invoice": "string"})
    table["invoice_date"] = pd.to_datetime(table["invoice_date"], format="%Y-%m-%d %H:%M")
    return table
