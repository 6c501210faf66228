"""Dashboards, alerts and the study's analysis (the monitor app's pages).

Who may do what (decided by :mod:`alliance.web.accounts.access`):

- every role sees the dashboards and alerts of the participants it may see (a facilitator only
  their own; a monitor every participant, de-identified: no dates, only days from enrolment);
- acknowledging an alert is a write: admins, investigators and the participant's facilitators,
  not monitors (read-only means read-only; an alert is acknowledged by someone who can act on it);
  so is acknowledging several at once with one note, and assigning alerts to a staff member who
  can act on them (:func:`alliance.web.monitor.alerting.alert_staff`); an alert of a participant
  the user may not see is refused and counted in the answer, never acknowledged;
- the site's crisis text and country (shown with every suicidality alert): admins and
  investigators;
- re-running the analysis: admins and investigators; the report files (aggregate and
  de-identified) may be downloaded by admins, investigators and monitors — not by facilitators,
  whose access is limited to their own participants.

GET pages never write to the database (no alert is stored while a page is read; the alerts that
became due with time are stored by the scheduled job and shown before that as not stored yet, see
:mod:`alliance.web.monitor.alerting`); every write is a POST.

The analysis runs synchronously inside the POST request: for a trial-sized study (tens of
participants) it takes seconds to a minute, mostly the mediation bootstrap. A run already going
on for the study refuses a second one.
"""

from __future__ import annotations

from pathlib import Path

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.core.paginator import Paginator
from django.db import transaction
from django.db.models import Count
from django.http import FileResponse, Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_POST

from alliance.web.accounts import access
from alliance.web.capture.queries import study_protocol
from alliance.web.capture.recording import user_log

from . import dashboards
from .alerting import (
    BulkChange,
    acknowledge,
    acknowledge_alerts,
    alert_staff,
    assign_alerts,
    rule_statuses,
    study_crisis_text,
)
from .analysis import AnalysisBusy, run_study_analysis
from .forms import AlertFilterForm, CrisisTextForm
from .models import Alert, AnalysisRun

ALL = access.ROLES
ACKNOWLEDGE_ROLES = ("admin", "investigator", "facilitator")
SETTINGS_ROLES = ("admin", "investigator")
ALERTS_PER_PAGE = 50
BOUND = 500  # stored alerts the list reads at most (the most recent that pass the filters)
SEVERITY_RANK = {"urgent": 0, "warning": 1, "info": 2}
ANALYSIS_ROLES = ("admin", "investigator")
REPORT_ROLES = ("admin", "investigator", "monitor")


def _deidentified(request, study) -> bool:
    return not access.can_see_identifiers(request.user, study)


def _capabilities(request, study) -> dict:
    role = request.study_role
    return {"can_acknowledge": role in ACKNOWLEDGE_ROLES and access.can_write(request.user, study),
            "can_run_analysis": role in ANALYSIS_ROLES, "can_download_report": role in REPORT_ROLES,
            "deidentified": _deidentified(request, study), "role": role}


def _show_current(study, alerts: list) -> None:
    """What the pages show of alerts that may have changed since they were stored (no query per alert).

    A suicidality (``flag``) alert shows the site's crisis text as it is now, so that a site that
    writes its own (:func:`alert_settings`) replaces the protocol's on the alerts already stored;
    an alert's assignee is read with the others' in one query.
    """
    if any(a.rule_type == "flag" for a in alerts):
        current = study_crisis_text(study, study_protocol(study).alerts.crisis_text)
        for alert in alerts:
            if alert.rule_type == "flag":
                alert.action = current
    wanted = {a.assigned_to_id for a in alerts if a.assigned_to_id and "assigned_to" not in a._state.fields_cache}
    if wanted:
        users = get_user_model().objects.in_bulk(wanted)
        for alert in alerts:
            if alert.assigned_to_id in users:
                alert.assigned_to = users[alert.assigned_to_id]


