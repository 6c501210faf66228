# R reference results for general linear mixed models (issue 13).
#
# Run from the repository root or from this directory:
#   Rscript tests/stats/reference/mixed_general.R
# Writes mixed_general.json next to this script and the CSVs it fits under data/.
# Every model is fitted on the data as read back from its CSV (read.csv), so that R and the
# Python side see the very same numbers. See README.md, section "mixed_general.json".

suppressPackageStartupMessages({
  library(lme4)
  library(lmerTest)
  library(pbkrtest)
  library(emmeans)
  library(jsonlite)
})

args <- commandArgs(trailingOnly = FALSE)
script <- sub("^--file=", "", args[grep("^--file=", args)])
here <- if (length(script)) dirname(normalizePath(script)) else "tests/stats/reference"
data_dir <- file.path(here, "data")
dir.create(data_dir, showWarnings = FALSE)

CONTROL_TEXT <- paste(
  'lmerControl(optimizer = "bobyqa", optCtrl = list(rhoend = 1e-12, maxfun = 1e6))',
  "(other settings lme4 defaults, e.g. check.conv.grad = .makeCC(\"warning\", tol = 2e-3));",
  "modular (multiple-membership) fits: optimizeLmer(devfun, optimizer = \"bobyqa\",",
  "control = list(rhoend = 1e-12, maxfun = 1e6)); ML fits: the same control with REML = FALSE"
)
ctrl <- lmerControl(optimizer = "bobyqa", optCtrl = list(rhoend = 1e-12, maxfun = 1e6))

# ------------------------------------------------------------------------- helpers
# Other reference scripts write some of the same R data sets to data/: an existing file is never
# overwritten with different bytes (the script stops instead).
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

# Evaluate expr, collecting (and muffling) warnings and messages.
collect <- function(expr) {
  notes <- character(0)
  value <- withCallingHandlers(expr,
    warning = function(w) { notes <<- c(notes, paste("warning:", conditionMessage(w)))
                            invokeRestart("muffleWarning") },
    message = function(m) { notes <<- c(notes, paste("message:", trimws(conditionMessage(m))))
                            invokeRestart("muffleMessage") })
  list(value = value, notes = unique(notes))
}

safely <- function(expr) tryCatch(expr, error = function(e) structure(conditionMessage(e), class = "failed"))
failed <- function(x) inherits(x, "failed")

named <- function(x) as.list(x)  # named vector -> JSON object (names kept, order kept)

coef_rows <- function(tab) {
  lapply(seq_len(nrow(tab)), function(i) {
    row <- list(term = rownames(tab)[i], estimate = unname(tab[i, "Estimate"]),
                se = unname(tab[i, "Std. Error"]))
    if ("df" %in% colnames(tab)) row$df <- unname(tab[i, "df"])
    row$t <- unname(tab[i, "t value"])
    if ("Pr(>|t|)" %in% colnames(tab)) row$p <- unname(tab[i, "Pr(>|t|)"])
    row
  })
}

anova_rows <- function(a) {
  lapply(seq_len(nrow(a)), function(i) list(
    term = rownames(a)[i], num_df = unname(a[i, "NumDF"]), den_df = unname(a[i, "DenDF"]),
    F = unname(a[i, "F value"]), p = unname(a[i, "Pr(>F)"])))
}

varcomp_rows <- function(m) {
  vc <- as.data.frame(VarCorr(m))
  lapply(seq_len(nrow(vc)), function(i) list(
    grp = vc$grp[i], var1 = if (is.na(vc$var1[i])) NULL else vc$var1[i],
    var2 = if (is.na(vc$var2[i])) NULL else vc$var2[i],
    vcov = vc$vcov[i], sdcor = vc$sdcor[i]))
}

df_rows <- function(df) {
  df <- as.data.frame(df)
  lapply(seq_len(nrow(df)), function(i) {
    row <- lapply(df[i, , drop = FALSE], function(v) if (is.factor(v)) as.character(v) else v)
    lapply(row, function(v) if (length(v) == 1 && is.na(v)) NULL else unname(v))
  })
}

