"""What the dashboards show, gathered from the database: scores over the protocol's timepoints,
acute measures per dosing session, completeness, cohort trajectories and the latest analysis.

Which measures are alliance, acute and outcome comes from the protocol's analysis plan
(``roles`` of the protocol's analysis plan), so a protocol with other instruments
gets dashboards of its own measures; nothing here names an instrument or a timepoint.

Every page is built from a fixed number of queries whatever the number of participants and
timepoints (issue 14; ``tests/web/test_dashboard_queries.py``): the visible participants are a
QuerySet used as a subquery, never a list of ids; each kind of row (timeline inputs, scores, alerts)
is one query for the whole study; the study dashboard reads two scores out of the stored JSON in
SQL, counts its open alerts per severity in SQL and reads only the ones it lists (:class:`AlertRows`).
Goals for a study of 1,000 participants × 20 timepoints on SQLite (``benchmarks/bench_dashboard.py``):
p95 under 300 ms for the study dashboard, under 50 ms for the participant dashboard.

Nothing here writes to the database: alerts are stored when data change and by the scheduled job
(:mod:`alliance.web.monitor.alerting`); the overdue and missed alerts that have become due since
the job last ran are computed on the fly (:func:`alliance.web.monitor.alerting.time_alerts_now`)
and shown as *not stored yet*.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
from django.conf import settings
from django.db.models import Count
from django.utils import timezone
from scipy import stats

from alliance import instruments as bank
from alliance.analysis import Results, resolve_plan
from alliance.monitoring.alerts import RULE_TYPES
from alliance.monitoring.schedule import STATUSES
from alliance.protocol import Measure, Protocol
from alliance.report import tables
from alliance.report.labels import Labels
from alliance.web.capture.models import Participant, Study
from alliance.web.capture.queries import participant_scores, study_protocol, study_scores
from alliance.web.capture.timelines import participant_timeline

from . import alerting, charts
from .alerting import study_timelines, time_alerts_now
from .course import participant_course
from .models import Alert, AnalysisRun

OPEN_ALERTS_SHOWN = 25  # the study dashboard lists the first 25 open alerts (monitor/study_dashboard.html)
REPORT_FILES = {"report.html": "text/html; charset=utf-8", "report.pdf": "application/pdf",
                "results.json": "application/json"}
# An ISO date, with the time of day and offset that may follow it (a date-time's date is its date).
_ISO_DATE = re.compile(r"\b(\d{4})-(\d{2})-(\d{2})(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?(?!\d)")
# Dates written otherwise, as people type them in notes: 3 March 2024, March 3rd, 2024, Mar 2024, 03/03/2024
# (any case, but May only capitalised: "may 2 people come" is no date).
_MONTH = (r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|(?-i:May)|june?|july?|aug(?:ust)?|"
          r"sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?")
_WRITTEN_DATE = re.compile(
    rf"\b(?:\d{{1,2}}(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTH}(?:,?\s+\d{{4}})?"
    rf"|{_MONTH}\s+\d{{1,2}}(?:st|nd|rd|th)?(?:,?\s+\d{{4}})?(?!\d)"
    rf"|{_MONTH}\s+\d{{4}}"
    r"|\d{1,2}[./]\d{1,2}[./]\d{2,4})(?![\w/])", re.IGNORECASE)


@dataclass(frozen=True)
class Roles:
    """The measures the dashboards plot, from the analysis plan's roles."""

    alliance_instrument: str
    alliance_scales: tuple[str, ...]
    outcome_instrument: str
    outcome_scale: str
    acute_measures: tuple[tuple[str, str], ...]   # (instrument, scale), the first scale of each instrument
    dosing_timepoints: tuple[str, ...]             # where the acute measures are taken, in order


_ROLES: dict[str, Roles] = {}


