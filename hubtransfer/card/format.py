"""How the card writes numbers, durations, shares and table cells."""

from __future__ import annotations

from typing import Any


def pretty_task(task: str) -> str:
    return task.replace("-", " ").title()


def fmt_metric(value: float | None) -> str:
    return f"{value:.4f}" if value is not None else "–"


def fmt_number(value: float | None) -> str:
    return f"{value:,.1f}" if value is not None else "not recorded"


def fmt_percent(share: float) -> str:
    # Head-only runs train a tiny share; two decimals would print "0.00%".
    pct = 100 * share
    return f"{pct:.2f}%" if pct >= 0.01 or pct == 0 else f"{pct:.2g}%"


def fmt_duration(seconds: float | None) -> str:
    if seconds is None:
        return "not recorded"
    return f"{seconds:,.1f} s" if seconds < 120 else f"{seconds:,.1f} s ({seconds / 60:.1f} min)"


def fmt_join(items: list | None) -> str:
    return ", ".join(str(x) for x in items) if items else "none"


def fmt_value(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "none"
    return "none" if value is None else str(value)


def table_cell(text: str) -> str:
    """Text safe inside a markdown table cell: a '|' would split the cell, a newline the row."""
    return text.replace("|", "\\|").replace("\n", " ")
