"""The facilitator analyses (alliance.analysis.facilitators) and their place in the plan, results and report."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from alliance import stats
from alliance.analysis import Results, run_analysis
from alliance.analysis.facilitators import facilitator_effects, facilitator_lists


def trial(participants=400, facilitators=20, seed=11, facilitator_sd=2.0, within_slope=-0.5, between_slope=-1.5):
    """One alliance and one outcome score per participant; two facilitators each, with real effects."""
    rng = np.random.default_rng(seed)
    first = rng.integers(0, facilitators, participants)
    second = (first + 1 + rng.integers(0, facilitators - 1, participants)) % facilitators
    skill = rng.normal(0, 1.0, facilitators)              # a facilitator's alliance-building
    effect = rng.normal(0, facilitator_sd, facilitators)  # a facilitator's effect on the outcome
    alliance_between = 0.5 * (skill[first] + skill[second])
    alliance = 45 + 3 * alliance_between + rng.normal(0, 3, participants)
    outcome = (20 + between_slope * 3 * alliance_between + within_slope * (alliance - 45 - 3 * alliance_between)
               + 0.5 * (effect[first] + effect[second]) + rng.normal(0, 2, participants))
    index = pd.Index([f"P{i:03d}" for i in range(participants)], name="participant_id")
    ids = pd.Series([f"F{a:02d};F{b:02d}" for a, b in zip(first, second, strict=True)], index=index)
    return pd.Series(alliance, index=index), pd.Series(outcome, index=index), facilitator_lists(ids)


def test_facilitator_lists_split_and_tolerate_missing():
    lists = facilitator_lists(pd.Series(["F1;F3", "F2", None, " F4 ; F5 "]))
    assert lists.tolist() == [["F1", "F3"], ["F2"], [], ["F4", "F5"]]


def test_recovers_an_association_and_separates_between_from_within():
    x, y, lists = trial()
    found = facilitator_effects(x, y, lists)
    assert found["n"] == 400 and found["n_facilitators"] == 20 and found["membership"] == "multiple"
    assert found["icc_x"]["icc"] > 0.2 and not found["association"]["singular"]
    within = found["decomposition"]["x_within"]["estimate"]
    between = found["decomposition"]["x_between"]["estimate"]
    assert within == pytest.approx(-0.5, abs=0.15)
    assert between < within - 0.3   # the between-facilitator slope is steeper, as simulated
    assert found["notes"] == []
    # the facilitator effects for the caterpillar plot: one per facilitator, sorted
    effects = found["effects"]
    assert len(effects) == 20 and [e["condval"] for e in effects] == sorted(e["condval"] for e in effects)
    assert all(e["condsd"] > 0 and e["n"] > 0 for e in effects)


def test_the_icc_is_the_variance_ratio_of_the_membership_model():
    x, y, lists = trial(participants=120, facilitators=12)
    found = facilitator_effects(x, y, lists)
    data = pd.DataFrame({"x": x, "facilitator_1": lists.str[0], "facilitator_2": lists.str[1]})
    model = stats.mixedlm("x ~ 1 + (1 | mm(facilitator_1, facilitator_2))", data)
    var_f, var_e = model.varcomp["vcov"].iloc[0], model.varcomp["vcov"].iloc[-1]
    assert found["icc_x"]["icc"] == pytest.approx(var_f / (var_f + var_e), rel=1e-10)


def test_the_between_part_is_the_mean_of_the_facilitators_means():
    x = pd.Series([10.0, 20.0, 30.0, 40.0, 50.0, 60.0], index=list("abcdef"))
    y = pd.Series([1.0, 2.0, 2.5, 4.0, 4.5, 7.0], index=x.index)
    lists = pd.Series([["A", "B"], ["A"], ["B", "C"], ["C"], ["A", "C"], ["B"]], index=x.index)
    found = facilitator_effects(x, y, lists)
    # facilitator means: A (a, b, e) = 26.67; B (a, c, f) = 33.33; C (c, d, e) = 40
    # participant a: mean(A, B) = 30; so x_within(a) = 10 - 30 = -20, etc. Refit by hand:
    means = {"A": 80 / 3, "B": 100 / 3, "C": 40.0}
    between = lists.map(lambda fs: np.mean([means[f] for f in fs]))
    data = pd.DataFrame({"y": y, "x_within": x - between, "x_between": between,
                         "facilitator_1": lists.str[0], "facilitator_2": lists.str[1]})
    model = stats.mixedlm("y ~ x_within + x_between + (1 | mm(facilitator_1, facilitator_2))", data)
    assert found["decomposition"]["x_within"]["estimate"] == pytest.approx(
        model.fixed.loc["x_within", "estimate"], rel=1e-8)
    assert found["notes"][0].startswith("fewer than 30 participants or 10 facilitators")


def test_primary_membership_uses_the_first_facilitator_and_fits_the_other_as_the_alternative():
    x, y, lists = trial(participants=150, facilitators=10)
    multiple = facilitator_effects(x, y, lists)
    primary = facilitator_effects(x, y, lists, membership="primary")
    assert primary["association"]["formula"].endswith("(1 | facilitator_1)")
    assert primary["association_alternative"]["membership"] == "multiple"
    assert primary["association"]["loglik"] == pytest.approx(multiple["association_alternative"]["loglik"])


def test_too_few_facilitators_is_refused_with_the_reason():
    x, y, _ = trial(participants=30)
    one = pd.Series([["F1"]] * 30, index=x.index)
    with pytest.raises(ValueError, match="1 facilitator"):
        facilitator_effects(x, y, one)


def test_without_facilitator_ids_the_analysis_says_why_it_did_not_run(levin_results):
    entries = levin_results.facilitator_effects
    assert entries and all("no facilitator is recorded" in e["skipped"] for e in entries)


def test_the_plan_runs_it_and_results_json_keeps_it(levin_study):
    import dataclasses

    participants = levin_study.participants.copy()
    participants["facilitator_ids"] = [f"F{i % 4 + 1};F{(i + 1) % 4 + 1}" for i in range(len(participants))]
    results = run_analysis(dataclasses.replace(levin_study, participants=participants))
    entries = results.facilitator_effects
    assert entries and {e["analysis"] for e in entries} == {"facilitator_effects"}
    computed = [e for e in entries if "skipped" not in e]
    assert computed and all(e["x"] == "wai_sr.total@prep" for e in computed)
    assert all(e["p_adjusted"] is not None for e in computed)
    again = Results.from_dict(results.to_dict())
    assert again.facilitator_effects == results.facilitator_effects
    # an old results.json without the section is still read
    old = results.to_dict()
    old.pop("facilitator_effects")
    assert Results.from_dict(old).facilitator_effects == ()


def test_the_report_shows_the_table_the_caterpillar_and_the_weakness(levin_study):
    import dataclasses

    from alliance.report.document import build_document

    participants = levin_study.participants.copy()
    participants["facilitator_ids"] = [f"F{i % 4 + 1};F{(i + 1) % 4 + 1}" for i in range(len(participants))]
    trial_with_ids = dataclasses.replace(levin_study, participants=participants)
    document = build_document(trial_with_ids, run_analysis(trial_with_ids))
    (section,) = [s for s in document.sections if s.id == "facilitators"]
    kinds = [type(block).__name__ for block in section.blocks]
    assert "TableBlock" in kinds and "FigureBlock" in kinds
    table = next(b for b in section.blocks if type(b).__name__ == "TableBlock").frame
    assert {"ICC alliance", "ICC outcome", "Within b", "Between b", "Singular"} <= set(table.columns)
    assert any(isinstance(b, str) and b.startswith("fewer than 30 participants") for b in section.blocks)
