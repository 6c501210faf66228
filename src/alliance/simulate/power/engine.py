"""The simulation engine: one seeded block of trials, drawn and tested as arrays.

A block of ``block_size(n)`` trials of one (n, attrition) cell draws its scores, its attrition
and any resampling from separate streams of ``SeedSequence(seed, spawn_key=cell)``
(:func:`simulate_scores`), runs every test of the design on all trials at once with
:mod:`alliance.simulate.batched` (:func:`trial_statistics`) and returns counts
(:class:`BlockOutcome`). :class:`PowerTask` groups blocks into one worker call and
:func:`run_task` is the function executors run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import batched
from ..copula import BetaMarginal
from .design import SimulationDesign

__all__ = [
    "ATTRITION_PATTERN",
    "BlockOutcome",
    "BlockSpec",
    "PowerTask",
    "block_size",
    "run_block",
    "run_task",
    "simulate_scores",
    "trial_statistics",
]

ATTRITION_PATTERN = (
    "monotone dropout, missing completely at random: a participant lost to follow-up (probability "
    "= attrition) leaves after a timepoint drawn uniformly from all protocol timepoints but the "
    "last; derived measures need the last of their source timepoints"
)
_STREAM_SCORES, _STREAM_ATTRITION, _STREAM_RESAMPLING = 0, 1, 2


def block_size(n: int) -> int:
    """Trials per seeded block at sample size n (a function of n only, so results are too)."""
    return int(min(1000, max(50, 250_000 // max(n, 1))))


def _stream(seed: int, n: int, attrition: float, block: int, stream: int) -> np.random.Generator:
    key = (int(n), int(round(attrition * 1_000_000)), int(block), stream)
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))


def simulate_scores(design: SimulationDesign, n: int, attrition: float, trials: int, seed: int,
                    block: int) -> tuple[np.ndarray, np.ndarray]:
    """Draw one block of trials: the used measures and which of them were observed.

    Parameters
    ----------
    design : SimulationDesign
    n : int
        Participants enrolled per trial.
    attrition : float
        Probability that a participant is lost to follow-up.
    trials : int
        Trials in the block.
    seed : int
        Root seed.
    block : int
        Block index within the (n, attrition) cell.

    Returns
    -------
    values : ndarray, shape (trials, n, used measures)
    observed : ndarray of bool, same shape
    """
    scores = _stream(seed, n, attrition, block, _STREAM_SCORES)
    # the latent normal scores of every measure, as ScoreModel.draw; only the used ones are kept
    latent = scores.standard_normal((trials, n, design.factor.shape[0])) @ design.factor.T[:, list(design.columns)]
    values = np.empty_like(latent)
    for k, transform in enumerate(design.transforms):
        if isinstance(transform, tuple):
            mean, sd = transform
            values[..., k] = mean + sd * latent[..., k]
        elif isinstance(transform, BetaMarginal):
            values[..., k] = transform.from_normal(latent[..., k])
        else:
            values[..., k] = transform(latent[..., k])
    dropout = _stream(seed, n, attrition, block, _STREAM_ATTRITION)
    lost = dropout.random((trials, n)) < attrition
    last = np.where(lost, dropout.integers(0, max(design.n_timepoints - 1, 1), size=(trials, n)),
                    design.n_timepoints - 1)
    observed = design.positions <= last[..., None]
    return values, observed


def trial_statistics(design: SimulationDesign, values: np.ndarray, observed: np.ndarray,
                     rng: np.random.Generator | None = None) -> list[tuple[Any, np.ndarray, np.ndarray]]:
    """Run every test of the design on a block of trials.

    Parameters
    ----------
    design : SimulationDesign
    values, observed : ndarray
        From :func:`simulate_scores`.
    rng : numpy.random.Generator, optional
        Resampling stream (bootstrap mediation intervals only).

    Returns
    -------
    list of (batch, p, rejected)
        Per test, in design order: the batched statistics (:mod:`alliance.simulate.batched`), the
        p-values (for mediation with a bootstrap CI: NaN) and whether the test rejected.
    """
    out = []
    for test in design.tests:
        columns = [values[..., c] for c in test.columns]
        present = [observed[..., c] for c in test.columns]
        kind = test.spec.test
        if kind == "correlation":
            batch = batched.pearson_correlation(columns[0], columns[1], present[0] & present[1])
            p = batch.p
        elif kind == "paired":
            batch = batched.paired_difference(columns[0], columns[1], present[0] & present[1])
            p = batch.p
        elif kind == "mixed_model":
            batch = batched.random_intercept_trend(np.stack(columns, axis=2), np.stack(present, axis=2),
                                                   np.arange(len(columns), dtype=float))
            p = batch.p
        else:
            complete = present[0] & present[1] & present[2]
            batch = batched.mediation_paths(columns[0], columns[1], columns[2], complete)
            if design.mediation_ci == "monte_carlo":
                p = batched.mediation_monte_carlo_p(batch)
            else:
                low, high = batched.mediation_bootstrap_interval(
                    columns[0], columns[1], columns[2], complete, rng, n_boot=design.n_boot,
                    confidence=1.0 - design.alpha)
                out.append((batch, np.full(low.shape, np.nan), batch.computed & ((low > 0) | (high < 0))))
                continue
        out.append((batch, p, batch.computed & (p < design.alpha)))
    return out


def _analysed(batch) -> np.ndarray:
    return batch.n_groups if isinstance(batch, batched.TrendBatch) else batch.n


@dataclass(frozen=True)
class BlockSpec:
    """One seeded block of trials of one (n, attrition) cell."""

    n: int
    attrition: float
    block: int
    trials: int


@dataclass(frozen=True)
class BlockOutcome:
    """What a block contributes: per test, rejections, computable trials and participants analysed."""

    n: int
    attrition: float
    block: int
    trials: int
    rejected: tuple[int, ...]
    computed: tuple[int, ...]
    analysed: tuple[int, ...]


def run_block(design: SimulationDesign, spec: BlockSpec, seed: int) -> BlockOutcome:
    """Simulate and test one block; the unit of seeding.

    Parameters
    ----------
    design : SimulationDesign
    spec : BlockSpec
    seed : int

    Returns
    -------
    BlockOutcome
    """
    values, observed = simulate_scores(design, spec.n, spec.attrition, spec.trials, seed, spec.block)
    rng = _stream(seed, spec.n, spec.attrition, spec.block, _STREAM_RESAMPLING)
    results = trial_statistics(design, values, observed, rng)
    return BlockOutcome(
        n=spec.n, attrition=spec.attrition, block=spec.block, trials=spec.trials,
        rejected=tuple(int(r.sum()) for _, _, r in results),
        computed=tuple(int(batch.computed.sum()) for batch, _, _ in results),
        analysed=tuple(int(_analysed(batch).sum()) for batch, _, _ in results),
    )


@dataclass(frozen=True)
class PowerTask:
    """Blocks run by one worker call (coarse: at least about a second of work)."""

    seed: int
    blocks: tuple[BlockSpec, ...]

    @property
    def trials(self) -> int:
        return sum(b.trials for b in self.blocks)


def run_task(design: SimulationDesign, task: PowerTask) -> list[BlockOutcome]:
    """Run the blocks of a task (the function executors call; top level so it pickles)."""
    return [run_block(design, spec, task.seed) for spec in task.blocks]
