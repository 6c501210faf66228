"""Storing studies in the database and reading them back, with an audit trail; no HTTP involved.

:func:`import_study` puts an :class:`alliance.study.Study` (the tidy contract) into the database,
:func:`export_study` rebuilds one from it. The CLI (``alliance import`` / ``alliance export``)
and the web app call these, so both write data the same way.

Like every module that uses Django's models, this one needs Django set up before it is imported,
and importing it sets nothing up: in a script or the CLI, call :func:`alliance.web.django_setup`
first (it also creates or migrates the database schema), then import this module. Imported
before that, it fails with Django's ``ImproperlyConfigured`` (or ``AppRegistryNotReady``).

The audit trail
---------------
An import is one transaction, and its audit events are written in it. To keep an import of
600,000 answers fast, a new administration gets **one** ``create`` event whose ``new`` value
holds the administration *and all its item values* (``items``), instead of one event per item.
Every other created, changed or deleted object gets its own event: a changed answer is a
``change`` event of that ``capture.itemresponse`` with ``old`` and ``new`` value; a deleted
administration's ``delete`` event holds all the item values it had. So every value that was ever
stored can be read back from the audit trail.

Facilitator-rated instruments
-----------------------------
An instrument whose ``rater`` is ``facilitator`` (the WAI-SR-T) is rated by each of the
participant's facilitators: its rows name the facilitator in ``rater``, and each facilitator's
rating is its own administration, keyed by (participant, timepoint, instrument, facilitator)
with ``Administration.facilitator`` set. Every other administration is keyed by (participant,
timepoint, instrument) and has no facilitator. The same rules hold for both: a rating no longer
in the data is a deletion (refused without ``allow_deletions``), and a facilitator who is not one
of the participant's ``facilitator_ids`` is refused by the core validation before anything is
written.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any

import numpy as np
import pandas as pd
import yaml
from django.db import transaction
from django.db.models import ProtectedError, RestrictedError

from alliance import instruments as bank
from alliance.protocol import Protocol, parse_protocol
from alliance.study import Study, StudyDataError, sort_responses
from alliance.study.measures import score_columns
from alliance.study.validation import DOSING_DAY_COLUMNS
from alliance.web.audit.log import AuditLog, plain
from alliance.web.bulk import BATCH, batches, db_datetime, insert_rows, json_text

from . import models as m
from . import signals
from .errors import StorageError, UnknownStudyError

__all__ = ["DeletionsNotAllowed", "ImportSummary", "StorageError", "UnknownStudyError", "export_study",
           "import_study", "list_studies", "stored_study"]

# The columns of participants.csv that have their own place in the database; any other column is
# a covariate, or an identifier when the protocol lists it under ``identifiers``.
_PARTICIPANT_FIELDS = ("participant_id", "arm", "site", "facilitator_ids", "enrolled_on")
_ENROLLED = "enrolled_on"
_ADMINISTRATION_KEY = ["participant_id", "timepoint", "instrument"]
# An administration's key: participant, timepoint, instrument and the rating facilitator's id, ""
# for every instrument that is not facilitator-rated (module docstring).
AdministrationKey = tuple[str, str, str, str]
_SEPARATOR = "\x1f"  # joins key parts; cannot occur in ids read from CSV text
# The text fields of an adverse event ("" when not given), then the typed ones.
_AE_TEXT = ("term", "onset", "resolved_on", "seriousness", "relatedness", "action", "outcome", "code")
_AE_FIELDS = (*_AE_TEXT, "severity", "serious", "expected")
# A dosing session's stored values beyond its key: what, how much, and the dosing-day record.
_DOSING_FIELDS = ("date", "compound", "amount", "unit", *DOSING_DAY_COLUMNS)


def _number(value) -> float | None:
    return None if value is None else float(value)


def _yes_no(value) -> str | None:
    return None if value is None else ("yes" if value else "no")


@dataclass(frozen=True)
class _ChildTable:
    """An optional table of per-participant records kept in its own model (a safety table).

    ``key`` names the record within the study (its audit label); ``fields`` the stored values;
    ``incoming`` turns a row of the tidy table (None for empty cells) into the key and fields;
    ``outgoing`` turns a stored record back into a row of the table.
    """

    kind: str
    attribute: str
    columns_field: str
    model_name: str
    key: tuple[str, ...]
    fields: tuple[str, ...]
    label: str
    incoming: Any
    outgoing: Any

    @property
    def model(self):
        return getattr(m, self.model_name)


CHILD_TABLES = (
    _ChildTable(
        "adverse_events", "adverse_events", "adverse_event_columns", "AdverseEvent", ("participant_id", "ae_id"),
        _AE_FIELDS, "{participant_id}/adverse event {ae_id}",
        lambda row: {"participant_id": str(row["participant_id"]), "ae_id": str(row["ae_id"]),
                     **{f: _text(row.get(f)) for f in _AE_TEXT}, "severity": int(row["severity"]),
                     "serious": bool(row["serious"]),
                     "expected": None if row.get("expected") is None else bool(row["expected"])},
        lambda r: {**{f: (r[f] or None) for f in ("participant_id", "ae_id", *_AE_TEXT)}, "severity": r["severity"],
                   "serious": _yes_no(r["serious"]), "expected": _yes_no(r["expected"])}),
    _ChildTable(
        "vital_signs", "vital_signs", "vital_sign_columns", "VitalSign", ("participant_id", "session", "measured_at"),
        ("minutes_after_dose", "systolic_bp", "diastolic_bp", "heart_rate"), "{participant_id}/session {session}/{measured_at}",
        lambda row: {"participant_id": str(row["participant_id"]), "session": int(row["session"]),
                     "measured_at": str(row["measured_at"]),
                     "minutes_after_dose": None if row.get("minutes_after_dose") is None else int(row["minutes_after_dose"]),
                     **{f: _number(row.get(f)) for f in ("systolic_bp", "diastolic_bp", "heart_rate")}},
        lambda r: dict(r)),
    _ChildTable(
        "medications", "concomitant_medications", "medication_columns", "ConcomitantMedication",
        ("participant_id", "name", "start"), ("dose", "stop", "indication"), "{participant_id}/medication {name} from {start}",
        lambda row: {"participant_id": str(row["participant_id"]), "name": str(row["name"]), "start": str(row["start"]),
                     **{f: _text(row.get(f)) for f in ("dose", "stop", "indication")}},
        lambda r: {f: (r[f] if f in ("participant_id", "name", "start") else (r[f] or None))
                   for f in ("participant_id", "name", "dose", "start", "stop", "indication")}),
)


@dataclass(frozen=True)
class ImportSummary:
    """What an import did, by kind of record.

    Attributes
    ----------
    study : str
        The study's name.
    created, changed, deleted : dict of str to int
        Counts per kind: ``study``, ``arms``, ``timepoints``, ``facilitators``, ``participants``,
        ``dosing_sessions``, ``administrations``, ``responses``; ``deleted`` also counts
        ``enrolment_dates``: stored enrolment dates an empty ``enrolled_on`` cell would clear (the
        participant stays, without a schedule) and ``alerts`` (of deleted participants, by the
        monitor app). Kinds with no count are left out.
    audit_events : int
        Audit events written (in a dry run: that the import would write).
    dry_run : bool
        True when this is the change an import *would* make, and nothing was written.
    """

    study: str
    created: dict[str, int] = field(default_factory=dict)
    changed: dict[str, int] = field(default_factory=dict)
    deleted: dict[str, int] = field(default_factory=dict)
    audit_events: int = 0
    dry_run: bool = False

    @property
    def unchanged(self) -> bool:
        """True when the import found the database already holding exactly this study."""
        return not (self.created or self.changed or self.deleted)

    @property
    def deletes(self) -> bool:
        """True when the import deletes (or would delete) stored records."""
        return bool(self.deleted)

    def to_dict(self) -> dict:
        return {"study": self.study, "created": dict(self.created), "changed": dict(self.changed),
                "deleted": dict(self.deleted), "audit_events": self.audit_events, "dry_run": self.dry_run}


# Readable names of the kinds of record, singular and plural, for messages.
_KIND_NAMES = {"study": ("study", "studies"), "arms": ("arm", "arms"), "timepoints": ("timepoint", "timepoints"),
               "facilitators": ("facilitator", "facilitators"), "participants": ("participant", "participants"),
               "dosing_sessions": ("dosing session", "dosing sessions"),
               "adverse_events": ("adverse event", "adverse events"),
               "administrations": ("administration", "administrations"), "responses": ("answer", "answers"),
               "enrolment_dates": ("enrolment date", "enrolment dates"), "alerts": ("alert", "alerts")}


def _counted(counts: dict[str, int]) -> str:
    """``{"participants": 1, "responses": 84}`` → ``"1 participant, 84 answers"``."""
    order = list(_KIND_NAMES)
    kinds = sorted(counts, key=lambda k: order.index(k) if k in order else len(order))
    return ", ".join(f"{counts[k]:,} {_KIND_NAMES.get(k, (k, k))[counts[k] != 1]}" for k in kinds)


class DeletionsNotAllowed(StorageError):
    """An import would delete stored records and was not allowed to; nothing was written.

    Attributes
    ----------
    summary : ImportSummary
        The change the import would have made (``dry_run`` is True).
    """

    def __init__(self, message: str, summary: ImportSummary):
        super().__init__(message)
        self.summary = summary


class _WriteNothing(Exception):
    """Raised inside the import's transaction to roll it back, carrying what it would have done."""

    def __init__(self, summary: ImportSummary):
        super().__init__(summary.study)
        self.summary = summary


