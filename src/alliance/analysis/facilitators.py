"""Facilitator effects: how much of alliance and outcome lies between facilitators, and what is left.

Levin et al. (2024) name as a limitation that they could not control for facilitator effects; in
psychotherapy much of the alliance–outcome link lies between therapists (Baldwin, Wampold & Imel
2007; Del Re et al. 2021). A PAT participant works with two facilitators, so the facilitator term
is a **multiple membership** (Browne, Goldstein & Rasbash 2001): each participant's facilitator
effect is the mean of their facilitators' effects, ``(1 | mm(facilitator_1, facilitator_2))``
(:func:`alliance.stats.mixedlm`); ``primary`` uses the first facilitator listed instead.

For one alliance measure x and one outcome y (one score per participant each):

- **intraclass correlations** at the facilitator level, of x and of y:
  ``value ~ 1 + (1 | facilitators)``, ICC = σ²_facilitator / (σ²_facilitator + σ²_residual);
- the **association** ``y ~ x + (1 | facilitators)``, with the membership and with the primary
  facilitator (both reported; the plan's ``membership`` says which is the main one);
- the **decomposition** of x into its between-facilitator part (for each participant, the mean
  over their facilitators of each facilitator's mean x across all of that facilitator's
  participants: facilitator-mean centring, Falkenström et al. 2013) and the within-facilitator
  rest, ``y ~ x_within + x_between + (1 | facilitators)``;
- the **facilitator effects** of the main association model (conditional modes and SDs), for a
  caterpillar plot.

With a trial of 24 participants and a few facilitators these estimates are weak: singular fits
(a facilitator variance of zero) and wide intervals are reported as they are, with a note.

References
----------
Baldwin SA, Wampold BE, Imel ZE (2007). Untangling the alliance–outcome correlation. J Consult
Clin Psychol 75(6):842-852. Browne WJ, Goldstein H, Rasbash J (2001). Multiple membership multiple
classification (MMMC) models. Stat Model 1(2):103-124. Falkenström F, Granström F, Holmqvist R
(2013). Therapeutic alliance predicts symptomatic improvement session by session. J Couns Psychol
60(3):317-328. Del Re AC, Flückiger C, Horvath AO, Wampold BE (2021). Examining therapist effects
in the alliance–outcome relationship: a multilevel meta-analysis. J Consult Clin Psychol
89(5):371-378.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from alliance import stats

# Below these, a facilitator-level estimate rests on too little to be more than a description.
FEW_FACILITATORS = 10
FEW_PARTICIPANTS = 30


def facilitator_lists(ids: pd.Series) -> pd.Series:
    """``"F1;F3"`` → ``["F1", "F3"]`` per participant (empty list when none are recorded)."""
    return ids.map(lambda v: [p.strip() for p in str(v).split(";") if p.strip()] if pd.notna(v) else [])


def _frame(x: pd.Series, y: pd.Series | None, facilitators: pd.Series) -> tuple[pd.DataFrame, list[str]]:
    lists = facilitators.reindex(x.index)
    width = max((len(v) for v in lists if isinstance(v, list)), default=0)
    columns = [f"facilitator_{k + 1}" for k in range(width)]
    data = pd.DataFrame({"x": x.astype(float)}, index=x.index)
    if y is not None:
        data["y"] = y.reindex(x.index).astype(float)
    for k, column in enumerate(columns):
        data[column] = [v[k] if isinstance(v, list) and len(v) > k else None for v in lists]
    keep = data["x"].notna() & (data["y"].notna() if y is not None else True)
    if columns:
        keep &= data[columns[0]].notna()
    return data[keep], columns


def _term(columns: list[str], membership: str) -> str:
    if membership == "primary" or len(columns) == 1:
        return f"(1 | {columns[0]})"
    return f"(1 | mm({', '.join(columns)}))"


def _fixed_row(model, term: str) -> dict[str, Any]:
    row = model.fixed.loc[term]
    return {"term": term, **{k: float(row[k]) for k in ("estimate", "se", "df", "t", "p")}}


def _model_summary(model) -> dict[str, Any]:
    return {"formula": model.formula, "n_obs": model.n_obs, "loglik": model.loglik, "singular": model.singular,
            "converged": model.converged, "fixed": model.to_dict()["fixed"], "varcomp": model.to_dict()["varcomp"],
            "notes": list(model.notes)}


def _icc(values: pd.Series, facilitators: pd.Series, membership: str) -> dict[str, Any]:
    data, columns = _frame(values, None, facilitators)
    model = stats.mixedlm(f"x ~ 1 + {_term(columns, membership)}", data)
    varcomp = model.varcomp.set_index("group")
    between = float(varcomp.iloc[0]["vcov"])
    residual = float(varcomp.loc["Residual", "vcov"])
    return {"n": int(len(data)), "var_facilitator": between, "var_residual": residual,
            "icc": between / (between + residual), "singular": model.singular, "notes": list(model.notes)}


def facilitator_effects(x: pd.Series, y: pd.Series, facilitators: pd.Series, *,
                        membership: str = "multiple") -> dict[str, Any]:
    """The facilitator analyses of one alliance measure and one outcome (module docstring).

    Parameters
    ----------
    x, y : Series
        One score per participant (index: participant id); missing values are left out.
    facilitators : Series
        Each participant's facilitators, a list of ids (:func:`facilitator_lists`).
    membership : {"multiple", "primary"}
        Which facilitator model is the main one (both are fitted).

    Returns
    -------
    dict
        JSON-ready: ``n``, ``n_facilitators``, ``participants_per_facilitator`` (min, median,
        max), ``icc_x``, ``icc_y``, ``association`` (main), ``association_alternative``,
        ``decomposition`` (rows for ``x_within`` and ``x_between``), ``effects`` (facilitator,
        condval, condsd, n), ``notes``.

    Raises
    ------
    ValueError
        When fewer than two facilitators or too few participants remain.
    """
    data, columns = _frame(x, y, facilitators)
    if not columns:
        raise ValueError("no facilitator is recorded for any participant with both scores")
    members = pd.concat([data[c] for c in columns]).dropna()
    counts = members.value_counts()
    if len(counts) < 2:
        raise ValueError(f"{len(counts)} facilitator(s) among the participants with both scores; at least 2 needed")
    other = "primary" if membership == "multiple" else "multiple"
    main = stats.mixedlm(f"y ~ x + {_term(columns, membership)}", data)
    alternative = stats.mixedlm(f"y ~ x + {_term(columns, other)}", data)
    # facilitator-mean centring: each facilitator's mean x over their participants, then each
    # participant's mean over their facilitators (the primary only, for membership "primary")
    used = columns[:1] if membership == "primary" else columns
    long = pd.concat([pd.DataFrame({"facilitator": data[c], "x": data["x"]}) for c in used]).dropna()
    means = long.groupby("facilitator")["x"].mean()
    between = pd.concat([data[c].map(means) for c in used], axis=1).mean(axis=1, skipna=True)
    decomposed = data.assign(x_between=between, x_within=data["x"] - between)
    split = stats.mixedlm(f"y ~ x_within + x_between + {_term(columns, membership)}", decomposed)
    effects = main.ranef()
    effects = [] if effects is None else [
        {"facilitator": row.grp, "condval": float(row.condval), "condsd": float(row.condsd),
         "n": int(counts.get(row.grp, 0))}
        for row in effects.itertuples() if row.grpvar != "Residual"]
    notes = []
    if len(counts) < FEW_FACILITATORS or len(data) < FEW_PARTICIPANTS:
        notes.append(f"fewer than {FEW_PARTICIPANTS} participants or {FEW_FACILITATORS} facilitators: "
                     "facilitator-level estimates rest on very little and their intervals are wide; read them as "
                     "a description, not a test")
    if main.singular:
        notes.append("the facilitator variance is estimated as zero (a singular fit): these data show no "
                     "facilitator effect, which with so few facilitators does not mean there is none")
    return {
        "n": int(len(data)), "n_facilitators": int(len(counts)),
        "participants_per_facilitator": {"min": int(counts.min()), "median": float(counts.median()),
                                         "max": int(counts.max())},
        "membership": membership,
        "icc_x": _icc(data["x"], facilitators, membership),
        "icc_y": _icc(data["y"], facilitators, membership),
        "association": {**_model_summary(main), "x": _fixed_row(main, "x")},
        "association_alternative": {**_model_summary(alternative), "x": _fixed_row(alternative, "x"),
                                    "membership": other},
        "decomposition": {**_model_summary(split), "x_within": _fixed_row(split, "x_within"),
                          "x_between": _fixed_row(split, "x_between")},
        "effects": sorted(effects, key=lambda e: e["condval"]),
        "notes": notes,
    }
