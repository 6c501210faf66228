"""Demo accounts on an imported study, for trying the web app, screenshots and browser tests.

:func:`seed_demo` gives a study one account per role, all with the password
:data:`DEMO_PASSWORD` — **for a demo only**; never run it on a database with real participants.

===================== ============ ====================================================
username              role         sees
===================== ============ ====================================================
``demo-admin``        admin        everything; may set up studies (``is_staff``)
``demo-investigator`` investigator every participant, identifiers, every export
``demo-facilitator``  facilitator  participants of the study's first facilitator id
``demo-facilitator2`` facilitator  participants of the second facilitator id
``demo-monitor``      monitor      every participant, de-identified, read-only
===================== ============ ====================================================

Participants without an enrolment date get one, so that their timelines can be drawn: the
earliest date of their submitted forms, else today. Everything is written with audit events
(actor ``demo:seed``). Running it again changes only what is missing.

Examples
--------
After ``alliance demo`` (which imports the study ``levin2024-demo``)::

    python -c "from alliance.web import django_setup; django_setup();
               from alliance.web.capture.demo import seed_demo; print(seed_demo('levin2024-demo'))"

or ``django-admin seed_demo levin2024-demo --settings alliance.web.settings``.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from alliance.web.accounts.members import create_user, set_membership
from alliance.web.audit.log import AuditLog

from . import models as m
from .errors import UnknownStudyError
from .recording import participant_state
from .timelines import iso_day

DEMO_PASSWORD = "alliance-demo-password"
DEMO_USERS = (
    ("demo-admin", "admin"),
    ("demo-investigator", "investigator"),
    ("demo-facilitator", "facilitator"),
    ("demo-facilitator2", "facilitator"),
    ("demo-monitor", "monitor"),
)


def seed_demo(study_name: str) -> dict[str, dict[str, str]]:
    """Create the demo accounts on a stored study (see the module docstring).

    Parameters
    ----------
    study_name : str
        An imported study (e.g. ``levin2024-demo``).

    Returns
    -------
    dict
        Username → ``{"password", "role", "facilitator_id"}`` (``facilitator_id`` empty for
        other roles).

    Raises
    ------
    UnknownStudyError
        When there is no such study.
    """
    study = m.Study.objects.filter(name=study_name).first()
    if study is None:
        raise UnknownStudyError(f"no study named {study_name!r}; import one first (e.g. `alliance demo`)")
    model = get_user_model()
    out = {}
    with transaction.atomic():
        log = AuditLog(actor="demo:seed", study=study)
        for username, role in DEMO_USERS:
            user = model.objects.filter(username=username).first()
            if user is None:
                user = create_user(username, DEMO_PASSWORD, log, validate=False)
                if role == "admin":
                    user.is_staff = True
                    user.save(update_fields=["is_staff"])
            facilitator_id = _facilitator_for(study, user) if role == "facilitator" else ""
            set_membership(user, study, role, log, facilitator_id=facilitator_id)
            out[username] = {"password": DEMO_PASSWORD, "role": role, "facilitator_id": facilitator_id}
        _enrolment_dates(study, log)
        log.write()
    return out


def _facilitator_for(study: m.Study, user) -> str:
    """The facilitator id a demo facilitator account is linked to: its own, else the first free one."""
    own = m.Facilitator.objects.filter(study=study, user=user).order_by("facilitator_id").first()
    if own is not None:
        return own.facilitator_id
    free = m.Facilitator.objects.filter(study=study, user__isnull=True).order_by("facilitator_id").first()
    if free is not None:
        return free.facilitator_id
    taken = set(m.Facilitator.objects.filter(study=study).values_list("facilitator_id", flat=True))
    return next(f"F{k}" for k in range(1, len(taken) + 2) if f"F{k}" not in taken)


def _enrolment_dates(study: m.Study, log: AuditLog) -> None:
    earliest: dict[int, object] = {}
    for participant_pk, administered_at in (m.Administration.objects
                                            .filter(participant__study=study, status=m.Administration.Status.SUBMITTED)
                                            .values_list("participant_id", "administered_at")):
        day = iso_day(administered_at)
        if day is not None and (participant_pk not in earliest or day < earliest[participant_pk]):
            earliest[participant_pk] = day
    for participant in m.Participant.objects.filter(study=study, enrolled_on__isnull=True).select_related("arm"):
        old = participant_state(participant)
        participant.enrolled_on = earliest.get(participant.pk, timezone.localdate())
        participant.save(update_fields=["enrolled_on", "updated_at"])
        log.changed(participant, old, participant_state(participant), label=participant.participant_id)
