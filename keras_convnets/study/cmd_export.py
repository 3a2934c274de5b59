"""``study export``: a registered model, freshly built, or a study's trained trial, as a TF
SavedModel (default) or a .keras file, reloaded and checked before success is reported."""

from __future__ import annotations

from pathlib import Path

from keras_convnets.study import StudyError

HELP = "export a registered model or a trained trial as a SavedModel (or .keras), reloaded and checked"
DESCRIPTION = ("Export MODEL (a registered name, built fresh with --input-size/--classes) or DIR --trial ID (the "
               "trained model of a finished trial of a study) to --out PATH: a TF SavedModel with a serving "
               "signature (default) or a .keras file. The export is reloaded and its outputs compared with the "
               "model's before success is reported; an existing PATH is refused without --force.")


def add_arguments(p) -> None:
    p.add_argument("source", metavar="MODEL|DIR", help="a registered model name, or a study folder (with --trial)")
    p.add_argument("--trial", metavar="ID", help="trial id in DIR/results.csv")
    p.add_argument("--out", required=True, metavar="PATH")
    p.add_argument("--format", choices=("savedmodel", "keras"), default="savedmodel")
    p.add_argument("--force", action="store_true", help="replace an existing PATH")
    p.add_argument("--input-size", type=int, metavar="N", help="MODEL: input side (default: the model's)")
    p.add_argument("--classes", type=int, metavar="N", help="MODEL: classes (default: the model's)")


def _trial_model(directory: Path, trial: str):
    import keras

    from keras_convnets.study.results import ResultsStore

    rows = {r["trial_id"]: r for r in ResultsStore(directory).rows()}
    if trial not in rows:
        known = ", ".join(sorted(rows)) or "none"
        raise StudyError(f"no trial {trial!r} in {str(directory / 'results.csv')!r} (trials: {known})")
    row = rows[trial]
    if row.get("status") != "ok" or not row.get("weights"):
        raise StudyError(f"trial {trial!r} did not finish ({row.get('status')}: {row.get('error') or 'no weights'}); nothing to export")
    weights = directory / row["weights"]
    if not weights.exists():
        raise StudyError(f"trial {trial!r}'s trained model {str(weights)!r} is missing")
    import keras_convnets.layers  # noqa: F401 - registers the custom layers before loading

    return keras.saving.load_model(weights, safe_mode=True)


def run(args) -> int:
    from keras_convnets.export import export_model

    src = Path(args.source)
    if src.is_dir():
        if not (src / "results.csv").exists():
            raise StudyError(f"{str(src)!r} is a folder but not a study (no results.csv)")
        if not args.trial:
            raise StudyError(f"exporting from the study {str(src)!r} needs --trial ID")
        if args.input_size or args.classes:
            raise StudyError("--input-size/--classes apply to MODEL exports; a trial keeps its trained shape")
        model = _trial_model(src, args.trial)
        what = f"trial {args.trial} of {src}"
    else:
        if args.trial:
            raise StudyError(f"--trial needs a study folder; {str(src)!r} is not a folder")
        from keras_convnets import registry

        spec = registry.get(args.source)  # unknown name -> ValueError naming the closest
        side = args.input_size or spec.default_size
        kwargs = {"input_shape": (side, side, spec.channels)}
        if args.classes is not None:
            kwargs["classes"] = args.classes
        model = spec.builder(**kwargs)
        what = f"{spec.name} ({side}x{side}x{spec.channels}, {kwargs.get('classes', spec.default_classes)} classes)"
    info = export_model(model, args.out, args.format, force=args.force)
    print(f"exported {what} -> {info['path']} ({info['format']}); reloaded and checked: outputs match "
          f"(max abs diff {info['max_abs_diff']:.2e})")
    return 0
