"""``alliance quality DIR|--study NAME``: the table, the count line, csv and json, the exit code."""

from __future__ import annotations

import io
import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from alliance import instruments as bank
from alliance.cli import app
from alliance.protocol import default_protocol
from alliance.study import Study, save

runner = CliRunner()


def _study(baseline_answer: float, missing_facilitator: bool = False) -> Study:
    """One participant: GRID-HAMD at baseline (17 items × answer) and the prep WAI-SR (all 3: total 36)."""
    participants = pd.DataFrame({"participant_id": ["P1"], "arm": ["immediate"], "enrolled_on": ["2026-01-05"],
                                 "facilitator_ids": [None if missing_facilitator else "F1"]})
    rows = [("P1", "baseline", "grid_hamd17", item.id, baseline_answer) for item in bank.get("grid_hamd17").items]
    rows += [("P1", "prep", "wai_sr", item.id, 3.0) for item in bank.get("wai_sr").items]
    responses = pd.DataFrame(rows, columns=["participant_id", "timepoint", "instrument", "item", "value"])
    return Study(default_protocol(), participants, responses)


@pytest.fixture
def clean_dir(tmp_path):
    save(_study(1), tmp_path / "clean")     # total 17: the entry criterion met
    return tmp_path / "clean"


@pytest.fixture
def failing_dir(tmp_path):
    # total 0: below the entry criterion of 17 (an error) and at the floor of 0-52 (info); no facilitator (warning)
    save(_study(0, missing_facilitator=True), tmp_path / "failing")
    return tmp_path / "failing"


def test_no_error_exits_0(clean_dir):
    result = runner.invoke(app, ["quality", str(clean_dir)])
    assert result.exit_code == 0, result.output
    assert "0 finding(s): 0 error(s), 0 warning(s), 0 info; 15 rules checked" in result.output


def test_errors_exit_1_with_the_table_and_the_count_line(failing_dir):
    result = runner.invoke(app, ["quality", str(failing_dir)])
    assert result.exit_code == 1, result.output
    out = result.output
    for heading in ("severity", "rule", "participant", "timepoint", "instrument", "field", "value", "message"):
        assert heading in out
    assert "ERROR" in out and "baseline_below_entry" in out and "missing_facilitator" in out
    assert out.index("baseline_below_entry") < out.index("missing_facilitator") < out.index("score_at_floor")
    assert ("3 finding(s): 1 error(s), 1 warning(s), 1 info — missing_facilitator 1, score_at_floor 1, "
            "baseline_below_entry 1; 15 rules checked") in " ".join(out.split())


def test_a_warning_alone_exits_0(tmp_path):
    save(_study(1, missing_facilitator=True), tmp_path / "warn")
    result = runner.invoke(app, ["quality", str(tmp_path / "warn")])
    assert result.exit_code == 0 and "missing_facilitator" in result.output


def test_csv(failing_dir):
    result = runner.invoke(app, ["quality", str(failing_dir), "--format", "csv"])
    assert result.exit_code == 1
    table = pd.read_csv(io.StringIO(result.output), dtype=str, keep_default_na=False)
    assert list(table.columns) == ["severity", "rule", "participant_id", "timepoint", "instrument", "field", "value",
                                   "message"]
    assert table[["severity", "rule", "participant_id", "timepoint", "field", "value"]].values.tolist() == [
        ["error", "baseline_below_entry", "P1", "baseline", "total", "0"],
        ["warning", "missing_facilitator", "P1", "", "facilitator_ids", ""],
        ["info", "score_at_floor", "P1", "baseline", "total", "0"]]


def test_json(failing_dir):
    result = runner.invoke(app, ["quality", str(failing_dir), "--format", "json"])
    assert result.exit_code == 1
    report = json.loads(result.output)
    assert report["severity_counts"] == {"error": 1, "warning": 1, "info": 1}
    assert report["counts"]["baseline_below_entry"] == 1 and report["counts"]["out_of_window"] == 0
    first = report["findings"][0]
    assert (first["rule"], first["participant_id"], first["timepoint"], first["value"]) == (
        "baseline_below_entry", "P1", "baseline", "0")


def test_bad_arguments(clean_dir):
    neither = runner.invoke(app, ["quality"])
    assert neither.exit_code == 1 and "give either a study directory or --study NAME" in neither.output
    fmt = runner.invoke(app, ["quality", str(clean_dir), "--format", "xml"])
    assert fmt.exit_code == 1 and "give table, csv or json" in fmt.output


def test_help_says_what_the_exit_code_means():
    result = runner.invoke(app, ["quality", "--help"])
    assert result.exit_code == 0
    assert "Exit code 0 when there is no finding of severity error, 1 when" in " ".join(result.output.split())


@pytest.mark.django_db
def test_a_stored_study(failing_dir):
    assert runner.invoke(app, ["import", str(failing_dir), "--study", "checked"]).exit_code == 0
    result = runner.invoke(app, ["quality", "--study", "checked", "--format", "json"])
    assert result.exit_code == 1, result.output
    assert [f["rule"] for f in json.loads(result.output)["findings"]] == [
        "baseline_below_entry", "missing_facilitator", "score_at_floor"]
    unknown = runner.invoke(app, ["quality", "--study", "no_such_study"])
    assert unknown.exit_code == 1 and "no_such_study" in unknown.output


def test_protocol_show_lists_the_quality_rules(tmp_path):
    shown = " ".join(runner.invoke(app, ["protocol", "show"]).output.split())
    assert "Data-quality rules" in shown and "baseline_below_entry" in shown
    assert "grid_hamd17.total@baseline < 17" in shown
    # a protocol without the section: the built-in rules only
    raw = default_protocol().to_dict()
    raw.pop("quality")
    path = tmp_path / "protocol.yaml"
    import yaml

    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    plain = " ".join(runner.invoke(app, ["protocol", "show", str(path)]).output.split())
    assert "Data-quality rules: the built-in ones only" in plain and "baseline_below_entry" not in plain
