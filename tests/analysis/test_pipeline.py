"""The pipeline computes nothing itself: every number of results.json is the alliance.stats call.

Each test recomputes a section's numbers by calling ``alliance.stats`` directly on the same
columns of ``study.measures(wide=True)`` (or the item responses) and compares them exactly.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from alliance import instruments, stats
from alliance.analysis import SECTIONS, Results, run_analysis

from .conftest import FIXED_TIME, make_study, protocol_variant


def _wide(study) -> pd.DataFrame:
    return study.measures(wide=True)


def _column(wide: pd.DataFrame, name: str) -> pd.Series:
    return wide[name] if name in wide.columns else pd.Series(np.nan, index=wide.index)


def _same(entry: dict, expected: dict, keys) -> None:
    for key in keys:
        got, want = entry[key], expected[key]
        if want is None or (isinstance(want, float) and math.isnan(want)):
            assert got is None, key
        else:
            assert got == want, (key, got, want)


def test_sections_are_exactly_the_contract(levin_results):
    data = levin_results.to_dict()
    assert list(data) == list(SECTIONS) == ["alliance_change", "correlations", "partial_correlations", "mediation",
                                            "mixed_models", "outcomes", "reliable_change", "reliability",
                                            "facilitator_effects", "alliance_agreement", "safety", "deviations", "provenance"]
    text = json.dumps(data, allow_nan=False)  # strict JSON: no NaN
    assert Results.from_dict(json.loads(text)).to_dict() == data


def test_provenance(levin_study, levin_results):
    from alliance import __version__

    provenance = levin_results.provenance
    assert provenance["version"] == __version__
    assert provenance["protocol_sha256"] == levin_study.protocol.sha256
    assert provenance["seed"] == 20240301
    assert provenance["created_utc"] == FIXED_TIME
    assert provenance["inputs"] == {}
    hashed = run_analysis(levin_study, input_hashes={"responses.csv": "ab" * 32}, seed=3)
    assert hashed.provenance["inputs"] == {"responses.csv": "ab" * 32}
    assert hashed.provenance["seed"] == 3
    assert all(entry["seed"] == 3 for entry in hashed.mediation if "skipped" not in entry)


def test_correlations_equal_direct_calls(levin_study, levin_results):
    wide = _wide(levin_study)
    computed = [e for e in levin_results.correlations if "skipped" not in e]
    assert len(computed) > 50
    for entry in computed:
        expected = stats.correlation(_column(wide, entry["x"]), _column(wide, entry["y"]),
                                     method=entry["method"]).to_dict()
        _same(entry, expected, ["n", "r", "p", "ci_low", "ci_high"])


def test_planned_correlation_pairs(levin_results):
    # confirmatory: alliance total at the final preparation session ↔ peak MEQ30 and peak insight only
    primary = levin_results.find("correlations", analysis="alliance_acute")
    assert {(e["x"], e["y"]) for e in primary} == {("wai_sr.total@prep", "meq30.total@peak"),
                                                   ("wai_sr.total@prep", "insight.score@peak")}
    assert {e["role"] for e in primary} == {"confirmatory"}
    # exploratory: every alliance scale (4) at prep ↔ the 7 acute measures, less the 2 confirmatory tests
    explored = levin_results.find("correlations", analysis="alliance_acute_exploratory")
    assert len(explored) == 4 * 7 - 2 and {e["role"] for e in explored} == {"exploratory"}
    assert ("wai_sr.total@prep", "meq30.total@peak") not in {(e["x"], e["y"]) for e in explored}
    # exploratory: 4 scales × 3 alliance timepoints ↔ GRID-HAMD at 5 follow-ups, less the 8 confirmatory
    outcome = levin_results.find("correlations", analysis="alliance_outcome_exploratory")
    assert len(outcome) == 4 * 3 * 5 - 8
    assert {e["y"] for e in outcome} == {f"grid_hamd17.total@{t}" for t in ("week1", "week4", "month3", "month6",
                                                                              "month12")}
    repeated = levin_results.provenance["plan"]["repeated_confirmatory"]
    assert len(repeated) == 1 + 2 + 3 + 8
    assert {"section": "correlations", "analysis": "alliance_outcome_exploratory",
            "test": "wai_sr.total@prep ~ grid_hamd17.total@week4",
            "confirmatory_analysis": "alliance_prep_outcome"} in repeated


def test_partial_correlations_equal_direct_calls(levin_study, levin_results):
    wide = _wide(levin_study)
    computed = [e for e in levin_results.partial_correlations if "skipped" not in e]
    assert computed
    for entry in computed:
        data = pd.DataFrame({name: _column(wide, name) for name in [entry["x"], entry["y"], *entry["covariates"]]})
        expected = stats.partial_correlation(data, entry["x"], entry["y"], entry["covariates"]).to_dict()
        assert entry["covariates"] == ["grid_hamd17.total@baseline"]
        _same(entry, expected, ["n", "r", "p", "ci_low", "ci_high", "df"])


def test_alliance_change_equals_direct_calls(levin_study, levin_results):
    wide = _wide(levin_study)
    entries = levin_results.alliance_change
    # 4 scales × 3 pairs, prep → week1 (first → last) first: the confirmatory test, then the 11 others
    assert len(entries) == 12
    assert (entries[0]["scale"], entries[0]["from"], entries[0]["to"], entries[0]["role"]) == (
        "wai_sr.total", "prep", "week1", "confirmatory")
    assert [e["role"] for e in entries[1:]] == ["exploratory"] * 11
    for entry in entries:
        before = _column(wide, f"{entry['scale']}@{entry['from']}")
        after = _column(wide, f"{entry['scale']}@{entry['to']}")
        _same(entry, stats.paired_ttest(before, after).to_dict(),
              ["n", "mean_diff", "t", "df", "p", "ci_low", "ci_high", "cohen_dz", "cohen_dav"])
        rank = stats.wilcoxon(before, after)
        assert entry["wilcoxon_p"] == rank.p and entry["wilcoxon_statistic"] == rank.statistic


def test_mediation_equals_direct_call_with_the_seed(levin_study, levin_results):
    wide = _wide(levin_study)
    entries = levin_results.mediation
    assert [(e["x"], e["m"], e["y"]) for e in entries] == [
        ("wai_sr.total@prep", f"{m}@peak", "grid_hamd17.total@week4")
        for m in ("meq30.total", "ebi.score", "insight.score")]
    for entry in entries:
        data = pd.DataFrame({name: _column(wide, name) for name in (entry["x"], entry["m"], entry["y"])})
        expected = stats.mediation(data, entry["x"], entry["m"], entry["y"], n_boot=5000, seed=20240301).to_dict()
        _same(entry, expected, ["n", "a", "b", "c_prime", "total", "indirect", "indirect_se", "indirect_ci_low",
                                "indirect_ci_high", "p_indirect", "n_boot"])


def test_mixed_models_equal_direct_calls(levin_study, levin_results):
    wide = _wide(levin_study)
    models = {(e["analysis"], e["measure"]): e for e in levin_results.mixed_models}
    assert set(models) == {("alliance_trajectory", f"wai_sr.{s}") for s in ("total", "goal", "task", "bond")} | {
        ("depression_trajectory", "grid_hamd17.total")}
    arm = levin_study.participants.set_index("participant_id")["arm"]
    for (_, measure), entry in models.items():
        rows = []
        for timepoint in entry["timepoints"]:
            for participant, value in _column(wide, f"{measure}@{timepoint}").dropna().items():
                rows.append({"participant": participant, "timepoint": timepoint, "value": value,
                             "arm": arm[participant]})
        data = pd.DataFrame(rows)
        data["timepoint"] = pd.Categorical(data["timepoint"], categories=entry["timepoints"])
        data["arm"] = pd.Categorical(data["arm"], categories=["immediate", "delayed"])
        model = stats.mixedlm(entry["formula"], data).to_dict()
        assert entry["fixed"] == model["fixed"]
        assert entry["varcomp"] == model["varcomp"]
        assert entry["loglik"] == model["loglik"]
        assert entry["n_obs"] == len(data)
    alliance = models[("alliance_trajectory", "wai_sr.total")]
    assert alliance["reference"] == {"timepoint": "prep"}
    assert [r["term"] for r in alliance["fixed"]] == ["(Intercept)", "timepointpost_session1", "timepointweek1"]
    depression = models[("depression_trajectory", "grid_hamd17.total")]
    assert depression["reference"] == {"timepoint": "baseline", "arm": "immediate"}
    assert "timepointweek4:armdelayed" in [r["term"] for r in depression["fixed"]]


def test_response_and_remission_equal_instrument_rules(levin_study, levin_results):
    wide = _wide(levin_study)
    baseline = wide["grid_hamd17.total@baseline"]
    arm = levin_study.participants.set_index("participant_id")["arm"].reindex(wide.index)
    for entry in levin_results.outcomes:
        members = wide.index if entry["arm"] == "all" else wide.index[arm == entry["arm"]]
        current = _column(wide, f"grid_hamd17.total@{entry['timepoint']}")
        responded = instruments.response(baseline[members], current[members]).dropna()
        remitted = instruments.remission(current[members]).dropna()
        assert entry["n_response"] == int(responded.sum())
        assert entry["n_evaluable_response"] == len(responded)
        assert entry["n_remission"] == int(remitted.sum())
        assert entry["n"] == len(remitted)
    assert {e["arm"] for e in levin_results.outcomes} == {"all", "immediate", "delayed"}


def test_reliability_equals_direct_calls(levin_study, levin_results):
    responses = levin_study.responses
    computed = [e for e in levin_results.reliability if "skipped" not in e]
    assert {(e["instrument"], e["timepoint"]) for e in computed} >= {("wai_sr", "prep"), ("meq30", "session1")}
    for entry in computed:
        scale = instruments.get(entry["instrument"]).scale(entry["scale"])
        rows = responses[(responses["instrument"] == entry["instrument"])
                         & (responses["timepoint"] == entry["timepoint"])]
        items = rows.pivot(index="participant_id", columns="item", values="value")[list(scale.items)]
        alpha = stats.cronbach_alpha(items).to_dict()
        _same(entry, alpha, ["alpha", "std_alpha", "ci_low", "ci_high", "n", "n_complete"])
        if "omega_total" in entry:
            assert entry["omega_total"] == stats.omega(items).omega_total
    single = [e for e in levin_results.reliability if e["instrument"] == "insight"]
    assert single and all("single-item" in e["skipped"] for e in single)


def test_holm_within_each_family_equals_adjust_pvalues(levin_results):
    families: dict[str, list[dict]] = {}
    for section in ("alliance_change", "correlations", "partial_correlations", "mediation", "facilitator_effects"):
        for entry in getattr(levin_results, section):
            families.setdefault(entry["family"], [])
            if "skipped" not in entry:
                families[entry["family"]].append(entry)
    assert set(families) == set(levin_results.provenance["families"])
    assert {"alliance_change", "alliance_acute", "acute_outcome", "alliance_prep_outcome", "alliance_post_outcome",
            "mediation"} <= set(families)
    for family, entries in families.items():
        raw = [e["p_indirect"] if "p_indirect" in e else e["p"] for e in entries]
        expected = stats.adjust_pvalues(raw, method="holm")
        assert [e["p_adjusted"] for e in entries] == expected.tolist(), family
        assert levin_results.provenance["families"][family]["m"] == len(entries)


def test_every_entry_has_its_n(levin_results):
    for section in ("alliance_change", "correlations", "partial_correlations", "mediation", "outcomes",
                    "reliability"):
        for entry in getattr(levin_results, section):
            if "skipped" in entry and "n" not in entry:  # an analysis the protocol cannot run (expectancy)
                assert entry["skipped"], (section, entry)
                continue
            assert isinstance(entry["n"], int), (section, entry)


def test_dropout_after_session1_counts_where_present(levin_study, levin_results):
    wide = _wide(levin_study)
    assert "P02" in wide.index
    # P02 has prep alliance and session 1 (hence a peak) but nothing after session 1
    prep_peak = levin_results.find("correlations", x="wai_sr.total@prep", y="meq30.total@peak")[0]
    prep_week4 = levin_results.find("correlations", x="wai_sr.total@prep", y="grid_hamd17.total@week4")[0]
    assert prep_peak["n"] == 11  # 12 minus P04 (no prep WAI-SR)
    assert prep_week4["n"] == 9  # minus P04, P02 (dropped out), P03 (missed week 4)
    change = levin_results.find("alliance_change", scale="wai_sr.total", **{"from": "prep", "to": "week1"})[0]
    assert change["n"] == 10  # minus P02 and P04


def test_too_few_pairs_is_reported_not_dropped():
    study = make_study(n=6, seed=3, last_timepoint={f"P0{i}": "session1" for i in range(1, 5)})
    results = run_analysis(study, created_utc=FIXED_TIME)
    late = results.find("correlations", x="wai_sr.total@prep", y="grid_hamd17.total@month12")
    assert late and late[0]["n"] == 2 and "at least 3 complete pairs" in late[0]["skipped"]
    assert late[0].get("p_adjusted") is None
    # the skipped test is not part of its family's adjustment
    family = [e for e in results.correlations if e["family"] == "alliance_prep_outcome"]
    computed = [e for e in family if "skipped" not in e]
    assert len(family) == 4 and results.provenance["families"]["alliance_prep_outcome"]["m"] == len(computed)
    # its exploratory repeat is left out, also when skipped
    assert not results.find("correlations", analysis="alliance_outcome_exploratory",
                            x="wai_sr.total@prep", y="grid_hamd17.total@month12")


def test_protocol_without_ebi():
    study = make_study(protocol_variant(without_instrument="ebi"), n=10, seed=5)
    results = run_analysis(study, created_utc=FIXED_TIME)
    measures = {e["y"] for e in results.correlations} | {e["x"] for e in results.correlations}
    assert not any(m.startswith("ebi.") for m in measures)
    assert [e["m"] for e in results.mediation] == ["meq30.total@peak", "insight.score@peak"]
    dropped = results.provenance["plan"]["dropped"]
    assert any(d["reference"] == "ebi.score@peak" and "ebi" in d["reason"] for d in dropped)
    assert not any(e["instrument"] == "ebi" for e in results.reliability)


def test_single_arm_study():
    study = make_study(protocol_variant(single_arm=True), n=8, seed=11)
    results = run_analysis(study, created_utc=FIXED_TIME)
    depression = results.find("mixed_models", analysis="depression_trajectory")[0]
    assert depression["formula"] == "value ~ timepoint + (1|participant)"
    assert any("one arm" in note for note in depression["notes"])
    assert "skipped" not in depression
    assert {e["arm"] for e in results.outcomes} == {"all"}


def test_missing_timepoint_without_any_data():
    # nobody attended the integration meeting after session 1
    study = make_study(n=8, seed=2, missing={(f"P0{i}", "post_session1") for i in range(1, 9)})
    results = run_analysis(study, created_utc=FIXED_TIME)
    skipped = results.find("alliance_change", scale="wai_sr.total", **{"from": "prep", "to": "post_session1"})
    assert skipped[0]["n"] == 0 and "skipped" in skipped[0]
    model = results.find("mixed_models", measure="wai_sr.total")[0]
    assert model["timepoints"] == ["prep", "week1"]
    assert any("no data at post_session1" in note for note in model["notes"])
    assert results.find("reliability", instrument="wai_sr", timepoint="post_session1")[0]["n"] == 0


def test_same_seed_same_results(levin_study, levin_results):
    again = run_analysis(levin_study, created_utc=FIXED_TIME)
    assert again.to_dict() == levin_results.to_dict()


def test_plan_from_the_protocol_section_is_used():
    analysis = {"analyses": [{"id": "only", "type": "correlation", "x": "alliance.total@prep",
                              "y": "outcome@week4", "method": "spearman", "family": "one"}],
                "p_adjust": "bonferroni"}
    study = make_study(protocol_variant(analysis=analysis), n=8, seed=4)
    results = run_analysis(study, created_utc=FIXED_TIME)
    assert [(e["x"], e["y"], e["method"]) for e in results.correlations] == [
        ("wai_sr.total@prep", "grid_hamd17.total@week4", "spearman")]
    assert results.alliance_change == () and results.mediation == ()
    assert results.provenance["p_adjust"] == "bonferroni"


@pytest.mark.parametrize("section", ["correlations", "partial_correlations", "alliance_change"])
def test_tables(levin_results, section):
    table = levin_results.table(section)
    assert len(table) == len(getattr(levin_results, section))
    assert "n" in table.columns
