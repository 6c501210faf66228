"""The default plan's confirmatory tests are exactly the published ones listed in docs/analysis.md.

The list in the documentation cites the paper for each test; this test keeps the plan and the list
from drifting apart (a test added to or removed from either fails here).
"""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest

from alliance.protocol import ProtocolError, default_protocol, parse_analysis_plan

DOCS = Path(__file__).resolve().parents[2] / "docs" / "analysis.md"


def _documented() -> set[tuple[str, str]]:
    text = DOCS.read_text(encoding="utf-8")
    block = text.split("<!-- confirmatory-tests:start -->", 1)[1].split("<!-- confirmatory-tests:end -->", 1)[0]
    rows = set()
    for line in block.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) < 3 or cells[0] in ("family", "---"):
            continue
        test = re.search(r"`([^`]+)`", cells[1])
        assert test, line
        rows.add((cells[0], test.group(1)))
    return rows


def _label(section: str, entry: dict) -> str:
    if section == "alliance_change":
        return f"{entry['scale']}: {entry['from']} -> {entry['to']}"
    return f"{entry['x']} ~ {entry['y']}"


def test_the_documented_list_has_the_fourteen_published_tests():
    documented = _documented()
    assert len(documented) == 14
    assert ("alliance_prep_outcome", "wai_sr.total@prep ~ grid_hamd17.total@week4") in documented


def test_default_plan_runs_exactly_the_documented_confirmatory_tests(levin_results):
    ran = set()
    for section in ("alliance_change", "correlations", "partial_correlations", "mediation", "mixed_models",
                    "outcomes", "reliable_change", "reliability", "facilitator_effects", "alliance_agreement"):
        for entry in getattr(levin_results, section):
            assert entry["role"] in ("confirmatory", "exploratory"), (section, entry)
            if entry["role"] == "confirmatory":
                assert section in ("alliance_change", "correlations"), (section, entry["analysis"])
                ran.add((entry["family"], _label(section, entry)))
    assert ran == _documented()


def test_confirmatory_families_are_the_papers_questions(levin_results):
    families = levin_results.provenance["families"]
    confirmatory = {name: family["m"] for name, family in families.items() if family["role"] == "confirmatory"}
    assert confirmatory == {"alliance_change": 1, "alliance_acute": 2, "acute_outcome": 3,
                            "alliance_prep_outcome": 4, "alliance_post_outcome": 4}
    # Holm within a family of one leaves p unchanged: the published change test keeps its raw p
    (change,) = [e for e in levin_results.alliance_change if e["role"] == "confirmatory"]
    assert change["p_adjusted"] == change["p"]
    # every other family is exploratory and no exploratory family repeats a confirmatory test
    exploratory = {(e["x"], e["y"]) for e in levin_results.correlations if e["role"] == "exploratory"}
    assert not exploratory & {(e["x"], e["y"]) for e in levin_results.correlations if e["role"] == "confirmatory"}


def test_a_family_with_two_roles_is_refused():
    plan = copy.deepcopy(default_protocol().analysis.to_dict())
    for analysis in plan["analyses"]:
        if analysis["id"] == "alliance_acute_exploratory":
            analysis["family"] = "alliance_acute"
    with pytest.raises(ProtocolError) as error:
        parse_analysis_plan(plan, origin="plan.yaml")
    message = str(error.value)
    assert "family 'alliance_acute' mixes confirmatory and exploratory analyses" in message
    assert "confirmatory: alliance_acute; exploratory: alliance_acute_exploratory" in message


@pytest.mark.parametrize(("change", "expected"), [
    ({"role": "primary"}, "'primary' is not one of the choices"),
    ({"missing": "fiml", "missing_sensitivity": ["pairwise", "mi"]}, None),
    ({"missing": "listwise"}, "'listwise' is not one of the choices"),
    ({"missing_sensitivity": ["pairwise"]}, "is the analysis's own method"),
    ({"missing_sensitivity": ["fiml", "fiml"]}, "names a method twice"),
    ({"missing_sensitivity": ["bootstrap"]}, "is not a missing-data method of this type"),
])
def test_role_and_missing_keys_are_checked(change, expected):
    plan = copy.deepcopy(default_protocol().analysis.to_dict())
    (target,) = [a for a in plan["analyses"] if a["id"] == "alliance_acute"]
    target.update(change)
    if expected is None:
        parsed = parse_analysis_plan(plan, origin="plan.yaml")
        assert next(a for a in parsed.analyses if a.id == "alliance_acute").missing == "fiml"
        return
    with pytest.raises(ProtocolError) as error:
        parse_analysis_plan(plan, origin="plan.yaml")
    assert "analysis.analyses[1] (alliance_acute)" in str(error.value) and expected in str(error.value)


def test_n_imputations_is_checked():
    plan = copy.deepcopy(default_protocol().analysis.to_dict())
    plan["n_imputations"] = 1
    with pytest.raises(ProtocolError, match=r"n_imputations'?: value 1 is not a whole number from 2 to 1000"):
        parse_analysis_plan(plan, origin="plan.yaml")