@access.study_view(roles=ALL)
def study_dashboard(request, study):
    """The study dashboard: completeness by timepoint, cohort trajectories, open alerts, the analysis."""
    participants = access.visible_participants(request.user, study)
    caps = _capabilities(request, study)
    context = dashboards.study_dashboard(study, participants, timezone.localdate(), deidentified=caps["deidentified"])
    context["rule_statuses"] = rule_statuses(study)
    if caps["can_download_report"] or caps["can_run_analysis"]:
        context["analysis"] = dashboards.latest_analysis(study)
        context["running"] = AnalysisRun.objects.filter(study=study, status=AnalysisRun.Status.RUNNING).first()
    return render(request, "monitor/study_dashboard.html", {"study": study, **caps, **context})


@access.study_view(roles=ALL)
def participant_dashboard(request, study, participant):
    """One participant: alliance and outcome over the protocol's timepoints, acute measures, alerts."""
    participant = access.participant_or_404(request.user, study, participant)
    caps = _capabilities(request, study)
    context = dashboards.participant_dashboard(participant, timezone.localdate(), deidentified=caps["deidentified"])
    if caps["can_acknowledge"]:
        context["assignees"] = [s for s in alert_staff(study) if s.can_act_on(participant.pk)]
    _show_current(study, [*context["open_alerts"], *context["closed_alerts"]])
    return render(request, "monitor/participant_dashboard.html",
                  {"study": study, "participant": participant, **caps, **context})


@access.study_view(roles=ALL)
def alert_list(request, study):
    """The triage list: the alerts of the participants the user may see, filtered by GET parameters.

    Filters (all optional): ``severity``, ``rule``, ``state`` (open, acknowledged, resolved),
    ``assignee`` (``mine``, ``none`` or a user's id), ``participant``; ``page``. Open alerts
    first (urgent, then warning, then info; the most recent first within each), then the closed
    ones; counts of open alerts per severity over the other filters. The
    number of queries does not depend on the number of alerts.
    """
    visible = access.visible_participants(request.user, study)
    caps = _capabilities(request, study)
    protocol = study_protocol(study)
    protocol_rules = [(rule.id, rule.label) for rule in protocol.alerts.rules]
    staff = alert_staff(study)
    ids = list(visible.order_by("participant_id").values_list("participant_id", flat=True))
    form = AlertFilterForm(request.GET or None, rules=protocol_rules, staff=staff, participants=ids)
    chosen = form.chosen()
    participants = visible.filter(participant_id=chosen["participant"]) if "participant" in chosen else visible
    stored = Alert.objects.filter(AlertFilterForm.query(chosen, request.user)).select_related("assigned_to")
    context = dashboards.alert_list(study, participants, timezone.localdate(), deidentified=caps["deidentified"],
                                    alerts=stored, limit=BOUND)
    everything = [*context["open_alerts"], *context["closed_alerts"]]
    _show_current(study, everything)
    # Open first, the most severe first, then the most recent (the order alert_list gives them in).
    shown = sorted((a for a in everything if AlertFilterForm.keeps(a, chosen, request.user)),
                   key=lambda a: (not a.open_now, SEVERITY_RANK.get(a.severity, 3)))
    # Open alerts per severity over the other filters: stored (one query) and not stored yet.
    lapsed = {a.pk for a in everything if a.lapsed}
    counts = dict.fromkeys(Alert.Severity.values, 0)
    for severity, n in (Alert.objects.filter(study=study, participant__in=participants, acknowledged_at=None,
                                             resolved_at=None)
                        .filter(AlertFilterForm.query(chosen, request.user, counting=True))
                        .exclude(pk__in=lapsed).values_list("severity").annotate(n=Count("pk"))):
        counts[severity] = n
    for alert in everything:
        if alert.pending and AlertFilterForm.keeps(alert, chosen, request.user, counting=True):
            counts[alert.severity] += 1
    page = Paginator(shown, ALERTS_PER_PAGE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(request, "monitor/alert_list.html", {
        "study": study, **caps, "form": form, "page": page, "alerts": list(page.object_list),
        "open_alerts": [a for a in shown if a.open_now], "closed_alerts": [a for a in shown if not a.open_now],
        "n_shown": len(shown), "n_open": sum(a.open_now for a in shown), "severity_counts": counts,
        "filtered": bool(chosen), "query": query.urlencode(), "staff": staff,
        "bounded": sum(a.pk is not None for a in everything) >= BOUND, "bound": BOUND,
        "rule_statuses": rule_statuses(study), "can_edit_settings": caps["role"] in SETTINGS_ROLES,
        "crisis_text": study_crisis_text(study, protocol.alerts.crisis_text),
        "here": request.get_full_path()})


def _selected(request) -> list[int]:
    return [int(v) for v in request.POST.getlist("alert") if v.isdigit()][:BOUND]


def _back(request, study):
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()},
                                           require_https=request.is_secure()):
        target = reverse("monitor:alerts", kwargs={"study": study.name})
    return redirect(target)


