"""Figure helpers for the HTML reports: seaborn on matplotlib's Agg backend, inlined as base64
PNG so a report is one self-contained file.

::

    fig, ax = new_figure()
    scatter_with_front(df, "macs", "test_accuracy", hue="method", ax=ax, logx=True,
                       front_cost="macs", xlabel="MACs", ylabel="test accuracy")
    html = figure_html(fig, alt="accuracy against MACs")   # closes the figure

``pareto_front(df, cost, value)`` returns the rows no other row beats (lower or equal cost and
higher value), sorted by cost; ``maximise_cost=True`` treats the first column as a benefit
(e.g. throughput).
"""

from __future__ import annotations

import base64
import io

from markupsafe import Markup, escape

__all__ = ["new_figure", "figure_html", "figure_data_uri", "pareto_front", "scatter_with_front",
           "METHOD_ORDER", "METHOD_PALETTE", "METHOD_MARKERS"]

# Consistent colours and markers per trial method across figures and reports.
METHOD_ORDER = ["base", "grid", "compound", "width", "depth", "resolution"]
METHOD_PALETTE = {"base": "#222222", "grid": "#9e9e9e", "compound": "#d62728", "width": "#1f77b4",
                  "depth": "#2ca02c", "resolution": "#ff7f0e"}
METHOD_MARKERS = {"base": "X", "grid": "o", "compound": "*", "width": "s", "depth": "^", "resolution": "D"}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def new_figure(width: float = 6.4, height: float = 4.2):
    import seaborn as sns

    plt = _pyplot()
    sns.set_theme(style="whitegrid", context="notebook")
    fig, ax = plt.subplots(figsize=(width, height), dpi=110)
    return fig, ax


def figure_data_uri(fig) -> str:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", bbox_inches="tight")
    _pyplot().close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def figure_html(fig, alt: str) -> Markup:
    """``<img>`` with the figure inlined; ``alt`` is escaped. Closes the figure."""
    return Markup(f'<img class="figure" alt="{escape(alt)}" src="{figure_data_uri(fig)}">')


def pareto_front(df, cost: str, value: str, *, maximise_cost: bool = False):
    """Rows of ``df`` on the Pareto front of (``cost`` low, ``value`` high); with
    ``maximise_cost`` the first column is a benefit (high is good). Sorted by ``cost``."""
    import pandas as pd

    d = df.dropna(subset=[cost, value])
    if d.empty:
        return d
    d = d.sort_values([cost, value], ascending=[not maximise_cost, False])
    keep, best = [], -float("inf")
    for idx, v in zip(d.index, d[value]):
        if v > best:
            keep.append(idx)
            best = v
    return pd.DataFrame(d.loc[keep]).sort_values(cost)


def scatter_with_front(df, x: str, y: str, *, hue: str = "method", ax=None, logx: bool = True,
                       front: bool = True, maximise_x: bool = False, connect: str | None = None,
                       xlabel: str | None = None, ylabel: str | None = None, title: str | None = None,
                       palette: dict | None = None, markers: dict | None = None, hue_order: list | None = None):
    """Scatter ``y`` against ``x`` coloured by ``hue``, optionally joining each hue's points in
    order of ``connect`` and drawing the Pareto front as a dashed step line."""
    import seaborn as sns

    palette = palette or METHOD_PALETTE
    markers = markers or METHOD_MARKERS
    d = df.dropna(subset=[x, y])
    levels = [h for h in (hue_order or METHOD_ORDER) if h in set(d[hue])] + sorted(set(d[hue]) - set(hue_order or METHOD_ORDER))
    pal = {h: palette.get(h, "#7f7f7f") for h in levels}
    mk = {h: markers.get(h, "o") for h in levels}
    if connect:
        for h in levels:
            part = d[d[hue] == h].sort_values(connect)
            if len(part) > 1 and h not in ("grid",):
                ax.plot(part[x], part[y], color=pal[h], alpha=0.6, linewidth=1.4, zorder=1)
    sns.scatterplot(data=d, x=x, y=y, hue=hue, hue_order=levels, palette=pal, style=hue, style_order=levels,
                    markers=mk, s=90, ax=ax, zorder=3, edgecolor="white", linewidth=0.6)
    if front and len(d) > 1:
        f = pareto_front(d, x, y, maximise_cost=maximise_x)
        if len(f) > 1:
            ax.step(f[x], f[y], where="post" if not maximise_x else "pre", color="#555555", linestyle="--",
                    linewidth=1.0, zorder=2, label="Pareto front")
    if logx:
        ax.set_xscale("log")
    ax.set_xlabel(xlabel or x)
    ax.set_ylabel(ylabel or y)
    if title:
        ax.set_title(title)
    ax.legend(loc="best", fontsize=8, frameon=True)
    return ax
