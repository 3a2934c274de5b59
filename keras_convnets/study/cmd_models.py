"""``python -m keras_convnets.study models``: every registered model's parameters and MACs at its
default input, beside the registered reference (paper or reference implementation) and the
difference in percent."""

from __future__ import annotations

import fnmatch
import sys
import time

HELP = "list registered models: params and MACs, ours against the registered references"
DESCRIPTION = (
    "Build every registered model (or one family's) at its default input and print its parameter "
    "count (of the reference's kind), its multiply-adds (conv + dense at batch 1), the registered "
    "reference values and the difference in percent."
)

COLUMNS = ("model", "family", "params", "ref_params", "params_kind", "params_diff_pct",
           "macs", "ref_macs", "macs_diff_pct", "default_input", "build_s", "params_source", "macs_source")


def add_arguments(parser) -> None:
    parser.add_argument("--family", metavar="NAME", help="only this family's models (see the family column)")
    parser.add_argument("--name", metavar="PATTERN", help="only models whose name matches this glob, e.g. 'resnet*'")
    parser.add_argument("--format", choices=("table", "csv", "markdown"), default="table",
                        help="table for people (default), csv for machines, markdown for README.md")


def _diff_pct(ours: int, ref: int | None) -> float | None:
    return None if not ref else 100.0 * (ours - ref) / ref


def rows(names: list[str]):
    """One record a model; builds them one at a time and frees each."""
    import keras

    from keras_convnets import registry
    from keras_convnets.flops import count_macs

    for name in names:
        spec = registry.get(name)
        start = time.perf_counter()
        with registry.weightless():  # counting needs no weight values; build_s is this build's
            model = registry.build(name)
            built = time.perf_counter() - start
            params = registry.param_count(model, spec.params_kind)
            macs = count_macs(model)
        yield {
            "model": name,
            "family": spec.family,
            "params": params,
            "ref_params": spec.ref_params,
            "params_kind": spec.params_kind,
            "params_diff_pct": _diff_pct(params, spec.ref_params),
            "macs": macs,
            "ref_macs": spec.ref_macs,
            "macs_diff_pct": _diff_pct(macs, spec.ref_macs),
            "default_input": f"{spec.default_size}x{spec.default_size}x{spec.channels}",
            "paper": f"{spec.paper} ({spec.year})",
            "build_s": round(built, 2),
            "params_source": spec.params_source,
            "macs_source": spec.macs_source,
        }
        del model
        keras.backend.clear_session()


def select(family: str | None, pattern: str | None) -> list[str]:
    from keras_convnets import registry
    from keras_convnets.study import StudyError

    names = registry.list_models(family)  # an unknown family raises ValueError naming the known ones
    if pattern:
        names = [n for n in names if fnmatch.fnmatchcase(n, pattern)]
        if not names:
            raise StudyError(f"no registered model{' of family ' + repr(family) if family else ''} "
                             f"matches {pattern!r}; `models` without --name lists them all")
    return names


def _fmt_int(v) -> str:
    return "" if v is None else f"{int(v):,}"


def _fmt_pct(v) -> str:
    return "" if v is None else f"{v:+.2f}%"


def format_table(records: list[dict]) -> str:
    headers = ("model", "family", "params", "reference", "kind", "diff", "MACs", "reference MACs", "diff", "input")
    body = [
        (r["model"], r["family"], _fmt_int(r["params"]), _fmt_int(r["ref_params"]), r["params_kind"],
         _fmt_pct(r["params_diff_pct"]), _fmt_int(r["macs"]), _fmt_int(r["ref_macs"]), _fmt_pct(r["macs_diff_pct"]),
         r["default_input"])
        for r in records
    ]
    widths = [max(len(h), *(len(row[i]) for row in body)) if body else len(h) for i, h in enumerate(headers)]
    numeric = {2, 3, 5, 6, 7, 8}

    def line(cells):
        return "  ".join(c.rjust(w) if i in numeric else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths)))

    return "\n".join([line(headers), line(["-" * w for w in widths]), *(line(row) for row in body)])


def format_markdown(records: list[dict]) -> str:
    """The README's architecture table (regenerate with `models --format markdown`)."""
    lines = ["| model | paper | params: ours / reference (kind) | MACs: ours / reference | input |",
             "| --- | --- | ---: | ---: | --- |"]
    for r in records:
        lines.append(
            f"| `{r['model']}` | {r['paper']} | {_fmt_int(r['params'])} / {_fmt_int(r['ref_params'])} "
            f"({r['params_kind']}, {_fmt_pct(r['params_diff_pct'])}) | {_fmt_int(r['macs'])} / "
            f"{_fmt_int(r['ref_macs'])} ({_fmt_pct(r['macs_diff_pct'])}) | {r['default_input']} |"
        )
    return "\n".join(lines)


def run(args) -> int:
    import csv

    names = select(args.family, args.name)
    if args.format == "csv":
        writer = csv.DictWriter(sys.stdout, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        for record in rows(names):
            record.pop("paper")
            writer.writerow({k: ("" if v is None else (f"{v:.4f}" if isinstance(v, float) and k.endswith("pct") else v))
                             for k, v in record.items()})
            sys.stdout.flush()
        return 0
    records = list(rows(names))
    print(format_markdown(records) if args.format == "markdown" else format_table(records))
    return 0
