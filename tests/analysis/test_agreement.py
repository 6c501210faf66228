"""Participant-facilitator agreement against R (tests/stats/reference/regression.R, `agreement`)."""

import json
from pathlib import Path

import pandas as pd
import pytest

from alliance.analysis.agreement import alliance_agreement

REFERENCE = Path(__file__).parents[1] / "stats" / "reference"
R = json.loads((REFERENCE / "regression.json").read_text())["agreement"]
DATA = pd.read_csv(REFERENCE / "data" / "agreement.csv").set_index("participant_id")


def _ratings(data):
    return pd.concat([data[column].rename("score").reset_index().assign(rater=rater)
                      for column, rater in (("f1", "F1"), ("f2", "F2"))], ignore_index=True)


def test_agreement_equals_r():
    out = alliance_agreement(DATA["p"], _ratings(DATA), {"grid": DATA["y"]})
    assert out["n"] == R["n"] == 38
    assert out["n_dyads"] == 76 and out["n_facilitators"] == 2
    assert out["correlation"]["r"] == pytest.approx(R["r"], rel=1e-12)
    assert [out["correlation"]["ci_low"], out["correlation"]["ci_high"]] == pytest.approx(R["r_ci"], rel=1e-10)
    assert out["correlation"]["p"] == pytest.approx(R["r_p"], rel=1e-8)
    difference = out["mean_difference"]
    assert difference["estimate"] == pytest.approx(R["mean_difference"], rel=1e-12)
    assert difference["t"] == pytest.approx(R["t"], rel=1e-10)
    assert difference["p"] == pytest.approx(R["t_p"], rel=1e-8)
    assert [difference["ci_low"], difference["ci_high"]] == pytest.approx(R["difference_ci"], rel=1e-10)
    assert [difference["loa_low"], difference["loa_high"]] == pytest.approx(R["loa"], rel=1e-10)
    model = out["discrepancy"][0]
    ref = R["discrepancy"]
    assert model["n"] == ref["n"]
    for key, index in (("level", 1), ("discrepancy", 2)):
        assert model[key]["estimate"] == pytest.approx(ref["estimate"][index], rel=1e-10)
        assert model[key]["se"] == pytest.approx(ref["se"][index], rel=1e-10)
        assert model[key]["p"] == pytest.approx(ref["p"][index], rel=1e-8)


def test_one_facilitator_rating_counts_as_the_facilitator_side():
    ratings = _ratings(DATA)
    ratings.loc[(ratings["participant_id"] == "P001") & (ratings["rater"] == "F2"), "score"] = None
    out = alliance_agreement(DATA["p"], ratings)
    assert out["n"] == 38 and out["n_dyads"] == 75


def test_too_few_participants_is_refused_and_a_small_sample_is_said():
    small = DATA.iloc[:12]
    out = alliance_agreement(small["p"], _ratings(small))
    assert any("imprecise" in note for note in out["notes"])
    with pytest.raises(ValueError, match="at least 5 participants"):
        alliance_agreement(DATA["p"].iloc[:4], _ratings(DATA.iloc[:4]))


def test_the_plan_runs_the_agreement_and_the_report_shows_it():
    import yaml

    from alliance.analysis import run_analysis
    from alliance.protocol import default_protocol, parse_protocol
    from alliance.report.document import build_document
    from alliance.simulate import simulate_trial

    raw = yaml.safe_load(default_protocol().to_yaml())
    for timepoint in raw["timepoints"]:
        if timepoint["id"] in ("prep", "week1"):
            timepoint["instruments"].append("wai_sr_t")
    raw["analysis"]["analyses"].append({"id": "agreement", "type": "alliance_agreement", "family": "agreement",
                                        "x": ["wai_sr.total@prep", "wai_sr.total@post_session1"],
                                        "y": "grid_hamd17.total@week4"})
    study = simulate_trial(parse_protocol(raw), n=40, seed=9)
    results = run_analysis(study)
    computed, skipped = results.alliance_agreement
    assert computed["facilitator"] == "wai_sr_t.total@prep" and computed["n"] >= 30
    assert computed["p_adjusted"] is not None
    assert "does not give wai_sr_t at post_session1" in skipped["skipped"]
    assert results.to_dict()["alliance_agreement"][0]["discrepancy"][0]["y"] == "grid_hamd17.total@week4"
    document = build_document(study, results)
    section = next(s for s in document.sections if s.id == "agreement")
    table = next(b for b in section.blocks if hasattr(b, "frame")).frame
    assert table.shape[0] == 2 and "Limits of agreement" in table.columns


def test_a_protocol_without_a_facilitator_rated_instrument_skips_the_analysis():
    from alliance.analysis.plan import resolve_plan
    from alliance.protocol import default_protocol, parse_analysis_plan

    protocol = default_protocol()
    plan = parse_analysis_plan({"analyses": [{"id": "agreement", "type": "alliance_agreement",
                                              "x": "wai_sr.total@prep"}]})
    resolved = resolve_plan(plan, protocol)
    assert "no facilitator-rated instrument" in resolved.analyses[0].skipped
