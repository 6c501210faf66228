"""Pooling runs, published studies and sites: each pooled number is pool_correlations on the sources' r and n."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from alliance import stats
from alliance.analysis import run_analysis
from alliance.analysis.pooling import PoolingError, pool_by_site, pool_results, read_published, read_results
from alliance.report import write_results
from alliance.report.forest import forest_plot

from .conftest import FIXED_TIME, make_study

PRIMARY = ("wai_sr.total@prep", "grid_hamd17.total@week4")


@pytest.fixture(scope="module")
def two_runs():
    return [(f"run{seed}", run_analysis(make_study(n=14, seed=seed), created_utc=FIXED_TIME)) for seed in (3, 4)]


def test_confirmatory_tests_are_matched_and_pooled(two_runs):
    published = [{"study": "Levin 2024", "x": PRIMARY[0], "y": PRIMARY[1], "r": -0.65, "n": 24}]
    tests, notes = pool_results(two_runs, published)
    confirmatory = {(e["x"], e["y"]) for e in two_runs[0][1].correlations if e["role"] == "confirmatory"}
    assert {(t.x, t.y) for t in tests} == confirmatory
    primary = next(t for t in tests if (t.x, t.y) == PRIMARY)
    sources = [next(e for e in results.correlations if (e["x"], e["y"]) == PRIMARY and e["role"] == "confirmatory")
               for _, results in two_runs]
    direct = stats.pool_correlations([sources[0]["r"], sources[1]["r"], -0.65],
                                     [sources[0]["n"], sources[1]["n"], 24], test="knha")
    assert primary.pooled["r"] == direct.r and primary.pooled["ci_low"] == direct.ci_low
    assert [s["study"] for s in primary.studies] == ["run3", "run4", "Levin 2024"]
    assert sum(s["weight"] for s in primary.studies) == pytest.approx(1.0)
    figure = forest_plot(primary)
    assert len(figure.axes[0].get_yticklabels()) == 4


def test_a_test_in_one_source_only_is_reported_not_pooled(two_runs):
    tests, notes = pool_results(two_runs[:1])
    assert all(t.pooled is None for t in tests)
    assert any("at least 2 are needed to pool" in note for note in notes)


def test_skipped_entries_are_listed(two_runs):
    label, results = two_runs[1]
    correlations = [dict(e, skipped="fewer than 3 complete pairs", r=None) if (e["x"], e["y"]) == PRIMARY else e
                    for e in results.correlations]
    broken = dataclasses.replace(results, correlations=tuple(correlations))
    tests, _ = pool_results([two_runs[0], (label, broken)])
    primary = next(t for t in tests if (t.x, t.y) == PRIMARY)
    assert primary.pooled is None and primary.not_pooled == ({"study": "run4", "reason": "fewer than 3 complete pairs"},)


def test_read_results_round_trip_and_errors(two_runs, tmp_path):
    path = write_results(two_runs[0][1], tmp_path / "results.json")
    assert len(read_results(path).correlations) == len(two_runs[0][1].correlations)
    (tmp_path / "list.json").write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(PoolingError, match=r"list.json: is a JSON list"):
        read_results(tmp_path / "list.json")
    (tmp_path / "broken.json").write_text('{"a": ', encoding="utf-8")
    with pytest.raises(PoolingError, match=r"broken.json: line 1, column 7: not valid JSON"):
        read_results(tmp_path / "broken.json")
    (tmp_path / "latin1.json").write_bytes(b'{"caf\xe9": 1}')
    with pytest.raises(PoolingError, match=r"byte 5 is not UTF-8"):
        read_results(tmp_path / "latin1.json")


@pytest.mark.parametrize(("text", "message"), [
    ("study,x,y,r\nA,a,b,0.2\n", r"row 1: column\(s\) n missing"),
    ("study,x,y,r,n\nA,a,b,0.2,30\nB,a,b,1.2,30\n", r"row 3, column r: value '1.2'; allowed: a number strictly"),
    ("study,x,y,r,n\nA,a,b,abc,30\n", r"row 2, column r: value 'abc'"),
    ("study,x,y,r,n\nA,a,b,0.2,3\n", r"row 2, column n: value '3'; allowed: a whole number of at least 4"),
    ("study,x,y,r,n\n,a,b,0.2,30\n", r"row 2, column study: empty"),
    ("study,x,y,r,n\nA,a,b,0.2,30,extra\n", r"row 2: more fields than the header's 5"),
    ("study,x,y,r,n\n", r"no rows after the header"),
])
def test_read_published_names_the_row_column_and_value(tmp_path, text, message):
    path = tmp_path / "published.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(PoolingError, match=message):
        read_published(path)


def test_read_published_accepts_a_bom_and_a_note(tmp_path):
    path = tmp_path / "published.csv"
    path.write_bytes("\ufeffstudy,x,y,r,n,note\nLevin 2024,a,b,-0.65,24,abstract\n".encode())
    assert read_published(path) == [{"study": "Levin 2024", "x": "a", "y": "b", "r": -0.65, "n": 24,
                                     "note": "abstract"}]


def test_pool_by_site_pools_the_site_correlations():
    rng = np.random.default_rng(2)
    import pandas as pd
    x = pd.Series(rng.normal(size=60))
    y = -0.5 * x + pd.Series(rng.normal(size=60))
    site = pd.Series(["A"] * 25 + ["B"] * 32 + ["C"] * 3)
    out = pool_by_site(x, y, site)
    assert [row["site"] for row in out["sites"]] == ["A", "B", "C"]
    assert "Fisher's z needs at least 4" in out["sites"][2]["skipped"]
    a, b = (stats.correlation(x[site == s], y[site == s]).r for s in ("A", "B"))
    assert out["pooled"]["r"] == stats.pool_correlations([a, b], [25, 32], test="knha").r


def test_studies_with_sites_get_per_site_pooling_of_confirmatory_tests():
    study = make_study(n=16, seed=5)
    participants = study.participants.copy()
    participants["site"] = ["north" if i % 2 else "south" for i in range(len(participants))]
    results = run_analysis(dataclasses.replace(study, participants=participants), created_utc=FIXED_TIME)
    primary = results.find("correlations", x=PRIMARY[0], y=PRIMARY[1], role="confirmatory")[0]
    assert [row["site"] for row in primary["by_site"]["sites"]] == ["north", "south"]
    assert all("by_site" not in e for e in results.correlations if e["role"] == "exploratory")
    single = run_analysis(study, created_utc=FIXED_TIME)
    assert all("by_site" not in e for e in single.correlations)


def test_role_and_section_choose_the_entries(two_runs):
    confirmatory, _ = pool_results(two_runs)
    everything, _ = pool_results(two_runs, role="all")
    exploratory = {(e["x"], e["y"]) for e in two_runs[0][1].correlations if e["role"] == "exploratory"}
    assert {(t.x, t.y) for t in everything} == {(t.x, t.y) for t in confirmatory} | exploratory
    with pytest.raises(PoolingError, match="role 'primary'; allowed: confirmatory, exploratory, all"):
        pool_results(two_runs, role="primary")
    with pytest.raises(PoolingError, match="section 'mediation'; allowed: correlations, partial_correlations"):
        pool_results(two_runs, section="mediation")
