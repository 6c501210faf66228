"""The Data and Safety Monitoring Board report: a blinded (open-session) and an unblinded (closed-session) version.

A monitoring board meets in an open session, with the sponsor and the investigators, and then in a
closed session of its members and the unblinded statistician; each session has its own report
(Ellenberg, Fleming & DeMets 2019; FDA 2006). The open report describes the conduct of the trial
and the safety data over all participants; only the closed report compares the arms, since
comparative interim data seen by those running the trial can bias its conduct and its analysis.
:func:`dsmb_document` builds either version from a study and its safety analysis
(:mod:`alliance.analysis.safety`) as a :class:`~alliance.report.document.Document`, which
:mod:`.render` prints to HTML and PDF like the main report:

=======================  ==========================================  ==========================================
section                  blinded (open session)                      unblinded (closed session)
=======================  ==========================================  ==========================================
report facts             study, protocol, data cut-off, version,     the same, and the arms with their sizes
                         generated at, distribution
enrolment and flow       participants at each stage, Total only;     per arm and Total; the CONSORT diagram by
                         the flow diagram pooled                     arm (:mod:`.flow`)
adverse events           participants with an event and events, by   the same, one column per arm and Total
                         CTCAE grade and by relatedness: Total
serious adverse events   the listing, without the arm                the listing with the arm
deaths                   count and listing, without the arm          with the arm
vital signs              peaks per dosing session, all participants  per arm and session, and all participants
C-SSRS                   worst ideation ever and any behaviour:      per arm and Total
                         Total
alliance and harm        not shown                                   the exploratory test (:mod:`.narrative`)
notes on the data        small totals, relatedness not recorded,     also arms with few participants
                         serious events ongoing, records after the
                         cut-off, the caller's notes
=======================  ==========================================  ==========================================

*Blinded* means here that no number or line of the open report depends on which participant is in
which arm: the arm-wise entries of the safety analysis are dropped before anything is formatted,
the listings name participants but never their arm, and the flow counts are summed over the arms,
so the open report of a study is the same, byte for byte, after its arms are re-assigned at random
(``tests/report/test_dsmb.py`` checks exactly that). It names neither the arms nor their sizes.
Every heading and the footer of every PDF page carry the version's mark (:data:`MARKS`).

The data cut-off is the date given, or else the latest date anywhere in the study's tables
(enrolment, answers, dosing, adverse events, vital signs, medications); records dated after a
given cut-off are counted in a note, not dropped (an earlier cut-off needs the data cut first).

References
----------
Ellenberg SS, Fleming TR, DeMets DL (2019). Data Monitoring Committees in Clinical Trials: A
Practical Perspective, 2nd ed. Hoboken, NJ: Wiley. (Open and closed sessions and their reports;
the confidentiality of comparative interim data.)
U.S. Food and Drug Administration (2006). Guidance for Clinical Trial Sponsors: Establishment and
Operation of Clinical Trial Data Monitoring Committees. Rockville, MD: FDA (CBER, CDER, CDRH).
(Meeting format: open and closed sessions; confidentiality of interim data and analyses.)
ICH E2A (1994), seriousness criteria; National Cancer Institute (2017), CTCAE v5.0 grades; Posner K
et al. (2011), the C-SSRS, Am J Psychiatry 168(12):1266-1277.
"""

from __future__ import annotations

import dataclasses
import datetime as _datetime
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from alliance import __version__

from . import narrative, tables
from .document import Document, FigureBlock, Section, TableBlock
from .flow import FlowCounts, flow_counts, flow_diagram
from .labels import Labels

__all__ = ["MARKS", "VERSIONS", "DsmbFacts", "data_cutoff", "dsmb_document", "dsmb_facts", "safety_results",
           "write_dsmb_report"]

VERSIONS = ("blinded", "unblinded")
MARKS = {"blinded": "BLINDED \u2014 open session",
         "unblinded": "UNBLINDED \u2014 closed session: confidential to the DSMB"}
