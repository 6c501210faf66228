"""SPSS ``.sav`` and Stata ``.dta`` files of the wide measures (one row per participant).

Measure names (``wai_sr.total@prep``) are not legal variable names in either package, so each
becomes ``wai_sr_total_prep`` and keeps its full name as the variable label. Stata allows 32
characters and SPSS 64 bytes; a name cut to the limit that collides with an earlier one is cut
further and numbered (``…_2``, ``…_3``) in measure order, so the same measures always get the same
names. Files are written with pyreadstat (ReadStat), which both packages read.

References
----------
StataCorp. Stata 18 User's Guide, section 11.3 (naming conventions: 1-32 characters, letters,
digits, underscores, not starting with a digit). IBM SPSS Statistics Command Syntax Reference,
"Variable names" (up to 64 bytes, starting with a letter; reserved keywords).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from ..tidy import Study

STATA_MAX = 32
SPSS_MAX = 64
# Words neither package accepts as a variable name.
_RESERVED = {
    "all", "and", "by", "eq", "ge", "gt", "le", "lt", "ne", "not", "or", "to", "with",  # SPSS
    "_all", "_b", "byte", "_coef", "_cons", "double", "float", "if", "in", "int", "long", "_n",
    "_pi", "_pred", "_rc", "_se", "str", "strl", "using",  # Stata
}
_ID_COLUMNS = ("participant_id", "arm")


def variable_names(names: Iterable[str], max_length: int = STATA_MAX) -> dict[str, str]:
    """Legal, unique variable names for measure (or column) names.

    Parameters
    ----------
    names : iterable of str
        E.g. measure names ``INSTRUMENT.SCALE@TIMEPOINT``, in the order they will appear.
    max_length : int
        32 for Stata, 64 for SPSS.

    Returns
    -------
    dict
        Name → variable name: characters other than letters, digits and ``_`` become ``_``; a
        leading digit or underscore gets a ``v`` in front; reserved words get a trailing ``_``;
        names are cut to ``max_length`` and a collision is numbered ``_2``, ``_3``, … in order.

    Examples
    --------
    >>> variable_names(["wai_sr.total@prep", "meq30.total_pct@peak"])
    {'wai_sr.total@prep': 'wai_sr_total_prep', 'meq30.total_pct@peak': 'meq30_total_pct_peak'}
    """
    out: dict[str, str] = {}
    taken: set[str] = set()
    for name in names:
        base = re.sub(r"[^A-Za-z0-9_]", "_", str(name))
        if not base or not base[0].isalpha():
            base = f"v{base}"
        if base.lower() in _RESERVED:
            base = f"{base}_"
        candidate = base[:max_length]
        n = 2
        while candidate.lower() in taken:
            suffix = f"_{n}"
            candidate = base[:max_length - len(suffix)] + suffix
            n += 1
        taken.add(candidate.lower())
        out[str(name)] = candidate
    return out


def statistical_frame(study: Study, max_length: int = STATA_MAX) -> tuple[pd.DataFrame, list[str]]:
    """The wide measures with legal variable names, and their labels.

    Parameters
    ----------
    study : Study
    max_length : int
        Variable name limit (32 Stata, 64 SPSS).

    Returns
    -------
    frame : DataFrame
        ``participant_id``, ``arm`` (text; missing as empty text), then one float column per
        measure of :meth:`Study.measures` ``(wide=True)``.
    labels : list of str
        One per column: the full measure name (``wai_sr.total@prep``), or the column name.
    """
    wide = study.measures(wide=True)
    arms = study.participants.set_index("participant_id")["arm"]
    names = variable_names(list(_ID_COLUMNS) + list(wide.columns), max_length)
    frame = pd.DataFrame({
        names["participant_id"]: wide.index.astype(str).to_numpy(dtype=object),
        names["arm"]: arms.reindex(wide.index).fillna("").astype(str).to_numpy(dtype=object),
    })
    for measure in wide.columns:
        frame[names[measure]] = wide[measure].to_numpy(dtype=float)
    labels = ["participant id", "arm"] + list(wide.columns)
    return frame, labels


def write_spss(study: Study, path: str | Path) -> pd.DataFrame:
    """Write the wide measures as an SPSS ``.sav`` file (edge function).

    Parameters
    ----------
    study : Study
    path : str or Path

    Returns
    -------
    DataFrame
        What was written (variable names as columns).
    """
    import pyreadstat

    frame, labels = statistical_frame(study, SPSS_MAX)
    pyreadstat.write_sav(frame, str(path), column_labels=labels,
                         file_label=f"alliance measures, protocol {study.protocol.id}")
    return frame


def write_stata(study: Study, path: str | Path) -> pd.DataFrame:
    """Write the wide measures as a Stata ``.dta`` file (version 15; edge function).

    Parameters
    ----------
    study : Study
    path : str or Path

    Returns
    -------
    DataFrame
        What was written (variable names as columns).
    """
    import pyreadstat

    frame, labels = statistical_frame(study, STATA_MAX)
    # Stata variable labels hold at most 80 characters.
    pyreadstat.write_dta(frame, str(path), column_labels=[label[:80] for label in labels], version=15,
                         file_label=f"alliance measures, protocol {study.protocol.id}"[:80])
    return frame


def read_statistical(path: str | Path) -> pd.DataFrame:
    """Read a ``.sav`` or ``.dta`` file written here back into wide measures.

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    DataFrame
        Index ``participant_id``, one column per measure named by its full name (the variable
        label); the ``arm`` column is dropped.
    """
    import pyreadstat

    path = Path(path)
    reader = pyreadstat.read_sav if path.suffix.lower() == ".sav" else pyreadstat.read_dta
    frame, meta = reader(str(path))
    frame.columns = [label or name for name, label in zip(frame.columns, meta.column_labels, strict=True)]
    frame = frame.drop(columns=["arm"]).rename(columns={"participant id": "participant_id"})
    frame["participant_id"] = frame["participant_id"].astype("string")
    frame = frame.set_index("participant_id")
    return frame.astype(np.float64)
