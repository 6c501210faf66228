"""Reliable change of each participant from their baseline, with the norm the protocol names. Pure core.

:func:`resolve_norm` turns a measure's entry of the protocol's ``reliable_change:`` section
(:mod:`alliance.protocol.change`) into numbers: the SD and the reliability are the protocol's when
it gives them, or, where it says ``study``, the study's own baseline — the SD of the baseline
scores and Cronbach's alpha (:func:`alliance.stats.cronbach_alpha`) of the baseline item answers.
The baseline is the first timepoint, in protocol order, that administers the instrument (the
study's baseline for the GRID-HAMD; the first alliance timepoint, the final preparation session,
for the WAI-SR). :func:`change_from_baseline` then gives every participant's reliable change
(:func:`alliance.stats.reliable_change`) from that baseline to each later timepoint that
administers the instrument, and the Jacobson–Truax category when the protocol gives norms.

A ``study`` value is computed only from at least ``min_n`` baseline participants (the section's
``min_n``, 10 by default) and only when alpha is a usable reliability (0 ≤ alpha < 1). Otherwise
the result says so — ``status`` ``"not computed"`` with the reason in ``notes`` — and has no rows:
a threshold from an SD of five people, or from a negative alpha, would classify every participant
on doubtful data.

Inputs are the tables the web app and the study already have: long scores ``participant_id,
timepoint, instrument, scale, value`` and long item responses ``participant_id, timepoint,
instrument, item, value``. Nothing here reads a file or a database.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from alliance import instruments, stats
from alliance.protocol.change import STUDY, ChangeNorm
from alliance.stats.results import to_plain

__all__ = ["OK", "NOT_COMPUTED", "NOT_CONFIGURED", "TABLE_COLUMNS", "ChangeFromBaseline", "ResolvedNorm",
           "baseline_timepoint", "change_from_baseline", "resolve_norm"]

OK = "ok"
NOT_COMPUTED = "not computed"
NOT_CONFIGURED = "not configured"
TABLE_COLUMNS = ["participant_id", "timepoint", "pre", "post", "change", "rci", "category"]
_SCORE_COLUMNS = ("participant_id", "timepoint", "instrument", "scale", "value")
_RESPONSE_COLUMNS = ("participant_id", "timepoint", "instrument", "item", "value")


@dataclass(frozen=True)
class ResolvedNorm:
    """The numbers behind a measure's reliable change, and where each came from.

    Attributes
    ----------
    measure : str
        ``INSTRUMENT.SCALE``.
    baseline : str or None
        The baseline timepoint (first in protocol order that gives the instrument).
    status : str
        ``"ok"``, ``"not computed"`` (a ``study`` value could not be computed; see ``notes``) or
        ``"not configured"`` (the protocol's section has no entry for the measure).
    sd, reliability : float or None
    sd_from, reliability_from : str
        ``"protocol (source: …)"`` or ``"this study's baseline (prep): SD of n = 14"``.
    n : int
        Participants with a baseline score.
    alpha, z, se_diff, threshold : float or None
        The criterion: a change is reliable when larger than ``threshold`` points (z · se_diff).
    lower_is_better : bool or None
    cutoff : dict or None
        :class:`alliance.stats.ClinicalSignificance` as a dict when the protocol gives norms
        (``a``, ``b``, ``c``, ``recommended``, ``cutoff``), with its ``source``.
    notes : tuple of str
    """

    measure: str
    baseline: str | None
    status: str
    sd: float | None = None
    reliability: float | None = None
    sd_from: str = ""
    reliability_from: str = ""
    n: int = 0
    alpha: float | None = None
    z: float | None = None
    se_diff: float | None = None
    threshold: float | None = None
    lower_is_better: bool | None = None
    cutoff: dict[str, Any] | None = None
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return to_plain(self)


@dataclass(frozen=True, eq=False)
class ChangeFromBaseline:
    """Result of :func:`change_from_baseline`.

    Attributes
    ----------
    norm : ResolvedNorm
    table : DataFrame
        One row per participant with a score of the instrument × later timepoint, participants in
        order of appearance and timepoints in protocol order: ``participant_id, timepoint, pre,
        post, change, rci, category`` (:data:`alliance.stats.change.CATEGORIES`, ``None`` where pre
        or post is missing), and ``clinical_category`` (recovered, improved, unchanged,
        deteriorated) when the protocol gives norms. Empty unless ``status`` is ``"ok"``.
    status : str
        As ``norm.status``.
    notes : tuple of str
    """

    norm: ResolvedNorm
    table: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=TABLE_COLUMNS))

    @property
    def status(self) -> str:
        return self.norm.status

    @property
    def notes(self) -> tuple[str, ...]:
        return self.norm.notes

    def to_dict(self) -> dict[str, Any]:
        return {"norm": self.norm.to_dict(), "status": self.status, "notes": list(self.notes),
                "table": to_plain(self.table.to_dict(orient="records"))}


def baseline_timepoint(protocol, instrument: str) -> str | None:
    """The first timepoint, in protocol order, that administers ``instrument`` (``None`` if none does)."""
    for timepoint in protocol.timepoints:
        if instrument in tuple(timepoint.instruments):
            return timepoint.id
    return None


def _check(frame: pd.DataFrame, columns: tuple[str, ...], name: str) -> pd.DataFrame:
    if not isinstance(frame, pd.DataFrame):
        raise ValueError(f"{name} must be a DataFrame with columns {', '.join(columns)}; got {type(frame).__name__}")
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{name} lacks columns {missing}; it needs {', '.join(columns)}")
    return frame


def _scores_of(scores: pd.DataFrame, norm: ChangeNorm, timepoint: str) -> pd.Series:
    rows = scores[(scores["instrument"].astype(str) == norm.instrument) & (scores["scale"].astype(str) == norm.scale)
                  & (scores["timepoint"].astype(str) == timepoint)]
    values = pd.to_numeric(rows["value"], errors="coerce").to_numpy(dtype=float)
    series = pd.Series(values, index=rows["participant_id"].astype(str).to_numpy())
    return series[~series.index.duplicated(keep="first")]


def resolve_norm(protocol, measure: str, scores: pd.DataFrame, responses: pd.DataFrame) -> ResolvedNorm:
    """The SD, reliability and threshold of a measure's reliable change, with where each came from.

    Parameters
    ----------
    protocol : alliance.protocol.Protocol
        Its ``reliable_change`` section names the measure's SD and reliability (or ``study``).
    measure : str
        ``INSTRUMENT.SCALE``, e.g. ``grid_hamd17.total``.
    scores : DataFrame
        Long scale scores ``participant_id, timepoint, instrument, scale, value``.
    responses : DataFrame
        Long item answers ``participant_id, timepoint, instrument, item, value`` (used only for a
        ``study`` reliability).

    Returns
    -------
    ResolvedNorm
        ``status`` ``"ok"`` with the numbers, or ``"not computed"`` / ``"not configured"`` with the
        reason in ``notes``.

    Notes
    -----
    ``study`` SD: the SD (n − 1) of the baseline scores. ``study`` reliability: Cronbach's alpha of
    the baseline answers to the scale's items (pairwise-complete covariances, as ``psych::alpha``;
    reverse-keyed items as the instrument defines them). Either needs at least the section's
    ``min_n`` participants at baseline; alpha must lie in [0, 1). Items that nobody varies on
    at baseline are left out of alpha, as ``psych::alpha`` does, and a note says which.
    """
    _check(scores, _SCORE_COLUMNS, "scores")
    config = protocol.reliable_change
    measure = str(measure)
    if measure not in config.measures:
        return ResolvedNorm(measure=measure, baseline=None, status=NOT_CONFIGURED, notes=(
            f"the protocol's reliable_change section has no entry for {measure} "
            f"(it has {', '.join(config.measures) or 'none'})",))
    norm = config.measures[measure]
    baseline = baseline_timepoint(protocol, norm.instrument)
    common = {"measure": measure, "baseline": baseline, "alpha": config.alpha, "lower_is_better": norm.lower_is_better}
    if baseline is None:
        return ResolvedNorm(status=NOT_COMPUTED, notes=(f"the protocol never administers {norm.instrument}",),
                            **common)
    values = _scores_of(scores, norm, baseline).dropna()
    n = int(values.size)
    notes: list[str] = []
    source = f"protocol (source: {norm.source})"
    if norm.sd == STUDY:
        sd, sd_from = _study_sd(values, baseline, config.min_n, notes)
    else:
        sd, sd_from = float(norm.sd), source
    if norm.reliability == STUDY:
        _check(responses, _RESPONSE_COLUMNS, "responses")
        reliability, reliability_from = _study_alpha(norm, responses, baseline, config.min_n, notes)
    else:
        reliability, reliability_from = float(norm.reliability), source
    if sd is None or reliability is None:
        return ResolvedNorm(status=NOT_COMPUTED, sd=sd, reliability=reliability, sd_from=sd_from,
                            reliability_from=reliability_from, n=n, notes=tuple(notes), **common)
    reference = stats.reliable_change([], [], sd=sd, reliability=reliability, alpha=config.alpha,
                                      lower_is_better=norm.lower_is_better)
    cutoff = None
    if norm.norms is not None:
        found = stats.clinical_significance(norm.norms.dysfunctional_mean, norm.norms.dysfunctional_sd,
                                            norm.norms.functional_mean, norm.norms.functional_sd,
                                            lower_is_better=norm.lower_is_better)
        cutoff = {**found.to_dict(), "source": norm.norms.source}
    return ResolvedNorm(status=OK, sd=sd, reliability=reliability, sd_from=sd_from,
                        reliability_from=reliability_from, n=n, z=reference.z, se_diff=reference.se_diff,
                        threshold=reference.threshold, cutoff=cutoff, notes=tuple(notes), **common)


def _study_sd(values: pd.Series, baseline: str, min_n: int, notes: list[str]) -> tuple[float | None, str]:
    n = int(values.size)
    if n < min_n:
        notes.append(f"the SD is to come from this study's baseline ({baseline}), which has {n} "
                     f"score{'s' if n != 1 else ''}; at least {min_n} are needed (reliable_change.min_n)")
        return None, f"this study's baseline ({baseline}): not computed, n = {n} < {min_n}"
    sd = float(np.std(values.to_numpy(), ddof=1))
    if not math.isfinite(sd) or sd <= 0:
        notes.append(f"the baseline scores at {baseline} do not vary (SD = {sd:g}); no threshold can be set")
        return None, f"this study's baseline ({baseline}): SD = {sd:g} of n = {n}, not usable"
    return sd, f"this study's baseline ({baseline}): SD of n = {n}"


def _study_alpha(norm: ChangeNorm, responses: pd.DataFrame, baseline: str, min_n: int,
                 notes: list[str]) -> tuple[float | None, str]:
    definition = instruments.get(norm.instrument)
    scale = next(s for s in definition.scales if s.id == norm.scale)
    items = list(scale.all_items)
    if len(items) < 2:
        notes.append(f"{norm.measure} has {len(items)} item; Cronbach's alpha needs at least 2, so the "
                     "reliability must be given in the protocol")
        return None, "this study's baseline: not computable for a single item"
    rows = responses[(responses["instrument"].astype(str) == norm.instrument)
                     & (responses["timepoint"].astype(str) == baseline)
                     & (responses["item"].astype(str).isin(items))]
    frame = rows.assign(value=pd.to_numeric(rows["value"], errors="coerce")).pivot_table(
        index="participant_id", columns="item", values="value", aggfunc="first")
    frame = frame.reindex(columns=items).astype(float)
    frame = frame[frame.notna().any(axis=1)]
    n = int(len(frame))
    if n < min_n:
        notes.append(f"the reliability is to come from this study's baseline ({baseline}), which has item "
                     f"answers of {n} participant{'s' if n != 1 else ''}; at least {min_n} are needed "
                     "(reliable_change.min_n)")
        return None, f"this study's baseline ({baseline}): not computed, n = {n} < {min_n}"
    # Items nobody varies on at baseline (GRID-HAMD "loss of insight" is often 0 for everyone) carry
    # no information about consistency; psych::alpha drops them with a warning, and so do we, in a note.
    constant = [item for item in items if frame[item].nunique(dropna=True) < 2]
    if constant:
        notes.append(f"items {', '.join(constant)} do not vary at {baseline} and were left out of Cronbach's "
                     "alpha (as psych::alpha drops them)")
        frame = frame.drop(columns=constant)
        items = [item for item in items if item not in constant]
    reverse = [item.id for item in definition.items if item.reverse and item.id in items]
    try:
        alpha = stats.cronbach_alpha(frame, reverse=reverse).alpha
    except ValueError as error:
        notes.append(f"Cronbach's alpha of the baseline ({baseline}) items could not be computed: {error}")
        return None, f"this study's baseline ({baseline}): Cronbach's alpha not computable"
    # An alpha within rounding of 1 (items that agree perfectly) would make every change reliable.
    if not math.isfinite(alpha) or not 0 <= alpha < 1 - 1e-9:
        notes.append(f"Cronbach's alpha of the baseline ({baseline}) items is {alpha:.3f}, not a usable "
                     "reliability (0 ≤ alpha < 1 is needed); give the reliability in the protocol")
        return None, f"this study's baseline ({baseline}): Cronbach's alpha = {alpha:.3f} of n = {n}, not usable"
    return float(alpha), f"this study's baseline ({baseline}): Cronbach's alpha of n = {n} (k = {len(items)} items)"


def change_from_baseline(protocol, measure: str, scores: pd.DataFrame,
                         responses: pd.DataFrame) -> ChangeFromBaseline:
    """Every participant's reliable change of a measure from baseline to each later timepoint.

    Parameters
    ----------
    protocol : alliance.protocol.Protocol
    measure : str
        ``INSTRUMENT.SCALE`` with an entry in the protocol's ``reliable_change`` section.
    scores : DataFrame
        Long scale scores ``participant_id, timepoint, instrument, scale, value``.
    responses : DataFrame
        Long item answers ``participant_id, timepoint, instrument, item, value``.

    Returns
    -------
    ChangeFromBaseline
        The :class:`ResolvedNorm` and, when it is ``"ok"``, the table ``participant_id, timepoint,
        pre, post, change, rci, category`` (and ``clinical_category`` with norms).

    Examples
    --------
    >>> import pandas as pd
    >>> from alliance.protocol import default_protocol
    >>> from alliance.monitoring.change import change_from_baseline
    >>> scores = pd.DataFrame({"participant_id": ["p1", "p1"], "timepoint": ["baseline", "week4"],
    ...                        "instrument": "grid_hamd17", "scale": "total", "value": [24.0, 8.0]})
    >>> responses = pd.DataFrame(columns=["participant_id", "timepoint", "instrument", "item", "value"])
    >>> result = change_from_baseline(default_protocol(), "grid_hamd17.total", scores, responses)
    >>> result.status, result.norm.sd_from.startswith("protocol"), len(result.table)
    ('not computed', True, 0)
    >>> result.notes[0][:68]
    "the reliability is to come from this study's baseline (baseline), wh"
    """
    norm = resolve_norm(protocol, measure, scores, responses)
    if norm.status != OK:
        return ChangeFromBaseline(norm=norm)
    entry = protocol.reliable_change.measures[norm.measure]
    later = [tp.id for tp in protocol.timepoints if entry.instrument in tuple(tp.instruments)]
    later = later[later.index(norm.baseline) + 1:]
    mine = scores[(scores["instrument"].astype(str) == entry.instrument) & (scores["scale"].astype(str) == entry.scale)]
    participants = list(dict.fromkeys(mine["participant_id"].astype(str)))
    pre = _scores_of(scores, entry, norm.baseline).reindex(participants)
    pieces = []
    for timepoint in later:
        post = _scores_of(scores, entry, timepoint).reindex(participants)
        found = stats.reliable_change(pre.to_numpy(), post.to_numpy(), sd=norm.sd, reliability=norm.reliability,
                                      alpha=norm.alpha, lower_is_better=entry.lower_is_better)
        table = found.table.assign(participant_id=participants, timepoint=timepoint)
        if norm.cutoff is not None:
            table["clinical_category"] = stats.classify_change(found, norm.cutoff["cutoff"]).to_numpy()
        pieces.append(table)
    columns = TABLE_COLUMNS + (["clinical_category"] if norm.cutoff is not None else [])
    if not pieces:
        return ChangeFromBaseline(norm=norm, table=pd.DataFrame(columns=columns))
    table = pd.concat(pieces, ignore_index=True)[columns]
    order = {p: i for i, p in enumerate(participants)}
    table = table.sort_values("participant_id", key=lambda s: s.map(order), kind="stable").reset_index(drop=True)
    return ChangeFromBaseline(norm=norm, table=table)
