"""Date shifting for de-identified exports."""

from __future__ import annotations

import pytest

from alliance.study import StudyDataError
from alliance.study.deidentify import shift_dates, shift_iso_text

from ..web.conftest import make_study


def test_shift_iso_text_keeps_the_form_of_the_date():
    assert shift_iso_text("2024-02-27", 3) == "2024-03-01"  # across the end of a leap-year February
    assert shift_iso_text("2024-03-01T14:30:00+01:00", -1) == "2024-02-29T14:30:00+01:00"
    assert shift_iso_text("20240301", 1) == "2024-03-02"


def test_shift_dates_moves_every_date_of_a_participant_by_their_offset():
    study = make_study(3)
    offsets = {"P001": 10, "P002": -5, "P003": 100}
    shifted = shift_dates(study, offsets)
    assert "name" not in shifted.participants.columns
    for frame, column, original in ((shifted.responses, "administered_at", study.responses),
                                    (shifted.dosing_sessions, "date", study.dosing_sessions)):
        for pid, days in offsets.items():
            new = frame.loc[frame.participant_id == pid, column].tolist()
            old = original.loc[original.participant_id == pid, column].tolist()
            assert new == [shift_iso_text(v, days) for v in old]
    shifted.validate()


def test_every_participant_needs_an_offset():
    with pytest.raises(StudyDataError, match="has no date shift"):
        shift_dates(make_study(2), {"P001": 3})


def test_the_safety_tables_dates_are_shifted_too():
    from alliance.protocol import default_protocol
    from alliance.simulate import simulate_trial

    study = simulate_trial(default_protocol(), n=4, seed=3)
    study.concomitant_medications = __import__("pandas").DataFrame(
        [{"participant_id": "P001", "name": "Sertraline", "dose": "50 mg", "start": "2017-01-01", "stop": "2017-06-01"}],
        dtype="string")
    offsets = {"P001": 10, "P002": -5, "P003": 100, "P004": 7}
    shifted = shift_dates(study, offsets)
    for attribute, columns in (("adverse_events", ("onset", "resolved_on")), ("vital_signs", ("measured_at",)),
                               ("concomitant_medications", ("start", "stop"))):
        before, after = getattr(study, attribute), getattr(shifted, attribute)
        assert before is not None and len(before)
        for column in columns:
            for pid, days in offsets.items():
                old = before.loc[before.participant_id == pid, column].dropna().tolist()
                assert after.loc[after.participant_id == pid, column].dropna().tolist() == [
                    shift_iso_text(v, days) for v in old]
    shifted.validate()
