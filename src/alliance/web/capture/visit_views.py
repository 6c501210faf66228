"""Pages of a participant's visit link (a survey queue), the email opt-out and the study's links page.

A visit link (:class:`~alliance.web.capture.models.VisitLink`) opens a page listing the visit's
self-reports; each opens in turn and, once submitted, is closed (single use per form). Answers
are saved as a draft as the participant goes (as through a single-form link), so they can stop
and come back with the same link until it expires at the window's close or staff revoke it.
GET requests never write (``tests/web/test_no_writes_on_get.py``): the link's first use is
recorded with the first answer saved through it.

The links page lists the study's links (visit and single-form) with their state and the emails
sent for each visit; staff revoke a link, or send a visit's link again (a new link: only a
fingerprint of a link is stored, so the old one cannot be re-sent; the old one is revoked).
Every action is in the audit trail.
"""

from __future__ import annotations

import smtplib

from django.contrib import messages
from django.core.paginator import Paginator
from django.db import transaction
from django.http import Http404, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from alliance import instruments as bank
from alliance.web.accounts import access
from alliance.web.audit.log import AuditLog

from . import invitations, links, recording
from . import models as m
from .instrument_forms import form_instrument
from .queries import study_protocol
from .timelines import participant_timeline

LINK_ROLES = ("admin", "investigator", "facilitator")
PAGE_SIZE = 100


def _no_store(response):
    response["Cache-Control"] = "no-store"
    return response


def _closed_visit(request, link: m.VisitLink | None):
    """The page for a visit link that no longer opens, or ``None`` when it does."""
    if link is None:
        return render(request, "capture/link_closed.html", {"reason": "unknown"}, status=404)
    if link.revoked_at is not None:
        return render(request, "capture/link_closed.html", {"reason": "revoked"}, status=410)
    if link.expires_at <= timezone.now():
        return render(request, "capture/link_closed.html", {"reason": "expired"}, status=410)
    return None


@require_http_methods(["GET"])
def visit(request, token):
    """The visit's questionnaires, each with its state, and the one to fill in next."""
    link = recording.find_visit_link(token)
    closed = _closed_visit(request, link)
    if closed is not None:
        return _no_store(closed)
    protocol = study_protocol(link.participant.study)
    forms = links.visit_forms(protocol, link.participant, link.timepoint)
    following = next((f for f in forms if f.state != "submitted"), None)
    return _no_store(render(request, "capture/visit.html", {
        "link": link, "timepoint": link.timepoint, "forms": forms, "next": following, "token": token,
        "n_done": sum(f.state == "submitted" for f in forms)}))


@require_http_methods(["GET", "POST"])
def visit_form(request, token, instrument):
    """One questionnaire of a visit: like a single-form link, then on to the next one."""
    from .views import _form_context, _form_response, _handle_form_post  # one form machinery for every page

    link = recording.find_visit_link(token)
    closed = _closed_visit(request, link)
    if closed is not None:
        return _no_store(closed)
    participant, timepoint = link.participant, link.timepoint
    protocol = study_protocol(participant.study)
    if instrument not in links.self_reports(protocol, timepoint.code):
        raise Http404("this questionnaire is not part of the visit")
    queue = reverse("capture:visit", kwargs={"token": token})
    existing = m.Administration.objects.filter(participant=participant, timepoint=timepoint,
                                               instrument=instrument).first()
    if existing is not None and existing.status == m.Administration.Status.SUBMITTED:
        messages.info(request, _("%(name)s is submitted already.") % {"name": bank.get(instrument).short_name})
        return _no_store(redirect(queue))
    definition = form_instrument(instrument)
    page = {"private": True, "participant": participant, "timepoint": timepoint, "study": participant.study,
            "back": None, "queue": queue}
    if request.method == "GET":
        context = _form_context(definition, recording.stored_answers(existing) if existing else {}, {}, **page)
        return _no_store(render(request, "capture/form_page.html",
                                {**context, "staff": False, "expires_at": link.expires_at}))
    log = recording.visit_link_log(link)

    def submitted(log):
        done = all(f.state == "submitted" or f.instrument == instrument
                   for f in links.visit_forms(protocol, participant, timepoint))
        recording.note_visit_progress(link, log, completed=done)

    outcome, answers, message = _handle_form_post(
        request, instrument=definition, log=log, rater="",
        administration_factory=lambda: recording.open_administration(participant, timepoint, instrument, log),
        on_submitted=submitted, mode=m.Administration.Mode.LINK)
    if outcome in ("saved", "invalid", "incomplete") and link.opened_at is None:
        with transaction.atomic():
            log = recording.visit_link_log(link)
            recording.note_visit_progress(link, log, completed=False)
            log.write()
    if outcome in ("submitted", "already") and not request.headers.get("HX-Request"):
        if outcome == "submitted":
            messages.success(request, _("Thank you: %(name)s is submitted.") % {"name": definition.short_name})
        return _no_store(redirect(queue))
    return _no_store(_form_response(request, outcome, answers, message, definition, page, staff=False))