def dashboard_roles(protocol: Protocol) -> Roles:
    """The alliance, outcome and acute measures of a protocol's analysis plan (cached per protocol)."""
    if protocol.sha256 in _ROLES:
        return _ROLES[protocol.sha256]
    resolved = resolve_plan(protocol.analysis, protocol)
    outcome = Measure.parse(resolved.outcome_measure, timepoint="forbidden")
    outcome_instrument, outcome_scale = outcome.instrument, outcome.scale
    acute: dict[str, str] = {}
    for name in resolved.acute_measures:
        measure = Measure.parse(name)
        acute.setdefault(measure.instrument, measure.scale)
    if resolved.acute_timepoint in protocol.derived_ids:
        sources = protocol.derived_timepoint(resolved.acute_timepoint).from_timepoints
    else:
        sources = (resolved.acute_timepoint,)
    roles = Roles(resolved.alliance_instrument, tuple(resolved.alliance_scales), outcome_instrument, outcome_scale,
                  tuple(acute.items()), tuple(sources))
    _ROLES[protocol.sha256] = roles
    return roles


# ---------------------------------------------------------------------------------------------
# Participant dashboard
# ---------------------------------------------------------------------------------------------

def participant_dashboard(participant: Participant, today: date, *, deidentified: bool) -> dict:
    """Everything the participant dashboard shows (reads only: nothing is stored).

    Parameters
    ----------
    participant : Participant
        With ``study`` and ``arm`` selected.
    today : date
    deidentified : bool
        For monitors: dates (in timelines, alert reasons and notes, when an alert was acknowledged
        or resolved) become days from enrolment.

    Returns
    -------
    dict
        ``protocol``, ``timeline`` (rows), ``charts`` (alliance, subscales, outcome, acute as
        :class:`~alliance.web.monitor.charts.Chart`: SVG, summary and table), ``trend_charts`` (the
        first three of them), ``acute_table``, ``score_table``, ``open_alerts`` and ``closed_alerts`` (with the overdue and missed
        alerts of today not stored yet: :func:`alliance.web.monitor.alerting.time_alerts_now`).
    """
    protocol = study_protocol(participant.study)
    roles = dashboard_roles(protocol)
    schedule = participant_timeline(participant, today)
    scores = participant_scores(participant)
    values = {(t, i, s): v for t, i, s, v in scores[["timepoint", "instrument", "scale", "value"]]
              .itertuples(index=False)}
    stored = list(Alert.objects.filter(participant=participant).select_related("acknowledged_by")
                  .order_by("-created_at", "-id"))
    rows_for_rules = alerting.schedule(participant, today, schedule)
    late = time_alerts_now(participant.study, [participant],
                           {participant.participant_id: rows_for_rules} if rows_for_rules else {}, today, stored)
    alerts = annotate_alerts([*late.new, *stored], protocol, deidentified=deidentified,
                             enrolled_on=participant.enrolled_on, lapsed=late.lapsed)
    rows = schedule["rows"]
    if deidentified:
        rows = [{**row, "planned": None, "window_start": None, "window_end": None, "done_on": None} for row in rows]
    labels = {t.id: t.label for t in protocol.timepoints}
    return {
        "protocol": protocol,
        "roles": roles,
        "timeline": rows,
        "labels": labels,
        "charts": (figures := _participant_charts(protocol, roles, values)),
        "trend_charts": [figures[k] for k in ("alliance", "subscales", "outcome") if k in figures],
        "acute_table": _acute_table(protocol, roles, values),
        "score_table": _score_table(protocol, roles, values),
        "open_alerts": [a for a in alerts if a.open_now],
        "closed_alerts": [a for a in alerts if not a.open_now],
        "n_scores": len(scores),
        "course": participant_course(participant, protocol, scores),
    }


def _axis(protocol: Protocol, instrument: str) -> tuple[list[str], list[str], list[int]]:
    """Timepoints that give the instrument, with the dosing timepoints between them marked."""
    chosen = [t for t in protocol.timepoints if instrument in t.instruments or t.kind == "dosing"]
    ids = [t.id for t in chosen]
    return ids, [t.label for t in chosen], [i for i, t in enumerate(chosen) if t.kind == "dosing"]


def _scale(instrument: str, scale: str):
    definition = bank.get(instrument)
    for s in definition.scales:
        if s.id == scale:
            return definition, s
    raise KeyError(f"{instrument} has no scale {scale}")