def _say_not_done(request, result: BulkChange, verb: str) -> None:
    if result.refused:
        messages.warning(request, ngettext(
            "%(n)d alert was not %(verb)s: it is not an alert of a participant you (or the person it is assigned "
            "to) can act on, or it does not exist.",
            "%(n)d alerts were not %(verb)s: they are not alerts of participants you (or the person they are "
            "assigned to) can act on, or they do not exist.", result.refused) % {"n": result.refused, "verb": verb})
    if result.closed:
        messages.info(request, ngettext(
            "%(n)d alert was not %(verb)s: it was acknowledged or resolved already.",
            "%(n)d alerts were not %(verb)s: they were acknowledged or resolved already.",
            result.closed) % {"n": result.closed, "verb": verb})


@access.study_view(roles=ACKNOWLEDGE_ROLES, write=True)
@require_POST
def alerts_acknowledge(request, study):
    """Acknowledge the selected alerts with one note (POST; required); one audit event per alert."""
    chosen = _selected(request)
    note = request.POST.get("note", "").strip()[:2000]
    if not chosen:
        messages.error(request, _("No alert was selected: tick the alerts to acknowledge."))
        return _back(request, study)
    if not note:
        messages.error(request, _("Nothing was acknowledged: write a note saying what was done; it is kept with "
                                  "each alert and in the audit trail."))
        return _back(request, study)
    result = acknowledge_alerts(study, chosen, request.user, note,
                                allowed=access.visible_participants(request.user, study))
    if result.acknowledged:
        messages.success(request, ngettext("%(n)d alert acknowledged.", "%(n)d alerts acknowledged.",
                                           len(result.acknowledged)) % {"n": len(result.acknowledged)})
    _say_not_done(request, result, _("acknowledged"))
    return _back(request, study)


@access.study_view(roles=ACKNOWLEDGE_ROLES, write=True)
@require_POST
def alerts_assign(request, study):
    """Assign the selected open alerts to a staff member who can act on them, or to nobody (POST; audited)."""
    chosen = _selected(request)
    if not chosen:
        messages.error(request, _("No alert was selected: tick the alerts to assign."))
        return _back(request, study)
    value = request.POST.get("assignee", "")
    assignee = None
    if value != "none":
        assignee = get_user_model().objects.filter(pk=int(value)).first() if value.isdigit() else None
        if assignee is None:
            messages.error(request, _("Choose whom to assign the alerts to."))
            return _back(request, study)
    try:
        result = assign_alerts(study, chosen, assignee, request.user,
                               allowed=access.visible_participants(request.user, study))
    except ValueError as refused:
        messages.error(request, str(refused))
        return _back(request, study)
    if result.acknowledged:
        n = len(result.acknowledged)
        if assignee is None:
            messages.success(request, ngettext("%(n)d alert is assigned to nobody now.",
                                               "%(n)d alerts are assigned to nobody now.", n) % {"n": n})
        else:
            messages.success(request, ngettext("%(n)d alert assigned to %(who)s.", "%(n)d alerts assigned to %(who)s.",
                                               n) % {"n": n, "who": assignee.get_username()})
    _say_not_done(request, result, _("assigned"))
    return _back(request, study)


