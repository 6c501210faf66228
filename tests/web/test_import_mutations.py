"""Property: any damaged study directory is refused cleanly or stored exactly, never half-way.

Issue 11, "Done means": a property-based test mutates a valid study (truncation, byte flips,
encodings, duplicated or missing columns, non-finite numbers, injection strings, bad ids) and
asserts for each: either a clean domain error naming the file (and row/column where there is one)
and the database unchanged, or an accepted import that stores exactly what the file says; never
a traceback, never a hang (each case under a time limit).

Each example starts from the same stored study (the valid directory is imported again, with
deletions allowed, so that earlier examples leave nothing behind), mutates one or two files of
the directory, then runs what ``alliance import`` runs: :func:`alliance.study.load` and
:func:`~alliance.web.capture.storage.import_study` without ``allow_deletions``. Accepted: a
:class:`~alliance.study.StudyDataError` whose problems all name a file of the directory (a row
≥ 1 where there is one), or :class:`DeletionsNotAllowed`, with the database as before; or an
import after which :func:`export_study` gives back what ``load`` read. Anything else — another
exception, a different database, more than :data:`LIMIT_SECONDS` — fails.
"""

from __future__ import annotations

import os
import signal
from contextlib import contextmanager

import pandas as pd
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from alliance.study import StudyDataError, load, save, sort_responses
from alliance.web.capture.storage import DeletionsNotAllowed, export_study, import_study

from .conftest import make_study
from .test_storage import snapshot

ACTOR = "test:mutations"
NAME = "mutated"
LIMIT_SECONDS = 20
FILES = ("participants.csv", "responses.csv", "dosing_sessions.csv", "protocol.yaml")
NOT_FINITE = ["inf", "-inf", "Infinity", "nan", "NaN", "1e309", "-1e400"]
INJECTIONS = ["=cmd|' /C calc'!A0", "@SUM(1+1)*cmd|' /C calc'!A0", "+1+1", "-2+3", "=HYPERLINK(\"http://x\")",
              "\t=1", "\r=1"]
BAD_IDS = ["P/1", "P 1", "P\x001", "", " ", "x" * 65, "../etc", "P\u202e1", "Pé1", "-P1"]


class TimedOut(Exception):
    pass


@contextmanager
def time_limit(seconds: int):
    def stop(signum, frame):
        raise TimedOut(f"a case took more than {seconds} s")

    previous = signal.signal(signal.SIGALRM, stop)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


# -- mutations: each takes the file's bytes and a draw function, and returns new bytes -----------

def _rows(data: bytes) -> list[list[str]]:
    # surrogateescape: a file another mutation made non-UTF-8 keeps its bytes
    return [line.split(",") for line in data.decode("utf-8", "surrogateescape").split("\n")]


def _join(rows: list[list[str]]) -> bytes:
    return "\n".join(",".join(r) for r in rows).encode("utf-8", "surrogateescape")


def truncate(data, draw):
    return data[: draw(st.integers(0, max(len(data) - 1, 0)))]


def flip_byte(data, draw):
    if not data:
        return data
    at = draw(st.integers(0, len(data) - 1))
    return data[:at] + bytes([data[at] ^ draw(st.integers(1, 255))]) + data[at + 1:]


def insert_bytes(data, draw):
    at = draw(st.integers(0, len(data)))
    return data[:at] + draw(st.sampled_from([b"\x00", b"\n\n", b'"', b",", b"\r", b"\xff\xfe", b"\xc3"])) + data[at:]


def encode_otherwise(data, draw):
    text = data.decode("utf-8", "replace")
    encoding = draw(st.sampled_from(["latin-1", "utf-16", "utf-8-sig", "cp1252", "utf-32"]))
    return text.encode(encoding, errors="replace")


def duplicate_column(data, draw):
    rows = _rows(data)
    column = draw(st.integers(0, len(rows[0]) - 1))
    return _join([r + [r[column]] if len(r) > column else r for r in rows])


def drop_column(data, draw):
    rows = _rows(data)
    column = draw(st.integers(0, len(rows[0]) - 1))
    return _join([r[:column] + r[column + 1:] for r in rows])