class _Counts:
    def __init__(self):
        self.created: dict[str, int] = defaultdict(int)
        self.changed: dict[str, int] = defaultdict(int)
        self.deleted: dict[str, int] = defaultdict(int)

    def summary(self, name: str, events: int) -> ImportSummary:
        def nonzero(counts: dict[str, int]) -> dict[str, int]:
            return {k: v for k, v in counts.items() if v}

        return ImportSummary(name, nonzero(self.created), nonzero(self.changed), nonzero(self.deleted), events)


# ---------------------------------------------------------------------------------------------
# Import
# ---------------------------------------------------------------------------------------------

def import_study(study: Study, name: str, actor: str, using: str = "default", *, user=None,
                 allow_deletions: bool = False, dry_run: bool = False) -> ImportSummary:
    """Store a study under ``name``, making the database hold exactly what ``study`` holds.

    The first import creates the study; a later import of the same name brings it up to date:
    new records are created, changed ones updated, and records no longer in ``study`` deleted —
    but only with ``allow_deletions=True``: otherwise an import that would delete stored records
    is refused and writes nothing (draft administrations, which only the web app makes, are left
    alone unless their participant goes). Every create, change and delete is written to the audit
    trail (see the module docstring). Importing the same data again changes nothing and writes no
    audit event. ``dry_run=True`` tells what an import would change, and writes nothing. An import
    that changed something sends :data:`alliance.web.capture.signals.study_imported` inside its
    transaction (the monitor app evaluates the study's alert rules).

    Parameters
    ----------
    study : alliance.study.Study
        The protocol and tidy tables; validated here again (a ``Study`` built in memory may not
        have been).
    name : str
        The study's name in the database (unique).
    actor : str
        Who imports, recorded in every audit event, e.g. ``"cli:import"``.
    using : str
        Database alias.
    user : User, optional
        The logged-in user importing, when there is one.
    allow_deletions : bool
        Delete stored records (participants, dosing sessions, administrations, answers,
        facilitators, arms, timepoints) that ``study`` no longer has. When False, such an import
        raises :class:`DeletionsNotAllowed` instead.
    dry_run : bool
        Compute the change and write nothing; with ``allow_deletions=False`` a dry run that would
        delete is returned too, not raised, so that the caller can show what would go.

    Returns
    -------
    ImportSummary
        What the import did, or with ``dry_run=True`` what it would do (``summary.dry_run``).

    Raises
    ------
    alliance.study.StudyDataError
        When the study does not validate.
    DeletionsNotAllowed
        When the import would delete stored records and ``allow_deletions`` is False; the message
        names the counts per kind, and ``error.summary`` holds the whole change. A
        :class:`StorageError`.
    StorageError
        When the data cannot be stored (e.g. a timepoint removed from the protocol that still has
        draft administrations).

    Notes
    -----
    The whole import is one ``transaction.atomic``: on any error nothing is written. The change is
    computed by making it in that transaction; a dry run, or a refused deletion, then rolls the
    transaction back (so a dry run takes as long as the import, and holds the study's row lock
    meanwhile).
    """
    name = str(name).strip()
    if not name:
        raise StorageError("a study needs a name (e.g. --study levin2024)")
    study.validate()
    incoming = _Incoming(study)
    try:
        with transaction.atomic(using=using):
            run = _Import(incoming, name, actor, using, user)
            summary = run.run()
            if dry_run or (summary.deletes and not allow_deletions):
                raise _WriteNothing(replace(summary, dry_run=True))
            if not summary.unchanged:
                # e.g. the monitor app's alerts, committed (or rolled back) with the import
                signals.study_imported.send(sender=m.Study, study=run.study, using=using, summary=summary)
    except _WriteNothing as undone:
        if dry_run:
            return undone.summary
        raise DeletionsNotAllowed(
            f"study {name!r}: the import would delete {_counted(undone.summary.deleted)} stored in the "
            f"database that the imported data no longer have; nothing was written. To delete them, import "
            f"with allow_deletions=True (alliance import --allow-deletions); to see the whole change first, "
            f"with dry_run=True (alliance import --dry-run)", undone.summary) from None
    except (ProtectedError, RestrictedError) as error:
        blocking = sorted({str(o) for o in getattr(error, "protected_objects", None)
                           or getattr(error, "restricted_objects", ())})[:5]
        raise StorageError(f"study {name!r}: the import would delete records that others still refer to "
                           f"({', '.join(blocking)}); nothing was written") from None
    return summary


