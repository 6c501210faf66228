"""The result of a power analysis: one entry per test × n × attrition, with its Wilson interval.

:func:`_entries` adds up the :class:`~alliance.simulate.power.engine.BlockOutcome` of every block
per cell and test; :class:`PowerResult` holds the entries with the settings of the run, turns
into ``power.json`` (``to_dict``) and into tables (:meth:`PowerResult.table`,
:meth:`PowerResult.minimum_n`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from alliance.stats.results import Result

from .analytic import wilson_interval
from .design import SimulationDesign
from .engine import BlockOutcome

__all__ = ["PowerResult"]


@dataclass(frozen=True)
class PowerResult(Result):
    """Result of :func:`power_analysis`.

    Attributes
    ----------
    entries : tuple of dict
        One per test × n × attrition: ``test, x, y`` (``m`` for mediation, ``timepoints`` for the
        mixed model), ``n, attrition, effect`` (the population value simulated), ``effect_measure``
        (``r``, ``cohen_dz``, ``slope_per_timepoint`` or ``indirect_ab``), ``power, ci_low, ci_high``
        (95% Wilson interval), ``sims``, ``computed`` (trials where the test could be run) and
        ``mean_analysed`` (participants analysed per trial, on average).
    seed, sims, alpha : int, int, float
    scenario : str
        Id of the base scenario.
    overrides : dict
        The scenario overrides, as given.
    protocol : str
        Protocol id.
    tests : tuple of dict
        The tests, as resolved.
    settings : dict
        ``distribution``, ``mediation_ci`` (and ``n_boot``), ``power_ci``, ``attrition_pattern``,
        ``block_size``.
    """

    entries: tuple[dict[str, Any], ...]
    seed: int
    sims: int
    alpha: float
    scenario: str
    overrides: dict[str, Any]
    protocol: str
    tests: tuple[dict[str, Any], ...]
    settings: dict[str, Any] = field(default_factory=dict)

    def table(self) -> pd.DataFrame:
        """The entries as a DataFrame (columns as the entry keys; ``m``/``timepoints`` where used)."""
        return pd.DataFrame([{**e, "timepoints": ", ".join(e["timepoints"]) if "timepoints" in e else None}
                             for e in self.entries])

    def minimum_n(self, power: float = 0.8) -> pd.DataFrame:
        """Per test and attrition, the smallest simulated n whose power reaches ``power`` (or NaN)."""
        table = self.table()
        keys = ["test", "x", "y"] + (["m"] if "m" in table else []) + ["attrition"]
        rows = []
        for key, group in table.groupby(keys, dropna=False, sort=False):
            reached = group.loc[group["power"] >= power, "n"]
            rows.append({**dict(zip(keys, key, strict=True)), "n": int(reached.min()) if len(reached) else np.nan})
        return pd.DataFrame(rows)


def _entries(design: SimulationDesign, outcomes: Iterable[BlockOutcome],
             grid: list[tuple[int, float]]) -> tuple[dict[str, Any], ...]:
    totals: dict[tuple[int, float], np.ndarray] = {cell: np.zeros((3, len(design.tests)), dtype=np.int64)
                                                   for cell in grid}
    trials: dict[tuple[int, float], int] = dict.fromkeys(grid, 0)
    for outcome in outcomes:
        cell = (outcome.n, outcome.attrition)
        totals[cell] += np.array([outcome.rejected, outcome.computed, outcome.analysed], dtype=np.int64)
        trials[cell] += outcome.trials
    entries = []
    for k, test in enumerate(design.tests):
        for cell in grid:
            rejected, computed, analysed = (int(v) for v in totals[cell][:, k])
            count = trials[cell]
            low, high = wilson_interval(rejected, count)
            entries.append({
                **test.spec.to_dict(), "n": cell[0], "attrition": cell[1],
                "effect": test.effect, "effect_measure": test.effect_measure,
                "power": rejected / count, "ci_low": float(low), "ci_high": float(high), "sims": count,
                "computed": computed, "mean_analysed": analysed / count,
            })
    return tuple(entries)
