"""The command line: instruments, score, simulate, analyze and demo, as a user runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.resources import files

import pytest
from typer.testing import CliRunner

from alliance import __version__
from alliance.cli import app

runner = CliRunner()

HEAVY = ("pandas", "numpy", "django", "matplotlib")
# In a fresh interpreter: run `alliance ARGS`, then print the top-level modules it imported.
HELP_PROBE = """
import sys
from typer.main import get_command
from alliance.cli import app
code = get_command(app).main(sys.argv[1:], prog_name="alliance", standalone_mode=False)
print("\\nexit", code, "modules", " ".join(sorted({name.split(".")[0] for name in sys.modules})))
"""


@pytest.mark.parametrize("args", [["--help"], ["instruments", "--help"], ["protocol", "--help"],
                                  ["power", "--help"], ["analyze", "--help"]])
def test_help_imports_no_heavy_library(args):
    done = subprocess.run([sys.executable, "-c", HELP_PROBE, *args], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    help_text, _, probe = done.stdout.rpartition("\nexit ")
    assert "Usage: alliance" in help_text
    code, _, modules = probe.partition(" modules ")
    assert code == "0"
    assert set(modules.split()) & set(HEAVY) == set()


def test_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == f"alliance {__version__}"


def test_instruments_table_lists_the_bank():
    result = runner.invoke(app, ["instruments"])
    assert result.exit_code == 0, result.output
    for instrument in ("wai_sr", "meq30", "grid_hamd17", "qids_sr16", "phq9"):
        assert instrument in result.output


def test_instruments_show_and_unknown_instrument():
    result = runner.invoke(app, ["instruments", "show", "wai_sr"])
    assert result.exit_code == 0, result.output
    assert "Hatcher" in result.output and "goal" in result.output
    result = runner.invoke(app, ["instruments", "show", "wai"])
    assert result.exit_code == 1
    assert "unknown instrument 'wai'" in result.output


def test_score_keeps_id_columns_and_writes_csv(tmp_path):
    source = tmp_path / "wai.csv"
    # P1 answers 4 to everything: total 12 x 4 = 48, each subscale 4 x 4 = 16.
    source.write_text("participant_id," + ",".join(f"wai_sr_{i}" for i in range(1, 13)) + "\n"
                      "P1," + ",".join(["4"] * 12) + "\n")
    out = tmp_path / "scores.csv"
    result = runner.invoke(app, ["score", "wai_sr", str(source), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_text().splitlines() == ["participant_id,total,goal,task,bond", "P1,48.0,16.0,16.0,16.0"]


def test_score_refuses_out_of_range_with_file_line_column_and_allowed_values(tmp_path):
    source = tmp_path / "wai.csv"
    rows = ["3"] * 12
    rows[4] = "6"
    source.write_text(",".join(f"wai_sr_{i}" for i in range(1, 13)) + "\n" + ",".join(["3"] * 12) + "\n"
                      + ",".join(rows) + "\n")
    result = runner.invoke(app, ["score", "wai_sr", str(source)])
    assert result.exit_code == 1
    message = " ".join(result.output.split())
    assert f"{source}, row 3, column 'wai_sr_5': value 6 is out of range; allowed: whole numbers 1–5" in message


def test_analyze_bad_directory_stops_before_writing(tmp_path):
    study = tmp_path / "study"
    assert runner.invoke(app, ["simulate", "--n", "12", "--seed", "3", "--out", str(study)]).exit_code == 0
    responses = study / "responses.csv"
    lines = responses.read_text().splitlines()
    fields = lines[1].split(",")
    fields[1] = "wk4"  # a timepoint the protocol does not have
    lines[1] = ",".join(fields)
    responses.write_text("\n".join(lines) + "\n")
    out = tmp_path / "results"
    result = runner.invoke(app, ["analyze", str(study), "--out", str(out)])
    assert result.exit_code == 1
    message = " ".join(result.output.split())
    assert "responses.csv, row 2, column 'timepoint': value 'wk4'" in message
    assert not out.exists()


def test_score_refuses_a_truncated_file_with_file_and_row(tmp_path):
    answers = tmp_path / "answers.csv"
    answers.write_text("id,gad7_1,gad7_2,gad7_3,gad7_4,gad7_5,gad7_6,gad7_7\nA,1,2,3,0,1,2,3\nB,1,2", encoding="utf-8")
    result = runner.invoke(app, ["score", "gad7", str(answers)])
    assert result.exit_code == 1
    message = " ".join(result.output.split())
    assert "answers.csv" in message and "row 3" in message and "Traceback" not in message


def test_error_messages_keep_their_brackets(tmp_path):
    # a window is written [days before, days after]; rich must not read that as markup
    text = (files("alliance.protocol") / "levin2024.yaml").read_text(encoding="utf-8")
    broken = tmp_path / "protocol.yaml"
    broken.write_text(text.replace("window_days: [3, 0]", "window_days: [3]"), encoding="utf-8")
    result = runner.invoke(app, ["protocol", "show", str(broken)])
    assert result.exit_code == 1
    message = " ".join(result.output.split())
    assert "key 'timepoints[1] (prep).window_days': value [3] is not a window" in message
    assert "allowed: [days before, days after], two whole numbers" in message


@pytest.mark.django_db
def test_demo_simulates_stores_analyzes_and_reports(tmp_path):
    out = tmp_path / "demo"
    result = runner.invoke(app, ["demo", "--out", str(out)])
    assert result.exit_code == 0, result.output
    results = json.loads((out / "report" / "results.json").read_text())
    assert list(results) == ["alliance_change", "correlations", "partial_correlations", "mediation",
                             "mixed_models", "outcomes", "reliable_change", "reliability",
                             "facilitator_effects", "alliance_agreement", "safety", "deviations", "provenance"]
    assert all("skipped" not in e for e in results["facilitator_effects"])   # the demo has facilitators
    # the synthetic trial has a safety record, stored and exported back: the section is populated
    by_arm = [e for e in results["safety"] if e["kind"] == "by_arm"]
    assert by_arm and all("skipped" not in e for e in by_arm) and by_arm[-1]["events"] > 0
    assert (out / "report" / "report.pdf").read_bytes().startswith(b"%PDF")
    assert "levin2024-demo" in result.output
    key = [c for c in results["correlations"]
           if c["x"] == "wai_sr.total@prep" and c["y"] == "grid_hamd17.total@week4"]
    assert len(key) == 1 and key[0]["n"] >= 18


@pytest.mark.usefixtures("package_bank")
def test_instruments_dir_adds_a_sites_instrument_and_refuses_a_broken_one(tmp_path):
    from pathlib import Path

    fixture = Path(__file__).parent / "protocol" / "fixtures" / "site_instruments"
    result = runner.invoke(app, ["--instruments-dir", str(fixture), "instruments", "show", "star_p"])
    assert result.exit_code == 0, result.output
    assert "TEST FIXTURE, invented key" in result.output
    (tmp_path / "star_p.yaml").write_text("id: star_p\nname: x\n", encoding="utf-8")
    result = runner.invoke(app, ["--instruments-dir", str(tmp_path), "instruments"])
    assert result.exit_code == 1
    assert f"--instruments-dir {tmp_path}: {tmp_path}/star_p.yaml:" in " ".join(result.output.split())