# -- opting out of emails ------------------------------------------------------------------------

@require_http_methods(["GET", "POST"])
def opt_out(request, token):
    """Stop invitation and reminder emails: a confirmation page, and a POST that records it."""
    participant = invitations.participant_from_opt_out(token)
    if participant is None:
        return _no_store(render(request, "capture/link_closed.html", {"reason": "unknown"}, status=404))
    done = participant.email_opt_out is not None
    if request.method == "POST" and not done:
        with transaction.atomic():
            log = AuditLog(actor=f"opt-out-link:{participant.pk}", study=participant.study)
            recording.set_email_opt_out(participant, True, log)
            log.write()
        done = True
    return _no_store(render(request, "capture/opt_out.html", {"done": done}))


# -- the links page ------------------------------------------------------------------------------

def _visit_rows(request, study, participants, now):
    notes: dict[tuple[int, int], list[m.Notification]] = {}
    for note in m.Notification.objects.filter(participant__in=participants).order_by("number"):
        notes.setdefault((note.participant_id, note.timepoint_id), []).append(note)
    rows = []
    for link in (m.VisitLink.objects.filter(participant__in=participants)
                 .select_related("participant", "timepoint", "created_by").order_by("-created_at")):
        rows.append({"kind": "visit", "link": link, "state": links.link_state(link, now),
                     "forms": links.self_reports(study_protocol(study), link.timepoint.code),
                     "emails": notes.get((link.participant_id, link.timepoint_id), [])})
    return rows


def _form_rows(participants, now):
    submitted = set(m.Administration.objects.filter(participant__in=participants,
                                                    status=m.Administration.Status.SUBMITTED)
                    .values_list("participant_id", "timepoint_id", "instrument"))
    rows = []
    for link in (m.PrivateLink.objects.filter(participant__in=participants)
                 .select_related("participant", "timepoint", "created_by").order_by("-created_at")):
        done = (link.participant_id, link.timepoint_id, link.instrument) in submitted
        rows.append({"kind": "form", "link": link, "state": links.link_state(link, now, submitted=done),
                     "forms": [link.instrument], "emails": []})
    return rows


@access.study_view(roles=LINK_ROLES)
@require_http_methods(["GET"])
def link_list(request, study):
    """Every private link of the participants the user may see, newest first, with state and emails."""
    participants = access.visible_participants(request.user, study)
    now = timezone.now()
    rows = sorted(_visit_rows(request, study, participants, now) + _form_rows(participants, now),
                  key=lambda r: r["link"].created_at, reverse=True)
    state = request.GET.get("state", "")
    if state in links.LINK_STATES:
        rows = [r for r in rows if r["state"] == state]
    counts = {s: 0 for s in links.LINK_STATES}
    for row in rows:
        counts[row["state"]] += 1
    for row in rows:
        row["names"] = ", ".join(bank.get(i).short_name for i in row["forms"])
        row["actionable"] = row["state"] in ("open", "in progress")
    page = Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "capture/links.html", {
        "study": study, "page": page, "rows": page.object_list, "state": state, "states": links.LINK_STATES,
        "counts": counts, "show_dates": True, "opted_out": participants.filter(email_opt_out__isnull=False).count()})


def _link_or_404(request, study, kind: str, pk: int):
    model = {"visit": m.VisitLink, "form": m.PrivateLink}.get(kind)
    if model is None:
        raise Http404("no such kind of link")
    link = model.objects.select_related("participant", "timepoint").filter(pk=pk, participant__study=study).first()
    if link is None:
        raise Http404("no such link")
    access.participant_or_404(request.user, study, link.participant.participant_id)
    return link


@access.study_view(roles=LINK_ROLES, write=True)
@require_POST
def link_revoke(request, study, kind, pk):
    """Revoke a link: it stops opening its forms at once (answers saved through it are kept)."""
    link = _link_or_404(request, study, kind, pk)
    if link.revoked_at is not None:
        messages.info(request, _("That link was revoked already."))
        return redirect("capture:links", study=study.name)
    with transaction.atomic():
        log = recording.user_log(request.user, study)
        if kind == "visit":
            recording.revoke_visit_link(link, log, request.user)
        else:
            recording.revoke_private_link(link, log, request.user)
        log.write()
    messages.success(request, _("The link of %(id)s at %(label)s is revoked; it no longer opens.")
                     % {"id": link.participant.participant_id, "label": link.timepoint.label})
    return redirect("capture:links", study=study.name)


