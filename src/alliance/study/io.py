"""Reading and writing files. Everything else in ``alliance`` works on DataFrames in memory."""

from __future__ import annotations

from pathlib import Path

import pandas as pd


def read_csv_text(path: str | Path) -> pd.DataFrame:
    """Read a CSV file with every cell as text, empty cells as missing.

    Cells are kept as text so that the code validating them can say exactly which cell is not a
    number, instead of pandas guessing a type for the whole column.

    Parameters
    ----------
    path : str or Path
        A UTF-8 (optionally with BOM) comma-separated file with a header line.

    Returns
    -------
    DataFrame
        String columns; an empty cell is ``<NA>``.
    """
    frame = pd.read_csv(path, dtype="string", keep_default_na=False, na_values=[""], encoding="utf-8-sig")
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame
