"""The study folder rules (never overwritten silently) and the progress line, without training."""

from __future__ import annotations

import json

import pytest

from keras_convnets.study import StudyError
from keras_convnets.study.scale import Progress, prepare_out_dir

SETTINGS = {"name": "s", "description": "d", "training": {"epochs": 2}}


def test_new_and_empty_folders_are_used(tmp_path):
    assert prepare_out_dir(tmp_path / "new", SETTINGS, resume=False, overwrite=False) is None
    assert (tmp_path / "new").is_dir()
    assert prepare_out_dir(tmp_path / "new", SETTINGS, resume=False, overwrite=False) is None  # still empty


def test_existing_study_needs_resume_or_overwrite(tmp_path):
    (tmp_path / "study.json").write_text(json.dumps({"settings": SETTINGS, "started_at": "t0"}))
    (tmp_path / "results.csv").write_text("trial_id\nbase\n")
    (tmp_path / "trials").mkdir()
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(StudyError, match="already exists.*--resume.*--overwrite"):
        prepare_out_dir(tmp_path, SETTINGS, resume=False, overwrite=False)
    with pytest.raises(StudyError, match="contradict"):
        prepare_out_dir(tmp_path, SETTINGS, resume=True, overwrite=True)
    assert prepare_out_dir(tmp_path, SETTINGS, resume=True, overwrite=False)["started_at"] == "t0"
    # a cosmetic change (the description) may resume; a real one may not
    assert prepare_out_dir(tmp_path, {**SETTINGS, "description": "new"}, resume=True, overwrite=False)
    # where the trials run (each in its own process or not) does not change their numbers
    assert prepare_out_dir(tmp_path, {**SETTINGS, "training": {"epochs": 2, "isolate": False}}, resume=True,
                           overwrite=False)
    with pytest.raises(StudyError, match="training.epochs: 2 -> 3"):
        prepare_out_dir(tmp_path, {**SETTINGS, "training": {"epochs": 3}}, resume=True, overwrite=False)
    # dry run: nothing removed
    prepare_out_dir(tmp_path, SETTINGS, resume=False, overwrite=True, dry_run=True)
    assert (tmp_path / "results.csv").exists()
    prepare_out_dir(tmp_path, SETTINGS, resume=False, overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]  # only this tool's files go


def test_resume_needs_a_study(tmp_path):
    (tmp_path / "x").write_text("")
    with pytest.raises(StudyError, match="not a scale study"):
        prepare_out_dir(tmp_path, SETTINGS, resume=True, overwrite=False)


def test_progress_lines():
    lines = []
    p = Progress(3, 0, lines.append)
    p.skip("base")
    t = p.begin("grid-a1.20-b1.10-g1.15", "width 1.1")
    p.end(t, "val 0.5")
    p.begin("width-phi1", "w")
    assert lines[0] == "[trial 1/3] base: already in results.csv, skipped (--resume)"
    assert lines[1].startswith("[trial 2/3] grid-a1.20-b1.10-g1.15 (width 1.1) - elapsed")
    assert "ETA ~" in lines[3] and lines[3].startswith("[trial 3/3]")
