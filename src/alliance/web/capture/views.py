"""Pages of the capture app: studies, participants and their timelines, dosing, forms, links, exports.

Who may open what is decided by :mod:`alliance.web.accounts.access` (the ``study_view``
decorator and ``participant_or_404``); what is written, and its audit trail, by
:mod:`~alliance.web.capture.recording`. Views only connect the two with templates. Every URL is
listed with its allowed roles in ``/tmp/web_urls_W1.md`` (the authorization matrix).
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Count, Q
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import content_disposition_header, urlencode
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods, require_POST

from alliance import instruments as bank
from alliance.study import StudyDataError
from alliance.web.accounts import access
from alliance.web.accounts.members import set_membership
from alliance.web.audit.log import AuditLog

from . import models as m
from . import randomising, recording, uploads
from .entry import StaffEntryForm
from .exports import KINDS, KINDS_FOR_ROLE, ExportNotPossible, export_zip
from .forms import DosingForm, ParticipantForm, PrivateLinkForm, StudyCreateForm, StudyImportForm
from .instrument_forms import Answers, form_instrument, form_items, read_answers
from .queries import study_protocol
from .safety import SafetyRecordError
from .safety_forms import add_problems
from .storage import DeletionsNotAllowed, StorageError, import_study
from .timelines import participant_timeline

FORM_ACTIONS = ("autosave", "draft", "submit")


# -- studies -------------------------------------------------------------------------------------

@login_required
def study_list(request):
    """The studies the user has a role in."""
    studies = access.studies_for(request.user).annotate(n_participants=Count("participants"))
    rows = [{"study": s, "role": access.role_in(request.user, s)} for s in studies]
    return render(request, "capture/study_list.html",
                  {"rows": rows, "can_create": access.can_create_study(request.user)})


@login_required
@require_http_methods(["GET", "POST"])
def study_create(request):
    """Set up a study from the built-in Levin protocol or an uploaded protocol file."""
    if not access.can_create_study(request.user):
        raise PermissionDenied("only administrators set up studies")
    form = StudyCreateForm()
    if request.method == "POST":
        form = StudyCreateForm(request.POST, request.FILES)
        if form.is_valid():
            name = form.cleaned_data["name"]
            try:
                with transaction.atomic():
                    study = recording.create_study(name, form.protocol, user=request.user)
                    if not request.user.is_superuser:
                        # The staff member who set it up administers it.
                        log = recording.user_log(request.user, study)
                        set_membership(request.user, study, "admin", log)
                        log.write()
            except recording.StorageError as error:
                form.add_error("name", str(error))
            else:
                messages.success(request, _("Study %(name)s is set up with protocol %(protocol)s.")
                                 % {"name": name, "protocol": form.protocol.name})
                return redirect("capture:study_detail", study=name)
    problems = getattr(form, "protocol_problems", [])
    return render(request, "capture/study_create.html", {"form": form, "problems": problems},
                  status=400 if form.errors else 200)


@access.study_view(roles=access.ROLES)
def study_detail(request, study):
    """A study's participants (those the user may see), with links to what the role may do."""
    role = request.study_role
    participants = (access.visible_participants(request.user, study).select_related("arm")
                    .annotate(n_submitted=Count("administrations",
                                                filter=Q(administrations__status=m.Administration.Status.SUBMITTED)))
                    .order_by("participant_id"))
    protocol = study_protocol(study)
    return render(request, "capture/study_detail.html", {
        "study": study, "role": role, "protocol": protocol, "participants": participants,
        "show_dates": role != "monitor",
        "can_enrol": role in ("admin", "investigator"), "can_manage": access.can_manage_members(request.user, study),
        "can_export": role in KINDS_FOR_ROLE, "can_audit": role in ("admin", "investigator"),
        "can_import": role == "admin",
        "can_randomise": protocol.randomisation is not None and role in access.UNBLINDED_ROLES,
        "n_without_enrolment": sum(1 for p in participants if p.enrolled_on is None),
    })


