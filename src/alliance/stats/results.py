"""The shared base of every result in :mod:`alliance.stats`.

Each statistical function returns a frozen dataclass named for what it is (``PairedTest``,
``Correlation``, ``Mediation`` ...). They all derive from :class:`Result`, whose only job is
:meth:`Result.to_dict`: a JSON-safe view of the fields, so the CLI, the web app and the report
serialize results the same way.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["Result", "to_plain"]


def to_plain(value: Any) -> Any:
    """Convert ``value`` to plain JSON-safe Python (``float``, ``int``, ``str``, ``None``, lists, dicts).

    NaN and infinite floats become ``None`` (JSON has neither); numpy scalars become Python
    scalars; numpy arrays, tuples and lists become lists; a DataFrame becomes a list of records
    after ``reset_index()`` (so its index is kept as a column); a Series becomes a dict;
    nested dataclasses are converted field by field.
    """
    if value is None or isinstance(value, str | bool):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        number = float(value)
        return number if math.isfinite(number) else None
    if isinstance(value, pd.DataFrame):
        return [to_plain(record) for record in value.reset_index().to_dict(orient="records")]
    if isinstance(value, pd.Series):
        return {str(key): to_plain(item) for key, item in value.items()}
    if isinstance(value, np.ndarray):
        return [to_plain(item) for item in value.tolist()]
    if isinstance(value, list | tuple):
        return [to_plain(item) for item in value]
    if isinstance(value, dict):
        return {str(key): to_plain(item) for key, item in value.items()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {field.name: to_plain(getattr(value, field.name)) for field in dataclasses.fields(value)}
    if value is pd.NA or value is pd.NaT:
        return None
    return value


@dataclasses.dataclass(frozen=True)
class Result:
    """Base class of all statistical results: a frozen dataclass with :meth:`to_dict`.

    Subclasses are declared with ``@dataclass(frozen=True)`` and add their own fields.
    """

    def to_dict(self) -> dict[str, Any]:
        """Return the fields as a JSON-safe ``dict`` (NaN → ``None``, numpy → Python, DataFrame → records)."""
        return {field.name: to_plain(getattr(self, field.name)) for field in dataclasses.fields(self)}