# Everything recorded for one model; m_reml / m_ml are lmerModLmerTest fits.
describe <- function(m, m_ml, notes) {
  s <- summary(m)
  kr <- safely(collect(summary(m, ddf = "Kenward-Roger")))
  a3 <- collect(anova(m, type = 3))
  a3kr <- safely(collect(anova(m, type = 3, ddf = "Kenward-Roger")))
  out <- list(
    reml_loglik = as.numeric(logLik(m)),
    ml_loglik = as.numeric(logLik(m_ml)),
    theta = named(getME(m, "theta")),
    ml_theta = named(getME(m_ml, "theta")),
    isSingular = isSingular(m),
    ml_isSingular = isSingular(m_ml),
    sigma = sigma(m),
    varcomp = varcomp_rows(m),
    ml_varcomp = varcomp_rows(m_ml),
    fixed = coef_rows(coef(s)),
    fixed_kr = if (failed(kr)) NULL else coef_rows(coef(kr$value)),
    anova3 = anova_rows(a3$value),
    anova3_kr = if (failed(a3kr)) NULL else anova_rows(a3kr$value),
    ngrps = named(ngrps(m)),
    nobs = nobs(m)
  )
  extra <- c(a3$notes,
             if (failed(kr)) paste("error (Kenward-Roger summary):", kr) else kr$notes,
             if (failed(a3kr)) paste("error (Kenward-Roger anova):", a3kr) else a3kr$notes)
  out$notes <- unique(c(notes, extra))
  out
}

fit_entry <- function(name, formula, data, csv, note = NULL) {
  f <- as.formula(formula)
  reml <- collect(lmerTest::lmer(f, data = data, REML = TRUE, control = ctrl))
  ml <- collect(lmerTest::lmer(f, data = data, REML = FALSE, control = ctrl))
  entry <- list(name = name, formula = formula, data = csv)
  if (!is.null(note)) entry$note <- note
  d <- describe(reml$value, ml$value, c(reml$notes, if (length(ml$notes)) paste("ML fit:", ml$notes)))
  c(entry, d)
}

t0 <- proc.time()

# ------------------------------------------------------------------------- data
penicillin <- write_data(Penicillin, "penicillin.csv")
pastes <- write_data(Pastes, "pastes.csv")
sleep <- write_data(sleepstudy, "sleepstudy.csv")
dyestuff <- write_data(Dyestuff, "dyestuff.csv")
cake_csv <- cake
cake_csv$temperature <- as.integer(as.character(cake_csv$temperature))
cake_d <- write_data(cake_csv, "cake.csv")
# In lme4's cake, temperature is an ordered factor (175 < 185 < ... < 225): contr.poly contrasts.
cake_d$temperature <- factor(cake_d$temperature, levels = sort(unique(cake_d$temperature)), ordered = TRUE)  # "175" < ... < "225"
machines_csv <- as.data.frame(nlme::Machines)
machines_csv <- data.frame(Worker = as.character(machines_csv$Worker),
                           Machine = as.character(machines_csv$Machine),
                           score = machines_csv$score)
machines <- write_data(machines_csv, "machines.csv")

# Simulated crossed design with slopes: 300 participants x 5 visits, 30 facilitators.
set.seed(1301)
n_p <- 300; n_f <- 30
fac_of <- sample(rep(seq_len(n_f), each = n_p / n_f))
bp <- matrix(rnorm(2 * n_p), n_p) %*% chol(matrix(c(4, 0.3, 0.3, 0.5), 2))
bf <- matrix(rnorm(2 * n_f), n_f) %*% chol(matrix(c(1, 0.1, 0.1, 0.2), 2))
cs <- expand.grid(week = 0:4, p = seq_len(n_p))
cs$f <- fac_of[cs$p]
cs$y <- round(10 + 0.5 * cs$week + bp[cs$p, 1] + bp[cs$p, 2] * cs$week +
              bf[cs$f, 1] + bf[cs$f, 2] * cs$week + rnorm(nrow(cs), 0, 1.5), 6)
crossed_slopes <- write_data(data.frame(
  participant = sprintf("p%03d", cs$p), facilitator = sprintf("f%02d", cs$f),
  week = cs$week, y = cs$y), "mixed_general_crossed_slopes.csv")

# Simulated PAT-like multiple-membership data: 80 participants, 16 facilitators, two each.
set.seed(1302)
n_p <- 80; n_f <- 16
f1 <- sample(rep(seq_len(n_f), each = n_p / n_f))
f2 <- sapply(f1, function(a) sample(setdiff(seq_len(n_f), a), 1))
f2[sample(n_p, 6)] <- NA
arm_p <- sample(rep(c("control", "psilocybin"), each = n_p / 2))
u_p <- rnorm(n_p, 0, 2)
u_f <- rnorm(n_f, 0, 1)
mm <- expand.grid(week = 0:4, p = seq_len(n_p))
mm$f1 <- f1[mm$p]; mm$f2 <- f2[mm$p]; mm$arm <- arm_p[mm$p]
fac_eff <- ifelse(is.na(mm$f2), u_f[mm$f1], (u_f[mm$f1] + u_f[pmax(mm$f2, 1)]) / 2)
mm$y <- round(20 - 0.5 * mm$week - 1.5 * mm$week * (mm$arm == "psilocybin") + u_p[mm$p] +
              fac_eff + rnorm(nrow(mm), 0, 1.5), 6)
