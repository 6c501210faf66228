"""Issue 12's case in the web app: a "pre-dose" WAI-SR submitted after the first dose.

Before: the prep WAI-SR and the baseline GRID-HAMD submitted on 2026-12-01, three weeks after
dosing session 1 (2026-11-10), showed green "done", moved the planned date of the visit to
2026-12-01, and closed the missed alerts as "resolved by itself". Now the timepoint is a
deviation with its reason, the planned date stays, and the alert stays open.
"""

from __future__ import annotations

from datetime import date

import pytest

from alliance.study import Study
from alliance.web.capture import models as m
from alliance.web.capture.storage import import_study
from alliance.web.capture.timelines import participant_timeline
from alliance.web.monitor.alerting import refresh_alerts
from alliance.web.monitor.models import Alert

from .conftest import make_study

TODAY = date(2026, 12, 5)


def one_participant(with_prep: bool) -> Study:
    study = make_study(n_participants=2)
    participants = study.participants[study.participants["participant_id"] == "P001"].copy()
    participants["arm"] = "immediate"
    participants["enrolled_on"] = "2026-10-01"
    responses = study.responses[(study.responses["participant_id"] == "P001")
                                & study.responses["timepoint"].isin(["baseline", "prep"] if with_prep else ["baseline"])]
    responses = responses.assign(administered_at="2026-12-01")
    dosing = study.dosing_sessions[(study.dosing_sessions["participant_id"] == "P001")
                                   & (study.dosing_sessions["session"] == 1)].assign(date="2026-11-10")
    return Study(study.protocol, participants.reset_index(drop=True), responses.reset_index(drop=True),
                 dosing.reset_index(drop=True))


@pytest.mark.django_db
def test_a_prep_score_after_the_first_dose_is_a_deviation_not_done_and_its_alert_stays_open():
    import_study(one_participant(with_prep=False), "late", "test")
    study = m.Study.objects.get(name="late")
    refresh_alerts(study, TODAY)
    late = Alert.objects.get(participant__participant_id="P001", rule_type="missed_assessment", timepoint="prep")
    participant = m.Participant.objects.select_related("arm", "study").get(study=study, participant_id="P001")
    planned_before = {r["timepoint"]: r["planned"] for r in participant_timeline(participant, TODAY)["rows"]}

    import_study(one_participant(with_prep=True), "late", "test")
    refresh_alerts(study, TODAY)
    timeline = participant_timeline(participant, TODAY)
    rows = {r["timepoint"]: r for r in timeline["rows"]}
    assert rows["prep"]["status"] == "deviation" and rows["baseline"]["status"] == "deviation"
    assert any("after Dosing session 1 on 2026-11-10 (after dosing)" in reason for reason in rows["prep"]["deviations"])
    assert {r["timepoint"]: r["planned"] for r in timeline["rows"]} == planned_before
    assert rows["prep"]["planned"] == date(2026, 11, 9)  # the day before the session that happened
    late.refresh_from_db()
    assert late.resolved_at is None  # not "resolved by itself"
    assert {(d.timepoint, d.kind) for d in timeline["deviations"]} >= {("prep", "after_dosing"),
                                                                        ("baseline", "after_dosing")}
