"""The monitor's pages read a study with a fixed number of SQL queries, whatever its number of participants.

Issue 14: the study dashboard of a 1,000-participant study issued 2,014 queries (two per
participant). Here two studies of the same protocol, of 5 and of 40 participants — with scores,
dosing sessions, stored alerts (open and acknowledged) and alerts not stored yet (a participant
enrolled since the last refresh whose forms are overdue) — must
give each page (study dashboard, participant dashboard, alert list) the same number of queries,
at most :data:`MAX_QUERIES`, for an investigator (every participant) and for a facilitator (their
own). Timings are not tested here: they are the benchmark's (``benchmarks/bench_dashboard.py``).
"""

from __future__ import annotations

import copy
from datetime import timedelta

import pandas as pd
import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from alliance.protocol import parse_protocol
from alliance.study import Study
from alliance.web.accounts.members import set_membership
from alliance.web.audit.log import AuditLog
from alliance.web.capture import models as m
from alliance.web.capture import recording
from alliance.web.capture.storage import import_study
from alliance.web.monitor.alerting import acknowledge, study_timelines, time_alerts_now
from alliance.web.monitor.models import Alert

from .conftest import make_study

pytestmark = pytest.mark.django_db

MAX_QUERIES = 30
SIZES = (5, 40)


def cohort(n_participants: int) -> Study:
    """:func:`tests.web.conftest.make_study`'s six participants, repeated to ``n_participants``
    (participant ``P0k`` has the forms, dosing sessions and enrolment of the six's ``k mod 6``)."""
    base = make_study(6)
    source = [f"P{k % 6 + 1:03d}" for k in range(n_participants)]
    ids = [f"P{k + 1:03d}" for k in range(n_participants)]
    participants = (base.participants.set_index("participant_id").loc[source].reset_index()
                    .assign(participant_id=ids, name=[f"Person {k}" for k in range(n_participants)]))

    def copied(table: pd.DataFrame) -> pd.DataFrame:
        return pd.concat([table[table["participant_id"] == old].assign(participant_id=new)
                          for old, new in zip(source, ids, strict=True)], ignore_index=True)

    # The records are of 2024: old enough to be historical, which raises no alert; this test needs alerts.
    raw = copy.deepcopy(base.protocol.to_dict())
    raw["alerts"]["historical_after_days"] = None
    study = Study(parse_protocol(raw), participants, copied(base.responses), copied(base.dosing_sessions))
    study.validate()
    return study


@pytest.fixture
def studies():
    """``small`` (5 participants and P900) and ``large`` (40 and P900), each with an investigator and a
    facilitator (F1)."""
    users = {role: get_user_model().objects.create_user(role, password="not used here 1")
             for role in ("investigator", "facilitator")}
    out = {}
    for name, n in zip(("small", "large"), SIZES, strict=True):
        import_study(cohort(n), name, actor="test:setup")   # raises and stores the alerts
        study = m.Study.objects.get(name=name)
        log = AuditLog(actor="test:setup", study=study)
        set_membership(users["investigator"], study, "investigator", log)
        set_membership(users["facilitator"], study, "facilitator", log, facilitator_id="F1")
        # Some alerts acknowledged (the closed ones show who did it) ...
        for alert in Alert.objects.filter(study=study).order_by("pk")[:3]:
            acknowledge(alert, users["investigator"], "called the participant")
        # ... and some not stored yet: a participant of F1 enrolled 40 days ago, who has given no form
        # (the scheduled refresh has not run since, so their overdue assessments are computed on the fly).
        recording.enrol(study, participant_id="P900", arm=study.arms.get(code="immediate"),
                        enrolled_on=timezone.localdate() - timedelta(days=40),
                        facilitators=[study.facilitators.get(facilitator_id="F1")], log=log)
        log.write()
        assert m.DosingSession.objects.filter(participant__study=study).exists()
        assert m.Participant.objects.filter(study=study).count() == n + 1
        out[name] = study
    return users, out


def queries(client, url: str) -> int:
    client.get(url)  # caches (the parsed protocol, templates, timelines) do not count
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    return len(captured.captured_queries)


@pytest.mark.parametrize("role", ["investigator", "facilitator"])
@pytest.mark.parametrize("page", ["monitor:study", "monitor:participant", "monitor:alerts"])
def test_queries_per_page_do_not_grow_with_the_participants(studies, client, role, page):
    users, stored = studies
    client.force_login(users[role])
    counts = {}
    for name in stored:
        kwargs = {"study": name}
        if page == "monitor:participant":
            kwargs["participant"] = "P003"   # a participant of F1 in both studies
        counts[name] = queries(client, reverse(page, kwargs=kwargs))
    assert counts["small"] == counts["large"], counts
    assert counts["large"] <= MAX_QUERIES, counts


def test_the_studies_have_what_the_pages_show(studies):
    """The bound is tested on pages with something on them: open and closed alerts, pending ones."""
    _, stored = studies
    for study in stored.values():
        assert Alert.objects.filter(study=study, acknowledged_at__isnull=False).count() == 3
        assert Alert.objects.filter(study=study, acknowledged_at=None, resolved_at=None).exists()
        participants = m.Participant.objects.filter(study=study).select_related("arm", "study")
        today = timezone.localdate()
        assert time_alerts_now(study, list(participants), study_timelines(participants, today), today).new