mmd <- write_data(data.frame(
  participant = sprintf("p%02d", mm$p), facilitator_1 = sprintf("f%02d", mm$f1),
  facilitator_2 = ifelse(is.na(mm$f2), NA, sprintf("f%02d", mm$f2)),
  week = mm$week, arm = mm$arm, y = mm$y,
  w_1 = ifelse(is.na(mm$f2), 1, 0.7), w_2 = ifelse(is.na(mm$f2), 0, 0.3)), "mixed_general_membership.csv")
mmd$facilitator_2[mmd$facilitator_2 == ""] <- NA

# Formula-meaning data: numeric column Treatment, character column C.
set.seed(1303)
g <- rep(sprintf("g%02d", 1:20), each = 6)
fm <- data.frame(g = g, Treatment = round(runif(120, 0, 10), 3),
                 C = sample(c("a", "b", "c"), 120, replace = TRUE))
fm$y <- round(5 + 0.4 * fm$Treatment + c(a = 0, b = 1, c = -0.5)[fm$C] +
              rnorm(20)[as.integer(factor(fm$g))] + rnorm(120), 6)
treatment_c <- write_data(fm, "mixed_general_treatment_c.csv")

sleep_rd <- sleep
sleep_rd$Days_copy <- sleep_rd$Days
sleep_rd <- write_data(sleep_rd, "mixed_general_sleepstudy_rankdef.csv")

# ------------------------------------------------------------------------- 1-4: models
models <- list(
  fit_entry("penicillin_crossed", "diameter ~ 1 + (1|plate) + (1|sample)", penicillin, "penicillin.csv"),
  fit_entry("pastes_nested", "strength ~ 1 + (1|batch/cask)", pastes, "pastes.csv"),
  fit_entry("sleepstudy_uncorrelated", "Reaction ~ Days + (Days || Subject)", sleep, "sleepstudy.csv"),
  fit_entry("sleepstudy_two_terms", "Reaction ~ Days + (1|Subject) + (0 + Days|Subject)", sleep, "sleepstudy.csv"),
  fit_entry("crossed_slopes", "y ~ week + (1 + week | participant) + (1 + week | facilitator)",
            crossed_slopes, "mixed_general_crossed_slopes.csv")
)

# ------------------------------------------------------------------------- 5: multiple membership
mm_fit <- function(d, w1, w2, REML) {
  lf <- lFormula(y ~ week * arm + (1 | participant) + (1 | facilitator_1), data = d, REML = REML,
                 control = ctrl)
  rt <- lf$reTrms
  k <- which(names(rt$cnms) == "facilitator_1")
  lev <- sort(unique(c(d$facilitator_1, d$facilitator_2[!is.na(d$facilitator_2)])))
  stopifnot(identical(levels(rt$flist[["facilitator_1"]]), lev))
  J <- matrix(0, nrow(d), length(lev), dimnames = list(NULL, lev))
  for (i in seq_len(nrow(d))) {
    J[i, d$facilitator_1[i]] <- J[i, d$facilitator_1[i]] + w1[i]
    if (!is.na(d$facilitator_2[i])) J[i, d$facilitator_2[i]] <- J[i, d$facilitator_2[i]] + w2[i]
  }
  block <- as(Matrix(t(J), sparse = TRUE), "CsparseMatrix")
  rownames(block) <- lev
  mmname <- "mm(facilitator_1, facilitator_2)"
  rt$Ztlist[[k]] <- block
  names(rt$Ztlist)[k] <- paste0(mmname, ".(Intercept)")
  rt$Zt <- as(do.call(rbind, rt$Ztlist), "CsparseMatrix")
  names(rt$cnms)[k] <- mmname
  names(rt$flist)[names(rt$flist) == "facilitator_1"] <- mmname
  lf$reTrms <- rt
  # lme4's deviance function updates theta and Lambdat@x in place (C++ pointers into the R
  # vectors): every deviance function below gets its own copies, or evaluating the second one
  # (lmerTest's derivatives) would silently change theta of the fitted model.
  own <- function(lf) {
    lf$reTrms$theta <- lf$reTrms$theta + 0
    lf$reTrms$Lambdat@x <- lf$reTrms$Lambdat@x + 0
    lf
  }
  lf_fit <- own(lf)
  devfun <- do.call(mkLmerDevfun, lf_fit)
  opt <- optimizeLmer(devfun, optimizer = "bobyqa", control = list(rhoend = 1e-12, maxfun = 1e6))
  m <- mkMerMod(environment(devfun), opt, lf_fit$reTrms, fr = lf_fit$fr)
  fresh <- do.call(mkLmerDevfun, own(lf))  # a fresh deviance function for lmerTest's derivatives
  mt <- safely(lmerTest:::as_lmerModLT(m, fresh))
  stopifnot(isTRUE(all.equal(unname(getME(m, "theta")), opt$par, tolerance = 1e-14)),
            isTRUE(all.equal(-2 * as.numeric(logLik(m)), opt$fval, tolerance = 1e-12)))
  list(m = m, mt = mt, lf = lf)
}

