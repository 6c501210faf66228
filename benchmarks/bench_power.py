"""Simulation-based power: batched numpy vs a plain loop over ``alliance.stats``, and Dask vs serial.

Run from the project root::

    python benchmarks/bench_power.py [--trials 1000] [--n 24] [--attrition 0.1] [--n-boot 1000]

Part 1 — 1,000 simulated Levin-size trials (n = 24, attrition 0.1) with the full default test set
(4 correlations, the paired alliance change, the mixed-model time trend with Satterthwaite df, the
mediation indirect effect):

* **batched**: :func:`alliance.simulate.power.run_block` — simulating the trials *and* fitting
  every test (mediation: the closed-form Monte Carlo CI decision);
* **loop**: the same simulated trials (their drawing is not timed, which favours the loop), one
  ``alliance.stats`` call per trial and test — ``correlation``, ``paired_ttest``, ``mixedlm``,
  ``mediation`` with a percentile bootstrap of ``--n-boot`` resamples (1,000 by default, smaller
  than the analysis pipeline's 5,000 so the loop stays a few seconds per hundred trials).

The decisions of the correlation, paired and mixed-model tests must agree trial by trial (same
statistics); the mediation decisions differ only where the bootstrap and the Monte Carlo CI
disagree near the boundary, so their agreement rate is printed.

Part 2 — a grid (n = 20, 24, 40; attrition 0.1; 1,000 trials each) run serially and on a Dask
``LocalCluster`` with 2 single-threaded worker processes, one task per block; the results must be
identical (``PowerResult.to_dict()`` equal).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from alliance import stats
from alliance.protocol import default_protocol
from alliance.simulate.executors import DaskExecutor, SerialExecutor
from alliance.simulate.power import BlockSpec, PowerPlan, run_block, simulate_scores, trial_statistics

SEED = 20240301


def loop_decisions(design, values, observed, n_boot: int) -> list[np.ndarray]:
    """One alliance.stats call per trial and test; True where the test rejects at α."""
    decisions = []
    for test in design.tests:
        columns = [values[..., c] for c in test.columns]
        present = [observed[..., c] for c in test.columns]
        rejected = np.zeros(values.shape[0], dtype=bool)
        for s in range(values.shape[0]):
            try:
                if test.spec.test in ("correlation", "paired"):
                    both = present[0][s] & present[1][s]
                    first = np.where(both, columns[0][s], np.nan)
                    second = np.where(both, columns[1][s], np.nan)
                    function = stats.correlation if test.spec.test == "correlation" else stats.paired_ttest
                    rejected[s] = function(first, second).p < design.alpha
                elif test.spec.test == "mixed_model":
                    participant, time_index = np.nonzero(np.stack(present, 2)[s])
                    frame = pd.DataFrame({"participant": participant.astype(str), "time": time_index.astype(float),
                                          "value": np.stack(columns, 2)[s][participant, time_index]})
                    fit = stats.mixedlm("value ~ time + (1|participant)", frame)
                    rejected[s] = fit.fixed.loc["time", "p"] < design.alpha
                else:
                    keep = present[0][s] & present[1][s] & present[2][s]
                    frame = pd.DataFrame({"x": columns[0][s][keep], "m": columns[1][s][keep],
                                          "y": columns[2][s][keep]})
                    fit = stats.mediation(frame, "x", "m", "y", n_boot=n_boot, seed=s)
                    rejected[s] = fit.indirect_ci_low > 0 or fit.indirect_ci_high < 0
            except ValueError:
                rejected[s] = False
        decisions.append(rejected)
    return decisions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--n", type=int, default=24)
    parser.add_argument("--attrition", type=float, default=0.1)
    parser.add_argument("--n-boot", type=int, default=1000)
    parser.add_argument("--skip-dask", action="store_true")
    args = parser.parse_args()

    protocol = default_protocol()
    plan = PowerPlan.build(args.n, args.attrition, args.trials, SEED, protocol=protocol)
    design = plan.design
    spec = BlockSpec(args.n, args.attrition, 0, args.trials)
    run_block(design, BlockSpec(args.n, args.attrition, 1, 50), SEED)  # warm-up (imports, caches)

    timings = []
    for _ in range(5):
        started = time.perf_counter()
        outcome = run_block(design, spec, SEED)
        timings.append(time.perf_counter() - started)
    batched_seconds = float(np.median(timings))

    values, observed = simulate_scores(design, args.n, args.attrition, args.trials, SEED, 0)
    started = time.perf_counter()
    tests_only = trial_statistics(design, values, observed)
    tests_only_seconds = time.perf_counter() - started
    started = time.perf_counter()
    loop = loop_decisions(design, values, observed, args.n_boot)
    loop_seconds = time.perf_counter() - started

    print(f"Part 1: {args.trials} simulated trials, n = {args.n}, attrition {args.attrition:g}, "
          f"{len(design.tests)} tests each")
    print(f"  batched (simulate + all tests, median of 5): {batched_seconds:8.3f} s")
    print(f"  batched (tests only)                      : {tests_only_seconds:8.3f} s")
    print(f"  loop over alliance.stats (tests only; mediation bootstrap {args.n_boot}): {loop_seconds:8.3f} s")
    print(f"  ratio loop / batched: {loop_seconds / batched_seconds:,.0f}x "
          f"(tests only: {loop_seconds / tests_only_seconds:,.0f}x)")
    for test, (_, _, rejected), expected in zip(design.tests, tests_only, loop, strict=True):
        agree = float(np.mean(rejected == expected))
        print(f"  {test.spec.label}: power batched {rejected.mean():.3f}, loop {expected.mean():.3f}, "
              f"decisions agree in {agree:.1%} of trials")
    assert outcome.rejected == tuple(int(r.sum()) for _, _, r in tests_only)

    if args.skip_dask:
        return
    grid = PowerPlan.build([20, 24, 40], [args.attrition], 1000, SEED, protocol=protocol)
    started = time.perf_counter()
    with SerialExecutor() as executor:
        serial = grid.run(executor, task_seconds=0.0)
    serial_seconds = time.perf_counter() - started
    started = time.perf_counter()
    with DaskExecutor(workers=2) as executor:
        cluster_started = time.perf_counter()
        dask = grid.run(executor, task_seconds=0.0)
        dask_run_seconds = time.perf_counter() - cluster_started
    dask_seconds = time.perf_counter() - started
    print(f"Part 2: grid n = 20, 24, 40 × attrition {args.attrition:g} × 1000 trials, {len(grid.blocks)} tasks")
    print(f"  serial: {serial_seconds:.2f} s; Dask LocalCluster(2 workers): {dask_seconds:.2f} s "
          f"({dask_run_seconds:.2f} s after the cluster started)")
    print(f"  Dask result identical to serial: {dask.to_dict() == serial.to_dict()}")


if __name__ == "__main__":
    main()