def _participant_charts(protocol: Protocol, roles: Roles, values: dict) -> dict:
    out = {}
    wai, total = _scale(roles.alliance_instrument, roles.alliance_scales[0])
    ids, labels, markers = _axis(protocol, roles.alliance_instrument)
    given = {t.id for t in protocol.timepoints if roles.alliance_instrument in t.instruments}

    def line(instrument: str, scale: str) -> list[float | None]:
        return [values.get((t, instrument, scale)) if t in given_for[instrument] else None for t in ids]

    given_for = {roles.alliance_instrument: given}
    out["alliance"] = charts.line_chart(
        labels, [charts.Series(f"{wai.short_name} {total.id}", line(roles.alliance_instrument, total.id))],
        caption=f"Alliance: {wai.short_name} {total.id}", y_range=total.range,
        y_label=f"{wai.short_name} {total.id}", markers=markers, marker_label="dosing session")
    subscales = roles.alliance_scales[1:]
    if subscales:
        ranges = [_scale(roles.alliance_instrument, s)[1].range for s in subscales]
        out["subscales"] = charts.line_chart(
            labels, [charts.Series(s, line(roles.alliance_instrument, s)) for s in subscales],
            caption=f"Alliance: {wai.short_name} {', '.join(subscales)}",
            y_range=(min(r[0] for r in ranges), max(r[1] for r in ranges)),
            y_label=wai.short_name, markers=markers, marker_label="dosing session")
    outcome, outcome_scale = _scale(roles.outcome_instrument, roles.outcome_scale)
    ids, labels, markers = _axis(protocol, roles.outcome_instrument)
    given_for[roles.outcome_instrument] = {t.id for t in protocol.timepoints
                                           if roles.outcome_instrument in t.instruments}
    remission = outcome.outcomes.get("remission") if outcome.outcomes else None
    references = ([charts.Reference(remission.at_most, f"remission ≤ {remission.at_most:g}")]
                  if remission is not None and remission.at_most is not None else [])
    out["outcome"] = charts.line_chart(
        labels, [charts.Series(f"{outcome.short_name} {outcome_scale.id}",
                               line(roles.outcome_instrument, outcome_scale.id), color=charts.PALETTE[1])],
        caption=f"Depression: {outcome.short_name} {outcome_scale.id}", y_range=outcome_scale.range,
        y_label=f"{outcome.short_name}", references=references, markers=markers, marker_label="dosing session")
    acute = _acute_percent(protocol, roles, values)
    if acute["groups"]:
        out["acute"] = charts.bar_chart(
            acute["groups"], acute["sessions"], acute["values"],
            caption="Acute experience per dosing session (% of each scale's maximum)", y_label="% of maximum",
            group_header="Measure", value_labels=acute["tips"])
    return out


def _acute_percent(protocol: Protocol, roles: Roles, values: dict) -> dict:
    sessions = [protocol.timepoint(t).label for t in roles.dosing_timepoints]
    groups, numbers, tips = [], [], []
    for instrument, scale in roles.acute_measures:
        definition, s = _scale(instrument, scale)
        low, high = s.range
        row, tip = [], []
        for timepoint in roles.dosing_timepoints:
            value = values.get((timepoint, instrument, scale))
            row.append(None if value is None else 100 * (value - low) / ((high - low) or 1))
            tip.append("not recorded" if value is None else f"{value:.3g} on {low:g}–{high:g}")
        groups.append(definition.short_name)
        numbers.append(row)
        tips.append(tip)
    if all(v is None for row in numbers for v in row):
        return {"groups": [], "sessions": sessions, "values": [], "tips": []}
    return {"groups": groups, "sessions": sessions, "values": numbers, "tips": tips}


def _score_table(protocol: Protocol, roles: Roles, values: dict) -> dict:
    """The charted scores as text: a row per timepoint that gives the alliance or outcome instrument."""
    wai = bank.get(roles.alliance_instrument).short_name
    outcome = bank.get(roles.outcome_instrument).short_name
    columns = [(roles.alliance_instrument, s, f"{wai} {s}") for s in roles.alliance_scales]
    columns.append((roles.outcome_instrument, roles.outcome_scale, f"{outcome} {roles.outcome_scale}"))
    rows = []
    for t in protocol.timepoints:
        if not {roles.alliance_instrument, roles.outcome_instrument} & set(t.instruments):
            continue
        cells = []
        for instrument, scale, _ in columns:
            value = values.get((t.id, instrument, scale))
            cells.append("" if instrument not in t.instruments else "–" if value is None else f"{value:g}")
        rows.append({"label": t.label, "cells": cells})
    return {"columns": [label for _, _, label in columns], "rows": rows}


