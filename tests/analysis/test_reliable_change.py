"""The ``reliable_change`` section of results.json and its report table, counts worked by hand on a small study."""

from __future__ import annotations

import copy

import pandas as pd
import pytest

from alliance import instruments
from alliance.analysis import Results, run_analysis
from alliance.protocol import default_protocol, parse_protocol
from alliance.report import tables
from alliance.report.labels import Labels
from alliance.study import Study

from .conftest import FIXED_TIME, RESPONSE_COLUMNS

Z = 1.959963984540054


def _protocol(entry: dict, min_n: int = 10):
    raw = copy.deepcopy(default_protocol().to_dict())
    raw["reliable_change"] = {"alpha": 0.05, "min_n": min_n, "measures": {"grid_hamd17.total": entry}}
    return parse_protocol(raw, origin="test protocol")


def _items_for(total: int) -> list[float]:
    """GRID-HAMD item answers adding up to ``total``, filling the items in order up to their maximum."""
    values = []
    left = total
    for item in instruments.get("grid_hamd17").items:
        value = min(left, int(item.max))
        values.append(float(value))
        left -= value
    assert left == 0
    return values


# participant: (arm, baseline total, week-4 total or None)
TOTALS = {
    "P1": ("immediate", 24, 10),   # −14: |−14| > 9.80, a decrease → improvement; 10 < 14 → recovered
    "P2": ("immediate", 24, 16),   # −8 → no reliable change
    "P3": ("immediate", 26, 15),   # −11 → improvement; 15 ≥ 14 → improved, not recovered
    "P4": ("delayed", 20, 31),     # +11 → deterioration
    "P5": ("delayed", 22, None),   # no week-4 score: not counted
    "P6": ("delayed", 20, 20),     # 0 → no reliable change
}


def _study(protocol) -> Study:
    rows = []
    items = [item.id for item in instruments.get("grid_hamd17").items]
    for participant, (_, baseline, week4) in TOTALS.items():
        for timepoint, total in (("baseline", baseline), ("week4", week4)):
            if total is None:
                continue
            for item, value in zip(items, _items_for(total), strict=True):
                rows.append((participant, timepoint, "grid_hamd17", item, value, pd.NA, pd.NA))
    responses = pd.DataFrame(rows, columns=RESPONSE_COLUMNS).astype(
        {"participant_id": str, "timepoint": str, "instrument": str, "item": str, "value": float})
    participants = pd.DataFrame({"participant_id": list(TOTALS), "arm": [arm for arm, _, _ in TOTALS.values()]})
    return Study(protocol=protocol, participants=participants, responses=responses)


@pytest.fixture(scope="module")
def hand_results():
    # sd 5, reliability .5: S_diff = 5 · √(2 · .5) = 5, threshold = 1.959964 · 5 = 9.80 points;
    # norms: dysfunctional 22 (SD 4) → cut-off a = 22 − 2 · 4 = 14
    protocol = _protocol({"lower_is_better": True, "sd": 5, "reliability": 0.5, "source": "hand-made",
                          "norms": {"dysfunctional": {"mean": 22, "sd": 4}, "source": "hand-made norms"}})
    return run_analysis(_study(protocol), created_utc=FIXED_TIME)


def _entry(results, timepoint, arm):
    (entry,) = results.find("reliable_change", timepoint=timepoint, arm=arm)
    return entry


def test_counts_per_arm_worked_by_hand(hand_results):
    every = _entry(hand_results, "week4", "all")
    # P1, P2, P3, P4, P6 have both scores (n = 5): improvement P1, P3; no change P2, P6; deterioration P4
    assert (every["n"], every["n_improvement"], every["n_no_change"], every["n_deterioration"]) == (5, 2, 2, 1)
    assert (every["improvement_pct"], every["no_change_pct"], every["deterioration_pct"]) == (40.0, 40.0, 20.0)
    immediate = _entry(hand_results, "week4", "immediate")
    assert (immediate["n"], immediate["n_improvement"], immediate["n_no_change"]) == (3, 2, 1)
    assert immediate["improvement_pct"] == pytest.approx(200 / 3)
    delayed = _entry(hand_results, "week4", "delayed")
    assert (delayed["n"], delayed["n_no_change"], delayed["n_deterioration"]) == (2, 1, 1)
    # recovered P1 only; improved P3; unchanged P2, P6; deteriorated P4
    assert every["clinical"]["counts"] == {"recovered": 1, "improved": 1, "unchanged": 2, "deteriorated": 1}
    assert every["clinical"]["percent"]["recovered"] == 20.0
    assert (every["clinical"]["cutoff"], every["clinical"]["recommended"]) == (14.0, "a")


def test_the_norm_and_its_source_are_recorded(hand_results):
    entry = _entry(hand_results, "week4", "all")
    assert (entry["measure"], entry["baseline"], entry["sd"], entry["reliability"]) == (
        "grid_hamd17.total", "baseline", 5.0, 0.5)
    assert entry["sd_from"] == entry["reliability_from"] == "protocol (source: hand-made)"
    assert entry["threshold"] == pytest.approx(5 * Z) and entry["z"] == pytest.approx(Z)
    assert entry["clinical"]["source"] == "hand-made norms"
    # a follow-up nobody attended has n = 0 and no percentages
    empty = _entry(hand_results, "month3", "all")
    assert (empty["n"], empty["improvement_pct"]) == (0, None)


def test_round_trip_and_old_files(hand_results):
    data = hand_results.to_dict()
    assert Results.from_dict(data).reliable_change == hand_results.reliable_change
    data.pop("reliable_change")  # a results.json written before the section existed
    assert Results.from_dict(data).reliable_change == ()


def test_too_few_for_a_study_sd_is_one_skipped_entry():
    protocol = _protocol({"lower_is_better": True, "sd": "study", "reliability": 0.5, "source": "hand-made"})
    results = run_analysis(_study(protocol), created_utc=FIXED_TIME)
    (entry,) = results.reliable_change
    assert "which has 6 scores; at least 10 are needed" in entry["skipped"]
    assert entry["sd"] is None and entry["reliability"] == 0.5


def test_report_table_and_note(hand_results):
    protocol = _protocol({"lower_is_better": True, "sd": 5, "reliability": 0.5, "source": "hand-made"})
    entries = [e for e in hand_results.reliable_change if e["timepoint"] == "week4"]
    table = tables.reliable_change_table(entries, Labels(protocol), {"immediate": "Immediate", "delayed": "Delayed"})
    assert list(table.columns) == ["Timepoint", "Arm", "n", "Reliable improvement", "No reliable change",
                                   "Reliable deterioration", "Recovered"]
    first = table.iloc[0]
    assert (first["Arm"], first["n"], first["Reliable improvement"], first["Reliable deterioration"],
            first["Recovered"]) == ("All", "5", "2/5 (40%)", "1/5 (20%)", "1/5 (20%)")
    note = tables.reliable_change_note(entries)
    assert "larger than 9.80 points" in note and "protocol (source: hand-made)" in note
    assert "cut-off a = 14.0 (hand-made norms)" in note
    skipped = tables.reliable_change_table([{"analysis": "x", "skipped": "too few"}], Labels(protocol), {})
    assert skipped.iloc[0]["Reliable improvement"] == "not computed: too few"