TOTAL = "Total"
# The safety entries computed once per arm and once for everybody (``arm == "all"``).
_BY_ARM_KINDS = ("by_arm", "vital_signs_by_arm", "cssrs_worst_by_arm")
# The dated columns of the tidy contract (docs/data.md), by table.
_DATED = (("participants", ("enrolled_on",)), ("responses", ("administered_at",)), ("dosing_sessions", ("date",)),
          ("adverse_events", ("onset", "resolved_on")), ("vital_signs", ("measured_at",)),
          ("concomitant_medications", ("start", "stop")))
_FEW_IN_SESSION = 3
# A4 holds a label column and four count columns of "12 (92%); 24 events" unbroken (two arms and Total need
# four); a table with more columns lets its cells wrap.
_UNBROKEN_COLUMNS = 5


@dataclass(frozen=True)
class DsmbFacts:
    """What the title page of a DSMB report says, and what an audit record of its download keeps.

    Attributes
    ----------
    study : str
        The study's name (the stored study's name, or the protocol's id).
    protocol : str
        The protocol's name and id.
    version : {"blinded", "unblinded"}
    cutoff : str or None
        The data cut-off, ISO date.
    cutoff_source : str
        ``given``, ``latest date in the data``, ``date of the analysis (results)`` or ``not known``.
    generated_at : str
        ISO 8601 date-time (UTC) of the report.
    participants : int
        Enrolled.
    adverse_events, serious_events : int
        Events in the data (every arm).
    deaths : int
        Participants with a fatal adverse event.
    """

    study: str
    protocol: str
    version: str
    cutoff: str | None
    cutoff_source: str
    generated_at: str
    participants: int
    adverse_events: int
    serious_events: int
    deaths: int

    @property
    def mark(self) -> str:
        return MARKS[self.version]

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "mark": self.mark}


def safety_results(study, *, created_utc: str | None = None):
    """Run only the safety analysis of the study's plan (the DSMB report needs nothing else).

    Parameters
    ----------
    study : alliance.study.Study
    created_utc : str, optional
        The timestamp the results record (tests pass a fixed one).

    Returns
    -------
    alliance.analysis.Results
        Only ``safety`` (and ``deviations``, ``provenance``) filled: the plan's ``safety`` analyses,
        or, for a plan without one, a safety analysis without the alliance-vs-harm test.
    """
    from alliance.analysis import run_analysis
    from alliance.protocol import AnalysisSpec, default_protocol

    plan = study.protocol.analysis or default_protocol().analysis
    mine = tuple(a for a in plan.analyses if a.type == "safety") or (AnalysisSpec("safety", "safety", None),)
    return run_analysis(study, plan=dataclasses.replace(plan, analyses=mine), created_utc=created_utc)


def _dates(values: pd.Series) -> pd.Series:
    # the calendar day as written (a date-time's own day, not its UTC day); other ISO spellings parsed whole
    text = values.dropna().astype(str)
    days = pd.to_datetime(text.str[:10], format="%Y-%m-%d", errors="coerce")
    rest = days.isna()
    if rest.any():
        days[rest] = pd.to_datetime(text[rest], format="ISO8601", errors="coerce", utc=True).dt.tz_localize(None)
    return days.dropna()


def _dated_columns(study):
    for attribute, columns in _DATED:
        frame = getattr(study, attribute, None)
        if frame is None:
            continue
        for column in columns:
            if column in frame.columns:
                yield attribute, column, _dates(frame[column])


def data_cutoff(study) -> _datetime.date | None:
    """The latest date in the study's tables (``None`` when nothing is dated).

    Parameters
    ----------
    study : alliance.study.Study

    Returns
    -------
    datetime.date or None
        The largest of ``participants.enrolled_on``, ``responses.administered_at``,
        ``dosing_sessions.date``, ``adverse_events.onset`` and ``resolved_on``,
        ``vital_signs.measured_at``, ``concomitant_medications.start`` and ``stop``.
    """
    latest = [days.max() for _, _, days in _dated_columns(study) if len(days)]
    return max(latest).date() if latest else None


def _as_date(value) -> _datetime.date:
    if isinstance(value, _datetime.datetime):
        return value.date()
    if isinstance(value, _datetime.date):
        return value
    return _datetime.date.fromisoformat(str(value)[:10])


