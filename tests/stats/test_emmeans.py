"""Estimated marginal means and their contrasts against R's emmeans (``reference/emmeans.json``).

``reference/emmeans.R``: ``lmer(y ~ visit * arm + (1|participant))`` on the membership data set
(visit = "w" + week), ``emmeans(m, ~ visit | arm, lmer.df = "satterthwaite")``, ``~ arm``
(averaged over visits with equal weights), ``contrast(emm, "trt.vs.ctrl", ref = 1, adjust = "holm")``
and ``contrast(emm, "pairwise", adjust = "BH")`` (emmeans 1.8.x, R 4.2.2).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from alliance.stats import mixedlm
from alliance.stats.mixed import emmeans, emmeans_contrasts

REFERENCE = Path(__file__).parent / "reference"
REF = json.loads((REFERENCE / "emmeans.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def model():
    data = pd.read_csv(REFERENCE / "data" / REF["data"])
    data["visit"] = "w" + data["week"].astype(str)
    return mixedlm(REF["formula"], data), data


def test_marginal_means_by_arm(model):
    fit, data = model
    ours, theirs = emmeans(fit, data, "visit", by="arm"), pd.DataFrame(REF["emmeans"])
    assert ours["visit"].astype(str).tolist() == theirs["visit"].tolist()
    assert ours["arm"].astype(str).tolist() == theirs["arm"].tolist()
    assert np.allclose(ours["emmean"], theirs["emmean"], rtol=1e-6)
    assert np.allclose(ours["se"], theirs["SE"], rtol=1e-4)
    assert np.allclose(ours["df"], theirs["df"], rtol=1e-3)
    assert np.allclose(ours["lower"], theirs["lower.CL"], rtol=1e-4)


def test_means_averaged_over_the_other_factor(model):
    fit, data = model
    ours, theirs = emmeans(fit, data, "arm"), pd.DataFrame(REF["emmeans_arm"])
    assert np.allclose(ours["emmean"], theirs["emmean"], rtol=1e-6)
    assert np.allclose(ours["df"], theirs["df"], rtol=1e-3)


@pytest.mark.parametrize(("method", "adjust", "key"), [("trt.vs.ctrl", "holm", "trt_vs_ctrl_holm"),
                                                        ("pairwise", "bh", "pairwise_bh")])
def test_contrasts_with_adjusted_p_within_each_arm(model, method, adjust, key):
    fit, data = model
    ours = emmeans_contrasts(fit, data, "visit", by="arm", method=method, adjust=adjust)
    theirs = pd.DataFrame(REF[key])
    assert ours["contrast"].tolist() == theirs["contrast"].tolist()
    assert np.allclose(ours["estimate"], theirs["estimate"], rtol=1e-6, atol=1e-10)
    assert np.allclose(ours["df"], theirs["df"], rtol=1e-3)
    assert np.allclose(ours["p"], theirs["p.value"], rtol=1e-3, atol=1e-10)


def test_what_is_not_a_factor_is_refused(model):
    fit, data = model
    with pytest.raises(ValueError, match="'week' is not a factor"):
        emmeans(fit, data, "week")
    with pytest.raises(ValueError, match="method 'dunnett' is not supported"):
        emmeans_contrasts(fit, data, "visit", method="dunnett")
