"""A report document as a list of blocks, rendered twice: Markdown (tables, no script) and self-contained HTML.

Blocks:

- ``("h", level, text)``: a heading (the HTML one gets an ``id``: ``anchor(text)``); ``("p", text)``;
- ``("table", header, rows)``: a cell is text or a ``Cell``, text plus ``data-*`` attributes (which a test reads
  back) whose ``value`` the table sorts by;
- ``("grid", header, rows, shades)``: a table whose cells are shaded by ``shades`` (same shape as ``rows``: a
  number in [-1, 1], blue for positive and red for negative, or None);
- ``("img", file name, caption)``: PNG bytes from ``images``, or SVG text for a ``.svg`` name (inlined);
- ``("svg", name, svg text, caption, legend[, table])``: an inline chart; ``legend``: ``[(name, colour, dash)]``,
  drawn as buttons that toggle the chart's ``data-series``; Markdown links ``figures/<name>`` and shows
  ``table``, a ``("table", ...)`` block of the chart's numbers, where given;
- ``("row", [blocks])``: charts side by side where the page is wide; ``("box", title, [sentences])``: the
  executive summary; ``("glossary", [(anchor, term, definition)])``; ``("code", text)``.

Inline marks in text: `code`, **bold**, [text](link).

The HTML needs no network: its style and script (``report_assets/report.css``, ``report.js``: chart tooltips,
legend toggles, sortable tables) are read at render time and inlined; charts are inline SVG. It fits a phone's width
(viewport tag; wide tables and charts scroll inside their box, a table's first column and header kept in view).
"""

from __future__ import annotations

import base64
import html
import re
from importlib import resources
from typing import NamedTuple

import numpy as np


class Cell(NamedTuple):
    """A table cell: its text, and ``data-*`` attributes for the HTML (``value`` is also its sort key)."""

    text: str
    data: dict

    def __str__(self) -> str:
        return self.text


def asset(name: str) -> str:
    """A file of ``report_assets/`` (packaged with stickyrec), as text."""
    return resources.files("stickyrec.experiments").joinpath("report_assets", name).read_text(encoding="utf-8")


def anchor(text: str) -> str:
    """A heading's HTML id: lower case, runs of other characters as one ``-``."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


# --------------------------------------------------------------------------------------------------------------
# Markdown
# --------------------------------------------------------------------------------------------------------------
def markdown_table(header, rows) -> str:
    return "\n".join(
        [
            "| " + " | ".join(str(h) for h in header) + " |",
            "|" + "---|" * len(header),
            *("| " + " | ".join(str(c) for c in r) + " |" for r in rows),
        ]
    )


def render_markdown(blocks: list[tuple], image_dir: str = "figures") -> str:
    out = []
    for block in blocks:
        kind = block[0]
        if kind == "h":
            out.append("#" * block[1] + " " + block[2])
        elif kind == "p":
            out.append(block[1])
        elif kind in ("table", "grid"):
            out.append(markdown_table(block[1], block[2]))
        elif kind == "img":
            out.append(f"![{block[2]}]({image_dir}/{block[1]})")
        elif kind == "svg":
            out.append(f"![{block[3]}]({image_dir}/{block[1]})")
            if len(block) > 5 and block[5]:  # the chart's numbers as a table (Markdown has no tooltips)
                out.append(markdown_table(block[5][1], block[5][2]))
        elif kind == "row":
            out.append(render_markdown(block[1], image_dir).rstrip("\n"))
        elif kind == "box":
            out.append(f"> **{block[1]}**\n>\n" + "\n".join(f"> - {s}" for s in block[2]))
        elif kind == "glossary":
            out.append("\n".join(f'- <a id="{a}"></a>**{term}**: {text}' for a, term, text in block[1]))
        elif kind == "code":
            out.append(f"```\n{block[1]}\n```")
    return "\n\n".join(out) + "\n"


# --------------------------------------------------------------------------------------------------------------
# HTML
# --------------------------------------------------------------------------------------------------------------
def shade_style(shade) -> str:
    """The inline style of a grid cell shaded by ``shade`` in [-1, 1] (None: no shade)."""
    if shade is None or not np.isfinite(shade):
        return ""
    level = min(abs(float(shade)), 1.0)
    rgb = "33,102,172" if shade >= 0 else "178,24,43"
    ink = "#fff" if level > 0.55 else "#222"
    return f' style="background:rgba({rgb},{level:.2f});color:{ink}"'


def inline_html(text: str) -> str:
    """Markdown's inline marks as HTML: `code`, **bold** and [text](link)."""
    text = html.escape(text)
    text = re.sub(r"`([^`]+)`", r"<code>\1</code>", text)
    text = re.sub(r"\[([^\]]+)\]\(([^)\s]+)\)", r'<a href="\2">\1</a>', text)
    return re.sub(r"\*\*([^*]+)\*\*", r"<b>\1</b>", text)


