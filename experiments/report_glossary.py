"""The report's words: links into the glossary (``glossary.GLOSSARY``), metric labels, how a number is shown.

A table header links its metric's glossary entry (``header``); a number with its interval is a ``Cell`` whose
``data-*`` attributes hold the frame's exact values (``number_cell``), so that a test reads them back from the HTML.
"""

from __future__ import annotations

from stickyrec.experiments.glossary import GLOSSARY
from stickyrec.experiments.metrics import METRIC_LABELS
from stickyrec.experiments.report_html import Cell
from stickyrec.experiments.stickiness import metric_label as stickiness_label

SUMMARY_GLOSSARY = {  # summary.csv's metrics that stickiness.metric_label does not name
    "click_rate_week1": "ctr",
    "click_rate": "ctr",
    "sessions_per_shopper": "sessions",
    "purchases_per_shopper": "revenue",
    "mean_lifetime_days": "lifetime",
}
SUMMARY_LABELS = {
    "click_rate_week1": "CTR per slate, week 1",
    "click_rate": "CTR per slate",
    "revenue_per_shopper": "revenue (margin) per shopper",
}


def glossary_key(metric: str) -> str | None:
    """The glossary entry (``glossary.GLOSSARY``) of a summary or stickiness metric, None where it has none."""
    if metric in SUMMARY_GLOSSARY:
        return SUMMARY_GLOSSARY[metric]
    try:
        return stickiness_label(metric)[1]
    except ValueError:
        return None


def metric_label(metric: str) -> str:
    """How the report names a metric of summary.csv or stickiness.csv."""
    if metric in SUMMARY_LABELS:
        return SUMMARY_LABELS[metric]
    try:
        return stickiness_label(metric)[0]
    except ValueError:
        return METRIC_LABELS.get(metric, metric.replace("_", " "))


def header(text: str, key: str | None) -> str:
    """A table header with a link to its glossary entry (a ``?`` after the text: a click on the text sorts)."""
    return f"{text} [?](#g-{key})" if key in GLOSSARY else text


def fmt(value: float) -> str:
    return f"{value:,.1f}" if abs(value) >= 10 else f"{value:.3f}"


def with_interval(value: float, low: float, high: float, signed: bool = False) -> str:
    if signed:
        return f"{value:+.3f} [{low:+.3f}, {high:+.3f}]"
    return f"{fmt(value)} [{fmt(low)}, {fmt(high)}]"


def number_cell(source: str, key: dict, value: float, low: float, high: float, signed: bool = False) -> Cell:
    """A number with its interval; ``data-*``: the source file, the row's key, the exact value and interval."""
    data = {"source": source, **key, "value": repr(float(value)), "low": repr(float(low)), "high": repr(float(high))}
    return Cell(with_interval(value, low, high, signed), data)


def glossary_block() -> tuple:
    return ("glossary", [(f"g-{key}", term, text) for key, (term, text) in GLOSSARY.items()])


__all__ = [
    "glossary_block",
    "glossary_key",
    "header",
    "metric_label",
    "number_cell",
    "with_interval",
]
