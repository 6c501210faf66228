"""One participant's course against expectation: expected-response bands, reliable change, ruptures.

What the participant dashboard shows beside the raw scores (issue 14):

- **Expected-response curves** (:mod:`alliance.monitoring.expected`): for each monitored scale of
  the protocol's ``expected_response:`` section, the trajectory expected given the participant's
  first score, with its band; a score outside the band on the adverse side makes the participant
  "not on track", with the reason. The reference is named on the page (the calibrated synthetic
  trial by default, labelled as not real participants).
- **Reliable change** (:mod:`alliance.monitoring.change`): each later score against the first,
  with the Jacobson–Truax category and the SD and reliability used (and where they come from),
  next to response and remission where the instrument defines them.
- **Ruptures and repairs** (:func:`alliance.monitoring.alerts.ruptures`): falls of alliance beyond
  the alert rule's threshold and the later rating that repaired each.

What the study contributes (the reference fits, the study's own baseline SD and alpha) is
computed once per *data version* of the study and kept in this process: the id of the study's
latest audit event, one indexed query (every write to a study is audited, so a new form, an
import or a correction gives a new version and the next page recomputes). Reads only.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from django.conf import settings

from alliance import instruments as bank
from alliance import stats
from alliance.monitoring import alerts as rules
from alliance.monitoring import expected
from alliance.monitoring.change import OK, ResolvedNorm, resolve_norm
from alliance.protocol import Measure, Protocol
from alliance.web.capture.models import Study

from . import charts
from .alerting import RESPONSE_COLUMNS, data_version, rule_answers

_CACHE_SIZE = 16
_CACHE: OrderedDict[tuple[int, int | None], StudyCourse] = OrderedDict()
_LOCK = threading.Lock()


@dataclass
class StudyCourse:
    """What the study contributes to every participant's course, for one data version."""

    models: dict[str, expected.ExpectedModel | None] = field(default_factory=dict)
    model_problems: dict[str, str] = field(default_factory=dict)
    norms: dict[str, ResolvedNorm] = field(default_factory=dict)
    rupture_rule: rules.AlertRule | None = None
    rupture_threshold: rules.DropThreshold | None = None
    rupture_problem: str = ""


def study_course(study: Study, protocol: Protocol) -> StudyCourse:
    """The study's reference fits, reliable-change norms and rupture threshold (cached per data version)."""
    key = (study.pk, data_version(study))
    with _LOCK:
        if key in _CACHE:
            _CACHE.move_to_end(key)
            return _CACHE[key]
    course = _compute(study, protocol)
    with _LOCK:
        _CACHE[key] = course
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return course


def _monitored(protocol: Protocol) -> tuple[list[str], list[str]]:
    curves = list(protocol.expected_response.measures)
    changes = [m for m in protocol.reliable_change.measures
               if Measure.parse(m, timepoint="forbidden").instrument in protocol.instruments]
    return curves, changes


def _compute(study: Study, protocol: Protocol) -> StudyCourse:
    from alliance.web.capture.queries import study_scores

    curves, changes = _monitored(protocol)
    drop = next((r for r in protocol.alerts.rules if r.type == "alliance_drop"), None)
    measures = {m for m in curves + changes}
    if drop is not None:
        measures.add(drop.measure)
    pairs = [(p.instrument, p.scale) for p in (Measure.parse(m, timepoint="forbidden") for m in sorted(measures))]
    scores = study_scores(study, measures=pairs)
    answers = rule_answers(study, protocol, rules.AlertInputs(baseline_answers=frozenset(i for i, _ in pairs)), None)
    if answers is None:
        answers = pd.DataFrame(columns=RESPONSE_COLUMNS)
    course = StudyCourse()
    for measure in curves:
        try:
            reference, origin = _reference_file(protocol)
            course.models[measure] = expected.expected_model(protocol, measure, study_scores=scores,
                                                             reference_scores=reference, reference_origin=origin)
        except (expected.ExpectedResponseError, expected.ReferenceFileError, OSError) as error:
            course.models[measure] = None
            course.model_problems[measure] = str(error)
    for measure in changes:
        course.norms[measure] = resolve_norm(protocol, measure, scores, answers)
    if drop is not None:
        course.rupture_rule = drop
        course.rupture_threshold, course.rupture_problem = rules.drop_threshold(drop, protocol, scores, answers)
    return course


