# Reference results of alliance.stats.linear_regression and of the participant-facilitator
# agreement analysis (issue 13, item 5): lm + summary.lm + confint, cor.test, t.test(paired).
# Run from the repository root: Rscript tests/stats/reference/regression.R tests/stats/reference
# (writes data/mtcars.csv, data/toothgrowth.csv, data/agreement.csv and regression.json).
# R 4.2.2 (Debian). lm is a direct QR solve: no optimiser, so no tolerance to set.
suppressMessages(library(jsonlite))
args <- commandArgs(trailingOnly = TRUE)
out_dir <- if (length(args)) args[1] else "."
data_dir <- file.path(out_dir, "data")

fit <- function(formula, data) {
  m <- lm(as.formula(formula), data = data)
  s <- summary(m)
  co <- coef(s); ci <- confint(m)
  f <- if (is.null(s$fstatistic)) c(NA, NA, NA) else s$fstatistic
  list(formula = formula, terms = rownames(co), estimate = unname(co[, 1]), se = unname(co[, 2]),
       t = unname(co[, 3]), p = unname(co[, 4]), ci_low = unname(ci[rownames(co), 1]),
       ci_high = unname(ci[rownames(co), 2]), n = nobs(m), df_residual = m$df.residual,
       sigma = s$sigma, r_squared = s$r.squared, adj_r_squared = s$adj.r.squared,
       f = unname(f[1]), f_df1 = unname(f[2]), f_df2 = unname(f[3]),
       f_p = if (is.na(f[1])) NA else unname(pf(f[1], f[2], f[3], lower.tail = FALSE)))
}

mt <- mtcars; mt$car <- rownames(mtcars)
mt$hp[c(3, 17)] <- NA   # na.omit
write.csv(mt, file.path(data_dir, "mtcars.csv"), row.names = FALSE)
tg <- ToothGrowth       # held out: a factor, its interaction with a numeric, a power term
write.csv(tg, file.path(data_dir, "toothgrowth.csv"), row.names = FALSE)

# The agreement analysis on a fixed synthetic trial: participant WAI-SR (p), the mean of the
# two facilitators' WAI-SR-T (f), the week-4 GRID-HAMD (y); M = (p + f) / 2, D = p - f.
set.seed(20261202)
n <- 40
level <- rnorm(n, 45, 5)
ag <- data.frame(participant_id = sprintf("P%03d", 1:n),
                 p = round(pmin(60, pmax(12, level + rnorm(n, 2, 4)))),
                 f1 = round(pmin(60, pmax(12, level + rnorm(n, -1, 4)))),
                 f2 = round(pmin(60, pmax(12, level + rnorm(n, -1, 4)))))
ag$y <- round(pmax(0, 30 - 0.4 * ag$p + rnorm(n, 0, 4)))
ag$p[c(5, 9)] <- NA
write.csv(ag, file.path(data_dir, "agreement.csv"), row.names = FALSE)
ag$f <- (ag$f1 + ag$f2) / 2
ag$M <- (ag$p + ag$f) / 2
ag$D <- ag$p - ag$f
ct <- cor.test(ag$p, ag$f)
tt <- t.test(ag$p, ag$f, paired = TRUE)
d <- na.omit(ag$p - ag$f)
agreement <- list(
  n = sum(complete.cases(ag$p, ag$f)), r = unname(ct$estimate), r_ci = unname(ct$conf.int),
  r_p = ct$p.value, mean_difference = unname(tt$estimate), t = unname(tt$statistic),
  df = unname(tt$parameter), t_p = tt$p.value, difference_ci = unname(tt$conf.int),
  sd_difference = sd(d), loa = c(mean(d) - qnorm(0.975) * sd(d), mean(d) + qnorm(0.975) * sd(d)),
  discrepancy = fit("y ~ M + D", ag))

out <- list(
  r_version = R.version.string,
  cases = list(mtcars_simple = fit("mpg ~ wt", mt),
               mtcars_multi = fit("mpg ~ wt + hp + factor(cyl)", mt),
               mtcars_power = fit("mpg ~ wt + I(wt^2) + log(disp)", mt),
               mtcars_no_intercept = fit("mpg ~ 0 + wt + qsec", mt),
               toothgrowth = fit("len ~ supp * dose + I(dose^2)", tg)),
  agreement = agreement)
write_json(out, file.path(out_dir, "regression.json"), digits = NA, auto_unbox = TRUE, pretty = TRUE,
           na = "null")
