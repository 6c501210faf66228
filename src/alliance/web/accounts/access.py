"""Who may see and do what: the one place where the web app's roles are decided.

Roles are per study (:class:`~alliance.web.accounts.models.StudyMembership`):

``admin``
    Everything in the study, including its members. A superuser is ``admin`` of every study.
``investigator``
    All data of the study: every participant, identifiers, every export; adds members.
``facilitator``
    Only the participants they are assigned to (``capture.FacilitatorAssignment`` of a
    ``capture.Facilitator`` whose ``user`` is them): timelines, dosing sessions, forms, private
    links. Identifiers of those participants, since they meet them. No exports.
``monitor``
    Read-only and de-identified: every participant of the study, but no identifier fields, dates
    shown as days from enrolment, only de-identified exports, and no writes.

In a randomised study (a protocol with ``randomisation:``) only ``admin`` — the unblinded role,
:data:`UNBLINDED_ROLES` — sees the allocation list and its seed; the others learn a participant's
arm only once the participant is enrolled and allocated. Adverse events are recorded by
``admin`` and ``investigator`` (:data:`SAFETY_ROLES`); vital signs also by facilitators, who
are with the participant on the dosing day.

Views use :func:`study_view`: the study comes from the URL keyword ``study``, which holds
``Study.name`` (names are unique; a name cannot contain ``/``). Anonymous users are sent to the
login page; a logged-in user without a fitting role gets 403; a participant the user may not see
is 404 (:func:`participant_or_404`), so that a facilitator cannot even learn that another
facilitator's participant exists.

The capture app's views use this module, so it imports no module of the capture app: it reaches
``capture.Study`` through Django's app registry and a study's participants through the
``study.participants`` relation.

Examples
--------
In a view module::

    @study_view(roles=("admin", "investigator", "facilitator"), write=True)
    def record_dosing(request, study, participant):
        participant = participant_or_404(request.user, study, participant)
        ...
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import wraps

from django.apps import apps
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404, HttpRequest

from .models import Role, StudyMembership

ROLES = ("admin", "investigator", "facilitator", "monitor")
ALL_ROLES = ROLES
STAFF_ROLES = ("admin", "investigator", "facilitator")
WRITE_ROLES = ("admin", "investigator", "facilitator")
IDENTIFIER_ROLES = ("admin", "investigator", "facilitator")
# Roles that see every participant of the study (a facilitator sees only their own).
WHOLE_STUDY_ROLES = ("admin", "investigator", "monitor")
# The unblinded role: generates the randomisation list and holds its seed, sees the list and the
# unblinded (closed-session) DSMB report. Investigators and facilitators enrol participants, so
# they must not see the list (allocation concealment, Schulz & Grimes 2002); monitors are blinded.
UNBLINDED_ROLES = ("admin",)
# Who records adverse events: investigators assess grade, seriousness and relatedness (ICH E6 4.11).
SAFETY_ROLES = ("admin", "investigator")

_CACHE = "_alliance_roles"


def _studies() -> QuerySet:
    # By name, through the app registry (see the module docstring).
    return apps.get_model("capture", "Study").objects.all()


def role_in(user, study) -> str | None:
    """The user's role in a study, or ``None`` when they have none.

    Parameters
    ----------
    user : User or AnonymousUser
    study : capture.Study

    Returns
    -------
    str or None
        One of :data:`ROLES`. Superusers are ``"admin"`` everywhere; inactive and anonymous
        users have no role. Looked up once per user object (one request) and remembered on it.
    """
    if user is None or not getattr(user, "is_authenticated", False) or not user.is_active:
        return None
    if user.is_superuser:
        return Role.ADMIN.value
    cache = getattr(user, _CACHE, None)
    if cache is None:
        cache = {}
        setattr(user, _CACHE, cache)
    if study.pk not in cache:
        cache[study.pk] = (StudyMembership.objects.filter(user=user, study=study)
                           .values_list("role", flat=True).first())
    return cache[study.pk]


def forget_roles(user) -> None:
    """Drop the roles remembered on a user object (after changing memberships in the same request)."""
    if hasattr(user, _CACHE):
        delattr(user, _CACHE)


def studies_for(user) -> QuerySet:
    """The studies a user has any role in (every study for a superuser), by name.

    Parameters
    ----------
    user : User or AnonymousUser

    Returns
    -------
    QuerySet of capture.Study
    """
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return _studies().none()
    if user.is_superuser:
        return _studies().order_by("name")
    return _studies().filter(memberships__user=user).order_by("name").distinct()


def visible_participants(user, study) -> QuerySet:
    """The participants of a study the user may see.

    Parameters
    ----------
    user : User or AnonymousUser
    study : capture.Study

    Returns
    -------
    QuerySet of capture.Participant
        All of the study's participants for admins, investigators and monitors; for a
        facilitator those assigned to a ``capture.Facilitator`` linked to their account; none for
        anyone else.
    """
    role = role_in(user, study)
    participants = study.participants.all()
    if role in WHOLE_STUDY_ROLES:
        return participants
    if role == Role.FACILITATOR:
        return participants.filter(assignments__facilitator__user=user).distinct()
    return participants.none()


def is_admin_anywhere(user) -> bool:
    """Whether the user is ``admin`` of any study (superusers always are).

    The users a required second factor applies to (``REQUIRE_2FA``, see
    :mod:`alliance.web.accounts.two_factor`).
    """
    if user is None or not getattr(user, "is_authenticated", False) or not user.is_active:
        return False
    return user.is_superuser or StudyMembership.objects.filter(user=user, role=Role.ADMIN).exists()


def can_write(user, study) -> bool:
    """Whether the user may change data of the study (monitors and non-members may not)."""
    return role_in(user, study) in WRITE_ROLES


def can_see_identifiers(user, study) -> bool:
    """Whether the user may see identifier fields of the participants they can see (not monitors)."""
    return role_in(user, study) in IDENTIFIER_ROLES


def can_manage_members(user, study) -> bool:
    """Whether the user may add people to the study (admins and investigators)."""
    return role_in(user, study) in ("admin", "investigator")


def can_invite(user, study) -> bool:
    """Whether the user may invite new people by email, creating their accounts (admins only).

    Investigators add existing accounts to the study; a new account on the site is an
    administrator's decision (:mod:`alliance.web.accounts.invitations`).
    """
    return role_in(user, study) == Role.ADMIN


def roles_assignable(user, study) -> tuple[str, ...]:
    """The roles the user may give others in the study: admins any, investigators all but admin."""
    role = role_in(user, study)
    if role == Role.ADMIN:
        return ROLES
    if role == Role.INVESTIGATOR:
        return ("investigator", "facilitator", "monitor")
    return ()


def can_create_study(user) -> bool:
    """Whether the user may set up a new study: superusers and staff users (``is_staff``)."""
    return bool(getattr(user, "is_authenticated", False) and user.is_active
                and (user.is_superuser or user.is_staff))


def participant_or_404(user, study, participant_id: str):
    """The participant with this id, if the user may see them; 404 otherwise.

    Parameters
    ----------
    user : User
    study : capture.Study
    participant_id : str
        ``Participant.participant_id`` (the study's own id, e.g. ``P001``).

    Returns
    -------
    capture.Participant

    Raises
    ------
    django.http.Http404
        For a participant that does not exist or that the user may not see — the same answer,
        so that nobody learns of participants outside their reach.
    """
    participant = (visible_participants(user, study).select_related("arm", "study")
                   .filter(participant_id=participant_id).first())
    if participant is None:
        raise Http404("no such participant")
    return participant


def study_or_404(name: str):
    """The study with this name (the ``study`` URL keyword); 404 when there is none."""
    study = _studies().filter(name=name).first()
    if study is None:
        raise Http404("no such study")
    return study


def study_view(roles: Iterable[str] = ROLES, write: bool = False) -> Callable:
    """Decorate a view that works on one study named by the URL keyword ``study``.

    Parameters
    ----------
    roles : iterable of str
        The roles allowed (from :data:`ROLES`).
    write : bool
        The view changes data: also require :func:`can_write` (refuses monitors whatever
        ``roles`` says).

    Returns
    -------
    callable
        A decorator. The wrapped view receives the ``capture.Study`` as ``study`` instead of its
        name, and ``request.study`` and ``request.study_role`` are set. Anonymous users are
        redirected to the login page; a user without an allowed role gets 403; an unknown study
        is 404.
    """
    allowed = tuple(roles)
    unknown = set(allowed) - set(ROLES)
    if unknown:
        raise ValueError(f"unknown roles {sorted(unknown)}; roles are {', '.join(ROLES)}")

    def decorator(view: Callable) -> Callable:
        @wraps(view)
        def wrapped(request: HttpRequest, *args, study: str, **kwargs):
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            study_row = study_or_404(study)
            role = role_in(request.user, study_row)
            if role not in allowed or (write and not can_write(request.user, study_row)):
                raise PermissionDenied("your role in this study does not allow this")
            request.study = study_row
            request.study_role = role
            return view(request, *args, study=study_row, **kwargs)

        wrapped.study_roles = allowed
        wrapped.study_write = write
        return wrapped

    return decorator


class StudyViewMixin:
    """The class-based form of :func:`study_view`: set ``study_roles`` and ``study_write``."""

    study_roles: tuple[str, ...] = ROLES
    study_write: bool = False

    @classmethod
    def as_view(cls, **initkwargs):
        return study_view(cls.study_roles, cls.study_write)(super().as_view(**initkwargs))
