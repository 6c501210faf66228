# Reference results of alliance.stats._r_formula (issue 13, item 3): model.matrix column names and
# matrices, lmer fixed effects for formulas with I(), poly(), factor(), log(), scale(), helper-named
# columns, factor interactions and a rank-deficient design; psych omega/alpha with missing answers.
# Run from the repository root: Rscript tests/stats/reference/formulas.R tests/stats/reference
# (writes data/formula_cases.csv and formulas.json). R 4.2.2, lme4 1.1-31, psych 2.2.9 (Debian).
suppressMessages({library(lme4); library(psych); library(jsonlite)})
args <- commandArgs(trailingOnly = TRUE)
out_dir <- if (length(args)) args[1] else "."
ctrl <- lmerControl(optimizer = "bobyqa", optCtrl = list(rhoend = 1e-12, maxfun = 1e6),
                    check.conv.grad = "ignore", check.conv.singular = "ignore")

# A small data set: 12 participants x 6 weeks, columns named like formula helpers
set.seed(20261202)
n_id <- 12; weeks <- 0:5
cases <- data.frame(id = rep(sprintf("p%02d", 1:n_id), each = length(weeks)),
                    week = rep(weeks, n_id))
n <- nrow(cases)
cases$x <- round(rnorm(n), 3)
cases$z <- round(rnorm(n, 2), 3)
cases$a <- round(rnorm(n), 3); cases$b <- round(rnorm(n), 3); cases$c <- round(rnorm(n), 3)
cases$f <- sample(c("beta", "alpha", "Gamma"), n, replace = TRUE)
cases$g <- sample(c("no", "yes"), n, replace = TRUE)
cases$flag <- cases$x > 0
cases$Treatment <- round(runif(n, 1, 5), 3)
cases$C <- round(rnorm(n), 3)
cases$I <- round(rnorm(n), 3)
cases$log <- round(runif(n, 1, 3), 3)
cases$x2 <- cases$x
u <- rnorm(n_id)[as.integer(factor(cases$id))]
cases$y <- round(10 + 0.5 * cases$week + cases$x + 0.3 * cases$z + u + rnorm(n), 3)
write.csv(cases, file.path(out_dir, "data", "formula_cases.csv"), row.names = FALSE)
cases <- read.csv(file.path(out_dir, "data", "formula_cases.csv"))  # exactly what Python reads
cases$f <- factor(cases$f, levels = sort(unique(cases$f), method = "radix"))  # C-locale order
cases$g <- factor(cases$g)

matrix_cases <- c(
  "1 + week * f + I(x^2)", "0 + x", "-1 + x", "x:z", "(a + b + c)^2", "(a + b + c)^3",
  "x + x:f", "f + x:f", "x:f", "0 + f + x:f", "f:g", "f + f:g", "0 + x + f", "-1 + f:g",
  "poly(week, 2)", "poly(week, 3) + f", "poly(week, 2, raw = TRUE)", "factor(week)",
  "log(x + 10) + scale(z)", "Treatment + C + I + log", "log(log) + I(Treatment * 2)",
  "I(week^2) + week", "I(week**2)", "flag + x", "b:a + a", "f * g * x", "I(x > 0) + I(2 * x - 1)",
  "x + x2", "f/x", "factor(week):x", "scale(x):f", "x - 1", "week + 0", "I(-x) + sqrt(Treatment)",
  "exp(x) + abs(z) + log(Treatment, 2)", "a * b - a", "(a + b) * (c + x)", "x %in% f", "1",
  "0 + f + g", "0 + f:g + f", "g + f:g", "x + f:x", "I(x^2):f", "f:g:x", "0 + x:f", "poly(x, 2):f",
  "f + factor(week)", "a + b %in% a", "(a + b)/c", "I(week %% 2) + I(week %/% 2)",
  "x + I(x > 0 & z > 2)", "I(f == \"alpha\")", "log10(Treatment) + log2(Treatment) + log1p(z^2)",
  "scale(z, center = FALSE)", "x * f - f"
)
mm <- lapply(matrix_cases, function(rhs) {
  X <- model.matrix(as.formula(paste("~", rhs)), cases)
  list(rhs = rhs, names = colnames(X), matrix = unname(lapply(seq_len(nrow(X)), function(i) unname(X[i, ]))))
})

