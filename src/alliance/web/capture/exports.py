"""Exports from the web app: the tidy contract, REDCap, de-identified (each a zip), the DSMB report (a PDF); each audited.

All start from :func:`alliance.web.capture.storage.export_study` (what ``alliance export``
reads) and are written by the study layer's own writers or the report's (:mod:`alliance.report.dsmb`,
what ``alliance dsmb`` writes), so a download and the CLI give the same files:

``tidy``
    The tidy contract (``docs/data.md``): ``protocol.yaml``, ``participants.csv``,
    ``responses.csv`` and ``dosing_sessions.csv`` when the study has dosing sessions.
``redcap``
    A REDCap data dictionary, records and the mapping between them
    (:func:`alliance.study.formats.redcap.write_redcap`). Refused for a study that has a
    facilitator-rated instrument (the WAI-SR-T): each facilitator's rating is its own
    administration, which a REDCap project holds as a repeating instrument with a field naming
    the facilitator, and the REDCap writer and its mapping do not write or read those yet; a
    record with one instance per event would drop ratings. The message says to use the tidy
    export, which carries every rating (``rater`` is the facilitator id).
``deidentified``
    The tidy contract without the protocol's identifier columns and with each participant's
    dates shifted by their secret offset (:func:`alliance.study.deidentify.shift_dates`); the
    offsets are drawn on first use and kept in the database (``capture.DateShift``).
``dsmb_blinded``
    The open-session report of the Data and Safety Monitoring Board, as a PDF: every table over all
    participants, the serious-event listing without arms (:func:`alliance.report.dsmb.dsmb_document`),
    from the safety analysis alone (:func:`alliance.report.dsmb.safety_results`). For a monitor it
    is built from the de-identified study, dates shifted as in ``deidentified`` (its cut-off is then
    a shifted date too, and the report says so); for the admin and investigators from the real data.
``dsmb_unblinded``
    The closed-session report: the same tables by arm, the listing with each participant's arm.
    Only the study's ``admin`` may download it: the admin is the unblinded role, who also generates
    the randomisation list and holds its seed; investigators enrol participants and monitors are
    blinded, so neither may see the arms compared (:mod:`alliance.web.accounts.access`). The
    refusal is made here as well as in the view.

Monitors may download only ``deidentified`` and ``dsmb_blinded``; see :data:`KINDS_FOR_ROLE`.
"""

from __future__ import annotations

import datetime
import io
import tempfile
import zipfile
from pathlib import Path

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone

from alliance import instruments as bank
from alliance.study import formats, save
from alliance.study.deidentify import shift_dates
from alliance.web.accounts.access import role_in
from alliance.web.audit.log import AuditLog

from . import models as m
from .errors import StorageError
from .recording import date_offsets
from .storage import export_study

KINDS = {
    "tidy": "Tidy contract (CSV files and protocol)",
    "redcap": "REDCap (data dictionary, records, mapping)",
    "deidentified": "De-identified tidy contract (identifiers dropped, dates shifted)",
    "dsmb_blinded": "DSMB safety report, blinded: open session, arms pooled (PDF)",
    "dsmb_unblinded": "DSMB safety report, unblinded: closed session, by arm (PDF)",
}
KINDS_FOR_ROLE = {
    "admin": ("tidy", "redcap", "deidentified", "dsmb_blinded", "dsmb_unblinded"),
    "investigator": ("tidy", "redcap", "deidentified", "dsmb_blinded"),
    "monitor": ("deidentified", "dsmb_blinded"),
}
DSMB_KINDS = ("dsmb_blinded", "dsmb_unblinded")
# Who gets the DSMB report from the real dates; anyone else (a monitor) from the shifted ones.
_REAL_DATES_ROLES = ("admin", "investigator")


class ExportNotPossible(StorageError):
    """This export cannot hold the study's data; the message says which export can."""


def _refuse_facilitator_ratings(tidy) -> None:
    rated = [i for i in tidy.protocol.instruments if bank.get(i).rater == "facilitator"]
    if rated:
        names = ", ".join(f"{bank.get(i).short_name} ({i})" for i in rated)
        raise ExportNotPossible(
            f"The REDCap export cannot hold {names}: each facilitator rates it separately, which REDCap keeps "
            f"as a repeating instrument, and this export does not write one yet, so ratings would be lost. "
            f"Use the tidy export (every rating, with the facilitator's id in the rater column).")


