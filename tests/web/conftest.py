"""Fixtures for the storage tests: a small study, and the database backends to run against.

A test that takes the ``using`` fixture runs twice: against SQLite (alias ``default``) and against
PostgreSQL (alias ``postgres``, see ``tests/web/settings.py``). Without a PostgreSQL server the
PostgreSQL case is skipped with a message saying how to enable it, except under ``CI=true``,
where it fails. Mark a test ``@pytest.mark.transactional`` to run it outside a wrapping
transaction (Django's ``TransactionTestCase``), so that the import's own transaction is the
outermost one and its rollback is the real thing.
"""

from __future__ import annotations

import os
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from django.conf import settings

from alliance import instruments as bank
from alliance.protocol import default_protocol
from alliance.study import Study, load, save, sort_responses

BACKENDS = {"sqlite": "default", "postgresql": "postgres"}


def pytest_configure(config):
    config.addinivalue_line("markers", "transactional: run the test without a wrapping transaction")


def pytest_generate_tests(metafunc):
    if "using" not in metafunc.fixturenames:
        return
    transaction = metafunc.definition.get_closest_marker("transactional") is not None
    params = []
    for backend, alias in BACKENDS.items():
        available = alias in settings.DATABASES
        # Without the server the test still needs a database mark to be collected; it then
        # skips or fails in the `using` fixture before touching any database.
        marks = [pytest.mark.django_db(databases=[alias] if available else ["default"], transaction=transaction)]
        params.append(pytest.param(alias, id=backend, marks=marks))
    metafunc.parametrize("using", params, indirect=True)


@pytest.fixture
def using(request) -> str:
    """The database alias under test: ``default`` (SQLite) or ``postgres`` (PostgreSQL)."""
    alias = request.param
    if alias not in settings.DATABASES:
        reason = getattr(settings, "POSTGRES_UNAVAILABLE", None) or "PostgreSQL is not configured"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true requires the PostgreSQL tests to run: {reason}")
        pytest.skip(reason)
    return alias


def make_study(n_participants: int = 6, seed: int = 7) -> Study:
    """A small valid study in the default (Levin 2024) protocol, every optional column used.

    Values are drawn from each item's allowed answers (visual-analogue items with one decimal,
    which are not exact binary fractions, so the tests see real float round trips). Responses are
    in canonical order, so a saved directory and a saved export can be compared byte for byte.
    """
    rng = np.random.default_rng(seed)
    protocol = default_protocol()
    pids = [f"P{i:03d}" for i in range(1, n_participants + 1)]
    participants = pd.DataFrame({
        "participant_id": pids,
        "arm": [protocol.arms[i % len(protocol.arms)].id for i in range(n_participants)],
        "site": [None if i % 3 == 0 else "site A" for i in range(n_participants)],
        "facilitator_ids": [f"F{i % 3 + 1};F{(i + 1) % 3 + 1}" if i % 4 else None for i in range(n_participants)],
        "age": rng.integers(20, 70, n_participants),
        "sex": rng.choice(["F", "M"], n_participants),
        "weight_kg": np.round(rng.uniform(50, 100, n_participants), 1),
        "name": [f"Person {i}" for i in range(n_participants)],
        "enrolled_on": [None if i == 1 else f"2024-01-{1 + i:02d}" for i in range(n_participants)],
    })
    rows = []
    for number, pid in enumerate(pids):
        for t in protocol.timepoints:
            day = f"2024-{1 + t.order:02d}-{10 + number:02d}"
            for instrument_id in t.instruments:
                inst = bank.get(instrument_id)
                rater = "rater 1" if inst.rater == "clinician" else None
                for item in inst.items:
                    if item.step is None:
                        value = round(float(rng.uniform(item.min, item.max)), 1)
                    else:
                        steps = int(round((item.max - item.min) / item.step))
                        value = float(item.min + item.step * rng.integers(0, steps + 1))
                    rows.append((pid, t.id, instrument_id, item.id, value, rater, day))
    responses = pd.DataFrame(rows, columns=["participant_id", "timepoint", "instrument", "item", "value", "rater",
                                            "administered_at"])
    dosing = pd.DataFrame(
        # each session on the day its forms were filled in, after the pre-dose assessments
        [(pid, t.dose.session, f"2024-{1 + t.order:02d}-{10 + number:02d}", t.dose.compound, t.dose.amount,
          t.dose.unit)
         for number, pid in enumerate(pids) for t in protocol.dosing_timepoints],
        columns=["participant_id", "session", "date", "compound", "amount", "unit"])
    study = Study(protocol, participants, sort_responses(responses, protocol, pids), dosing)
    study.validate()
    return study


RATED_TIMEPOINTS = ("prep", "week1")


def rated_protocol():
    """The Levin 2024 protocol with the facilitators' WAI-SR-T (``rater: facilitator``) added at
    ``prep`` and ``week1``, after the instruments those timepoints give."""
    base = default_protocol()
    timepoints = tuple(replace(t, instruments=(*t.instruments, "wai_sr_t")) if t.id in RATED_TIMEPOINTS else t
                       for t in base.timepoints)
    return replace(base, timepoints=timepoints)


def make_rated_study(n_participants: int = 6, seed: int = 7, unrated: tuple[str, ...] = ()) -> Study:
    """:func:`make_study` in :func:`rated_protocol`: each facilitator of each participant rated the
    WAI-SR-T at ``prep`` and ``week1`` (``rater`` = the facilitator id), on the day of the
    timepoint's other forms; participants in ``unrated`` have no rating (for the web tests to enter)."""
    rng = np.random.default_rng(seed + 1)
    plain = make_study(n_participants, seed)
    protocol = rated_protocol()
    inst = bank.get("wai_sr_t")
    rows = []
    for number, (pid, ids) in enumerate(zip(plain.participants["participant_id"],
                                            plain.participants["facilitator_ids"], strict=True)):
        if pid in unrated or not isinstance(ids, str):
            continue
        for timepoint in protocol.timepoints:
            if timepoint.id not in RATED_TIMEPOINTS:
                continue
            day = f"2024-{1 + timepoint.order:02d}-{10 + number:02d}"
            for facilitator in ids.split(";"):
                for item in inst.items:
                    rows.append((pid, timepoint.id, "wai_sr_t", item.id, float(rng.integers(1, 6)), facilitator,
                                 day))
    ratings = pd.DataFrame(rows, columns=list(plain.responses.columns))
    pids = plain.participants["participant_id"].tolist()
    responses = sort_responses(pd.concat([plain.responses, ratings], ignore_index=True), protocol, pids)
    study = Study(protocol, plain.participants, responses, plain.dosing_sessions)
    study.validate()
    return study


@pytest.fixture
def study_dir(tmp_path):
    """A study directory in the tidy contract, written by ``alliance.study.save``."""
    directory = tmp_path / "study"
    save(make_study(), directory)
    return directory


@pytest.fixture
def study(study_dir) -> Study:
    """The study of :func:`study_dir`, as ``alliance.study.load`` reads it."""
    return load(study_dir)


# The web app's fixtures (a stored study ``levin2024``, one account per role, a signal listener; see
# webapp.py), registered here so that every test in this folder can ask for them by name.
from .webapp import accounts, received, web_study  # noqa: E402,F401
