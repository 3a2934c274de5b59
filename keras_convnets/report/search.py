"""The search report: ``DIR/index.html`` from ``DIR/results.csv`` and ``DIR/study.json`` alone.

Every trial's validation accuracy against MACs and against parameters, with the Pareto front
(fewer MACs or parameters and higher accuracy); the search's best-so-far curve over trials; for
the nasnet space the best trial's normal and reduction cells drawn as inline SVG; the sortable
table of trials. Built with the shared report pieces (:mod:`keras_convnets.report.figures`,
``tables``, ``html``): one self-contained file, every text from a study file or a results row
escaped.
"""

from __future__ import annotations

import json
from pathlib import Path

from markupsafe import Markup, escape

__all__ = ["build_report", "build_search_report", "write_search_report", "cell_svg", "best_so_far"]


# ----------------------------------------------------------------------------- data
def _numeric(df, columns):
    import pandas as pd

    for c in columns:
        if c in df.columns:
            df[c] = pd.to_numeric(df[c], errors="coerce")
    return df


def best_so_far(df, score: str = "score"):
    """Trials in the order the search proposed them (trial ids count up), with the best score up
    to each one; trials without a score (failed) keep the previous best."""
    d = df.copy()
    d["trial_number"] = [int(t) if str(t).isdigit() else i for i, t in enumerate(d["trial_id"])]
    d = d.sort_values("trial_number")
    d["best_so_far"] = d[score].cummax()
    return d


# ----------------------------------------------------------------------------- cell diagrams
def _depths(blocks: list, names: list[str]) -> dict[str, int]:
    depth = {"h1": 0, "h0": 0}
    for name, pairs in zip(names, blocks):
        depth[name] = 1 + max(depth.get(state, 0) for _, state in pairs)
    return depth


