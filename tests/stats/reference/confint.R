# R reference results for confidence intervals of linear mixed models (issue 13, item 2).
#
# Run from the repository root or from this directory:
#   Rscript tests/stats/reference/confint.R
# Writes confint.json next to this script and two new data files, data/dyestuff2.csv (lme4's
# Dyestuff2) and data/confint_correlation_boundary.csv (simulated, set.seed(7)); the other CSVs are
# checked byte-for-byte against what mixed_general.R wrote, never overwritten.
# Every model is fitted on the data as read back from its CSV (read.csv).
#
# Control: every lmer fit uses
#   lmerControl(optimizer = "bobyqa", optCtrl = list(rhoend = 1e-12, maxfun = 1e6))
# (bobyqa's default rhobeg; other settings lme4's defaults), i.e. tight tolerances, so that the
# optimum is accurate; profile() re-optimises with the fitted model's optimizer and control.
# Profiles: pr <- profile(m, signames = FALSE) (lme4's defaults otherwise: it refits the model by
# ML, evaluates zeta on a grid and confint(pr) inverts an interpolation spline), then
# confint(pr, level = 0.95) and confint(pr, level = 0.90) -- the same numbers as
# confint(m, method = "profile", oldNames = FALSE). Wald: confint(m, method = "Wald",
# oldNames = FALSE) (NA for the variance components). ranef: as.data.frame(ranef(m, condVar = TRUE)).

suppressPackageStartupMessages({
  library(lme4)
  library(jsonlite)
})

args <- commandArgs(trailingOnly = FALSE)
script <- sub("^--file=", "", args[grep("^--file=", args)])
here <- if (length(script)) dirname(normalizePath(script)) else "tests/stats/reference"
data_dir <- file.path(here, "data")
dir.create(data_dir, showWarnings = FALSE)

CONTROL_TEXT <- paste(
  'lmerControl(optimizer = "bobyqa", optCtrl = list(rhoend = 1e-12, maxfun = 1e6)) (default rhobeg);',
  "profile(m, signames = FALSE) with lme4's defaults (ML refit, spline through the zeta grid);",
  "confint(pr, level = 0.95 / 0.90); confint(m, method = \"Wald\", oldNames = FALSE)"
)
ctrl <- lmerControl(optimizer = "bobyqa", optCtrl = list(rhoend = 1e-12, maxfun = 1e6))

write_data <- function(d, file) {
  target <- file.path(data_dir, file)
  tmp <- tempfile(fileext = ".csv")
  write.csv(d, tmp, row.names = FALSE, na = "")
  if (file.exists(target)) {
    same <- identical(readBin(tmp, "raw", file.info(tmp)$size), readBin(target, "raw", file.info(target)$size))
    if (!same) stop(target, " exists with different content; not overwriting it")
  } else {
    file.copy(tmp, target)
  }
  unlink(tmp)
  read.csv(target, stringsAsFactors = FALSE)
}

collect <- function(expr) {
  notes <- character(0)
  value <- withCallingHandlers(expr,
    warning = function(w) { notes <<- c(notes, paste("warning:", conditionMessage(w)))
                            invokeRestart("muffleWarning") },
    message = function(m) { notes <<- c(notes, paste("message:", trimws(conditionMessage(m))))
                            invokeRestart("muffleMessage") })
  list(value = value, notes = unique(notes))
}

interval_rows <- function(ci) {
  lapply(seq_len(nrow(ci)), function(i) list(
    parameter = rownames(ci)[i],
    lower = if (is.na(ci[i, 1])) NULL else unname(ci[i, 1]),
    upper = if (is.na(ci[i, 2])) NULL else unname(ci[i, 2])))
}

varcomp_rows <- function(m) {
  vc <- as.data.frame(VarCorr(m))
  lapply(seq_len(nrow(vc)), function(i) list(
    grp = vc$grp[i], var1 = if (is.na(vc$var1[i])) NULL else vc$var1[i],
    var2 = if (is.na(vc$var2[i])) NULL else vc$var2[i], vcov = vc$vcov[i], sdcor = vc$sdcor[i]))
}

ranef_rows <- function(m) {
  r <- as.data.frame(ranef(m, condVar = TRUE))
  lapply(seq_len(nrow(r)), function(i) list(
    grpvar = as.character(r$grpvar[i]), term = as.character(r$term[i]), grp = as.character(r$grp[i]),
    condval = r$condval[i], condsd = r$condsd[i]))
}

