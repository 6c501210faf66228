"""Importing study files through the web app: upload, see the change, confirm, import.

The web counterpart of ``alliance import DIR --study NAME`` for a study that already exists
(set up with its protocol on the "Set up a study" page):

1. **Upload.** An administrator of the study uploads ``participants.csv`` and ``responses.csv``
   (and optionally ``dosing_sessions.csv``) in the tidy contract (``docs/data.md``). The files are
   kept in a staging folder of their own (``$ALLIANCE_DATA_DIR/uploads/<token>``, mode 0700),
   read and validated by :func:`alliance.study.load` with the study's stored protocol, and
   imported as a dry run (:func:`~alliance.web.capture.storage.import_study`, ``dry_run=True``):
   the page shows what the import would create, change and delete, or every problem of the
   files with file, line, column and value. Nothing is written to the database.
2. **Confirm.** Importing needs a second POST naming the staged upload. When the change deletes
   stored records (participants, answers, dosing sessions, enrolment dates …) the administrator
   must also tick a box saying so, which becomes ``allow_deletions=True``. The import runs in
   one transaction and is rolled back if its change is not the one shown (the stored data
   changed in between): the page then shows the new change to confirm.

A staged upload belongs to the session that made it (its token is kept in the session), is
removed after the import or on "Cancel", and uploads older than :data:`STAGING_HOURS` are removed
whenever a new one is staged.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import time
from dataclasses import replace
from pathlib import Path

from django.conf import settings

from alliance.study import Study, StudyDataError, load
from alliance.study.csv_input import MAX_CSV_BYTES

from . import models as m

FILES = ("participants.csv", "responses.csv", "dosing_sessions.csv")
REQUIRED = FILES[:2]
STAGING_HOURS = 1
SESSION_KEY = "alliance_imports"
_TOKEN_BYTES = 16


def staging_root() -> Path:
    """The folder of staged uploads (created, mode 0700)."""
    root = Path(settings.DATA_DIR) / "uploads"
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    return root


def _folder(token: str) -> Path | None:
    if len(token) != 2 * _TOKEN_BYTES or any(c not in "0123456789abcdef" for c in token):
        return None
    folder = staging_root() / token
    return folder if folder.is_dir() else None


def _remove_old() -> None:
    limit = time.time() - STAGING_HOURS * 3600
    for folder in staging_root().iterdir():
        try:
            if folder.is_dir() and folder.stat().st_mtime < limit:
                shutil.rmtree(folder, ignore_errors=True)
        except FileNotFoundError:  # another process removed it meanwhile
            continue


def stage(files: dict) -> str:
    """Keep uploaded files under their contract names; returns the upload's token.

    Parameters
    ----------
    files : dict
        Contract file name (one of :data:`FILES`) → Django ``UploadedFile``; at most
        :data:`~alliance.study.csv_input.MAX_CSV_BYTES` each (the form checks it).
    """
    _remove_old()
    token = secrets.token_hex(_TOKEN_BYTES)
    folder = staging_root() / token
    folder.mkdir(mode=0o700)
    for name, upload in files.items():
        if name not in FILES:
            raise ValueError(f"not a study file: {name}")
        with open(folder / name, "wb") as out:
            for chunk in upload.chunks():
                out.write(chunk)
        os.chmod(folder / name, 0o600)
    return token


def original_names(files: dict) -> dict[str, str]:
    """Contract file name → the name the file had on the user's computer (for messages)."""
    return {name: Path(upload.name).name for name, upload in files.items()}


def read_staged(study: m.Study, token: str, names: dict[str, str] | None = None) -> Study:
    """The staged files as a validated study with the stored protocol of ``study``.

    Raises
    ------
    StudyDataError
        Every problem of the files; each names the uploaded file (``participants.csv``, or the
        name it was uploaded under), never the staging folder.
    LookupError
        When the upload is gone (imported, cancelled or expired).
    """
    folder = _folder(token)
    if folder is None:
        raise LookupError("the uploaded files are gone (imported, cancelled or older than "
                          f"{STAGING_HOURS} hour); upload them again")
    (folder / "protocol.yaml").write_text(study.protocol_yaml, encoding="utf-8")
    try:
        return load(folder)
    except StudyDataError as error:
        names = names or {}

        def shown(file: str) -> str:
            path = Path(file)
            if path.parent == folder:
                return names.get(path.name, path.name)
            return "the uploaded files" if path == folder else file

        problems = [replace(p, file=shown(str(p.file))) for p in error.problems]
        raise StudyDataError(problems, f"{len(problems)} {'problem' if len(problems) == 1 else 'problems'} "
                                       "in the uploaded files; nothing was imported") from None


def discard(token: str) -> None:
    """Remove a staged upload (no error when it is gone already)."""
    folder = _folder(token)
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)


def fingerprint(change: dict) -> str:
    """A short hash of an import's change (``ImportSummary.to_dict()`` without ``dry_run``)."""
    plain = {k: v for k, v in change.items() if k not in ("dry_run", "audit_events")}
    return hashlib.sha256(json.dumps(plain, sort_keys=True).encode()).hexdigest()[:32]


def remember(session, study: m.Study, token: str, change: dict, names: dict[str, str]) -> None:
    """Keep the staged upload and the change shown for it in the user's session."""
    imports = dict(session.get(SESSION_KEY, {}))
    imports[token] = {"study": study.pk, "fingerprint": fingerprint(change), "names": names}
    session[SESSION_KEY] = imports


def recalled(session, study: m.Study, token: str) -> dict | None:
    """What :func:`remember` kept for this token and study, or ``None`` (another user's or study's)."""
    entry = session.get(SESSION_KEY, {}).get(token)
    return entry if entry and entry.get("study") == study.pk else None


def forget(session, token: str) -> None:
    imports = dict(session.get(SESSION_KEY, {}))
    imports.pop(token, None)
    session[SESSION_KEY] = imports


__all__ = ["FILES", "MAX_CSV_BYTES", "REQUIRED", "STAGING_HOURS", "discard", "fingerprint", "forget",
           "original_names", "read_staged", "recalled", "remember", "stage"]