def _reference_file(protocol: Protocol) -> tuple[pd.DataFrame | None, str | None]:
    """A site's reference CSV, relative to ``ALLIANCE_DATA_DIR`` (``None`` for the other references)."""
    config = protocol.expected_response
    if config.reference_kind != "file":
        return None, None
    path = Path(config.reference)
    if not path.is_absolute():
        path = Path(settings.DATA_DIR) / path
    return expected.load_reference_file(path, protocol), config.reference


# ---------------------------------------------------------------------------------------------
# One participant
# ---------------------------------------------------------------------------------------------

def participant_course(participant, protocol: Protocol, scores: pd.DataFrame) -> dict:
    """The expected-response curves, reliable change and ruptures of one participant.

    Parameters
    ----------
    participant : Participant
        With ``study`` selected.
    protocol : Protocol
    scores : DataFrame
        :func:`alliance.web.capture.queries.participant_scores` of the participant.

    Returns
    -------
    dict
        ``curves`` (per monitored scale: ``measure``, ``label``, ``status``, ``reasons``,
        ``notes``, ``reference``, ``chart``, ``rows``), ``on_track`` (``on track``, ``not on
        track`` or ``not assessable`` over the scales), ``changes`` (per measure: ``label``,
        ``norm`` in words, ``rows``, ``problem``), ``ruptures`` (sentences) and ``rupture_problem``.
    """
    course = study_course(participant.study, protocol)
    pid = participant.participant_id
    long = scores.assign(participant_id=pid)[["participant_id", "timepoint", "instrument", "scale", "value"]]
    curves = [_curve(protocol, measure, course, long, pid) for measure in course.models]
    statuses = [c["status"] for c in curves]
    on_track = ("not on track" if "not on track" in statuses else "on track" if "on track" in statuses
                else "not assessable")
    ruptures = []
    if course.rupture_threshold is not None:
        for r in rules.ruptures(course.rupture_rule.measure, protocol, long, course.rupture_threshold):
            ruptures.append(_rupture_words(protocol, course.rupture_rule.measure, r))
    return {"curves": curves, "on_track": on_track,
            "changes": [_change(protocol, measure, norm, long, pid) for measure, norm in course.norms.items()],
            "ruptures": ruptures,
            "rupture_problem": "" if course.rupture_rule is None or course.rupture_threshold is not None
            else course.rupture_problem}


def _label(protocol: Protocol, timepoint_id: str) -> str:
    try:
        return protocol.timepoint(timepoint_id).label or timepoint_id
    except KeyError:
        return timepoint_id


def _scale_words(measure: str) -> str:
    parsed = Measure.parse(measure, timepoint="forbidden")
    try:
        return f"{bank.get(parsed.instrument).short_name} {parsed.scale}"
    except bank.UnknownInstrumentError:
        return measure


def _curve(protocol: Protocol, measure: str, course: StudyCourse, scores: pd.DataFrame, pid: str) -> dict:
    label = _scale_words(measure)
    model = course.models.get(measure)
    if model is None:
        return {"measure": measure, "label": label, "status": "not assessable",
                "reasons": [f"no expected-response curve: {course.model_problems.get(measure, 'no reference')}"],
                "notes": [], "reference": "", "chart": None, "rows": []}
    found = expected.assess(scores, pid, model, protocol=protocol, measure=measure)
    points = {p.timepoint: p for p in found.points}
    chosen = [t for t in protocol.timepoints if t.id in points or t.kind == "dosing"]
    x_labels = [t.label for t in chosen]
    markers = tuple(i for i, t in enumerate(chosen) if t.kind == "dosing")
    observed = [points[t.id].observed if t.id in points else None for t in chosen]
    expected_line = [(points[t.id].expected if points[t.id].status != "first" else points[t.id].observed)
                     if t.id in points else None for t in chosen]
    band = [(points[t.id].low_shown, points[t.id].high_shown)
            if t.id in points and points[t.id].low_shown is not None else None for t in chosen]
    definition = bank.get(model.scale.instrument)
    scale = next(s for s in definition.scales if s.id == model.scale.scale)
    level = f"{found.level:.0%}"
    chart = charts.line_chart(
        x_labels,
        [charts.Series(f"{label} (this participant)", observed, color=charts.PALETTE[0]),
         charts.Series(f"expected, {level} band (given the first score)",
                       [None if v is None or math.isnan(v) else v for v in expected_line], band,
                       color=charts.GREY, width=1.5, interval_label=f"{level} band")],
        caption=f"Expected response: {label}",
        y_range=scale.range, y_label=label, markers=markers, marker_label="dosing session")
    rows = []
    for p in found.points:
        if p.status == "first":
            band_text = "first score (the curve is conditional on it)"
        elif p.low is None:
            band_text = "no band"
        else:
            band_text = f"{p.expected:.1f} ({p.low_shown:.1f} to {p.high_shown:.1f})"
        rows.append({"label": _label(protocol, p.timepoint), "observed": "–" if p.observed is None else f"{p.observed:g}",
                     "band": band_text, "status": p.status, "adverse": p.adverse})
    return {"measure": measure, "label": label, "status": found.status, "reasons": list(found.reasons),
            "notes": list(found.notes), "reference": f"{found.reference_label}, n = {found.n_reference}",
            "calibration": found.calibration, "chart": chart,
            "rows": rows}


