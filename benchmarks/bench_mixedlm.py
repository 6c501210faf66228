"""Benchmark: ``alliance.stats.mixedlm`` against lme4 (when ``Rscript`` with lme4 is present) and statsmodels.

Shapes (simulated, REML):

1. ``y ~ x + (x | g)``: 2,000 groups × 10 observations (one grouping factor, correlated slope);
2. crossed ``y ~ week + (1 | participant) + (1 | facilitator)``: 2,000 participants × 200
   facilitators × 5 visits;
3. multiple membership ``y ~ week + (1 | participant) + (1 | mm(f1, f2))``: the same, each
   participant with two facilitators; lme4 fits it through its modular functions with a hand-built
   membership block of ``Zt`` (``lFormula`` → edit ``Zt`` → ``mkLmerDevfun`` → ``optimizeLmer``).

For each: the median wall time of ``--repeats`` fits, the log-likelihood and its difference from
lme4's (goal: within 1e-6 at equal estimates) and the speed ratio (goal: as fast as lme4 or
faster; at least 20× statsmodels where statsmodels fits the model at all — it has no crossed or
membership terms other than dense variance components of one group, not run at this size).
Then the CPU time per fit of shape 2 while another process keeps a core busy, against the quiet
figure (goal: at most 1.5×). Run with ``python benchmarks/bench_mixedlm.py``; not a pytest test.
"""

from __future__ import annotations

import argparse
import multiprocessing
import shutil
import subprocess
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd


