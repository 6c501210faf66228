"""Benchmark: ``alliance.stats.mixed.mixedlm`` against statsmodels ``MixedLM`` (and lme4 if present).

Simulated random intercept + slope data, 2,000 groups × 10 observations, model
``y ~ x + (x | g)`` fitted by REML. Prints each fitter's wall time, the speed ratio (goal: at
least 20× faster than statsmodels) and the largest absolute difference between the fixed-effect
estimates (they must agree). Run with ``python benchmarks/bench_mixedlm.py``; not a pytest test.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd


def simulate(n_groups: int, per_group: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    group = np.repeat(np.arange(n_groups), per_group)
    x = rng.uniform(0, 10, group.size)
    effects = rng.multivariate_normal([0, 0], [[4.0, 0.3], [0.3, 0.25]], n_groups)
    y = 5 + 0.8 * x + effects[group, 0] + effects[group, 1] * x + rng.normal(0, 1.5, group.size)
    return pd.DataFrame({"y": y, "x": x, "g": [f"g{index:05d}" for index in group]})


def best_time(function, repeats: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return min(times), result


def time_alliance(data: pd.DataFrame, repeats: int):
    from alliance.stats.mixed import mixedlm

    seconds, fit = best_time(lambda: mixedlm("y ~ x + (x | g)", data), repeats)
    return seconds, fit.fixed["estimate"].to_numpy(), fit.loglik, fit.converged


def time_statsmodels(data: pd.DataFrame, method: str | None):
    import statsmodels.formula.api as smf
    from statsmodels.tools.sm_exceptions import ConvergenceWarning

    def fit():
        with warnings.catch_warnings():
            # statsmodels may warn about its own optimiser; its converged flag and
            # log-likelihood are printed instead.
            warnings.simplefilter("ignore", ConvergenceWarning)
            model = smf.mixedlm("y ~ x", data, groups=data["g"], re_formula="~x")
            return model.fit(reml=True, method=[method] if method else None)

    seconds, result = best_time(fit, 1)
    return seconds, result.fe_params.to_numpy(), float(result.llf), bool(result.converged)


def time_lme4(data: pd.DataFrame) -> tuple[float, np.ndarray] | None:
    """lme4 timing through Rscript, or None if R or lme4 is not installed."""
    rscript = shutil.which("Rscript")
    if rscript is None:
        return None
    check = subprocess.run([rscript, "-e", "library(lme4)"], capture_output=True, check=False)
    if check.returncode != 0:
        return None
    with tempfile.TemporaryDirectory() as folder:
        csv = Path(folder) / "data.csv"
        data.to_csv(csv, index=False)
        script = (
            "suppressMessages(library(lme4));"
            f"d <- read.csv('{csv.as_posix()}');"
            "t <- system.time(m <- lmer(y ~ x + (x | g), d, REML = TRUE))[['elapsed']];"
            "cat(t, fixef(m), sep = '\\n')"
        )
        output = subprocess.run([rscript, "-e", script], capture_output=True, text=True, check=True)
    values = [float(line) for line in output.stdout.split()]
    return values[0], np.array(values[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--groups", type=int, default=2000)
    parser.add_argument("--per-group", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=5, help="best of N runs for alliance")
    parser.add_argument("--seed", type=int, default=20240501)
    parser.add_argument("--skip-default", action="store_true",
                        help="do not also time statsmodels with its default optimiser (slow)")
    args = parser.parse_args()

    data = simulate(args.groups, args.per_group, args.seed)
    print(f"y ~ x + (x | g), REML: {args.groups} groups x {args.per_group} observations = {len(data)} rows")

    rows = {"alliance mixedlm": time_alliance(data, args.repeats),
            "statsmodels (lbfgs)": time_statsmodels(data, "lbfgs")}
    if not args.skip_default:
        rows["statsmodels (default)"] = time_statsmodels(data, None)
    lme4 = time_lme4(data)

    ours = rows["alliance mixedlm"]
    header = f"{'fitter':<24}{'seconds':>9}{'REML loglik':>16}{'converged':>11}{'max |dβ|':>11}"
    print(header)
    print("-" * len(header))
    for name, (seconds, estimates, loglik, converged) in rows.items():
        difference = np.max(np.abs(estimates - ours[1]))
        print(f"{name:<24}{seconds:>9.3f}{loglik:>16.6f}{converged!s:>11}{difference:>11.1e}")
    if lme4 is None:
        print(f"{'lme4 (Rscript)':<24}{'n/a':>9}   (Rscript with lme4 not found)")
    else:
        print(f"{'lme4 (Rscript)':<24}{lme4[0]:>9.3f}{'':>16}{'':>11}{np.max(np.abs(lme4[1] - ours[1])):>11.1e}")
    print()
    peer = rows["statsmodels (lbfgs)"]
    print(f"speed-up vs statsmodels (lbfgs, same optimum): {peer[0] / ours[0]:.1f}x (goal >= 20x)")
    print(f"max |fixed-effect difference| vs statsmodels (lbfgs): {np.max(np.abs(peer[1] - ours[1])):.2e}")
    if "statsmodels (default)" in rows:
        default = rows["statsmodels (default)"]
        print(f"speed-up vs statsmodels (default bfgs): {default[0] / ours[0]:.1f}x; its REML loglik is "
              f"{ours[2] - default[2]:.3g} below ours (it stops away from the optimum on these data)"
              if ours[2] - default[2] > 1e-6 else
              f"speed-up vs statsmodels (default bfgs): {default[0] / ours[0]:.1f}x")
    if lme4 is not None:
        print(f"speed-up vs lme4: {lme4[0] / ours[0]:.1f}x")

if __name__ == "__main__":
    main()
