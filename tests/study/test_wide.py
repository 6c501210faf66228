"""Wide CSV (one row per participant × timepoint, item columns) ↔ tidy responses."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings

from alliance.protocol import default_protocol
from alliance.study import StudyDataError, save, sort_responses
from alliance.study.formats import read_study, write_study
from alliance.study.formats.wide import read_wide_csv, study_from_wide, wide_from_responses, write_wide_csv

from .builders import administration, responses, small_study
from .strategies import studies


def _same_responses(a, b):
    ids = a.participant_ids
    pd.testing.assert_frame_equal(sort_responses(a.responses, a.protocol, ids),
                                  sort_responses(b.responses, b.protocol, ids))


def test_wide_layout():
    study = small_study()
    wide = wide_from_responses(study.responses, study.protocol, study.participant_ids)
    assert list(wide.columns[:4]) == ["participant_id", "timepoint", "grid_hamd17_rater", "grid_hamd17_administered_at"]
    assert "wai_sr_12" in wide.columns and "wai_sr_rater" not in wide.columns   # no WAI-SR rater in the data
    assert len(wide) == 8                                  # participant × timepoint pairs with answers
    prep = wide[(wide["participant_id"] == "P02") & (wide["timepoint"] == "prep")].iloc[0]
    assert prep["wai_sr_1"] == 3 and np.isnan(prep["wai_sr_12"]) and np.isnan(prep["meq30_1"])
    assert wide["timepoint"].tolist()[:6] == ["baseline", "prep", "session1", "session2", "week1", "baseline"]


def test_wide_csv_round_trip(tmp_path):
    study = small_study()
    save(study, tmp_path)
    write_wide_csv(study, tmp_path / "wide.csv")
    again = read_wide_csv(tmp_path / "wide.csv", tmp_path / "participants.csv")
    _same_responses(study, again)
    pd.testing.assert_frame_equal(again.participants, study.participants)


def test_format_dispatch_round_trip(tmp_path):
    study = small_study()
    write_study(study, tmp_path / "w", "wide")
    _same_responses(study, read_study(tmp_path / "w", "wide"))


def test_two_raters_in_one_administration_cannot_be_wide():
    data = responses(administration("P01", "baseline", "grid_hamd17", 1, rater="R1"))
    data.loc[3, "rater"] = "R2"
    with pytest.raises(StudyDataError, match="differs within the grid_hamd17 administration"):
        wide_from_responses(data, default_protocol())


def _import(tmp_path, text: str):
    (tmp_path / "wide.csv").write_text(text, encoding="utf-8")
    (tmp_path / "participants.csv").write_text("participant_id,arm\nP01,immediate\n", encoding="utf-8")
    with pytest.raises(StudyDataError) as caught:
        read_wide_csv(tmp_path / "wide.csv", tmp_path / "participants.csv")
    return caught.value


def test_errors_name_the_wide_row_and_item_column(tmp_path):
    error = _import(tmp_path, "participant_id,timepoint,wai_sr_1,wai_sr_2,grid_hamd17_1\n"
                              "P01,prep,4,5,\n"
                              "P01,prep,3,,\n"
                              "P01,baseline,,,7\n"
                              "P02,wk1,2,,\n")
    got = {(p.row, p.column): p for p in error.problems}
    assert "first on row 2" in got[(3, "wai_sr_1")].reason                          # duplicate answer
    assert got[(4, "grid_hamd17_1")].reason == "is out of range"
    assert got[(4, "grid_hamd17_1")].allowed.startswith("whole numbers 0–4")
    assert got[(5, "timepoint")].value == "wk1"
    assert "is not listed in" in got[(5, "participant_id")].reason
    assert all(p.file == str(tmp_path / "wide.csv") for p in error.problems if p.column != "arm")
    assert "wide.csv, row 4, column 'grid_hamd17_1': value '7' is out of range" in str(error)


def test_rows_after_blank_lines_are_named_by_their_line(tmp_path):
    error = _import(tmp_path, "participant_id,timepoint,wai_sr_1,grid_hamd17_1\n"
                              "P01,prep,4,\n"
                              "\n\n"
                              "P01,baseline,,7\n")
    (problem,) = [p for p in error.problems if p.column == "grid_hamd17_1"]
    assert problem.row == 5 and problem.reason == "is out of range"


def test_unknown_columns_are_header_errors(tmp_path):
    error = _import(tmp_path, "participant_id,timepoint,wai_sr_13,notes\nP01,prep,4,hello\n")
    got = {p.column: p for p in error.problems}
    assert got["wai_sr_13"].row == 1 and got["wai_sr_13"].allowed == "wai_sr_1 … wai_sr_12"
    assert got["notes"].reason == "is not a column of the wide format"


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(study=studies())
def test_random_valid_responses_survive_a_wide_csv_round_trip(study):
    wide = wide_from_responses(study.responses, study.protocol, study.participant_ids)
    _same_responses(study, study_from_wide(wide, study.participants, study.protocol))
    with tempfile.TemporaryDirectory() as directory:
        save(study, directory)
        write_wide_csv(study, Path(directory) / "wide.csv")
        again = read_wide_csv(Path(directory) / "wide.csv", Path(directory) / "participants.csv")
    _same_responses(study, again)
