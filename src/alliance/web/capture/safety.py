"""Writing a participant's safety records in the web app: adverse events, vital signs, medications.

Each record is checked by the same function that checks the tidy table it belongs to
(:func:`alliance.study.adverse_events.check_adverse_events`,
:func:`alliance.study.vital_signs.check_vital_signs`,
:func:`alliance.study.medications.check_medications`) on a one-row table, so that a form and an
import accept exactly the same records and refuse them with the same reasons; an ``ae_id`` is
also checked against the study's stored events (unique in the study). A refused record raises
:class:`SafetyRecordError` holding the problems, which the views show at their fields.

Every write is an audit event (``log.created`` / ``log.changed``), the study's table gets its
columns on first use (as an import would set them), and :data:`alliance.web.capture.signals.safety_recorded`
is sent in the same transaction, so that the monitor app's alerts (a serious adverse event, a
vital sign past the protocol's threshold, a washout not kept) are stored with the record or not
at all.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from alliance.problems import DataProblem
from alliance.protocol import Protocol
from alliance.study.adverse_events import ADVERSE_EVENT_COLUMNS, check_adverse_events
from alliance.study.medications import MEDICATION_COLUMNS, check_medications
from alliance.study.validation import Locator
from alliance.study.vital_signs import VITAL_SIGN_COLUMNS, check_vital_signs
from alliance.web.audit.log import AuditLog

from . import models as m
from . import signals
from .errors import StorageError

__all__ = ["SafetyRecordError", "check_record", "next_ae_id", "record_adverse_event", "record_medication", "record_vital_sign"]


class SafetyRecordError(StorageError):
    """A safety record the tidy contract refuses; ``problems`` says why, field by field."""

    def __init__(self, problems: list[DataProblem]):
        self.problems = problems
        super().__init__("; ".join(p.describe() for p in problems))


def _cell(value: Any) -> Any:
    if value is None or value == "":
        return pd.NA
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def check_record(check, participant: m.Participant, row: Mapping[str, Any], file: str, *args) -> None:
    """Check one record entered in the web app with the tidy table's own ``check`` (a one-row table).

    ``check(*args, table, participant_ids, locator)``; raises :class:`SafetyRecordError` with its problems.
    """
    frame = pd.DataFrame([{k: _cell(v) for k, v in row.items()}], dtype="string")
    # The form is one "row"; the locator's row numbers are not shown for it (see SafetyRecordError).
    problems = check(*args, frame, [participant.participant_id], Locator(file))
    if problems:
        raise SafetyRecordError(problems)


def _columns(study: m.Study, field: str, columns: tuple[str, ...], log: AuditLog) -> None:
    # A study's table keeps the columns it was imported with; the web app's first record sets them all.
    if getattr(study, field) is None:
        setattr(study, field, list(columns))
        study.save(update_fields=[field, "updated_at"])
        log.changed(study, {field: None}, {field: list(columns)}, label=study.name)


def _store(model, participant: m.Participant, record, values: dict, label: str, log: AuditLog):
    if record is None:
        record = model.objects.create(participant=participant, **values)
        log.created(record, {"participant_id": participant.participant_id, **values}, label=label)
    else:
        old = {k: getattr(record, k) for k in values}
        if old == values:
            return record
        for k, v in values.items():
            setattr(record, k, v)
        record.save()
        log.changed(record, old, values, label=label)
    signals.safety_recorded.send(sender=model, participant=participant, record=record)
    return record


def next_ae_id(study: m.Study) -> str:
    """A free adverse-event id for the study: ``AE-001``, ``AE-002``, … (one past the highest such id)."""
    taken = set(m.AdverseEvent.objects.filter(participant__study=study).values_list("ae_id", flat=True))
    numbers = [int(t[3:]) for t in taken if t.startswith("AE-") and t[3:].isdigit()]
    n = max(numbers, default=0) + 1
    while f"AE-{n:03d}" in taken:
        n += 1
    return f"AE-{n:03d}"


def record_adverse_event(participant: m.Participant, values: Mapping[str, Any], log: AuditLog,
                         event: m.AdverseEvent | None = None) -> m.AdverseEvent:
    """Record a new adverse event, or update ``event``, after the tidy contract's checks.

    Parameters
    ----------
    participant : Participant
    values : mapping
        The event's columns of ``adverse_events.csv`` but ``participant_id``: ``ae_id``, ``term``,
        ``onset``, ``resolved_on``, ``severity`` (1-5), ``serious`` (bool), ``seriousness``
        (``;``-separated ICH E2A criteria), ``relatedness``, ``expected`` (bool or None),
        ``action``, ``outcome``, ``code``; text as given, ``""`` when not given.
    log : AuditLog
    event : AdverseEvent, optional
        The stored event to update (its ``ae_id`` cannot change).

    Returns
    -------
    AdverseEvent

    Raises
    ------
    SafetyRecordError
        With the problems :func:`~alliance.study.adverse_events.check_adverse_events` finds, or an
        ``ae_id`` another event of the study has.

    References
    ----------
    ICH E2A (1994), Clinical safety data management: definitions and standards for expedited
    reporting (seriousness criteria). NCI (2017), CTCAE v5.0 (grades).
    """
    values = dict(values)
    if event is not None:
        values["ae_id"] = event.ae_id
    row = {"participant_id": participant.participant_id, **{c: values.get(c) for c in ADVERSE_EVENT_COLUMNS[1:]}}
    check_record(check_adverse_events, participant, row, "adverse event")
    others = m.AdverseEvent.objects.filter(participant__study=participant.study, ae_id=values["ae_id"])
    if event is not None:
        others = others.exclude(pk=event.pk)
    if others.exists():
        raise SafetyRecordError([DataProblem("adverse event", None, "ae_id", values["ae_id"],
                                             "an id no other adverse event of the study has",
                                             "is the id of another adverse event of the study")])
    stored = {"term": values["term"].strip(), "onset": values["onset"], "resolved_on": values.get("resolved_on") or "",
              "severity": int(values["severity"]), "serious": bool(values["serious"]),
              "seriousness": values.get("seriousness") or "", "relatedness": values.get("relatedness") or "",
              "expected": values.get("expected"), "action": values.get("action") or "",
              "outcome": values.get("outcome") or "", "code": (values.get("code") or "").strip()}
    _columns(participant.study, "adverse_event_columns", ADVERSE_EVENT_COLUMNS, log)
    label = f"{participant.participant_id}/adverse event {values['ae_id']}"
    if event is None:
        stored = {"ae_id": values["ae_id"], **stored}
    return _store(m.AdverseEvent, participant, event, stored, label, log)


def record_vital_sign(participant: m.Participant, protocol: Protocol, values: Mapping[str, Any],
                      log: AuditLog) -> m.VitalSign:
    """Record a vital-sign reading of a dosing day (a reading at the same time is corrected).

    Parameters
    ----------
    participant : Participant
    protocol : Protocol
        Its dosing sessions are the allowed ``session`` numbers.
    values : mapping
        ``session`` (int), ``measured_at`` (ISO-8601 date-time text), ``minutes_after_dose``
        (int or None), ``systolic_bp``, ``diastolic_bp``, ``heart_rate`` (float or None).
    log : AuditLog

    Returns
    -------
    VitalSign

    Raises
    ------
    SafetyRecordError
        With the problems :func:`~alliance.study.vital_signs.check_vital_signs` finds (plausibility
        ranges, diastolic below systolic, at least one measure).
    """
    row = {"participant_id": participant.participant_id, **{c: values.get(c) for c in VITAL_SIGN_COLUMNS[1:]}}
    check_record(check_vital_signs, participant, row, "vital sign", protocol)
    stored = {"minutes_after_dose": values.get("minutes_after_dose"),
              **{k: (None if values.get(k) is None else float(values[k]))
                 for k in ("systolic_bp", "diastolic_bp", "heart_rate")}}
    _columns(participant.study, "vital_sign_columns", VITAL_SIGN_COLUMNS, log)
    key = {"session": int(values["session"]), "measured_at": str(values["measured_at"])}
    reading = m.VitalSign.objects.filter(participant=participant, **key).first()
    label = f"{participant.participant_id}/session {key['session']}/{key['measured_at']}"
    return _store(m.VitalSign, participant, reading, stored if reading else {**key, **stored}, label, log)


def record_medication(participant: m.Participant, values: Mapping[str, Any], log: AuditLog,
                      medication: m.ConcomitantMedication | None = None) -> m.ConcomitantMedication:
    """Record a concomitant medication, or update ``medication`` (its name and start cannot change).

    Parameters
    ----------
    participant : Participant
    values : mapping
        ``name``, ``dose``, ``start`` (``YYYY-MM-DD``), ``stop`` (``YYYY-MM-DD`` or ``""`` while
        ongoing), ``indication``.
    log : AuditLog
    medication : ConcomitantMedication, optional

    Returns
    -------
    ConcomitantMedication

    Raises
    ------
    SafetyRecordError
        With the problems :func:`~alliance.study.medications.check_medications` finds, or when the
        participant has this medication from this start date already.
    """
    values = dict(values)
    if medication is not None:
        values.update(name=medication.name, start=medication.start)
    row = {"participant_id": participant.participant_id, **{c: values.get(c) for c in MEDICATION_COLUMNS[1:]}}
    check_record(check_medications, participant, row, "medication")
    values["name"] = values["name"].strip()
    if medication is None and m.ConcomitantMedication.objects.filter(
            participant=participant, name=values["name"], start=values["start"]).exists():
        raise SafetyRecordError([DataProblem("medication", None, "name", values["name"],
                                             "a medication not recorded from this start date yet",
                                             f"is recorded from {values['start']} already; change that record")])
    stored = {k: (values.get(k) or "").strip() for k in ("dose", "stop", "indication")}
    _columns(participant.study, "medication_columns", MEDICATION_COLUMNS, log)
    label = f"{participant.participant_id}/medication {values['name']} from {values['start']}"
    if medication is None:
        stored = {"name": values["name"], "start": values["start"], **stored}
    return _store(m.ConcomitantMedication, participant, medication, stored, label, log)