def _acute_table(protocol: Protocol, roles: Roles, values: dict) -> dict:
    header = [protocol.timepoint(t).label for t in roles.dosing_timepoints]
    rows = []
    for instrument, scale in roles.acute_measures:
        definition, s = _scale(instrument, scale)
        cells = [values.get((t, instrument, scale)) for t in roles.dosing_timepoints]
        rows.append({"label": f"{definition.short_name} {s.id}" if len(definition.scales) > 1 else definition.short_name,
                     "range": f"{s.range[0]:g}–{s.range[1]:g}",
                     "cells": ["–" if v is None else f"{v:.3g}" for v in cells]})
    return {"header": header, "rows": rows}


# Rule types whose alerts are about one safety record, keyed by it rather than by a timepoint.
RECORD_RULE_TYPES = frozenset({"serious_adverse_event", "vital_sign", "washout"})


def annotate_alerts(alerts, protocol: Protocol, *, deidentified: bool, enrolled_on=None,
                    lapsed: frozenset = frozenset()) -> list[Alert]:
    """The alerts with what the pages show of them set on each, dates de-identified for monitors.

    Parameters
    ----------
    alerts : iterable of Alert
        Stored alerts and unsaved ones (``pk`` ``None``: raised by the rules today, not stored yet).
    protocol : Protocol
    deidentified : bool
        Dates in reasons and notes become days from enrolment (``enrolled_on``, or each alert's
        participant's when not given), and so do the dates an alert was acknowledged or resolved;
        without an enrolment date no date is shown at all.
    enrolled_on : date, optional
    lapsed : frozenset of int
        Primary keys of open alerts whose assessment is no longer late in that way
        (:attr:`alliance.web.monitor.alerting.TimeAlerts.lapsed`): shown with the closed ones.

    Returns
    -------
    list of Alert
        Each with ``title`` (the rule's label in the protocol), ``shown_reason``, ``shown_note``
        (the acknowledgement note), ``acknowledged_when`` and ``resolved_when`` (``"on 2024-03-01
        14:05"`` / ``"on 2024-03-01"``; for monitors ``"on day 23"`` or ``""``), ``pending`` (not
        stored yet), ``lapsed`` and ``open_now`` (open and not lapsed: what the pages list as open).
    """
    titles = {rule.id: rule.label for rule in protocol.alerts.rules}
    labels = {t.id: t.label for t in protocol.timepoints}
    out = []
    for alert in alerts:
        alert.title = titles.get(alert.rule, alert.rule.replace("_", " ").capitalize())
        # A safety record's alert is keyed by the record (ae:AE-004), not a timepoint: its measure names it.
        alert.timepoint_label = labels.get(alert.timepoint) or (
            alert.measure if alert.rule_type in RECORD_RULE_TYPES else alert.timepoint)
        kind = RULE_TYPES.get(alert.rule_type)
        alert.to_investigators = kind is not None and kind.to_investigators
        start = enrolled_on if enrolled_on is not None else (alert.participant.enrolled_on if deidentified else None)
        alert.pending = alert.pk is None
        alert.lapsed = alert.pk in lapsed
        alert.open_now = alert.is_open and not alert.lapsed
        if deidentified:
            alert.shown_reason = deidentify_dates(alert.reason, start)
            alert.shown_note = deidentify_dates(alert.acknowledgement_note, start)
            alert.acknowledged_when = _day_of(alert.acknowledged_at, start)
            alert.resolved_when = _day_of(alert.resolved_at, start)
        else:
            alert.shown_reason, alert.shown_note = alert.reason, alert.acknowledgement_note
            alert.acknowledged_when = _calendar(alert.acknowledged_at, "%Y-%m-%d %H:%M")
            alert.resolved_when = _calendar(alert.resolved_at, "%Y-%m-%d")
        out.append(alert)
    return out


