"""Descriptive tables of a study: scores per measure and timepoint, and completeness per timepoint.

These are descriptions, not tests, so they need nothing from :mod:`alliance.stats`; they are here
(not in the report) so the CLI, the web app and the report describe a study the same way.
"""

from __future__ import annotations

import pandas as pd

from alliance.protocol import Measure

__all__ = ["completeness", "descriptives", "split_measure"]

PARTICIPANT = "participant_id"
DESCRIPTIVE_COLUMNS = ["measure", "timepoint", "n", "mean", "sd", "median", "min", "max"]


def split_measure(name: str) -> tuple[str, str, str]:
    """``"wai_sr.total@prep"`` → ``("wai_sr", "total", "prep")``."""
    measure = Measure.parse(name)
    return measure.instrument, measure.scale, measure.timepoint


def descriptives(study, measures: list[str] | None = None) -> pd.DataFrame:
    """n, mean, SD, median, minimum and maximum of each measure at each timepoint.

    Parameters
    ----------
    study : alliance.study.Study
    measures : list of str, optional
        ``INSTRUMENT.SCALE`` names to describe (in this order); by default every numeric scale.

    Returns
    -------
    DataFrame
        Columns ``measure`` (``INSTRUMENT.SCALE``), ``timepoint``, ``n``, ``mean``, ``sd``
        (``n − 1`` denominator; NaN when n < 2), ``median``, ``min``, ``max``; rows by measure, then
        timepoint in protocol order (derived timepoints such as ``peak`` after their sources).
    """
    long = study.measures(wide=False)
    if long.empty:
        return pd.DataFrame(columns=DESCRIPTIVE_COLUMNS)
    names = long["measure"].astype(str)
    parsed = {name: Measure.parse(name) for name in names.unique()}
    frame = pd.DataFrame({"measure": names.map(lambda name: str(parsed[name].without_timepoint())),
                          "timepoint": names.map(lambda name: parsed[name].timepoint),
                          "value": pd.to_numeric(long["value"], errors="coerce")}).dropna(subset=["value"])
    if measures is not None:
        frame = frame[frame["measure"].isin(measures)]
    table = (frame.groupby(["measure", "timepoint"], sort=False)["value"]
             .agg(n="count", mean="mean", sd="std", median="median", min="min", max="max").reset_index())
    order = study.protocol.timepoint_order
    measure_rank = {name: i for i, name in enumerate(measures or sorted(table["measure"].unique()))}
    table["_m"] = table["measure"].map(measure_rank)
    table["_t"] = table["timepoint"].map(order).fillna(float("inf"))
    table = table.sort_values(["_m", "_t"]).drop(columns=["_m", "_t"]).reset_index(drop=True)
    table["n"] = table["n"].astype(int)
    return table[DESCRIPTIVE_COLUMNS]


def completeness(study) -> pd.DataFrame:
    """Participant flow: who was enrolled and who gave data at each timepoint, by arm.

    Parameters
    ----------
    study : alliance.study.Study

    Returns
    -------
    DataFrame
        One row per protocol timepoint (protocol order) and arm (protocol order, then ``all``):
        ``timepoint``, ``label``, ``kind``, ``arm``, ``enrolled`` (participants in the arm),
        ``assessed`` (participants with at least one answer at the timepoint), ``percent``
        (``assessed / enrolled × 100``) and ``instruments`` (administered there, ``;``-separated).
    """
    participants = study.participants
    responses = study.responses
    arms = [arm.id for arm in getattr(study.protocol, "arms", ()) or ()]
    arms += sorted(set(participants["arm"].astype(str)) - set(arms))
    arm_of = participants.set_index(PARTICIPANT)["arm"].astype(str)
    arm_of.index = arm_of.index.astype(str)
    # one row per (timepoint, participant) before building sets: a large study has ~1,000 answers each
    answered = responses.loc[responses["value"].notna(), ["timepoint", PARTICIPANT]].drop_duplicates().astype(str)
    assessed = {timepoint: set(group) for timepoint, group in answered.groupby("timepoint")[PARTICIPANT]}
    rows = []
    for timepoint in study.protocol.timepoints:
        present = assessed.get(timepoint.id, set())
        groups = [(arm, set(arm_of.index[arm_of == arm])) for arm in arms] if len(arms) > 1 else []
        groups.append(("all", set(arm_of.index)))
        for arm, members in groups:
            enrolled = len(members)
            count = len(present & members)
            rows.append({
                "timepoint": timepoint.id, "label": getattr(timepoint, "label", timepoint.id),
                "kind": getattr(timepoint, "kind", ""), "arm": arm, "enrolled": enrolled, "assessed": count,
                "percent": 100.0 * count / enrolled if enrolled else float("nan"),
                "instruments": ";".join(timepoint.instruments),
            })
    return pd.DataFrame(rows, columns=["timepoint", "label", "kind", "arm", "enrolled", "assessed", "percent",
                                       "instruments"])
