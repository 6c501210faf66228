"""The results narrative: sentences from numbers (APA), small-n refusals, the confirmatory table."""

from __future__ import annotations

from alliance.protocol import default_protocol
from alliance.report.labels import Labels
from alliance.report.narrative import (
    MIN_N_FINDING,
    change_sentence,
    correlation_sentence,
    findings_paragraphs,
)

LABELS = Labels(default_protocol())


def _entry(**values):
    base = {"analysis": "alliance_prep_outcome", "role": "confirmatory", "family": "alliance_prep_outcome",
            "x": "wai_sr.total@prep", "y": "grid_hamd17.total@week4", "n": 24, "r": -0.65, "p": 0.0017,
            "ci_low": -0.835, "ci_high": -0.337, "p_adjusted": 0.0068}
    return {**base, **values}


def test_a_significant_negative_correlation():
    assert correlation_sentence(_entry(), LABELS) == (
        "WAI-SR total at the final preparation session was negatively associated with GRID-HAMD-17 at 4 weeks "
        "after session 2, r(22) = \u2212.65, 95% CI [\u2212.83, \u2212.34], p = .002.")


def test_a_non_significant_correlation_and_p_below_001():
    text = correlation_sentence(_entry(r=0.12, p=0.576, ci_low=-0.30, ci_high=0.50), LABELS)
    assert text.endswith("was not significantly associated with GRID-HAMD-17 at 4 weeks after session 2, "
                         "r(22) = .12, 95% CI [\u2212.30, .50], p = .576.")
    assert "p < .001." in correlation_sentence(_entry(p=0.00002), LABELS)


def test_peak_measures_read_naturally():
    text = correlation_sentence(_entry(x="meq30.total@peak", r=0.49, p=0.027, ci_low=0.1, ci_high=0.75), LABELS)
    assert text.startswith("Peak MEQ30 total was positively associated with GRID-HAMD-17")


def test_below_the_minimum_n_no_r_is_reported():
    text = correlation_sentence(_entry(n=3, r=-0.94, p=0.22), LABELS)
    assert "not interpreted, n = 3" in text and f"at least {MIN_N_FINDING}" in text
    assert "\u2212.94" not in text


def test_the_change_sentence():
    entry = {"scale": "wai_sr.total", "from": "prep", "to": "week1", "n": 23, "mean_diff": 1.73, "ci_low": -0.42,
             "ci_high": 3.89, "t": 1.67, "df": 22, "p": 0.109, "cohen_dz": 0.35}
    assert change_sentence(entry, LABELS) == (
        "WAI-SR total did not change significantly from the final preparation session to 1 week after session 2 "
        "(mean difference 1.73, 95% CI [\u22120.42, 3.89]; n = 23), t(22) = 1.67, p = .109, dz = 0.35.")
    assert change_sentence({**entry, "p": 0.03}, LABELS).startswith("WAI-SR total increased from")


def test_findings_paragraphs_of_a_run(levin_results):
    paragraphs = findings_paragraphs(levin_results, LABELS)
    assert paragraphs[0].startswith("Confirmatory tests (the 14 tests Levin et al. 2024 report")
    assert any(p.startswith("Missing data:") for p in paragraphs)
    assert any(p.startswith("Tipping point:") for p in paragraphs)
    assert paragraphs[-1].startswith("Exploratory tests (") or "not interpreted" in paragraphs[-1]
    # no Python reprs in the text
    assert not any(token in p for p in paragraphs for token in ("['", "{'", "None", "nan"))
