"""The report's glossary: each term a reader meets in a header, in plain words (docs/report.md has the formulas).

``GLOSSARY``: key -> (term, one paragraph). The keys are what ``stickiness.metric_label`` and
``stickiness.STICKINESS_METRICS`` name as a metric's glossary entry, so a header can link to its definition.
"""

from __future__ import annotations

GLOSSARY: dict[str, tuple[str, str]] = {
    "ctr": (
        "CTR per slate and per item",
        "A slate is the list of items shown at one time (10 in the default world, 5 in the small one), and a shopper"
        " clicks at most one item of it. CTR per slate is clicks divided by slates shown: the chance a slate got a"
        " click. CTR per item is clicks divided by items shown (slates times slate size), the figure an analyst"
        " usually means by CTR. Per item is per slate divided by the slate size. CTR week 1 counts only the"
        " shopper's first 7 days.",
    ),
    "retention": (
        "Unbounded vs N-day retention",
        "Day-N retention (N-day, as Amplitude and Mixpanel call it) is the share of starting shoppers who were"
        " active on day N itself (day 0 is each shopper's first visit). Unbounded retention is the share who had"
        " not churned by day N: they came back on day N or later, or were still customers when the run ended (the"
        " simulator knows who churned). Unbounded is always at least N-day retention; the tables' 'retained dN' and"
        " the retention curves are unbounded.",
    ),
    "revenue": (
        "Revenue (margin units)",
        "Revenue is the store's margin on purchases: the item's price times the margin rate (20% by default), in"
        " the simulator's currency units, not real money. Revenue per shopper divides a group's total by its"
        " starting shoppers, so shoppers who churned early count with what they spent.",
    ),
    "ltv": (
        "LTV (cumulative revenue per starting shopper)",
        "Lifetime value by day d: the revenue (price times margin) that a group of shoppers brought in from their"
        " first visit up to day d, divided by the number of shoppers who started. It never goes down; at the"
        " horizon it equals revenue per shopper.",
    ),
    "lifetime": (
        "Lifetime",
        "How many days a shopper stayed a customer: from her first visit to her last session if she churned, or"
        " the whole horizon if she had not churned when the run ended.",
    ),
    "logrank": (
        "Log-rank test",
        "A test of whether two groups lose customers at the same pace over the whole period, not only on one day."
        " A small p-value (say below 0.05) means the two retention curves are unlikely to differ by chance alone."
        " The report's version treats the two agents' shoppers as independent groups, although they are the same"
        " starting shoppers, so it is cautious: real differences can show a larger p-value than they deserve.",
    ),
    "dau_mau": (
        "DAU/MAU",
        "Daily active shoppers divided by monthly active shoppers (active at least once in the last 30 days),"
        " summed over the days of the run: the share of a month's customers who show up on a given day. 1 would"
        " mean every monthly customer comes every day. Active means she saw at least one slate that day.",
    ),
    "wau_mau": (
        "WAU/MAU",
        "Weekly active shoppers (active at least once in the last 7 days) divided by monthly active shoppers,"
        " summed over the days of the run: how many of a month's customers come back every week. It lies between"
        " DAU/MAU and 1.",
    ),
    "sessions_per_active_week": (
        "Sessions per active shopper per week",
        "In each full week since the shoppers' first visit (days 0-6, 7-13, ...), the sessions they started divided"
        " by the shoppers who had at least one session that week: how often an active customer visits.",
    ),
    "satisfaction": (
        "Latent satisfaction vs the rating proxy",
        "Latent satisfaction is the shopper's hidden contentment (0 to 1) that drives whether she comes back; only"
        " a simulator can measure it, and the report shows it as simulator-only truth, averaged over every slate"
        " shown. The observable proxy a platform could compute is the mean public rating (0 to 1) of the items"
        " shoppers clicked; it tracks satisfaction only partly.",
    ),
    "oracle_share": (
        "Share of the oracle",
        "The long-term oracle reads the shopper's hidden state, so no real system could run it: it is a reference"
        " for how well one can do, not a competitor. An agent's share of the oracle is its value divided by the"
        " oracle's (0.9 = 90% of the oracle's retention). The span share puts random slates at 0 and the oracle at"
        " 1: the part of the possible improvement over random that the agent captures.",
    ),
    "best_non_rl": (
        "Best non-RL",
        "The agent with the highest day-30 retention among those that do not train in the simulator (learning from"
        " the logged data, or not learning at all) and do not read hidden state: the ranker a practitioner could"
        " deploy instead of reinforcement learning.",
    ),
    "paired_margin": (
        "Paired margin",
        "One agent's value minus another's, measured on the same starting shoppers: in each seed every agent"
        " serves the same held-out shoppers, so luck in who the shoppers are cancels out, and the difference is"
        " more precise than comparing two separate intervals.",
    ),
    "bootstrap_interval": (
        "The 95% interval (bootstrap)",
        "The range the value would likely fall in if the whole experiment were run again. It is found by redoing"
        " the calculation many times on resampled data: first the seeds (independent trainings and populations)"
        " are drawn with replacement, then the shoppers within each drawn seed; the middle 95% of the results is"
        " the interval. Every table, curve band and margin in the report uses these same draws.",
    ),
    "oracle": (
        "Oracle (reference bound)",
        "An agent that reads the simulator's hidden state (latent satisfaction, true click probabilities), which no"
        " real recommender can see. Oracles show how well one could do; they are reference bounds, not baselines,"
        " so the report tables them apart and draws them dashed.",
    ),
    "sessions": ("Sessions", "Visits per starting shopper over the horizon; churned shoppers add none after churning."),
}

__all__ = ["GLOSSARY"]