def _calendar(moment, pattern: str) -> str:
    return "" if moment is None else "on " + timezone.localtime(moment).strftime(pattern)


def _day_of(moment, enrolled_on: date | None) -> str:
    """``on day 23``: the day from enrolment of a moment, in the site's time zone (nothing without one)."""
    if moment is None or enrolled_on is None:
        return ""
    return f"on day {(timezone.localtime(moment).date() - enrolled_on).days}"


def deidentify_dates(text: str, enrolled_on: date | None) -> str:
    """Every date in a text as days from enrolment (``day 21``), for monitors.

    Parameters
    ----------
    text : str
    enrolled_on : date or None
        Without an enrolment date, ISO dates become ``[date]``.

    Returns
    -------
    str
        ISO dates (``2024-01-22``, also with a time of day) become ``day N``; dates written
        otherwise (``3 March 2024``, ``March 3rd``, ``Mar 2024``, ``03/03/2024``, as people type
        them in notes; their year or order of day and month may be unknown) become ``[date]``.

    Examples
    --------
    >>> from datetime import date
    >>> deidentify_dates("session 1 is due on 2024-01-22", date(2024, 1, 1))
    'session 1 is due on day 21'
    >>> deidentify_dates("called her on March 3rd and 2024-01-22T10:30", None)
    'called her on [date] and [date]'
    """
    def day(match: re.Match) -> str:
        try:
            when = date(int(match[1]), int(match[2]), int(match[3]))
        except ValueError:
            return "[date]"
        return "[date]" if enrolled_on is None else f"day {(when - enrolled_on).days}"

    return _WRITTEN_DATE.sub("[date]", _ISO_DATE.sub(day, text or ""))


# ---------------------------------------------------------------------------------------------
# Study dashboard
# ---------------------------------------------------------------------------------------------

def study_dashboard(study: Study, participants, today: date, *, deidentified: bool) -> dict:
    """Everything the study dashboard shows, over the participants the user may see (reads only).

    Parameters
    ----------
    study : Study
    participants : QuerySet of Participant
        Those the user may see (``alliance.web.accounts.access.visible_participants``).
    today : date
    deidentified : bool
        Dates in alert reasons become days from enrolment.

    Returns
    -------
    dict
        ``completeness`` (rows per timepoint), ``cohort_charts`` (cohort trajectories, as
        :class:`~alliance.web.monitor.charts.Chart`), ``open_alerts``
        (stored, and the overdue and missed ones of today not stored yet),
        ``analysis`` (the latest run and its headline tables), ``n_participants``.
    """
    protocol = study_protocol(study)
    roles = dashboard_roles(protocol)
    chosen = _with_study(participants, study)
    timelines = study_timelines(chosen, today)
    scores = study_scores(study, [(roles.alliance_instrument, roles.alliance_scales[0]),
                                  (roles.outcome_instrument, roles.outcome_scale)], participants=chosen)
    arm_of = {p.participant_id: p.arm.code for p in chosen}
    late = time_alerts_now(study, chosen, timelines, today)
    stored = (Alert.objects.filter(study=study, participant__in=chosen.values("pk"), acknowledged_at=None,
                                   resolved_at=None)
              .exclude(pk__in=late.lapsed).select_related("participant").order_by("-created_at", "-id"))
    open_alerts = AlertRows(annotate_alerts(late.new, protocol, deidentified=deidentified), stored,
                            lambda rows: annotate_alerts(rows, protocol, deidentified=deidentified),
                            head=OPEN_ALERTS_SHOWN)
    return {
        "protocol": protocol,
        "roles": roles,
        "n_participants": len(chosen),
        "n_scheduled": len(timelines),
        "completeness": completeness(protocol, timelines),
        "cohort_charts": list(_cohort_charts(protocol, roles, scores, arm_of).values()),
        "open_alerts": open_alerts,
        "severity_counts": open_alerts.severity_counts(),
    }