class _Incoming:
    """The study to import, rearranged into what the tables need."""

    def __init__(self, study: Study):
        self.study = study
        self.protocol: Protocol = study.protocol
        self.protocol_yaml = study.protocol.to_yaml()
        identifiers = set(study.protocol.identifiers)
        participants = study.participants
        self.participant_columns = [str(c) for c in participants.columns]
        self.dosing_columns = (None if study.dosing_sessions is None
                               else [str(c) for c in study.dosing_sessions.columns])
        # The optional safety tables (adverse events, vital signs, medications): each table's
        # columns (None: the data have no such table) and its rows by key.
        self.child_columns: dict[str, list[str] | None] = {}
        self.child_rows: dict[str, dict[tuple, dict]] = {}
        for table in CHILD_TABLES:
            frame = getattr(study, table.attribute)
            self.child_columns[table.kind] = None if frame is None else [str(c) for c in frame.columns]
            rows = {}
            if frame is not None:
                for row in frame.astype(object).where(frame.notna(), None).to_dict("records"):
                    record = table.incoming(row)
                    rows[tuple(record[k] for k in table.key)] = record
            self.child_rows[table.kind] = rows
        extra = [c for c in self.participant_columns if c not in _PARTICIPANT_FIELDS]
        # Without the column, the enrolment dates stored (entered in the web app) stay as they are.
        self.has_enrolment = _ENROLLED in self.participant_columns
        records = participants.astype(object).where(participants.notna(), None).to_dict("records")
        self.participants: dict[str, dict] = {}
        for row in records:
            pid = str(row["participant_id"])
            self.participants[pid] = {
                "participant_id": pid,
                "arm": str(row["arm"]),
                "site": _text(row.get("site")),
                "facilitator_ids": _split_ids(row.get("facilitator_ids")),
                "covariates": plain({c: row[c] for c in extra if c not in identifiers}),
                "identifiers": plain({c: row[c] for c in extra if c in identifiers}),
            }
            if self.has_enrolment:
                self.participants[pid][_ENROLLED] = _text(row.get(_ENROLLED)).strip() or None
        self.dosing_sessions: dict[tuple[str, int], dict] = {}
        if study.dosing_sessions is not None:
            dosing = study.dosing_sessions
            for row in dosing.astype(object).where(dosing.notna(), None).to_dict("records"):
                key = (str(row["participant_id"]), int(row["session"]))
                self.dosing_sessions[key] = {
                    "participant_id": key[0], "session": key[1], "date": _text(row.get("date")),
                    "compound": _text(row.get("compound")),
                    "amount": None if row.get("amount") is None else float(row["amount"]),
                    "unit": _text(row.get("unit")),
                    **{c: _text(row.get(c)) for c in DOSING_DAY_COLUMNS},
                }
        self._responses(study)

    def _responses(self, study: Study) -> None:
        responses = study.responses
        text = {c: responses[c].astype("string") for c in (*_ADMINISTRATION_KEY, "item", "rater", "administered_at")}
        rated = _facilitator_rated(self.protocol)
        # A facilitator's rating is keyed by its facilitator too: the rater (trimmed, as validated).
        facilitator = text["rater"].str.strip().where(text["instrument"].isin(rated), "").fillna("")
        text["rater"] = text["rater"].where(~text["instrument"].isin(rated), facilitator)
        key = (text["participant_id"] + _SEPARATOR + text["timepoint"] + _SEPARATOR + text["instrument"]
               + _SEPARATOR + facilitator)
        codes, keys = pd.factorize(key)
        self.response_codes = codes
        self.items = text["item"].to_numpy(dtype=object)
        self.values = pd.to_numeric(responses["value"]).to_numpy(dtype=float)

        # One administration has one rater and one time (checked by the core validation, which
        # import_study runs first); the tidy table repeats them on each row: take the first.
        rater = text["rater"].fillna("").to_numpy(dtype=object)
        administered_at = text["administered_at"].fillna("").to_numpy(dtype=object)
        _, first = np.unique(codes, return_index=True)  # each administration's first row

        scores = self._scores(study)
        self.administrations: dict[AdministrationKey, dict] = {}
        self.administration_order: list[AdministrationKey] = []
        for code, key_text in enumerate(keys):
            k = tuple(key_text.split(_SEPARATOR))
            if k[3] and k[3] not in self.participants.get(k[0], {}).get("facilitator_ids", ()):
                # The core validation checks this against facilitator_ids; without that column
                # nobody is assigned, and a rating cannot name its facilitator.
                raise StorageError(
                    f"responses.csv row {int(first[code]) + 2}, column rater: {k[3]!r} is not a facilitator of "
                    f"participant {k[0]!r} ({k[2]} is rated by each of the participant's facilitators); allowed: "
                    f"the participant's facilitator_ids in participants.csv")
            self.administration_order.append(k)
            self.administrations[k] = {
                "participant_id": k[0], "timepoint": k[1], "instrument": k[2],
                "rater": rater[first[code]], "administered_at": administered_at[first[code]],
                "status": m.Administration.Status.SUBMITTED.value, "scores": scores.get(k, {}),
            }

    @staticmethod
    def _scores(study: Study) -> dict[AdministrationKey, dict]:
        """Scale scores per administration, from the study's one scoring path."""
        table = study.scores()
        out: dict[AdministrationKey, dict] = {}
        rated = set(_facilitator_rated(study.protocol))
        for instrument_id, block in table.groupby("instrument", sort=False, observed=True):
            own = list(score_columns(bank.get(instrument_id)))
            columns = [c for c in block.columns
                       if c not in (*_ADMINISTRATION_KEY, "rater") and (c in own or block[c].notna().any())]
            values = block[columns].astype(object).where(block[columns].notna(), None).to_dict("records")
            raters = (block["rater"].astype("string").fillna("").str.strip() if instrument_id in rated
                      else pd.Series("", index=block.index))
            for pid, timepoint, rater, record in zip(block["participant_id"], block["timepoint"], raters, values,
                                                     strict=True):
                out[(str(pid), str(timepoint), str(instrument_id), str(rater))] = plain(record)
        return out