def _unpack(safety) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    if hasattr(safety, "safety"):  # Results
        return list(safety.safety), dict(getattr(safety, "provenance", {}) or {})
    return list(safety), {}


def _fatal(entry: dict[str, Any]) -> bool:
    return (entry.get("severity") == 5 or entry.get("outcome") == "fatal"
            or "death" in str(entry.get("seriousness") or "").split(";"))


def _open_entries(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The entries of the open report: those over all participants; the serious events without their arm."""
    out = []
    for entry in entries:
        kind = entry.get("kind")
        if (kind in _BY_ARM_KINDS and entry.get("arm") != "all") or kind == "alliance_vs_harm":
            continue
        if kind == "serious_event":
            entry = {**entry, "arm": ""}
        out.append(entry)
    return out


def dsmb_facts(study, safety=None, *, blinded: bool = True, cutoff=None, generated_at: str | None = None,
               study_name: str | None = None) -> DsmbFacts:
    """The title-page facts of the report :func:`dsmb_document` builds with the same arguments."""
    entries, provenance = _unpack(safety if safety is not None else safety_results(study))
    if cutoff is not None:
        when, source = _as_date(cutoff).isoformat(), "given"
    elif study is not None and (latest := data_cutoff(study)) is not None:
        when, source = latest.isoformat(), "latest date in the data"
    elif provenance.get("created_utc"):
        when, source = str(provenance["created_utc"])[:10], "date of the analysis (results)"
    else:
        when, source = None, "not known"
    everyone = next((e for e in entries if e.get("kind") == "by_arm" and e.get("arm") == "all" and "skipped" not in e),
                    {})
    listing = [e for e in entries if e.get("kind") == "serious_event"]
    if study is not None:
        protocol = study.protocol
        enrolled = len(study.participants)
        protocol_text = f"{protocol.name}; id {protocol.id}" if getattr(protocol, "name", "") else protocol.id
        name = study_name or protocol.id
    else:
        enrolled = int(everyone.get("n_participants", provenance.get("n_participants", 0)))
        protocol_text = str(provenance.get("protocol_id") or "not known")
        name = study_name or protocol_text
    return DsmbFacts(
        study=name, protocol=protocol_text, version="blinded" if blinded else "unblinded", cutoff=when,
        cutoff_source=source,
        generated_at=generated_at or _datetime.datetime.now(_datetime.UTC).isoformat(timespec="seconds"),
        participants=int(enrolled), adverse_events=int(everyone.get("events", 0)), serious_events=len(listing),
        deaths=len({e["participant_id"] for e in listing if _fatal(e)}))


def _arm_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """``All (n = 24)`` → ``Total (n = 24)``: the DSMB's word for the pooled column."""
    return frame.rename(columns={c: TOTAL + c[3:] for c in frame.columns if str(c).startswith("All (")})


def _unbroken(frame: pd.DataFrame, labels: Sequence[str] = ("", "Arm", "Stage")) -> pd.DataFrame:
    """The count cells with no-break spaces: ``23 (96%); 48 events`` stays on one line, the header wraps instead.

    Only for a table of up to :data:`_UNBROKEN_COLUMNS` columns: with more arms the cells could not all
    fit on the page's width unbroken, and the PDF would let them overflow.
    """
    if len(frame.columns) > _UNBROKEN_COLUMNS:
        return frame
    return frame.assign(**{str(c): frame[c].astype(str).str.replace(" ", "\u00a0") for c in frame.columns
                           if c not in labels})


def _arm_rows(frame: pd.DataFrame, blinded: bool) -> pd.DataFrame:
    """A table with an ``Arm`` column: ``All`` becomes ``Total``; the open report has no ``Arm`` column."""
    if blinded:
        return frame.drop(columns="Arm")
    return frame.assign(Arm=frame["Arm"].where(frame["Arm"] != "All", TOTAL))


def _flow_table(counts: FlowCounts, blinded: bool) -> pd.DataFrame:
    rows = [{"Stage": "Enrolled", TOTAL: str(counts.enrolled)}]
    for stage, per_arm in counts.stages:
        total = sum(per_arm.values())
        row: dict[str, str] = {"Stage": stage}
        if not blinded:
            row |= {f"{label} (n = {counts.stages[0][1][arm]})": str(per_arm[arm]) for arm, label in counts.arms}
        row[TOTAL] = str(total)
        rows.append(row)
    frame = pd.DataFrame(rows).fillna("")
    return frame[["Stage", *[c for c in frame.columns if c not in ("Stage", TOTAL)], TOTAL]]


def _pooled(counts: FlowCounts) -> FlowCounts:
    """The flow summed over the arms: one column, for the open report's diagram."""
    return FlowCounts(counts.enrolled, (("total", "All arms together"),),
                      tuple((stage, {"total": sum(per_arm.values())}) for stage, per_arm in counts.stages),
                      {"total": sum(counts.analysed.values())} if counts.analysed else {}, counts.analysed_what)


def _records_after(study, cutoff: _datetime.date) -> list[str]:
    found = []
    for attribute, column, days in _dated_columns(study):
        later = int((days.dt.date > cutoff).sum()) if len(days) else 0
        if later:
            found.append(f"{later} in {attribute}.{column}")
    return found


def dsmb_document(study, safety=None, *, blinded: bool = True, cutoff=None, generated_at: str | None = None,
                  study_name: str | None = None, notes: Sequence[str] = ()) -> Document:
    """Assemble the DSMB report, blinded (open session) or unblinded (closed session).

    Parameters
    ----------
    study : alliance.study.Study or None
        The study (tidy contract); ``None`` to build the report from results alone (a
        ``results.json``): then enrolment is the participants per arm, without the flow.
    safety : alliance.analysis.Results or sequence of dict, optional
        The results (their ``safety`` section) or the safety entries; by default
        :func:`safety_results` computes them from the study.
    blinded : bool, default True
        The open-session version: every table over all participants (see the module docstring).
    cutoff : datetime.date or str, optional
        The data cut-off; by default the latest date in the data (:func:`data_cutoff`).
    generated_at : str, optional
        ISO 8601 date-time printed as the time of the report; by default now (UTC).
    study_name : str, optional
        The study's name; by default the protocol's id.
    notes : sequence of str
        The caller's notes on the data (e.g. that the dates are shifted), printed first under
        "Notes on the data".

    Returns
    -------
    Document
        Sections: report facts, enrolment and flow, adverse events, serious adverse events,
        deaths, vital signs, C-SSRS, (unblinded only) alliance and harm, notes on the data.
    """
    if safety is None:
        safety = safety_results(study)
    facts = dsmb_facts(study, safety, blinded=blinded, cutoff=cutoff, generated_at=generated_at,
                       study_name=study_name)
    entries, _ = _unpack(safety)
    if blinded:
        entries = _open_entries(entries)
    mark = facts.mark

    def heading(title: str) -> str:
        return f"{title} [{mark}]"

    by_arm = [e for e in entries if e.get("kind") == "by_arm" and "skipped" not in e]
    # every arm named (the tables call an arm without a label "All"); by its id when built from results alone
    arm_labels = {e["arm"]: e["arm"] for e in by_arm if e["arm"] != "all"}
    if study is not None:
        arm_labels |= {a.id: a.label or a.id for a in study.protocol.arms}
    everyone = next((e for e in by_arm if e["arm"] == "all"), None)
    arms = [e for e in by_arm if e["arm"] != "all"]
    total_n = facts.participants
    sections: list[Section] = []
    doubtful: list[str] = list(notes)

    # -- report facts ---------------------------------------------------------------------------------
    cutoff_text = facts.cutoff or "not known"
    if facts.cutoff_source != "given":
        cutoff_text += f" ({facts.cutoff_source})"
    rows = [("Study", facts.study), ("Protocol", facts.protocol), ("Report version", mark),
            ("Data cut-off", cutoff_text), ("Generated at", facts.generated_at),
            ("Participants enrolled", str(total_n)),
            ("Distribution", "Open session: the DSMB, the sponsor and the investigators." if blinded else
             "Closed session: the DSMB members and the unblinded statistician only; not to be copied or passed "
             "on before the trial is unblinded.")]
    if not blinded and arms:
        rows.insert(6, ("Arms", "; ".join(f"{arm_labels.get(e['arm'], e['arm'])} (n = {e['n_participants']})"
                                          for e in arms)))
    section = Section("facts", heading("Report facts"))
    if blinded:
        section.blocks.append(
            "This is the report of the open session. Every table counts all participants together; listings name "
            "participants but not their arm, and nothing in this report depends on which participant is in which "
            "arm. The comparison of the arms is in the closed-session report, seen by the board and the unblinded "
            "statistician only (Ellenberg, Fleming & DeMets 2019; FDA 2006).")
    else:
        section.blocks.append(
            "This is the report of the closed session: the same tables as the open report, by arm, and the "
            "serious-event listing with each participant's arm. It is confidential to the DSMB; comparative "
            "interim data seen by those running the trial can bias its conduct and analysis (Ellenberg, Fleming "
            "& DeMets 2019; FDA 2006).")
    section.blocks.append(TableBlock("Report facts", pd.DataFrame(rows, columns=["Item", "Value"])))
    sections.append(section)

    # -- enrolment and flow ---------------------------------------------------------------------------
    section = Section("enrolment", heading("Enrolment and participant flow"))
    if study is not None:
        counts = flow_counts(study)
        section.blocks.append(TableBlock(
            "Participants at each stage" + ("" if blinded else ", by arm"), _flow_table(counts, blinded),
            "Dosed: the session is recorded in dosing_sessions.csv (or, without it, something was answered at the "
            "dosing timepoint); assessed: at least one answer at the timepoint."))
        section.blocks.append(FigureBlock(
            "dsmb_flow", "Flow of participants (CONSORT 2010 style)" + (
                ", all arms together." if blinded else ", by arm. In brackets: allocated but not at that stage."),
            flow_diagram(_pooled(counts) if blinded else counts)))
    elif everyone is not None:
        frame = pd.DataFrame([{"Stage": "Allocated", **{f"{arm_labels.get(e['arm'], e['arm'])}": str(e["n_participants"])
                                                         for e in arms}, TOTAL: str(everyone["n_participants"])}])
        section.blocks.append("Built from the results alone: the flow through dosing and follow-up needs the study's "
                              "data.")
        section.blocks.append(TableBlock("Participants allocated", frame if not blinded else frame[["Stage", TOTAL]]))
    sections.append(section)

    # -- adverse events -------------------------------------------------------------------------------
    skipped = next((e for e in entries if e.get("kind") == "by_arm" and "skipped" in e), None)
    section = Section("adverse_events", heading("Adverse events"))
    listing = tables.serious_event_table(entries, arm_labels)
    serious = [e for e in entries if e.get("kind") == "serious_event"]
    if skipped is not None or everyone is None:
        reason = skipped["skipped"] if skipped is not None else "the results have no adverse-event entries"
        section.blocks.append(f"No adverse events are reported: {reason}.")
        sections.append(section)
    else:
        section.blocks.append(
            f"{everyone['participants_with_event']} of {everyone['n_participants']} participants had at least one "
            f"adverse event ({everyone['events']} events); {everyone['participants_with_serious']} had a serious one "
            f"({everyone['serious_events']} events).")
        section.blocks.append(TableBlock(
            "Adverse events by severity grade" + ("" if blinded else ", by arm"),
            _unbroken(_arm_columns(tables.safety_by_arm_table(entries, arm_labels))),
            "Participants with at least one event (percent of the column's n), and the number of events. Grades: "
            "CTCAE v5.0 (a participant counts in every grade they had). Related: possibly, probably or definitely, "
            "as the investigator assessed it."))
        section.blocks.append(TableBlock(
            "Adverse events by relatedness to the study treatment" + ("" if blinded else ", by arm"),
            _unbroken(_arm_columns(tables.safety_relatedness_table(entries, arm_labels))),
            "A participant with events of different relatedness counts in each of those rows."))
        sections.append(section)

        # -- serious adverse events and deaths ----------------------------------------------------------
        section = Section("serious_events", heading("Serious adverse events"))
        if len(listing):
            section.blocks.append(TableBlock(
                "Serious adverse events, by onset" + ("" if blinded else ", with the arm"),
                listing.drop(columns="Arm") if blinded else listing,
                "Seriousness criteria of ICH E2A; grade: CTCAE v5.0; resolved: the date it resolved, or ongoing."))
        else:
            section.blocks.append("No serious adverse event was recorded up to the cut-off.")
        sections.append(section)

        section = Section("deaths", heading("Deaths"))
        fatal = [e for e in serious if _fatal(e)]
        if fatal:
            section.blocks.append(f"{facts.deaths} participant{'' if facts.deaths == 1 else 's'} died "
                                  f"({len(fatal)} fatal event{'' if len(fatal) == 1 else 's'}).")
            frame = tables.serious_event_table(fatal, arm_labels)
            section.blocks.append(TableBlock("Fatal adverse events", frame.drop(columns="Arm") if blinded else frame,
                                             "Events of CTCAE grade 5, outcome fatal or seriousness criterion death."))
        else:
            section.blocks.append("No death was recorded up to the cut-off.")
        sections.append(section)
        unknown = everyone["by_relatedness"].get("unknown", {}).get("events", 0)
        if unknown:
            doubtful.append(f"Relatedness is not recorded for {unknown} of {everyone['events']} adverse events; "
                            "they are counted as related in no row.")
        ongoing = [e for e in serious if not e.get("resolved_on") and not _fatal(e)]
        if ongoing:
            doubtful.append(f"{len(ongoing)} serious adverse event{' is' if len(ongoing) == 1 else 's are'} not "
                            "resolved at the cut-off: the outcome may still change.")

    # -- vital signs ------------------------------------------------------------------------------------
    vitals = tables.vital_signs_table(entries, arm_labels)
    section = Section("vital_signs", heading("Vital signs on the dosing days"))
    if len(vitals):
        section.blocks.append(TableBlock(
            "Peak vital signs per dosing session" + ("" if blinded else ", by arm"), _arm_rows(vitals, blinded),
            "Each participant's highest reading of the session; mean (SD) and the largest over participants. "
            "Thresholds: the protocol's safety section (default: warning 160/100 mmHg or 120 bpm, urgent 180/120 "
            "mmHg, the ACC/AHA 2017 hypertensive crisis)."))
        few = [e for e in entries if e.get("kind") == "vital_signs_by_arm" and e.get("arm") == "all"
               and e["n_participants"] < _FEW_IN_SESSION]
        for e in few:
            doubtful.append(f"Dosing session {e['session']} has vital signs of {e['n_participants']} participant"
                            f"{'' if e['n_participants'] == 1 else 's'} only: its mean and SD describe very few.")
    else:
        section.blocks.append("No vital signs were recorded (vital_signs.csv).")
    sections.append(section)

    # -- C-SSRS -------------------------------------------------------------------------------------------
    cssrs = tables.cssrs_worst_table(entries, arm_labels)
    section = Section("cssrs", heading("Suicidal ideation and behaviour (C-SSRS)"))
    if len(cssrs):
        frame = cssrs.assign(Arm=[TOTAL if a == "All" else f"{a} (n = {e['n_assessed']})" for a, e in zip(
            cssrs["Arm"], [e for e in entries if e.get("kind") == "cssrs_worst_by_arm"], strict=True)])
        frame = frame.set_index("Arm").drop(columns="Assessed").T.reset_index().rename(columns={"index": ""})
        assessed = next(e for e in entries if e.get("kind") == "cssrs_worst_by_arm" and e["arm"] == "all")
        frame = frame.rename(columns={TOTAL: f"{TOTAL} (n = {assessed['n_assessed']})"})
        section.blocks.append(TableBlock(
            "Worst C-SSRS ever recorded" + ("" if blinded else ", by arm"), frame,
            "Participants assessed at least once (column n), by the most severe type of ideation answered yes at any "
            "assessment (Posner et al. 2011); behaviour: an actual, interrupted or aborted attempt or preparatory "
            "acts."))
        if assessed["n_assessed"] < total_n:
            doubtful.append(f"{total_n - assessed['n_assessed']} of {total_n} participants have no C-SSRS "
                            "assessment: their worst ideation is not known.")
    else:
        section.blocks.append("The protocol has no C-SSRS form, or nobody was assessed.")
    sections.append(section)

    # -- alliance and harm: the closed session only ------------------------------------------------------
    if not blinded:
        harm = [e for e in entries if e.get("kind") == "alliance_vs_harm"]
        if harm:
            labels = Labels(study.protocol) if study is not None else _NoLabels()
            section = Section("alliance_harm", heading("Alliance and harm (exploratory)"))
            section.blocks.extend(narrative.alliance_vs_harm_sentence(entry, labels) for entry in harm)
            sections.append(section)

    # -- notes on the data ------------------------------------------------------------------------------
    if total_n < narrative.MIN_N_FINDING:
        doubtful.append(f"Only {total_n} participants: one participant moves a percentage by "
                        f"{100 / max(total_n, 1):.0f} points; read the counts.")
    if not blinded:
        for e in arms:
            if e["n_participants"] < narrative.MIN_N_FINDING:
                doubtful.append(f"{arm_labels.get(e['arm'], e['arm'])} has {e['n_participants']} participants: a "
                                "difference between the arms of one or two events is within chance.")
    if cutoff is not None and study is not None:
        later = _records_after(study, _as_date(cutoff))
        if later:
            doubtful.append("Records dated after the cut-off are included (" + ", ".join(later) + "): cut the data "
                            "at the cut-off before the report to leave them out.")
    section = Section("notes", heading("Notes on the data"))
    section.blocks.extend(doubtful or ["Nothing to note: no small total, every event's relatedness recorded, no "
                                       "serious event ongoing, no record after the cut-off."])
    sections.append(section)

    for section in sections:  # a heading's "(n = 13)" stays on one line; the arm's label wraps before it
        for block in section.blocks:
            if isinstance(block, TableBlock):
                block.frame = block.frame.rename(columns=lambda c: str(c).replace("(n = ", "(n\u00a0=\u00a0"))
    # the PDF's page footer prints the first four: the mark on every page, and short enough for the page number
    provenance = [("Version", mark), ("Study", facts.study), ("Data cut-off", facts.cutoff or "not known"),
                  ("Software", f"alliance {__version__}"), ("Generated", facts.generated_at),
                  ("Protocol", facts.protocol)]
    return Document(title=f"DSMB safety report: {facts.study}",
                    subtitle=f"{mark}. Data cut-off {facts.cutoff or 'not known'}; generated {facts.generated_at}.",
                    sections=sections, provenance=provenance)


class _NoLabels:
    """Measure names as written (a report built from results alone has no protocol to name them)."""

    @staticmethod
    def measure(name: str, short: bool = False) -> str:
        return name


def write_dsmb_report(study, out_dir: str | Path, *, safety=None, blinded: bool = True, cutoff=None,
                      generated_at: str | None = None, study_name: str | None = None,
                      notes: Sequence[str] = ()) -> dict[str, Path]:
    """Write ``dsmb-blinded.html`` and ``.pdf`` (or ``dsmb-unblinded.*``) to ``out_dir``.

    Parameters
    ----------
    study, safety, blinded, cutoff, generated_at, study_name, notes
        As :func:`dsmb_document`.
    out_dir : str or Path
        Created if absent.

    Returns
    -------
    dict of str to Path
        ``html`` and ``pdf``.
    """
    from .render import render_html, render_pdf, rendered_blocks

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    document = dsmb_document(study, safety, blinded=blinded, cutoff=cutoff, generated_at=generated_at,
                             study_name=study_name, notes=notes)
    rendered = rendered_blocks(document)
    stem = f"dsmb-{'blinded' if blinded else 'unblinded'}"
    html = out / f"{stem}.html"
    html.write_text(render_html(rendered), encoding="utf-8")
    pdf = render_pdf(rendered, out / f"{stem}.pdf")
    for figure in document.figures:  # free the figures' memory (they are not managed by pyplot)
        figure.figure.clear()
    return {"html": html, "pdf": pdf}
