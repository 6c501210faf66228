"""`alliance pool`: files in, pooled.json / pooled.csv / forest plots out; broken input named, exit 2."""

from __future__ import annotations

import csv
import json

import pytest
from typer.testing import CliRunner

from alliance.analysis import run_analysis
from alliance.cli import app
from alliance.report import write_results

from .analysis.conftest import FIXED_TIME, make_study

runner = CliRunner()


@pytest.fixture(scope="module")
def results_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("runs")
    paths = []
    for seed in (3, 4):
        paths.append(write_results(run_analysis(make_study(n=14, seed=seed), created_utc=FIXED_TIME),
                                   folder / f"trial{seed}.json"))
    return paths


def test_pool_writes_json_csv_and_forest_plots(results_files, tmp_path):
    published = tmp_path / "published.csv"
    published.write_text("study,x,y,r,n\nLevin 2024,wai_sr.total@prep,grid_hamd17.total@week4,-0.65,24\n",
                         encoding="utf-8")
    out = tmp_path / "pooled"
    result = runner.invoke(app, ["pool", *map(str, results_files), "--published", str(published), "--out", str(out)])
    assert result.exit_code == 0, result.output
    data = json.loads((out / "pooled.json").read_text(encoding="utf-8"))
    assert data["method"] == "REML" and data["test"] == "knha"
    primary = next(t for t in data["tests"] if t["x"] == "wai_sr.total@prep" and t["y"] == "grid_hamd17.total@week4")
    assert primary["pooled"]["k"] == 3 and primary["studies"][-1]["study"] == "Levin 2024"
    rows = list(csv.DictReader((out / "pooled.csv").open(encoding="utf-8")))
    assert len(rows) == len(data["tests"]) == 13  # the confirmatory correlations
    assert len(list(out.glob("forest_*.png"))) == sum(t["pooled"] is not None for t in data["tests"])
    assert "Pooled correlations (REML, Knapp-Hartung)" in result.output


@pytest.mark.parametrize(("arguments", "message"), [
    (["--method", "PM"], "--method 'PM': give REML, DL or FE"),
    (["--test", "t"], "--test 't': give knha or z"),
])
def test_bad_options(results_files, tmp_path, arguments, message):
    result = runner.invoke(app, ["pool", str(results_files[0]), "--out", str(tmp_path / "o"), *arguments])
    assert result.exit_code == 2 and message in result.output


def test_a_broken_published_file_is_named(results_files, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("study,x,y,r,n\nA,a,b,0.2,30\nB,a,b,0.3,30\nC,a,b,1.2,30\n", encoding="utf-8")
    result = runner.invoke(app, ["pool", str(results_files[0]), "--published", str(bad), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert "bad.csv, row 4, column r: value '1.2'; allowed: a number strictly between -1 and 1" in result.output
    assert not (tmp_path / "o").exists()


def test_not_a_results_file(tmp_path):
    other = tmp_path / "other.json"
    other.write_text('{"a": 1}', encoding="utf-8")
    result = runner.invoke(app, ["pool", str(other), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "other.json: not a results.json of alliance analyze" in result.output


def test_out_defaults_to_pooled_in_the_working_directory(results_files, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["pool", *map(str, results_files)])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "pooled" / "pooled.json").is_file() and (tmp_path / "pooled" / "pooled.csv").is_file()


def test_a_missing_results_file_is_named(tmp_path):
    missing = tmp_path / "absent.json"
    result = runner.invoke(app, ["pool", str(missing), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "absent.json: cannot be read" in result.output