def _text(value) -> str:
    return "" if value is None or value is pd.NA else str(value)


def _facilitator_rated(protocol: Protocol) -> list[str]:
    """The protocol's instruments that each facilitator rates (``rater: facilitator``)."""
    return [i for i in protocol.instruments if bank.get(i).rater == "facilitator"]


def _iso_date(value: date | None) -> str | None:
    return None if value is None else value.isoformat()


def _split_ids(value) -> list[str]:
    return [part.strip() for part in _text(value).split(";") if part.strip()]


class _Import:
    """One import: compares what is stored with what comes in and writes the difference."""

    def __init__(self, incoming: _Incoming, name: str, actor: str, using: str, user):
        self.incoming = incoming
        self.name = name
        self.using = using
        self.log = AuditLog(actor=actor, user=user)
        self.counts = _Counts()
        self.now = self.log.at
        self._stale: dict[str, list] = {}

    def objects(self, model):
        return model.objects.using(self.using)

    def run(self) -> ImportSummary:
        self.study = self._study()
        self.log.study = self.study
        self.arms = self._sync_simple(m.Arm, "arms", self._wanted_arms())
        self.timepoints = self._sync_simple(m.Timepoint, "timepoints", self._wanted_timepoints())
        self.facilitators = self._facilitators()
        self.participants = self._participants()
        self._dosing_sessions()
        for table in CHILD_TABLES:
            self._child_table(table)
        self._administrations()
        self._delete_stale()
        events = self.log.write(self.using)
        return self.counts.summary(self.name, events)

    # -- study, arms, timepoints, facilitators ------------------------------------------------

    def _study(self) -> m.Study:
        wanted = {"name": self.name, "protocol_sha256": self.incoming.protocol.sha256,
                  "protocol_yaml": self.incoming.protocol_yaml,
                  "participant_columns": self.incoming.participant_columns,
                  "dosing_session_columns": self.incoming.dosing_columns,
                  **{t.columns_field: self.incoming.child_columns[t.kind] for t in CHILD_TABLES}}
        study = self.objects(m.Study).select_for_update().filter(name=self.name).first()
        if study is not None and self.incoming.dosing_columns is None:
            # Data without a dosing sessions table say nothing about dosing: what is stored stays.
            wanted["dosing_session_columns"] = study.dosing_session_columns
        for table in CHILD_TABLES:  # likewise for the safety tables
            if study is not None and self.incoming.child_columns[table.kind] is None:
                wanted[table.columns_field] = getattr(study, table.columns_field)
        if study is None:
            study = self.objects(m.Study).create(**wanted)
            self.log.study = study
            self.log.created(study, wanted, label=self.name)
            self.counts.created["study"] += 1
            return study
        old = {k: getattr(study, k) for k in wanted}
        if old != wanted:
            for k, v in wanted.items():
                setattr(study, k, v)
            study.save(using=self.using)
            self.log.study = study
            self.log.changed(study, old, wanted, label=self.name)
            self.counts.changed["study"] += 1
        return study

    def _wanted_arms(self) -> dict[str, dict]:
        return {a.id: {"code": a.id, "label": a.label, "start_offset_days": a.start_offset_days}
                for a in self.incoming.protocol.arms}

    def _wanted_timepoints(self) -> dict[str, dict]:
        out = {}
        for t in self.incoming.protocol.timepoints:
            dose = None if t.dose is None else {"compound": t.dose.compound, "amount": t.dose.amount,
                                                 "unit": t.dose.unit, "session": t.dose.session}
            out[t.id] = {"code": t.id, "label": t.label, "kind": t.kind, "order": t.order, "anchor": t.anchor,
                         "offset_days": t.offset_days, "window_before_days": t.window_days[0],
                         "window_after_days": t.window_days[1], "instruments": list(t.instruments),
                         "dose": dose}
        return out

    def _sync_simple(self, model, kind: str, wanted: dict[str, dict]) -> dict[str, object]:
        """Arms and timepoints: few rows, keyed by ``code``; stale ones are deleted at the end."""
        existing = {obj.code: obj for obj in self.objects(model).filter(study=self.study)}
        fields = [f for f in next(iter(wanted.values()), {}) if f != "code"]
        for code, values in wanted.items():
            obj = existing.get(code)
            if obj is None:
                obj = self.objects(model).create(study=self.study, **values)
                existing[code] = obj
                self.log.created(obj, values, label=code)
                self.counts.created[kind] += 1
                continue
            old = {"code": code, **{f: getattr(obj, f) for f in fields}}
            if plain(old) != plain(values):
                for f in fields:
                    setattr(obj, f, values[f])
                obj.save(using=self.using)
                self.log.changed(obj, old, values, label=code)
                self.counts.changed[kind] += 1
        self._stale[kind] = [obj for code, obj in existing.items() if code not in wanted]
        return existing

    def _facilitators(self) -> dict[str, m.Facilitator]:
        existing = {f.facilitator_id: f for f in self.objects(m.Facilitator).filter(study=self.study)}
        wanted = list(dict.fromkeys(f for p in self.incoming.participants.values() for f in p["facilitator_ids"]))
        new = [m.Facilitator(study=self.study, facilitator_id=f) for f in wanted if f not in existing]
        self.objects(m.Facilitator).bulk_create(new)
        for obj in new:
            existing[obj.facilitator_id] = obj
            self.log.created(obj, {"facilitator_id": obj.facilitator_id}, label=obj.facilitator_id)
        self.counts.created["facilitators"] += len(new)
        # A facilitator linked to a user account was set up in the web app; it stays.
        wanted_set = set(wanted)
        self._stale["facilitators"] = [f for key, f in existing.items() if key not in wanted_set and f.user_id is None]
        return existing

    # -- participants and dosing sessions -----------------------------------------------------

    def _participant_state(self, participant: m.Participant, facilitator_ids: list[str]) -> dict:
        state = {"participant_id": participant.participant_id, "arm": self.arm_codes[participant.arm_id],
                 "site": participant.site, "facilitator_ids": facilitator_ids,
                 "covariates": participant.covariates, "identifiers": participant.identifiers}
        if self.incoming.has_enrolment:
            state[_ENROLLED] = _iso_date(participant.enrolled_on)
        return state

    def _participants(self) -> dict[str, m.Participant]:
        self.arm_codes = {arm.pk: code for code, arm in self.arms.items()}
        existing = {p.participant_id: p for p in self.objects(m.Participant).filter(study=self.study)}
        assigned: dict[int, list[str]] = defaultdict(list)
        for participant_pk, facilitator_id in (
                self.objects(m.FacilitatorAssignment).filter(participant__study=self.study)
                .order_by("participant_id", "position").values_list("participant_id", "facilitator__facilitator_id")):
            assigned[participant_pk].append(facilitator_id)

        # A randomised participant's arm is their allocation's: an import cannot move them.
        allocated = dict(self.objects(m.Allocation).filter(study=self.study)
                         .values_list("participant__participant_id", "arm"))
        moved = [f"{pid} (arm {wanted['arm']!r}; allocated: {allocated[pid]!r})"
                 for pid, wanted in self.incoming.participants.items()
                 if pid in allocated and wanted["arm"] != allocated[pid]]
        if moved:
            raise StorageError(f"participants.csv, column 'arm': {len(moved)} randomised participant"
                               f"{'s are' if len(moved) != 1 else ' is'} given another arm than the one the "
                               f"allocation list gave: {', '.join(moved[:10])}; allowed: the allocated arm")
        new, changed, reassign = [], [], []
        for pid, wanted in self.incoming.participants.items():
            values = {"arm": self.arms[wanted["arm"]], "site": wanted["site"],
                      "covariates": wanted["covariates"], "identifiers": wanted["identifiers"]}
            if self.incoming.has_enrolment:
                values[_ENROLLED] = None if wanted[_ENROLLED] is None else date.fromisoformat(wanted[_ENROLLED])
            obj = existing.get(pid)
            if obj is None:
                obj = m.Participant(study=self.study, participant_id=pid, **values)
                new.append(obj)
                existing[pid] = obj
                continue
            old = self._participant_state(obj, assigned.get(obj.pk, []))
            if self.incoming.has_enrolment and old[_ENROLLED] is not None and wanted[_ENROLLED] is None:
                # The schedule of the participant is lost with it: a deletion, which needs consent.
                self.counts.deleted["enrolment_dates"] += 1
            if old != wanted:
                for k, v in values.items():
                    setattr(obj, k, v)
                obj.updated_at = self.now  # bulk_update does not touch auto_now fields
                changed.append(obj)
                self.log.changed(obj, old, wanted, label=pid)
                if old["facilitator_ids"] != wanted["facilitator_ids"]:
                    reassign.append(obj)

        self.objects(m.Participant).bulk_create(new, batch_size=BATCH)
        for obj in new:
            self.log.created(obj, self.incoming.participants[obj.participant_id], label=obj.participant_id)
        self.objects(m.Participant).bulk_update(
            changed, ["arm", "site", "covariates", "identifiers", "updated_at"]
            + ([_ENROLLED] if self.incoming.has_enrolment else []), batch_size=BATCH)
        for batch in batches([p.pk for p in reassign]):
            self.objects(m.FacilitatorAssignment).filter(participant_id__in=batch).delete()
        self.objects(m.FacilitatorAssignment).bulk_create([
            m.FacilitatorAssignment(participant=obj, facilitator=self.facilitators[f], position=position)
            for obj in [*new, *reassign]
            for position, f in enumerate(self.incoming.participants[obj.participant_id]["facilitator_ids"])
        ], batch_size=BATCH)
        self.counts.created["participants"] += len(new)
        self.counts.changed["participants"] += len(changed)
        self._stale["participants"] = [p for pid, p in existing.items() if pid not in self.incoming.participants]
        self._stale_participant_states = {p.pk: self._participant_state(p, assigned.get(p.pk, []))
                                          for p in self._stale["participants"]}
        return existing

    def _dosing_sessions(self) -> None:
        if self.incoming.dosing_columns is None:
            return  # no dosing sessions table: the stored sessions are neither compared nor deleted
        fields = list(_DOSING_FIELDS)
        existing = {}
        for obj in self.objects(m.DosingSession).filter(participant__study=self.study).select_related("participant"):
            existing[(obj.participant.participant_id, obj.session)] = obj
        new, changed = [], []
        for key, wanted in self.incoming.dosing_sessions.items():
            obj = existing.get(key)
            if obj is None:
                obj = m.DosingSession(participant=self.participants[key[0]], session=key[1],
                                      **{f: wanted[f] for f in fields})
                new.append(obj)
                continue
            old = {"participant_id": key[0], "session": key[1], **{f: getattr(obj, f) for f in fields}}
            if old != wanted:
                for f in fields:
                    setattr(obj, f, wanted[f])
                changed.append(obj)
                self.log.changed(obj, old, wanted, label=_dosing_label(*key))
        self.objects(m.DosingSession).bulk_create(new, batch_size=BATCH)
        for obj in new:
            key = (obj.participant.participant_id, obj.session)
            self.log.created(obj, self.incoming.dosing_sessions[key], label=_dosing_label(*key))
        self.objects(m.DosingSession).bulk_update(changed, fields, batch_size=BATCH)
        self.counts.created["dosing_sessions"] += len(new)
        self.counts.changed["dosing_sessions"] += len(changed)
        stale = [(key, obj) for key, obj in existing.items() if key not in self.incoming.dosing_sessions
                 and key[0] in self.incoming.participants]
        for key, obj in stale:
            self.log.deleted(obj, {"participant_id": key[0], "session": key[1],
                                   **{f: getattr(obj, f) for f in fields}}, label=_dosing_label(*key))
        for batch in batches([obj.pk for _, obj in stale]):
            self.objects(m.DosingSession).filter(pk__in=batch).delete()
        self.counts.deleted["dosing_sessions"] += len(stale)

    def _child_table(self, table: _ChildTable) -> None:
        if self.incoming.child_columns[table.kind] is None:
            return  # the data have no such table: what is stored is neither compared nor deleted
        fields, rows = list(table.fields), self.incoming.child_rows[table.kind]

        def key_of(obj) -> tuple:
            return (obj.participant.participant_id, *(getattr(obj, k) for k in table.key[1:]))

        existing = {key_of(obj): obj for obj in
                    self.objects(table.model).filter(participant__study=self.study).select_related("participant")}
        new, changed = [], []
        for key, wanted in rows.items():
            obj = existing.get(key)
            if obj is None:
                new.append(table.model(participant=self.participants[key[0]],
                                       **{k: wanted[k] for k in table.key[1:]}, **{f: wanted[f] for f in fields}))
                continue
            old = {**dict(zip(table.key, key, strict=True)), **{f: getattr(obj, f) for f in fields}}
            if old != wanted:
                for f in fields:
                    setattr(obj, f, wanted[f])
                changed.append(obj)
                self.log.changed(obj, old, wanted, label=table.label.format(**wanted))
        self.objects(table.model).bulk_create(new, batch_size=BATCH)
        for obj in new:
            wanted = rows[key_of(obj)]
            self.log.created(obj, wanted, label=table.label.format(**wanted))
        self.objects(table.model).bulk_update(changed, fields, batch_size=BATCH)
        self.counts.created[table.kind] += len(new)
        self.counts.changed[table.kind] += len(changed)
        stale = [(key, obj) for key, obj in existing.items() if key not in rows and key[0] in self.incoming.participants]
        for key, obj in stale:
            state = {**dict(zip(table.key, key, strict=True)), **{f: getattr(obj, f) for f in fields}}
            self.log.deleted(obj, state, label=table.label.format(**state))
        for batch in batches([obj.pk for _, obj in stale]):
            self.objects(table.model).filter(pk__in=batch).delete()
        self.counts.deleted[table.kind] += len(stale)

    # -- administrations and item responses ---------------------------------------------------

    def _administrations(self) -> None:
        incoming = self.incoming
        fields = ["rater", "administered_at", "status", "scores"]
        existing: dict[AdministrationKey, dict] = {}
        for pk, pid, timepoint, instrument, facilitator, *values in (
                self.objects(m.Administration).filter(participant__study=self.study)
                .values_list("pk", "participant__participant_id", "timepoint__code", "instrument",
                             "facilitator__facilitator_id", *fields)):
            existing[(pid, timepoint, instrument, facilitator or "")] = {"pk": pk, **dict(zip(fields, values,
                                                                                             strict=True))}

        # New administrations, then their answers, each in one bulk insert.
        new_keys = [k for k in incoming.administration_order if k not in existing]
        now = db_datetime(self.now, self.using)
        # How a form was taken (mode, blinding) is the web app's record, not the tidy contract's:
        # imported forms have it unrecorded, and an import leaves a stored form's alone.
        insert_rows(m.Administration, ["participant_id", "timepoint_id", "instrument", "facilitator_id", "rater",
                                       "administered_at", "status", "scores", "mode", "blinded", "created_at",
                                       "updated_at"],
                    [(self.participants[k[0]].pk, self.timepoints[k[1]].pk, k[2],
                      self.facilitators[k[3]].pk if k[3] else None,
                      *(incoming.administrations[k][f] for f in fields[:3]),
                      json_text(incoming.administrations[k]["scores"]), "", None, now, now) for k in new_keys],
                    self.using)
        pk_of_code = np.full(len(incoming.administration_order), -1, dtype=np.int64)
        position = {k: i for i, k in enumerate(incoming.administration_order)}
        if new_keys:
            participant_ids = {p.pk: pid for pid, p in self.participants.items()}
            timepoint_codes = {t.pk: code for code, t in self.timepoints.items()}
            facilitator_ids = {f.pk: fid for fid, f in self.facilitators.items()}
            for pk, participant_pk, timepoint_pk, instrument, facilitator_pk in (
                    self.objects(m.Administration).filter(participant__study=self.study)
                    .values_list("pk", "participant_id", "timepoint_id", "instrument", "facilitator_id")):
                k = (participant_ids[participant_pk], timepoint_codes[timepoint_pk], instrument,
                     facilitator_ids.get(facilitator_pk, "") if facilitator_pk is not None else "")
                if k not in existing and k in position:
                    pk_of_code[position[k]] = pk
        is_new = pk_of_code >= 0
        new_rows = is_new[incoming.response_codes]
        insert_rows(m.ItemResponse, ["administration_id", "item", "value"],
                    list(zip(pk_of_code[incoming.response_codes[new_rows]].tolist(), incoming.items[new_rows].tolist(),
                             incoming.values[new_rows].tolist(), strict=True)), self.using)
        items_by_code = self._items_by_code(new_rows)
        for k in new_keys:
            code = position[k]
            self.log.add("create", m.Administration, int(pk_of_code[code]),
                         None, {**incoming.administrations[k], "items": items_by_code[code]},
                         _administration_label(k))
        self.counts.created["administrations"] += len(new_keys)
        self.counts.created["responses"] += int(new_rows.sum())

        # Administrations already stored: their own fields, then a per-item comparison.
        changed = []
        for k, stored in existing.items():
            if k not in incoming.administrations:
                continue
            pk_of_code[position[k]] = stored["pk"]
            old = {f: stored[f] for f in fields}
            new = {f: incoming.administrations[k][f] for f in fields}
            if plain(old) != plain(new):
                obj = m.Administration(pk=stored["pk"], updated_at=self.now, **new)
                changed.append(obj)
                self.log.changed(obj, old, new, label=_administration_label(k))
        self.objects(m.Administration).bulk_update(changed, [*fields, "updated_at"], batch_size=BATCH)
        self.counts.changed["administrations"] += len(changed)
        self._compare_responses(pk_of_code, ~is_new)

        # Submitted administrations no longer in the data go; drafts belong to the web app.
        stale = {k: v for k, v in existing.items()
                 if k not in incoming.administrations and k[0] in incoming.participants
                 and v["status"] == m.Administration.Status.SUBMITTED}
        self._delete_administrations(stale)

    def _items_by_code(self, rows: np.ndarray) -> dict[int, dict[str, float]]:
        out: dict[int, dict[str, float]] = defaultdict(dict)
        incoming = self.incoming
        for code, item, value in zip(incoming.response_codes[rows].tolist(), incoming.items[rows].tolist(),
                                     incoming.values[rows].tolist(), strict=True):
            out[code][item] = value
        return out

    def _stored_responses(self) -> pd.DataFrame:
        """Every stored answer of the study: ``pk, administration, item, stored`` (the value)."""
        rows = (self.objects(m.ItemResponse).filter(administration__participant__study=self.study)
                .values_list("pk", "administration_id", "item", "value").iterator(chunk_size=50_000))
        frame = pd.DataFrame.from_records(list(rows), columns=["pk", "administration", "item", "stored"])
        # Typed even when empty, so that merges on ``administration`` meet int64 on both sides.
        return frame.astype({"pk": np.int64, "administration": np.int64, "stored": float})

    def _compare_responses(self, pk_of_code: np.ndarray, stored_codes: np.ndarray) -> None:
        """Answers of administrations already stored: add, change or delete item by item."""
        incoming = self.incoming
        rows = stored_codes[incoming.response_codes]
        if not rows.any():
            return
        wanted = pd.DataFrame({"administration": pk_of_code[incoming.response_codes[rows]],
                               "item": incoming.items[rows], "value": incoming.values[rows]})
        stored = self._stored_responses()
        stored = stored[stored["administration"].isin(pk_of_code[stored_codes])]
        both = wanted.merge(stored, on=["administration", "item"], how="outer", indicator=True)
        key_of_pk = {int(pk_of_code[c]): incoming.administration_order[c] for c in np.flatnonzero(stored_codes)}

        added = both[both["_merge"] == "left_only"]
        if len(added):
            insert_rows(m.ItemResponse, ["administration_id", "item", "value"],
                        list(zip(added["administration"].astype(np.int64).tolist(), added["item"].tolist(),
                                 added["value"].astype(float).tolist(), strict=True)), self.using)
            # ``added`` came out of the outer merge with the stored side's (empty) ``pk`` and
            # ``stored`` columns; keep only what was inserted, so the new pks are read back.
            created = self._stored_responses().merge(added[["administration", "item", "value"]],
                                                     on=["administration", "item"])
            for pk, a, item, value in created[["pk", "administration", "item", "value"]].itertuples(index=False):
                obj = m.ItemResponse(pk=int(pk), administration_id=int(a), item=item, value=value)
                self.log.created(obj, {"item": item, "value": value}, label=_item_label(key_of_pk[int(a)], item))
        self.counts.created["responses"] += len(added)

        matched = both[both["_merge"] == "both"]
        differs = matched[matched["value"].to_numpy(float) != matched["stored"].to_numpy(float)]
        changed = []
        for pk, a, item, old, new in differs[["pk", "administration", "item", "stored", "value"]].itertuples(index=False):
            obj = m.ItemResponse(pk=int(pk), administration_id=int(a), item=item, value=float(new))
            changed.append(obj)
            self.log.changed(obj, {"value": old}, {"value": new}, label=_item_label(key_of_pk[int(a)], item))
        self.objects(m.ItemResponse).bulk_update(changed, ["value"], batch_size=BATCH)
        self.counts.changed["responses"] += len(changed)

        gone = both[both["_merge"] == "right_only"]
        for pk, a, item, old in gone[["pk", "administration", "item", "stored"]].itertuples(index=False):
            obj = m.ItemResponse(pk=int(pk), administration_id=int(a), item=item, value=old)
            self.log.deleted(obj, {"item": item, "value": old}, label=_item_label(key_of_pk[int(a)], item))
        for batch in batches(gone["pk"].astype(np.int64).tolist()):
            self.objects(m.ItemResponse).filter(pk__in=batch).delete()
        self.counts.deleted["responses"] += len(gone)

    def _delete_administrations(self, stale: dict[AdministrationKey, dict]) -> None:
        """Delete administrations, each with one audit event holding all its item values."""
        if not stale:
            return
        items: dict[int, dict[str, float]] = defaultdict(dict)
        pks = [v["pk"] for v in stale.values()]
        for batch in batches(pks):
            for a, item, value in self.objects(m.ItemResponse).filter(
                    administration_id__in=batch).values_list("administration_id", "item", "value"):
                items[a][item] = value
        fields = ["rater", "administered_at", "status", "scores"]
        for k, stored in stale.items():
            obj = m.Administration(pk=stored["pk"])
            self.log.deleted(obj, {"participant_id": k[0], "timepoint": k[1], "instrument": k[2],
                                   **({"facilitator": k[3]} if k[3] else {}),
                                   **{f: stored[f] for f in fields}, "items": items[stored["pk"]]},
                             label=_administration_label(k))
        for batch in batches(pks):
            self.objects(m.Administration).filter(pk__in=batch).delete()
        self.counts.deleted["administrations"] += len(stale)
        self.counts.deleted["responses"] += sum(len(v) for v in items.values())

    # -- what the data no longer hold ---------------------------------------------------------

    def _delete_stale(self) -> None:
        """Participants, facilitators, arms and timepoints that the imported study no longer has."""
        participants = self._stale["participants"]
        if participants:
            # Their administrations (drafts too) and dosing sessions go with them; audit each.
            fields = ["rater", "administered_at", "status", "scores"]
            pks = [p.pk for p in participants]
            administrations, dosing = {}, []
            for batch in batches(pks):
                administrations.update({
                    (pid, timepoint, instrument, facilitator or ""): {"pk": pk,
                                                                      **dict(zip(fields, values, strict=True))}
                    for pk, pid, timepoint, instrument, facilitator, *values in self.objects(m.Administration)
                    .filter(participant_id__in=batch)
                    .values_list("pk", "participant__participant_id", "timepoint__code", "instrument",
                                 "facilitator__facilitator_id", *fields)})
                dosing += self.objects(m.DosingSession).filter(participant_id__in=batch).select_related("participant")
                for table in CHILD_TABLES:  # their safety records go with them (database CASCADE), audited
                    records = list(self.objects(table.model).filter(participant_id__in=batch).select_related("participant"))
                    for obj in records:
                        state = {"participant_id": obj.participant.participant_id,
                                 **{k: getattr(obj, k) for k in (*table.key[1:], *table.fields)}}
                        self.log.deleted(obj, state, label=table.label.format(**state))
                    self.counts.deleted[table.kind] += len(records)
            self._delete_administrations(administrations)
            for obj in dosing:
                self.log.deleted(obj, {"participant_id": obj.participant.participant_id, "session": obj.session,
                                       **{f: getattr(obj, f) for f in _DOSING_FIELDS}},
                                 label=_dosing_label(obj.participant.participant_id, obj.session))
            self.counts.deleted["dosing_sessions"] += len(dosing)
            # Other apps' records about them (the monitor app's alerts) go too, audited by their
            # app in this import's log and counted in its change; the user allowed the deletion.
            for _, deleted in signals.participants_deleting.send(sender=m.Participant, participants=participants,
                                                                 log=self.log, using=self.using):
                for kind, count in (deleted or {}).items():
                    self.counts.deleted[kind] += count
            for obj in participants:
                self.log.deleted(obj, self._stale_participant_states[obj.pk], label=obj.participant_id)
            for batch in batches(pks):
                self.objects(m.Participant).filter(pk__in=batch).delete()
            self.counts.deleted["participants"] += len(participants)
        for kind, label_field in (("facilitators", "facilitator_id"), ("timepoints", "code"), ("arms", "code")):
            stale = self._stale[kind]
            for obj in stale:
                self.log.deleted(obj, {label_field: getattr(obj, label_field)}, label=getattr(obj, label_field))
            for batch in batches([o.pk for o in stale]):
                type(stale[0]).objects.using(self.using).filter(pk__in=batch).delete()
            self.counts.deleted[kind] += len(stale)


