"""Accounts and study memberships, created and changed with their audit events.

Used by the members page (memberships), by ``alliance createadmin`` and by the demo seed (accounts
with a password their own user gives), so that an account made any of these ways is made the same
way and shows up in the audit trail. Audit events of accounts hold the username and roles, never a
password or its hash. A person added from the members page is invited instead and chooses their own
password (:mod:`alliance.web.accounts.invitations`).

A study's facilitator records (``capture.Facilitator``) are reached through ``study.facilitators``:
the capture app imports this module, so this one imports none of capture's.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model, password_validation
from django.db import transaction

from alliance.web.audit.log import AuditLog

from .models import Role, StudyMembership


def _user_state(user) -> dict:
    return {"username": user.get_username(), "is_superuser": user.is_superuser, "is_staff": user.is_staff,
            "is_active": user.is_active}


def create_user(username: str, password: str | None, log: AuditLog, *, superuser: bool = False,
                email: str = "", validate: bool = True):
    """Create an account (with an Argon2 password hash) and record it in ``log``.

    Parameters
    ----------
    username : str
    password : str or None
        ``None``: an unusable password, until the owner sets one (an invitation,
        :mod:`alliance.web.accounts.invitations`); the event then says ``usable_password: false``.
    log : AuditLog
        Collects the ``create`` event; the caller writes it in its transaction.
    superuser : bool
        An administrator of every study (``is_superuser`` and ``is_staff``).
    email : str
    validate : bool
        Check the password with ``AUTH_PASSWORD_VALIDATORS`` first (the demo seed does not).

    Returns
    -------
    User

    Raises
    ------
    django.core.exceptions.ValidationError
        For a password the validators refuse.
    ValueError
        When the username is taken or empty.
    """
    model = get_user_model()
    username = username.strip()
    if not username:
        raise ValueError("a username is needed")
    if model.objects.filter(username=username).exists():
        raise ValueError(f"there is already an account named {username!r}")
    user = model(username=username, email=email, is_superuser=superuser, is_staff=superuser)
    if password is None:
        user.set_unusable_password()
    else:
        if validate:
            password_validation.validate_password(password, user)
        user.set_password(password)
    user.save()
    invited = {"usable_password": False, "invited": True} if password is None else {}
    log.created(user, {**_user_state(user), **invited}, label=username)
    return user


def set_membership(user, study, role: str, log: AuditLog, *, facilitator_id: str = "") -> StudyMembership:
    """Give ``user`` the ``role`` in ``study`` (replacing a role they had), recorded in ``log``.

    For the facilitator role the account is linked to the study's ``capture.Facilitator`` with
    ``facilitator_id`` (created when the study has none of that id), which is what
    :func:`~alliance.web.accounts.access.visible_participants` follows.

    Returns
    -------
    StudyMembership

    Raises
    ------
    ValueError
        When the facilitator id is already linked to another account.
    """
    membership = StudyMembership.objects.filter(user=user, study=study).first()
    if membership is None:
        membership = StudyMembership.objects.create(user=user, study=study, role=role)
        log.created(membership, {"username": user.get_username(), "role": role},
                    label=f"{user.get_username()} in {study.name}")
    elif membership.role != role:
        old = membership.role
        membership.role = role
        membership.save(update_fields=["role"])
        log.changed(membership, {"role": old}, {"role": role}, label=f"{user.get_username()} in {study.name}")
    if role == Role.FACILITATOR:
        facilitator_id = facilitator_id.strip()
        facilitator = study.facilitators.filter(facilitator_id=facilitator_id).first()
        if facilitator is None:
            facilitator = study.facilitators.create(facilitator_id=facilitator_id, user=user)
            log.created(facilitator, {"facilitator_id": facilitator_id, "username": user.get_username()},
                        label=facilitator_id)
        elif facilitator.user_id != user.pk:
            if facilitator.user_id is not None:
                raise ValueError(f"facilitator {facilitator_id} is already linked to another account")
            facilitator.user = user
            facilitator.save(update_fields=["user"])
            log.changed(facilitator, {"username": None}, {"username": user.get_username()}, label=facilitator_id)
    return membership


def remove_membership(membership: StudyMembership, log: AuditLog) -> None:
    """Take a person's role in a study away, unlinking their facilitator records there."""
    user, study = membership.user, membership.study
    for facilitator in study.facilitators.filter(user=user):
        facilitator.user = None
        facilitator.save(update_fields=["user"])
        log.changed(facilitator, {"username": user.get_username()}, {"username": None},
                    label=facilitator.facilitator_id)
    log.deleted(membership, {"username": user.get_username(), "role": membership.role},
                label=f"{user.get_username()} in {study.name}")
    membership.delete()


def create_admin(username: str, password: str, *, email: str = "", actor: str = "cli:createadmin"):
    """Create an administrator of every study (what ``alliance createadmin`` does), audited.

    Parameters
    ----------
    username, password : str
        The password is checked with ``AUTH_PASSWORD_VALIDATORS``.
    email : str
    actor : str
        Recorded in the audit event.

    Returns
    -------
    User
    """
    with transaction.atomic():
        log = AuditLog(actor=actor)
        user = create_user(username, password, log, superuser=True, email=email)
        log.write()
    return user
