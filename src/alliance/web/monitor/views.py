"""Dashboards, alerts and the study's analysis (the monitor app's pages).

Who may do what (decided by :mod:`alliance.web.accounts.access`):

- every role sees the dashboards and alerts of the participants it may see (a facilitator only
  their own; a monitor every participant, de-identified: no dates, only days from enrolment);
- acknowledging an alert is a write: admins, investigators and the participant's facilitators,
  not monitors (read-only means read-only; an alert is acknowledged by someone who can act on it);
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
from django.http import FileResponse, Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from alliance.web.accounts import access
from alliance.web.capture.recording import user_log

from . import dashboards
from .alerting import acknowledge
from .analysis import AnalysisBusy, run_study_analysis
from .models import Alert, AnalysisRun

ALL = access.ROLES
ACKNOWLEDGE_ROLES = ("admin", "investigator", "facilitator")
ANALYSIS_ROLES = ("admin", "investigator")
REPORT_ROLES = ("admin", "investigator", "monitor")


def _deidentified(request, study) -> bool:
    return not access.can_see_identifiers(request.user, study)


def _capabilities(request, study) -> dict:
    role = request.study_role
    return {"can_acknowledge": role in ACKNOWLEDGE_ROLES and access.can_write(request.user, study),
            "can_run_analysis": role in ANALYSIS_ROLES, "can_download_report": role in REPORT_ROLES,
            "deidentified": _deidentified(request, study), "role": role}


@access.study_view(roles=ALL)
def study_dashboard(request, study):
    """The study dashboard: completeness by timepoint, cohort trajectories, open alerts, the analysis."""
    participants = access.visible_participants(request.user, study)
    caps = _capabilities(request, study)
    context = dashboards.study_dashboard(study, participants, timezone.localdate(), deidentified=caps["deidentified"])
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
    return render(request, "monitor/participant_dashboard.html",
                  {"study": study, "participant": participant, **caps, **context})


@access.study_view(roles=ALL)
def alert_list(request, study):
    """Every alert of the participants the user may see: open first, then the closed ones."""
    participants = access.visible_participants(request.user, study)
    caps = _capabilities(request, study)
    context = dashboards.alert_list(study, participants, timezone.localdate(), deidentified=caps["deidentified"])
    return render(request, "monitor/alert_list.html", {"study": study, **caps, **context})


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
