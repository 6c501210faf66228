"""Small studies built by hand for the study-data tests."""

from __future__ import annotations

import pandas as pd

from alliance import instruments as bank
from alliance.protocol import default_protocol
from alliance.study import Study

RESPONSE_COLUMNS = ["participant_id", "timepoint", "instrument", "item", "value", "rater", "administered_at"]


def administration(participant_id: str, timepoint: str, instrument: str, values, rater=None,
                   administered_at=None) -> list[dict]:
    """Rows of responses.csv for one administration; ``values`` is one number for every item or a
    list with one entry per item (``None`` = unanswered)."""
    inst = bank.get(instrument)
    if not isinstance(values, list | tuple):
        values = [values] * len(inst.items)
    return [{"participant_id": participant_id, "timepoint": timepoint, "instrument": instrument, "item": item_id,
             "value": float(v), "rater": rater, "administered_at": administered_at}
            for item_id, v in zip(inst.item_ids, values, strict=True) if v is not None]


def responses(*administrations: list[dict]) -> pd.DataFrame:
    rows = [row for a in administrations for row in a]
    return pd.DataFrame(rows, columns=RESPONSE_COLUMNS)


def small_study() -> Study:
    """Two participants, one per arm, a few administrations with hand-chosen answers.

    P01: WAI-SR at prep all 4 (total 48) and at week1 all 5 (total 60); MEQ30 all 3 at session1
    and all 4 at session2 (mean 3 and 4: peak 4); insight 40 then 70.5 (peak 70.5); GRID-HAMD
    all items 1 at baseline (total 17).
    P02: WAI-SR at prep with item 12 unanswered, the rest 3 (prorated total 33 × 12 / 11 = 36);
    MEQ30 only at session1, all 2 (peak 2); GRID-HAMD at baseline all 0 (total 0).
    """
    participants = pd.DataFrame({
        "participant_id": ["P01", "P02"],
        "arm": ["immediate", "delayed"],
        "site": ["site-1", "site-2"],
        "facilitator_ids": ["F1;F2", "F2;F3"],
        "age": [34, 51],
        "mrn": ["00123", "00456"],
    })
    data = responses(
        administration("P01", "baseline", "grid_hamd17", 1, rater="R1", administered_at="2024-01-02"),
        administration("P01", "prep", "wai_sr", 4, administered_at="2024-01-22"),
        administration("P01", "session1", "meq30", 3, administered_at="2024-01-23T16:00:00"),
        administration("P01", "session1", "insight", 40),
        administration("P01", "session2", "meq30", 4),
        administration("P01", "session2", "insight", 70.5),
        administration("P01", "week1", "wai_sr", 5),
        administration("P02", "baseline", "grid_hamd17", 0, rater="R2"),
        administration("P02", "prep", "wai_sr", [3] * 11 + [None]),
        administration("P02", "session1", "meq30", 2),
    )
    dosing = pd.DataFrame({"participant_id": ["P01", "P01"], "session": [1, 2],
                           "date": ["2024-01-23", "2024-02-04"], "compound": ["psilocybin", "psilocybin"],
                           "amount": [20.0, 30.0], "unit": ["mg/70kg", "mg/70kg"]})
    return Study(protocol=default_protocol(), participants=participants, responses=data, dosing_sessions=dosing)
