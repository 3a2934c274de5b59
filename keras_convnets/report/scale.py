"""The scaling-study report: ``DIR/index.html`` from ``DIR/results.csv`` and ``DIR/study.json``.

Figures: test accuracy against MACs (log axis) per method with the Pareto front, against
parameters, against measured inference throughput; the phi = 1 grid of (alpha, beta, gamma)
coloured by validation accuracy; measured MACs growth of the compound models against the
predicted (alpha * beta^2 * gamma^2)^phi; every trial's validation accuracy after each epoch
(learning curves). Then the verdict -- did compound scaling beat width-,
depth- and resolution-only scaling at equal MACs in this study (:func:`compare_at_equal_macs`)
-- and the sortable table of every trial.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from markupsafe import Markup

from keras_convnets.report import read_study
from keras_convnets.report.figures import (METHOD_MARKERS, METHOD_ORDER, METHOD_PALETTE, figure_html,
                                           new_figure, pareto_front, scatter_with_front)
from keras_convnets.report.html import ENV, Section, render_page
from keras_convnets.report.tables import sortable_table
from keras_convnets.study.results import atomic_write_text

__all__ = ["build_scale_report", "compare_at_equal_macs", "best_grid_row", "compound_series", "learning_curves"]

BASELINES = ("width", "depth", "resolution")
TABLE_COLUMNS = ["trial_id", "method", "phi", "alpha", "beta", "gamma", "width", "depth", "resolution", "params",
                 "macs", "macs_ratio", "target_macs", "macs_vs_target", "val_accuracy", "test_accuracy",
                 "train_seconds", "images_per_second", "memory_mb", "status", "error"]
FORMATS = {"params": ",.0f", "macs": ",.0f", "target_macs": ",.0f", "val_accuracy": ".4f", "test_accuracy": ".4f",
           "width": ".3f", "depth": ".3f", "resolution": ".0f", "phi": ".0f", "alpha": ".2f", "beta": ".2f",
           "gamma": ".2f", "macs_ratio": ".3f", "macs_vs_target": "+.2%", "train_seconds": ".1f",
           "images_per_second": ",.0f", "memory_mb": ",.0f"}


def _ok(df):
    d = df[df["status"].astype(str) == "ok"].copy()
    for c in ("val_accuracy", "test_accuracy", "macs", "params", "images_per_second", "phi", "width", "depth",
              "resolution", "alpha", "beta", "gamma", "test_examples"):
        if c in d:
            d[c] = d[c].astype(float)
    return d


def best_grid_row(df, meta: dict):
    """The grid point the study chose (study.json), else the best by validation accuracy."""
    ok = _ok(df)
    grid = ok[ok["method"] == "grid"]
    if grid.empty:
        return None
    chosen = (meta.get("best_grid") or {}).get("trial_id")
    if chosen and (grid["trial_id"] == chosen).any():
        return grid[grid["trial_id"] == chosen].iloc[0]
    return grid.loc[grid["val_accuracy"].idxmax()]


def compound_series(df, meta: dict):
    """Rows to plot, with a ``series`` column: the best grid point also appears as the compound
    model at phi = 1 (it is that model; the study does not train it twice)."""
    import pandas as pd

    ok = _ok(df)
    ok["series"] = ok["method"]
    best = best_grid_row(df, meta)
    if best is not None:
        dup = best.copy()
        dup["series"] = "compound"
        ok = pd.concat([ok, dup.to_frame().T], ignore_index=True)
        for c in ("val_accuracy", "test_accuracy", "macs", "params", "images_per_second", "phi"):
            ok[c] = ok[c].astype(float)
    return ok


def _se(p: float, n: float) -> float:
    return math.sqrt(max(p * (1 - p), 1e-12) / max(n, 1))


def compare_at_equal_macs(df, meta: dict) -> dict:
    """For every phi, the compound model against each single-dimension baseline matched to its
    MACs, on test accuracy (each trial's test split is evaluated once). Returns
    ``{"rows": [...], "wins": k, "total": n, "significant_wins": m, "verdict": str, "css": str}``."""
    ok = _ok(df)
    best = best_grid_row(df, meta)
    rows = []
    phis = sorted({int(p) for p in ok.loc[ok["method"].isin(BASELINES), "phi"].dropna()})
    for phi in phis:
        if phi == 1:
            comp = best
        else:
            c = ok[(ok["method"] == "compound") & (ok["phi"] == phi)]
            comp = c.iloc[0] if len(c) else None
        if comp is None:
            continue
        for method in BASELINES:
            b = ok[(ok["method"] == method) & (ok["phi"] == phi)]
            if b.empty:
                continue
            b = b.iloc[0]
            n1 = float(comp.get("test_examples", np.nan)) if "test_examples" in comp else np.nan
            n2 = float(b.get("test_examples", np.nan)) if "test_examples" in b else np.nan
            diff = float(comp["test_accuracy"]) - float(b["test_accuracy"])
            se = math.sqrt(_se(float(comp["test_accuracy"]), n1) ** 2 + _se(float(b["test_accuracy"]), n2) ** 2) \
                if not (math.isnan(n1) or math.isnan(n2)) else float("nan")
            rows.append({
                "phi": phi, "baseline": method, "compound_trial": comp["trial_id"], "baseline_trial": b["trial_id"],
                "compound_macs": float(comp["macs"]), "baseline_macs": float(b["macs"]),
                "macs_gap": float(b["macs"]) / float(comp["macs"]) - 1.0,
                "compound_test": float(comp["test_accuracy"]), "baseline_test": float(b["test_accuracy"]),
                "compound_val": float(comp["val_accuracy"]), "baseline_val": float(b["val_accuracy"]),
                "difference": diff, "se": se, "win": diff > 0, "significant": diff > 2 * se if se == se else False,
            })
    total = len(rows)
    wins = sum(r["win"] for r in rows)
    sig = sum(r["significant"] for r in rows)
    losses_sig = sum(1 for r in rows if r["se"] == r["se"] and r["difference"] < -2 * r["se"])
    paper = ("The paper (Tan & Le 2019, Sec. 5.1, Fig. 8 and Table 3) found compound scaling better than "
             "single-dimension scaling at every matched cost.")
    if total == 0:
        verdict, css = ("Not decided: this study has no compound model with a finished single-dimension baseline at "
                        "the same MACs (not run yet, failed, or baselines switched off)."), "mixed"
    else:
        noise = (f" {sig} of the {wins} wins exceed two standard errors of the accuracy difference"
                 f"{' and ' + str(losses_sig) + ' losses do' if losses_sig else ''}; the rest are within the noise "
                 "of the test set.") if wins else (
                 f" {losses_sig} of the {total} losses exceed two standard errors of the accuracy difference.")
        if wins == total:
            verdict, css = (f"Yes: in this study compound scaling beat the single-dimension baselines at equal MACs "
                            f"in all {total} comparisons (test accuracy).{noise} {paper}"), "yes"
        elif wins == 0:
            verdict, css = (f"No: in this study compound scaling did not beat the single-dimension baselines at equal "
                            f"MACs: it won 0 of {total} comparisons (test accuracy).{noise} {paper}"), "no"
        else:
            verdict, css = (f"Partly: in this study compound scaling beat the single-dimension baselines at equal "
                            f"MACs in {wins} of {total} comparisons (test accuracy).{noise} {paper}"), "mixed"
    return {"rows": rows, "wins": wins, "total": total, "significant_wins": sig, "verdict": verdict, "css": css}


# ----------------------------------------------------------------------------- figures
def _fig_accuracy(series, x, xlabel, title, *, maximise_x=False):
    fig, ax = new_figure()
    scatter_with_front(series, x, "test_accuracy", hue="series", ax=ax, logx=True, connect="phi",
                       maximise_x=maximise_x, xlabel=xlabel, ylabel="test accuracy", title=title)
    return fig


def _fig_grid(df, meta):
    ok = _ok(df)
    grid = ok[ok["method"] == "grid"]
    if grid.empty:
        return None
    fig, ax = new_figure()
    sc = ax.scatter(grid["alpha"], grid["beta"], c=grid["val_accuracy"], cmap="viridis", s=220,
                    edgecolors="black", linewidths=0.6, zorder=3)
    cb = fig.colorbar(sc, ax=ax)
    cb.set_label("validation accuracy")
    for _, r in grid.iterrows():
        ax.annotate(f"γ={r['gamma']:.2f}\n{r['val_accuracy']:.3f}", (r["alpha"], r["beta"]), xytext=(8, 6),
                    textcoords="offset points", fontsize=8)
    best = best_grid_row(df, meta)
    if best is not None:
        ax.scatter([best["alpha"]], [best["beta"]], marker="*", s=520, facecolors="none", edgecolors="#d62728",
                   linewidths=1.6, zorder=4, label="chosen (best validation accuracy)")
    ax.scatter([1.2], [1.1], marker="o", s=420, facecolors="none", edgecolors="#555", linestyle="--",
               linewidths=1.0, zorder=2, label="paper: α=1.2, β=1.1, γ=1.15")
    settings = meta.get("settings", {}).get("scaling", {})
    target = settings.get("target", 2.0)
    ax.set_xlabel("α (depth)")
    ax.set_ylabel("β (width)")
    ax.set_title(f"Grid search at φ = 1 (α·β²·γ² ≈ {target})")
    pad = 0.05
    ax.set_xlim(min(grid["alpha"].min(), 1.2) - pad, max(grid["alpha"].max(), 1.2) + 3 * pad)
    ax.set_ylim(min(grid["beta"].min(), 1.1) - pad, max(grid["beta"].max(), 1.1) + 2 * pad)
    ax.legend(loc="best", fontsize=8)
    return fig


def _fig_macs_growth(series, df, meta):
    comp = series[series["series"] == "compound"].sort_values("phi")
    base = _ok(df)
    base = base[base["method"] == "base"]
    base_macs = float(base["macs"].iloc[0]) if len(base) else float(meta.get("base_macs") or "nan")
    if comp.empty or not base_macs == base_macs:
        return None
    a, b, g = (float(comp.iloc[0][k]) for k in ("alpha", "beta", "gamma"))
    product = a * b * b * g * g
    phis = np.array([0.0, *comp["phi"].astype(float)])
    measured = np.array([1.0, *(comp["macs"].astype(float) / base_macs)])
    grid_phi = np.linspace(0, max(phis.max(), 1.0), 50)
    fig, ax = new_figure()
    ax.plot(grid_phi, product ** grid_phi, color="#555", linestyle="--",
            label=f"predicted (α·β²·γ²)^φ = {product:.3f}^φ")
    target = meta.get("settings", {}).get("scaling", {}).get("target")
    if target:
        ax.plot(grid_phi, float(target) ** grid_phi, color="#aaa", linestyle=":", label=f"target {target}^φ")
    ax.plot(phis, measured, color="#d62728", marker="*", markersize=12, label="measured (rounded widths, depths, sides)")
    for p, m in zip(phis, measured):
        ax.annotate(f"{m:.2f}×", (p, m), xytext=(6, -12), textcoords="offset points", fontsize=8)
    ax.set_yscale("log")
    from matplotlib.ticker import FuncFormatter

    for axis in (ax.yaxis,):
        axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}×"))
        axis.set_minor_formatter(FuncFormatter(lambda v, _: f"{v:g}×" if round(v, 6) in (1.5, 2, 3, 5, 6, 8) else ""))
    ax.set_xlabel("φ")
    ax.set_ylabel("MACs / base MACs")
    ax.set_title(f"Compound scaling α={a:.2f}, β={b:.2f}, γ={g:.2f}: MACs growth")
    ax.legend(loc="best", fontsize=8)
    return fig


def learning_curves(df):
    """``{trial_id: (method, [validation accuracy after each epoch])}`` of the finished trials that
    recorded one (``val_accuracy_by_epoch``; studies run before it was recorded have none)."""
    if "val_accuracy_by_epoch" not in df.columns:
        return {}
    curves = {}
    for _, r in _ok(df).iterrows():
        text = r["val_accuracy_by_epoch"]
        if isinstance(text, str) and text.strip():
            curves[str(r["trial_id"])] = (str(r["method"]), [float(v) for v in text.split()])
    return curves


def _fig_learning_curves(df):
    curves = learning_curves(df)
    if not curves:
        return None
    fig, ax = new_figure()
    seen = set()
    for trial_id, (method, accs) in curves.items():
        ax.plot(range(1, len(accs) + 1), accs, marker=METHOD_MARKERS.get(method, "o"), markersize=5,
                color=METHOD_PALETTE.get(method, "#777"), alpha=0.8, label=None if method in seen else method)
        seen.add(method)
        ax.annotate(trial_id, (len(accs), accs[-1]), xytext=(4, 0), textcoords="offset points", fontsize=6)
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation accuracy")
    ax.set_title("Learning curves (validation accuracy after each epoch)")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.legend(loc="best", fontsize=8)
    return fig


# ----------------------------------------------------------------------------- page
_COMPARISON = ENV.from_string(
    """<div class="wrap"><table class="sortable" id="comparison">
<thead><tr><th>φ</th><th>baseline</th><th>compound MACs</th><th>baseline MACs (gap)</th><th>compound test</th>
<th>baseline test</th><th>difference ± SE</th><th>compound val</th><th>baseline val</th><th>beats?</th></tr></thead>
<tbody>{% for r in rows %}<tr>
<td data-v="{{ r.phi }}">{{ r.phi }}</td><td data-v="{{ r.baseline }}">{{ r.baseline }}-only</td>
<td data-v="{{ r.compound_macs }}">{{ '{:,.0f}'.format(r.compound_macs) }}</td>
<td data-v="{{ r.baseline_macs }}">{{ '{:,.0f}'.format(r.baseline_macs) }} ({{ '{:+.1%}'.format(r.macs_gap) }})</td>
<td data-v="{{ r.compound_test }}">{{ '%.4f' % r.compound_test }}</td><td data-v="{{ r.baseline_test }}">{{ '%.4f' % r.baseline_test }}</td>
<td data-v="{{ r.difference }}">{{ '%+.4f' % r.difference }}{% if r.se == r.se %} ± {{ '%.4f' % r.se }}{% endif %}</td>
<td data-v="{{ r.compound_val }}">{{ '%.4f' % r.compound_val }}</td><td data-v="{{ r.baseline_val }}">{{ '%.4f' % r.baseline_val }}</td>
<td data-v="{{ 1 if r.win else 0 }}">{{ 'yes' if r.win else 'no' }}{% if r.significant %} (&gt; 2 SE){% endif %}</td>
</tr>{% endfor %}</tbody></table></div>
<p class="{{ 'verdict ' ~ css }}">{{ verdict }}</p>"""
)


def _facts(df, meta):
    s = meta.get("settings", {})
    model, data, scal, train = (s.get(k, {}) for k in ("model", "data", "scaling", "training"))
    ds = meta.get("dataset", {})
    env = meta.get("environment", {})
    sizes = ds.get("sizes", {})
    ok = int((df["status"].astype(str) == "ok").sum())
    failed = int(len(df) - ok)
    versions = ", ".join(f"{k} {v}" for k, v in (env.get("versions") or {}).items() if v)
    facts = [
        ("base model", f"{model.get('base', '?')} at {model.get('resolution', '?')} px "
                       f"(resolutions rounded to multiples of {model.get('resolution_multiple', '?')})"),
        ("dataset", f"{ds.get('name', data.get('dataset', '?'))}: train {sizes.get('train', '?')}, validation "
                    f"{sizes.get('val', '?')} (held out from train), test {sizes.get('test', '?')}; "
                    f"augmentation {'on' if ds.get('augment') else 'off'}"),
        ("training (every trial)", f"{train.get('epochs')} epochs, batch {train.get('batch_size')}, "
                                   f"{train.get('optimizer')} lr {train.get('learning_rate')} ({train.get('schedule')}), "
                                   f"weight decay {train.get('weight_decay')}, seed {train.get('seed')}, "
                                   f"{train.get('precision')}{', XLA' if train.get('jit') else ''}"),
        ("scaling", f"grid of {scal.get('grid_size')} points (step {scal.get('grid_step')}, α·β²·γ² within "
                    f"{scal.get('tolerance')} of {scal.get('target')})"
                    + (f", fixed coefficients {scal.get('coefficients')}" if scal.get('coefficients') else "")
                    + f"; φ = 1 … {scal.get('phi_max')}; baselines: {', '.join(scal.get('baselines', [])) or 'none'}"),
        ("trials", f"{ok} finished, {failed} failed; status: {meta.get('status', 'unknown')}"),
        ("environment", f"{env.get('cpu', '?')} ({env.get('sched_affinity') or env.get('cpu_count')} cores"
                        f"{', ' + ', '.join(env['accelerators']) if env.get('accelerators') else ''}); "
                        f"Keras backend {env.get('keras_backend', '?')}; {versions}"),
        ("started / updated", f"{meta.get('started_at', '?')} / {meta.get('updated_at', '?')}"),
    ]
    if meta.get("command") is not None:
        facts.append(("command", "python -m keras_convnets.study " + " ".join(meta["command"])))
    return facts


def build_scale_report(directory) -> Path:
    """Write ``DIR/index.html`` (atomically) and return its path."""
    d = Path(directory)
    df, meta = read_study(d)
    series = compound_series(df, meta)
    comparison = compare_at_equal_macs(df, meta)
    figs = []
    if not series.empty:
        figs.append(figure_html(_fig_accuracy(series, "macs", "MACs (multiply-adds, log scale)",
                                              "Test accuracy against MACs"), "test accuracy against MACs"))
        figs.append(figure_html(_fig_accuracy(series, "params", "parameters (log scale)",
                                              "Test accuracy against parameters"), "test accuracy against parameters"))
        if series["images_per_second"].notna().any():
            figs.append(figure_html(_fig_accuracy(series, "images_per_second",
                                                  "measured inference throughput (images/s, log scale)",
                                                  "Test accuracy against throughput", maximise_x=True),
                                    "test accuracy against throughput"))
    grid_fig = _fig_grid(df, meta)
    growth = _fig_macs_growth(series, df, meta)
    front = pareto_front(series.drop_duplicates("trial_id"), "macs", "test_accuracy") if not series.empty else None
    front_ids = ", ".join(front["trial_id"].astype(str)) if front is not None and len(front) else "none"

    table_df = df.copy()
    best = best_grid_row(df, meta)
    best_id = best["trial_id"] if best is not None else None
    order = {m: i for i, m in enumerate(METHOD_ORDER)}
    table_df["_order"] = table_df["method"].map(lambda m: order.get(m, 99))
    table_df = table_df.sort_values(["_order", "phi", "trial_id"]).drop(columns="_order")
    table = sortable_table(table_df, TABLE_COLUMNS, FORMATS, table_id="trials",
                           row_class=lambda r: "failed" if str(r["status"]) != "ok" else ("best" if r["trial_id"] == best_id else ""))

    sections = [
        Section("Did compound scaling win?", Markup(_COMPARISON.render(**comparison)),
                "Each compound model against the width-, depth- and resolution-only models scaled to the same MACs "
                "(the closest the rounding of widths, depths and sides allows; the gap is shown). Test accuracy "
                "decides (each trial's test split is evaluated once, after training); the grid point was chosen "
                "on validation accuracy only. SE: standard error of the difference of two accuracies."),
        Section("Accuracy against cost", Markup('<div class="figs">' + "".join(figs) + "</div>"),
                "Every finished trial; lines join each method's models in order of φ, the dashed step line is the "
                f"Pareto front over all trials (on MACs: {front_ids}). Throughput is measured inference speed on "
                "this machine at the study's batch size (noisy on a shared CPU)."),
    ]
    if grid_fig is not None or growth is not None:
        parts = [f for f in (grid_fig, growth) if f is not None]
        alts = (["grid of (α, β, γ) at φ = 1"] if grid_fig is not None else []) + (
            ["measured against predicted MACs growth"] if growth is not None else [])
        sections.append(Section(
            "Compound coefficients", Markup('<div class="figs">' + "".join(figure_html(f, a) for f, a in zip(parts, alts)) + "</div>"),
            "Left: the grid search at φ = 1 (EfficientNet Sec. 3.3, step 1); γ is written beside each point. Right: "
            "measured MACs of the compound models over the base against the (α·β²·γ²)^φ the rule predicts; they "
            "differ because channels round to multiples of 8, repeats round up and sides round to the study's "
            "multiple."))
    curves_fig = _fig_learning_curves(df)
    if curves_fig is not None:
        sections.append(Section(
            "Learning curves", Markup('<div class="figs">') + figure_html(curves_fig, "validation accuracy per epoch")
            + Markup("</div>"),
            "Validation accuracy after each epoch of every finished trial. A curve still rising at the last "
            "epoch is a model the study's recipe under-trains; larger models often are, which biases a "
            "comparison at a fixed number of epochs against them."))
    sections.append(Section("All trials", Markup('<div class="wrap">') + table + Markup("</div>"),
                            "Click a column header to sort. The chosen grid point is bold, failed trials red (with "
                            "the reason)."))
    title = f"Scaling study: {meta.get('name', d.name)}"
    html = render_page(title, sections, subtitle=meta.get("description", ""), facts=_facts(df, meta),
                       footer="Built by keras_convnets from results.csv and study.json alone "
                              "(python -m keras_convnets.study report DIR rebuilds it). MACs = multiply-adds of conv "
                              "and dense layers at batch 1 (the papers' FLOPs).")
    path = d / "index.html"
    atomic_write_text(path, html)
    return path
