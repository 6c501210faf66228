"""Pages of the safety record and of randomisation (owned by the capture app).

``studies/<study>/safety/``
    The study's adverse events (serious ones first), counts by grade and the vital signs past the
    protocol's thresholds — of the participants the user may see. Every role; monitors see days
    from enrolment instead of dates.
``…/participants/<participant>/safety/``
    One participant's adverse events, vital signs and medications, with the forms to add them.
``…/adverse-events/new/``, ``…/adverse-events/<ae_id>/``
    Report or update an adverse event: admins and investigators (:data:`access.SAFETY_ROLES`).
``…/vital-signs/new/``
    A reading on a dosing day: also facilitators, who are in the room.
``…/medications/new/``, ``…/medications/<pk>/``
    A concomitant medication: admins and investigators.
``studies/<study>/randomisation/``
    The allocation list: generated once, and seen, by the unblinded role only
    (:data:`access.UNBLINDED_ROLES`); everyone else gets 403 (allocation concealment).

What is stored, checked and audited is :mod:`alliance.web.capture.safety` and
:mod:`alliance.web.capture.randomising`; the alerts a record raises are the monitor app's.
"""

from __future__ import annotations

from datetime import date

import pandas as pd
from django.contrib import messages
from django.db import transaction
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods

from alliance.monitoring.safety_checks import vital_sign_findings
from alliance.web.accounts import access

from . import models as m
from . import randomising, recording, safety
from .queries import study_protocol
from .safety_forms import AdverseEventForm, MedicationForm, RandomisationListForm, VitalSignForm, add_problems

VITAL_ROLES = ("admin", "investigator", "facilitator")


def _day(participant: m.Participant, text: str) -> str:
    """A date as the monitors see it: days from enrolment (``day 12``), or ``—``."""
    if not text or participant.enrolled_on is None:
        return "—"
    try:
        day = date.fromisoformat(text[:10])
    except ValueError:
        return "—"
    return _("day %(n)s") % {"n": (day - participant.enrolled_on).days}


def _shown(participant: m.Participant, text: str, show_dates: bool) -> str:
    return (text or "—") if show_dates else _day(participant, text)


def _event_rows(events, show_dates: bool) -> list[dict]:
    return [{"event": e, "participant": e.participant, "onset": _shown(e.participant, e.onset, show_dates),
             "resolved_on": _shown(e.participant, e.resolved_on, show_dates) if e.resolved_on else _("ongoing"),
             "criteria": [c.replace("_", " ") for c in e.seriousness.split(";") if c]} for e in events]


def _vital_rows(participant_readings, protocol, show_dates: bool) -> list[dict]:
    readings = list(participant_readings)
    if not readings:
        return []
    frame = pd.DataFrame([{"participant_id": r.participant.participant_id, "session": r.session,
                           "measured_at": r.measured_at, "systolic_bp": r.systolic_bp,
                           "diastolic_bp": r.diastolic_bp, "heart_rate": r.heart_rate} for r in readings])
    flagged: dict[tuple, list] = {}
    for finding in vital_sign_findings(frame, protocol.safety):
        flagged.setdefault((finding.participant_id, finding.session, str(finding.measured_at)), []).append(finding)
    rows = []
    for r in readings:
        findings = flagged.get((r.participant.participant_id, r.session, r.measured_at), [])
        rows.append({"reading": r, "participant": r.participant,
                     "measured_at": r.measured_at.replace("T", " ") if show_dates else _day(r.participant, r.measured_at),
                     "severity": "urgent" if any(f.severity == "urgent" for f in findings) else
                                 ("warning" if findings else ""),
                     "findings": [f.reason for f in findings]})
    return rows