def _norm_words(norm: ResolvedNorm) -> str:
    return (f"SD {norm.sd:.2f} ({norm.sd_from}); reliability {norm.reliability:.2f} ({norm.reliability_from}); "
            f"a change is reliable when larger than {norm.threshold:.2f} points "
            f"(Jacobson & Truax 1991, two-sided α = {norm.alpha:g})")


def _change(protocol: Protocol, measure: str, norm: ResolvedNorm, scores: pd.DataFrame, pid: str) -> dict:
    parsed = Measure.parse(measure, timepoint="forbidden")
    label = _scale_words(measure)
    out = {"measure": measure, "label": label, "rows": [], "problem": "", "norm": "", "baseline": ""}
    if norm.status != OK:
        out["problem"] = "; ".join(norm.notes) or norm.status
        return out
    out["norm"] = _norm_words(norm)
    mine = scores[(scores["instrument"] == parsed.instrument) & (scores["scale"] == parsed.scale)]
    values = dict(zip(mine["timepoint"], mine["value"].astype(float), strict=False))
    pre = values.get(norm.baseline)
    out["baseline"] = _label(protocol, norm.baseline)
    if pre is None:
        out["problem"] = f"no {label} score at {out['baseline']} (the baseline of the change)"
        return out
    later = [t.id for t in protocol.timepoints if parsed.instrument in t.instruments and t.id != norm.baseline
             and t.order > protocol.timepoint(norm.baseline).order]
    posts = [values.get(t) for t in later]
    result = stats.reliable_change([pre] * len(later), [math.nan if v is None else v for v in posts],
                                   sd=norm.sd, reliability=norm.reliability, alpha=norm.alpha,
                                   lower_is_better=bool(norm.lower_is_better))
    outcomes = (bank.get(parsed.instrument).outcomes or {})
    response, remission = outcomes.get("response"), outcomes.get("remission")
    for timepoint, row in zip(later, result.table.itertuples(index=False), strict=True):
        if row.category is None:
            continue
        cells = {"label": _label(protocol, timepoint), "post": f"{row.post:g}", "change": f"{row.change:+g}",
                 "rci": f"{row.rci:+.2f}", "category": row.category}
        if response is not None and response.scale == parsed.scale and pre:
            cut = pre * (1 - response.reduction_from_baseline_percent / 100)
            cells["response"] = "yes" if row.post <= cut else "no"
        if remission is not None and remission.scale == parsed.scale and remission.at_most is not None:
            cells["remission"] = "yes" if row.post <= remission.at_most else "no"
        out["rows"].append(cells)
    out["pre"] = f"{pre:g}"
    out["has_response"] = response is not None and response.scale == parsed.scale
    out["has_remission"] = remission is not None and remission.scale == parsed.scale
    return out


def _rupture_words(protocol: Protocol, measure: str, r: rules.Rupture) -> dict:
    text = (f"{_scale_words(measure)} fell by {r.fall:g} points, from {r.before_value:g} at "
            f"{_label(protocol, r.before_timepoint)} to {r.value:g} at {_label(protocol, r.timepoint)}")
    repair = (f"repaired at {_label(protocol, r.repaired_timepoint)} ({r.repaired_value:g})" if r.repaired
              else "not repaired yet")
    return {"timepoint": r.timepoint, "text": text, "repair": repair, "repaired": r.repaired,
            "repaired_timepoint": r.repaired_timepoint}
