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