# Check of the construction: with facilitator_2 := facilitator_1 (weights 1/2 + 1/2 on one member)
# the modular fit must equal lmer(y ~ week * arm + (1|participant) + (1|facilitator_1)).
check_construction <- function(d) {
  d$facilitator_2 <- d$facilitator_1
  h <- 0.5 + 0 * seq_len(nrow(d))
  a <- mm_fit(d, h, h, TRUE)
  b <- collect(lmerTest::lmer(y ~ week * arm + (1 | participant) + (1 | facilitator_1), data = d,
                              control = ctrl))$value  # (this fit is singular; the message is dropped)
  stopifnot(isTRUE(all.equal(as.numeric(logLik(a$m)), as.numeric(logLik(b)), tolerance = 1e-10)),
            isTRUE(all.equal(unname(getME(a$m, "theta")), unname(getME(b, "theta")), tolerance = 1e-6)),
            isTRUE(all.equal(unname(coef(summary(a$mt))[, "df"]), unname(coef(summary(b))[, "df"]), tolerance = 1e-6)),
            isTRUE(all.equal(unname(coef(summary(a$mt, ddf = "Kenward-Roger"))[, "df"]),
                             unname(coef(summary(b, ddf = "Kenward-Roger"))[, "df"]), tolerance = 1e-6)))
  "passed"
}

mm_entry <- function(name, weights_text, w1, w2) {
  reml <- collect(mm_fit(mmd, w1, w2, TRUE))
  ml <- collect(mm_fit(mmd, w1, w2, FALSE))
  r <- reml$value; l <- ml$value
  notes <- c(reml$notes, if (length(ml$notes)) paste("ML fit:", ml$notes))
  entry <- list(name = name,
    formula = "y ~ week * arm + (1|participant) + (1|mm(facilitator_1, facilitator_2))",
    data = "mixed_general_membership.csv", weights = weights_text,
    lmerTest = if (failed(r$mt)) paste("lmerTest failed:", r$mt) else
      "lmerTest:::as_lmerModLT(m, devfun) (the worker of as_lmerModLmerTest; as_lmerModLmerTest itself cannot re-create the deviance function of a modular fit)")
  if (!failed(r$mt) && !failed(l$mt)) {
    c(entry, describe(r$mt, l$mt, notes))
  } else {
    c(entry, list(reml_loglik = as.numeric(logLik(r$m)), ml_loglik = as.numeric(logLik(l$m)),
      theta = named(getME(r$m, "theta")), ml_theta = named(getME(l$m, "theta")),
      isSingular = isSingular(r$m), varcomp = varcomp_rows(r$m),
      fixed = coef_rows(coef(summary(r$m))), ngrps = named(ngrps(r$m)), nobs = nobs(r$m),
      notes = notes))
  }
}

construction_check <- check_construction(mmd)
k_members <- ifelse(is.na(mmd$facilitator_2), 1, 2)
multiple_membership <- list(
  mm_entry("membership_equal", "1/k over the k non-missing members (w = 1 when facilitator_2 is missing)",
           1 / k_members, 1 / k_members),
  mm_entry("membership_weighted", "columns w_1, w_2 (0.7/0.3; 1/0 when facilitator_2 is missing)",
           mmd$w_1, mmd$w_2)
)

