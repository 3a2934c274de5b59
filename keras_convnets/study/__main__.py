"""Entry point: ``python -m keras_convnets.study SUBCOMMAND ...``."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from keras_convnets.study import StudyError

# The order subcommands are listed in `--help`; any other cmd_* module is appended.
ORDER = ("scale", "search", "report", "export", "models", "data")


def _commands() -> dict:
    import keras_convnets.study as pkg

    found = {m.name[4:]: m.name for m in pkgutil.iter_modules(pkg.__path__) if m.name.startswith("cmd_")}
    names = [n for n in ORDER if n in found] + sorted(set(found) - set(ORDER))
    return {n: importlib.import_module(f"{pkg.__name__}.{found[n]}") for n in names}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m keras_convnets.study",
        description="Scaling studies, architecture searches, reports and export for keras_convnets.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, mod in _commands().items():
        p = sub.add_parser(name, help=mod.HELP, description=getattr(mod, "DESCRIPTION", mod.HELP))
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args._argv = list(sys.argv[1:] if argv is None else argv)  # recorded in study.json
    try:
        return int(args._run(args) or 0)
    except StudyError as e:
        _stop_trial_server()
        print(f"error: {e}", file=sys.stderr)
        return 2
    except ValueError as e:  # the builders' and scaling's argument errors
        _stop_trial_server()
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        _stop_trial_server()
        print("interrupted: finished trials are kept; rerun with --resume to continue", file=sys.stderr)
        return 130


def _stop_trial_server() -> None:
    """A study that ends in an error may have started its trials' fork server (isolation)."""
    isolation = sys.modules.get("keras_convnets.study.isolation")
    if isolation is not None:
        isolation.stop_server()


if __name__ == "__main__":
    sys.exit(main())