@access.study_view(roles=access.ROLES)
@require_http_methods(["GET"])
def study_safety(request, study):
    """The study's safety record: adverse events (serious first), counts by grade, vital-sign findings."""
    protocol = study_protocol(study)
    visible = access.visible_participants(request.user, study)
    show_dates = request.study_role != "monitor"
    events = (m.AdverseEvent.objects.filter(participant__in=visible).select_related("participant")
              .order_by("-serious", "-severity", "onset", "ae_id"))
    grades = {g: {"events": 0, "participants": set()} for g in range(1, 6)}
    for e in events:
        grades[e.severity]["events"] += 1
        grades[e.severity]["participants"].add(e.participant_id)
    vitals = _vital_rows(m.VitalSign.objects.filter(participant__in=visible).select_related("participant")
                         .order_by("participant__participant_id", "session", "measured_at"), protocol, show_dates)
    return render(request, "capture/study_safety.html", {
        "study": study, "role": request.study_role, "events": _event_rows(events, show_dates),
        "serious": sum(e.serious for e in events),
        "grades": [{"grade": g, "events": v["events"], "participants": len(v["participants"])}
                   for g, v in grades.items()],
        "n_participants": visible.count(),
        "flagged_vitals": [v for v in vitals if v["severity"]], "n_vitals": len(vitals),
        "thresholds": protocol.safety.vital_signs,
        "randomised": protocol.randomisation is not None,
        "can_randomise": request.study_role in access.UNBLINDED_ROLES,
    })


@access.study_view(roles=access.ROLES)
@require_http_methods(["GET"])
def participant_safety(request, study, participant):
    """One participant's adverse events, vital signs and concomitant medications."""
    participant = access.participant_or_404(request.user, study, participant)
    protocol = study_protocol(study)
    role = request.study_role
    show_dates = role != "monitor"
    events = participant.adverse_events.select_related("participant").order_by("onset", "ae_id")
    readings = participant.vital_signs.select_related("participant").order_by("session", "measured_at")
    medications = participant.medications.order_by("start", "name")
    return render(request, "capture/participant_safety.html", {
        "study": study, "participant": participant, "role": role,
        "events": _event_rows(events, show_dates),
        "vitals": _vital_rows(readings, protocol, show_dates),
        "medications": [{"medication": d, "start": _shown(participant, d.start, show_dates),
                         "stop": _shown(participant, d.stop, show_dates) if d.stop else _("ongoing")}
                        for d in medications],
        "can_report": role in access.SAFETY_ROLES, "can_measure": role in VITAL_ROLES,
        "washout": protocol.safety.washout,
    })


def _save(request, form, participant, write, message: str, field_names: dict | None = None):
    """Store through ``write(log)``; a refused record puts its problems on the form (returns None)."""
    try:
        with transaction.atomic():
            log = recording.user_log(request.user, participant.study)
            stored = write(log)
            log.write()
    except safety.SafetyRecordError as error:
        add_problems(form, error.problems, field_names)
        return None
    messages.success(request, message)
    return stored


def _back(participant: m.Participant):
    return redirect("capture:participant_safety", study=participant.study.name,
                    participant=participant.participant_id)


def _form_page(request, participant, form, title: str, *, editing=False):
    return render(request, "capture/safety_form.html",
                  {"study": participant.study, "participant": participant, "form": form, "title": title,
                   "editing": editing}, status=400 if form.errors else 200)


@access.study_view(roles=access.SAFETY_ROLES, write=True)
@require_http_methods(["GET", "POST"])
def adverse_event_form(request, study, participant, ae_id=None):
    """Report an adverse event, or update one (its id stays)."""
    participant = access.participant_or_404(request.user, study, participant)
    event = None
    if ae_id is not None:
        event = participant.adverse_events.filter(ae_id=ae_id).first()
        if event is None:
            raise Http404("no such adverse event")
    initial = AdverseEventForm.initial_from(event) if event else {"ae_id": safety.next_ae_id(study)}
    form = AdverseEventForm(initial=initial, editing=event is not None)
    if request.method == "POST":
        form = AdverseEventForm(request.POST, initial=initial, editing=event is not None)
        if form.is_valid():
            values = form.values()
            message = (_("Adverse event %(ae)s of %(id)s is updated.") if event else
                       _("Adverse event %(ae)s of %(id)s is recorded.")) % {"ae": values["ae_id"],
                                                                           "id": participant.participant_id}
            if values["serious"]:
                message += " " + _("It is serious: the study's investigators are alerted.")
            stored = _save(request, form, participant,
                           lambda log: safety.record_adverse_event(participant, values, log, event), message)
            if stored is not None:
                return _back(participant)
    title = (_("Adverse event %(ae)s of %(id)s") % {"ae": event.ae_id, "id": participant.participant_id} if event
             else _("Report an adverse event of %(id)s") % {"id": participant.participant_id})
    return _form_page(request, participant, form, title, editing=event is not None)


