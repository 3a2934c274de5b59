"""The study CLI: ``python -m keras_convnets.study {scale,report,export,models,search,...}``.

Each subcommand is a module ``keras_convnets.study.cmd_<name>`` with ``HELP`` (one line),
``add_arguments(parser)`` and ``run(args) -> int``; heavy imports stay inside ``run`` so that
``--help`` is instant. Errors a user can cause raise :class:`StudyError` (or ValueError from the
builders); the CLI turns them into one clear message and exit status 2, never a traceback.
"""


class StudyError(Exception):
    """A problem the user can fix (bad flag, malformed study file, missing dataset...)."""
