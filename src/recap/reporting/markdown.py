"""Markdown and self-contained HTML rendering of report tables and figures.

Cells are plain strings in which ``**text**`` marks bold (a significant drop, as the bold arrows
of jigsaw-RFT table 1); :func:`html_table` turns that into ``<b>``. The HTML page embeds its PNGs
as base64 so the single file can be mailed or attached to an issue.
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Sequence
from pathlib import Path

UP, DOWN, SAME = "↑", "↓", "="
_BOLD = re.compile(r"\*\*(.+?)\*\*")
_CODE = re.compile(r"`([^`]+)`")


def inline_html(text: str) -> str:
    """Escaped text with the two inline marks the report uses: ``**bold**`` and `` `code` ``."""
    return _CODE.sub(r"<code>\1</code>", _BOLD.sub(r"<b>\1</b>", html.escape(str(text))))


def format_value(value: float | None, scale: float = 100.0, digits: int = 1) -> str:
    """``value * scale`` with ``digits`` decimals, or an em dash when missing."""
    return "—" if value is None else f"{value * scale:.{digits}f}"


def format_delta(
    value: float | None, base: float | None, scale: float = 100.0, digits: int = 1,
    bold: bool = False,
) -> str:
    """A cell ``"value (↑delta)"`` / ``"value (↓delta)"`` relative to ``base``, as in jigsaw-RFT
    table 1; ``bold`` wraps the arrow and delta in ``**`` (a significant drop)."""
    text = format_value(value, scale, digits)
    if value is None or base is None:
        return text
    delta = round((value - base) * scale, digits)
    arrow = UP if delta > 0 else DOWN if delta < 0 else SAME
    change = f"{arrow}{abs(delta):.{digits}f}"
    return f"{text} ({'**' + change + '**' if bold else change})"


def md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A GitHub-flavoured markdown table (pipes in cells escaped)."""
    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"

    sep = "| " + " | ".join("---" for _ in header) + " |"
    return "\n".join([line(header), sep, *(line(r) for r in rows)])


def html_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """The same table as HTML (cells through :func:`inline_html`)."""
    def cell(tag: str, text: str) -> str:
        return f"<{tag}>{inline_html(text)}</{tag}>"

    head = "<tr>" + "".join(cell("th", h) for h in header) + "</tr>"
    body = "".join("<tr>" + "".join(cell("td", c) for c in r) + "</tr>" for r in rows)
    return f"<table>{head}{body}</table>"


def png_data_uri(path: Path) -> str:
    """``data:image/png;base64,...`` of a PNG file, for a self-contained HTML page."""
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


_CSS = (
    "body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}"
    "table{border-collapse:collapse;margin:1em 0;font-size:14px}"
    "th,td{border:1px solid #ccc;padding:4px 8px;text-align:right}"
    "th:first-child,td:first-child,th:nth-child(2),td:nth-child(2){text-align:left}"
    "img{max-width:100%;margin:0.5em 0}pre{background:#f6f6f6;padding:0.5em}"
)


def html_page(title: str, blocks: Sequence[tuple[str, str | Path]]) -> str:
    """A self-contained HTML page from ``(kind, content)`` blocks.

    Kinds: ``"h2"`` / ``"p"`` (text with ``**bold**`` and `` `code` `` marks), ``"pre"`` (text),
    ``"html"`` (trusted markup, e.g. from :func:`html_table`), ``"img"`` (a PNG path, embedded).
    """
    parts = [f"<h1>{html.escape(title)}</h1>"]
    for kind, content in blocks:
        if kind == "img":
            alt = html.escape(Path(content).stem)
            parts.append(f'<img alt="{alt}" src="{png_data_uri(Path(content))}">')
        elif kind in ("h2", "p"):
            parts.append(f"<{kind}>{inline_html(str(content))}</{kind}>")
        elif kind == "pre":
            parts.append(f"<pre>{html.escape(str(content))}</pre>")
        elif kind == "html":
            parts.append(str(content))
        else:
            raise ValueError(f"unknown block kind {kind!r}; known: h2, p, pre, html, img")
    return (
        f'<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{_CSS}</style></head><body>{''.join(parts)}</body></html>\n"
    )