@access.study_view(roles=SETTINGS_ROLES, write=True)
def alert_settings(request, study):
    """The site's crisis text (blank: the protocol's) and country, shown with every suicidality alert."""
    protocol_text = study_protocol(study).alerts.crisis_text
    if request.method == "POST":
        form = CrisisTextForm(request.POST)
        if form.is_valid():
            old = {"crisis_text": study.crisis_text, "country": study.country}
            new = {"crisis_text": form.cleaned_data["crisis_text"], "country": form.cleaned_data["country"]}
            with transaction.atomic():
                study.crisis_text, study.country = new["crisis_text"], new["country"]
                study.save(update_fields=["crisis_text", "country", "updated_at"])
                log = user_log(request.user, study)
                log.changed(study, old, new, label=study.name)
                log.write()
            messages.success(request, _("The crisis text is saved: every suicidality alert shows it, and the emails about new urgent alerts."))
            return redirect("monitor:alert_settings", study=study.name)
        status = 400
    else:
        form = CrisisTextForm(initial={"crisis_text": study.crisis_text, "country": study.country})
        status = 200
    return render(request, "monitor/alert_settings.html", {
        "study": study, "form": form, "protocol_text": protocol_text,
        "shown_text": study_crisis_text(study, protocol_text)}, status=status)


@access.study_view(roles=ACKNOWLEDGE_ROLES, write=True)
@require_POST
def alert_acknowledge(request, study, alert):
    """Acknowledge one alert (POST), with an optional note; recorded in the audit trail."""
    row = (Alert.objects.filter(study=study, pk=alert,
                                participant__in=access.visible_participants(request.user, study))
           .select_related("participant", "study").first())
    if row is None:
        raise Http404("no such alert")
    note = request.POST.get("note", "")[:2000]
    if acknowledge(row, request.user, note):
        messages.success(request, _("Alert acknowledged: %(participant)s, %(rule)s.")
                         % {"participant": row.participant.participant_id, "rule": row.rule})
    else:
        messages.info(request, _("That alert had already been acknowledged."))
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()},
                                           require_https=request.is_secure()):
        target = reverse("monitor:participant", kwargs={"study": study.name,
                                                        "participant": row.participant.participant_id})
    return redirect(target)


@access.study_view(roles=ANALYSIS_ROLES, write=True)
@require_POST
def analysis_run(request, study):
    """Run the study's analysis plan now and write the report (POST; synchronous)."""
    try:
        run = run_study_analysis(study, request.user)
    except AnalysisBusy as busy:
        messages.warning(request, str(busy))
    else:
        if run.status == AnalysisRun.Status.DONE:
            messages.success(request, _("The analysis ran in %(seconds)s s on %(n)s participants.")
                             % {"seconds": f"{run.seconds:.0f}", "n": run.n_participants})
        else:
            messages.error(request, _("The analysis failed: %(error)s") % {"error": run.error})
    return redirect("monitor:study", study=study.name)


@access.study_view(roles=REPORT_ROLES)
@require_POST
def analysis_file(request, study, name):
    """Download a file of the latest analysis (POST, since each download is in the audit trail)."""
    if name not in dashboards.REPORT_FILES:
        raise Http404("no such file")
    latest = dashboards.latest_analysis(study)
    if latest is None or name not in latest["files"]:
        raise Http404("the analysis has not written this file")
    run = latest["run"]
    path = Path(run.output_dir) / name
    log = user_log(request.user, study)
    log.exported(study, {"file": name, "analysis_run": run.pk}, label=f"{study.name} analysis {name}")
    log.write()
    response = FileResponse(path.open("rb"), as_attachment=True, filename=f"{study.name}-{name}",
                            content_type=dashboards.REPORT_FILES[name])
    response["Cache-Control"] = "no-store"
    return response
