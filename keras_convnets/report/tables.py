"""A sortable HTML table from a DataFrame (click a header to sort; the inline sorter in
:mod:`keras_convnets.report.html` reads each cell's ``data-v`` so numbers sort as numbers).

``sortable_table(df, columns=None, formats=None, table_id="trials") -> Markup``; every cell is
escaped by jinja2's autoescape.
"""

from __future__ import annotations

import math
from typing import Callable

from jinja2 import Environment
from markupsafe import Markup

__all__ = ["sortable_table", "format_value"]

_ENV = Environment(autoescape=True)
_TEMPLATE = _ENV.from_string(
    """<table class="sortable" id="{{ table_id }}">
<thead><tr>{% for c in columns %}<th title="click to sort">{{ c }}</th>{% endfor %}</tr></thead>
<tbody>
{% for row in rows %}<tr{% if row.css %} class="{{ row.css }}"{% endif %}>{% for cell in row.cells %}<td data-v="{{ cell.key }}">{{ cell.text }}</td>{% endfor %}</tr>
{% endfor %}</tbody>
</table>"""
)


def format_value(v, fmt: str | Callable | None = None) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    if callable(fmt):
        return fmt(v)
    if fmt:
        try:
            return format(v, fmt)
        except (TypeError, ValueError):
            return str(v)
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def sortable_table(df, columns: list[str] | None = None, formats: dict | None = None, table_id: str = "trials",
                   row_class: Callable | None = None) -> Markup:
    columns = [c for c in (columns or list(df.columns)) if c in df.columns]
    formats = formats or {}
    rows = []
    for _, r in df.iterrows():
        cells = []
        for c in columns:
            v = r[c]
            is_num = isinstance(v, (int, float)) and not isinstance(v, bool) and not (isinstance(v, float) and math.isnan(v))
            cells.append({"key": repr(float(v)) if is_num else format_value(v), "text": format_value(v, formats.get(c))})
        rows.append({"cells": cells, "css": row_class(r) if row_class else ""})
    return Markup(_TEMPLATE.render(columns=columns, rows=rows, table_id=table_id))