def _administration_label(key: AdministrationKey) -> str:
    """``P004/prep/wai_sr``, and ``P004/prep/wai_sr_t/F1`` for a facilitator's rating."""
    return "/".join(part for part in key if part)


def _item_label(key: AdministrationKey, item: str) -> str:
    return f"{_administration_label(key)}/{item}"


def _dosing_label(participant_id: str, session: int) -> str:
    return f"{participant_id}/session {session}"





# ---------------------------------------------------------------------------------------------
# Export
# ---------------------------------------------------------------------------------------------

def list_studies(using: str = "default") -> list[str]:
    """The names of the studies in the database, sorted.

    Parameters
    ----------
    using : str
        Database alias.

    Returns
    -------
    list of str
    """
    return list(m.Study.objects.using(using).order_by("name").values_list("name", flat=True))


def stored_study(name: str, using: str = "default") -> m.Study:
    """The stored study of this name, for callers that work on the row (alerts, the CLI's commands).

    Parameters
    ----------
    name : str
        The study's name in the database.
    using : str
        Database alias.

    Returns
    -------
    alliance.web.capture.models.Study

    Raises
    ------
    UnknownStudyError
        When there is no study of that name; the message names the studies there are.
    """
    row = m.Study.objects.using(using).filter(name=name).first()
    if row is None:
        known = list_studies(using)
        raise UnknownStudyError(f"no study named {name!r} in the database; "
                                + (f"studies are: {', '.join(known)}" if known else "it holds no studies yet"))
    return row


