"""``alliance power``: table on screen, power.json and power_curve.png, options and errors."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from alliance.cli import app

runner = CliRunner()


def test_power_command_writes_json_and_figure(tmp_path):
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(
        "correlations:\n  - [wai_sr.total@prep, meq30.total@peak, 0.35]\n"
        "power:\n  tests:\n    - {test: correlation, x: wai_sr.total@prep, y: meq30.total@peak}\n"
        "    - {test: mixed_model, y: wai_sr.total}\n",
        encoding="utf-8")
    out = tmp_path / "out"
    result = runner.invoke(app, ["power", "--n", "20:40:20", "--attrition", "0,0.1", "--sims", "100", "--seed", "3",
                                 "--out", str(out), "--scenario", str(scenario)])
    assert result.exit_code == 0, result.output
    assert "estimated time" in result.output and "80% at n" in result.output
    data = json.loads((out / "power.json").read_text(encoding="utf-8"))
    assert len(data["entries"]) == 2 * 2 * 2
    assert data["overrides"] == {"correlations": [["wai_sr.total@prep", "meq30.total@peak", 0.35]]}
    assert {e["test"] for e in data["entries"]} == {"correlation", "mixed_model"}
    assert (out / "power_curve.png").read_bytes()[:4] == b"\x89PNG"


def test_power_command_rejects_bad_options(tmp_path):
    result = runner.invoke(app, ["power", "--n", "20-40", "--out", str(tmp_path)])
    assert result.exit_code == 1 and "start:stop:step" in result.output
    result = runner.invoke(app, ["power", "--n", "20", "--attrition", "ten", "--out", str(tmp_path)])
    assert result.exit_code == 1 and "--attrition" in result.output
    result = runner.invoke(app, ["power", "--n", "20", "--workers", "2", "--processes", "2", "--out", str(tmp_path)])
    assert result.exit_code == 1 and "choose one of" in result.output
