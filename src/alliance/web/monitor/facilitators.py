"""The per-facilitator view (issue 14, item 5): each facilitator's participants' alliance against the study's.

Two pages:

``monitor:facilitators`` (``studies/<study>/facilitators/``)
    Every facilitator of the study (``capture.Facilitator``; participants through
    ``capture.FacilitatorAssignment``) with their number of participants and, at each timepoint
    that gives the alliance instrument, the median and n of their participants' alliance total
    against the study's median and quartiles.
``monitor:facilitator`` (``studies/<study>/facilitators/<facilitator>/``, ``Facilitator.facilitator_id``)
    One facilitator: a chart of the study's distribution at each alliance timepoint (a box from
    the lower to the upper quartile, the median) with each of their participants' scores as points
    of their own shape, the same numbers as a table, each participant linking to their dashboard;
    and the facilitator's row of the facilitator-effects analysis of the latest analysis run
    (:mod:`alliance.analysis.facilitators`): their conditional mode (the estimated facilitator
    effect on the outcome) and conditional SD, n, the ICCs of alliance and outcome, and the
    analysis's notes.

The alliance measure is the analysis plan's (``roles`` of the protocol's analysis plan, through
:func:`alliance.web.monitor.dashboards.dashboard_roles`): its instrument's first scale, the total;
no instrument or timepoint is named here. The study's distribution is over every participant of the
study with a score at that timepoint (also for a facilitator, who sees it as an aggregate only). A
participant with two facilitators counts for each of them.

Quartiles are numpy's default (linear interpolation between order statistics, R's ``quantile``
type 7; Hyndman & Fan 1996): for n values sorted x₁ ≤ … ≤ xₙ, the p-quantile is
x_⌊h⌋ + (h − ⌊h⌋)(x_⌊h⌋₊₁ − x_⌊h⌋) with h = (n − 1)p + 1.

Who sees what (:mod:`alliance.web.accounts.access`): admins, investigators and monitors every
facilitator; a facilitator only the facilitators linked to their account, and 404 for another
facilitator's page (as for another facilitator's participant: they do not learn that it exists).
The pages show no dates of participants, so monitors see the same numbers. The facilitator-effects
summary is part of the study's analysis, shown to the roles that may read its report (admins,
investigators, monitors), not to facilitators. Each page is a fixed number of queries whatever the
number of participants, and a GET never writes.

References
----------
Hyndman RJ, Fan Y (1996). Sample quantiles in statistical packages. Am Stat 50(4):361-365.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from django.http import Http404
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from alliance import instruments as bank
from alliance.analysis import Results
from alliance.report import apa
from alliance.report.labels import Labels
from alliance.web.accounts import access
from alliance.web.capture.models import Facilitator, FacilitatorAssignment, Study
from alliance.web.capture.queries import study_protocol, study_scores

from . import charts, dashboards

ALL = access.ROLES
# Who sees the facilitator-effects summary: those who may read the analysis report (views.REPORT_ROLES).
EFFECT_ROLES = ("admin", "investigator", "monitor")
NBSP = "\u00a0"  # "n = 12" and "[0.00, 1.00]" stay on one line in a narrow table cell


def spread(values) -> charts.Spread | None:
    """Median, lower and upper quartile and n of some scores (``None`` when there are none).

    Parameters
    ----------
    values : array-like of float
        Missing values (NaN) are left out.

    Returns
    -------
    charts.Spread or None

    Notes
    -----
    Quartiles by linear interpolation between order statistics (numpy's default, R's type 7;
    Hyndman & Fan 1996): the p-quantile of x₁ ≤ … ≤ xₙ is x_⌊h⌋ + (h − ⌊h⌋)(x_⌊h⌋₊₁ − x_⌊h⌋),
    h = (n − 1)p + 1.

    Examples
    --------
    >>> spread([24, 30, 36, 42, 48, 54])   # h = 2.25: 30 + 0.25 × 6; h = 4.75: 42 + 0.75 × 6
    Spread(median=39.0, q1=31.5, q3=46.5, n=6)
    """
    values = np.asarray(values, dtype=float)
    values = values[~np.isnan(values)]
    if not len(values):
        return None
    q1, median, q3 = (float(v) for v in np.percentile(values, [25, 50, 75]))
    return charts.Spread(median=median, q1=q1, q3=q3, n=int(len(values)))


def _number(value: float | None) -> str:
    return "–" if value is None else f"{round(value, 2):g}"


def _position(median: float | None, study: charts.Spread | None) -> str:
    """Where a facilitator's median lies in the study's distribution, in words (never colour alone)."""
    if median is None or study is None:
        return ""
    if median < study.q1:
        return _("below the lower quartile")
    if median > study.q3:
        return _("above the upper quartile")
    return _("within the quartiles")


def visible_facilitators(user, study: Study):
    """The facilitators of a study the user may see: all for admins, investigators and monitors;
    for a facilitator those linked to their account; none for anyone else."""
    role = access.role_in(user, study)
    facilitators = Facilitator.objects.filter(study=study).order_by("facilitator_id")
    if role in access.WHOLE_STUDY_ROLES:
        return facilitators
    if role == "facilitator":
        return facilitators.filter(user=user)
    return facilitators.none()


def alliance_data(study: Study, facilitators) -> dict:
    """The alliance total at each alliance timepoint: the study's spread, and per facilitator theirs.

    Parameters
    ----------
    study : Study
    facilitators : QuerySet of Facilitator
        Those to describe (:func:`visible_facilitators`).

    Returns
    -------
    dict
        ``measure`` (e.g. ``WAI-SR total``), ``scale`` (its ``ScaleDefinition``), ``timepoints``
        (the protocol's timepoints that give the alliance instrument), ``axis`` (those and the
        dosing timepoints, in protocol order, for the chart), ``values`` (participant id →
        timepoint → score), ``study`` (timepoint → Spread or None), ``facilitators``: list of
        ``{"facilitator", "participants"`` (list of ``{"participant_id", "arm", "position"}``),
        ``"spreads"`` (timepoint → Spread or None)``}``.
    """
    protocol = study_protocol(study)
    roles = dashboards.dashboard_roles(protocol)
    instrument, scale_id = roles.alliance_instrument, roles.alliance_scales[0]
    definition = bank.get(instrument)
    scale = next(s for s in definition.scales if s.id == scale_id)
    timepoints = [t for t in protocol.timepoints if instrument in t.instruments]
    given = {t.id for t in timepoints}
    scores = study_scores(study)
    scores = scores[(scores["instrument"] == instrument) & (scores["scale"] == scale_id)
                    & scores["timepoint"].isin(given)]
    values: dict[str, dict[str, float]] = {}
    for pid, timepoint, value in scores[["participant_id", "timepoint", "value"]].itertuples(index=False):
        values.setdefault(pid, {})[timepoint] = value
    whole = {t.id: spread(scores.loc[scores["timepoint"] == t.id, "value"]) for t in timepoints}
    chosen = list(facilitators)
    members: dict[int, list[dict]] = {f.pk: [] for f in chosen}
    assignments = (FacilitatorAssignment.objects.filter(facilitator__in=chosen)
                   .order_by("participant__participant_id")
                   .values_list("facilitator_id", "participant__participant_id", "participant__arm__code",
                                "participant__arm__label", "position"))
    for facilitator_pk, pid, arm_code, arm_label, position in assignments:
        members[facilitator_pk].append({"participant_id": pid, "arm": arm_label or arm_code, "position": position})
    out = []
    for facilitator in chosen:
        ids = [p["participant_id"] for p in members[facilitator.pk]]
        spreads = {t.id: spread([values[pid][t.id] for pid in ids if t.id in values.get(pid, {})])
                   for t in timepoints}
        out.append({"facilitator": facilitator, "participants": members[facilitator.pk], "spreads": spreads})
    return {"protocol": protocol, "measure": f"{definition.short_name} {scale.id}", "scale": scale,
            "timepoints": timepoints,
            "axis": [t for t in protocol.timepoints if t.id in given or t.kind == "dosing"],
            "values": values, "study": whole, "facilitators": out}


def _study_cells(data: dict) -> list[dict]:
    return [{"label": t.label, "spread": data["study"][t.id],
             "text": _spread_text(data["study"][t.id])} for t in data["timepoints"]]


def _spread_text(value: charts.Spread | None) -> str:
    if value is None:
        return "–"
    return f"{_number(value.median)} [{_number(value.q1)}–{_number(value.q3)}], n{NBSP}={NBSP}{value.n}"


@access.study_view(roles=ALL)
@require_GET
def facilitator_list(request, study):
    """Every facilitator the user may see: participants, and their alliance against the study's."""
    data = alliance_data(study, visible_facilitators(request.user, study))
    rows = []
    for entry in data["facilitators"]:
        cells = []
        for t in data["timepoints"]:
            mine = entry["spreads"][t.id]
            median = None if mine is None else mine.median
            cells.append({"median": _number(median), "n": 0 if mine is None else mine.n,
                          "position": _position(median, data["study"][t.id])})
        rows.append({"facilitator": entry["facilitator"], "n_participants": len(entry["participants"]),
                     "cells": cells})
    return render(request, "monitor/facilitator_list.html", {
        "study": study, "role": request.study_role, "measure": data["measure"], "scale": data["scale"],
        "timepoints": data["timepoints"], "study_cells": _study_cells(data), "rows": rows,
        "n_study": len(data["values"]),
    })


