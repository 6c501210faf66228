"""Input checks shared by the statistics modules: coercion to float vectors and missing-data rules.

Kept private and small on purpose: each public function states its own missing-data rule in its
docstring; this module only makes the rule and the error messages identical everywhere.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

MINIMUM_PAIRS = 3


def float_vector(values, name: str) -> np.ndarray:
    """Return ``values`` as a 1-D float array (``None``/``pd.NA`` → NaN) or raise ``ValueError``."""
    if isinstance(values, pd.Series | pd.Index):
        values = values.to_numpy(dtype=float, na_value=np.nan)
    try:
        array = np.asarray(values, dtype=float)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{name} must be numeric; could not convert it to numbers ({error})") from None
    if array.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional; got an array of shape {array.shape}")
    if np.isinf(array).any():
        raise ValueError(f"{name} contains infinite values; only finite numbers or missing (NaN) are allowed")
    return array


def complete_pairs(
    first, second, first_name: str, second_name: str, minimum: int = MINIMUM_PAIRS
) -> tuple[np.ndarray, np.ndarray]:
    """Return the pairs of ``first`` and ``second`` where both are present (pairwise deletion).

    Raises ``ValueError`` for unequal lengths, all-missing input, or fewer than ``minimum``
    complete pairs.
    """
    a = float_vector(first, first_name)
    b = float_vector(second, second_name)
    if a.shape != b.shape:
        raise ValueError(
            f"{first_name} and {second_name} must have the same length; got {a.size} and {b.size}"
        )
    for array, name in ((a, first_name), (b, second_name)):
        if array.size == 0 or np.isnan(array).all():
            raise ValueError(f"{name} has no non-missing values")
    keep = ~(np.isnan(a) | np.isnan(b))
    count = int(keep.sum())
    if count < minimum:
        raise ValueError(
            f"need at least {minimum} complete pairs of {first_name} and {second_name}; found {count}"
        )
    return a[keep], b[keep]


def check_confidence(confidence: float) -> float:
    """Return ``confidence`` as a float strictly between 0 and 1, or raise ``ValueError``."""
    value = float(confidence)
    if not 0.0 < value < 1.0:
        raise ValueError(f"confidence must lie strictly between 0 and 1 (e.g. 0.95); got {confidence!r}")
    return value


def check_method(method: str, supported: Sequence[str], what: str = "method") -> str:
    """Return ``method`` if it is one of ``supported``; otherwise raise ``ValueError`` listing them."""
    if method not in supported:
        allowed = ", ".join(repr(option) for option in supported)
        raise ValueError(f"unknown {what} {method!r}; supported: {allowed}")
    return method


def numeric_columns(data: pd.DataFrame, columns: Sequence[str], what: str = "data") -> pd.DataFrame:
    """Return ``data[columns]`` as floats after checking that every column exists and is numeric."""
    if not isinstance(data, pd.DataFrame):
        raise ValueError(f"{what} must be a pandas DataFrame; got {type(data).__name__}")
    missing = [column for column in columns if column not in data.columns]
    if missing:
        raise ValueError(f"columns {missing} not found in {what}; available: {list(data.columns)}")
    if len(set(columns)) != len(columns):
        raise ValueError(f"each variable may appear only once; got {list(columns)}")
    frame = data.loc[:, list(columns)]
    converted = {}
    for column in columns:
        try:
            converted[column] = frame[column].to_numpy(dtype=float, na_value=np.nan)
        except (TypeError, ValueError):
            raise ValueError(
                f"column {column!r} of {what} must be numeric; found dtype {frame[column].dtype}"
            ) from None
        if np.isinf(converted[column]).any():
            raise ValueError(f"column {column!r} of {what} contains infinite values")
    return pd.DataFrame(converted, index=frame.index)