def data_attributes(cell) -> str:
    if not isinstance(cell, Cell):
        return ""
    return "".join(f' data-{k}="{html.escape(str(v))}"' for k, v in cell.data.items())


def cell_html(cell) -> str:
    """A cell's HTML: a ``Cell``'s interval (``value [low, high]``) on its own smaller line, which halves the
    width of a table of intervals."""
    text = inline_html(str(cell))
    if isinstance(cell, Cell) and " [" in text:
        value, interval = text.split(" [", 1)
        return f'{value}<span class="ci">[{interval}</span>'
    return text


def html_table(header, rows, shades=None) -> str:
    """A table in a scrolling box (the script makes it sortable); with ``shades`` (same shape as ``rows``), a
    shaded grid."""
    head = "".join(f'<th scope="col">{inline_html(str(h))}</th>' for h in header)
    css = ' class="grid"' if shades is not None else ""
    shades = shades if shades is not None else [[None] * len(r) for r in rows]
    body = "".join(
        "<tr>"
        + "".join(f"<td{data_attributes(c)}{shade_style(v)}>{cell_html(c)}</td>" for c, v in zip(r, sr, strict=True))
        + "</tr>"
        for r, sr in zip(rows, shades, strict=True)
    )
    return f'<div class="wide"><table{css}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def legend_html(legend) -> str:
    items = []
    for name, colour, dash in legend:
        style = f"border-top-color:{colour}" + (";border-top-style:dashed" if dash else "")
        items.append(
            f'<li><button type="button" data-series="{html.escape(name)}" aria-pressed="true">'
            f'<span class="swatch" style="{style}"></span>{html.escape(name)}</button></li>'
        )
    return f'<ul class="legend">{"".join(items)}</ul>'


def html_block(block: tuple, images: dict) -> str:
    kind = block[0]
    if kind == "h":
        return f'<h{block[1]} id="{anchor(block[2])}">{inline_html(block[2])}</h{block[1]}>'
    if kind == "p":
        return f"<p>{inline_html(block[1])}</p>"
    if kind in ("table", "grid"):
        return html_table(block[1], block[2], block[3] if kind == "grid" else None)
    if kind == "svg":
        legend = legend_html(block[4]) if block[4] else ""
        caption = f"<figcaption>{inline_html(block[3])}</figcaption>"
        return f'<figure class="chart">{legend}<div class="plotbox">{block[2]}</div>{caption}</figure>'
    if kind == "img" and block[1].endswith(".svg"):
        svg = images[block[1]]
        svg = svg.decode() if isinstance(svg, bytes) else svg
        return f"<figure>{svg}<figcaption>{inline_html(block[2])}</figcaption></figure>"
    if kind == "img":
        data = base64.b64encode(images[block[1]]).decode()
        return (
            f'<figure><img alt="{html.escape(block[2])}" src="data:image/png;base64,{data}">'
            f"<figcaption>{inline_html(block[2])}</figcaption></figure>"
        )
    if kind == "row":
        return '<div class="charts">' + "".join(html_block(b, images) for b in block[1]) + "</div>"
    if kind == "box":
        items = "".join(f"<li>{inline_html(s)}</li>" for s in block[2])
        title = f'<h2 id="{anchor(block[1])}">{inline_html(block[1])}</h2>'
        return f'<section class="exec">{title}<ul>{items}</ul></section>'
    if kind == "glossary":
        entries = "".join(
            f'<dt id="{a}">{inline_html(term)}</dt><dd>{inline_html(text)}</dd>' for a, term, text in block[1]
        )
        return f'<dl class="glossary">{entries}</dl>'
    if kind == "code":
        return f"<pre>{html.escape(block[1])}</pre>"
    raise ValueError(f"unknown report block {kind!r}; known: h, p, table, grid, img, svg, row, box, glossary, code")


def svg_files(blocks: list[tuple]) -> dict[str, str]:
    """The charts of ``("svg", ...)`` blocks (also inside rows) by file name: the Markdown report links them."""
    out = {}
    for block in blocks:
        if block[0] == "svg":
            out[block[1]] = block[2]
        elif block[0] == "row":
            out |= svg_files(block[1])
    return out


def render_html(blocks: list[tuple], images: dict[str, bytes], title: str, script: bool = False) -> str:
    """The self-contained page: every block and the inlined style; with ``script``, the inlined script too (chart
    tooltips, legend toggles, sortable tables; without it the page is static, as the calibration report is)."""
    body = "\n".join(html_block(block, images) for block in blocks)
    code = f"<script>{asset('report.js')}</script>\n" if script else ""
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1"><title>{html.escape(title)}</title>'
        f"<style>{asset('report.css')}</style></head><body>\n{body}\n"
        f"{code}</body></html>\n"
    )


__all__ = [
    "Cell",
    "anchor",
    "asset",
    "html_table",
    "inline_html",
    "markdown_table",
    "render_html",
    "render_markdown",
    "shade_style",
    "svg_files",
]