@access.study_view(roles=ALL)
@require_GET
def facilitator_page(request, study, facilitator):
    """One facilitator: their participants' alliance against the study's distribution, and their
    row of the latest facilitator-effects analysis."""
    row = visible_facilitators(request.user, study).filter(facilitator_id=facilitator).first()
    if row is None:  # also another facilitator's, for a facilitator: they do not learn that it exists
        raise Http404("no such facilitator")
    data = alliance_data(study, [row])
    entry = data["facilitators"][0]
    facilitator = entry["facilitator"]
    participants = entry["participants"]
    timepoints = data["timepoints"]
    for k, participant in enumerate(participants):
        participant["symbol"] = charts.marker_symbol(k)
        participant["dashboard"] = reverse("monitor:participant", kwargs={
            "study": study.name, "participant": participant["participant_id"]})
        mine = data["values"].get(participant["participant_id"], {})
        participant["cells"] = [_number(mine.get(t.id)) for t in timepoints]
    own = [{"label": t.label, "text": "–" if (s := entry["spreads"][t.id]) is None
            else f"{_number(s.median)} (n{NBSP}={NBSP}{s.n})",
            "position": _position(None if s is None else s.median, data["study"][t.id])} for t in timepoints]
    context = {
        "study": study, "role": request.study_role, "facilitator": facilitator, "measure": data["measure"],
        "timepoints": timepoints, "participants": participants, "study_cells": _study_cells(data),
        "own_cells": own, "chart": _chart(data, facilitator.facilitator_id, participants),
        "shows_effects": request.study_role in EFFECT_ROLES,
        "n_with_scores": sum(1 for p in participants if data["values"].get(p["participant_id"])),
    }
    if context["shows_effects"]:
        context["effects"] = facilitator_effects(study, facilitator.facilitator_id, Labels(data["protocol"]))
    return render(request, "monitor/facilitator.html", context)


