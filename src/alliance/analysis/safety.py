"""The safety analysis: adverse events by arm, the serious-event listing, and alliance vs harm.

What a data-monitoring board asks first (issue 16), from the study's ``adverse_events.csv``
(:mod:`alliance.study.adverse_events`):

- per arm (and all together): participants with at least one adverse event and the number of
  events, by CTCAE grade and by relatedness to the study treatment; participants with a serious
  event and the number of serious events;
- the listing of every serious adverse event;
- the question Levin et al. (2024) raise — does a stronger alliance protect against harm? —
  as an exploratory test: the alliance before the first dose against whether the participant had
  any adverse event after it, by the point-biserial correlation (Pearson r with a 0/1 variable)
  and by logistic regression with Firth's penalised likelihood, which gives finite estimates in
  the small samples and separated data of a PAT trial (Firth 1993; Heinze & Schemper 2002).

References
----------
Firth D (1993). Bias reduction of maximum likelihood estimates. Biometrika 80(1):27-38.
Heinze G, Schemper M (2002). A solution to the problem of separation in logistic regression.
Stat Med 21(16):2409-2419.
Levin AW et al. (2024). PLoS ONE 19(3):e0300501 (discussion: minimising therapeutic support and
safety).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from alliance import stats
from alliance.study.adverse_events import RELATEDNESS

__all__ = ["adverse_events_by_arm", "alliance_vs_harm", "cssrs_worst_by_arm", "serious_event_listing",
           "vital_signs_by_arm"]

PARTICIPANT = "participant_id"
GRADES = (1, 2, 3, 4, 5)


def _arm_groups(participants: pd.DataFrame, arm_order) -> list[tuple[str, set[str]]]:
    arm_of = participants.set_index(participants[PARTICIPANT].astype(str))["arm"].astype(str)
    arms = [a for a in arm_order if (arm_of == a).any()] + sorted(set(arm_of) - set(arm_order))
    groups = [(arm, set(arm_of.index[arm_of == arm])) for arm in arms] if len(arms) > 1 else []
    return groups + [("all", set(arm_of.index))]


def adverse_events_by_arm(events: pd.DataFrame, participants: pd.DataFrame, arm_order=()) -> list[dict[str, Any]]:
    """Participants with events and event counts per arm, by grade, relatedness and seriousness.

    Parameters
    ----------
    events : DataFrame
        ``adverse_events.csv`` as :func:`alliance.study.adverse_events.normalize_adverse_events` gives it.
    participants : DataFrame
        ``participant_id, arm``.
    arm_order : sequence of str
        The protocol's arms, in order.

    Returns
    -------
    list of dict
        One per arm and one for ``all``: ``arm, n_participants, participants_with_event,
        participants_with_event_pct, events, by_grade`` (grade → ``participants, events``),
        ``by_relatedness`` (term → ``participants, events``; ``unknown`` when not given),
        ``participants_with_serious, serious_events, participants_with_related`` (possible,
        probable or definite).
    """
    frame = events.copy()
    frame[PARTICIPANT] = frame[PARTICIPANT].astype(str)
    severity = pd.to_numeric(frame["severity"], errors="coerce")
    relatedness = (frame["relatedness"].astype("string").fillna("unknown") if "relatedness" in frame.columns
                   else pd.Series("unknown", index=frame.index, dtype="string"))
    serious = frame["serious"].astype("boolean").fillna(False).to_numpy(bool)
    related = relatedness.isin(["possible", "probable", "definite"]).to_numpy(bool)
    out = []
    for arm, members in _arm_groups(participants, arm_order):
        mine = frame[PARTICIPANT].isin(members).to_numpy(bool)
        who = frame.loc[mine, PARTICIPANT]
        n = len(members)
        entry: dict[str, Any] = {
            "arm": arm, "n_participants": n, "participants_with_event": int(who.nunique()),
            "participants_with_event_pct": 100.0 * who.nunique() / n if n else float("nan"),
            "events": int(mine.sum()),
            "by_grade": {str(g): {"participants": int(frame.loc[mine & (severity == g).to_numpy(bool), PARTICIPANT].nunique()),
                                  "events": int((mine & (severity == g).to_numpy(bool)).sum())} for g in GRADES},
            "by_relatedness": {
                term: {"participants": int(frame.loc[mine & (relatedness == term).to_numpy(bool), PARTICIPANT].nunique()),
                       "events": int((mine & (relatedness == term).to_numpy(bool)).sum())}
                for term in (*RELATEDNESS, "unknown")},
            "participants_with_serious": int(frame.loc[mine & serious, PARTICIPANT].nunique()),
            "serious_events": int((mine & serious).sum()),
            "participants_with_related": int(frame.loc[mine & related, PARTICIPANT].nunique()),
        }
        out.append(entry)
    return out


def serious_event_listing(events: pd.DataFrame, participants: pd.DataFrame) -> list[dict[str, Any]]:
    """Every serious adverse event: ``participant_id, arm, ae_id, term, onset, resolved_on, severity,
    seriousness, relatedness, expected, action, outcome``, by onset."""
    frame = events[events["serious"].astype("boolean").fillna(False).to_numpy(bool)].copy()
    arm_of = participants.set_index(participants[PARTICIPANT].astype(str))["arm"].astype(str)
    rows = []
    for _, row in frame.sort_values(["onset", "ae_id"]).iterrows():
        record = {PARTICIPANT: str(row[PARTICIPANT]), "arm": arm_of.get(str(row[PARTICIPANT]), "")}
        for column in ("ae_id", "term", "onset", "resolved_on", "severity", "seriousness", "relatedness", "expected",
                       "action", "outcome"):
            value = row.get(column) if column in frame.columns else None
            record[column] = None if value is None or pd.isna(value) else (
                int(value) if column == "severity" else bool(value) if column == "expected" else str(value))
        rows.append(record)
    return rows


def alliance_vs_harm(alliance: pd.Series, events: pd.DataFrame, first_dose: pd.Series | None = None,
                     *, alliance_measure: str = "alliance", min_grade: int = 1) -> dict[str, Any]:
    """Alliance before dosing against having any adverse event after the first dose (exploratory).

    Parameters
    ----------
    alliance : Series
        Alliance score per participant (index: participant id), e.g. WAI-SR total at the final
        preparation session.
    events : DataFrame
        The adverse events table.
    first_dose : Series, optional
        Date of each participant's first dosing session; events with an onset before it are not
        counted (they cannot follow from the session). Without it every event counts.
    alliance_measure : str
        The measure's name, for the entry.
    min_grade : int
        The lowest CTCAE grade counted as harm: 1 (any adverse event, the default) or e.g. 2
        (moderate or worse), for a trial in which nearly everyone has a mild one.

    Returns
    -------
    dict
        ``x, y, n, n_with_event, point_biserial`` (:func:`alliance.stats.correlation`:
        ``r, ci_low, ci_high, p``), ``firth`` (:func:`alliance.stats.logistic_regression` with
        ``method="firth"``: the alliance term's ``estimate, se`` (log odds per point of
        alliance), ``odds_ratio, or_ci_low, or_ci_high`` (profile penalised-likelihood interval),
        ``p`` (penalised likelihood-ratio test), ``ci_method, separation, converged``), ``notes``; ``skipped`` when fewer than 2 participants had an
        event or fewer than 2 had none.
    """
    scores = pd.to_numeric(alliance, errors="coerce").dropna()
    scores.index = scores.index.astype(str)
    frame = events.copy()
    frame[PARTICIPANT] = frame[PARTICIPANT].astype(str)
    notes = []
    if first_dose is not None:
        onset = pd.to_datetime(frame["onset"], format="ISO8601", errors="coerce", utc=True).dt.normalize()
        dose = pd.to_datetime(first_dose, format="ISO8601", errors="coerce", utc=True).dt.normalize()
        dose.index = dose.index.astype(str)
        before = (onset < frame[PARTICIPANT].map(dose)).fillna(False).to_numpy(bool)
        if before.any():
            count = int(before.sum())
            notes.append(f"{count} adverse {'event' if count == 1 else 'events'} began before the participant's "
                         "first dosing session and " + ("is" if count == 1 else "are") + " not counted.")
        frame = frame[~before]
    frame = frame[(pd.to_numeric(frame["severity"], errors="coerce") >= min_grade).to_numpy(bool)]
    had = scores.index.isin(set(frame[PARTICIPANT])).astype(float)
    harm = "any adverse event" if min_grade <= 1 else f"an adverse event of grade {min_grade} or worse"
    entry: dict[str, Any] = {"x": alliance_measure, "y": f"{harm} after the first dose", "min_grade": int(min_grade),
                             "n": int(len(scores)), "n_with_event": int(had.sum())}
    if had.sum() < 2 or (len(had) - had.sum()) < 2:
        entry["skipped"] = (f"{int(had.sum())} of {len(had)} participants with an alliance score had an adverse "
                            "event; at least 2 with and 2 without are needed")
        return entry
    r = stats.correlation(scores.to_numpy(float), had)
    entry["point_biserial"] = {"r": r.r, "ci_low": r.ci_low, "ci_high": r.ci_high, "p": r.p}
    fit = stats.logistic_regression(had, pd.DataFrame({alliance_measure: scores.to_numpy(float)}), method="firth")
    row = fit.coefficients.loc[alliance_measure]
    profile = "or_profile_ci_low" in row.index and np.isfinite(row.get("or_profile_ci_low", np.nan))
    entry["firth"] = {
        "estimate": _finite(row["estimate"]), "se": _finite(row["se"]), "odds_ratio": _finite(row["odds_ratio"]),
        "or_ci_low": _finite(row["or_profile_ci_low"] if profile else row["or_ci_low"]),
        "or_ci_high": _finite(row["or_profile_ci_high"] if profile else row["or_ci_high"]),
        "p": _finite(row["p_lr"] if "p_lr" in row.index else row["p"]),
        "ci_method": "profile penalised likelihood (as logistf)" if profile else "Wald",
        "separation": fit.separation_kind, "converged": bool(fit.converged),
    }
    notes += list(fit.notes)
    if len(scores) < 20:
        notes.append(f"n = {len(scores)}: too few participants for this to be more than a description.")
    entry["notes"] = notes
    return entry


def vital_signs_by_arm(vitals: pd.DataFrame, participants: pd.DataFrame, spec, arm_order=()) -> list[dict[str, Any]]:
    """Each dosing session's peak systolic and diastolic pressure and heart rate, summarised per arm and session.

    Parameters
    ----------
    vitals : DataFrame
        ``vital_signs.csv`` (:mod:`alliance.study.vital_signs`).
    participants : DataFrame
    spec : alliance.protocol.safety.SafetySpec
        The thresholds; readings at or above them are counted.
    arm_order : sequence of str

    Returns
    -------
    list of dict
        Per arm (and ``all``) and session: ``arm, session, n_participants`` (with a reading),
        per measure ``{measure}: {mean, sd, max}`` of the per-participant peaks, and
        ``readings_warning, readings_urgent, participants_urgent`` (readings at or above the
        thresholds, :func:`alliance.monitoring.safety_checks.vital_sign_findings`).
    """
    from alliance.monitoring.safety_checks import vital_sign_findings

    frame = vitals.copy()
    frame[PARTICIPANT] = frame[PARTICIPANT].astype(str)
    findings = pd.DataFrame([f.to_dict() for f in vital_sign_findings(vitals, spec)])
    measures = [m for m in ("systolic_bp", "diastolic_bp", "heart_rate") if m in frame.columns]
    out = []
    for arm, members in _arm_groups(participants, arm_order):
        mine = frame[frame[PARTICIPANT].isin(members)]
        for session in sorted(pd.to_numeric(frame["session"], errors="coerce").dropna().astype(int).unique()):
            rows = mine[pd.to_numeric(mine["session"], errors="coerce") == session]
            peaks = rows.groupby(PARTICIPANT)[measures].max() if len(rows) else pd.DataFrame(columns=measures)
            entry: dict[str, Any] = {"arm": arm, "session": int(session), "n_participants": int(len(peaks))}
            for measure in measures:
                values = pd.to_numeric(peaks[measure], errors="coerce").dropna()
                entry[measure] = {"mean": _finite(values.mean()) if len(values) else None,
                                  "sd": _finite(values.std(ddof=1)) if len(values) > 1 else None,
                                  "max": _finite(values.max()) if len(values) else None}
            hits = findings[(findings["participant_id"].isin(members)) & (findings["session"] == session)] \
                if len(findings) else findings
            entry["readings_warning"] = int((hits["severity"] == "warning").sum()) if len(hits) else 0
            entry["readings_urgent"] = int((hits["severity"] == "urgent").sum()) if len(hits) else 0
            entry["participants_urgent"] = int(hits.loc[hits["severity"] == "urgent", "participant_id"].nunique()) \
                if len(hits) else 0
            out.append(entry)
    return out


def cssrs_worst_by_arm(scores: pd.DataFrame, participants: pd.DataFrame, arm_order=()) -> list[dict[str, Any]]:
    """The worst C-SSRS ideation severity ever recorded and any suicidal behaviour, per arm.

    Parameters
    ----------
    scores : DataFrame
        Scores per administration (:meth:`alliance.study.Study.scores`: ``participant_id,
        timepoint, instrument`` and a column per scale); the C-SSRS forms' ``ideation_severity``
        and ``behaviour`` are used (Posner et al. 2011).
    participants : DataFrame
    arm_order : sequence of str

    Returns
    -------
    list of dict
        Per arm (and ``all``): ``arm, n_assessed, worst_ideation`` (severity 0-5 → participants
        whose worst is that), ``participants_with_behaviour``.
    """
    frame = scores[scores["instrument"].astype(str).str.startswith("cssrs")].copy()
    frame[PARTICIPANT] = frame[PARTICIPANT].astype(str)
    severity = pd.to_numeric(frame["ideation_severity"], errors="coerce").groupby(frame[PARTICIPANT]).max()
    behaviour = pd.to_numeric(frame["behaviour"], errors="coerce").groupby(frame[PARTICIPANT]).max()
    out = []
    for arm, members in _arm_groups(participants, arm_order):
        worst = severity[severity.index.isin(members)].dropna()
        out.append({"arm": arm, "n_assessed": int(len(worst)),
                    "worst_ideation": {str(level): int((worst == level).sum()) for level in range(6)},
                    "participants_with_behaviour": int((behaviour[behaviour.index.isin(members)] >= 1).sum())})
    return out


def _finite(value) -> float | None:
    return float(value) if value is not None and np.isfinite(value) else None
