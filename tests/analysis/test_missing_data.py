"""The plan's missing-data choices: each number is the alliance.stats call on the same columns."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest

from alliance import stats
from alliance.analysis import run_analysis
from alliance.protocol import default_protocol, parse_analysis_plan

from .conftest import FIXED_TIME


def _frame(study, names):
    participants = study.participants["participant_id"].astype(str)
    wide = study.measures(wide=True)
    if "participant_id" in wide.columns:
        wide = wide.set_index("participant_id")
    wide = wide.reindex(participants)
    return pd.DataFrame({name: pd.to_numeric(wide[name], errors="coerce") if name in wide.columns else np.nan
                         for name in names}, index=wide.index)


def test_confirmatory_correlations_carry_fiml_and_mi_equal_to_the_direct_calls(levin_study, levin_results):
    entries = levin_results.find("correlations", analysis="alliance_prep_outcome")
    assert len(entries) == 4
    columns = list(dict.fromkeys(name for e in entries for name in (e["x"], e["y"])))
    frame = _frame(levin_study, columns)
    fiml = stats.correlation_matrix(frame, columns, missing="fiml")
    seed = levin_results.provenance["seed"]
    for entry in entries:
        assert entry["missing"] == "pairwise" and set(entry["missing_data"]) == {"fiml", "mi"}
        if "skipped" in entry["missing_data"]["fiml"]:
            continue
        pair = fiml.pair(entry["x"], entry["y"])
        assert entry["missing_data"]["fiml"]["r"] == pair["r"] and entry["missing_data"]["fiml"]["p"] == pair["p"]
        others = [name for name in columns if name not in (entry["x"], entry["y"])]
        mi = stats.mi_correlation(frame, entry["x"], entry["y"], auxiliary=others, m=50, seed=seed)
        assert entry["missing_data"]["mi"]["r"] == mi.r and entry["missing_data"]["mi"]["p"] == mi.p
        # FIML uses every participant with any of the analysis's measures; pairwise only the complete pairs
        assert entry["missing_data"]["fiml"]["n"] >= entry["n"]


def test_only_the_primary_association_gets_the_tipping_point(levin_results):
    with_tipping = [e for e in levin_results.correlations if "tipping_point" in e]
    assert [(e["x"], e["y"]) for e in with_tipping] == [("wai_sr.total@prep", "grid_hamd17.total@week4")]
    tipping = with_tipping[0]["tipping_point"]
    assert tipping["y"] == "grid_hamd17.total@week4"  # the outcome's imputed values are shifted
    zero = next(row for row in tipping["table"] if row["delta"] == 0.0)
    # at delta = 0 the tipping analysis is the MAR multiple imputation of the same pair
    assert zero["r"] == pytest.approx(with_tipping[0]["missing_data"]["mi"]["r"], rel=1e-12)


def test_exploratory_mediation_has_fiml_beside_the_bootstrap(levin_study, levin_results):
    entry = next(e for e in levin_results.mediation if "skipped" not in e)
    assert entry["missing"] == "listwise" and entry["ci_method"] in ("percentile", "bca")
    fiml = entry["missing_data"]["fiml"]
    direct = stats.mediation(_frame(levin_study, [entry["x"], entry["m"], entry["y"]]), entry["x"], entry["m"],
                             entry["y"], missing="fiml")
    assert fiml["indirect"] == direct.indirect and fiml["indirect_se"] == direct.indirect_se
    assert fiml["ci_method"] == "delta"


def test_fiml_as_the_analysis_own_method(levin_study):
    plan = copy.deepcopy(default_protocol().analysis.to_dict())
    (target,) = [a for a in plan["analyses"] if a["id"] == "alliance_prep_outcome"]
    target["missing"] = "fiml"
    target["missing_sensitivity"] = ["pairwise"]
    results = run_analysis(levin_study, parse_analysis_plan(plan, origin="plan.yaml"), created_utc=FIXED_TIME)
    entry = results.find("correlations", analysis="alliance_prep_outcome", y="grid_hamd17.total@week4")[0]
    assert entry["missing"] == "fiml"
    columns = ["wai_sr.total@prep", "grid_hamd17.total@week4", "grid_hamd17.total@month3",
               "grid_hamd17.total@month6", "grid_hamd17.total@month12"]
    direct = stats.correlation_matrix(_frame(levin_study, columns), columns, missing="fiml").pair(
        "wai_sr.total@prep", "grid_hamd17.total@week4")
    assert entry["r"] == direct["r"] and entry["p"] == direct["p"] and entry["n"] == direct["n"]
    # Holm is applied to the FIML p of the family
    family = results.find("correlations", family="alliance_prep_outcome")
    assert entry["p_adjusted"] == stats.adjust_pvalues([e["p"] for e in family], method="holm")[
        family.index(entry)]
