"""The results store: ``DIR/results.csv``, one row per finished trial, written atomically.

A row is the record of a trial that ended (``status`` ``ok`` or ``failed``); a killed study
loses at most the trial in flight, and ``--resume`` skips trial ids already present, so a resumed
study never duplicates a row. Reports read this file alone.
"""

from __future__ import annotations

import csv
import io
import os
import tempfile
from pathlib import Path
from typing import Any, Iterable

__all__ = ["ResultsStore", "CORE_COLUMNS"]

CORE_COLUMNS = (
    "trial_id", "method", "model", "width", "depth", "resolution", "params", "macs",
    "val_accuracy", "test_accuracy", "train_seconds", "images_per_second", "status",
)


def save_model_atomic(model, path: str | Path) -> None:
    """``model.save`` (``.keras``) via a temporary file and ``os.replace``: a killed process never
    leaves half a model where a finished trial's model is expected."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp.keras")
    model.save(tmp)
    os.replace(tmp, path)


def atomic_write_text(path: Path, text: str) -> None:
    """Write via a temporary file in the same folder and ``os.replace``: readers see the old file
    or the new one, never half of one, even if the process is killed mid-write."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


class ResultsStore:
    """``DIR/results.csv`` with the core columns first, then any extra ones in first-seen order."""

    FILENAME = "results.csv"

    def __init__(self, directory: str | os.PathLike):
        self.dir = Path(directory)
        self.path = self.dir / self.FILENAME

    def exists(self) -> bool:
        return self.path.exists()

    def rows(self) -> list[dict[str, str]]:
        if not self.path.exists():
            return []
        with open(self.path, newline="") as f:
            return list(csv.DictReader(f))

    def finished_ids(self) -> set[str]:
        return {r["trial_id"] for r in self.rows()}

    def append(self, row: dict[str, Any]) -> None:
        """Add one finished trial. Re-writes the whole (small) file atomically; a trial id that is
        already present is an error, so a resume can never duplicate a row."""
        if "trial_id" not in row:
            raise ValueError("a results row needs a trial_id")
        rows = self.rows()
        if any(r["trial_id"] == str(row["trial_id"]) for r in rows):
            raise ValueError(f"trial {row['trial_id']!r} is already in {self.path}")
        rows.append({k: "" if v is None else v for k, v in row.items()})
        self._write(rows)

    def _write(self, rows: Iterable[dict[str, Any]]) -> None:
        rows = list(rows)
        columns = list(CORE_COLUMNS)
        for r in rows:
            columns.extend(k for k in r if k not in columns)
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=columns, restval="", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        self.dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.path, buf.getvalue())

    def dataframe(self):
        import pandas as pd

        if not self.path.exists():
            return pd.DataFrame(columns=list(CORE_COLUMNS))
        return pd.read_csv(self.path)
