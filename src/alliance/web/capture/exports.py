"""Exports from the web app: the tidy contract, REDCap, de-identified — each a zip, each audited.

All three start from :func:`alliance.web.capture.storage.export_study` (what ``alliance export``
reads) and are written by the study layer's own writers, so a download and the CLI give the same
files:

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

Monitors may download only ``deidentified``; see :data:`KINDS_FOR_ROLE`.
"""

from __future__ import annotations

import io
import tempfile
import zipfile
from pathlib import Path

from django.db import transaction
from django.utils import timezone

from alliance import instruments as bank
from alliance.study import formats, save
from alliance.study.deidentify import shift_dates
from alliance.web.audit.log import AuditLog

from . import models as m
from .errors import StorageError
from .recording import date_offsets
from .storage import export_study

KINDS = {
    "tidy": "Tidy contract (CSV files and protocol)",
    "redcap": "REDCap (data dictionary, records, mapping)",
    "deidentified": "De-identified tidy contract (identifiers dropped, dates shifted)",
}
KINDS_FOR_ROLE = {
    "admin": ("tidy", "redcap", "deidentified"),
    "investigator": ("tidy", "redcap", "deidentified"),
    "monitor": ("deidentified",),
}


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
    """Build an export of a study as a zip file and record it in the audit trail.

    Parameters
    ----------
    study : Study
    kind : {"tidy", "redcap", "deidentified"}
    log : AuditLog
        Gets an ``export`` event (kind, files, counts) and, for ``deidentified``, the creation of
        date shifts not drawn before; written here, in one transaction.

    Returns
    -------
    filename : str
        E.g. ``levin2024-deidentified-20240301.zip``.
    content : bytes

    Raises
    ------
    KeyError
        For an unknown kind.
    ExportNotPossible
        For ``redcap`` when the protocol has a facilitator-rated instrument (module docstring).
    """
    if kind not in KINDS:
        raise KeyError(f"unknown export {kind!r}; exports are {', '.join(KINDS)}")
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
