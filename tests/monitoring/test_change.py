"""Reliable change from baseline with the protocol's norm (alliance.monitoring.change), on frames made by hand."""

from __future__ import annotations

import copy
import math

import numpy as np
import pandas as pd
import pytest

from alliance import stats
from alliance.monitoring.change import (
    NOT_COMPUTED,
    NOT_CONFIGURED,
    OK,
    baseline_timepoint,
    change_from_baseline,
    resolve_norm,
)
from alliance.protocol import default_protocol, parse_protocol

Z = 1.959963984540054
RESPONSE_COLUMNS = ["participant_id", "timepoint", "instrument", "item", "value"]
NO_RESPONSES = pd.DataFrame(columns=RESPONSE_COLUMNS)


def _protocol(measures: dict, min_n: int = 10):
    raw = copy.deepcopy(default_protocol().to_dict())
    raw["reliable_change"] = {"alpha": 0.05, "min_n": min_n, "measures": measures}
    return parse_protocol(raw)


def _hamd(sd=5.0, reliability=0.5, **keys) -> dict:
    return {"grid_hamd17.total": {"lower_is_better": True, "sd": sd, "reliability": reliability,
                                  "source": "hand-made", **keys}}


def _scores(rows, instrument="grid_hamd17", scale="total") -> pd.DataFrame:
    return pd.DataFrame([{"participant_id": p, "timepoint": t, "instrument": instrument, "scale": scale, "value": v}
                         for p, t, v in rows], columns=["participant_id", "timepoint", "instrument", "scale", "value"])


def _wai_responses(answers: dict[str, list[float]], timepoint="prep") -> pd.DataFrame:
    return pd.DataFrame([{"participant_id": p, "timepoint": timepoint, "instrument": "wai_sr",
                          "item": f"wai_sr_{i + 1}", "value": v} for p, values in answers.items()
                         for i, v in enumerate(values)], columns=RESPONSE_COLUMNS)


def test_baseline_is_the_first_timepoint_that_gives_the_instrument():
    protocol = default_protocol()
    assert baseline_timepoint(protocol, "grid_hamd17") == "baseline"
    assert baseline_timepoint(protocol, "wai_sr") == "prep"  # the first alliance timepoint
    assert baseline_timepoint(protocol, "phq9") is None


def test_protocol_numbers_and_per_participant_change():
    # sd 5, reliability .5: S_diff = 5 · √(2 · .5) = 5; threshold = 1.959964 · 5 = 9.799820
    protocol = _protocol(_hamd())
    scores = _scores([("p1", "baseline", 24), ("p1", "week1", 10), ("p1", "week4", 20),
                      ("p2", "baseline", 20), ("p2", "week4", 30)])
    result = change_from_baseline(protocol, "grid_hamd17.total", scores, NO_RESPONSES)
    norm = result.norm
    assert (norm.status, norm.baseline, norm.n) == (OK, "baseline", 2)
    assert (norm.sd, norm.reliability) == (5.0, 0.5)
    assert norm.sd_from == norm.reliability_from == "protocol (source: hand-made)"
    assert norm.se_diff == 5.0 and norm.threshold == pytest.approx(5 * Z)
    table = result.table
    assert list(table.columns) == ["participant_id", "timepoint", "pre", "post", "change", "rci", "category"]
    # later timepoints that give the GRID-HAMD, in protocol order
    assert list(table["timepoint"][:5]) == ["week1", "week4", "month3", "month6", "month12"]
    p1 = table[table["participant_id"] == "p1"].set_index("timepoint")
    # p1: 24 → 10 = −14 (|−14| > 9.80, a decrease) → improvement; 24 → 20 = −4 → no reliable change
    assert p1.loc["week1", "change"] == -14 and p1.loc["week1", "rci"] == pytest.approx(-14 / 5)
    assert p1.loc["week1", "category"] == "reliable improvement"
    assert p1.loc["week4", "category"] == "no reliable change"
    assert p1.loc["month3", "category"] is None and math.isnan(p1.loc["month3", "rci"])
    p2 = table[table["participant_id"] == "p2"].set_index("timepoint")
    # p2: week1 missing → None, not guessed; 20 → 30 = +10 > 9.80 → deterioration
    assert p2.loc["week1", "category"] is None
    assert p2.loc["week4", "category"] == "reliable deterioration"
    assert result.to_dict()["table"][0]["participant_id"] == "p1"