def export_study(name: str, using: str = "default") -> Study:
    """Rebuild the tidy contract :class:`~alliance.study.Study` of a stored study.

    Parameters
    ----------
    name : str
        The study's name in the database.
    using : str
        Database alias.

    Returns
    -------
    alliance.study.Study
        The protocol (from the stored YAML), participants in the order they were first imported
        with their original columns, the submitted administrations' responses in canonical order
        (:func:`alliance.study.sort_responses`), and dosing sessions and adverse events when the study
        has those tables.
        Draft administrations are not exported.

    Raises
    ------
    UnknownStudyError
        When there is no study of that name (a ``StorageError`` and a ``LookupError``).
    StorageError
        When the stored protocol no longer matches its sha256.
    """
    row = stored_study(name, using)
    try:
        protocol = parse_protocol(yaml.safe_load(row.protocol_yaml), origin=f"stored protocol of study {name!r}")
    except (yaml.YAMLError, StudyDataError) as error:
        raise StorageError(f"study {name!r}: the stored protocol cannot be read: {error}") from None
    if protocol.sha256 != row.protocol_sha256:
        raise StorageError(f"study {name!r}: the stored protocol's sha256 is {protocol.sha256}, "
                           f"but {row.protocol_sha256} was recorded when it was imported")

    participants = _export_participants(row, using)
    responses = pd.DataFrame.from_records(
        list(m.ItemResponse.objects.using(using)
             .filter(administration__participant__study=row, administration__status=m.Administration.Status.SUBMITTED)
             # Stored order (administrations as created, items as answered): the canonical sort
             # below is stable, so the facilitators' ratings of one form keep this order.
             .order_by("administration_id", "pk")
             .values_list("administration__participant__participant_id", "administration__timepoint__code",
                          "administration__instrument", "item", "value", "administration__rater",
                          "administration__administered_at", "administration__facilitator__facilitator_id")
             .iterator(chunk_size=50_000)),
        columns=["participant_id", "timepoint", "instrument", "item", "value", "rater", "administered_at",
                 "facilitator"])
    # A facilitator's rating names its facilitator in ``rater`` (the tidy contract's key).
    facilitator = responses.pop("facilitator")
    responses["rater"] = responses["rater"].where(facilitator.isna(), facilitator)
    for column in ("participant_id", "timepoint", "instrument", "item", "rater", "administered_at"):
        responses[column] = responses[column].astype("string").replace("", pd.NA)
    responses["value"] = responses["value"].astype(float)
    responses = sort_responses(responses, protocol, participants["participant_id"].tolist())

    dosing = None
    if row.dosing_session_columns is not None:
        records = [{"participant_id": pid, "session": session,
                    **{f: (v if f == "amount" else (v or None)) for f, v in zip(_DOSING_FIELDS, values, strict=True)}}
                   for pid, session, *values in m.DosingSession.objects.using(using)
                   .filter(participant__study=row).order_by("participant_id", "session")
                   .values_list("participant__participant_id", "session", *_DOSING_FIELDS)]
        dosing = pd.DataFrame.from_records(records, columns=["participant_id", "session", *_DOSING_FIELDS])
        dosing = dosing[[c for c in row.dosing_session_columns if c in dosing.columns]]
    tables = {}
    for table in CHILD_TABLES:
        columns = getattr(row, table.columns_field)
        if columns is None:
            continue
        names = [k for k in table.key[1:]] + list(table.fields)
        records = [table.outgoing({"participant_id": pid, **dict(zip(names, values, strict=True))})
                   for pid, *values in table.model.objects.using(using).filter(participant__study=row)
                   .order_by("participant_id", "pk").values_list("participant__participant_id", *names)]
        frame = pd.DataFrame.from_records(records) if records else pd.DataFrame(columns=columns)
        tables[table.attribute] = frame.reindex(columns=[c for c in columns]).astype("string")
    return Study(protocol=protocol, participants=participants, responses=responses, dosing_sessions=dosing,
                 **tables)


