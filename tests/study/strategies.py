"""Hypothesis strategies: random valid studies of the default protocol."""

from __future__ import annotations

from datetime import date

import pandas as pd
from hypothesis import strategies as st

from alliance import instruments as bank
from alliance.protocol import default_protocol
from alliance.study import Study

from .builders import RESPONSE_COLUMNS


def answers(item) -> st.SearchStrategy:
    """A valid answer to one item, or ``None`` (unanswered)."""
    if item.step is None:
        valid = st.floats(min_value=item.min, max_value=item.max, allow_nan=False, allow_subnormal=False)
    else:
        steps = int(round((item.max - item.min) / item.step))
        valid = st.integers(0, steps).map(lambda k: item.min + k * item.step)
    return st.one_of(st.none(), valid, valid)


@st.composite
def studies(draw, max_participants: int = 3, dosing: bool = False) -> Study:
    """Participants in random arms; each participant × timepoint × instrument administered or not,
    each item answered or not, with a random rater and administration date per administration.
    Sometimes an ``enrolled_on`` column (dates or empty); with ``dosing``, a dosing sessions table
    (each protocol session given or not, date and amount or not)."""
    protocol = default_protocol()
    n = draw(st.integers(1, max_participants))
    participant_ids = [f"P{i}" for i in range(1, n + 1)]
    arms = [draw(st.sampled_from(protocol.arm_ids)) for _ in participant_ids]
    rows = []
    for participant_id in participant_ids:
        for timepoint in protocol.timepoints:
            for instrument_id in timepoint.instruments:
                if not draw(st.booleans()):
                    continue
                inst = bank.get(instrument_id)
                rater = draw(st.one_of(st.none(), st.sampled_from(["R1", "R2", "participant"])))
                when = draw(st.one_of(st.none(), st.dates().map(lambda d: d.isoformat())))
                for item in inst.items:
                    value = draw(answers(item))
                    if value is not None:
                        rows.append([participant_id, timepoint.id, instrument_id, item.id, float(value), rater, when])
    participants = pd.DataFrame({"participant_id": participant_ids, "arm": arms})
    if draw(st.booleans()):
        enrolment = st.dates(min_value=date(1990, 1, 1), max_value=date(2100, 1, 1)).map(date.isoformat)
        participants["enrolled_on"] = [draw(st.one_of(st.none(), enrolment)) for _ in participant_ids]
    sessions = None
    if dosing:
        numbers = sorted(t.dose.session for t in protocol.dosing_timepoints)
        given = [(pid, s) for pid in participant_ids for s in numbers if draw(st.booleans())]
        sessions = pd.DataFrame({
            "participant_id": [g[0] for g in given], "session": [g[1] for g in given],
            "date": [draw(st.one_of(st.none(), st.dates().map(date.isoformat))) for _ in given],
            "compound": "psilocybin",
            "amount": [draw(st.one_of(st.none(), st.sampled_from([10.0, 20.0, 25.5]))) for _ in given],
            "unit": "mg/70kg"})
    return Study(protocol, participants, pd.DataFrame(rows, columns=RESPONSE_COLUMNS), sessions)