def _with_study(participants, study: Study):
    """The participants (a QuerySet, evaluated once) with their arm, and ``study`` set on each.

    ``select_related("study")`` would read the study's protocol YAML once per participant; the
    JSON columns (covariates, identifiers), which these pages do not show, are not read at all.
    """
    chosen = participants.select_related("arm").defer("covariates", "identifiers")
    for participant in chosen:
        participant.study = study
    return chosen


class AlertRows(Sequence):
    """The open alerts of a page: those not stored yet, then the stored ones, read as they are shown.

    A study of 1,000 participants has thousands of open alerts; the study dashboard shows the
    first :data:`OPEN_ALERTS_SHOWN` and counts the rest. This sequence counts them per severity in
    SQL (one query, for ``len`` and :meth:`severity_counts`) and reads the first ``head`` stored
    ones (one query, always, so that the number of queries does not depend on the data); rows
    further down are read when asked for (a slice past them: one query; iterating: all of them).
    The same row is the same object in every slice.

    Parameters
    ----------
    new : list of Alert
        Not stored yet, annotated (they come first).
    stored : QuerySet of Alert
        Ordered; with ``participant`` selected.
    annotate : callable
        ``annotate(alerts) -> list``: :func:`annotate_alerts` with the page's arguments.
    head : int
        Stored alerts read at once.
    """

    def __init__(self, new: list, stored, annotate, head: int):
        self._new, self._stored, self._annotate = list(new), stored, annotate
        self._stored_counts = dict(stored.order_by().values_list("severity").annotate(n=Count("pk")))
        self._count = len(self._new) + sum(self._stored_counts.values())
        self._rows = self._annotate(list(stored[:head]))   # the stored rows read so far, in order

    def __len__(self) -> int:
        return self._count

    def __getitem__(self, index):
        if isinstance(index, slice):
            start, stop, step = index.indices(len(self))
            return self._read(stop)[start:stop:step]
        n = len(self)
        if index < 0:
            index += n
        if not 0 <= index < n:
            raise IndexError("alert index out of range")
        return self._read(index + 1)[index]

    def __iter__(self):
        return iter(self._read(len(self)))

    def _read(self, stop: int) -> list:
        """The first ``stop`` alerts (new, then stored), reading the stored ones not read yet."""
        wanted = stop - len(self._new)
        if wanted > len(self._rows):
            self._rows += self._annotate(list(self._stored[len(self._rows):wanted]))
        return [*self._new, *self._rows][:stop]

    def severity_counts(self) -> dict[str, int]:
        """Open alerts per severity (no query: counted when the sequence was made)."""
        counts = dict.fromkeys(Alert.Severity.values, 0)
        for alert in self._new:
            if alert.severity in counts:
                counts[alert.severity] += 1
        for severity, n in self._stored_counts.items():
            if severity in counts:
                counts[severity] += n
        return counts


def alert_list(study: Study, participants, today: date, *, deidentified: bool, limit: int = 500,
               alerts=None) -> dict:
    """The alerts page: every alert of the participants the user may see, open first (reads only).

    Parameters
    ----------
    study : Study
    participants : QuerySet of Participant
        Those the user may see.
    today : date
    deidentified : bool
        Dates become days from enrolment (:func:`annotate_alerts`).
    limit : int
        At most this many stored alerts, the most recent.
    alerts : QuerySet of Alert, optional
        The stored alerts to choose from (the triage list's filters); default all of the study's.

    Returns
    -------
    dict
        ``open_alerts`` (the overdue and missed ones of today not stored yet first) and
        ``closed_alerts`` (acknowledged, resolved, and the late ones no longer late).
    """
    protocol = study_protocol(study)
    chosen = _with_study(participants, study)
    late = time_alerts_now(study, chosen, study_timelines(chosen, today), today)
    stored = ((Alert.objects.all() if alerts is None else alerts)
              .filter(study=study, participant__in=chosen.values("pk"))
              .select_related("participant", "acknowledged_by").order_by("-created_at", "-id")[:limit])
    alerts = annotate_alerts([*late.new, *stored], protocol, deidentified=deidentified, lapsed=late.lapsed)
    return {"open_alerts": [a for a in alerts if a.open_now], "closed_alerts": [a for a in alerts if not a.open_now]}


