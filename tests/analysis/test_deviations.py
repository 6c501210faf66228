"""The analysis honours deviations (issue 12, item 3): a post-dose "pre-dose" score is excluded.

P01 of the synthetic Levin study gets dosing session 1 on 2026-11-10 and its final-preparation
WAI-SR dated 2026-12-01: after the dose. By default (levin2024.yaml, ``deviations:``) that
administration is excluded, so every result that used the prep alliance has one participant
fewer, and ``results.json`` lists the deviation.
"""

from __future__ import annotations

import dataclasses
import json

import pandas as pd
import pytest

from alliance.analysis import Results, run_analysis
from alliance.protocol import default_protocol, parse_protocol

from .conftest import FIXED_TIME


@pytest.fixture(scope="module")
def late_prep(levin_study):
    responses = levin_study.responses.copy()
    late = (responses["participant_id"] == "P01") & (responses["timepoint"] == "prep")
    responses["administered_at"] = responses["administered_at"].astype(object)
    responses.loc[late, "administered_at"] = "2026-12-01"
    dosing = pd.DataFrame({"participant_id": ["P01"], "session": [1], "date": ["2026-11-10"]})
    return dataclasses.replace(levin_study, responses=responses, dosing_sessions=dosing)


def _uses_prep(section: str, entry: dict) -> bool:
    if section == "alliance_change":
        return "prep" in (entry.get("from"), entry.get("to"))
    if section in ("correlations", "partial_correlations"):
        return any(str(entry.get(k, "")).endswith("@prep") for k in ("x", "y"))
    if section == "mediation":
        return any(str(entry.get(k, "")).endswith("@prep") for k in ("x", "m", "y"))
    return False


def test_a_post_dose_prep_score_is_excluded_and_every_n_drops_by_one(levin_results, late_prep):
    results = run_analysis(late_prep, created_utc=FIXED_TIME)
    assert [(d["participant_id"], d["timepoint"], d["kind"], d["action"]) for d in results.deviations] == [
        ("P01", "prep", "after_dosing", "excluded"), ("P01", "prep", "out_of_window", "excluded")]
    assert results.provenance["deviations"]["administrations_excluded"] == 1
    compared = 0
    for section in ("alliance_change", "correlations", "partial_correlations", "mediation"):
        for before, after in zip(getattr(levin_results, section), getattr(results, section), strict=True):
            if "skipped" in before or "n" not in before:
                continue
            if _uses_prep(section, before):
                assert after["n"] == before["n"] - 1, (section, before)
                compared += 1
            else:
                assert after["n"] == before["n"], (section, before)
    assert compared >= 3
    for before, after in zip(levin_results.mixed_models, results.mixed_models, strict=True):
        if "prep" in before.get("timepoints", ()) and "n_obs" in before:
            assert after["n_obs"] == before["n_obs"] - 1
    # listed in results.json, which reads back
    data = json.loads(json.dumps(results.to_dict(), allow_nan=False))
    assert data["deviations"][0]["administered_at"] == "2026-12-01"
    assert data["deviations"][0]["window_open"] == "2026-11-06" and data["deviations"][0]["window_close"] == "2026-11-09"
    assert Results.from_dict(data).deviations == results.deviations


def test_a_protocol_that_includes_them_keeps_the_score_and_still_lists_it(late_prep, levin_results):
    raw = default_protocol().to_dict()
    raw["deviations"] = {"actions": {"after_dosing": "include", "out_of_window": "include"}}
    keep = dataclasses.replace(late_prep, protocol=parse_protocol(raw))
    results = run_analysis(keep, created_utc=FIXED_TIME)
    assert {d["action"] for d in results.deviations} == {"included"} and len(results.deviations) == 2
    assert [e["n"] for e in results.alliance_change] == [e["n"] for e in levin_results.alliance_change]


def test_results_json_written_before_deviations_existed_still_reads(levin_results):
    data = levin_results.to_dict()
    del data["deviations"]
    assert Results.from_dict(data).deviations == ()


def test_the_report_lists_the_deviations_without_ids_or_dates(late_prep, tmp_path):
    from alliance.report.document import build_document

    results = run_analysis(late_prep, created_utc=FIXED_TIME)
    document = build_document(late_prep, results)
    participants = next(s for s in document.sections if s.id == "participants")
    (table,) = [b for b in participants.blocks if getattr(b, "caption", "") == "Protocol deviations"]
    rows = table.frame.to_dict("records")
    assert rows == [
        {"Timepoint": rows[0]["Timepoint"], "Instrument": "WAI-SR", "Deviation": "after the first dose (pre-dose timepoint)",
         "In the analysis": "excluded", "n": "1"},
        {"Timepoint": rows[0]["Timepoint"], "Instrument": "WAI-SR", "Deviation": "outside its window",
         "In the analysis": "excluded", "n": "1"}]
    text = " ".join(str(b) for b in participants.blocks if isinstance(b, str))
    assert "1 administration excluded" in text and "2026" not in table.frame.to_string()


def test_participants_without_any_answer_are_named(levin_study):
    import numpy as np

    participants = pd.concat([levin_study.participants,
                              pd.DataFrame({"participant_id": ["P99"], "arm": ["immediate"]})], ignore_index=True)
    results = run_analysis(dataclasses.replace(levin_study, participants=participants), created_utc=FIXED_TIME)
    assert results.provenance["participants_without_data"] == ["P99"]
    assert results.provenance["n_participants"] == len(levin_study.participants) + 1
    assert np.isfinite([e["n"] for e in results.alliance_change if "n" in e]).all()


def test_the_reports_descriptives_leave_out_what_the_analysis_excluded(levin_results, late_prep):
    from alliance.analysis import descriptives
    from alliance.report.document import build_document

    results = run_analysis(late_prep, created_utc=FIXED_TIME)
    before = descriptives(late_prep, ["wai_sr.total"]).set_index("timepoint")["n"]
    document = build_document(late_prep, results)
    section = next(s for s in document.sections if s.id == "descriptives")
    (table,) = [b for b in section.blocks if getattr(b, "caption", "").startswith("Descriptive")]
    prep = table.frame[(table.frame["Measure"] == "WAI-SR total")
                       & (table.frame["Timepoint"] == "Final preparation session")]
    assert int(prep["n"].iloc[0]) == int(before["prep"]) - 1 == 10
