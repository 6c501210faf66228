"""SPSS and Stata exports of the wide measures, and Parquet files of the tidy tables."""

from __future__ import annotations

import pandas as pd
import pyreadstat
import pytest

from alliance.study import StudyDataError
from alliance.study.formats import read_study, write_study
from alliance.study.formats.parquet import read_parquet, write_parquet
from alliance.study.formats.statistical import read_statistical, variable_names, write_spss, write_stata

from .builders import small_study


def test_variable_names_are_legal_and_labelled():
    names = variable_names(["wai_sr.total@prep", "meq30.total_pct@peak", "grid_hamd17.total@month12"])
    assert names == {"wai_sr.total@prep": "wai_sr_total_prep", "meq30.total_pct@peak": "meq30_total_pct_peak",
                     "grid_hamd17.total@month12": "grid_hamd17_total_month12"}


def test_long_names_are_cut_and_collisions_numbered_in_order():
    stem = "an_instrument_with_a_long_id"
    measures = [f"{stem}.subscale_a@post_session1", f"{stem}.subscale_b@post_session1", "9lives.x@y", "if"]
    names = variable_names(measures, max_length=32)
    assert names[measures[0]] == f"{stem}_sub"                   # cut to 32 characters
    assert names[measures[1]] == f"{stem}_s_2"                   # the same 32 characters: cut to 30, numbered
    assert names["9lives.x@y"] == "v9lives_x_y" and names["if"] == "if_"
    assert all(len(n) <= 32 for n in names.values())
    assert variable_names(measures, max_length=32) == names      # deterministic
    assert variable_names(measures, max_length=64)[measures[1]] == f"{stem}_subscale_b_post_session1"


@pytest.mark.parametrize(("writer", "reader", "suffix"), [
    (write_spss, pyreadstat.read_sav, ".sav"),
    (write_stata, pyreadstat.read_dta, ".dta"),
])
def test_files_read_back_with_pyreadstat_equal_the_wide_measures(tmp_path, writer, reader, suffix):
    study = small_study()
    path = tmp_path / f"measures{suffix}"
    writer(study, path)
    frame, meta = reader(str(path))
    wide = study.measures(wide=True)
    assert frame.columns[:2].tolist() == ["participant_id", "arm"]
    assert frame["participant_id"].tolist() == ["P01", "P02"] and frame["arm"].tolist() == ["immediate", "delayed"]
    labels = dict(zip(frame.columns, meta.column_labels, strict=True))
    assert labels["wai_sr_total_prep"] == "wai_sr.total@prep"
    assert labels["meq30_total_pct_peak"] == "meq30.total_pct@peak"
    values = frame.drop(columns=["participant_id", "arm"])
    values.columns = [labels[c] for c in values.columns]
    values.index = pd.Index(frame["participant_id"], dtype="string", name="participant_id")
    pd.testing.assert_frame_equal(values, wide)
    pd.testing.assert_frame_equal(read_statistical(path), wide)


def test_format_dispatch_writes_measures_file_into_a_directory(tmp_path):
    assert write_study(small_study(), tmp_path, "stata") == tmp_path / "measures.dta"
    assert (tmp_path / "measures.dta").exists()
    with pytest.raises(StudyDataError, match="is not a format"):
        write_study(small_study(), tmp_path, "xlsx")


def test_parquet_round_trip(tmp_path):
    study = small_study()
    write_parquet(study, tmp_path)
    again = read_parquet(tmp_path)
    pd.testing.assert_frame_equal(again.responses, study.responses)
    pd.testing.assert_frame_equal(again.participants, study.participants)
    pd.testing.assert_frame_equal(again.dosing_sessions, study.dosing_sessions)
    assert again.protocol == study.protocol
    pd.testing.assert_frame_equal(read_study(tmp_path, "parquet").responses, study.responses)


def test_parquet_is_validated_with_rows_from_1(tmp_path):
    study = small_study()
    study.responses.loc[4, "value"] = 9.0
    write_parquet(study, tmp_path)
    with pytest.raises(StudyDataError) as caught:
        read_parquet(tmp_path)
    (problem,) = caught.value.problems
    assert problem.file == str(tmp_path / "responses.parquet")
    assert (problem.row, problem.column, problem.value) == (5, "value", 9)
