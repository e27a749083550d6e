"""Calibration to a store's own transaction log: reading and summarising logs, the BG/NBD baseline, examples.

- ``transactions``: ``read_transactions`` (CSV, Parquet, DuckDB, SQLAlchemy URL) -> ``TransactionLog`` of purchase
  days; ``split`` -> ``Split`` with the per-customer BG/NBD summary (x, t_x, T) and held-out purchase days;
- ``views``: tracking curve, repeat-purchase distribution, gaps, cohort retention, and the scoring metrics;
- ``bgnbd``: closed-form BG/NBD (likelihood, MLE with standard errors, P(alive), expectations, simulator);
- ``baseline``: BG/NBD fitted on a split and scored on the held-out weeks;
- ``validate``: a simulated log against the real one on the four views (tracking, repeats, gaps, cohorts),
  calibration and held-out weeks apart, with distances; the headline figures;
- ``report`` (with ``charts``, small inline SVG charts): the validation report, report.md / report.html /
  tracking.svg;
- ``sessions``: session-level shape (share that buys, pages per session) against Online Shoppers Intention, and
  the small fit of the within-session fields to it;
- ``examples`` / ``build_example``: the shipped Online Retail II example and its reproducible builder.
"""

from stickyrec.experiments.calibration.bgnbd import BGNBDFit, BGNBDParams, fit_bgnbd
from stickyrec.experiments.calibration.examples import load_example
from stickyrec.experiments.calibration.transactions import Split, TransactionLog, read_transactions, split

__all__ = [
    "BGNBDFit",
    "BGNBDParams",
    "Split",
    "TransactionLog",
    "fit_bgnbd",
    "load_example",
    "read_transactions",
    "split",
]
