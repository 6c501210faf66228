"""The held-out Machines model against lme4/lmerTest/pbkrtest (``reference/mixed_general.json``).

nlme's ``Machines`` (6 workers × 3 machines × 3 scores), ``score ~ Machine + (1|Worker) +
(1|Worker:Machine)``: crossed-and-nested terms with a factor in the fixed part, a shape no other
reference covers and the fitters were not tuned on (``mixed_general.R``, section ``held_out``).
Tolerances of ``reference/README.md``: estimates, SEs and variance components 1e-4 relative,
Satterthwaite and Kenward–Roger df 1e-3 relative, the log-likelihoods 1e-6 absolute.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from alliance.stats import mixedlm
from alliance.stats.mixed import anova, kenward_roger

REFERENCE = Path(__file__).parent / "reference"
HELD_OUT = {case["name"]: case for case in
            json.loads((REFERENCE / "mixed_general.json").read_text(encoding="utf-8"))["held_out"]}
MACHINES = HELD_OUT["machines"]


@pytest.fixture(scope="module")
def machines():
    data = pd.read_csv(REFERENCE / "data" / MACHINES["data"])
    return mixedlm(MACHINES["formula"], data), data


def test_loglik_theta_and_groups(machines):
    fit, data = machines
    assert fit.loglik == pytest.approx(MACHINES["reml_loglik"], abs=1e-6)
    assert mixedlm(MACHINES["formula"], data, reml=False).loglik == pytest.approx(MACHINES["ml_loglik"], abs=1e-6)
    assert np.allclose(fit.theta, list(MACHINES["theta"].values()), rtol=1e-4)
    assert fit.groups == MACHINES["ngrps"] and fit.n_obs == MACHINES["nobs"]
    assert fit.singular == MACHINES["isSingular"]


def test_variance_components(machines):
    fit, _ = machines
    theirs = pd.DataFrame(MACHINES["varcomp"])
    assert fit.varcomp["group"].tolist() == theirs["grp"].tolist()   # Worker:Machine (18 levels) first
    assert np.allclose(fit.varcomp["vcov"], theirs["vcov"], rtol=1e-4)
    assert np.allclose(fit.varcomp["sdcor"], theirs["sdcor"], rtol=1e-4)


def test_fixed_effects_with_satterthwaite_and_kenward_roger_df(machines):
    fit, data = machines
    theirs = pd.DataFrame(MACHINES["fixed"]).set_index("term")
    assert list(fit.fixed.index) == list(theirs.index)
    for column in ("estimate", "se"):
        assert np.allclose(fit.fixed[column], theirs[column], rtol=1e-4)
    assert np.allclose(fit.fixed["df"], theirs["df"], rtol=1e-3)
    assert np.allclose(fit.fixed["p"], theirs["p"], rtol=1e-3, atol=1e-10)
    kr, theirs_kr = kenward_roger(fit, data), pd.DataFrame(MACHINES["fixed_kr"]).set_index("term")
    assert np.allclose(kr["se"], theirs_kr["se"], rtol=1e-4)
    assert np.allclose(kr["df"], theirs_kr["df"], rtol=1e-3)


@pytest.mark.parametrize(("ddf", "key"), [("satterthwaite", "anova3"), ("kenward-roger", "anova3_kr")])
def test_type_3_anova(machines, ddf, key):
    fit, data = machines
    theirs = pd.DataFrame(MACHINES[key]).set_index("term")
    ours = anova(fit, data, ddf=ddf)
    assert list(ours.index) == list(theirs.index)
    assert ours["num_df"].tolist() == theirs["num_df"].tolist()
    assert np.allclose(ours["F"], theirs["F"], rtol=1e-4)
    assert np.allclose(ours["den_df"], theirs["den_df"], rtol=1e-3)