def _zip_directory(directory: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(directory.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(directory).as_posix())
    return buffer.getvalue()


def export_zip(study: m.Study, kind: str, log: AuditLog) -> tuple[str, bytes]:
    """Build an export of a study as a zip file (the DSMB reports: a PDF) and record it in the audit trail.

    Parameters
    ----------
    study : Study
    kind : {"tidy", "redcap", "deidentified", "dsmb_blinded", "dsmb_unblinded"}
    log : AuditLog
        Gets an ``export`` event (kind, files, counts) and, for ``deidentified`` (and a monitor's
        ``dsmb_blinded``), the creation of date shifts not drawn before; written here, in one
        transaction (the DSMB reports: see :func:`export_dsmb`).

    Returns
    -------
    filename : str
        E.g. ``levin2024-deidentified-20240301.zip``, ``levin2024-dsmb-blinded-20240301.pdf``.
    content : bytes

    Raises
    ------
    KeyError
        For an unknown kind.
    ExportNotPossible
        For ``redcap`` when the protocol has a facilitator-rated instrument (module docstring).
    PermissionDenied
        For ``dsmb_unblinded`` when the log's user is not the study's admin.
    """
    if kind not in KINDS:
        raise KeyError(f"unknown export {kind!r}; exports are {', '.join(KINDS)}")
    if kind in DSMB_KINDS:
        return export_dsmb(study, kind, log)
    with transaction.atomic():
        tidy = export_study(study.name)
        if kind == "redcap":
            _refuse_facilitator_ratings(tidy)
        if kind == "deidentified":
            tidy = shift_dates(tidy, date_offsets(study, log))
        with tempfile.TemporaryDirectory(prefix="alliance-export-") as folder:
            out = Path(folder) / "export"
            if kind == "redcap":
                formats.write_study(tidy, out, "redcap")
            else:
                save(tidy, out)
            files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
            content = _zip_directory(out)
        log.exported(study, {"format": kind, "files": files, "participants": len(tidy.participants),
                             "responses": len(tidy.responses)}, label=f"{study.name} export ({kind})")
        log.write()
    filename = f"{study.name}-{kind}-{timezone.localdate():%Y%m%d}.zip"
    return filename, content


def export_dsmb(study: m.Study, kind: str, log: AuditLog) -> tuple[str, bytes]:
    """The DSMB report of a study as a PDF, blinded or unblinded (module docstring), audited.

    Parameters
    ----------
    study : Study
    kind : {"dsmb_blinded", "dsmb_unblinded"}
    log : AuditLog
        Of the user downloading: their role decides the dates (real or shifted) and may refuse
        ``dsmb_unblinded``. Gets the creation of date shifts not drawn before (written with the
        export of the study, before the report is drawn) and an ``export`` event with the
        report's facts (:class:`alliance.report.dsmb.DsmbFacts`: cut-off, counts, version).

    Returns
    -------
    filename : str
        E.g. ``levin2024-dsmb-unblinded-20240301.pdf``.
    content : bytes
        The PDF.

    Raises
    ------
    PermissionDenied
        For ``dsmb_unblinded`` when the user is not the study's admin.
    """
    # the report (matplotlib, reportlab, the analysis) is loaded on the first DSMB download, not with the views
    from alliance.report.dsmb import dsmb_facts, safety_results, write_dsmb_report

    role = role_in(log.user, study)
    if kind not in KINDS_FOR_ROLE.get(role, ()):
        raise PermissionDenied("only the study's admin (the unblinded role) may have the unblinded DSMB report"
                               if kind == "dsmb_unblinded" else "your role may not have the DSMB report")
    blinded = kind == "dsmb_blinded"
    shifted = role not in _REAL_DATES_ROLES
    notes = []
    with transaction.atomic():
        tidy = export_study(study.name)
        if shifted:
            tidy = shift_dates(tidy, date_offsets(study, log))
            log.write()  # the shifts drawn now, with their audit events, in this transaction
            notes.append("De-identified data: each participant's dates are shifted by a secret number of days (the "
                         "same for all of that participant's dates, so intervals are kept), and the cut-off is the "
                         "latest shifted date: the calendar dates are not the real ones.")
    # Drawn outside the transaction: the report reads only the study in memory, and takes seconds.
    generated = timezone.now().astimezone(datetime.UTC).isoformat(timespec="seconds")
    safety = safety_results(tidy, created_utc=generated)
    facts = dsmb_facts(tidy, safety, blinded=blinded, generated_at=generated, study_name=study.name)
    with tempfile.TemporaryDirectory(prefix="alliance-dsmb-") as folder:
        paths = write_dsmb_report(tidy, folder, safety=safety, blinded=blinded, generated_at=generated,
                                  study_name=study.name, notes=notes)
        content = paths["pdf"].read_bytes()
    filename = f"{study.name}-{kind.replace('_', '-')}-{timezone.localdate():%Y%m%d}.pdf"
    with transaction.atomic():
        log.exported(study, {"format": kind, "files": [filename], "dates_shifted": shifted, **facts.to_dict()},
                     label=f"{study.name} export ({kind})")
        log.write()
    return filename, content
