"""Planning and running a power analysis over a grid of sample sizes and attrition rates.

:class:`PowerPlan` builds the design, lays out the seeded blocks of every (n, attrition) cell,
times a pilot block to estimate the run time and group blocks into tasks of about a second, and
runs the tasks on an executor (:mod:`alliance.simulate.executors`; serial by default), collecting
a :class:`~alliance.simulate.power.results.PowerResult`. :func:`power_analysis` is build and run
in one call.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from alliance.protocol import default_protocol
from alliance.stats.results import to_plain

from ..executors import SerialExecutor
from ..scenario import Scenario, levin2024_scenario
from .design import SimulationDesign, build_design
from .engine import ATTRITION_PATTERN, BlockOutcome, BlockSpec, PowerTask, block_size, run_block, run_task
from .results import PowerResult, _entries
from .spec import PowerSpecificationError

__all__ = ["PowerPlan", "power_analysis"]

_PILOT_BLOCK = 2**31 - 1  # block index of the timing pilot (never a real block)


class PowerPlan:
    """A power analysis ready to run: design, grid of (n, attrition) cells and their blocks.

    Build with :meth:`PowerPlan.build` (or call :func:`power_analysis`), optionally ask
    :meth:`estimate_seconds` (a timed pilot) before :meth:`run`.
    """

    def __init__(self, design: SimulationDesign, n: Sequence[int], attrition: Sequence[float], sims: int, seed: int,
                 *, scenario_id: str, overrides: Mapping[str, Any], protocol_id: str, distribution: str):
        self.design = design
        self.n = [int(v) for v in n]
        self.attrition = [float(a) for a in attrition]
        self.sims = int(sims)
        self.seed = int(seed)
        self.scenario_id = scenario_id
        self.overrides = dict(overrides)
        self.protocol_id = protocol_id
        self.distribution = distribution
        self._seconds_per_trial: Callable[[int], float] | None = None

    @classmethod
    def build(cls, n: Sequence[int] | int, attrition: Sequence[float] | float = 0.0, sims: int = 2000, seed: int = 0,
              *, overrides: Mapping[str, Any] | None = None, tests: Sequence[Any] | None = None,
              alpha: float = 0.05, distribution: str = "beta", mediation_ci: str = "monte_carlo",
              n_boot: int = 1000, protocol=None, scenario: Scenario | None = None,
              exact_quantiles: bool = False) -> PowerPlan:
        """Prepare a power analysis (arguments as :func:`power_analysis`)."""
        ns = [int(n)] if np.ndim(n) == 0 else [int(v) for v in n]
        rates = [float(attrition)] if np.ndim(attrition) == 0 else [float(a) for a in attrition]
        if not ns or min(ns) < 3:
            raise PowerSpecificationError(f"sample sizes {ns}: each n must be at least 3")
        if not rates or any(not 0 <= a < 1 for a in rates):
            raise PowerSpecificationError(f"attrition {rates}: each rate must lie in [0, 1)")
        if int(sims) != sims or sims < 1:
            raise PowerSpecificationError(f"sims = {sims!r} must be a positive integer")
        if int(seed) != seed or seed < 0:
            raise PowerSpecificationError(f"seed = {seed!r} must be a non-negative integer")
        if protocol is None:
            protocol = default_protocol()
        base = scenario if scenario is not None else levin2024_scenario()
        overrides = dict(overrides or {})
        chosen = base.with_overrides(overrides) if overrides else base
        design = build_design(protocol, chosen, tests if tests is not None else protocol.power.tests,
                              distribution=distribution, alpha=alpha, mediation_ci=mediation_ci, n_boot=n_boot,
                              exact_quantiles=exact_quantiles)
        return cls(design, sorted(set(ns)), sorted(set(rates)), int(sims), int(seed), scenario_id=base.id,
                   overrides=overrides, protocol_id=str(getattr(protocol, "id", "")), distribution=distribution)

    @property
    def grid(self) -> list[tuple[int, float]]:
        """The (n, attrition) cells in output order."""
        return [(n, a) for n in self.n for a in self.attrition]

    @property
    def blocks(self) -> list[BlockSpec]:
        """Every seeded block of every cell."""
        out = []
        for n, a in self.grid:
            size = block_size(n)
            for block, start in enumerate(range(0, self.sims, size)):
                out.append(BlockSpec(n, a, block, min(size, self.sims - start)))
        return out

    @property
    def total_trials(self) -> int:
        return self.sims * len(self.grid)

    def _pilot(self) -> Callable[[int], float]:
        """Time a pilot block at the smallest and largest n: seconds per trial ≈ c₀ + c₁·n."""
        if self._seconds_per_trial is None:
            timings = []
            sizes = sorted({self.n[0], self.n[-1]})
            rate = max(self.attrition)
            run_block(self.design, BlockSpec(sizes[0], rate, _PILOT_BLOCK, 20), self.seed)  # warm-up
            for n in sizes:
                trials = max(20, min(block_size(n), self.sims))
                started = time.perf_counter()
                run_block(self.design, BlockSpec(n, rate, _PILOT_BLOCK, trials), self.seed)
                timings.append((time.perf_counter() - started) / trials)
            if len(sizes) == 1:
                per_trial = timings[0]
                self._seconds_per_trial = lambda n: per_trial
            else:
                slope = max((timings[1] - timings[0]) / (sizes[1] - sizes[0]), 0.0)
                intercept = max(timings[0] - slope * sizes[0], 0.0)
                self._seconds_per_trial = lambda n: intercept + slope * n
        return self._seconds_per_trial

    def estimate_seconds(self, workers: int = 1) -> float:
        """Estimated wall time of :meth:`run` on ``workers`` workers, from a timed pilot block.

        Parameters
        ----------
        workers : int

        Returns
        -------
        float
        """
        per_trial = self._pilot()
        work = sum(per_trial(b.n) * b.trials for b in self.blocks)
        tasks = self.tasks()
        longest = max(sum(per_trial(b.n) * b.trials for b in t.blocks) for t in tasks)
        return max(work / max(1, min(workers, len(tasks))), longest)

    def tasks(self, task_seconds: float = 1.0) -> list[PowerTask]:
        """Blocks grouped into tasks of at least ``task_seconds`` of estimated work each.

        Grouping never changes the result (each block is seeded by its cell), only the overhead.
        """
        per_trial = self._pilot()
        tasks, current, seconds = [], [], 0.0
        for spec in self.blocks:
            current.append(spec)
            seconds += per_trial(spec.n) * spec.trials
            if seconds >= task_seconds:
                tasks.append(PowerTask(self.seed, tuple(current)))
                current, seconds = [], 0.0
        if current:
            tasks.append(PowerTask(self.seed, tuple(current)))
        return tasks

    def run(self, executor=None, progress: Callable[[int, int], None] | None = None,
            task_seconds: float = 1.0) -> PowerResult:
        """Run every block and collect the power of each test in each cell.

        Parameters
        ----------
        executor : optional
            From :mod:`alliance.simulate.executors` (anything with ``map_unordered(fn, shared,
            items)``); serial in this process when omitted.
        progress : callable, optional
            Called as ``progress(trials_done, trials_total)`` after each task.
        task_seconds : float
            Target duration of one task.

        Returns
        -------
        PowerResult
        """
        executor = executor if executor is not None else SerialExecutor()
        tasks = self.tasks(task_seconds)
        done = 0
        outcomes: list[BlockOutcome] = []
        if progress is not None:
            progress(0, self.total_trials)
        for task_outcomes in executor.map_unordered(run_task, self.design, tasks):
            outcomes.extend(task_outcomes)
            done += sum(o.trials for o in task_outcomes)
            if progress is not None:
                progress(done, self.total_trials)
        outcomes.sort(key=lambda o: (o.n, o.attrition, o.block))
        design = self.design
        settings = {
            "distribution": self.distribution,
            "mediation_ci": design.mediation_ci,
            "power_ci": "wilson 95%",
            "attrition_pattern": ATTRITION_PATTERN,
            "mixed_model": "value ~ time + (1|participant), REML, Satterthwaite df; time = 0, 1, 2, … in protocol order",
            "block_size": {str(n): block_size(n) for n in self.n},
        }
        if design.mediation_ci == "bootstrap":
            settings["n_boot"] = design.n_boot
        return PowerResult(
            entries=_entries(design, outcomes, self.grid),
            seed=self.seed, sims=self.sims, alpha=design.alpha, scenario=self.scenario_id,
            overrides=to_plain(self.overrides), protocol=self.protocol_id,
            tests=tuple(t.spec.to_dict() for t in design.tests), settings=settings,
        )


def power_analysis(n: Sequence[int] | int, attrition: Sequence[float] | float = 0.0, sims: int = 2000,
                   seed: int = 0, *, overrides: Mapping[str, Any] | None = None, tests: Sequence[Any] | None = None,
                   alpha: float = 0.05, distribution: str = "beta", mediation_ci: str = "monte_carlo",
                   n_boot: int = 1000, protocol=None, scenario: Scenario | None = None, executor=None,
                   progress: Callable[[int, int], None] | None = None, task_seconds: float = 1.0) -> PowerResult:
    """Simulated power of the planned tests over a grid of sample sizes and attrition rates.

    Parameters
    ----------
    n : int or sequence of int
        Participants enrolled per trial (each at least 3).
    attrition : float or sequence of float
        Probability that a participant is lost to follow-up (see the module docstring).
    sims : int
        Simulated trials per (n, attrition).
    seed : int
        Root seed; the same seed gives the same result on any executor.
    overrides : mapping, optional
        Changes to the scenario (:meth:`Scenario.with_overrides`), e.g.
        ``{"correlations": [["wai_sr.total@prep", "grid_hamd17.total@week4", -0.4]]}``.
    tests : sequence of PowerTest or mapping, optional
        The tests; default the protocol's (``protocol.power.tests``).
    alpha : float
        Two-sided level.
    distribution : {"beta", "normal"}
        Calibrated bounded marginals, or normal marginals with the same moments and correlations.
    mediation_ci : {"monte_carlo", "bootstrap"}
        How the indirect effect is tested (see the module docstring).
    n_boot : int
        Bootstrap resamples per trial for ``mediation_ci="bootstrap"``.
    protocol : alliance.protocol.Protocol, optional
        Default: :func:`alliance.protocol.default_protocol`.
    scenario : Scenario, optional
        Default: :func:`levin2024_scenario`.
    executor : optional
        :mod:`alliance.simulate.executors`; serial by default.
    progress : callable, optional
        ``progress(trials_done, trials_total)``.
    task_seconds : float
        Target duration of one task.

    Returns
    -------
    PowerResult

    Examples
    --------
    >>> from alliance.simulate.power import power_analysis
    >>> result = power_analysis([24, 48], attrition=0.1, sims=200, seed=1,
    ...                         tests=[{"test": "correlation", "x": "wai_sr.total@prep",
    ...                                 "y": "grid_hamd17.total@week4"}])
    >>> [round(e["effect"], 2) for e in result.entries]
    [-0.65, -0.65]
    >>> result.entries[0]["power"] < result.entries[1]["power"]
    True
    """
    plan = PowerPlan.build(n, attrition, sims, seed, overrides=overrides, tests=tests, alpha=alpha,
                           distribution=distribution, mediation_ci=mediation_ci, n_boot=n_boot, protocol=protocol,
                           scenario=scenario)
    return plan.run(executor=executor, progress=progress, task_seconds=task_seconds)