def simulate_slopes(n_groups: int, per_group: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    group = np.repeat(np.arange(n_groups), per_group)
    x = rng.uniform(0, 10, group.size)
    effects = rng.multivariate_normal([0, 0], [[4.0, 0.3], [0.3, 0.25]], n_groups)
    y = 5 + 0.8 * x + effects[group, 0] + effects[group, 1] * x + rng.normal(0, 1.5, group.size)
    return pd.DataFrame({"y": y, "x": x, "g": [f"g{index:05d}" for index in group]})


def simulate_facilitators(participants: int, facilitators: int, visits: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    first = rng.integers(0, facilitators, participants)
    second = (first + 1 + rng.integers(0, facilitators - 1, participants)) % facilitators
    pid = np.repeat(np.arange(participants), visits)
    week = np.tile(np.arange(visits), participants).astype(float)
    u = rng.normal(0, 1.0, participants)
    v = rng.normal(0, 0.5, facilitators)
    y = 2 + 0.3 * week + u[pid] + 0.5 * (v[first[pid]] + v[second[pid]]) + rng.normal(0, 1, pid.size)
    return pd.DataFrame({"y": y, "week": week, "participant": [f"p{i:05d}" for i in pid],
                         "facilitator": [f"f{j:04d}" for j in first[pid]],
                         "f1": [f"f{j:04d}" for j in first[pid]], "f2": [f"f{j:04d}" for j in second[pid]]})


SHAPES = {
    "slopes": ("y ~ x + (x | g)", None),
    "crossed": ("y ~ week + (1 | participant) + (1 | facilitator)", None),
    "membership": ("y ~ week + (1 | participant) + (1 | mm(f1, f2))", "mm"),
}


def median_time(function, repeats: int) -> tuple[float, float, object]:
    walls, cpus, result = [], [], None
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        result = function()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return float(np.median(walls)), float(np.median(cpus)), result


def time_alliance(formula: str, data: pd.DataFrame, repeats: int):
    from alliance.stats import mixedlm

    wall, cpu, fit = median_time(lambda: mixedlm(formula, data), repeats)
    return {"seconds": wall, "cpu": cpu, "loglik": fit.loglik, "estimates": fit.fixed["estimate"].to_numpy(),
            "converged": fit.converged}


def time_statsmodels(data: pd.DataFrame):
    import statsmodels.formula.api as smf
    from statsmodels.tools.sm_exceptions import ConvergenceWarning

    def fit():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            return smf.mixedlm("y ~ x", data, groups=data["g"], re_formula="~x").fit(reml=True, method=["lbfgs"])

    wall, cpu, result = median_time(fit, 1)
    return {"seconds": wall, "cpu": cpu, "loglik": float(result.llf), "estimates": result.fe_params.to_numpy(),
            "converged": bool(result.converged)}


_R_FIT = """
suppressMessages(library(lme4))
d <- read.csv("{csv}")
fit <- function() lmer({formula}, d, REML = TRUE)
"""
_R_MEMBERSHIP = """
suppressMessages(library(lme4))
d <- read.csv("{csv}")
fit <- function() {{
  lf <- lFormula(y ~ week + (1 | participant) + (1 | f1), data = d)
  levels <- sort(union(d$f1, d$f2))
  block <- Matrix::sparseMatrix(i = c(match(d$f1, levels), match(d$f2, levels)), j = rep(seq_len(nrow(d)), 2),
                                x = 0.5, dims = c(length(levels), nrow(d)))
  which <- which(names(lf$reTrms$cnms) == "f1")
  rows <- split(seq_len(nrow(lf$reTrms$Zt)), rep(seq_along(lf$reTrms$Ztlist), sapply(lf$reTrms$Ztlist, nrow)))
  lf$reTrms$Ztlist[[which]] <- block
  lf$reTrms$Zt <- do.call(rbind, lf$reTrms$Ztlist)
  lf$reTrms$flist$f1 <- factor(d$f1, levels = levels)
  devfun <- do.call(mkLmerDevfun, lf)
  opt <- optimizeLmer(devfun)
  mkMerMod(environment(devfun), opt, lf$reTrms, fr = lf$fr)
}}
"""
_R_TIME = """
times <- sapply(1:{repeats}, function(i) system.time(m <<- fit())[["elapsed"]])
cat(sprintf("%.12f", c(median(times), as.numeric(logLik(m)), fixef(m))), sep = "\\n")
"""


def time_lme4(formula: str, data: pd.DataFrame, kind: str | None, repeats: int):
    rscript = shutil.which("Rscript")
    if rscript is None or subprocess.run([rscript, "-e", "library(lme4)"], capture_output=True,
                                         check=False).returncode != 0:
        return None
    with tempfile.TemporaryDirectory() as folder:
        csv = Path(folder) / "data.csv"
        data.to_csv(csv, index=False)
        template = _R_MEMBERSHIP if kind == "mm" else _R_FIT
        script = template.format(csv=csv.as_posix(), formula=formula) + _R_TIME.format(repeats=repeats)
        output = subprocess.run([rscript, "-e", script], capture_output=True, text=True, check=False)
    if output.returncode != 0:
        raise RuntimeError(f"lme4 failed on {formula}: {output.stderr.strip()[-500:]}")
    values = [float(line) for line in output.stdout.split()]
    return {"seconds": values[0], "loglik": values[1], "estimates": np.array(values[2:])}


def _busy(stop) -> None:
    a = np.random.default_rng(0).normal(size=(300, 300))
    while not stop.is_set():
        a = np.tanh(a @ a / 300.0)


def cpu_under_load(formula: str, data: pd.DataFrame, repeats: int) -> tuple[float, float]:
    quiet = time_alliance(formula, data, repeats)["cpu"]
    stop = multiprocessing.Event()
    worker = multiprocessing.Process(target=_busy, args=(stop,), daemon=True)
    worker.start()
    try:
        time.sleep(0.5)
        loaded = time_alliance(formula, data, repeats)["cpu"]
    finally:
        stop.set()
        worker.join(5)
    return quiet, loaded


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--groups", type=int, default=2000)
    parser.add_argument("--per-group", type=int, default=10)
    parser.add_argument("--participants", type=int, default=2000)
    parser.add_argument("--facilitators", type=int, default=200)
    parser.add_argument("--visits", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=5, help="median of N fits")
    parser.add_argument("--seed", type=int, default=20240501)
    args = parser.parse_args()

    slopes = simulate_slopes(args.groups, args.per_group, args.seed)
    facilitated = simulate_facilitators(args.participants, args.facilitators, args.visits, args.seed)
    header = f"{'shape':<12}{'fitter':<22}{'seconds':>9}{'REML loglik':>18}{'Δ loglik':>11}{'max |dβ|':>10}{'ratio':>8}"
    print(f"slopes: {len(slopes)} rows; crossed and membership: {len(facilitated)} rows "
          f"({args.participants} participants, {args.facilitators} facilitators, {args.visits} visits); "
          f"median of {args.repeats}")
    print(header)
    print("-" * len(header))
    for shape, (formula, kind) in SHAPES.items():
        data = slopes if shape == "slopes" else facilitated
        ours = time_alliance(formula, data, args.repeats)
        rows = {"alliance": ours}
        lme4 = time_lme4(formula, data, kind, args.repeats)
        if lme4 is not None:
            rows["lme4 (Rscript)"] = lme4
        if shape == "slopes":
            rows["statsmodels (lbfgs)"] = time_statsmodels(data)
        for name, row in rows.items():
            delta = row["loglik"] - ours["loglik"]
            diff = np.max(np.abs(row["estimates"] - ours["estimates"]))
            ratio = row["seconds"] / ours["seconds"]
            print(f"{shape:<12}{name:<22}{row['seconds']:>9.3f}{row['loglik']:>18.6f}{delta:>11.1e}{diff:>10.1e}"
                  f"{ratio:>7.1f}x")
        if lme4 is None:
            print(f"{shape:<12}{'lme4 (Rscript)':<22}{'n/a':>9}   (Rscript with lme4 not found)")
    quiet, loaded = cpu_under_load(SHAPES["crossed"][0], facilitated, args.repeats)
    print()
    print(f"crossed, CPU seconds per fit: quiet {quiet:.3f}, with a busy process {loaded:.3f} "
          f"({loaded / quiet:.2f}x; goal <= 1.5x)")
    print("ratio = the fitter's time / alliance's (above 1: alliance is faster)")


if __name__ == "__main__":
    main()
