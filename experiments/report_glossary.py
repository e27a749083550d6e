"""The report's words: the glossary (anchored, linked from table headers), metric labels, how a number is shown.

A table header links its metric's glossary entry (``header``); a number with its interval is a ``Cell`` whose
``data-*`` attributes hold the frame's exact values (``number_cell``), so that a test reads them back from the HTML.
"""

from __future__ import annotations

from stickyrec.experiments.metrics import METRIC_LABELS
from stickyrec.experiments.report_html import Cell

GLOSSARY = {
    "ctr_slate": (
        "CTR per slate",
        "clicks / slates shown. A slate is one recommendation of 10 items, and gets at most one click, so this is"
        " the share of slates that got a click. `summary.csv`'s `click_rate` and `click_rate_week1` are per slate.",
    ),
    "ctr_item": (
        "CTR per item",
        "clicks / items shown = CTR per slate / 10: what most dashboards call CTR (one impression per item).",
    ),
    "retention_unbounded": (
        "Unbounded retention (day N)",
        "share of the starting shoppers active on day N or later, i.e. not yet churned by day N (Amplitude's"
        " 'unbounded', Mixpanel's 'on or after'). `summary.csv`'s `retention_dayN` (retained dN) is this one.",
    ),
    "retention_nday": (
        "N-day retention (day N)",
        "share of the starting shoppers active ON day N (Amplitude's 'N-day'). Lower than unbounded retention:"
        " a shopper who skips day N but comes back later counts as retained only in the unbounded form.",
    ),
    "dau_mau": (
        "DAU/MAU",
        "daily active shoppers / shoppers active in the trailing 30 days, averaged over days: how often an active"
        " shopper comes back in a month (1/30 = once a month, 1 = every day).",
    ),
    "wau_mau": ("WAU/MAU", "weekly active shoppers / shoppers active in the trailing 30 days, averaged over days."),
    "sessions_per_active_week": (
        "Sessions per active shopper per week",
        "sessions started in a week / shoppers active in that week.",
    ),
    "satisfaction_latent": (
        "Latent satisfaction (simulator-only truth)",
        "the shopper's hidden satisfaction after each slate, averaged over slates shown. No real platform can"
        " measure it; the simulator knows it, so it is shown beside the observable proxy.",
    ),
    "rating_clicked": (
        "Mean rating of clicked items (observable proxy)",
        "the mean public rating of the items shoppers clicked: what a platform can see of satisfaction.",
    ),
    "revenue": (
        "Revenue (margin)",
        "the platform's margin on purchases, in the simulator's currency units, per starting shopper (churned"
        " shoppers count as zero from their churn on).",
    ),
    "ltv": (
        "LTV by day d",
        "cumulative revenue (margin) per starting shopper from day 0 to day d: the lifetime value so far.",
    ),
    "lifetime": (
        "Lifetime",
        "days from the first visit to churn (the day after the last session), capped at the horizon for"
        " shoppers who never churned.",
    ),
    "sessions": ("Sessions", "visits per starting shopper over the horizon."),
    "interval": (
        "95% interval",
        "brackets [low, high]: a bootstrap over seeds (training runs and populations) and shoppers within each;"
        " the charts' bands come from the same bootstrap as the tables.",
    ),
    "paired": (
        "Paired difference",
        "agent A minus agent B on the same shoppers (every agent meets the same held-out shoppers in a seed), with"
        " the 95% interval of the difference. An interval that spans 0 means no clear difference.",
    ),
    "logrank": (
        "Log-rank test",
        "asks whether two retention curves differ anywhere over the horizon, not just at day 30. A small p (say"
        " below 0.01) means the curves differ; it treats the two agents' shoppers as independent, so for these"
        " paired shoppers it is conservative.",
    ),
    "oracle": (
        "Oracle (reference bound)",
        "an agent that reads the simulator's hidden state (latent satisfaction, true click probabilities). No"
        " real recommender can; oracles bound what is possible and are not baselines.",
    ),
    "best_non_rl": (
        "Best non-RL",
        "the agent with the highest day-30 retention among those that neither train in the simulator nor read"
        " hidden state: what a practitioner could deploy instead of RL.",
    ),
    "oracle_share": (
        "Share of the oracle",
        "an agent's value / the long-term oracle's value on the same shoppers, with a 95% interval.",
    ),
}
SUMMARY_GLOSSARY = {
    "click_rate_week1": "ctr_slate",
    "click_rate": "ctr_slate",
    "sessions_per_shopper": "sessions",
    "purchases_per_shopper": "revenue",
    "revenue_per_shopper": "revenue",
    "mean_lifetime_days": "lifetime",
}
SUMMARY_LABELS = {
    "click_rate_week1": "CTR per slate, week 1",
    "click_rate": "CTR per slate",
    "revenue_per_shopper": "revenue (margin) per shopper",
}


def glossary_key(metric: str, keys: dict | None = None) -> str | None:
    """The glossary entry of a summary or stickiness metric (``keys``: metric -> (label, key) of the frames)."""
    if keys and metric in keys and keys[metric][1] in GLOSSARY:
        return keys[metric][1]
    if metric.startswith("retention_day") or metric.startswith("unbounded_retention"):
        return "retention_unbounded"
    if metric.startswith("nday_retention"):
        return "retention_nday"
    if metric.startswith("ltv"):
        return "ltv"
    for prefix, key in (("click_rate_item", "ctr_item"), ("rating_clicked", "rating_clicked")):
        if metric.startswith(prefix):
            return key
    return SUMMARY_GLOSSARY.get(metric, metric if metric in GLOSSARY else None)


def metric_label(metric: str, keys: dict | None = None) -> str:
    """How the report names a metric of summary.csv or stickiness.csv."""
    if keys and metric in keys:
        return keys[metric][0]
    if metric in SUMMARY_LABELS:
        return SUMMARY_LABELS[metric]
    if metric.startswith("retention_day"):
        return f"retained d{metric[13:]} (unbounded)"
    for prefix, label in (("unbounded_retention_day", "unbounded d"), ("nday_retention_day", "N-day d")):
        if metric.startswith(prefix):
            return f"{label}{metric[len(prefix) :]}"
    if metric.startswith("ltv_day"):
        return f"LTV by day {metric[7:]}"
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
    "GLOSSARY",
    "glossary_block",
    "glossary_key",
    "header",
    "metric_label",
    "number_cell",
    "with_interval",
]
