"""The analyst's report: the numbers it shows are the CSVs' numbers, its charts, and (``-m browser``) the page in a
real headless Chromium: no console errors, no network, charts drawn, legend toggles, usable at phone width."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from stickyrec.experiments.report_charts import line_chart, spread
from stickyrec.experiments.report_html import Cell, html_table, render_markdown

TINY = {
    "name": "tiny",
    "env": {"preset": "small", "horizon_days": 20},
    "scenarios": [{"name": "default", "env": {}}],
    "agents": {"random": {}, "ctr_rating": {}, "myopic_oracle": {}, "long_term_oracle": {}},
    "seeds": 2,
    "evaluation": {"shoppers": 60},
    "report": {"reference": "random", "resamples": 40, "cohort_days": [1, 7, 14]},
}


class Cells(HTMLParser):
    """Every element's attributes, and the ``data-*`` attributes of table cells."""

    def __init__(self):
        super().__init__()
        self.cells: list[dict] = []
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append((tag, attrs))
        if tag == "td" and "data-source" in attrs:
            self.cells.append({k[5:]: v for k, v in attrs.items() if k.startswith("data-")})


def parse(text: str) -> Cells:
    parser = Cells()
    parser.feed(text)
    return parser


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    """A small finished run (4 agents, 2 seeds of 60 shoppers, 20 days) with its report."""
    root = tmp_path_factory.mktemp("tiny")
    (root / "tiny.yaml").write_text(yaml.safe_dump(TINY))
    out = root / "run"
    command = [sys.executable, "-m", "stickyrec.experiments.cli", "run", str(root / "tiny.yaml"), "--out", str(out)]
    done = subprocess.run([*command, "--quiet", "--workers", "1"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return out


# ---------------------------------------------------------------------------------------------------------------
# The numbers shown are the CSVs' numbers
# ---------------------------------------------------------------------------------------------------------------
def test_numbers_in_the_report_are_the_csvs_numbers(tiny_run):
    cells = parse((tiny_run / "report.html").read_text()).cells
    checked = {"summary": 0, "stickiness": 0}
    for source, key in (("summary", None), ("stickiness", "metric")):
        frame = pd.read_csv(tiny_run / f"{source}.csv")
        if key is None:  # summary.csv is wide: one column per metric, _low and _high beside it
            metrics = [c for c in frame.columns if f"{c}_low" in frame.columns]
            frame = frame.melt(["scenario", "agent"], metrics, "metric", "estimate").merge(
                pd.concat(
                    [
                        frame[["scenario", "agent", f"{m}_low", f"{m}_high"]]
                        .rename(columns={f"{m}_low": "low", f"{m}_high": "high"})
                        .assign(metric=m)
                        for m in metrics
                    ]
                ),
                on=["scenario", "agent", "metric"],
            )
        expected = frame.set_index(["scenario", "agent", "metric"])
        for cell in (c for c in cells if c["source"] == source):
            row = expected.loc[(cell["scenario"], cell["agent"], cell["metric"])]
            for column, attr in (("estimate", "value"), ("low", "low"), ("high", "high")):  # the CSVs: 6 digits
                assert float(cell[attr]) == pytest.approx(row[column], rel=6e-6, abs=1e-12), (cell, column)
            checked[source] += 1
        shown = {(c["scenario"], c["agent"], c["metric"]) for c in cells if c["source"] == source}
        assert shown == set(expected.index)  # every agent (oracles in their own section) and metric is shown
        assert checked[source] >= len(expected) >= 4 * 9


def test_the_report_has_the_analysts_sections(tiny_run):
    text = (tiny_run / "report.html").read_text()
    for words in (
        "Executive summary",
        "Reference bounds: oracles (read hidden state)",
        "simulator-only truth",
        "Cohort retention heatmaps",
        "Numbers at risk",
        'id="g-ctr"',
        'href="#g-retention"',
        'href="stickiness.csv"',
        '<meta name="viewport"',
    ):
        assert words in text, words
    assert "http://" not in text.replace('xmlns="http://www.w3.org/2000/svg"', "") and "https://" not in text
    tags = parse(text).tags
    ids = {a["id"] for _, a in tags if "id" in a}
    links = {a["href"][1:] for t, a in tags if t == "a" and a.get("href", "").startswith("#")}
    assert links and links <= ids, links - ids  # every glossary link lands on its entry
    assert not [a for t, a in tags if t in ("script", "link", "img") and ("src" in a or "href" in a)]
    series = [a for t, a in tags if t == "g" and "data-pts" in a]
    assert series and all(json.loads(a["data-pts"]) for a in series)
    dashed = {a["data-series"] for t, a in tags if t == "button" and "data-series" in a}
    assert {"random", "ctr_rating", "long_term_oracle"} <= dashed
    markdown = (tiny_run / "report.md").read_text()
    assert "<script" not in markdown and "## Glossary" in markdown and "Executive summary" in markdown
    for name in ("retention_unbounded_default.svg", "ctr_vs_retention_default.svg"):
        assert f"figures/{name}" in markdown and (tiny_run / "figures" / name).is_file()


# ---------------------------------------------------------------------------------------------------------------
# Pieces
# ---------------------------------------------------------------------------------------------------------------
@given(st.lists(st.floats(0, 300), min_size=1, max_size=15))
def test_direct_labels_keep_their_order_and_a_gap(targets):
    placed = spread(targets, 12.0, 0.0, 300.0)
    order = np.argsort(targets, kind="stable")
    ys = np.array(placed)[order]
    assert np.all(np.diff(ys) >= 12.0 - 1e-9)
    if len(targets) * 12.0 <= 300.0:
        assert ys[0] >= -1e-9 and ys[-1] <= 300.0 + 1e-9


def test_a_table_cell_carries_its_exact_value_and_the_markdown_its_text():
    cell = Cell("0.123 [0.1, 0.2]", {"source": "summary", "value": repr(0.1234567891)})
    page = html_table(["agent", "x"], [["a", cell]])
    [parsed] = parse(page).cells
    assert float(parsed["value"]) == 0.1234567891 and '<div class="wide"><table>' in page
    assert "| a | 0.123 [0.1, 0.2] |" in render_markdown([("table", ["agent", "x"], [["a", cell]])])


def test_a_line_chart_has_a_band_a_tooltip_point_per_day_and_its_label_at_the_end():
    days = np.arange(5.0)
    series = [{"name": "ppo", "colour": "#123456", "dash": "", "x": days, "y": 1 - days / 10}]
    series[0] |= {"low": 0.95 - days / 10, "high": 1.05 - days / 10, "n": 100 - days}
    svg = line_chart(series, title="t", y_label="y", percent=True)
    [group] = [a for t, a in parse(svg).tags if t == "g" and "data-pts" in a]
    points = json.loads(group["data-pts"])
    assert len(points) == 5 and points[-1][2:] == [4.0, 0.6, 0.55, 0.65, 96.0] and group["data-fmt"] == "pct"
    assert "<polygon" in svg and ">ppo 60.0%</text>" in svg


# ---------------------------------------------------------------------------------------------------------------
# In a real browser (Playwright + Debian's chromium): `-m browser`
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.browser
def test_the_report_in_a_real_browser(tiny_run):
    from PIL import Image

    from stickyrec.experiments.screenshots import open_report

    html = tiny_run / "report.html"
    with open_report(html, 1280) as (page, errors, requests):
        assert page.locator("svg.plot").count() >= 6
        shot = Image.open(io.BytesIO(page.screenshot(full_page=True))).convert("RGB")
        assert len(shot.getcolors(1 << 24)) > 200, "charts drawn: many distinct colours"
        figure = page.locator("figure.chart").first
        line = figure.locator('g.series[data-series="ctr_rating"]').first
        before = line.evaluate("g => getComputedStyle(g).opacity")
        figure.locator('button[data-series="ctr_rating"]').click()
        after = line.evaluate("g => getComputedStyle(g).opacity")
        assert (before, after) == ("1", "0")
        figure.locator('button[data-series="ctr_rating"]').click()
        assert line.evaluate("g => getComputedStyle(g).opacity") == "1"
        box = figure.locator("svg").bounding_box()
        page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.4)
        shown = figure.locator(".tip").inner_text()
        assert " · day " in shown and "%" in shown and "[" in shown and " · n " in shown, shown
        header = page.locator(".wide > table th").nth(0)
        header.click()
        assert header.get_attribute("aria-sort") == "ascending"
        assert not errors, errors
        assert requests == [html.resolve().as_uri()], requests
    with open_report(html, 420) as (page, errors, _):
        widths = page.evaluate("[document.documentElement.scrollWidth, document.body.scrollWidth, innerWidth]")
        assert widths[0] <= 420 and widths[1] <= 420, widths
        wide = page.locator(".wide").first.evaluate("d => [d.scrollWidth, d.clientWidth]")
        assert wide[0] > wide[1], "a wide table scrolls inside its box"
        assert not errors, errors
