"""Type III F tests (alliance.stats.mixed.anova) against ``lmerTest::anova(m, type = 3)``.

``reference/anova3.R`` (R 4.2.2, lmerTest 3.1-3): models with a factor × factor and a numeric ×
factor interaction, with Satterthwaite and Kenward–Roger df, where type III differs from the test
of the treatment-coded coefficients (the main effect of a term in an interaction is averaged over
the other factor's levels). The models without interactions are in ``test_mixed_reference.py``
and ``test_kenward_roger.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from alliance.stats import mixedlm
from alliance.stats.mixed import anova

REFERENCE = Path(__file__).parent / "reference"
CASES = json.loads((REFERENCE / "anova3.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("case", CASES, ids=[c["formula"] for c in CASES])
@pytest.mark.parametrize(("ddf", "key"), [("satterthwaite", "satterthwaite"), ("kenward-roger", "kenward_roger")])
def test_type_3_tables(case, ddf, key):
    data = pd.read_csv(REFERENCE / "data" / case["data"])
    data["visit"] = "w" + data["week"].astype(str)
    fit = mixedlm(case["formula"], data)
    ours = anova(fit, data, ddf=ddf)
    theirs = pd.DataFrame(case[key]).set_index("term")
    assert list(ours.index) == list(theirs.index)
    assert (ours["num_df"].to_numpy() == theirs["num_df"].to_numpy()).all()
    assert ours["F"].to_numpy() == pytest.approx(theirs["F"].to_numpy(), rel=1e-4)
    assert ours["den_df"].to_numpy() == pytest.approx(theirs["den_df"].to_numpy(), rel=1e-3)
    assert ours["p"].to_numpy() == pytest.approx(theirs["p"].to_numpy(), rel=1e-3, abs=1e-10)


def test_an_unknown_ddf_is_refused():
    data = pd.read_csv(REFERENCE / "data" / "membership.csv")
    fit = mixedlm("y ~ week * arm + (1|participant)", data)
    with pytest.raises(ValueError, match="allowed: satterthwaite, kenward-roger"):
        anova(fit, data, ddf="containment")