def test_study_sd_from_the_baseline():
    # baseline 10, 20, 30: mean 20, SD = √((100 + 0 + 100) / 2) = 10; with reliability .5 S_diff = 10
    protocol = _protocol(_hamd(sd="study"), min_n=3)
    scores = _scores([("a", "baseline", 10), ("b", "baseline", 20), ("c", "baseline", 30), ("a", "week1", 35)])
    result = change_from_baseline(protocol, "grid_hamd17.total", scores, NO_RESPONSES)
    assert result.status == OK
    assert result.norm.sd == pytest.approx(10.0)
    assert result.norm.sd_from == "this study's baseline (baseline): SD of n = 3"
    assert result.norm.threshold == pytest.approx(10 * Z)
    # a: 10 → 35 = +25 > 19.6 → deterioration
    row = result.table[(result.table["participant_id"] == "a") & (result.table["timepoint"] == "week1")].iloc[0]
    assert row["category"] == "reliable deterioration"


def test_too_few_for_the_study_fallback_is_said_not_computed():
    protocol = _protocol(_hamd(sd="study"))  # min_n 10
    scores = _scores([("a", "baseline", 10), ("b", "baseline", 20), ("c", "baseline", 30), ("a", "week1", 5)])
    result = change_from_baseline(protocol, "grid_hamd17.total", scores, NO_RESPONSES)
    assert result.status == NOT_COMPUTED
    assert result.table.empty
    assert result.norm.sd is None and result.norm.threshold is None
    assert "which has 3 scores; at least 10 are needed" in result.notes[0]
    assert result.norm.sd_from == "this study's baseline (baseline): not computed, n = 3 < 10"


def test_study_alpha_of_the_first_alliance_timepoint():
    protocol = _protocol({"wai_sr.total": {"lower_is_better": False, "sd": 8, "reliability": "study",
                                           "source": "hand-made"}}, min_n=4)
    rng = np.random.default_rng(3)
    trait = rng.normal(3, 0.8, size=6)
    answers = {f"p{i}": list(np.clip(np.round(t + rng.normal(0, 0.5, size=12)), 1, 5)) for i, t in enumerate(trait)}
    responses = _wai_responses(answers)
    scores = _scores([(p, "prep", sum(v)) for p, v in answers.items()] + [("p0", "week1", sum(answers["p0"]) + 10)],
                     instrument="wai_sr")
    result = change_from_baseline(protocol, "wai_sr.total", scores, responses)
    assert result.status == OK and result.norm.baseline == "prep"
    items = pd.DataFrame(answers).T
    items.columns = [f"wai_sr_{i + 1}" for i in range(12)]
    expected = stats.cronbach_alpha(items).alpha  # the direct call, tested against psych in tests/stats
    assert result.norm.reliability == pytest.approx(expected, rel=1e-12)
    assert result.norm.reliability_from == "this study's baseline (prep): Cronbach's alpha of n = 6 (k = 12 items)"
    # later alliance timepoints only: post_session1, week1; +10 for p0 (higher is better)
    assert set(result.table["timepoint"]) == {"post_session1", "week1"}
    threshold = Z * 8 * math.sqrt(2 * (1 - expected))
    row = result.table[(result.table["participant_id"] == "p0") & (result.table["timepoint"] == "week1")].iloc[0]
    assert row["category"] == ("reliable improvement" if 10 > threshold else "no reliable change")


