"""Shared fixtures of the statistics tests: R's reference results and the public data sets they used.

``reference/`` is a verbatim copy of the shared R reference set (see its README for provenance
and the tolerances); tests must not modify it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

REFERENCE_DIRECTORY = Path(__file__).parent / "reference"

# Tolerances of reference/README.md.
ESTIMATE_REL = 1e-4  # estimates, SEs, variance components, alphas, r, t
ESTIMATE_ABS = 1e-6  # … or absolute, near zero
DF_REL = 1e-3  # Satterthwaite df
P_REL = 1e-3  # p-values
P_ABS = 1e-10

# How each CSV was written by reference/make_reference.R.
_READERS: dict[str, dict] = {
    "sleepstudy": {"dtype": {"Subject": str}},  # Subject written as character
    "bfi": {"dtype": {"id": str}},  # id = R row names
    "swiss": {"index_col": 0},  # row names = provinces
}


def assert_close(actual: float, expected: float, rel: float, abs_: float = 0.0, what: str = "") -> None:
    """Assert ``|actual − expected| ≤ max(rel·|expected|, abs_)``; ``None`` expected means NaN actual."""
    label = f"{what}: " if what else ""
    if expected is None:
        assert actual is None or (isinstance(actual, float) and math.isnan(actual)), (
            f"{label}expected NA, got {actual}"
        )
        return
    assert actual is not None and math.isfinite(actual), f"{label}expected {expected!r}, got {actual!r}"
    tolerance = max(rel * abs(expected), abs_)
    assert abs(actual - expected) <= tolerance, (
        f"{label}{actual!r} differs from {expected!r} by {abs(actual - expected):.3g} (tolerance {tolerance:.3g})"
    )


@pytest.fixture(scope="session")
def reference() -> dict:
    """The R results in ``reference/reference.json`` (sections lmm, alpha, paired, correlation, mediation)."""
    with open(REFERENCE_DIRECTORY / "reference.json", encoding="utf-8") as handle:
        return json.load(handle)


@pytest.fixture(scope="session")
def reference_data() -> Callable[[str], pd.DataFrame]:
    """Return a loader: ``reference_data("sleepstudy" | "bfi" | "swiss")`` → a fresh DataFrame."""
    cache: dict[str, pd.DataFrame] = {}

    def load(name: str) -> pd.DataFrame:
        if name not in _READERS:
            raise KeyError(f"unknown reference data set {name!r}; available: {sorted(_READERS)}")
        if name not in cache:
            cache[name] = pd.read_csv(REFERENCE_DIRECTORY / "data" / f"{name}.csv", **_READERS[name])
        return cache[name].copy()

    return load


def reference_entry(section: list[dict], name: str) -> dict:
    """The entry called ``name`` in a section of reference.json."""
    for entry in section:
        if entry["name"] == name:
            return entry
    raise KeyError(f"no reference entry {name!r}; found {[entry['name'] for entry in section]}")
