"""Participant–facilitator agreement on the alliance, and the discrepancy as a predictor.

The alliance has two sides: the participant's (WAI-SR) and each facilitator's (WAI-SR-T, rated
about that participant). Clients and therapists agree only moderately — r = .36 across studies
(Tryon, Blackwell & Hammel 2007) — and a gap between them is informative in its own right. For
one participant alliance measure (``wai_sr.total@prep``) and the facilitator-rated instrument's
same scale at the same timepoint (``wai_sr_t.total@prep``):

- **agreement**: the Pearson correlation between the participant's score and the mean of their
  facilitators' scores (participants are the independent units; each facilitator rates several
  participants and each participant has two facilitators, so a correlation over dyads is shown
  for description only); the **mean difference** participant − facilitators (paired t test) and
  its 95% **limits of agreement** (Bland & Altman 1986: mean ± 1.96 SD of the differences);
- the **discrepancy as a predictor** of each outcome: ``y ~ M + D`` with M = (participant +
  facilitators) / 2 the shared level and D = participant − facilitators (Bland–Altman axes). The
  coefficient of D is the discrepancy's association with the outcome at a given level of the
  alliance; the pair (M, D) is a rotation of (participant, facilitators), so the fit equals
  ``y ~ participant + facilitators``, without the confounding of a raw difference score
  (Edwards 1994 — polynomial response-surface models go further and need more participants than
  a PAT trial has).

References
----------
Tryon GS, Blackwell SC, Hammel EF (2007). A meta-analytic examination of client–therapist
perspectives of the working alliance. Psychother Res 17(6):629-642. Bland JM, Altman DG (1986).
Statistical methods for assessing agreement between two methods of clinical measurement. Lancet
1(8476):307-310. Edwards JR (1994). The study of congruence in organizational behavior research.
Organ Behav Hum Decis Process 58(1):51-100. Hatcher RL, Lindqvist K, Falkenström F (2020).
Psychotherapy Research 30(6):706-717 (the therapist WAI short forms).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as sps

from alliance import stats

__all__ = ["alliance_agreement"]

MINIMUM_PARTICIPANTS = 5
Z_975 = float(sps.norm.ppf(0.975))


def alliance_agreement(participant: pd.Series, ratings: pd.DataFrame,
                       outcomes: dict[str, pd.Series] | None = None) -> dict[str, Any]:
    """Agreement of the participant's and the facilitators' alliance scores, and the discrepancy.

    Parameters
    ----------
    participant : Series
        The participant's score, indexed by participant id.
    ratings : DataFrame
        One row per facilitator's score: ``participant_id``, ``rater`` (facilitator id),
        ``score`` (missing scores are left out).
    outcomes : dict, optional
        Outcome measure name → Series indexed by participant id, for the discrepancy models.

    Returns
    -------
    dict
        ``n`` (participants with both sides), ``n_dyads``, ``n_facilitators``, ``correlation``
        (``r, ci_low, ci_high, p``), ``dyad_correlation`` (``r, n``; descriptive),
        ``mean_difference`` (``estimate, ci_low, ci_high, t, df, p, sd, loa_low, loa_high``),
        ``participant_mean``, ``facilitator_mean``, ``discrepancy`` (per outcome: ``y, n,
        level`` and ``discrepancy`` each ``estimate, se, ci_low, ci_high, p``, ``r_squared``,
        ``notes``) and ``notes``.

    Raises
    ------
    ValueError
        With fewer than 5 participants rated on both sides.
    """
    ratings = ratings.dropna(subset=["score"])
    facilitators = ratings.groupby("participant_id", sort=False)["score"].mean()
    frame = pd.DataFrame({"p": participant.astype(float)}).join(facilitators.rename("f"), how="inner").dropna()
    n = len(frame)
    if n < MINIMUM_PARTICIPANTS:
        raise ValueError(f"agreement needs at least {MINIMUM_PARTICIPANTS} participants rated by themselves and "
                         f"by a facilitator; {n} are")
    dyads = ratings[ratings["participant_id"].isin(frame.index)]
    notes: list[str] = []
    if n < 20:
        notes.append(f"only {n} participants with both ratings: the agreement estimates are imprecise")
    correlation = stats.correlation(frame["p"], frame["f"])
    dyad_r = float(np.corrcoef(frame.loc[dyads["participant_id"], "p"].to_numpy(), dyads["score"].to_numpy())[0, 1]) \
        if len(dyads) > 2 else float("nan")
    paired = stats.paired_ttest(frame["f"], frame["p"])  # after − before = participant − facilitators
    difference = frame["p"] - frame["f"]
    sd = float(difference.std(ddof=1))
    out: dict[str, Any] = {
        "n": n, "n_dyads": int(len(dyads)), "n_facilitators": int(dyads["rater"].nunique()),
        "participant_mean": float(frame["p"].mean()), "facilitator_mean": float(frame["f"].mean()),
        "correlation": {"r": correlation.r, "ci_low": correlation.ci_low, "ci_high": correlation.ci_high,
                        "p": correlation.p},
        "dyad_correlation": {"r": dyad_r, "n": int(len(dyads)),
                             "note": "dyads are not independent (two per participant, several per facilitator)"},
        "mean_difference": {"estimate": paired.mean_diff, "ci_low": paired.ci_low, "ci_high": paired.ci_high,
                            "t": paired.t, "df": paired.df, "p": paired.p, "sd": sd,
                            "loa_low": float(difference.mean() - Z_975 * sd),
                            "loa_high": float(difference.mean() + Z_975 * sd)},
        "discrepancy": [],
    }
    for name, outcome in (outcomes or {}).items():
        data = frame.join(outcome.astype(float).rename("y"), how="left")
        data = data.assign(M=(data["p"] + data["f"]) / 2, D=data["p"] - data["f"])
        entry: dict[str, Any] = {"y": name}
        try:
            fit = stats.linear_regression("y ~ M + D", data)
        except ValueError as error:
            entry["skipped"] = str(error)
        else:
            table = fit.coefficients
            entry.update({"n": fit.n, "r_squared": fit.r_squared, "notes": list(fit.notes)})
            for key, term in (("level", "M"), ("discrepancy", "D")):
                row = table.loc[term]
                entry[key] = {"estimate": float(row["estimate"]), "se": float(row["se"]),
                              "ci_low": float(row["ci_low"]), "ci_high": float(row["ci_high"]),
                              "p": float(row["p"])}
        out["discrepancy"].append(entry)
    out["notes"] = notes
    return out
