"""``participants.csv``: an identifier column the protocol types ``date`` holds YYYY-MM-DD dates."""

from __future__ import annotations

import pandas as pd

from alliance.protocol import default_protocol, parse_protocol
from alliance.study.validation import check_participants


def participants(dates: list) -> pd.DataFrame:
    return pd.DataFrame({"participant_id": [f"P{i}" for i in range(len(dates))], "arm": "immediate",
                         "date_of_birth": pd.array(dates, dtype="string")})


def test_a_date_identifier_that_is_not_a_date_names_file_row_column_value_and_what_is_allowed():
    problems = check_participants(default_protocol(), participants(["1980-02-03", "1980-02-30", "03/02/1980", None, ""]))
    assert [(p.file, p.row, p.column, p.value) for p in problems] == [
        ("participants.csv", 3, "date_of_birth", "1980-02-30"), ("participants.csv", 4, "date_of_birth", "03/02/1980")]
    assert problems[0].allowed == "a date written YYYY-MM-DD, e.g. 1984-07-31"
    assert "is not a date" in problems[0].reason and "type date" in problems[0].reason


def test_an_identifier_without_the_date_type_is_free_text():
    raw = default_protocol().to_dict()
    raw["identifiers"] = ["name", "date_of_birth"]
    assert check_participants(parse_protocol(raw), participants(["03/02/1980"])) == []


def test_a_control_character_in_a_column_name_is_refused():
    import pandas as pd

    from alliance.protocol import default_protocol
    from alliance.study.validation import check_participants

    frame = pd.DataFrame({"participant_id": ["P1"], "arm": ["immediate"], "\x00site": ["a"]}, dtype="string")
    (problem,) = check_participants(default_protocol(), frame)
    assert (problem.row, problem.column, problem.reason) == (1, "\\x00site", "is a column name holding a control character")