def set_cell(data, draw, values):
    rows = _rows(data)
    body = [i for i, r in enumerate(rows) if i > 0 and len(r) == len(rows[0])]
    if not body:
        return data
    row = draw(st.sampled_from(body))
    column = draw(st.integers(0, len(rows[0]) - 1))
    value = draw(st.sampled_from(values))
    rows[row][column] = f'"{value}"' if any(c in value for c in ',"\n\r') else value
    return _join(rows)


def non_finite(data, draw):
    return set_cell(data, draw, NOT_FINITE)


def injection(data, draw):
    return set_cell(data, draw, INJECTIONS)


def bad_id(data, draw):
    rows = _rows(data)
    body = [i for i, r in enumerate(rows) if i > 0 and len(r) == len(rows[0])]
    if not body:
        return data
    rows[draw(st.sampled_from(body))][0] = draw(st.sampled_from(BAD_IDS))
    return _join(rows)


def yaml_damage(data, draw):
    kind = draw(st.sampled_from(["alias bomb", "deep", "huge number", "tab", "cut"]))
    if kind == "alias bomb":
        bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
            f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n"
            for i in range(8))
        return bomb.encode()
    if kind == "deep":
        return ("x: " + "[" * 600 + "]" * 600 + "\n").encode()
    if kind == "huge number":
        return data.replace(b"window_days: [0, 14]", b"window_days: [0, 1e30]", 1)
    if kind == "tab":
        return data.replace(b"\n  ", b"\n\t", 3)
    return truncate(data, draw)


CSV_MUTATIONS = [truncate, flip_byte, insert_bytes, encode_otherwise, duplicate_column, drop_column, non_finite,
                 injection, bad_id]


def choose(draw) -> list[tuple[str, object]]:
    """One or two (file, mutation) pairs."""
    chosen = []
    for _ in range(draw(st.integers(1, 2))):
        file = draw(st.sampled_from(FILES))
        chosen.append((file, yaml_damage if file == "protocol.yaml" else draw(st.sampled_from(CSV_MUTATIONS))))
    return chosen


def _same_study(stored, loaded) -> None:
    ids = loaded.participant_ids
    pd.testing.assert_frame_equal(sort_responses(stored.responses, stored.protocol, ids),
                                  sort_responses(loaded.responses, loaded.protocol, ids), check_dtype=False)
    order = ["participant_id"]
    pd.testing.assert_frame_equal(stored.participants.sort_values(order).reset_index(drop=True)[loaded.participants.columns],
                                  loaded.participants.sort_values(order).reset_index(drop=True), check_dtype=False)
    if loaded.dosing_sessions is not None:
        key = ["participant_id", "session"]
        pd.testing.assert_frame_equal(stored.dosing_sessions.sort_values(key).reset_index(drop=True),
                                      loaded.dosing_sessions.sort_values(key).reset_index(drop=True),
                                      check_dtype=False)


@pytest.fixture
def valid_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("valid")
    save(make_study(n_participants=3, seed=11), directory)
    return directory


# ALLIANCE_MUTATION_EXAMPLES=2000 for a long run; the suite's default keeps it under half a minute.
@settings(max_examples=int(os.environ.get("ALLIANCE_MUTATION_EXAMPLES", "60")), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_a_damaged_study_is_refused_cleanly_or_stored_exactly(using, valid_dir, tmp_path_factory, data):
    draw = data.draw
    chosen = choose(draw)
    base = load(valid_dir)
    import_study(base, NAME, ACTOR, using=using, allow_deletions=True)
    directory = tmp_path_factory.mktemp("mutated")
    for name in FILES:
        (directory / name).write_bytes((valid_dir / name).read_bytes())
    for file, mutation in chosen:
        path = directory / file
        path.write_bytes(mutation(path.read_bytes(), draw))
        event(f"{file}: {mutation.__name__}")
    before = snapshot(using)
    with time_limit(LIMIT_SECONDS):
        try:
            study = load(directory)
            import_study(study, NAME, ACTOR, using=using)
        except StudyDataError as refused:
            files = {str(directory / name) for name in FILES} | {str(directory)}
            for problem in refused.problems:
                assert problem.file in files, problem
                assert problem.row is None or problem.row >= 1, problem
            assert snapshot(using) == before
            event("refused: " + refused.problems[0].reason[:40])
            return
        except DeletionsNotAllowed:
            assert snapshot(using) == before
            event("refused: would delete")
            return
    event("stored")
    _same_study(export_study(NAME, using), study)
