"""The shared result base: frozen dataclasses with a JSON-safe ``to_dict()``."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

import alliance.stats as stats_package
from alliance.stats.results import Result


@dataclasses.dataclass(frozen=True)
class Example(Result):
    count: int
    estimate: float
    missing: float
    table: pd.DataFrame
    names: tuple[str, ...]


def test_to_dict_converts_numpy_nan_and_dataframes():
    table = pd.DataFrame({"estimate": [1.5, np.nan]}, index=pd.Index(["(Intercept)", "Days"], name="term"))
    result = Example(
        count=np.int64(3), estimate=np.float64(2.5), missing=float("nan"), table=table, names=("a", "b")
    )
    as_dict = result.to_dict()
    assert as_dict == {
        "count": 3,
        "estimate": 2.5,
        "missing": None,
        "table": [{"term": "(Intercept)", "estimate": 1.5}, {"term": "Days", "estimate": None}],
        "names": ["a", "b"],
    }
    assert type(as_dict["count"]) is int and type(as_dict["estimate"]) is float
    json.dumps(as_dict, allow_nan=False)


def test_results_are_frozen():
    result = stats_package.correlation([1.0, 2.0, 3.0, 4.0], [1.0, 3.0, 2.0, 4.0])
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.r = 0.0  # type: ignore[misc]


def test_package_exports_every_public_function():
    for name in (
        "paired_ttest",
        "wilcoxon",
        "correlation",
        "partial_correlation",
        "mediation",
        "cronbach_alpha",
        "omega",
        "adjust_pvalues",
        "mixedlm",
    ):
        assert callable(getattr(stats_package, name)), name
    for name in (
        "PairedTest",
        "WilcoxonTest",
        "Correlation",
        "PartialCorrelation",
        "Mediation",
        "CronbachAlpha",
        "Omega",
    ):
        assert issubclass(getattr(stats_package, name), Result), name
