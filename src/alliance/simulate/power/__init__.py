"""Simulation-based power for the planned analyses of a psychedelic-assisted therapy trial.

For each candidate sample size n and rate of attrition, thousands of trials are drawn from the
calibrated score model (:func:`alliance.simulate.score_model`: the published correlations of
alliance, acute experience and depression, on the instruments' bounded scales), participants are
lost to follow-up, the planned tests are run on every trial, and the power of each test is the
share of trials in which it rejects at level α.

Why simulation, and why our own: G*Power has no mixed models or mediation, and R's ``simr``
refits one model per simulated data set, serially. Here a whole batch of trials is one set of
array operations (:mod:`alliance.simulate.batched`), batches run on one core, local processes or
a Dask cluster (:mod:`alliance.simulate.executors`), and the result does not depend on which.

Conventions (the same as the analysis pipeline, :mod:`alliance.analysis.pipeline`):

* **Attrition** — each participant is lost to follow-up with probability ``attrition``,
  independently of their scores (missing completely at random). A participant who is lost
  leaves after a timepoint drawn uniformly from all of the protocol's timepoints but the last
  (the same monotone dropout as :func:`alliance.simulate.simulate_trial`) and has no data at any
  later timepoint. A derived measure (``meq30.total@peak``, the higher of the two dosing
  sessions) counts as observed only for participants who reached the last of its sessions, so
  its value is the calibrated peak.
* **Missing data within a test** — correlations and paired tests use every participant with both
  measures (pairwise complete), mediation the participants complete on x, m and y (listwise), the
  mixed model every observed participant × timepoint. A trial in which a test cannot be computed
  (fewer than 3 pairs, fewer than 5 complete for mediation, too few observations for the mixed
  model) counts as not rejecting; the number of trials where it could be computed is reported.
* **Mixed model** — ``value ~ time + (1|participant)`` over the timepoints that give the scale,
  with time = 0, 1, 2 … in protocol order (a linear trend), fitted by REML; the slope is tested
  with Satterthwaite's df, as lmerTest.
* **Mediation** — the indirect effect a·b of x on y through m is significant when its 95% Monte
  Carlo confidence interval (Preacher & Selig 2012) excludes zero. This is the default because
  the decision has a closed form (:func:`alliance.simulate.batched.mediation_monte_carlo_p`): it
  is exact — as with infinitely many Monte Carlo draws — and costs the same at any n, whereas
  a percentile bootstrap refits every resample (its cost grows with n × resamples) and adds
  resampling noise to each decision. ``mediation_ci="bootstrap"`` runs the vectorized
  percentile bootstrap that :func:`alliance.stats.mediation` (the analysis pipeline) uses.
* **Power CI** — a 95% Wilson score interval for the binomial proportion of rejections among
  the ``sims`` trials.

Determinism: the root seed and the cell — (n, attrition in parts per million, block) — make a
:class:`numpy.random.SeedSequence` (``SeedSequence(seed, spawn_key=cell)``), from which a trial
block draws its scores, its attrition and any resampling in separate streams. Blocks have a size
fixed by n, so every result depends on the seed, n, attrition and sims only: not on the number of
workers, the executor or which other sample sizes are in the grid.

Modules
-------
==================  ===========================================================================
module              job
==================  ===========================================================================
``spec``            the power-test schema: test types, :class:`PowerTest`, the default test list,
                    parsing of sample sizes and scenario-file options (no numerical code)
``design``          :func:`build_design`: tests resolved against the protocol and the calibrated
                    score model into a picklable :class:`SimulationDesign`
``engine``          one seeded block of trials: random streams, :func:`simulate_scores`,
                    :func:`trial_statistics`, :func:`run_block`, :func:`run_task`
``analytic``        closed-form power (correlation, paired t) and the Wilson interval
``results``         :class:`PowerResult` and its entries per test × n × attrition
``plan``            :class:`PowerPlan` (grid, blocks, timing pilot, tasks, run on an executor)
                    and :func:`power_analysis`
==================  ===========================================================================

References
----------
Levin AW et al. (2024). PLoS ONE 19(3):e0300501. Murphy R et al. (2022). Front Pharmacol
12:788155. Preacher KJ, Selig JP (2012). Communication Methods and Measures 6(2):77–98.
Wilson EB (1927). Probable inference, the law of succession, and statistical inference. JASA
22(158):209–212. Arnold BF et al. (2011). Simulation methods to estimate design power: an
overview for applied research. BMC Med Res Methodol 11:94.
"""

from .analytic import POWER_CONFIDENCE, analytic_correlation_power, analytic_paired_power, wilson_interval
from .design import SimulationDesign, build_design
from .engine import (
    ATTRITION_PATTERN,
    BlockOutcome,
    BlockSpec,
    PowerTask,
    block_size,
    run_block,
    run_task,
    simulate_scores,
    trial_statistics,
)
from .plan import PowerPlan, power_analysis
from .results import PowerResult
from .spec import (
    DISTRIBUTIONS,
    MEDIATION_CI,
    POWER_OPTIONS,
    TESTS,
    PowerSpecificationError,
    PowerTest,
    default_power_tests,
    parse_n_range,
    split_power_options,
)

__all__ = [
    "ATTRITION_PATTERN",
    "DISTRIBUTIONS",
    "MEDIATION_CI",
    "POWER_CONFIDENCE",
    "POWER_OPTIONS",
    "TESTS",
    "BlockOutcome",
    "BlockSpec",
    "PowerPlan",
    "PowerResult",
    "PowerSpecificationError",
    "PowerTask",
    "PowerTest",
    "SimulationDesign",
    "analytic_correlation_power",
    "analytic_paired_power",
    "block_size",
    "build_design",
    "default_power_tests",
    "parse_n_range",
    "power_analysis",
    "run_block",
    "run_task",
    "simulate_scores",
    "split_power_options",
    "trial_statistics",
    "wilson_interval",
]
