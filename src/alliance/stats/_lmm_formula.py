"""Model frame for :func:`alliance.stats.mixed.mixedlm`: lme4 formula → y, X, Z and groups.

Only the random-effects term ``(… | group)`` is split off here; the fixed-effects part, the
response and the left-hand side of the random term are built by :mod:`alliance.stats._r_formula`
with R's meaning (``I(x^2)`` is a power, ``poly``/``factor``/``scale``/``log``, R's column names
and factor coding). Columns of a rank-deficient fixed-effects design are dropped as lme4 does and
the drop is reported in :attr:`ModelFrame.notes`. ``r_name`` still translates formulaic's names
for callers that use formulaic directly.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ._lmm_terms import top_level_chunks
from ._r_formula import _design, _response, rank_deficiency_note, variables

SUPPORTED_SYNTAX = (
    "supported: 'y ~ fixed terms + (r | g)' with exactly one random-effects term and one grouping "
    "column g, where r is 1, x, 1 + x, 0 + x, -1 + x or several slopes such as 1 + x + z"
)

_FORMULAIC_LEVEL = re.compile(r"^(?P<factor>.+)\[(?:T\.)?(?P<level>.*)\]$")


@dataclass(frozen=True)
class ModelFrame:
    """Complete-case design of a one-grouping-factor linear mixed model.

    Rows are sorted by group so that per-group sums can be taken with ``np.add.reduceat``.

    Attributes
    ----------
    response : ndarray, shape (n,)
    fixed_design : ndarray, shape (n, p)
        X, treatment-coded, full column rank.
    random_design : ndarray, shape (n, q)
        Z for one group (the random-effects model matrix, row by row).
    group_starts : ndarray, shape (n_groups,)
        Index of each group's first row.
    fixed_names, random_names : tuple of str
        R's names of the columns of X and Z.
    group_name : str
        The grouping column.
    group_levels : tuple of str
        The levels of the grouping column in the order of the groups (sorted, as R's factor).
    notes : tuple of str
        What was changed on the way, said out loud: lme4's message for fixed-effect columns
        dropped because the design is rank deficient (with their names).
    """

    response: np.ndarray
    fixed_design: np.ndarray
    random_design: np.ndarray
    group_starts: np.ndarray
    fixed_names: tuple[str, ...]
    random_names: tuple[str, ...]
    group_name: str
    notes: tuple[str, ...] = ()
    group_levels: tuple[str, ...] = ()  # the group labels in row (sorted) order, as R prints them

    @property
    def n_obs(self) -> int:
        return int(self.response.shape[0])

    @property
    def n_groups(self) -> int:
        return int(self.group_starts.shape[0])


def split_formula(formula: str) -> tuple[str, str, str]:
    """Split an lme4 formula into (fixed-effects formula, random-term left side, group column).

    Raises
    ------
    ValueError
        For anything but exactly one ``(r | g)`` term with a plain column as ``g``.
    """
    if not isinstance(formula, str) or formula.count("~") != 1:
        raise ValueError(f"formula must be a string 'response ~ terms'; got {formula!r}. {SUPPORTED_SYNTAX}")
    lhs, rhs = (part.strip() for part in formula.split("~"))
    if not lhs:
        raise ValueError(f"formula {formula!r} has no response on the left of '~'. {SUPPORTED_SYNTAX}")
    if "||" in rhs:
        raise ValueError(
            f"uncorrelated random effects ('||') are not supported in {formula!r}. {SUPPORTED_SYNTAX}"
        )
    fixed_chunks, random_terms = [], []
    for chunk in top_level_chunks(rhs):
        if "|" not in chunk:
            if not chunk:
                raise ValueError(f"empty term in formula {formula!r}")
            fixed_chunks.append(chunk)
            continue
        inner = chunk[1:-1] if chunk.startswith("(") and chunk.endswith(")") else None
        if inner is None or inner.count("|") != 1 or "(" in inner.split("|")[1]:
            raise ValueError(
                f"random-effects term {chunk!r} in {formula!r} must be written as a separate "
                f"'+ (r | g)' term. {SUPPORTED_SYNTAX}"
            )
        random_terms.append(inner)
    if not random_terms:
        raise ValueError(f"formula {formula!r} has no random-effects term such as (1 | g). {SUPPORTED_SYNTAX}")
    if len(random_terms) > 1:
        raise ValueError(
            f"formula {formula!r} has {len(random_terms)} random-effects terms; only one grouping "
            f"term is supported. {SUPPORTED_SYNTAX}"
        )
    random_lhs, group = (part.strip() for part in random_terms[0].split("|"))
    if not re.fullmatch(r"[A-Za-z_.][A-Za-z0-9_.]*", group):
        raise ValueError(
            f"grouping factor {group!r} in {formula!r} is not a plain column name (nested 'a/b' and "
            f"crossed 'a:b' groupings are not supported). {SUPPORTED_SYNTAX}"
        )
    if not random_lhs:
        raise ValueError(f"random-effects term in {formula!r} has nothing left of '|'. {SUPPORTED_SYNTAX}")
    fixed = f"{lhs} ~ {' + '.join(fixed_chunks) if fixed_chunks else '1'}"
    return fixed, random_lhs, group


def r_name(formulaic_name: str) -> str:
    """Translate a formulaic column name to R's (``a:Sex[T.Male]`` → ``a:SexMale``)."""
    if formulaic_name == "Intercept":
        return "(Intercept)"
    parts = []
    for factor in formulaic_name.split(":"):
        match = _FORMULAIC_LEVEL.match(factor)
        parts.append(match["factor"] + match["level"] if match else factor)
    return ":".join(parts)


def _as_r_factors(frame: pd.DataFrame, skip: str) -> pd.DataFrame:
    """Give string and logical columns R's factor levels (C-locale sorted, FALSE/TRUE)."""
    frame = frame.copy()
    for column in frame.columns:
        if column == skip:
            continue
        values = frame[column]
        if isinstance(values.dtype, pd.CategoricalDtype):
            frame[column] = values.cat.remove_unused_categories()
        elif pd.api.types.is_bool_dtype(values.dtype):
            frame[column] = pd.Categorical(
                values.map({False: "FALSE", True: "TRUE"}), categories=["FALSE", "TRUE"]
            ).remove_unused_categories()
        elif pd.api.types.is_string_dtype(values.dtype) or values.dtype == object:
            labels = values.astype(str)
            frame[column] = pd.Categorical(labels, categories=sorted(labels.unique()))
    return frame


def _r_label(value) -> str:
    """A level as R prints it: a whole-number float without its ``.0`` (R's factor of 1.0 is "1")."""
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return str(value)


def build_model_frame(formula: str, data: pd.DataFrame) -> ModelFrame:
    """Parse ``formula``, drop incomplete rows (like ``na.omit``) and build y, X and Z.

    As ``lme4::lFormula``: variables are evaluated on all rows (so ``poly`` and ``scale`` see the
    whole data, as R's model.frame), then rows with a missing value in any variable are dropped;
    rank-deficient fixed-effect columns are dropped as ``chkRank.drop.cols`` and noted.
    """
    if not isinstance(data, pd.DataFrame):
        raise TypeError(f"data must be a pandas DataFrame, got {type(data).__name__}")
    fixed_formula, random_lhs, group = split_formula(formula)
    lhs, fixed_rhs = (part.strip() for part in fixed_formula.split("~"))
    try:
        used = list(dict.fromkeys(variables(lhs) + variables(fixed_rhs) + variables(random_lhs) + [group]))
    except ValueError as error:
        raise ValueError(f"cannot use formula {formula!r}: {error}") from error
    missing = [name for name in used if name not in data.columns]
    if missing:
        raise ValueError(
            f"column(s) {missing} used in formula {formula!r} are not in the data; "
            f"available columns: {list(map(str, data.columns))}"
        )
    full = data[used].reset_index(drop=True)
    complete = np.flatnonzero(full.notna().all(axis=1).to_numpy())
    if complete.size == 0:
        raise ValueError(
            f"no complete rows: every one of the {len(data)} rows has a missing value in {used}"
        )
    codes, levels = pd.factorize(full[group].iloc[complete], sort=True)
    if len(levels) < 2:
        raise ValueError(
            f"grouping column {group!r} has {len(levels)} level(s) among the complete rows; "
            "a random effect needs at least 2 groups"
        )
    order = np.argsort(codes, kind="stable")
    rows = complete[order]
    codes = codes[order]
    response = _response(lhs, full, rows)
    fixed = _design(fixed_rhs, full, rows=rows)
    random = _design(random_lhs, full, rows=rows, drop_rank_deficient=False)
    fixed_design, random_design = fixed.matrix, random.matrix
    n_obs, n_fixed = fixed_design.shape
    if n_fixed == 0:
        raise ValueError(f"formula {formula!r} has no fixed effects; at least one is needed")
    if random_design.shape[1] == 0:
        raise ValueError(f"random-effects term ({random_lhs} | {group}) has no columns. {SUPPORTED_SYNTAX}")
    if not (np.isfinite(response).all() and np.isfinite(fixed_design).all()
            and np.isfinite(random_design).all()):
        raise ValueError(f"infinite values in the variables of {formula!r}")
    n_random = random_design.shape[1] * len(levels)
    if len(levels) >= n_obs or n_random >= n_obs:
        raise ValueError(
            f"{n_obs} complete observations are too few for {len(levels)} groups with "
            f"{random_design.shape[1]} random effect(s) each (lme4 requires fewer random effects "
            "and groups than observations)"
        )
    starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])
    return ModelFrame(
        response=response,
        fixed_design=fixed_design,
        random_design=random_design,
        group_starts=starts,
        fixed_names=fixed.names,
        random_names=random.names,
        group_name=group,
        notes=(rank_deficiency_note(fixed.dropped),) if fixed.dropped else (),
        group_levels=tuple(_r_label(level) for level in levels),
    )
