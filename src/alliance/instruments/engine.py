"""The scoring engine: validate item answers, then score every scale of an instrument at once.

Scoring is vectorized over administrations (rows): each scale is a handful of numpy operations on
an (n_rows × n_items) matrix, so a million administrations score in well under a second. Missing
answers stay NaN throughout and are handled by each scale's declared missing-item rule; a missing
answer is never scored as 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .definition import Instrument, Scale

# Scores are rounded to this many decimals so that a prorated score that should be 14 is 14, not
# 13.999999999999998 sitting just below a band edge.
_DECIMALS = 10
_MAX_LISTED = 20


@dataclass(frozen=True)
class Problem:
    """One invalid cell: where it is, what it holds and what is allowed."""

    row: int | None
    column: str
    value: object
    allowed: str
    reason: str

    def describe(self, source: str | None = None) -> str:
        where = []
        if source:
            where.append(source)
        if self.row is not None:
            where.append(f"row {self.row}")
        where.append(f"column {self.column!r}")
        value = "" if self.row is None else f" value {self.value!r}"
        return f"{', '.join(where)}:{value} {self.reason}; allowed: {self.allowed}"


class ScoringError(ValueError):
    """Item answers that cannot be scored. ``problems`` lists every invalid cell found."""

    def __init__(self, instrument: str, problems: Sequence[Problem], source: str | None = None):
        self.instrument = instrument
        self.problems = tuple(problems)
        self.source = source
        lines = [p.describe(source) for p in self.problems[:_MAX_LISTED]]
        more = len(self.problems) - _MAX_LISTED
        if more > 0:
            lines.append(f"… and {more} more problems")
        count = len(self.problems)
        super().__init__(
            f"{instrument}: {count} invalid {'cell' if count == 1 else 'cells'}; nothing was scored:\n  "
            + "\n  ".join(lines)
        )


def validate(instrument: Instrument, data: pd.DataFrame, *, source: str | None = None,
             first_row: int = 1) -> np.ndarray:
    """Check item answers and return them as a float matrix with NaN for missing answers.

    Parameters
    ----------
    instrument : Instrument
        The definition to validate against.
    data : DataFrame
        One row per administration. Item columns are named ``<instrument>_<n>``; other columns
        (identifiers, dates) are ignored. Empty cells are missing answers.
    source : str, optional
        A file name to put in error messages.
    first_row : int
        The number to give the first row in error messages (2 for a CSV file whose first line is
        its header, so that row numbers are the file's line numbers).

    Returns
    -------
    ndarray
        Shape (n_rows, n_items), in the instrument's item order, raw (not reverse-keyed) answers.

    Raises
    ------
    ScoringError
        Listing every unknown item column, missing item column, non-numeric answer, answer outside
        the item's range and answer off the item's step.
    """
    problems: list[Problem] = []
    prefix = f"{instrument.id}_"
    known = set(instrument.item_ids)
    for column in data.columns:
        name = str(column)
        if name.startswith(prefix) and name[len(prefix):].isdigit() and name not in known:
            problems.append(Problem(None, name, None, f"{instrument.item_ids[0]} … {instrument.item_ids[-1]}",
                                    f"is not an item of {instrument.id}"))
    absent = [i for i in instrument.item_ids if i not in data.columns]
    if absent:
        problems.append(Problem(None, ", ".join(absent), None,
                                "every item column present (leave a cell empty for a missing answer)",
                                "item columns are missing"))
    if problems:
        raise ScoringError(instrument.id, problems, source)

    values = np.empty((len(data), len(instrument.items)), dtype=float, order="F")
    converted = _text_columns_to_numeric(data, instrument.item_ids)
    for j, item in enumerate(instrument.items):
        column = data[item.id]
        numeric, bad = converted[item.id] if item.id in converted else _to_numeric(column)
        for position in np.flatnonzero(bad):
            problems.append(Problem(int(position) + first_row, item.id, column.iloc[position], item.allowed(),
                                    "is not a number"))
        with np.errstate(invalid="ignore"):
            outside = (numeric < item.min) | (numeric > item.max)
            if item.step is not None:
                steps = (numeric - item.min) / item.step
                off_step = ~outside & (np.abs(steps - np.round(steps)) > 1e-9)
            else:
                off_step = np.zeros_like(outside)
        for position in np.flatnonzero(outside):
            problems.append(Problem(int(position) + first_row, item.id, _plain(numeric[position]), item.allowed(),
                                    "is out of range"))
        for position in np.flatnonzero(off_step):
            problems.append(Problem(int(position) + first_row, item.id, _plain(numeric[position]), item.allowed(),
                                    "is not an allowed answer"))
        values[:, j] = numeric
    if problems:
        problems.sort(key=lambda p: (p.row if p.row is not None else -1, instrument.item_ids.index(p.column)))
        raise ScoringError(instrument.id, problems, source)
    return values


def _plain(value: float) -> int | float:
    return int(value) if float(value).is_integer() else float(value)


def _text_columns_to_numeric(data: pd.DataFrame, item_ids) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """:func:`_to_numeric` of every text item column at once (one pandas pass, not one per item).

    A web form posts one row of 30 text answers: converted column by column, pandas' per-call cost
    made checking it take 20-100 ms.
    """
    text = [i for i in item_ids if not pd.api.types.is_numeric_dtype(data[i]) and not pd.api.types.is_bool_dtype(data[i])]
    if len(text) < 2:
        return {}
    stacked = pd.Series(data[text].to_numpy(dtype=object).ravel(order="F"), dtype=object)
    numeric, bad = _to_numeric(stacked)
    n = len(data)
    return {item_id: (numeric[k * n:(k + 1) * n], bad[k * n:(k + 1) * n]) for k, item_id in enumerate(text)}


def _to_numeric(column: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Numbers as floats (NaN where empty) and a mask of cells that hold something not a number."""
    if pd.api.types.is_bool_dtype(column):
        return np.full(len(column), np.nan), column.notna().to_numpy()
    if pd.api.types.is_numeric_dtype(column):
        return column.to_numpy(dtype=float, na_value=np.nan), np.zeros(len(column), dtype=bool)
    as_text = column.astype("string").str.strip()
    empty = as_text.isna() | (as_text == "")
    numeric = pd.to_numeric(as_text.mask(empty), errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    # Booleans inside an object column are not answers either.
    is_bool = column.map(lambda v: isinstance(v, bool | np.bool_)).to_numpy(dtype=bool)
    bad = (~empty.to_numpy(dtype=bool) & np.isnan(numeric)) | is_bool
    numeric[is_bool] = np.nan
    return numeric, bad


def score_matrix(instrument: Instrument, values: np.ndarray) -> dict[str, np.ndarray]:
    """Score a validated answer matrix.

    Parameters
    ----------
    instrument : Instrument
        The definition.
    values : ndarray
        (n_rows, n_items) raw answers from :func:`validate`, NaN for missing.

    Returns
    -------
    dict
        Scale id → float array of scores (NaN where the missing-item rule is not met).
    """
    column_of = {item_id: j for j, item_id in enumerate(instrument.item_ids)}
    keyed = values.copy(order="F")
    for j, item in enumerate(instrument.items):
        if item.reverse:
            keyed[:, j] = item.min + item.max - keyed[:, j]
    answered = ~np.isnan(keyed)
    # Sums of answered items and counts of answered items for every sum/mean scale at once: one
    # matrix product each instead of a masked reduction per scale.
    item_scales = [s for s in instrument.scales if s.method in ("sum", "mean")]
    weights = np.zeros((len(instrument.items), len(item_scales)))
    for k, scale in enumerate(item_scales):
        weights[[column_of[i] for i in scale.items], k] = 1.0
    totals = np.where(answered, keyed, 0.0) @ weights
    counts = answered.astype(float) @ weights
    scores = {}
    for k, scale in enumerate(item_scales):
        scores[scale.id] = _apply_missing_rule(scale, totals[:, k], counts[:, k], len(scale.items))
    for scale in instrument.scales:
        if scale.method == "max_of_groups":
            parts, valid = [], []
            for group in scale.groups:
                cols = [column_of[i] for i in group.items]
                ok = answered[:, cols].all(axis=1) if scale.missing.group_requires == "all" \
                    else answered[:, cols].any(axis=1)
                parts.append(np.where(answered[:, cols], keyed[:, cols], -np.inf).max(axis=1))
                valid.append(ok)
            ok = np.column_stack(valid)
            total = np.where(ok, np.column_stack(parts), 0.0).sum(axis=1)  # groups that pass their rule
            scores[scale.id] = _apply_missing_rule(scale, total, ok.sum(axis=1).astype(float), len(scale.groups))
        elif scale.method == "highest_endorsed":
            scores[scale.id] = _highest_endorsed(scale, instrument, keyed, answered, column_of)
    return {scale.id: scores[scale.id] for scale in instrument.scales}


def _highest_endorsed(scale: Scale, instrument: Instrument, keyed: np.ndarray, answered: np.ndarray,
                      column_of: dict[str, int]) -> np.ndarray:
    """The position k (1-based in ``scale.items``) of the last item answered at its maximum, else 0.

    With ``max_missing`` m > 0, up to m unanswered items are passed over (the score is then the
    highest among the answered items, a lower bound); with more missing the score is NaN.
    """
    cols = [column_of[i] for i in scale.items]
    tops = np.array([instrument.item(i).max for i in scale.items])
    endorsed = answered[:, cols] & np.isclose(keyed[:, cols], tops)  # NaN compares False
    positions = np.arange(1, len(cols) + 1, dtype=float)
    highest = np.where(endorsed, positions, 0.0).max(axis=1)
    n_answered = answered[:, cols].sum(axis=1).astype(float)
    return np.where(len(cols) - n_answered <= scale.missing.max_missing, highest, np.nan)


def _apply_missing_rule(scale: Scale, total: np.ndarray, n_answered: np.ndarray, units: int) -> np.ndarray:
    """Turn a sum over answered units into the scale score, or NaN where too many are missing."""
    rule = scale.missing
    scoreable = (units - n_answered) <= rule.max_missing
    if scale.method == "mean":
        result = np.round(total / np.where(n_answered > 0, n_answered, 1.0), _DECIMALS)
    elif rule.prorate:
        result = np.round(total * units / np.where(n_answered > 0, n_answered, 1.0), _DECIMALS)
    else:
        result = total
    return np.where(scoreable, result, np.nan)


def score_frame(instrument: Instrument, data: pd.DataFrame, *, source: str | None = None,
                first_row: int = 1) -> pd.DataFrame:
    """Validate and score; see :func:`alliance.instruments.score`."""
    values = validate(instrument, data, source=source, first_row=first_row)
    scores = score_matrix(instrument, values)
    out: dict[str, object] = {}
    for scale in instrument.scales:
        s = scores[scale.id]
        out[scale.id] = s
        low, high = scale.range
        if scale.percent_of_max:
            out[f"{scale.id}_pct"] = np.round((s - low) / (high - low) * 100.0, _DECIMALS)
        if scale.bands:
            mins = np.array([b.min for b in scale.bands])
            labels = [b.label for b in scale.bands]
            codes = np.searchsorted(mins, np.nan_to_num(s, nan=-np.inf), side="right") - 1
            codes = np.where(np.isnan(s), -1, codes)
            out[f"{scale.id}_band"] = pd.Categorical.from_codes(codes, categories=labels, ordered=True)
    for criterion in instrument.criteria:
        holds = np.ones(len(data), dtype=bool)
        unknown = np.zeros(len(data), dtype=bool)
        for cond in criterion.all_of:
            value = out[f"{cond.scale}_pct"] if cond.percent_at_least is not None else out[cond.scale]
            threshold = cond.percent_at_least if cond.percent_at_least is not None else cond.at_least
            unknown |= np.isnan(value)
            with np.errstate(invalid="ignore"):
                holds &= value >= threshold - 1e-9
        out[criterion.id] = pd.arrays.BooleanArray(holds & ~unknown, unknown)
    for flag in instrument.flags:
        # an item flag looks at the raw answer; a scale flag at the score (missing when it is)
        value = scores[flag.scale] if flag.scale is not None else values[:, instrument.item_ids.index(flag.item)]
        with np.errstate(invalid="ignore"):
            raised = value >= flag.at_least
        out[flag.id] = pd.arrays.BooleanArray(raised, np.isnan(value))
    return pd.DataFrame(out, index=data.index)
