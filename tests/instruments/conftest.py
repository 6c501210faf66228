"""Shared helpers of the instrument tests: reading the worked examples in ``vectors/<instrument>.yaml``.

Every vectors file describes one instrument of the bank (the schema is in ``vectors/README.md``).
``test_vectors.py`` runs its fixed examples; ``test_properties.py`` reads its ``definition`` (the
published key, written out independently of ``src/alliance/instruments/<id>.yaml``) to check
properties that no single example shows.
"""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path

import pandas as pd
import pytest
import yaml

VECTORS_DIRECTORY = Path(__file__).parent / "vectors"
VECTORS: dict[str, dict] = {
    path.stem: yaml.safe_load(path.read_text(encoding="utf-8"))
    for path in sorted(VECTORS_DIRECTORY.glob("*.yaml"))
}

# Expected values written as a float or a fraction ("61/26") are compared to this tolerance (the
# engine rounds scores to 10 decimals); expected integers must match exactly.
REL, ABS = 1e-9, 1e-9


def item_ids(vectors: dict) -> list[str]:
    """The instrument's item columns in published order, as the vectors file lists them."""
    return list(vectors["definition"]["items"])


def frame(vectors: dict, rows: list[list], extra_columns: dict | None = None) -> pd.DataFrame:
    """A data frame of item answers: ``rows`` in published item order, None = missing answer."""
    items = item_ids(vectors)
    data = pd.DataFrame([dict(zip(items, row, strict=True)) for row in rows])
    for column, value in (extra_columns or {}).items():
        data[column] = value
    return data


def scale_numbers(vectors: dict, scale_id: str) -> list[int]:
    """Item numbers of one scale of the key (a ``max_of_groups`` scale: its groups' items)."""
    scale = vectors["definition"]["scales"][scale_id]
    if "groups" in scale:
        return [n for group in scale["groups"] for n in group]
    if scale["items"] == "all":
        return list(range(1, len(item_ids(vectors)) + 1))
    return list(scale["items"])


def item_bounds(vectors: dict, number: int) -> tuple[float, float, float | None]:
    """(min, max, step) of one item of the key."""
    facts = vectors["definition"]
    bounds = facts["item_range"]
    high = (facts.get("item_max") or {}).get(number, bounds.get("max"))
    return bounds["min"], high, bounds["step"]


def expected_number(value: int | float | str) -> int | float:
    """An expected score: an int, a float or a fraction written as text (``"61/26"``)."""
    if isinstance(value, str):
        return float(Fraction(value))
    return value


def assert_value(got, want, column: str, where: str = "") -> None:
    """One expected output: None = missing; bool = a criterion or flag; text = a band label (in a
    ``*_band`` column) or else a fraction; int = exactly that number; float = that number to
    ``REL``/``ABS``."""
    what = f"{where}: {column}" if where else column
    if want is None:
        assert pd.isna(got), f"{what}: expected missing, got {got!r}"
    elif isinstance(want, bool):
        assert not pd.isna(got) and bool(got) is want, f"{what}: expected {want}, got {got!r}"
    elif isinstance(want, str) and column.endswith("_band"):
        assert not pd.isna(got) and got == want, f"{what}: expected {want!r}, got {got!r}"
    elif isinstance(want, int):
        assert not pd.isna(got) and got == want, f"{what}: expected exactly {want}, got {got!r}"
    else:
        number = expected_number(want)
        assert not pd.isna(got) and not math.isnan(got), f"{what}: expected {want}, got {got!r}"
        assert got == pytest.approx(number, rel=REL, abs=ABS), f"{what}: expected {want} = {number!r}, got {got!r}"


def assert_expected(row: pd.Series, expect: dict, where: str) -> None:
    """Every column named in ``expect`` holds its expected value in the scored ``row``."""
    for column, want in expect.items():
        assert column in row.index, f"{where}: no output column {column!r}; columns are {list(row.index)}"
        assert_value(row[column], want, column, where)
