"""The report's safety section: tables by arm from the safety entries, the SAE listing, alliance vs harm."""

from __future__ import annotations

import pandas as pd

from alliance.analysis import run_analysis
from alliance.protocol import default_protocol, parse_analysis_plan
from alliance.report import build_document
from alliance.report.tables import safety_by_arm_table, serious_event_table
from alliance.simulate import simulate_trial
from alliance.study.adverse_events import normalize_adverse_events

PLAN = parse_analysis_plan({"analyses": [{"id": "safety", "type": "safety", "x": "alliance.total@last_pre_dosing",
                                          "grades": [1, 2], "family": "alliance_harm"}]})


def _study():
    study = simulate_trial(default_protocol(), n=30, seed=4)
    first = study.dosing_sessions.loc[study.dosing_sessions["session"] == 1].set_index("participant_id")["date"]
    rows = [{"participant_id": pid, "ae_id": f"AE-{i}", "term": "Headache", "onset": str(first[pid]),
             "severity": "1" if i % 3 else "2", "serious": "no", "relatedness": "probable"}
            for i, pid in enumerate(study.participant_ids) if i % 2 == 0 and pid in first.index]
    rows[1].update({"serious": "yes", "seriousness": "hospitalisation;important_medical_event", "severity": "3",
                    "outcome": "recovered", "resolved_on": str(first[rows[1]["participant_id"]])})
    study.adverse_events = normalize_adverse_events(pd.DataFrame(rows, dtype="string"))
    return study


def test_the_safety_section_shows_the_counts_and_the_listing():
    study = _study()
    results = run_analysis(study, plan=PLAN, created_utc="2026-01-01T00:00:00+00:00")
    document = build_document(study, results)
    (section,) = [s for s in document.sections if s.id == "safety"]
    labels = {a.id: a.label for a in study.protocol.arms}
    table = safety_by_arm_table(results.safety, labels)
    everyone = next(e for e in results.safety if e.get("kind") == "by_arm" and e["arm"] == "all")
    all_column = next(c for c in table.columns if c.startswith("All"))
    assert table.loc[0, all_column] == (f"{everyone['participants_with_event']} "
                                        f"({100 * everyone['participants_with_event'] / everyone['n_participants']:.0f}%); "
                                        f"{everyone['events']} events")
    listing = serious_event_table(results.safety, labels)
    assert listing["Criteria"].tolist() == ["hospitalisation, important medical event"]
    texts = [b for b in section.blocks if isinstance(b, str)]
    assert any(t.startswith("Alliance and harm (exploratory): WAI-SR total @ Final preparation session") for t in texts)


def test_without_a_record_the_section_says_so():
    study = simulate_trial(default_protocol(), n=12, seed=2)
    study.adverse_events = None
    document = build_document(study, run_analysis(study, plan=PLAN, created_utc="2026-01-01T00:00:00+00:00"))
    (section,) = [s for s in document.sections if s.id == "safety"]
    assert section.blocks == ["No adverse events are reported here: the study has no adverse-event record "
                              "(adverse_events.csv)."]