sleep <- read.csv(file.path(out_dir, "data", "sleepstudy.csv"))
sleep$Subject <- factor(sleep$Subject)
fit <- function(name, formula, data, data_name) {
  m <- lmer(as.formula(formula), data = data, REML = TRUE, control = ctrl)
  X <- getME(m, "X")
  s <- coef(summary(m))
  dropped <- attr(X, "col.dropped")
  list(name = name, formula = formula, data = data_name,
       fixed = lapply(seq_len(nrow(s)), function(i) list(term = rownames(s)[i], estimate = s[i, "Estimate"],
                                                         se = s[i, "Std. Error"])),
       dropped = if (is.null(dropped)) character(0) else names(dropped),
       message = if (is.null(attr(X, "msgRankdrop"))) "" else attr(X, "msgRankdrop"),
       reml_loglik = as.numeric(logLik(m)))
}
lmm <- list(
  fit("sleep_I_squared", "Reaction ~ I(Days^2) + Days + (1 | Subject)", sleep, "sleepstudy"),
  fit("sleep_poly", "Reaction ~ poly(Days, 2) + (1 | Subject)", sleep, "sleepstudy"),
  fit("sleep_factor", "Reaction ~ factor(Days) + (1 | Subject)", sleep, "sleepstudy"),
  fit("sleep_log_scale", "Reaction ~ log(Days + 1) + scale(Days) + (1 | Subject)", sleep, "sleepstudy"),
  fit("helper_named_columns", "y ~ Treatment + C + I + log + (1 | id)", cases, "formula_cases"),
  fit("factor_without_main_effect", "y ~ x + x:f + (1 | id)", cases, "formula_cases"),
  fit("slopes_by_factor", "y ~ f + x:f + (1 | id)", cases, "formula_cases"),
  fit("power_interactions", "y ~ (a + b + c)^2 + (1 | id)", cases, "formula_cases"),
  fit("rank_deficient_copy", "y ~ x + x2 + f + (1 | id)", cases, "formula_cases"),
  fit("rank_deficient_interaction", "y ~ f * g + x + I(2 * x) + (1 | id)", cases, "formula_cases")
)

# model.matrix of the sleepstudy formulas (poly, scale and factor are data-dependent)
sleep_mm <- lapply(c("I(Days^2) + Days", "poly(Days, 2)", "factor(Days)", "log(Days + 1) + scale(Days)"),
  function(rhs) {
    X <- model.matrix(as.formula(paste("~", rhs)), sleep)
    list(rhs = rhs, names = colnames(X), matrix = unname(lapply(seq_len(nrow(X)), function(i) unname(X[i, ]))))
  })

# psych: omega (one factor, maximum likelihood, as alliance.stats.omega) and alpha with missing answers
bfi <- read.csv(file.path(out_dir, "data", "bfi.csv"))
scales <- list(list(name = "bfi_agreeableness", items = paste0("A", 1:5), reverse = "A1"),
               list(name = "bfi_neuroticism", items = paste0("N", 1:5), reverse = character(0)))
reliability <- lapply(scales, function(s) {
  x <- bfi[, s$items]
  for (item in s$reverse) x[[item]] <- max(x, na.rm = TRUE) + min(x, na.rm = TRUE) - x[[item]]
  o <- suppressWarnings(suppressMessages(omega(x, nfactors = 1, fm = "ml", plot = FALSE)))
  # 40 extra rows with no answers: psych's alpha CI counts them (n = nrow(x))
  padded <- rbind(bfi[, s$items], as.data.frame(matrix(NA, 40, length(s$items), dimnames = list(NULL, s$items))))
  a <- suppressWarnings(suppressMessages(alpha(padded, keys = if (length(s$reverse)) s$reverse else NULL)))
  a0 <- suppressWarnings(suppressMessages(alpha(bfi[, s$items], keys = if (length(s$reverse)) s$reverse else NULL)))
  list(name = s$name, items = s$items, reverse = s$reverse,
       omega_total = o$omega.tot, omega_hierarchical = o$omega_h,
       loadings = unname(o$schmid$sl[, 1]), u2 = unname(o$schmid$sl[, "u2"]),
       alpha = a0$total$raw_alpha, alpha_ci = unname(c(a0$feldt$lower.ci, a0$feldt$upper.ci)), alpha_n = nrow(bfi),
       padded_alpha = a$total$raw_alpha, padded_ci = unname(c(a$feldt$lower.ci, a$feldt$upper.ci)),
       padded_n = nrow(padded))
})

out <- list(r_version = R.version.string, lme4 = as.character(packageVersion("lme4")),
            psych = as.character(packageVersion("psych")),
            model_matrix = mm, sleepstudy_model_matrix = sleep_mm, lmm = lmm, reliability = reliability)
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE), file.path(out_dir, "formulas.json"))