@access.study_view(roles=LINK_ROLES, write=True)
@require_POST
def link_resend(request, study, kind, pk):
    """Email a visit's link again: a new link (the old one is revoked), to the participant's address."""
    link = _link_or_404(request, study, kind, pk)
    if kind != "visit":
        raise Http404("only visit links are emailed")
    protocol = study_protocol(study)
    participant = link.participant
    address = links.participant_email(protocol, participant)
    if address is None or participant.email_opt_out is not None:
        text = (_("%(id)s has opted out of emails; make a link on their page and give it to them in person "
                  "instead.") if address else
                _("%(id)s has no valid email address on record; make a link on their page and give it to them "
                  "in person instead."))
        messages.error(request, text % {"id": participant.participant_id})
        return redirect("capture:links", study=study.name)
    try:
        base = invitations.site_url()
    except invitations.InvitationsNotConfigured as error:
        messages.error(request, str(error))
        return redirect("capture:links", study=study.name)
    row = next((r for r in participant_timeline(participant)["rows"] if r["timepoint"] == link.timepoint.code), None)
    expires_at, in_window = links.visit_expiry(row)
    until = row["window_end"] if in_window else timezone.localtime(expires_at).date()
    with transaction.atomic():
        log = recording.user_log(request.user, study)
        if link.revoked_at is None:
            recording.revoke_visit_link(link, log, request.user, reason="replaced by a link sent again")
        token, new = recording.create_visit_link(participant, link.timepoint, expires_at=expires_at, log=log,
                                                 user=request.user, origin=m.VisitLink.Origin.RESEND)
        email = invitations.visit_email(participant, link.timepoint, reminder=True,
                                        link_url=base + reverse("capture:visit", kwargs={"token": token}),
                                        window_end=until,
                                        subject=protocol.invitations.subject)
        email.to = [address]
        try:
            email.send()
        except (smtplib.SMTPException, OSError) as error:
            transaction.set_rollback(True)
            messages.error(request, _("The email could not be sent (%(error)s); nothing was changed.")
                           % {"error": type(error).__name__})
            return redirect("capture:links", study=study.name)
        log.exported(new, {"message": "visit link", "participant_id": participant.participant_id,
                           "timepoint": link.timepoint.code, "resent": True}, label=recording.visit_link_label(new))
        log.write()
    messages.success(request, _("A new link for %(id)s at %(label)s is sent; the old one no longer opens.")
                     % {"id": participant.participant_id, "label": link.timepoint.label})
    return redirect("capture:links", study=study.name)


@access.study_view(roles=LINK_ROLES, write=True)
@require_POST
def visit_link_create(request, study, participant, timepoint):
    """Make a visit link for staff to give to the participant, and show it once."""
    participant = access.participant_or_404(request.user, study, participant)
    timepoint = m.Timepoint.objects.filter(study=study, code=timepoint).first()
    protocol = study_protocol(study)
    if timepoint is None or not links.self_reports(protocol, timepoint.code):
        raise Http404("this timepoint has no self-report")
    row = next((r for r in participant_timeline(participant)["rows"] if r["timepoint"] == timepoint.code), None)
    expires_at, in_window = links.visit_expiry(row)
    with transaction.atomic():
        log = recording.user_log(request.user, study)
        token, link = recording.create_visit_link(participant, timepoint, expires_at=expires_at, log=log,
                                                  user=request.user)
        log.write()
    url = request.build_absolute_uri(reverse("capture:visit", kwargs={"token": token}))
    return _no_store(render(request, "capture/link_created.html", {
        "study": study, "participant": participant, "link": link, "url": url, "timepoint": timepoint,
        "visit": True, "in_window": in_window, "has_window": row is not None,
        "names": ", ".join(bank.get(i).short_name for i in links.self_reports(protocol, timepoint.code))}))


@access.study_view(roles=LINK_ROLES, write=True)
@require_POST
def email_preference(request, study, participant):
    """Staff record that a participant wants no more emails (``opt_out=yes``), or wants them again (``no``)."""
    participant = access.participant_or_404(request.user, study, participant)
    wanted = request.POST.get("opt_out")
    if wanted not in ("yes", "no"):
        return HttpResponseBadRequest("opt_out must be yes or no")
    with transaction.atomic():
        log = recording.user_log(request.user, study)
        changed = recording.set_email_opt_out(participant, wanted == "yes", log)
        log.write()
    if changed:
        text = (_("%(id)s gets no more invitation or reminder emails.") if wanted == "yes"
                else _("%(id)s gets invitations and reminders again, as the protocol says."))
        messages.success(request, text % {"id": participant.participant_id})
    return redirect("capture:participant_detail", study=study.name, participant=participant.participant_id)
