"""The headline tables of the command line, from small results written out in the test.

Every expected cell is the APA form of the number beside it (Publication Manual, 7th ed.): r and p
without a leading zero, p below .001 as ``< .001`` and above .999 as ``> .999``, the typographic
minus sign (U+2212), 2 decimals (3 for mediation paths).
"""

from __future__ import annotations

import math

import pandas as pd

from alliance.analysis import Results
from alliance.report.summary import Column, SummaryTable, frame_summary, power_summary, results_summary
from alliance.simulate.power import PowerResult

M = "\u2212"  # minus sign

ROLES = {"alliance": {"instrument": "wai_sr", "scales": ["total", "goal", "task", "bond"]}}

CHANGE = (
    {"analysis": "alliance_change", "family": "alliance_change", "scale": "wai_sr.total", "from": "prep",
     "to": "week1", "n": 23, "mean_diff": 1.7346, "t": 1.6723, "df": 22.0, "p": 0.10873, "p_adjusted": 1.0,
     "cohen_dz": 0.34871},
    {"analysis": "alliance_change", "family": "alliance_change", "scale": "wai_sr.task", "from": "post_session1",
     "to": "week1", "n": 22, "mean_diff": -0.0909, "t": -0.2134, "df": 21.0, "p": 0.83305, "p_adjusted": 0.99996,
     "cohen_dz": -0.0455},
    {"analysis": "alliance_change", "family": "alliance_change", "scale": "wai_sr.bond", "from": "prep",
     "to": "week1", "n": 2, "skipped": "fewer than 3 complete pairs"},
)
CORRELATIONS = (
    {"analysis": "alliance_acute", "family": "alliance_acute", "x": "wai_sr.total@prep", "y": "meq30.total@peak",
     "method": "pearson", "n": 24, "r": 0.6561, "p": 0.00049, "p_adjusted": 0.0021, "ci_low": 0.3512,
     "ci_high": 0.8390},
    {"analysis": "alliance_subscales_acute", "family": "alliance_subscales_acute", "x": "wai_sr.goal@prep",
     "y": "meq30.total@peak", "method": "pearson", "n": 24, "r": 0.5, "p": 0.01, "p_adjusted": 0.03,
     "ci_low": 0.1, "ci_high": 0.7},
    {"analysis": "acute_outcome", "family": "acute_outcome", "x": "meq30.total@peak",
     "y": "grid_hamd17.total@week4", "method": "pearson", "n": 22, "r": -0.5049, "p": 0.01652,
     "p_adjusted": 0.2938, "ci_low": -0.7629, "ci_high": -0.0996},
    {"analysis": "acute_outcome", "family": "acute_outcome", "x": "ebi.score@peak", "y": "grid_hamd17.total@week4",
     "method": "pearson", "n": 2, "skipped": "fewer than 3 complete pairs"},
)
MEDIATION = (
    {"analysis": "mediation", "family": "mediation", "x": "wai_sr.total@prep", "m": "insight.score@peak",
     "y": "grid_hamd17.total@week4", "n": 22, "a": 1.7702, "b": -0.19341, "c_prime": -0.25811, "total": -0.6,
     "indirect": -0.34241, "indirect_ci_low": -0.47812, "indirect_ci_high": -0.07104, "p_indirect": 0.0124,
     "p_adjusted": 0.0372, "n_boot": 5000, "ci_method": "percentile", "confidence": 0.95},
)


def results(**provenance) -> Results:
    return Results(alliance_change=CHANGE, correlations=CORRELATIONS, mediation=MEDIATION,
                   provenance={"p_adjust": "holm", "plan": {"roles": ROLES}, **provenance})


def test_one_table_per_summarised_section_in_the_results_order():
    tables = results_summary(results())
    assert [t.id for t in tables] == ["alliance_change", "correlations", "mediation"]
    assert results_summary(Results()) == ()  # no entries, no table


def test_alliance_change_rows():
    change = results_summary(results())[0]
    assert change.title == "Alliance change (paired t-test)"
    assert change.headings == ("scale", "from \u2192 to", "n", "mean diff", "t", "df", "p", "p (Holm)", "dz")
    assert [c.numeric for c in change.columns] == [False, False] + [True] * 7
    assert change.rows == (
        ("wai_sr.total", "prep \u2192 week1", "23", "1.73", "1.67", "22", ".109", "> .999", "0.35"),
        ("wai_sr.task", "post_session1 \u2192 week1", "22", f"{M}0.09", f"{M}0.21", "21", ".833", "> .999",
         f"{M}0.05"),
        ("wai_sr.bond", "prep \u2192 week1", "2", "skipped: fewer than 3 complete pairs", "", "", "", "", ""),
    )