def _export_participants(row: m.Study, using: str) -> pd.DataFrame:
    facilitators: dict[int, list[str]] = defaultdict(list)
    for participant_pk, facilitator_id in (
            m.FacilitatorAssignment.objects.using(using).filter(participant__study=row)
            .order_by("participant_id", "position").values_list("participant_id", "facilitator__facilitator_id")):
        facilitators[participant_pk].append(facilitator_id)
    records = []
    enrolled = False
    for pk, pid, arm, site, covariates, identifiers, enrolled_on in (
            m.Participant.objects.using(using).filter(study=row).order_by("pk")
            .values_list("pk", "participant_id", "arm__code", "site", "covariates", "identifiers", "enrolled_on")):
        records.append({**covariates, **identifiers, "participant_id": pid, "arm": arm, "site": site or None,
                        "facilitator_ids": ";".join(facilitators[pk]) or None, _ENROLLED: _iso_date(enrolled_on)})
        enrolled = enrolled or enrolled_on is not None
    columns = list(row.participant_columns or ["participant_id", "arm"])
    if enrolled and _ENROLLED not in columns:
        # Enrolment dates entered in the web app are part of the study's data: exported too.
        columns.append(_ENROLLED)
    return pd.DataFrame.from_records(records, columns=columns) if records else pd.DataFrame(columns=columns)
