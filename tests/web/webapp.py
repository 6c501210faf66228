"""Fixtures for the web app's tests: a stored study, one account per role, and a signal listener.

Import the fixtures into a test module (``from .webapp import web_study, accounts  # noqa: F401``).
The study is :func:`tests.web.conftest.make_study` (Levin 2024 protocol, six participants,
facilitators F1-F3), imported as ``levin2024``:

- ``facilitator`` is linked to F1: participants P003, P004 and P006;
- ``facilitator2`` is linked to F2: participants P002 and P004;
- so P002 is another facilitator's participant for ``facilitator``, and P003 for ``facilitator2``.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

# Django models are imported inside the fixtures: this module is imported by conftest.py, which
# pytest may load before Django is set up.

STUDY = "levin2024"
PASSWORD = "correct horse battery staple"
OWN = "P003"  # a participant of facilitator (F1), not of facilitator2 (F2)
OTHER = "P002"  # a participant of facilitator2 (F2), not of facilitator (F1)
ROLES = ("admin", "investigator", "facilitator", "facilitator2", "monitor", "outsider")


@dataclass
class Accounts:
    """One user per role (``outsider``: logged in, no role in the study)."""

    admin: object
    investigator: object
    facilitator: object
    facilitator2: object
    monitor: object
    outsider: object

    def __getitem__(self, role: str):
        return getattr(self, role)


@pytest.fixture
def web_study(db):
    """The stored study ``levin2024`` (a ``capture.Study``)."""
    from alliance.web.capture import models as m
    from alliance.web.capture.storage import import_study

    from .conftest import make_study

    import_study(make_study(), STUDY, actor="test:setup")
    return m.Study.objects.get(name=STUDY)


@pytest.fixture
def accounts(web_study) -> Accounts:
    """Users for each role in ``levin2024``; every password is :data:`PASSWORD`."""
    from django.contrib.auth import get_user_model

    from alliance.web.accounts.members import set_membership
    from alliance.web.audit.log import AuditLog

    model = get_user_model()
    log = AuditLog(actor="test:setup", study=web_study)
    users = {}
    for role in ROLES:
        user = model(username=role, is_superuser=(role == "admin"), is_staff=(role == "admin"))
        user.set_password(PASSWORD)
        user.save()
        users[role] = user
    set_membership(users["investigator"], web_study, "investigator", log)
    set_membership(users["facilitator"], web_study, "facilitator", log, facilitator_id="F1")
    set_membership(users["facilitator2"], web_study, "facilitator", log, facilitator_id="F2")
    set_membership(users["monitor"], web_study, "monitor", log)
    log.write()
    return Accounts(**users)


@pytest.fixture
def received():
    """Listen to a signal for one test: ``told = received(signal, "administration")``.

    Returns a function that connects a receiver to ``signal`` and gives the list it appends each
    sending's ``keyword`` argument to; the receivers are disconnected when the test ends.
    """
    connected = []

    def listen(signal, keyword: str) -> list:
        told = []

        def receiver(sender, **kwargs):
            told.append(kwargs[keyword])

        signal.connect(receiver, weak=False)
        connected.append((signal, receiver))
        return told

    yield listen
    for signal, receiver in connected:
        signal.disconnect(receiver)


def client_for(client, accounts: Accounts, role: str | None):
    """The test client logged in as ``role`` (``None``: anonymous)."""
    if role is not None:
        client.force_login(accounts[role])
    return client
