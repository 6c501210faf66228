"""``alliance redcap suggest``: a REDCap data dictionary → a mapping file to review.

Runs on REDCapR's test projects (``tests/study/data/redcap/redcapr-*``, MIT) in this process
(typer's CliRunner); the protocol for the longitudinal project is
``tests/study/data/redcap_suggest/protocol.yaml``.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from typer.testing import CliRunner

from alliance.cli import app
from alliance.protocol import load_protocol
from alliance.study.formats.redcap import parse_mapping

runner = CliRunner()
DATA = Path(__file__).parent / "study" / "data"
LONGITUDINAL = DATA / "redcap" / "redcapr-longitudinal"
PROTOCOL = DATA / "redcap_suggest" / "protocol.yaml"


def suggest(*args: str):
    return runner.invoke(app, ["redcap", "suggest", *args])


def test_writes_a_mapping_to_review(tmp_path):
    out = tmp_path / "mapping.yaml"
    result = suggest(str(LONGITUDINAL / "dictionary.csv"), "--protocol", str(PROTOCOL), "--events",
                     str(LONGITUDINAL / "event.csv"), "--arms", str(LONGITUDINAL / "arm.csv"), "--out", str(out))
    assert result.exit_code == 0, result.output
    # 8 events, 2 arms, 4 fields, 3 participant fields, the record id: 18 entries; 15 of them guessed
    # (the record id and the events visit_1, visit_2 are exact); 89 unmatched
    assert f"wrote {out}: 18 entries (3 by exact name, 15 guessed), 89 unmatched: 104 need review" in result.output
    text = out.read_text(encoding="utf-8")
    assert text.startswith('suggested: "made by alliance redcap suggest from dictionary.csv')
    raw = yaml.safe_load(text)
    raw.pop("suggested")
    mapping = parse_mapping(raw, load_protocol(PROTOCOL))
    assert mapping.fields["pmq1"].item == "ors_1" and mapping.events["first_dose"] == "session1"


def test_prints_without_out_and_keeps_a_file(tmp_path):
    result = suggest(str(LONGITUDINAL / "dictionary.csv"), "--protocol", str(PROTOCOL))
    assert result.exit_code == 0, result.output
    assert "pmq1: ors_1" in result.output and "no events file given" in result.output
    out = tmp_path / "mapping.yaml"
    out.write_text("events: {}\n", encoding="utf-8")
    refused = suggest(str(LONGITUDINAL / "dictionary.csv"), "--protocol", str(PROTOCOL), "--out", str(out))
    assert refused.exit_code == 1 and "exists" in refused.output and "--force" in refused.output
    assert out.read_text(encoding="utf-8") == "events: {}\n"
    forced = suggest(str(LONGITUDINAL / "dictionary.csv"), "--protocol", str(PROTOCOL), "--out", str(out), "--force")
    assert forced.exit_code == 0 and out.read_text(encoding="utf-8").startswith("suggested:")


def test_a_dictionary_that_matches_nothing(tmp_path):
    out = tmp_path / "mapping.yaml"
    result = suggest(str(DATA / "redcap" / "redcapr-checkboxes-1" / "dictionary.csv"), "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "1 entry (1 by exact name, 0 guessed), 3 unmatched: 3 need review" in result.output
    assert "nothing matched the protocol: everything is under # UNMATCHED" in result.output
    text = out.read_text(encoding="utf-8")
    assert "# UNMATCHED: 3 things" in text and text.count("#   - ") == 3


def test_missing_or_wrong_files_are_clean_errors(tmp_path):
    missing = suggest(str(tmp_path / "nope.csv"))
    assert missing.exit_code == 1 and "does not exist" in missing.output and "Traceback" not in missing.output
    # an events export is not a data dictionary
    wrong = suggest(str(LONGITUDINAL / "event.csv"))
    assert wrong.exit_code == 1 and "is not a REDCap export this reader knows" in wrong.output
    assert "Variable / Field Name" in wrong.output  # what a dictionary's header is
    bad_events = suggest(str(LONGITUDINAL / "dictionary.csv"), "--events", str(LONGITUDINAL / "dictionary.csv"))
    assert bad_events.exit_code == 1 and "error:" in bad_events.output