# Readable rows of an import's change, in the order a coordinator reads them.
_IMPORT_KINDS = (("participants", gettext_lazy("Participants")), ("alerts", gettext_lazy("Their alerts")),
                 ("enrolment_dates", gettext_lazy("Enrolment dates")),
                 ("dosing_sessions", gettext_lazy("Dosing sessions")),
                 ("administrations", gettext_lazy("Administrations (forms)")),
                 ("responses", gettext_lazy("Answers")), ("facilitators", gettext_lazy("Facilitators")),
                 ("arms", gettext_lazy("Arms")), ("timepoints", gettext_lazy("Timepoints")),
                 ("study", gettext_lazy("Study")))


def _change_rows(change: dict) -> list[dict]:
    rows = []
    for kind, label in _IMPORT_KINDS:
        counts = [change[what].get(kind, 0) for what in ("created", "changed", "deleted")]
        if any(counts):
            rows.append({"label": label, "created": counts[0], "changed": counts[1], "deleted": counts[2]})
    return rows


def _import_page(request, study, form, *, token=None, change=None, problems=None, error=None, status=200):
    deleted = sum(change["deleted"].values()) if change else 0
    return render(request, "capture/study_import.html", {
        "study": study, "form": form, "token": token, "change": change,
        "rows": _change_rows(change) if change else [], "deleted": deleted, "problems": problems or [],
        "error": error, "unchanged": change is not None and not any(change[k] for k in ("created", "changed",
                                                                                          "deleted")),
        "max_mib": uploads.MAX_CSV_BYTES // 2**20}, status=status)


@access.study_view(roles=("admin",), write=True)
@require_http_methods(["GET", "POST"])
def study_import(request, study):
    """Import study files: upload, see the change (a dry run), confirm — deletions only when ticked."""
    action = request.POST.get("action", "preview") if request.method == "POST" else None
    if action is None:
        return _import_page(request, study, StudyImportForm())
    if action == "preview":
        form = StudyImportForm(request.POST, request.FILES)
        if not form.is_valid():
            return _import_page(request, study, form, status=400)
        files = form.files_by_contract_name()
        names = uploads.original_names(files)
        token = uploads.stage(files)
        try:
            data = uploads.read_staged(study, token, names)
            change = import_study(data, study.name, "web:import", user=request.user, dry_run=True).to_dict()
        except (StudyDataError, StorageError) as failed:
            uploads.discard(token)
            problems = [p.describe() for p in getattr(failed, "problems", ())][:200]
            return _import_page(request, study, form, problems=problems,
                                error=None if problems else str(failed), status=400)
        uploads.remember(request.session, study, token, change, names)
        return _import_page(request, study, StudyImportForm(), token=token, change=change)

    token = request.POST.get("token", "")
    entry = uploads.recalled(request.session, study, token)
    if entry is None:
        messages.error(request, _("That upload is not yours or is gone; upload the files again."))
        return redirect("capture:study_import", study=study.name)
    if action == "cancel":
        uploads.discard(token)
        uploads.forget(request.session, token)
        messages.info(request, _("The import was cancelled; nothing was written."))
        return redirect("capture:study_detail", study=study.name)
    if action != "import":
        raise Http404("no such step")
    confirmed = request.POST.get("confirm_deletions") == "yes"
    try:
        data = uploads.read_staged(study, token, entry["names"])
        with transaction.atomic():
            summary = import_study(data, study.name, "web:import", user=request.user, allow_deletions=confirmed)
            if uploads.fingerprint(summary.to_dict()) != entry["fingerprint"]:
                raise _ChangedMeanwhile(summary)
    except DeletionsNotAllowed as refused:
        return _import_page(request, study, StudyImportForm(), token=token, change=refused.summary.to_dict(),
                            error=_("This import deletes stored records: tick the box to confirm the "
                                    "deletions, or cancel."), status=400)
    except _ChangedMeanwhile as changed:
        change = {**changed.summary.to_dict(), "dry_run": True}
        uploads.remember(request.session, study, token, change, entry["names"])
        return _import_page(request, study, StudyImportForm(), token=token, change=change, status=409,
                            error=_("The stored data changed since the change below was computed; nothing was "
                                    "written. Check the new change and confirm again."))
    except (LookupError, StudyDataError, StorageError) as failed:
        uploads.forget(request.session, token)
        messages.error(request, str(failed))
        return redirect("capture:study_import", study=study.name)
    uploads.discard(token)
    uploads.forget(request.session, token)
    done = summary.to_dict()
    count_texts = {"created": _("created %(n)s"), "changed": _("changed %(n)s"), "deleted": _("deleted %(n)s")}
    counts = ", ".join(count_texts[what] % {"n": f"{sum(done[what].values()):,}"}
                       for what in ("created", "changed", "deleted"))
    messages.success(request, _("Imported into %(study)s: %(counts)s records (%(events)s audit events).")
                     % {"study": study.name, "counts": counts, "events": f"{summary.audit_events:,}"})
    return redirect("capture:study_detail", study=study.name)


class _ChangedMeanwhile(Exception):
    """Rolls back an import whose change is not the one the user confirmed."""

    def __init__(self, summary):
        super().__init__(summary.study)
        self.summary = summary


# -- participants --------------------------------------------------------------------------------

def _facilitators_from(form: ParticipantForm, study: m.Study, log: AuditLog) -> list[m.Facilitator]:
    chosen = list(form.cleaned_data.get("facilitators") or [])
    new_id = form.cleaned_data.get("new_facilitator")
    if new_id:
        facilitator, created = m.Facilitator.objects.get_or_create(study=study, facilitator_id=new_id)
        if created:
            log.created(facilitator, {"facilitator_id": new_id}, label=new_id)
        if facilitator not in chosen:
            chosen.append(facilitator)
    return chosen


@access.study_view(roles=("admin", "investigator"), write=True)
@require_http_methods(["GET", "POST"])
def participant_enrol(request, study):
    """Enrol a participant: id, arm (allocated in a randomised study), enrolment date, site, facilitators, identifiers."""
    protocol = study_protocol(study)
    strata = randomising.enrolment_strata(study, protocol)
    if protocol.randomisation is not None and strata is None:
        return render(request, "capture/randomisation_pending.html", {"study": study}, status=409)
    form = ParticipantForm(study=study, identifiers=protocol.identifier_fields, strata=strata,
                           initial={"enrolled_on": timezone.localdate()})
    if request.method == "POST":
        form = ParticipantForm(request.POST, study=study, identifiers=protocol.identifier_fields, strata=strata)
        if form.is_valid():
            data = form.cleaned_data
            try:
                with transaction.atomic():
                    log = recording.user_log(request.user, study)
                    enrolment = {"participant_id": data["participant_id"], "enrolled_on": data["enrolled_on"],
                                 "site": form.site_value(), "facilitators": _facilitators_from(form, study, log),
                                 "identifiers": form.identifiers()}
                    if strata is None:
                        participant = recording.enrol(study, arm=data["arm"], log=log, **enrolment)
                    else:
                        participant, _allocation = randomising.enrol_randomised(
                            study, protocol, stratum=form.stratum(), user=request.user, log=log,
                            enrol=recording.enrol,
                            covariates={k: v for k, v in form.stratum().items() if k != "site"}, **enrolment)
                    log.write()
            except recording.StorageError as error:
                form.add_error(None if strata is not None else "participant_id", str(error))
            else:
                if strata is None:
                    messages.success(request, _("%(id)s is enrolled.") % {"id": participant.participant_id})
                else:
                    messages.success(request, _("%(id)s is enrolled and allocated to %(arm)s.")
                                     % {"id": participant.participant_id,
                                        "arm": participant.arm.label or participant.arm.code})
                return redirect("capture:participant_detail", study=study.name,
                                participant=participant.participant_id)
    return render(request, "capture/participant_form.html",
                  {"study": study, "form": form, "editing": False, "randomised": strata is not None},
                  status=400 if form.errors else 200)


@access.study_view(roles=("admin", "investigator"), write=True)
@require_http_methods(["GET", "POST"])
def participant_edit(request, study, participant):
    """Change a participant's arm, enrolment date, site, facilitators or identifiers."""
    participant = access.participant_or_404(request.user, study, participant)
    protocol = study_protocol(study)
    initial = {"participant_id": participant.participant_id, "arm": participant.arm,
               "enrolled_on": participant.enrolled_on, "site": participant.site,
               "facilitators": list(participant.facilitators.all()),
               **{f"identifier_{k}": v for k, v in participant.identifiers.items()}}
    # In a randomised study the arm is the allocation's: shown, not changeable.
    strata = () if protocol.randomisation is not None else None
    form = ParticipantForm(study=study, identifiers=protocol.identifier_fields, editing=True, initial=initial,
                           strata=strata)
    if request.method == "POST":
        form = ParticipantForm(request.POST, study=study, identifiers=protocol.identifier_fields, editing=True,
                               initial=initial, strata=strata)
        if form.is_valid():
            data = form.cleaned_data
            try:
                with transaction.atomic():
                    log = recording.user_log(request.user, study)
                    recording.update_participant(participant, arm=data["arm"], enrolled_on=data["enrolled_on"],
                                                 site=data["site"].strip(),
                                                 facilitators=_facilitators_from(form, study, log),
                                                 identifiers=form.identifiers(), log=log)
                    log.write()
            except recording.StorageError as error:
                form.add_error("facilitators", str(error))
            else:
                messages.success(request, _("%(id)s is updated.") % {"id": participant.participant_id})
                return redirect("capture:participant_detail", study=study.name,
                                participant=participant.participant_id)
    return render(request, "capture/participant_form.html",
                  {"study": study, "form": form, "editing": True, "participant": participant},
                  status=400 if form.errors else 200)


@access.study_view(roles=access.ROLES)
def participant_detail(request, study, participant):
    """A participant's timeline: each timepoint's status and dates, forms, dosing sessions."""
    participant = access.participant_or_404(request.user, study, participant)
    role = request.study_role
    schedule = participant_timeline(participant)
    staff = access.can_write(request.user, study)
    return render(request, "capture/participant_detail.html", {
        "study": study, "participant": participant, "role": role, "schedule": schedule,
        "rows": schedule["rows"], "dosing_sessions": schedule["dosing_sessions"],
        "show_dates": role != "monitor",
        "identifiers": ([(schedule["protocol"].identifier_field(k).label, v) for k, v in participant.identifiers.items()]
                        if access.can_see_identifiers(request.user, study) else None),
        "facilitators": schedule["facilitators"],
        "own_facilitator": next((f.facilitator_id for f in participant.facilitators.filter(user=request.user)), None),
        "staff": staff, "can_edit": role in ("admin", "investigator"),
    })


# -- dosing sessions -----------------------------------------------------------------------------

@access.study_view(roles=("admin", "investigator", "facilitator"), write=True)
@require_http_methods(["GET", "POST"])
def dosing_record(request, study, participant):
    """Record a dosing session (date, compound, dose); a session recorded before is corrected."""
    participant = access.participant_or_404(request.user, study, participant)
    protocol = study_protocol(study)
    recorded = {d.session for d in participant.dosing_sessions.all()}
    upcoming = [t.dose for t in protocol.dosing_timepoints if t.dose is not None and t.dose.session not in recorded]
    dose = upcoming[0] if upcoming else None
    # Who is usually in the room: the participant's facilitators (the lead first).
    initial = {"date": timezone.localdate(),
               "present": ";".join(participant.facilitators.order_by("assignments__position")
                                   .values_list("facilitator_id", flat=True))}
    if dose is not None:
        initial.update(session=dose.session, compound=dose.compound, amount=dose.amount, unit=dose.unit)
    stored = participant.dosing_sessions.filter(session=request.GET.get("session") or 0).first() \
        if (request.GET.get("session") or "").isdigit() else None
    if stored is not None:  # correcting a recorded session starts from what is stored
        initial = {"session": stored.session, "date": stored.date[:10] or None, "compound": stored.compound,
                   "amount": stored.amount, "unit": stored.unit,
                   **{k: getattr(stored, k) for k in ("present", "rescue_medication", "setting_notes", "music_notes")},
                   **{k: getattr(stored, k)[-5:] for k in ("started_at", "ended_at") if getattr(stored, k)}}
    form = DosingForm(protocol=protocol, initial=initial)
    if request.method == "POST":
        form = DosingForm(request.POST, protocol=protocol)
        if form.is_valid():
            data = form.cleaned_data
            try:
                with transaction.atomic():
                    log = recording.user_log(request.user, study)
                    recording.record_dosing(participant, session=data["session"], day=data["date"],
                                            compound=data["compound"].strip(), amount=data["amount"],
                                            unit=data["unit"], log=log, record=form.day_record())
                    log.write()
            except SafetyRecordError as error:
                add_problems(form, error.problems)
            else:
                messages.success(request, _("Dosing session %(session)s of %(id)s is recorded.")
                                 % {"session": data["session"], "id": participant.participant_id})
                return redirect("capture:participant_detail", study=study.name,
                                participant=participant.participant_id)
    return render(request, "capture/dosing_form.html",
                  {"study": study, "participant": participant, "form": form, "recorded": sorted(recorded)},
                  status=400 if form.errors else 200)


# -- private links -------------------------------------------------------------------------------

@access.study_view(roles=("admin", "investigator", "facilitator"), write=True)
@require_http_methods(["GET", "POST"])
def link_create(request, study, participant):
    """Make a private link to a self-report form and show it once."""
    participant = access.participant_or_404(request.user, study, participant)
    protocol = study_protocol(study)
    form = PrivateLinkForm(protocol=protocol, initial={"form": request.GET.get("form")})
    if request.method == "POST":
        form = PrivateLinkForm(request.POST, protocol=protocol)
        if form.is_valid():
            timepoint_code, instrument_id = form.timepoint_and_instrument()
            timepoint = m.Timepoint.objects.get(study=study, code=timepoint_code)
            with transaction.atomic():
                log = recording.user_log(request.user, study)
                token, link = recording.create_private_link(participant, timepoint, instrument_id,
                                                            days=form.cleaned_data["days"], log=log,
                                                            user=request.user)
                log.write()
            url = request.build_absolute_uri(reverse("capture:private_form", kwargs={"token": token}))
            response = render(request, "capture/link_created.html", {
                "study": study, "participant": participant, "link": link, "url": url,
                "instrument": bank.get(instrument_id), "timepoint": timepoint})
            # The page holds a working link: never keep it in a cache.
            response["Cache-Control"] = "no-store"
            return response
    return render(request, "capture/link_form.html", {"study": study, "participant": participant, "form": form},
                  status=400 if form.errors else 200)


# -- questionnaire forms -------------------------------------------------------------------------

def _form_context(instrument, values, errors, **extra) -> dict:
    return {"instrument": instrument, "items": form_items(instrument, values, errors), "errors": errors,
            "needs_wording": not instrument.licence.wording_included and not any(i.text for i in instrument.items),
            **extra}


def _handle_form_post(request, *, administration_factory, instrument, log: AuditLog, rater: str,
                      on_submitted=None, mode: str = "", administered_at: str | None = None,
                      blinded: bool | None = None, valid=True) -> tuple[str, Answers, str | None]:
    """Save or submit posted answers; returns (outcome, answers, message).

    ``outcome`` is ``saved`` (a draft was stored), ``invalid`` (some answers are wrong, or, with
    ``valid`` False, the staff entry details are; the valid answers are stored as a draft),
    ``incomplete`` (too few answers to score; stored as a draft), ``submitted`` or ``already``
    (submitted before). ``mode``, ``administered_at`` and ``blinded`` are recorded on submission
    (:func:`~alliance.web.capture.recording.submit`).
    """
    action = request.POST.get("_action", "draft")
    answers = read_answers(instrument, request.POST)
    with transaction.atomic():
        administration = administration_factory()
        if administration.status == m.Administration.Status.SUBMITTED:
            return "already", answers, None
        if action == "submit" and not answers.errors and valid:
            try:
                recording.submit(administration, instrument, answers.valid, log, rater=rater, mode=mode,
                                 administered_at=administered_at, blinded=blinded)
            except recording.FormIncomplete as error:
                recording.save_answers(administration, answers.valid, log)
                log.write()
                return "incomplete", answers, str(error)
            except recording.AlreadySubmitted:
                return "already", answers, None
            if on_submitted is not None:
                on_submitted(log)
            log.write()
            return "submitted", answers, None
        recording.save_answers(administration, answers.valid, log)
        log.write()
    return ("invalid" if answers.errors or (action == "submit" and not valid) else "saved"), answers, None


def _values_for_display(stored: dict, answers: Answers | None) -> dict:
    if answers is None:
        return stored
    return {**answers.valid, **{k: v for k, v in answers.typed.items() if k in answers.errors}}


def _rating_facilitator(request, participant: m.Participant, assigned: list[m.Facilitator],
                        wanted: str | None) -> m.Facilitator | None:
    """Whose rating a facilitator-rated form is: ``wanted`` (a facilitator id), else the user's own.

    ``None`` when nobody is chosen yet, or ``wanted`` is not one of the participant's facilitators
    (the entry form then says which are). A user whose role is facilitator rates only as
    themselves: a colleague's rating is refused (403).
    """
    own = next((f for f in assigned if f.user_id == request.user.pk), None)
    wanted = (wanted or "").strip()
    chosen = next((f for f in assigned if f.facilitator_id == wanted), None) if wanted else own
    if request.study_role == "facilitator" and wanted and chosen is not own:
        mine = own.facilitator_id if own is not None else _("none")
        raise _NotYourRating(_("A facilitator enters only their own rating: you are %(own)s, and this is the "
                               "rating of %(other)s of %(participant)s. %(other)s enters it, or an investigator "
                               "enters it for them.")
                             % {"own": mine, "other": wanted, "participant": participant.participant_id})
    return chosen


class _NotYourRating(Exception):
    """A facilitator asked for a colleague's rating (shown on the 403 page)."""


@access.study_view(roles=("admin", "investigator", "facilitator"), write=True)
@require_http_methods(["GET", "POST"])
def staff_form(request, study, participant, timepoint, instrument):
    """Staff enter a form for a participant: a clinician rating, or a self-report taken on paper or a tablet.

    Above the items: how it was taken, the assessment date and time, and for a clinician rating
    the rater and whether they were blind (:class:`~alliance.web.capture.entry.StaffEntryForm`).
    A facilitator-rated form (``wai_sr_t``) is one per facilitator: the page asks whose rating it
    is (``?facilitator=F1`` preselects it; a facilitator gets themselves), and a user whose role
    is facilitator may enter only their own.
    """
    participant = access.participant_or_404(request.user, study, participant)
    timepoint = m.Timepoint.objects.filter(study=study, code=timepoint).first()
    if timepoint is None or instrument not in timepoint.instruments:
        raise Http404("this form is not given at this timepoint")
    definition = form_instrument(instrument)
    clinician = definition.rater == "clinician"
    back = reverse("capture:participant_detail", kwargs={"study": study.name,
                                                         "participant": participant.participant_id})
    page = {"study": study, "participant": participant, "timepoint": timepoint, "back": back}
    options = {"clinician": clinician}
    facilitator = None
    if definition.rater == "facilitator":
        assigned = list(participant.facilitators.order_by("assignments__position"))
        wanted = request.POST.get("entry-rater") if request.method == "POST" else request.GET.get("facilitator")
        try:
            facilitator = _rating_facilitator(request, participant, assigned, wanted)
        except _NotYourRating as refused:
            return render(request, "403.html", {"reason": str(refused)}, status=403)
        choices = [f for f in assigned if f is facilitator] if request.study_role == "facilitator" else assigned
        options["facilitators"] = [f.facilitator_id for f in choices]
        page["rating"] = True
        page["facilitator"] = facilitator
        if facilitator is not None:
            page["again"] = f"{request.path}?{urlencode({'facilitator': facilitator.facilitator_id})}"
    existing = (None if page.get("rating") and facilitator is None else
                m.Administration.objects.filter(participant=participant, timepoint=timepoint, instrument=instrument,
                                                facilitator=facilitator).first())
    if request.method == "GET":
        if existing is not None and existing.status == m.Administration.Status.SUBMITTED:
            return render(request, "capture/form_submitted.html", {**page, "administration": existing,
                                                                   "instrument": definition})
        initial = StaffEntryForm.initial_for(request.user, clinician,
                                             facilitator.facilitator_id if facilitator is not None else None)
        page["entry"] = StaffEntryForm(initial=initial, **options)
        context = _form_context(definition, recording.stored_answers(existing) if existing else {}, {}, **page)
        return render(request, "capture/form_page.html", {**context, "staff": True})
    entry = StaffEntryForm(request.POST, **options)
    valid = entry.is_valid()
    page["entry"] = entry
    if page.get("rating") and facilitator is None:
        # Whose rating it is decides which form the answers belong to: nothing is saved without it.
        answers = read_answers(definition, request.POST)
        return _form_response(request, "invalid", answers, None, definition, page, staff=True)
    details = {"mode": entry.cleaned_data["mode"], "administered_at": entry.administered_at(),
               "blinded": entry.cleaned_data.get("blinded")} if valid else {}
    log = recording.user_log(request.user, study)
    outcome, answers, message = _handle_form_post(
        request, instrument=definition, log=log, valid=valid,
        rater=entry.cleaned_data.get("rater", "") if valid else "",
        administration_factory=lambda: recording.open_administration(participant, timepoint, instrument, log,
                                                                     facilitator=facilitator),
        **details)
    return _form_response(request, outcome, answers, message, definition, page, staff=True)


def _form_response(request, outcome, answers, message, definition, page, *, staff: bool, link=None):
    if request.headers.get("HX-Request") and request.POST.get("_action") == "autosave":
        return render(request, "capture/_autosave_status.html",
                      {"outcome": outcome, "errors": answers.errors, "at": timezone.localtime()})
    if outcome == "already":
        if staff:
            if page.get("facilitator") is not None:
                messages.info(request, _("%(name)s of %(facilitator)s at %(label)s was submitted already.")
                              % {"name": definition.short_name, "facilitator": page["facilitator"].facilitator_id,
                                 "label": page["timepoint"].label})
                return redirect(page["back"])
            messages.info(request, _("%(name)s at %(label)s was submitted already.")
                          % {"name": definition.short_name, "label": page["timepoint"].label})
            return redirect(page["back"])
        return render(request, "capture/link_closed.html", {"reason": "used", **page}, status=410)
    if outcome == "submitted":
        if staff:
            name = definition.short_name
            if page.get("facilitator") is not None:
                name = _("%(name)s rating by %(facilitator)s") % {"name": name,
                                                                  "facilitator": page["facilitator"].facilitator_id}
            messages.success(request, _("%(name)s of %(id)s at %(label)s is submitted and scored.")
                             % {"name": name, "id": page["participant"].participant_id,
                                "label": page["timepoint"].label})
            return redirect(page["back"])
        return render(request, "capture/form_thanks.html", {"instrument": definition, **page})
    if outcome == "saved" and request.POST.get("_action") != "submit":
        messages.success(request, _("Your answers are saved as a draft. You can come back to finish."))
        return redirect(page.get("again") or request.path)
    stored = {} if page.get("rating") and page.get("facilitator") is None else recording.stored_answers(
        m.Administration.objects.filter(participant=page["participant"], timepoint=page["timepoint"],
                                        instrument=definition.id, facilitator=page.get("facilitator")).first()
        or m.Administration())
    context = _form_context(definition, {**stored, **_values_for_display({}, answers)}, answers.errors,
                            message=message, **page)
    if outcome == "incomplete":
        # The error summary links each unanswered question, so it can be reached from there.
        context["unanswered"] = [item for item in context["items"] if item.value == ""]
    return render(request, "capture/form_page.html", {**context, "staff": staff}, status=400)


def _closed_link(request, link: m.PrivateLink | None, page: dict):
    """The page for a link that no longer opens its form, or ``None`` when it does."""
    if link is None:
        return render(request, "capture/link_closed.html", {"reason": "unknown"}, status=404)
    administration = m.Administration.objects.filter(participant=link.participant, timepoint=link.timepoint,
                                                     instrument=link.instrument, facilitator=None).first()
    if link.revoked_at is not None:
        return render(request, "capture/link_closed.html", {"reason": "revoked", **page}, status=410)
    if link.used_at is not None or (administration is not None
                                    and administration.status == m.Administration.Status.SUBMITTED):
        return render(request, "capture/link_closed.html", {"reason": "used", **page}, status=410)
    if link.expires_at <= timezone.now():
        return render(request, "capture/link_closed.html", {"reason": "expired", **page}, status=410)
    return None


@require_http_methods(["GET", "POST"])
def private_form(request, token):
    """A participant's self-report through a private link: no account, single use, expiring."""
    link = recording.find_private_link(token)
    page = {"private": True}
    closed = _closed_link(request, link, page)
    if closed is not None:
        closed["Cache-Control"] = "no-store"
        return closed
    participant, timepoint = link.participant, link.timepoint
    definition = form_instrument(link.instrument)
    if definition.rater != "participant":  # a rating by staff is never a participant's form
        return render(request, "capture/link_closed.html", {"reason": "unknown"}, status=404)
    page.update(participant=participant, timepoint=timepoint, study=participant.study, back=None)
    if request.method == "GET":
        existing = m.Administration.objects.filter(participant=participant, timepoint=timepoint,
                                                   instrument=link.instrument, facilitator=None).first()
        context = _form_context(definition, recording.stored_answers(existing) if existing else {}, {}, **page)
        response = render(request, "capture/form_page.html", {**context, "staff": False, "expires_at": link.expires_at})
    else:
        log = recording.link_log(link)
        outcome, answers, message = _handle_form_post(
            request, instrument=definition, log=log, rater="",
            administration_factory=lambda: recording.open_administration(participant, timepoint, link.instrument, log),
            on_submitted=lambda log: recording.mark_link_used(link, log), mode=m.Administration.Mode.LINK)
        response = _form_response(request, outcome, answers, message, definition, page, staff=False, link=link)
    response["Cache-Control"] = "no-store"
    return response


# -- exports and the audit trail -----------------------------------------------------------------

@access.study_view(roles=("admin", "investigator", "monitor"))
def exports(request, study):
    """The exports the user's role may download."""
    kinds = [(kind, KINDS[kind]) for kind in KINDS_FOR_ROLE[request.study_role]]
    return render(request, "capture/exports.html", {"study": study, "kinds": kinds})


@access.study_view(roles=("admin", "investigator", "monitor"))
@require_POST
def export_download(request, study, kind):
    """Download one export as a zip, or the DSMB report as a PDF (POST, since it is recorded in the audit trail)."""
    if kind not in KINDS:
        raise Http404("no such export")
    if kind not in KINDS_FOR_ROLE[request.study_role]:
        raise PermissionDenied("your role may download only de-identified exports")
    log = recording.user_log(request.user, study)
    try:
        filename, content = export_zip(study, kind, log)
    except ExportNotPossible as refused:
        messages.error(request, str(refused))
        return redirect("capture:exports", study=study.name)
    response = HttpResponse(content, content_type="application/pdf" if filename.endswith(".pdf") else "application/zip")
    response["Content-Disposition"] = content_disposition_header(True, filename)
    response["Cache-Control"] = "no-store"
    return response
