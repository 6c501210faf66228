# Reference values for full-information ML (alliance.stats.correlation_matrix(missing="fiml") and
# alliance.stats.mediation(missing="fiml")): lavaan with missing = "ml".
#
# Run: Rscript tests/stats/reference/fiml.R  (writes fiml.json next to this script)
# R 4.2 with Debian's r-cran-lavaan. Tolerance: the optimiser is nlminb with
# control = list(rel.tol = 1e-14, x.tol = 1e-14, iter.max = 100000, eval.max = 100000) (lavaan's default
# rel.tol is 1e-10), so estimates are converged far below the tests' tolerance. Standard errors use
# lavaan's default for missing = "ml": the observed information matrix (information = "observed").
#
# Cases:
#   airquality  R's datasets::airquality (real missing values: Ozone 37, Solar.R 7 of 153 days):
#               the saturated correlation matrix of Ozone, Solar.R, Wind, Temp; a mediation
#               Solar.R -> Ozone -> Temp (missing x and m).
#   trial       a simulated 24-participant trial (set.seed(15)): alliance at preparation, peak MEQ30,
#               GRID-HAMD at baseline, week 4 and month 12, with dropout at the later timepoints
#               (written into the JSON): the correlation matrix; a mediation alliance -> MEQ30 -> week 4
#               with and without baseline GRID-HAMD as covariate (missing m and y).
#   heldout     mtcars' mpg, hp, wt, qsec with 8 values deleted at random (set.seed(3)): kept aside,
#               only run after the code was written.
suppressMessages(library(lavaan))
library(jsonlite)
ctrl <- list(rel.tol = 1e-14, x.tol = 1e-14, iter.max = 100000, eval.max = 100000)

saturated <- function(data) {
  v <- names(data)
  pairs <- combn(v, 2)
  model <- paste(apply(pairs, 2, function(p) paste(p[1], "~~", p[2])), collapse = "\n")
  fit <- sem(model, data = data, missing = "ml", control = ctrl)
  pe <- parameterEstimates(fit)
  ss <- standardizedSolution(fit)
  cors <- ss[ss$op == "~~" & ss$lhs != ss$rhs, ]
  means <- pe[pe$op == "~1", ]
  covs <- pe[pe$op == "~~", ]
  list(columns = v, n_used = lavInspect(fit, "nobs"), loglik = as.numeric(fitMeasures(fit, "logl")),
       correlations = lapply(seq_len(nrow(cors)), function(i) list(
         x = cors$lhs[i], y = cors$rhs[i], r = cors$est.std[i], se = cors$se[i], z = cors$z[i],
         p = cors$pvalue[i])),
       means = setNames(as.list(means$est), means$lhs), mean_se = setNames(as.list(means$se), means$lhs),
       covariances = lapply(seq_len(nrow(covs)), function(i) list(x = covs$lhs[i], y = covs$rhs[i],
                                                               estimate = covs$est[i], se = covs$se[i])))
}

mediation_case <- function(data, x, m, y, covariates = character()) {
  rhs_m <- paste(c(paste0("a*", x), covariates), collapse = " + ")
  rhs_y <- paste(c(paste0("b*", m), paste0("cp*", x), covariates), collapse = " + ")
  model <- paste0(m, " ~ ", rhs_m, "\n", y, " ~ ", rhs_y, "\nindirect := a*b\ntotal := cp + a*b")
  fit <- sem(model, data = data, missing = "ml", fixed.x = FALSE, control = ctrl)
  pe <- parameterEstimates(fit)
  get <- function(label) pe[pe$label == label, ][1, ]
  row <- function(label) { r <- get(label); list(estimate = r$est, se = r$se, z = r$z, p = r$pvalue) }
  list(x = x, m = m, y = y, covariates = covariates, n_used = lavInspect(fit, "nobs"),
       loglik = as.numeric(fitMeasures(fit, "logl")),
       a = row("a"), b = row("b"), c_prime = row("cp"), indirect = row("indirect"), total = row("total"))
}

air <- airquality[, c("Ozone", "Solar.R", "Wind", "Temp")]
names(air) <- c("ozone", "solar", "wind", "temp")

set.seed(15)
n <- 24
alliance <- rnorm(n, 45, 6)
meq <- 0.5 * scale(alliance)[, 1] + rnorm(n, 0, 0.85)
base <- rnorm(n, 22.8, 3.9)
week4 <- 8.5 - 0.6 * 5.7 * scale(alliance)[, 1] + 0.2 * (base - 22.8) + rnorm(n, 0, 4)
month12 <- 7.7 + 0.6 * (week4 - 8.5) + rnorm(n, 0, 4)
trial <- data.frame(alliance = alliance, meq = 3 + 1 * meq, baseline = base, week4 = week4, month12 = month12)
trial$meq[c(5, 17)] <- NA
trial$week4[c(3, 9, 21)] <- NA
drop12 <- order(trial$alliance)[c(1, 2, 4, 7, 11)]  # missing at random given alliance
trial$month12[c(3, 9, drop12)] <- NA
trial$alliance[c(12)] <- NA

mt <- mtcars[, c("mpg", "hp", "wt", "qsec")]
set.seed(3)
cells <- sample(length(as.matrix(mt)), 8)
mm <- as.matrix(mt); mm[cells] <- NA; mt <- as.data.frame(mm)

out <- list(
  r_version = R.version.string, lavaan = as.character(packageVersion("lavaan")), control = ctrl,
  information = lavInspect(sem("ozone ~~ temp", data = air, missing = "ml"), "options")$information[1],
  data = list(airquality = air, trial = trial, heldout = mt),
  correlation = list(airquality = saturated(air), trial = saturated(trial), heldout = saturated(mt)),
  mediation = list(
    airquality = mediation_case(air, "solar", "ozone", "temp"),
    trial = mediation_case(trial, "alliance", "meq", "week4"),
    trial_covariate = mediation_case(trial, "alliance", "meq", "week4", "baseline"),
    heldout = mediation_case(mt, "hp", "wt", "mpg", "qsec")))
here <- dirname(sub("--file=", "", grep("--file=", commandArgs(FALSE), value = TRUE)))
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, null = "null", na = "null", pretty = TRUE,
                  dataframe = "columns"), file.path(here, "fiml.json"))