def completeness(protocol: Protocol, timelines: dict[str, list[dict]]) -> list[dict]:
    """Per timepoint: how many participants are done, due, overdue, missed or not yet due.

    Parameters
    ----------
    protocol : Protocol
    timelines : dict
        Participant id → timeline rows.

    Returns
    -------
    list of dict
        ``timepoint``, ``label``, ``kind``, one count per status, ``expected`` (done + deviation
        + overdue + missed: the participants for whom the timepoint's window has closed or who did it) and
        ``percent`` (done / expected × 100; ``None`` when nobody is expected yet).
    """
    counts = {t.id: dict.fromkeys(STATUSES, 0) for t in protocol.timepoints}
    for rows in timelines.values():
        for row in rows:
            counts[row["timepoint"]][row["status"]] += 1
    out = []
    for t in protocol.timepoints:
        c = counts[t.id]
        # A deviation was given but off schedule: expected, and not counted as done.
        expected = c["done"] + c["deviation"] + c["overdue"] + c["missed"]
        out.append({"timepoint": t.id, "label": t.label, "kind": t.kind, **c, "expected": expected,
                    "percent": None if not expected else 100.0 * c["done"] / expected})
    return out


def mean_ci(values: np.ndarray, confidence: float = 0.95) -> tuple[float, float, float, int]:
    """Mean and its t interval: mean ± t(1 − α/2, n − 1) × SD / √n (NaN interval when n < 2).

    Parameters
    ----------
    values : array of float
        Missing values (NaN) are left out.
    confidence : float

    Returns
    -------
    tuple
        ``(mean, low, high, n)``.

    Examples
    --------
    >>> import numpy as np
    >>> [round(v, 3) for v in mean_ci(np.array([1.0, 2.0, 3.0]))[:3]]   # 2 ± 4.303 × 1 / √3
    [2.0, -0.484, 4.484]
    """
    values = values[~np.isnan(values)]
    n = len(values)
    if n == 0:
        return math.nan, math.nan, math.nan, 0
    mean = float(values.mean())
    if n < 2:
        return mean, math.nan, math.nan, n
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1) * values.std(ddof=1) / math.sqrt(n))
    return mean, mean - half, mean + half, n


def _cohort_series(scores: pd.DataFrame, instrument: str, scale: str, ids: list[str], given: set[str],
                   arm_of: dict[str, str], arms: list[tuple[str, str]]) -> list[charts.Series]:
    rows = scores[(scores["instrument"] == instrument) & (scores["scale"] == scale)]
    rows = rows.assign(arm=rows["participant_id"].map(arm_of))
    series = []
    # One grouping of the study's scores, not a filter of the table per arm and timepoint.
    values_at = {key: group.to_numpy(dtype=float) for key, group in rows.groupby(["arm", "timepoint"])["value"]}
    empty = np.array([], dtype=float)
    for k, (arm, label) in enumerate(arms):
        if not any(key[0] == arm for key in values_at):
            continue
        means, intervals, counts = [], [], []
        for timepoint in ids:
            if timepoint not in given:
                means.append(None)
                intervals.append(None)
                counts.append(None)
                continue
            mean, low, high, n = mean_ci(values_at.get((arm, timepoint), empty))
            means.append(None if n == 0 else mean)
            intervals.append(None if math.isnan(low) else (low, high))
            counts.append(n)
        # means to two decimals: a mean of scores carries more precision than a score
        series.append(charts.Series(label, means, intervals, color=charts.PALETTE[k], n=counts, statistic="mean",
                                    decimals=2))
    return series


def _cohort_charts(protocol: Protocol, roles: Roles, scores: pd.DataFrame, arm_of: dict[str, str]) -> dict:
    arms = [(a.id, a.label) for a in protocol.arms]
    out = {}
    for key, instrument, scale in (("alliance", roles.alliance_instrument, roles.alliance_scales[0]),
                                   ("outcome", roles.outcome_instrument, roles.outcome_scale)):
        definition, s = _scale(instrument, scale)
        ids, labels, markers = _axis(protocol, instrument)
        given = {t.id for t in protocol.timepoints if instrument in t.instruments}
        title = f"{definition.short_name} {s.id}: mean with 95% CI per timepoint, by arm"
        out[key] = charts.line_chart(
            labels, _cohort_series(scores, instrument, scale, ids, given, arm_of, arms),
            caption=("Alliance: " if key == "alliance" else "Depression: ") + title,
            y_range=s.range, y_label=f"{definition.short_name} {s.id}", markers=markers,
            marker_label="dosing session")
    return out