def _chart(data: dict, facilitator_id: str, participants: list[dict]) -> charts.Chart:
    axis = data["axis"]
    scale = data["scale"]
    spreads = [data["study"].get(t.id) for t in axis]
    points = [charts.Series(p["participant_id"], [data["values"].get(p["participant_id"], {}).get(t.id)
                                                 for t in axis])
              for p in participants]
    title = f"{data['measure']}: the study's median and quartiles, and {facilitator_id}'s participants"
    return charts.distribution_chart(
        [t.label for t in axis], spreads, points, caption=title, y_range=scale.range, y_label=data["measure"],
        spread_label="study: median and quartiles", markers=[i for i, t in enumerate(axis) if t.kind == "dosing"],
        marker_label="dosing session")


def _sentence(note: str) -> str:
    note = note.strip()
    if not note:
        return note
    return note[0].upper() + note[1:] + ("" if note.endswith((".", "!", "?")) else ".")


def facilitator_effects(study: Study, facilitator_id: str, labels: Labels) -> dict:
    """This facilitator's row of the facilitator-effects analysis of the latest successful run.

    Parameters
    ----------
    study : Study
    facilitator_id : str
    labels : Labels
        For the measures' names.

    Returns
    -------
    dict
        ``state``: ``"none"`` (no run has finished without error; ``failed`` the latest failed
        run, if any), ``"problem"`` (results.json cannot be read; ``problem`` says why),
        ``"absent"`` (the run has no facilitator-effects entries: the plan has no such analysis,
        or results.json predates it) or ``"done"``; with ``run``, ``rows`` (per alliance ×
        outcome entry: ``alliance``, ``outcome``, ``skipped`` or this facilitator's ``effect``
        (condval), ``sd`` (condsd), ``interval`` (condval ± 1.96 condsd, as the report's
        caterpillar plot), ``n``, ``found`` (whether the model had this facilitator), and
        ``icc_alliance``, ``icc_outcome``, ``n_total``, ``n_facilitators``, ``singular``), and
        ``notes``: the analysis's notes as sentences, each once.
    """
    latest = dashboards.latest_analysis(study)
    if latest is None or latest["run"] is None:
        return {"state": "none", "failed": None if latest is None else latest["failed"]}
    run = latest["run"]
    if latest.get("problem"):
        return {"state": "problem", "run": run, "problem": latest["problem"]}
    path = Path(run.output_dir) / "results.json"
    try:
        results = Results.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError) as error:  # said on the page, not hidden
        return {"state": "problem", "run": run, "problem": f"{path} cannot be read: {error}"}
    if not results.facilitator_effects:
        return {"state": "absent", "run": run}
    rows, notes = [], []
    for entry in results.facilitator_effects:
        row = {"alliance": labels.measure(entry.get("x", "")), "outcome": labels.measure(entry.get("y", ""))}
        if "skipped" in entry:
            rows.append({**row, "skipped": entry["skipped"]})
            continue
        effect = next((e for e in entry.get("effects", ()) if e.get("facilitator") == facilitator_id), None)
        row.update({
            "found": effect is not None,
            "icc_alliance": apa.proportion(entry["icc_x"]["icc"]), "icc_outcome": apa.proportion(entry["icc_y"]["icc"]),
            "n_total": entry["n"], "n_facilitators": entry["n_facilitators"],
            "singular": bool(entry.get("association", {}).get("singular")),
        })
        if effect is not None:
            row.update({"effect": apa.number(effect["condval"]), "sd": apa.number(effect["condsd"]),
                        "interval": apa.ci(effect["condval"] - 1.96 * effect["condsd"],
                                           effect["condval"] + 1.96 * effect["condsd"]).replace(" ", NBSP),
                        "n": effect["n"]})
        rows.append(row)
        for note in entry.get("notes", ()):
            if _sentence(note) not in notes:
                notes.append(_sentence(note))
    return {"state": "done", "run": run, "rows": rows, "notes": notes}
