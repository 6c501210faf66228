"""The engine additions for the C-SSRS: the ``highest_endorsed`` method and flags on a scale.

Expected values are worked by hand in each test. The shipped C-SSRS files are checked against
their published key by ``vectors/cssrs_screen.yaml`` and ``vectors/cssrs_slv.yaml``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from alliance.instruments import score
from alliance.instruments.definition import InstrumentDefinitionError, parse_instrument


def _definition(scale_extra: dict | None = None, flags: list | None = None, item_max: int = 1) -> dict:
    scale = {"id": "severity", "method": "highest_endorsed", "items": [f"toy_{n}" for n in range(1, 5)],
             "range": [0, 4], "missing": {"max_missing": 0, "source": "test"}, "source": "test"}
    scale |= scale_extra or {}
    return {
        "id": "toy", "name": "Toy", "version": "1", "rater": "clinician", "citation": "test",
        "doi": "none", "licence": {"wording": "none", "wording_included": False},
        "item_defaults": {"min": 0, "max": item_max, "step": item_max},
        "items": [{"id": f"toy_{n}"} for n in range(1, 5)],
        "scales": [scale],
        "flags": flags or [],
    }


def _score(raw: dict, rows: list[list]) -> pd.DataFrame:
    instrument = parse_instrument(raw, "toy.yaml")
    data = pd.DataFrame([[np.nan if a is None else a for a in row] for row in rows],
                        columns=list(instrument.item_ids), dtype=float)
    return score(instrument, data)


def test_highest_endorsed_is_the_last_yes_not_the_count():
    out = _score(_definition(), [[0, 0, 0, 0], [1, 0, 0, 0], [1, 1, 0, 1], [0, 0, 1, 0], [1, 1, 1, 1]])
    # no Yes -> 0; Yes at 1 -> 1; Yes at 1, 2, 4 -> 4 (a count would give 3); Yes at 3 -> 3; all -> 4
    assert out["severity"].tolist() == [0, 1, 4, 3, 4]


def test_highest_endorsed_missing_rule():
    rows = [[1, None, 0, 0], [1, None, None, 0]]
    strict = _score(_definition(), rows)["severity"]
    assert strict.isna().all()  # max_missing 0: one blank is too many
    lenient = _score(_definition({"missing": {"max_missing": 1, "source": "test"}}), rows)["severity"]
    assert lenient.iloc[0] == 1  # one blank passed over: highest answered Yes is item 1
    assert np.isnan(lenient.iloc[1])  # two blanks > 1


def test_highest_endorsed_reads_the_items_top_answer():
    # items coded 0/2 (step 2): "Yes" is 2, the item's maximum
    out = _score(_definition(item_max=2), [[2, 0, 2, 0]])
    assert out["severity"].iloc[0] == 3


def test_highest_endorsed_refuses_a_wrong_range_and_proration():
    with pytest.raises(InstrumentDefinitionError, match=r"range.*\[0, 4\]"):
        parse_instrument(_definition({"range": [0, 1]}), "toy.yaml")
    with pytest.raises(InstrumentDefinitionError, match="prorate"):
        parse_instrument(_definition({"missing": {"max_missing": 1, "prorate": True, "source": "t"}}), "toy.yaml")


def test_highest_endorsed_refuses_items_with_more_than_two_answers():
    raw = _definition()
    raw["item_defaults"] = {"min": 0, "max": 3, "step": 1}
    raw["scales"][0]["range"] = [0, 4]
    with pytest.raises(InstrumentDefinitionError, match="two-answer"):
        parse_instrument(raw, "toy.yaml")


def test_flag_on_a_scale():
    flag = {"id": "urgent", "scale": "severity", "at_least": 3, "source": "test"}
    out = _score(_definition(flags=[flag]), [[1, 0, 0, 0], [0, 0, 1, 0], [None, 0, 0, 0]])
    # severity 1 < 3 -> False; 3 >= 3 -> True; severity missing -> flag missing
    assert out["urgent"].tolist() == [False, True, pd.NA]


def test_flag_needs_exactly_one_of_item_and_scale():
    both = {"id": "f", "scale": "severity", "item": "toy_1", "at_least": 1, "source": "t"}
    with pytest.raises(InstrumentDefinitionError, match="exactly one of 'item'"):
        parse_instrument(_definition(flags=[both]), "toy.yaml")
    unknown = {"id": "f", "scale": "total", "at_least": 1, "source": "t"}
    with pytest.raises(InstrumentDefinitionError, match="unknown scale 'total'"):
        parse_instrument(_definition(flags=[unknown]), "toy.yaml")


def test_cssrs_urgent_flag_is_severity_4_or_5_or_behaviour():
    # SLV rows: type 3 only -> no alert; type 4 -> alert; preparatory acts (item 15) -> alert
    items = [f"cssrs_slv_{n}" for n in range(1, 17)]
    rows = [[1, 1, 1, 0, 0, 2, 2, 2, 2, 2, 0, 0, 0, 0, 0, 0],
            [1, 1, 1, 1, 0, 2, 2, 2, 2, 2, 0, 0, 0, 0, 0, 0],
            [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0]]
    out = score("cssrs_slv", pd.DataFrame(rows, columns=items))
    assert out["ideation_severity"].tolist() == [3, 4, 0]
    assert out["suicidality"].tolist() == [False, True, True]