# ---------------------------------------------------------------------------------------------
# The analysis
# ---------------------------------------------------------------------------------------------

def analysis_dir(study: Study) -> Path:
    """Where the web app writes a study's analysis: ``$ALLIANCE_DATA_DIR/analysis/study-<id>/``."""
    return Path(settings.DATA_DIR) / "analysis" / f"study-{study.pk}"


def latest_analysis(study: Study) -> dict | None:
    """The latest successful analysis run and its headline tables (``None`` before the first run).

    Returns
    -------
    dict or None
        ``run`` (the latest AnalysisRun that finished without error, or ``None``), ``failed`` (the
        latest run when it failed), ``problem`` (when results.json cannot be read), ``files`` (the
        report files present), ``tables``: list of
        ``{"title", "columns", "rows"}`` — alliance change, alliance ↔ acute and alliance ↔
        outcome correlations, response and remission (the report's own APA tables).
    """
    finished = AnalysisRun.objects.filter(study=study).exclude(status=AnalysisRun.Status.RUNNING)
    run = finished.filter(status=AnalysisRun.Status.DONE).first()
    last = finished.first()
    failed = last if last is not None and last.status == AnalysisRun.Status.FAILED else None
    if run is None:
        return None if failed is None else {"run": None, "failed": failed, "files": [], "tables": []}
    folder = Path(run.output_dir)
    out = {"run": run, "failed": failed, "files": [name for name in REPORT_FILES if (folder / name).exists()],
           "tables": []}
    if not (folder / "results.json").exists():
        return out
    try:
        results = Results.from_dict(json.loads((folder / "results.json").read_text(encoding="utf-8")))
    except (OSError, ValueError) as error:  # said on the page, not hidden
        out["problem"] = f"{folder / 'results.json'} cannot be read: {error}"
        return out
    labels = Labels(study_protocol(study))
    arm_labels = {a.id: a.label for a in study_protocol(study).arms}
    # the confirmatory tests (docs/analysis.md); a results.json written before roles existed has none,
    # and shows its former headline families
    confirmatory = [e for e in results.correlations if e.get("role") == "confirmatory"]
    if confirmatory or any("role" in e for e in results.correlations):
        change = [e for e in results.alliance_change if e.get("role") == "confirmatory"]
        outcome_instrument = str(results.provenance.get("plan", {}).get("roles", {}).get("outcome", {})
                                 .get("measure", "grid_hamd17.total")).split(".")[0]
        alliance_instrument = str(results.provenance.get("plan", {}).get("roles", {}).get("alliance", {})
                                  .get("instrument", "wai_sr"))
        acute = [e for e in confirmatory if not str(e.get("y", "")).startswith(outcome_instrument + ".")]
        outcome = [e for e in confirmatory if str(e.get("y", "")).startswith(outcome_instrument + ".")
                   and str(e.get("x", "")).startswith(alliance_instrument + ".")]
    else:
        change = [e for e in results.alliance_change if e.get("scale", "").endswith(".total")]
        acute = [e for e in results.correlations if e.get("family") == "alliance_acute"]
        outcome = [e for e in results.correlations if e.get("family") == "alliance_outcome"]
    outcomes = [e for e in results.outcomes if e.get("arm") == "all"]
    for title, frame in (
            ("Change of alliance (paired t-tests)", tables.alliance_change_table(change, labels, results)),
            ("Alliance and the acute experience", tables.correlation_table(acute, labels, results)),
            ("Alliance and depression at follow-up", tables.correlation_table(outcome, labels, results)),
            ("Response and remission", tables.outcomes_table(outcomes, labels, arm_labels))):
        if not frame.empty:
            out["tables"].append({"title": title, "columns": list(frame.columns),
                                  "rows": frame.astype(str).values.tolist()})
    return out
