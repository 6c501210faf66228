"""The safety section: counts by arm from the records, the SAE listing, alliance vs harm by the stats calls."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from alliance import stats
from alliance.analysis import run_analysis
from alliance.protocol import default_protocol, parse_analysis_plan
from alliance.simulate import simulate_trial
from alliance.study.adverse_events import normalize_adverse_events

# The safety analysis alone (the default plan's entry): the rest of the plan is tested elsewhere.
PLAN = parse_analysis_plan({"analyses": [{"id": "safety", "type": "safety", "x": "alliance.total@last_pre_dosing",
                                          "grades": [1, 2], "family": "alliance_harm"}]})


@pytest.fixture(scope="module")
def study():
    study = simulate_trial(default_protocol(), n=40, seed=3)
    first = study.dosing_sessions.loc[study.dosing_sessions["session"] == 1].set_index("participant_id")["date"]
    rng = np.random.default_rng(7)
    rows = []
    for i, pid in enumerate(study.participant_ids):
        for k in range(int(rng.integers(0, 3))):
            rows.append({"participant_id": pid, "ae_id": f"AE-{i}-{k}", "term": "Headache",
                         "onset": str(first.get(pid, "2024-01-01")), "severity": str(int(rng.integers(1, 4))),
                         "serious": "no", "relatedness": str(rng.choice(["not_related", "possible", "probable"]))})
    rows[0].update({"serious": "yes", "seriousness": "hospitalisation", "severity": "3"})
    # one event before the first dose: not counted for alliance vs harm
    pid = rows[-1]["participant_id"]
    rows.append({**rows[-1], "ae_id": "AE-early", "onset": "2000-01-01"})
    study.adverse_events = normalize_adverse_events(pd.DataFrame(rows, dtype="string"))
    study.validate()
    return study, pid


@pytest.fixture(scope="module")
def safety(study):
    return run_analysis(study[0], plan=PLAN, created_utc="2026-01-01T00:00:00+00:00").safety


def test_counts_by_arm_follow_the_records(study, safety):
    events = study[0].adverse_events
    arm_of = study[0].participants.set_index("participant_id")["arm"]
    for entry in [e for e in safety if e["kind"] == "by_arm"]:
        mine = events if entry["arm"] == "all" else events[events["participant_id"].map(arm_of) == entry["arm"]]
        assert entry["events"] == len(mine)
        assert entry["participants_with_event"] == mine["participant_id"].nunique()
        assert sum(g["events"] for g in entry["by_grade"].values()) == len(mine)
        assert entry["by_relatedness"]["possible"]["events"] == int((mine["relatedness"] == "possible").sum())
        assert entry["serious_events"] == int(mine["serious"].sum())


def test_the_serious_events_are_listed(safety):
    listed = [e for e in safety if e["kind"] == "serious_event"]
    assert [e["ae_id"] for e in listed] == ["AE-0-0"] or len(listed) == 1
    assert listed[0]["seriousness"] == "hospitalisation" and listed[0]["severity"] == 3


def test_alliance_vs_harm_is_the_stats_calls_on_the_same_data(study, safety):
    data, early_participant = study
    (entry, moderate) = [e for e in safety if e["kind"] == "alliance_vs_harm"]
    assert (entry["min_grade"], moderate["min_grade"]) == (1, 2)
    assert moderate["y"] == "an adverse event of grade 2 or worse after the first dose"
    graded = data.adverse_events[(data.adverse_events["ae_id"] != "AE-early") & (data.adverse_events["severity"] >= 2)]
    assert moderate["n_with_event"] == int(pd.Index(pd.to_numeric(data.measures(wide=True)["wai_sr.total@prep"],
                                                                     errors="coerce").dropna().index.astype(str))
                                           .isin(set(graded["participant_id"])).sum())
    assert entry["role"] == "exploratory" and entry["family"] == "alliance_harm"
    wide = data.measures(wide=True)
    alliance = pd.to_numeric(wide["wai_sr.total@prep"], errors="coerce").dropna()
    counted = data.adverse_events[data.adverse_events["ae_id"] != "AE-early"]
    had = alliance.index.astype(str).isin(set(counted["participant_id"])).astype(float)
    r = stats.correlation(alliance.to_numpy(float), had)
    assert entry["n"] == len(alliance) and entry["n_with_event"] == int(had.sum())
    assert entry["point_biserial"]["r"] == pytest.approx(r.r, abs=1e-12)
    fit = stats.logistic_regression(had, pd.DataFrame({"a": alliance.to_numpy(float)}), method="firth")
    assert entry["firth"]["estimate"] == pytest.approx(fit.coefficients.loc["a", "estimate"], abs=1e-10)
    assert entry["firth"]["p"] == pytest.approx(fit.coefficients.loc["a", "p_lr"], abs=1e-10)
    assert any("began before the participant's first dosing session" in n for n in entry["notes"])


def test_without_an_adverse_event_record_the_section_says_so():
    study = simulate_trial(default_protocol(), n=12, seed=1)
    study.adverse_events = None  # the synthetic trial has them; a real study may not
    results = run_analysis(study, plan=PLAN, created_utc="2026-01-01T00:00:00+00:00")
    (entry,) = results.safety
    assert entry["skipped"] == "the study has no adverse-event record (adverse_events.csv)"


def test_vital_sign_peaks_and_the_worst_cssrs_follow_the_records():
    from alliance.analysis.safety import cssrs_worst_by_arm, vital_signs_by_arm

    study = simulate_trial(default_protocol(), n=20, seed=9)
    vitals = study.vital_signs
    entries = vital_signs_by_arm(vitals, study.participants, study.protocol.safety, study.protocol.arm_ids)
    everyone = next(e for e in entries if e["arm"] == "all" and e["session"] == 2)
    peaks = vitals[vitals["session"] == 2].groupby("participant_id")["systolic_bp"].max()
    assert everyone["n_participants"] == len(peaks)
    assert everyone["systolic_bp"]["mean"] == pytest.approx(peaks.mean()) and everyone["systolic_bp"]["max"] == peaks.max()
    urgent = (vitals["session"] == 2) & ((vitals["systolic_bp"] >= 180) | (vitals["diastolic_bp"] >= 120))
    # one finding per reading and measure: count measures over the thresholds
    over = sum(int(((vitals["session"] == 2) & (vitals[m] >= t)).sum())
               for m, t in (("systolic_bp", 160), ("diastolic_bp", 100), ("heart_rate", 120)))
    assert everyone["readings_warning"] + everyone["readings_urgent"] == over
    assert everyone["participants_urgent"] == vitals.loc[urgent, "participant_id"].nunique()
    scores = study.scores()
    worst = cssrs_worst_by_arm(scores, study.participants, study.protocol.arm_ids)[-1]
    cssrs = scores[scores["instrument"].astype(str).str.startswith("cssrs")]
    expected = cssrs.groupby("participant_id")["ideation_severity"].max().dropna()
    assert worst["n_assessed"] == len(expected)
    assert worst["worst_ideation"] == {str(k): int((expected == k).sum()) for k in range(6)}