entry <- function(name, formula, data, csv, role, with_ranef = FALSE) {
  fit <- collect(lmer(as.formula(formula), data = data, REML = TRUE, control = ctrl))
  m <- fit$value
  ml <- collect(lmer(as.formula(formula), data = data, REML = FALSE, control = ctrl))$value
  pr <- collect(profile(m, signames = FALSE))
  wald <- confint(m, method = "Wald", oldNames = FALSE)
  out <- list(name = name, role = role, formula = formula, data = csv,
    reml_loglik = as.numeric(logLik(m)), ml_loglik = as.numeric(logLik(ml)),
    theta = as.list(getME(m, "theta")), ml_theta = as.list(getME(ml, "theta")),
    isSingular = isSingular(m), varcomp = varcomp_rows(m),
    profile_95 = interval_rows(confint(pr$value, level = 0.95)),
    profile_90 = interval_rows(confint(pr$value, level = 0.90)),
    wald_95 = interval_rows(wald),
    notes = unique(c(fit$notes, paste("profile:", pr$notes)[length(pr$notes) > 0])))
  if (with_ranef) out$ranef <- ranef_rows(m)
  out
}

t0 <- proc.time()
sleep <- write_data(sleepstudy, "sleepstudy.csv")
penicillin <- write_data(Penicillin, "penicillin.csv")
pastes <- write_data(Pastes, "pastes.csv")
dyestuff <- write_data(Dyestuff, "dyestuff.csv")
dyestuff2 <- write_data(Dyestuff2, "dyestuff2.csv")
cake_csv <- cake
cake_csv$temperature <- as.integer(as.character(cake_csv$temperature))
cake_d <- write_data(cake_csv, "cake.csv")
# Correlation on its boundary: 8 groups x 6 visits, the slope a multiple of the intercept effect,
# so the fitted correlation is +1 (a singular fit) and the profile's upper end is the bound 1.
set.seed(7)
cb <- data.frame(g = sprintf("g%d", rep(1:8, each = 6)), x = rep(0:5, 8))
u <- rnorm(8)
cb$y <- round(1 + 0.5 * cb$x + u[as.integer(factor(cb$g))] * (1 + 0.4 * cb$x) + rnorm(48, 0, 0.5), 6)
correlation_boundary <- write_data(cb, "confint_correlation_boundary.csv")

cases <- list(
  entry("sleepstudy", "Reaction ~ Days + (Days|Subject)", sleep, "sleepstudy.csv",
        "one term with a correlated slope", with_ranef = TRUE),
  entry("sleepstudy_uncorrelated", "Reaction ~ Days + (Days||Subject)", sleep, "sleepstudy.csv",
        "|| (two terms of one grouping factor)"),
  entry("penicillin", "diameter ~ 1 + (1|plate) + (1|sample)", penicillin, "penicillin.csv", "crossed"),
  entry("pastes", "strength ~ 1 + (1|batch/cask)", pastes, "pastes.csv",
        "nested; near-singular: the batch SD's profile reaches 0 before the cutoff (lower end 0)"),
  entry("dyestuff2", "Yield ~ 1 + (1|Batch)", dyestuff2, "dyestuff2.csv",
        "singular: the Batch SD is estimated 0"),
  entry("correlation_boundary", "y ~ x + (x|g)", correlation_boundary, "confint_correlation_boundary.csv",
        "singular: the intercept-slope correlation is estimated +1 (upper end 1)"),
  entry("dyestuff", "Yield ~ 1 + (1|Batch)", dyestuff, "dyestuff.csv", "held out", with_ranef = TRUE),
  entry("cake", "angle ~ recipe + temp + (1|recipe:replicate)", cake_d, "cake.csv",
        "held out (interaction grouping)")
)

out <- list(
  R_version = R.version.string,
  packages = setNames(lapply(c("lme4", "Matrix", "minqa", "jsonlite"),
                             function(p) as.character(packageVersion(p))), c("lme4", "Matrix", "minqa", "jsonlite")),
  control = CONTROL_TEXT,
  cases = cases
)
writeLines(toJSON(out, auto_unbox = TRUE, pretty = TRUE, digits = I(15), na = "null", null = "null"),
           file.path(here, "confint.json"))
cat(sprintf("wrote %s in %.1f s\n", file.path(here, "confint.json"), (proc.time() - t0)[["elapsed"]]))