def _place(box: tuple, placed: list, step: float = 17.0) -> tuple:
    """Move a label box (x0, y0, x1, y1) up or down, alternately, until it overlaps no label
    already placed (a few lines of collision avoidance keep op names readable)."""
    x0, y0, x1, y1 = box
    for k in range(12):
        dy = step * ((k + 1) // 2) * (1 if k % 2 else -1)
        cand = (x0, y0 + dy, x1, y1 + dy)
        if all(cand[2] < p[0] or cand[0] > p[2] or cand[3] < p[1] or cand[1] > p[3] for p in placed):
            return cand
    return box


def cell_svg(blocks: list, concat: list[str], title: str) -> Markup:
    """One cell as an inline SVG DAG: the inputs h1 and h0 on the left, each block n2..n6 a node
    in the column after its deepest input, each edge labelled with its op (the label sits just
    before the block it feeds), and the output node joined by the concatenated states (Zoph et al.
    2018, Fig. 4 draws cells the same way)."""
    names = [f"n{i + 2}" for i in range(len(blocks))]
    depth = _depths(blocks, names)
    out_col = max(depth.values()) + 1
    columns: dict[int, list[str]] = {}
    for name in ["h1", "h0"] + names:
        columns.setdefault(depth[name], []).append(name)
    columns[out_col] = ["output"]
    col_w, row_h, pad = 190, 84, 30
    rows = max(len(v) for v in columns.values())
    width, height = col_w * out_col + 2 * pad + 60, row_h * rows + 2 * pad + 40
    pos = {}
    for col, members in columns.items():
        top = pad + 30 + (rows - len(members)) * row_h / 2
        for i, name in enumerate(members):
            pos[name] = (pad + 30 + col * col_w, top + i * row_h + row_h / 2)
    lines, nodes, labels = [], [], []
    placed: list[tuple] = [(x - 28, y - 17, x + 30, y + 17) for x, y in pos.values()]  # labels avoid nodes

    def edge(a: str, b: str, label: str = ""):
        (x1, y1), (x2, y2) = pos[a], pos[b]
        lines.append(f'<line x1="{x1 + 24:.1f}" y1="{y1:.1f}" x2="{x2 - 26:.1f}" y2="{y2:.1f}" stroke="#999" '
                     'stroke-width="1.3" marker-end="url(#arrow)"/>')
        if label:
            mx = x2 - col_w * 0.45
            my = y1 + (y2 - y1) * (mx - x1) / (x2 - x1)
            w = 7 * len(label) + 8
            bx0, by0, bx1, by1 = _place((mx - w / 2, my - 8, mx + w / 2, my + 8), placed)
            placed.append((bx0, by0, bx1, by1))
            labels.append(f'<rect x="{bx0:.1f}" y="{by0:.1f}" width="{w}" height="16" rx="3" fill="#fff7e0" '
                          f'stroke="#e0c070"/><text x="{(bx0 + bx1) / 2:.1f}" y="{by0 + 12:.1f}" font-size="11" '
                          f'text-anchor="middle" font-family="monospace">{escape(label)}</text>')

    for name, pairs in zip(names, blocks):
        for op, state in pairs:
            edge(state, name, op)
    for state in concat:
        edge(state, "output")
    for name, (x, y) in pos.items():
        fill = "#e8f0fb" if name in ("h0", "h1") else ("#eaf6ea" if name == "output" else "#ffffff")
        text = "concat" if name == "output" else name
        w = 56 if name == "output" else 48
        nodes.append(f'<rect x="{x - w / 2:.1f}" y="{y - 15:.1f}" width="{w}" height="30" rx="6" fill="{fill}" '
                     f'stroke="#446"/><text x="{x:.1f}" y="{y + 4:.1f}" font-size="12" '
                     f'text-anchor="middle">{escape(text)}</text>')
    head = (f'<svg xmlns="http://www.w3.org/2000/svg" class="cell" width="{width:.0f}" height="{height:.0f}" '
            f'viewBox="0 0 {width:.0f} {height:.0f}" role="img" aria-label="{escape(title)}">'
            '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="6" markerHeight="6" '
            'orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#666"/></marker></defs>'
            f'<text x="{pad}" y="{pad}" font-size="14" font-weight="600">{escape(title)}</text>')
    # Edges first, then nodes over them, then labels over both.
    return Markup(head + "".join(lines) + "".join(nodes) + "".join(labels) + "</svg>")


def _best_cells(df, meta: dict):
    if "cells" not in df.columns:
        return None
    ok = df[(df["status"] == "ok") & df["score"].notna() & df["cells"].notna()]
    if ok.empty:
        return None
    best = ok.loc[ok["score"].idxmax()]
    try:
        return best, json.loads(best["cells"])
    except (TypeError, ValueError):
        return None


# ----------------------------------------------------------------------------- figures
def _fig_cost(df, x: str, xlabel: str, hue: str, budget: float | None):
    from keras_convnets.report.figures import figure_html, new_figure, scatter_with_front

    fig, ax = new_figure()
    scatter_with_front(df, x, "val_accuracy", hue=hue, ax=ax, logx=True, xlabel=xlabel,
                       ylabel="validation accuracy", title=f"validation accuracy against {xlabel}")
    if budget:
        ax.axvline(budget, color="#d62728", linestyle=":", linewidth=1.2, label="MACs budget")
        ax.legend(loc="best", fontsize=8)
    return figure_html(fig, alt=f"validation accuracy against {xlabel}, with the Pareto front")


def _fig_progress(curve, objective: str):
    from keras_convnets.report.figures import figure_html, new_figure

    fig, ax = new_figure()
    ax.scatter(curve["trial_number"], curve["score"], s=22, color="#7f7f7f", label="trial", zorder=2)
    ax.step(curve["trial_number"], curve["best_so_far"], where="post", color="#d62728", linewidth=1.8,
            label="best so far", zorder=3)
    ax.set_xlabel("trial (in the order the search proposed it)")
    ax.set_ylabel(objective)
    ax.set_title(f"search progress: best {objective} so far")
    ax.legend(loc="lower right", fontsize=8)
    return figure_html(fig, alt="best score so far over the trials")


# ----------------------------------------------------------------------------- page
TABLE_COLUMNS = ["trial_id", "status", "model", "width", "depth", "resolution", "alpha", "beta", "gamma",
                 "optimizer", "learning_rate", "dropout", "params", "macs", "val_accuracy", "test_accuracy",
                 "score", "train_seconds", "images_per_second", "worker", "genotype", "error"]


def build_report(directory) -> Path:
    """(Re)build ``DIR/index.html`` for the search in ``DIR``."""
    from keras_convnets.report import read_study
    from keras_convnets.report.html import Section, render_page
    from keras_convnets.report.tables import sortable_table
    from keras_convnets.study.results import atomic_write_text

    d = Path(directory)
    df, meta = read_study(d)
    df = _numeric(df, ["params", "macs", "val_accuracy", "test_accuracy", "score", "train_seconds",
                       "images_per_second", "width", "depth", "resolution", "alpha", "beta", "gamma"])
    settings = meta.get("settings", {})
    space = settings.get("space") or (df["space"].iloc[0] if "space" in df and len(df) else "?")
    objective = settings.get("objective", "val_accuracy")
    ok = df[df["status"] == "ok"]
    over = df[df["status"] == "over_budget"]
    failed = df[df["status"] == "failed"]
    hue = "model" if space == "family" else "method"

    facts = [("space", space), ("algorithm", settings.get("algorithm", ", ".join(sorted(set(df.get("method", [])))))),
             ("objective", objective),
             ("trials", f"{len(df)} ({len(ok)} trained, {len(over)} over the MACs budget, {len(failed)} failed)"),
             ("dataset", f"{settings.get('dataset', '?')}, {settings.get('epochs', '?')} epoch(s) per trial")]
    if settings.get("algorithm") == "evolution":
        facts.append(("evolution", f"population {settings.get('population')}, sample {settings.get('sample')} "
                                   "(Real et al. 2018: aging evolution, oldest member removed)"))
    if settings.get("max_macs"):
        facts.append(("MACs budget", f"{int(settings['max_macs']):,}"))
    if settings.get("target_macs"):
        facts.append(("MnasNet reward", f"ACC x (MACs / {int(settings['target_macs']):,})^{settings.get('macs_weight')}"))
    if meta.get("distributed"):
        workers = sorted(set(df["worker"].dropna())) if "worker" in df else []
        facts.append(("distributed", f"chief + workers {', '.join(map(str, workers))}"))

    sections = []
    scored = df[df["score"].notna()] if "score" in df else df.iloc[0:0]
    if not scored.empty:
        best = scored.loc[scored["score"].idxmax()]
        facts.append(("best trial", f"{best['trial_id']}: {objective} {best['score']:.4f}, "
                                    f"{int(best['macs']):,} MACs, {int(best['params']):,} params"))
    if len(ok):
        budget = float(settings["max_macs"]) if settings.get("max_macs") else None
        figs = Markup('<div class="figs">{}{}</div>').format(
            _fig_cost(ok, "macs", "MACs", hue, budget), _fig_cost(ok, "params", "parameters", hue, None))
        sections.append(Section("Accuracy against cost", figs,
                                "Every trained trial; the dashed step line is the Pareto front (no other trial has "
                                "fewer MACs or parameters and a higher validation accuracy). MACs are multiply-adds "
                                "of the conv and dense layers at batch 1 (FLOPs = 2 x MACs)."))
    if not scored.empty:
        sections.append(Section("Search progress", _fig_progress(best_so_far(scored), objective),
                                f"Each trial's {objective} and the best so far, in trial order."))
    cells = _best_cells(df, meta) if space == "nasnet" else None
    if cells is not None:
        best, genotype = cells
        if "reduction" in genotype:
            drawings = [cell_svg(genotype["normal"], genotype["normal_concat"], "normal cell"),
                        cell_svg(genotype["reduction"], genotype["reduction_concat"], "reduction cell")]
        else:  # one shared cell (PNAS), strided at the reductions
            drawings = [cell_svg(genotype["normal"], genotype["normal_concat"], "cell (normal; strided at reductions)")]
        body = Markup('<div class="figs">{}</div><p class="note">Genotype: <code>{}</code></p>').format(
            Markup("").join(drawings), best.get("genotype", ""))
        sections.append(Section(f"Best cells (trial {best['trial_id']})", body,
                                "h0 is the previous cell's output, h1 the output two cells back; each block adds "
                                "two ops of earlier states; the unused blocks are concatenated."))
    table = df.copy()
    row_class = lambda r: "failed" if r.get("status") == "failed" else ""  # noqa: E731
    sections.append(Section("Trials", Markup('<div class="wrap">{}</div>').format(
        sortable_table(table, [c for c in TABLE_COLUMNS if c in table.columns],
                       formats={"params": ",.0f", "macs": ",.0f", "val_accuracy": ".4f", "test_accuracy": ".4f",
                                "score": ".4f", "train_seconds": ".1f", "images_per_second": ",.0f"},
                       row_class=row_class)), "Click a column header to sort."))
    page = render_page(f"Search: {settings.get('name', d.name)}", sections,
                       subtitle=str(settings.get("description") or ""), facts=facts,
                       footer=f"Built from {d.name}/results.csv by keras_convnets.report.search.")
    path = d / "index.html"
    atomic_write_text(path, page)
    return path


build_search_report = write_search_report = build_report

