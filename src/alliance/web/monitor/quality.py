"""The data-quality page of a study: the findings of :func:`alliance.monitoring.quality.check_quality`.

The page runs the same core function as ``alliance quality --study NAME`` on the stored study
(:func:`alliance.web.capture.storage.export_study`: submitted forms only), so the page and the
command list the same findings. Who may open it: admins, investigators and monitors (it covers
every participant, so not a facilitator, who sees only their own). A monitor sees it de-identified
(:meth:`~alliance.monitoring.quality.QualityReport.deidentified`): no calendar dates in values or
messages, and no identifier, which no rule reads.

Each finding links to the record: the participant's page, and for a clinician-rated form the
form's page (which a monitor may not open, so a monitor gets the participant's page only).
``?severity=`` and ``?rule=`` filter the table; the counts per rule are of the whole report. A GET
never writes.
"""

from __future__ import annotations

from django.db import Error as DatabaseError
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET

from alliance import instruments as bank
from alliance.monitoring.quality import RULES, check_quality
from alliance.protocol.quality import SEVERITIES
from alliance.web.accounts import access
from alliance.web.capture.storage import StorageError, export_study

QUALITY_ROLES = ("admin", "investigator", "monitor")
# Severity in words on every row (never colour alone).
SEVERITY_LABELS = {"error": gettext_lazy("Error"), "warning": gettext_lazy("Warning"), "info": gettext_lazy("Info")}


@access.study_view(roles=QUALITY_ROLES)
@require_GET
def quality_page(request, study):
    """Every data-quality finding of the study, most severe first, filtered by severity and rule."""
    role = request.study_role
    deidentified = not access.can_see_identifiers(request.user, study)
    context = {"study": study, "role": role, "deidentified": deidentified, "severities": [(s, SEVERITY_LABELS[s]) for s in SEVERITIES]}
    try:
        stored = export_study(study.name)
    except (StorageError, DatabaseError) as error:
        return render(request, "monitor/quality.html", {**context, "problem": str(error)})
    report = check_quality(stored)
    if deidentified:
        report = report.deidentified()
    severity = request.GET.get("severity") or None
    rule = request.GET.get("rule") or None
    severity = severity if severity in SEVERITIES else None
    rule = rule if rule in report.rules else None
    shown = report.filtered(severity=severity, rule=rule)
    protocol = stored.protocol
    custom = {r.id: r for r in protocol.quality.rules}
    rules = [{"id": rule_id, "count": n,
              "title": RULES[rule_id].title if rule_id in RULES else custom[rule_id].message,
              "severity": RULES[rule_id].severity if rule_id in RULES else custom[rule_id].severity,
              "source": RULES[rule_id].source if rule_id in RULES else _("this study's protocol (quality:)")}
             for rule_id, n in report.counts.items()]
    for entry in rules:
        entry["severity_label"] = SEVERITY_LABELS[entry["severity"]]
    labels = {t.id: t.label for t in protocol.timepoints} | {d.id: d.label for d in protocol.derived}
    can_open_forms = role != "monitor"
    rows = []
    for finding in shown.findings:
        record = reverse("capture:participant_detail", kwargs={"study": study.name,
                                                               "participant": finding.participant_id})
        form = None
        if (can_open_forms and finding.instrument and finding.timepoint in protocol.timepoint_ids
                and bank.get(finding.instrument).rater == "clinician"):
            form = reverse("capture:staff_form", kwargs={"study": study.name, "participant": finding.participant_id,
                                                         "timepoint": finding.timepoint,
                                                         "instrument": finding.instrument})
        rows.append({"finding": finding, "record": record, "form": form,
                     "severity_label": SEVERITY_LABELS[finding.severity],
                     "timepoint": labels.get(finding.timepoint, finding.timepoint)})
    return render(request, "monitor/quality.html", {
        **context, "report": report, "rows": rows, "rules": rules, "severity": severity, "rule": rule,
        "found_rules": [r for r in rules if r["count"]], "clean_rules": [r for r in rules if not r["count"]],
        "severity_counts": report.severity_counts, "filtered": severity is not None or rule is not None,
    })
