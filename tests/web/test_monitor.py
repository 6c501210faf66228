"""The monitor app: alerts raised by forms and time, acknowledged with an audit event; dashboards; analysis."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from typer.testing import CliRunner

from alliance import instruments as bank
from alliance.cli import app
from alliance.study import Study
from alliance.web.audit.log import AuditLog
from alliance.web.audit.models import AuditEvent
from alliance.web.capture import models as m
from alliance.web.capture import recording, signals
from alliance.web.monitor import receivers
from alliance.web.monitor.alerting import raise_alerts, refresh_alerts
from alliance.web.monitor.dashboards import completeness, deidentify_dates, mean_ci
from alliance.web.monitor.models import Alert, AnalysisRun

from .webapp import OTHER, OWN, STUDY, client_for

pytestmark = pytest.mark.django_db

NEW = "P100"  # enrolled by the tests below, facilitated by F1 (the `facilitator` account)


def enrol_new(study, days_ago: int) -> m.Participant:
    log = AuditLog(actor="test:setup", study=study)
    participant = recording.enrol(study, participant_id=NEW, arm=study.arms.get(code="immediate"),
                                  enrolled_on=timezone.localdate() - timedelta(days=days_ago),
                                  facilitators=[study.facilitators.get(facilitator_id="F1")], log=log)
    log.write()
    return participant


def submit(participant, timepoint: str, instrument: str, value: float) -> m.Administration:
    """Submit a form with every item answered ``value``, as the capture views do (the signal is sent)."""
    log = AuditLog(actor="test:form", study=participant.study)
    definition = bank.get(instrument)
    administration = recording.open_administration(participant, participant.study.timepoints.get(code=timepoint),
                                                   instrument, log)
    recording.submit(administration, definition, {item: value for item in definition.item_ids}, log)
    log.write()
    return administration


@pytest.fixture
def low_alliance(web_study, accounts):
    """P100, enrolled 10 days ago, rates WAI-SR 1 on every item (total 12) at the final preparation."""
    participant = enrol_new(web_study, days_ago=10)
    submit(participant, "prep", "wai_sr", 1)
    return participant


# -- raising -------------------------------------------------------------------------------------

def test_a_low_alliance_form_raises_one_alert_per_rule_with_its_audit_event(low_alliance):
    # Two rules hold for a total of 12: below the sample's 25th percentile and below the cut-off of 36.
    assert sorted(Alert.objects.filter(participant=low_alliance).values_list("rule", flat=True)) == [
        "low_alliance", "low_alliance_cutoff"]
    alert = Alert.objects.get(participant=low_alliance, rule="low_alliance")
    # The sample at prep: the six imported participants and P100 (n = 7 ≥ min_n 5); 12 is the
    # lowest possible WAI-SR total, below any 25th percentile of these scores.
    # Session 1 is planned 21 days after enrolment (immediate arm): today + 11 days.
    due = (timezone.localdate() + timedelta(days=11)).isoformat()
    assert (alert.rule, alert.timepoint, alert.severity, alert.value) == ("low_alliance", "prep", "warning", 12.0)
    assert alert.reason.startswith("WAI-SR total 12 at the final preparation session is below the sample's "
                                   "25th percentile (")
    assert alert.reason.endswith(f", n = 7); session 1 is due on {due}")
    event = AuditEvent.objects.get(model="monitor.alert", object_id=str(alert.pk))
    assert (event.action, event.actor, event.new["rule"], event.new["participant"]) == (
        "create", "system:alerts", "low_alliance", NEW)
    # Raising again (another form, a refresh) never duplicates it.
    administration = m.Administration.objects.get(participant=low_alliance, timepoint__code="prep")
    answers = dict(signals.administration_submitted.send(sender=m.Administration, administration=administration))
    assert answers[receivers.alerts_on_submission] == []
    refresh_alerts(low_alliance.study)
    assert Alert.objects.filter(participant=low_alliance, rule="low_alliance").count() == 1


def test_a_failing_receiver_rolls_the_submitted_form_back(web_study, accounts):
    """The signal is sent inside the form's transaction: a receiver's error undoes the whole write."""
    participant = enrol_new(web_study, days_ago=10)
    before = AuditEvent.objects.count()

    def broken(sender, administration, **kwargs):
        raise RuntimeError("the monitor is down")

    signals.administration_submitted.connect(broken, weak=False)
    try:
        with pytest.raises(RuntimeError, match="the monitor is down"), transaction.atomic():
            submit(participant, "prep", "wai_sr", 1)
    finally:
        signals.administration_submitted.disconnect(broken)
    assert not m.Administration.objects.filter(participant=participant).exists()
    assert not Alert.objects.filter(participant=participant).exists()
    assert AuditEvent.objects.count() == before


def test_a_dosing_session_that_took_place_silences_the_low_alliance_rule(web_study, accounts):
    participant = enrol_new(web_study, days_ago=10)
    log = AuditLog(actor="test:setup", study=web_study)
    recording.record_dosing(participant, session=1, day=timezone.localdate(), compound="psilocybin", amount=20,
                            unit="mg/70kg", log=log)
    log.write()
    submit(participant, "prep", "wai_sr", 1)
    assert not Alert.objects.filter(participant=participant, rule="low_alliance").exists()


def test_an_endorsed_suicide_item_raises_an_urgent_alert_with_the_crisis_text(web_study, accounts):
    participant = enrol_new(web_study, days_ago=10)
    submit(participant, "baseline", "grid_hamd17", 1)     # item 3 (suicide) = 1
    (alert,) = Alert.objects.filter(participant=participant, rule="suicidality")
    assert alert.severity == "urgent" and alert.timepoint == "baseline"
    assert alert.reason == "GRID-HAMD-17 item 3 answered 1 at the baseline: Suicide item endorsed (GRID-HAMD item 3 >= 1)"
    assert "emergency" in alert.action


def test_overdue_then_missed_then_resolved(web_study, accounts, client):
    # Enrolled 20 days ago: baseline's window (days 0-14) closed 6 days ago, nothing submitted: overdue.
    participant = enrol_new(web_study, days_ago=20)
    client_for(client, accounts, "investigator")
    url = reverse("monitor:participant", kwargs={"study": STUDY, "participant": NEW})
    page = client.get(url)
    assert page.status_code == 200
    # The page shows the overdue assessment at once, but stores nothing: the scheduled refresh does.
    (shown,) = [a for a in page.context["open_alerts"] if a.rule == "overdue_assessment"]
    assert shown.pending and shown.pk is None and shown.timepoint == "baseline"
    assert "not stored yet" in page.content.decode()
    assert not Alert.objects.filter(participant=participant).exists()
    refresh_alerts(web_study)
    overdue = Alert.objects.get(participant=participant, rule="overdue_assessment", timepoint="baseline")
    assert overdue.reason == shown.reason
    assert overdue.reason.startswith("GRID-HAMD-17, C-SSRS Screener at the baseline is overdue:")
    assert overdue.reason.endswith("nothing submitted 6 days after the window closed")
    (stored,) = [a for a in client.get(url).context["open_alerts"] if a.rule == "overdue_assessment"]
    assert stored.pk == overdue.pk and not stored.pending
    # Ten days later (16 days late > 14) it counts as missed: a missed alert, the overdue one resolved.
    raise_alerts(participant, timezone.localdate() + timedelta(days=10))
    overdue.refresh_from_db()
    assert overdue.resolved_at is not None and not overdue.is_open
    assert Alert.objects.get(participant=participant, rule="missed_assessment", timepoint="baseline").is_open
    assert AuditEvent.objects.filter(model="monitor.alert", object_id=str(overdue.pk), action="change",
                                       new__has_key="resolved_at").exists()


# -- acknowledging ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("role", "status"), [
    ("admin", 302), ("investigator", 302), ("facilitator", 302),   # facilitator: F1, P100's facilitator
    ("facilitator2", 404), ("monitor", 403), ("outsider", 403), (None, 302)])
def test_who_may_acknowledge(low_alliance, accounts, client, role, status):
    alert = Alert.objects.get(participant=low_alliance, rule="low_alliance")
    url = reverse("monitor:acknowledge", kwargs={"study": STUDY, "alert": alert.pk})
    response = client_for(client, accounts, role).post(url, {"note": "talked it through; session goes ahead"})
    assert response.status_code == status
    alert.refresh_from_db()
    if role in ("admin", "investigator", "facilitator"):
        assert alert.acknowledged_by == accounts[role] and alert.acknowledgement_note.startswith("talked")
        event = AuditEvent.objects.get(model="monitor.alert", object_id=str(alert.pk), action="change")
        assert event.user_id == accounts[role].pk and event.actor == f"user:{role}"
        assert event.old["acknowledged_at"] is None and event.new["acknowledgement_note"].startswith("talked")
        assert response["Location"] == reverse("monitor:participant", kwargs={"study": STUDY, "participant": NEW})
    else:
        assert alert.acknowledged_at is None
        if role is None:
            assert response["Location"].startswith("/accounts/login/")


def test_acknowledge_is_post_only_and_keeps_the_first_acknowledgement(low_alliance, accounts, client):
    alert = Alert.objects.get(participant=low_alliance, rule="low_alliance")
    url = reverse("monitor:acknowledge", kwargs={"study": STUDY, "alert": alert.pk})
    client_for(client, accounts, "investigator")
    assert client.get(url).status_code == 405
    client.post(url, {"note": "first", "next": "https://elsewhere.example/"})
    second = client.post(url, {"note": "second"})
    alert.refresh_from_db()
    assert alert.acknowledgement_note == "first" and second.status_code == 302
    assert AuditEvent.objects.filter(model="monitor.alert", object_id=str(alert.pk), action="change").count() == 1


def test_acknowledge_requires_the_csrf_token(low_alliance, accounts):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(accounts.investigator)
    alert = Alert.objects.get(participant=low_alliance, rule="low_alliance")
    response = client.post(reverse("monitor:acknowledge", kwargs={"study": STUDY, "alert": alert.pk}), {"note": "x"})
    assert response.status_code == 403
    alert.refresh_from_db()
    assert alert.acknowledged_at is None


# -- dashboards -------------------------------------------------------------------------------------

def test_participant_dashboard_shows_charts_scores_and_alerts(low_alliance, accounts, client):
    client_for(client, accounts, "facilitator")
    page = client.get(reverse("monitor:participant", kwargs={"study": STUDY, "participant": NEW}))
    html = page.content.decode()
    assert page.status_code == 200
    # alliance total, goal/task/bond, GRID-HAMD (no acute data yet), and the two expected-response curves
    assert html.count("<svg") == 5
    assert "On track? Expected response and reliable change" in html
    assert "calibrated synthetic trial" in html          # the reference is named, labelled as not real
    # Only the first WAI-SR score: nothing later to judge, so not assessable, and no reliable change yet.
    assert "Not assessable" in html
    assert "WAI-SR total, Final preparation session: 12</title>" in html
    assert "Low alliance before a dosing session" in html and 'name="note"' in html
    assert (timezone.localdate() + timedelta(days=11)).isoformat() in html


def test_monitors_see_days_from_enrolment_and_no_acknowledge_button(low_alliance, accounts, client):
    client_for(client, accounts, "monitor")
    html = client.get(reverse("monitor:participant", kwargs={"study": STUDY, "participant": NEW})).content.decode()
    assert "session 1 is due on day 21" in html
    assert (timezone.localdate() + timedelta(days=11)).isoformat() not in html
    assert 'name="note"' not in html
    # No page writes (tests/web/test_no_writes_on_get.py checks every GET page as every role).
    assert not AuditEvent.objects.filter(model="monitor.alert", user=accounts.monitor).exists()


def test_a_facilitator_cannot_open_another_facilitators_participant(web_study, accounts, client):
    client_for(client, accounts, "facilitator")
    assert client.get(reverse("monitor:participant", kwargs={"study": STUDY, "participant": OWN})).status_code == 200
    assert client.get(reverse("monitor:participant", kwargs={"study": STUDY, "participant": OTHER})).status_code == 404


def test_study_dashboard_counts_only_the_participants_the_user_may_see(low_alliance, accounts, client):
    client_for(client, accounts, "investigator")
    page = client.get(reverse("monitor:study", kwargs={"study": STUDY}))
    assert page.status_code == 200
    assert page.context["n_participants"] == 7
    assert len(page.context["cohort_charts"]) == 2
    client.logout()
    client_for(client, accounts, "facilitator2")   # F2: P002 and P004
    page = client.get(reverse("monitor:study", kwargs={"study": STUDY}))
    assert page.context["n_participants"] == 2
    assert NEW not in page.content.decode()          # P100's alert is not theirs
    assert "Run the analysis" not in page.content.decode()


def test_completeness_counts_statuses_per_timepoint():
    from datetime import date

    from alliance.monitoring.schedule import timeline
    from alliance.protocol import default_protocol

    protocol = default_protocol()
    today = date(2024, 2, 20)
    # A: only baseline done (prep, session1, post_session1 and session2 missed; week1 overdue).
    # B: enrolled the same day with baseline and prep done.
    a = timeline(protocol, "immediate", date(2024, 1, 1), today, done={"baseline": date(2024, 1, 2)})
    b = timeline(protocol, "immediate", date(2024, 1, 1), today,
                 done={"baseline": date(2024, 1, 2), "prep": date(2024, 1, 20)})
    rows = {r["timepoint"]: r for r in completeness(protocol, {"A": a, "B": b})}
    assert (rows["baseline"]["done"], rows["baseline"]["expected"], rows["baseline"]["percent"]) == (2, 2, 100.0)
    assert (rows["prep"]["done"], rows["prep"]["missed"], rows["prep"]["percent"]) == (1, 1, 50.0)
    assert rows["week4"]["upcoming"] == 2 and rows["week4"]["percent"] is None


def test_mean_ci_by_hand():
    import numpy as np

    # 10, 12, 14: mean 12, SD 2, SE 2/√3 = 1.1547; t(.975, 2) = 4.3027 → ± 4.9683.
    mean, low, high, n = mean_ci(np.array([10.0, 12.0, 14.0, np.nan]))
    assert (mean, n) == (12.0, 3)
    assert low == pytest.approx(12 - 4.9683, abs=1e-4) and high == pytest.approx(12 + 4.9683, abs=1e-4)


def test_deidentify_dates():
    from datetime import date

    text = "due 2024-02-10, window 2024-02-08 to 2024-02-13"
    assert deidentify_dates(text, date(2024, 1, 1)) == "due day 40, window day 38 to day 43"
    assert deidentify_dates(text, None) == "due [date], window [date] to [date]"


# -- the analysis ----------------------------------------------------------------------------------

def test_run_the_analysis_and_download_the_report(web_study, accounts, client, settings, tmp_path):
    settings.DATA_DIR = tmp_path
    client_for(client, accounts, "investigator")
    run_url = reverse("monitor:analysis_run", kwargs={"study": STUDY})
    assert client.get(run_url).status_code == 405
    assert client.post(run_url).status_code == 302
    run = AnalysisRun.objects.get(study=web_study)
    assert run.status == "done" and run.n_participants == 6 and run.output_dir.startswith(str(tmp_path))
    page = client.get(reverse("monitor:study", kwargs={"study": STUDY}))
    titles = [t["title"] for t in page.context["analysis"]["tables"]]
    assert titles[0] == "Change of alliance (paired t-tests)" and "Response and remission" in titles
    download = client.post(reverse("monitor:analysis_file", kwargs={"study": STUDY, "name": "results.json"}))
    assert download.status_code == 200
    results = json.loads(b"".join(download.streaming_content))
    assert results["provenance"]["n_participants"] == 6
    assert AuditEvent.objects.filter(model="capture.study", action="export", user=accounts.investigator,
                                       new__file="results.json").exists()
    assert AuditEvent.objects.filter(model="monitor.analysisrun", action="change", new__status="done").exists()
    # Monitors may download the (aggregate) report but not run the analysis; facilitators neither.
    client.logout()
    client_for(client, accounts, "monitor")
    assert client.post(reverse("monitor:analysis_file", kwargs={"study": STUDY, "name": "report.pdf"})).status_code == 200
    assert client.post(run_url).status_code == 403
    assert client.post(reverse("monitor:analysis_file", kwargs={"study": STUDY, "name": "secrets.txt"})).status_code == 404
    client.logout()
    client_for(client, accounts, "facilitator")
    assert client.post(reverse("monitor:analysis_file", kwargs={"study": STUDY, "name": "report.pdf"})).status_code == 403


def test_alliance_alerts_refresh_command(low_alliance):
    low_alliance.enrolled_on = timezone.localdate() - timedelta(days=40)   # prep and more now late
    low_alliance.save(update_fields=["enrolled_on"])
    result = CliRunner().invoke(app, ["alerts", "refresh", "--study", STUDY])
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"{STUDY}: ") and "new alert(s)" in result.output
    assert Alert.objects.filter(participant=low_alliance, rule_type="missed_assessment").exists()


def test_alliance_alerts_refresh_names_the_studies_there_are_for_an_unknown_one(web_study):
    result = CliRunner().invoke(app, ["alerts", "refresh", "--study", "nope"])
    assert result.exit_code == 1
    assert f"no study named 'nope' in the database; studies are: {STUDY}" in result.output


def test_alliance_analyze_reads_a_stored_study(web_study, tmp_path, monkeypatch):
    """`alliance analyze --study` sets Django up, then exports the study through the storage module."""
    exported = []

    def analyze_and_report(trial, out, hashes, seed):  # the analysis itself is tested in tests/analysis
        exported.append(trial)
        return {"results": out / "results.json", "html": out / "report.html", "pdf": out / "report.pdf"}

    monkeypatch.setattr("alliance.cli._analyze_and_report", analyze_and_report)
    result = CliRunner().invoke(app, ["analyze", "--study", STUDY, "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    (trial,) = exported
    assert len(trial.participants) == 6
    missing = CliRunner().invoke(app, ["analyze", "--study", "nope", "--out", str(tmp_path)])
    assert missing.exit_code == 1 and "no study named 'nope'" in missing.output


# -- alerts stored by the scheduled job and after imports -----------------------------------------

def test_an_import_and_the_scheduled_job_store_the_late_alerts(web_study, accounts):
    from alliance.web.capture.storage import export_study, import_study
    from alliance.web.monitor.alerting import refresh_every_study

    # P001's enrolment date moves 400 days back, and its week-4 answers go: week 4 is missed.
    study = export_study(STUDY)
    participants = study.participants.copy()
    participants.loc[participants["participant_id"] == "P001", "enrolled_on"] = (
        timezone.localdate() - timedelta(days=400)).isoformat()
    responses = study.responses[~((study.responses["participant_id"] == "P001")
                                  & (study.responses["timepoint"] == "week4"))]
    changed = Study(study.protocol, participants, responses.reset_index(drop=True), study.dosing_sessions)
    assert not Alert.objects.filter(participant__participant_id="P001", rule="missed_assessment",
                                    timepoint="week4").exists()
    import_study(changed, STUDY, "test", allow_deletions=True)  # the signal study_imported
    assert Alert.objects.filter(participant__participant_id="P001", rule="missed_assessment",
                                timepoint="week4").exists()
    again = refresh_every_study()
    assert list(again) == [STUDY] and again[STUDY].raised == 0
    before = Alert.objects.count()
    import_study(changed, STUDY, "test", dry_run=True)  # a dry run raises nothing
    assert Alert.objects.count() == before


def test_the_refresher_thread_of_alliance_serve(web_study, accounts, monkeypatch):
    """start_refresher runs the refresh at once and then every interval, and survives a failing run."""
    from alliance.web.monitor import alerting, scheduler

    calls = []

    def refresh(today=None):
        calls.append(today)
        if len(calls) == 1:
            raise RuntimeError("a bug")
        return {STUDY: alerting.RefreshSummary(0, 0, 6)}

    monkeypatch.setattr(alerting, "refresh_every_study", refresh)
    from alliance.web.capture import invitations
    sent = []
    monkeypatch.setattr(invitations, "send_due_every_study", lambda: sent.append(1) or [])
    # The thread has its own database connection, which cannot see this test's transaction:
    # close_all would close it, so the thread's connection handling is replaced too.
    monkeypatch.setattr(scheduler, "close_old_connections", lambda: None)
    monkeypatch.setattr(scheduler.connections, "close_all", lambda: None)
    refresher = scheduler.start_refresher(interval_seconds=1)
    try:
        assert refresher.wait_for_run(2, timeout=10)
    finally:
        refresher.stop()
    assert not refresher.thread.is_alive()
    assert len(calls) >= 2 and refresher.last_error == ""
    assert len(sent) >= 2   # each run also sends the invitations and reminders due (even after a failed refresh)
    with pytest.raises(ValueError, match="at least 1 second"):
        scheduler.start_refresher(0)


# -- no calendar dates for monitors --------------------------------------------------------------------

MONTHS = "January|February|March|April|May|June|July|August|September|October|November|December"
CALENDAR_DATE = re.compile(rf"\b\d{{4}}-\d{{2}}-\d{{2}}\b|\b\d{{1,2}}/\d{{1,2}}/\d{{2,4}}\b"
                           rf"|\b(?:{MONTHS}|(?:Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec)\.?)"
                           rf"\s+\d{{1,2}}\b|\b\d{{1,2}}(?:st|nd|rd|th)?\s+(?:{MONTHS})\b")


@pytest.fixture
def closed_alerts(low_alliance, accounts):
    """P100's low-alliance alert acknowledged with a note holding dates; P101's overdue alert resolved."""
    from alliance.web.monitor.alerting import acknowledge

    alert = Alert.objects.get(participant=low_alliance, rule="low_alliance")
    acknowledge(alert, accounts.investigator, "called her on 2024-03-01 and again on March 3rd")
    log = AuditLog(actor="test:setup", study=low_alliance.study)
    late = recording.enrol(low_alliance.study, participant_id="P101", arm=low_alliance.study.arms.get(code="immediate"),
                           enrolled_on=timezone.localdate() - timedelta(days=20), log=log)
    log.write()
    raise_alerts(late)                                              # overdue baseline stored
    raise_alerts(late, timezone.localdate() + timedelta(days=10))   # now missed: the overdue one resolved
    resolved = Alert.objects.get(participant=late, rule="overdue_assessment", timepoint="baseline")
    assert resolved.resolved_at is not None
    return alert, resolved


def _pages():
    return [reverse("monitor:alerts", kwargs={"study": STUDY}), reverse("monitor:study", kwargs={"study": STUDY}),
            reverse("monitor:participant", kwargs={"study": STUDY, "participant": NEW}),
            reverse("monitor:participant", kwargs={"study": STUDY, "participant": "P101"})]


def test_monitors_see_no_calendar_date_in_alerts(closed_alerts, accounts, client):
    client_for(client, accounts, "monitor")
    for url in _pages():
        html = client.get(url).content.decode()
        assert not CALENDAR_DATE.findall(html), (url, CALENDAR_DATE.findall(html))
    alerts = client.get(_pages()[0]).content.decode()
    # Acknowledged today, P100 enrolled 10 days ago; resolved today, P101 enrolled 20 days ago.
    assert "Acknowledged by investigator on day 10: “called her on day" in alerts
    assert "and again on [date]”" in alerts
    assert "Resolved by itself on day 20" in alerts
    assert "due day 0, window day 0 to day 14" in alerts          # P101's missed baseline


def test_investigators_see_the_calendar_dates(closed_alerts, accounts, client):
    client_for(client, accounts, "investigator")
    alerts = client.get(_pages()[0]).content.decode()
    today = timezone.localdate().isoformat()
    assert f"Acknowledged by investigator on {today} " in alerts
    assert "called her on 2024-03-01 and again on March 3rd" in alerts
    assert f"Resolved by itself on {today}:" in alerts


def test_deidentify_dates_written_otherwise():
    from datetime import date

    text = "seen 3 March 2024, Mar 5, 12/03/2024 and 2024-01-22T09:30:00+01:00; may 2 people come"
    assert deidentify_dates(text, date(2024, 1, 1)) == \
        "seen [date], [date], [date] and day 21; may 2 people come"