def test_correlations_of_the_primary_alliance_scale_and_a_note_for_the_others():
    correlations = results_summary(results())[1]
    assert correlations.title == "Correlations (Pearson; Holm within each family)"
    assert correlations.headings == ("x", "y", "n", "r", "95% CI", "p", "p (Holm)")
    assert correlations.rows == (
        ("wai_sr.total@prep", "meq30.total@peak", "24", ".66", "[.35, .84]", "< .001", ".002"),
        ("meq30.total@peak", "grid_hamd17.total@week4", "22", f"{M}.50", f"[{M}.76, {M}.10]", ".017", ".294"),
        ("ebi.score@peak", "grid_hamd17.total@week4", "2", "skipped: fewer than 3 complete pairs", "", "", ""),
    )
    # wai_sr.goal is not the first alliance scale of the plan's roles: left to the report, and said so
    assert correlations.note == "1 correlation of the other wai_sr scales (goal, task, bond; " \
                                "alliance_subscales_acute) in the report."


def test_without_plan_roles_every_correlation_is_shown():
    plain = Results(correlations=CORRELATIONS, provenance={"p_adjust": "holm"})
    (correlations,) = results_summary(plain)
    assert len(correlations.rows) == 4 and correlations.note == ""
    assert correlations.rows[1][:4] == ("wai_sr.goal@prep", "meq30.total@peak", "24", ".50")


def test_mediation_rows():
    mediation = results_summary(results())[2]
    assert mediation.title == "Mediation (indirect effect a\u00d7b, percentile bootstrap CI)"
    assert mediation.headings == ("x", "m", "y", "n", "a", "b", "c\u2032", "a\u00d7b", "95% CI", "p", "p (Holm)")
    assert mediation.rows == ((
        "wai_sr.total@prep", "insight.score@peak", "grid_hamd17.total@week4", "22", "1.770", f"{M}0.193",
        f"{M}0.258", f"{M}0.342", f"[{M}0.478, {M}0.071]", ".012", ".037"),)


def test_the_adjustment_named_is_the_plans():
    tables = results_summary(results(p_adjust="bh"))
    assert tables[1].title == "Correlations (Pearson; BH within each family)"
    assert all(t.headings[-1] == "p (BH)" for t in tables[1:]) and "p (BH)" in tables[0].headings


def power_result() -> PowerResult:
    tests = ({"test": "correlation", "x": "wai_sr.total@prep", "y": "grid_hamd17.total@week4"},
             {"test": "mixed_model", "x": "time", "y": "wai_sr.total", "timepoints": ["prep", "week1"]})
    effects = ({"effect": -0.65, "effect_measure": "r"}, {"effect": 0.98765, "effect_measure": "slope_per_timepoint"})
    powers = {(0, 20, 0.0): 0.91, (0, 40, 0.0): 1.0, (0, 20, 0.1): 0.7951, (0, 40, 0.1): 0.99,
              (1, 20, 0.0): 0.44, (1, 40, 0.0): 0.80, (1, 20, 0.1): 0.46, (1, 40, 0.1): 0.77}
    entries = tuple({**tests[k], **effects[k], "n": n, "attrition": rate, "power": power, "ci_low": math.nan,
                     "ci_high": math.nan, "sims": 200, "computed": 200, "mean_analysed": n}
                    for (k, n, rate), power in powers.items())
    return PowerResult(entries=entries, seed=3, sims=200, alpha=0.05, scenario="levin2024", overrides={},
                       protocol="levin2024", tests=tests)


def test_power_tables():
    tests, power = power_summary(power_result())
    assert tests.headings == ("", "test", "effect")
    assert tests.rows == (
        ("T1", "correlation wai_sr.total@prep ~ grid_hamd17.total@week4", f"r = {M}0.65"),
        ("T2", "mixed_model wai_sr.total ~ time (prep, week1)", "slope_per_timepoint = 0.988"),
    )
    assert power.title == "Power (200 trials per cell, two-sided \u03b1 = .05, seed 3)"
    assert power.headings == ("n", "attrition", "T1", "T2")
    assert power.rows == (
        ("20", "0%", ".91", ".44"),
        ("20", "10%", ".80", ".46"),   # .7951 rounds to .80 but does not reach .8
        ("40", "0%", "1.00", ".80"),
        ("40", "10%", ".99", ".77"),
        ("80% at n", "0%", "20", "40"),
        ("80% at n", "10%", "40", "\u2014"),
    )
    assert power.footer == 2
    assert power.strong == {(0, 2), (2, 2), (2, 3), (3, 2)}


def test_power_summary_reads_power_json_too():
    result = power_result()
    assert power_summary(result.to_dict()) == power_summary(result)


def test_frame_summary():
    frame = pd.DataFrame({"participant_id": ["P1", "P2"], "total": [48.0, math.nan], "goal": [10.6667, 16.0]})
    table = frame_summary(frame, "wai_sr scores")
    assert table == SummaryTable("frame", "wai_sr scores",
                                 (Column("participant_id"), Column("total", True), Column("goal", True)),
                                 (("P1", "48", "10.67"), ("P2", "", "16")))