@access.study_view(roles=VITAL_ROLES, write=True)
@require_http_methods(["GET", "POST"])
def vital_sign_form(request, study, participant):
    """Record blood pressure and heart rate during a dosing session (a reading at the same minute is corrected)."""
    participant = access.participant_or_404(request.user, study, participant)
    protocol = study_protocol(study)
    sessions = sorted(d.session for d in participant.dosing_sessions.all())
    form = VitalSignForm(protocol=protocol, initial={"session": sessions[-1] if sessions else None})
    if request.method == "POST":
        form = VitalSignForm(request.POST, protocol=protocol)
        if form.is_valid():
            values = form.values()
            stored = _save(request, form, participant,
                           lambda log: safety.record_vital_sign(participant, protocol, values, log),
                           _("The reading of %(id)s at %(at)s is recorded.")
                           % {"id": participant.participant_id, "at": values["measured_at"].replace("T", " ")})
            if stored is not None:
                if request.POST.get("another"):
                    return redirect("capture:vital_sign_new", study=study.name, participant=participant.participant_id)
                return _back(participant)
    return _form_page(request, participant, form, _("Vital signs of %(id)s") % {"id": participant.participant_id})


@access.study_view(roles=access.SAFETY_ROLES, write=True)
@require_http_methods(["GET", "POST"])
def medication_form(request, study, participant, pk=None):
    """Record a concomitant medication, or update one (its name and start stay)."""
    participant = access.participant_or_404(request.user, study, participant)
    medication = None
    if pk is not None:
        medication = participant.medications.filter(pk=pk).first()
        if medication is None:
            raise Http404("no such medication")
    initial = ({"name": medication.name, "dose": medication.dose, "start": medication.start,
                "stop": medication.stop or None, "indication": medication.indication} if medication else {})
    form = MedicationForm(initial=initial, editing=medication is not None)
    if request.method == "POST":
        form = MedicationForm(request.POST, initial=initial, editing=medication is not None)
        if form.is_valid():
            values = form.values()
            stored = _save(request, form, participant,
                           lambda log: safety.record_medication(participant, values, log, medication),
                           _("%(name)s of %(id)s is recorded.") % {"name": values["name"],
                                                                  "id": participant.participant_id})
            if stored is not None:
                return _back(participant)
    return _form_page(request, participant, form, _("Concomitant medication of %(id)s")
                      % {"id": participant.participant_id}, editing=medication is not None)


@access.study_view(roles=access.UNBLINDED_ROLES)
@require_http_methods(["GET", "POST"])
def randomisation(request, study):
    """The allocation list: generate it once; its strata, how far each is used, and every allocation."""
    protocol = study_protocol(study)
    if protocol.randomisation is None:
        raise Http404("this study is not randomised")
    form = RandomisationListForm(protocol=protocol)
    if request.method == "POST":
        if not access.can_write(request.user, study):
            raise Http404
        form = RandomisationListForm(request.POST, protocol=protocol)
        if form.is_valid():
            try:
                with transaction.atomic():
                    log = recording.user_log(request.user, study)
                    randomising.generate_list(study, protocol, seed=form.cleaned_data["seed"],
                                              strata_values=form.strata_values(), user=request.user, log=log)
                    log.write()
            except randomising.RandomisationRefused as error:
                form.add_error(None, str(error))
            else:
                messages.success(request, _("The allocation list of %(study)s is generated.") % {"study": study.name})
                return redirect("capture:randomisation", study=study.name)
    stored = m.RandomisationList.objects.filter(study=study).first()
    allocations = randomising.allocation_list_of(stored, protocol) if stored else None
    used = stored.used if stored else {}
    strata = ([{"key": s.key, "length": len(s), "used": used.get(s.key, 0),
                "left": len(s) - used.get(s.key, 0)} for s in allocations.strata] if allocations else [])
    return render(request, "capture/randomisation.html", {
        "study": study, "spec": protocol.randomisation, "stored": stored, "strata": strata, "form": form,
        "allocations": m.Allocation.objects.filter(study=study).select_related("participant", "allocated_by"),
    }, status=400 if form.errors else 200)