def test_unusable_alpha_is_said_not_computed():
    protocol = _protocol({"wai_sr.total": {"lower_is_better": False, "sd": 8, "reliability": "study",
                                           "source": "hand-made"}}, min_n=3)
    # every participant gives one answer to all 12 items: the items agree perfectly, alpha = 1
    answers = {"a": [2.0] * 12, "b": [3.0] * 12, "c": [5.0] * 12}
    scores = _scores([(p, "prep", sum(v)) for p, v in answers.items()], instrument="wai_sr")
    result = resolve_norm(protocol, "wai_sr.total", scores, _wai_responses(answers))
    assert result.status == NOT_COMPUTED
    assert "is 1.000, not a usable reliability" in result.notes[0]
    # odd and even items disagree: alpha = −152.0, not a reliability
    answers = {"a": [1.0, 5.0] * 6, "b": [5.0, 1.0] * 6, "c": [3.0] * 11 + [4.0], "d": [2.0, 4.0] * 6}
    result = resolve_norm(protocol, "wai_sr.total", scores, _wai_responses(answers))
    assert result.status == NOT_COMPUTED
    assert "items is -152.000, not a usable reliability" in result.notes[0]
    # too few participants with answers
    result = resolve_norm(protocol, "wai_sr.total", scores, _wai_responses({"a": [2.0] * 12}))
    assert result.status == NOT_COMPUTED
    assert "item answers of 1 participant; at least 3 are needed" in result.notes[0]


def test_items_nobody_varies_on_are_left_out_of_alpha_with_a_note():
    protocol = _protocol({"wai_sr.total": {"lower_is_better": False, "sd": 8, "reliability": "study",
                                           "source": "hand-made"}}, min_n=3)
    # item 12 is 5 for everyone; the other eleven: a = 2, b = 3, c = 5 → those agree perfectly
    answers = {"a": [2.0] * 11 + [5.0], "b": [3.0] * 11 + [5.0], "c": [4.0, 5.0] * 5 + [4.0, 5.0]}
    scores = _scores([(p, "prep", sum(v)) for p, v in answers.items()], instrument="wai_sr")
    result = resolve_norm(protocol, "wai_sr.total", scores, _wai_responses(answers))
    items = pd.DataFrame(answers).T.iloc[:, :11]
    items.columns = [f"wai_sr_{i + 1}" for i in range(11)]
    assert result.notes[0] == ("items wai_sr_12 do not vary at prep and were left out of Cronbach's alpha "
                               "(as psych::alpha drops them)")
    assert result.reliability == pytest.approx(stats.cronbach_alpha(items).alpha, rel=1e-12)
    assert result.reliability_from.endswith("(k = 11 items)")


def test_a_measure_without_an_entry_is_not_configured():
    protocol = _protocol(_hamd())
    result = change_from_baseline(protocol, "wai_sr.total", _scores([]), NO_RESPONSES)
    assert result.status == NOT_CONFIGURED
    assert result.notes == ("the protocol's reliable_change section has no entry for wai_sr.total "
                            "(it has grid_hamd17.total)",)


def test_norms_give_the_jacobson_truax_categories():
    # cut-off a = 22 − 2 · 4 = 14; threshold 9.80 (sd 5, reliability .5)
    protocol = _protocol(_hamd(norms={"dysfunctional": {"mean": 22, "sd": 4}, "source": "hand-made norms"}))
    scores = _scores([("p1", "baseline", 24), ("p1", "week1", 10),    # −14, 10 < 14 → recovered
                      ("p2", "baseline", 28), ("p2", "week1", 16),    # −12, 16 ≥ 14 → improved
                      ("p3", "baseline", 20), ("p3", "week1", 18)])   # −2 → unchanged
    result = change_from_baseline(protocol, "grid_hamd17.total", scores, NO_RESPONSES)
    assert result.norm.cutoff["a"] == 14.0 and result.norm.cutoff["recommended"] == "a"
    assert result.norm.cutoff["source"] == "hand-made norms"
    week1 = result.table[result.table["timepoint"] == "week1"]
    assert list(week1["clinical_category"]) == ["recovered", "improved", "unchanged"]


def test_input_tables_are_checked():
    with pytest.raises(ValueError, match="scores lacks columns \\['scale'\\]"):
        resolve_norm(default_protocol(), "grid_hamd17.total",
                     pd.DataFrame(columns=["participant_id", "timepoint", "instrument", "value"]), NO_RESPONSES)
