"""The audit page of a study: its events in words, filtered, paged, and exported as CSV.

:func:`audit_trail` serves ``studies/<study>/audit/`` (URL name ``capture:audit_trail``: the page
belongs to the study's pages). GET shows the events, newest first, filtered by the query
(:class:`~alliance.web.audit.forms.AuditFilterForm`: participant, user, action, date range, page
size); POST with the same fields downloads the filtered events as CSV
(:mod:`alliance.web.audit.export`) and records that download as an ``export`` event, as every
other download of study data is.

Who may open it is decided where the URL is declared: the capture app wraps the view in
:func:`alliance.web.accounts.access.study_view` with :data:`ROLES` (the audit app imports no other
app). The view refuses a request that did not pass that guard, so wiring it without the guard
fails closed. Monitors are not among :data:`ROLES`: the trail holds identifiers and calendar dates
(an identifier field's value, ``administered_at``, a dosing date), which a de-identified viewer must
not see.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db import transaction
from django.db.models import Max
from django.http import StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.http import content_disposition_header
from django.views.decorators.http import require_http_methods

from .display import action_label, actor_label, change_rows, model_label
from .export import csv_lines
from .forms import DEFAULT_PAGE_SIZE, AuditFilterForm
from .log import AuditLog
from .models import AuditEvent

# The study roles that see the audit trail: those that see all of the study's data, identifiers included.
ROLES = ("admin", "investigator")


@require_http_methods(["GET", "POST"])
def audit_trail(request, study):
    """A study's audit trail: GET the page, POST the filtered events as CSV (see the module docstring).

    Parameters
    ----------
    request : HttpRequest
        Passed through ``study_view(roles=ROLES)``, which sets ``request.study_role``.
    study : capture.Study

    Returns
    -------
    HttpResponse
        The page (400 with the form's errors for invalid filters), or the CSV download (the
        filtered events oldest first, :mod:`alliance.web.audit.export`).
    """
    if getattr(request, "study", None) is not study or getattr(request, "study_role", None) not in ROLES:
        raise PermissionDenied("the audit trail is for the study's administrators and investigators")
    trail = AuditEvent.objects.filter(study=study)
    actors = trail.order_by("actor").values_list("actor", flat=True).distinct()
    form = AuditFilterForm(request.POST if request.method == "POST" else request.GET or None, actors=list(actors))
    if form.is_bound and not form.is_valid():
        return render(request, "audit/audit_trail.html", {"study": study, "form": form, "page": None}, status=400)
    events = form.events(trail) if form.is_bound else trail
    if request.method == "POST":
        return _download(request, study, form, events)
    size = form.page_size() if form.is_bound else DEFAULT_PAGE_SIZE
    page = Paginator(events.order_by("-at", "-id"), size).get_page(request.GET.get("page"))
    rows = [{"event": event, "action": action_label(event.action), "actor": actor_label(event.actor),
             "model": model_label(event.model), "changes": change_rows(event.action, event.old, event.new)}
            for event in page]
    query = request.GET.copy()
    query.pop("page", None)
    return render(request, "audit/audit_trail.html", {
        "study": study, "form": form, "page": page, "rows": rows, "query": query.urlencode(),
        "filters": form.filters() if form.is_bound else {},  # as text: the export's POST parses them again
    })


def _download(request, study, form: AuditFilterForm, events) -> StreamingHttpResponse:
    """Record the export, then stream the events it covers (those up to the last id seen when it was recorded)."""
    log = AuditLog(actor=f"user:{request.user.get_username()}", user=request.user, study=study)
    with transaction.atomic():
        last = events.aggregate(last=Max("id"))["last"] or 0
        covered = events.filter(id__lte=last)
        log.exported(study, {"format": "audit-csv", "events": covered.count(), "filters": form.filters()},
                     label=f"{study.name} audit trail export")
        log.write()
    filename = f"{study.name}-audit-{timezone.localtime():%Y%m%d-%H%M%S}.csv"
    response = StreamingHttpResponse(csv_lines(covered.order_by("at", "id")), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = content_disposition_header(True, filename)
    response["Cache-Control"] = "no-store"
    return response