# ------------------------------------------------------------------------- 6: formulas
mm_head <- function(formula, data, n = 10) {
  X <- getME(lmer(as.formula(formula), data = data, control = ctrl), "X")
  list(columns = colnames(X), head = unname(lapply(seq_len(min(n, nrow(X))), function(i) unname(X[i, ]))))
}
formula_entry <- function(name, formula, data, csv) {
  e <- fit_entry(name, formula, data, csv)
  mx <- suppressMessages(suppressWarnings(mm_head(formula, data)))
  e$X_columns <- mx$columns
  e$X_head <- mx$head
  e
}
formulas <- list(
  formula_entry("sleep_I_days2", "Reaction ~ I(Days^2) + Days + (1|Subject)", sleep, "sleepstudy.csv"),
  formula_entry("sleep_poly2", "Reaction ~ poly(Days, 2) + (1|Subject)", sleep, "sleepstudy.csv"),
  formula_entry("sleep_factor_days", "Reaction ~ factor(Days) + (1|Subject)", sleep, "sleepstudy.csv"),
  formula_entry("sleep_log_scale", "Reaction ~ log(Days + 1) + scale(Days) + (1|Subject)", sleep, "sleepstudy.csv"),
  formula_entry("treatment_c_columns", "y ~ Treatment + C + (1|g)", treatment_c, "mixed_general_treatment_c.csv")
)
rank_deficient <- list(
  formula_entry("rankdef_copy_last", "Reaction ~ Days + Days_copy + (1|Subject)", sleep_rd, "mixed_general_sleepstudy_rankdef.csv"),
  formula_entry("rankdef_copy_first", "Reaction ~ Days_copy + Days + (1|Subject)", sleep_rd, "mixed_general_sleepstudy_rankdef.csv")
)

# ------------------------------------------------------------------------- 7: emmeans
emm_fit <- collect(lmerTest::lmer(y ~ factor(week) * arm + (1 | participant), data = mmd, REML = TRUE,
                                  control = ctrl))
emm_model <- emm_fit$value
emm_section <- function(df_method) {
  emm <- collect(emmeans(emm_model, ~ week | arm, lmer.df = df_method))
  holm <- collect(contrast(emm$value, "trt.vs.ctrl", ref = 1, adjust = "holm"))
  bh <- collect(contrast(emm$value, "trt.vs.ctrl", ref = 1, adjust = "BH"))
  list(lmer_df = df_method,
       emmeans = df_rows(summary(emm$value, infer = c(TRUE, FALSE))),
       contrast_holm = df_rows(summary(holm$value)),
       contrast_bh = df_rows(summary(bh$value)),
       notes = unique(c(emm$notes, holm$notes, bh$notes)))
}
emmeans_out <- list(
  formula = "y ~ factor(week) * arm + (1|participant)", data = "mixed_general_membership.csv",
  specs = "emmeans(m, ~ week | arm, lmer.df = ...); contrast(emm, \"trt.vs.ctrl\", ref = 1, adjust = \"holm\" / \"BH\")",
  reml_loglik = as.numeric(logLik(emm_model)),
  fixed = coef_rows(coef(summary(emm_model))),
  notes = emm_fit$notes,
  satterthwaite = emm_section("satterthwaite"),
  kenward_roger = emm_section("kenward-roger")
)

# ------------------------------------------------------------------------- 8: held out
held_out <- list(
  fit_entry("dyestuff", "Yield ~ 1 + (1|Batch)", dyestuff, "dyestuff.csv"),
  fit_entry("cake", "angle ~ recipe * temperature + (1|recipe:replicate)", cake_d, "cake.csv",
            note = "temperature is an ordered factor (175 < 185 < 195 < 205 < 215 < 225) as in lme4's cake, so R uses contr.poly: terms temperature.L, .Q, .C, ^4, ^5"),
  fit_entry("cake_numeric_temp", "angle ~ recipe * temp + (1|recipe:replicate)", cake_d, "cake.csv"),
  fit_entry("machines", "score ~ Machine + (1|Worker) + (1|Worker:Machine)", machines, "machines.csv")
)

# ------------------------------------------------------------------------- write
pkgs <- c("lme4", "lmerTest", "pbkrtest", "emmeans", "Matrix", "minqa", "nlme", "jsonlite")
out <- list(
  R_version = R.version.string,
  packages = setNames(lapply(pkgs, function(p) as.character(packageVersion(p))), pkgs),
  control = CONTROL_TEXT,
  models = models,
  multiple_membership = multiple_membership,
  multiple_membership_check = paste("modular fit with facilitator_2 := facilitator_1 equals lmer with (1|facilitator_1)",
    "(loglik 1e-10, theta, Satterthwaite and Kenward-Roger df 1e-6):", construction_check),
  formulas = formulas,
  rank_deficient = rank_deficient,
  emmeans = emmeans_out,
  held_out = held_out
)
json <- toJSON(out, auto_unbox = TRUE, pretty = TRUE, digits = I(15), na = "null", null = "null")
writeLines(json, file.path(here, "mixed_general.json"))
cat(sprintf("wrote %s in %.1f s\n", file.path(here, "mixed_general.json"), (proc.time() - t0)[["elapsed"]]))
