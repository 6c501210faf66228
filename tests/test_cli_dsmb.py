"""``alliance dsmb``: the DSMB report from a study directory or a results.json, blinded unless asked."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from alliance import study as study_data
from alliance.analysis import run_analysis
from alliance.cli import app
from alliance.protocol import default_protocol
from alliance.report import write_results
from alliance.simulate import simulate_trial

from .test_cli import HEAVY, HELP_PROBE

runner = CliRunner()


@pytest.fixture(scope="module")
def study_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("dsmb") / "study"
    study_data.save(simulate_trial(default_protocol(), n=12, seed=3), folder)
    return folder


def _text(path) -> str:
    return re.sub(r"<[^>]+>", " ", path.read_text(encoding="utf-8"))


def test_blinded_by_default_and_unblinded_when_asked(study_dir, tmp_path):
    result = runner.invoke(app, ["dsmb", str(study_dir), "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "blinded, open session" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dsmb-blinded.html", "dsmb-blinded.pdf"]
    assert (tmp_path / "dsmb-blinded.pdf").read_bytes().startswith(b"%PDF")
    blinded = _text(tmp_path / "dsmb-blinded.html")
    assert "BLINDED \u2014 open session" in blinded
    assert "Immediate treatment" not in blinded and "Delayed treatment" not in blinded
    result = runner.invoke(app, ["dsmb", str(study_dir), "--out", str(tmp_path), "--unblinded", "--cutoff",
                                 "2030-01-01"])
    assert result.exit_code == 0, result.output
    unblinded = _text(tmp_path / "dsmb-unblinded.html")
    assert "UNBLINDED \u2014 closed session: confidential to the DSMB" in unblinded
    assert "Immediate treatment" in unblinded and "Data cut-off 2030-01-01" in unblinded


def test_from_a_results_json(study_dir, tmp_path):
    results = run_analysis(study_data.load(study_dir), created_utc="2026-01-01T00:00:00+00:00")
    path = write_results(results, tmp_path / "results.json")
    result = runner.invoke(app, ["dsmb", str(path), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    text = _text(tmp_path / "out" / "dsmb-blinded.html")
    assert "Data cut-off 2026-01-01" in text and "Built from the results alone" in text


def test_bad_input_is_refused(study_dir, tmp_path):
    result = runner.invoke(app, ["dsmb", str(study_dir), "--out", str(tmp_path), "--cutoff", "1 March"])
    assert result.exit_code == 2 and "YYYY-MM-DD" in result.output
    broken = tmp_path / "results.json"
    broken.write_text(json.dumps({"safety": []}), encoding="utf-8")
    result = runner.invoke(app, ["dsmb", str(broken), "--out", str(tmp_path)])
    assert result.exit_code == 1 and "not a results.json" in result.output
    assert not list(tmp_path.glob("dsmb-*"))


def test_help_imports_no_heavy_library():
    done = subprocess.run([sys.executable, "-c", HELP_PROBE, "dsmb", "--help"], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert "--unblinded" in done.stdout
    modules = done.stdout.rpartition(" modules ")[2]
    assert set(modules.split()) & set(HEAVY) == set()
