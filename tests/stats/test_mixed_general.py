"""Mixed models with any random-effects terms (alliance.stats._lmm_sparse): identities that must hold.

The comparisons with R are in ``test_mixed_reference.py`` (lme4/lmerTest output in
``reference/mixed_general.json``); here, facts of the model that do not need R: the sparse fitter
gives the one-term fitter's answers (which equal lme4's, ``test_mixed.py``), a multiple membership
whose members are the same facilitator twice is the plain term, ``a/b`` is ``a + a:b``, ``||`` is
separate terms, and the two factorizations give the same deviance.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from alliance.stats import mixedlm
from alliance.stats._lmm_sparse import SparseDeviance, build_sparse_frame
from alliance.stats.mixed import _fit_general

REFERENCE = Path(__file__).parent / "reference"


@pytest.fixture(scope="module")
def sleepstudy() -> pd.DataFrame:
    return pd.read_csv(REFERENCE / "data" / "sleepstudy.csv")


def facilitated(participants=120, facilitators=15, visits=4, seed=5) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    first = rng.integers(0, facilitators, participants)
    second = (first + 1 + rng.integers(0, facilitators - 1, participants)) % facilitators
    pid = np.repeat(np.arange(participants), visits)
    week = np.tile(np.arange(visits), participants).astype(float)
    v = rng.normal(0, 0.6, facilitators)
    y = (1 + 0.4 * week + rng.normal(0, 1, participants)[pid] + 0.5 * (v[first[pid]] + v[second[pid]])
         + rng.normal(0, 1, pid.size))
    return pd.DataFrame({"y": y, "week": week, "participant": [f"p{i:03d}" for i in pid],
                         "site": [f"s{i % 6}" for i in pid],
                         "f1": [f"f{j:02d}" for j in first[pid]], "f2": [f"f{j:02d}" for j in second[pid]]})


def close(a, b, tol=1e-6):
    return np.allclose(np.asarray(a, dtype=float), np.asarray(b, dtype=float), rtol=tol, atol=tol)


@pytest.mark.parametrize("formula", ["Reaction ~ Days + (1 | Subject)", "Reaction ~ Days + (Days | Subject)"])
def test_the_sparse_fitter_gives_the_one_term_fitters_answers(sleepstudy, formula):
    one, general = mixedlm(formula, sleepstudy), _fit_general(formula, sleepstudy, True)
    assert abs(one.loglik - general.loglik) < 1e-8
    assert close(one.fixed[["estimate", "se"]], general.fixed[["estimate", "se"]], 1e-5)
    assert close(one.fixed["df"], general.fixed["df"], 1e-4)   # Richardson vs analytic derivatives
    assert close(one.varcomp["vcov"], general.varcomp["vcov"], 1e-5)


def test_uncorrelated_terms_are_separate_terms_with_lme4s_group_names(sleepstudy):
    double = mixedlm("Reaction ~ Days + (Days || Subject)", sleepstudy)
    separate = mixedlm("Reaction ~ Days + (1 | Subject) + (0 + Days | Subject)", sleepstudy)
    assert double.loglik == pytest.approx(separate.loglik, abs=1e-9)
    assert double.varcomp["group"].tolist() == ["Subject", "Subject.1", "Residual"]
    assert double.varcomp["var1"].tolist()[:2] == ["(Intercept)", "Days"]
    # no correlation: fits worse than the correlated model only by a little here
    assert double.loglik < mixedlm("Reaction ~ Days + (Days | Subject)", sleepstudy).loglik


def test_nesting_is_the_outer_term_plus_the_interaction():
    data = facilitated()
    nested = mixedlm("y ~ week + (1 | site/participant)", data)
    written = mixedlm("y ~ week + (1 | site) + (1 | site:participant)", data)
    assert nested.loglik == pytest.approx(written.loglik, abs=1e-9)
    # lme4 names the inner term participant:site and orders terms by decreasing levels
    assert nested.varcomp["group"].tolist() == ["participant:site", "site", "Residual"]
    assert nested.groups == {"participant:site": 120, "site": 6}


def test_a_membership_of_one_facilitator_twice_is_the_plain_term():
    data = facilitated()
    same = data.assign(f2=data["f1"])
    membership = mixedlm("y ~ week + (1 | participant) + (1 | mm(f1, f2))", same)
    plain = mixedlm("y ~ week + (1 | participant) + (1 | f1)", same)
    assert membership.loglik == pytest.approx(plain.loglik, abs=1e-8)
    assert close(membership.fixed["estimate"], plain.fixed["estimate"])
    assert membership.varcomp["group"].tolist() == ["participant", "mm(f1, f2)", "Residual"]


def test_a_missing_second_member_puts_the_whole_weight_on_the_first():
    data = facilitated()
    partial = data.copy()
    partial.loc[partial["participant"] < "p010", "f2"] = None
    explicit = partial.assign(w1=np.where(partial["f2"].isna(), 1.0, 0.5), w2=0.5)
    a = mixedlm("y ~ week + (1 | participant) + (1 | mm(f1, f2))", partial)
    b = mixedlm("y ~ week + (1 | participant) + (1 | mm(f1, f2, weights = cbind(w1, w2)))", explicit)
    assert a.n_obs == len(data)   # rows with one member are kept
    assert a.loglik == pytest.approx(b.loglik, abs=1e-8)


def test_membership_differs_from_the_first_facilitator_alone():
    data = facilitated()
    membership = mixedlm("y ~ week + (1 | participant) + (1 | mm(f1, f2))", data)
    first_only = mixedlm("y ~ week + (1 | participant) + (1 | f1)", data)
    assert membership.loglik > first_only.loglik   # the data were made with both facilitators


def test_the_two_factorizations_give_the_same_deviance():
    import cvxopt

    big = facilitated(participants=700, facilitators=40)
    frame = build_sparse_frame("y ~ week + (1 | participant) + (1 | mm(f1, f2))", big)
    fast = SparseDeviance(frame)
    assert not fast.dense
    layout = fast._schur_layout()
    assert layout is not None
    theta = np.array([0.8, 0.4])
    fast.schur, fast._cache = layout, {}
    by_hand = fast.profiled(theta)
    fast.schur, fast._cache = None, {}
    fast._cvx_rows = cvxopt.matrix(fast.rows.astype(np.int32).tolist(), tc="i")
    fast._cvx_cols = cvxopt.matrix(fast.cols.astype(np.int32).tolist(), tc="i")
    assert fast.profiled(theta) == pytest.approx(by_hand, rel=1e-12)


def test_a_zero_facilitator_variance_is_a_singular_fit_and_says_so():
    data = facilitated()
    data["y"] = data["y"] - data.groupby("f1")["y"].transform("mean") + data["y"].mean()
    fit = mixedlm("y ~ week + (1 | participant) + (1 | f1)", data)
    assert fit.singular and "f1" in fit.notes[0] and "singular" in fit.notes[0]
    assert fit.singular_terms == ("f1",)
    assert mixedlm("y ~ week + (1 | participant) + (1 | mm(f1, f2))", facilitated()).singular_terms == ()


def test_contrasts_and_f_tests_follow_lmertests_formulas(sleepstudy):
    fit = mixedlm("Reaction ~ Days + (Days | Subject)", sleepstudy)
    rows = fit.contrast({"Days": 1.0})
    assert rows.loc["0", "estimate"] == pytest.approx(fit.fixed.loc["Days", "estimate"])
    assert rows.loc["0", "df"] == pytest.approx(fit.fixed.loc["Days", "df"], rel=1e-8)
    # one row: F = t², the same df (lmerTest's anova(m) prints F 45.853 on 1 and 17 df for Days)
    one = fit.test({"Days": 1.0})
    assert one["num_df"] == 1 and one["F"] == pytest.approx(rows.loc["0", "t"] ** 2)
    assert one["den_df"] == pytest.approx(17.0, abs=1e-6) and one["F"] == pytest.approx(45.853, abs=1e-3)
    both = fit.test([[1.0, 0.0], [0.0, 1.0]])
    assert both["num_df"] == 2 and both["den_df"] == pytest.approx(17.0, abs=1e-6)
    with pytest.raises(ValueError, match="not fixed-effect terms"):
        fit.contrast({"Nights": 1.0})
    assert "_jacobian" not in fit.to_dict() and fit.to_dict()["vcov"]
