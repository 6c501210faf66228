# Reference values for alliance.stats.meta_analysis and pool_correlations: metafor::rma.
#
# Run: Rscript tests/stats/reference/meta.R  (writes meta.json next to this script)
# R 4.2 with Debian's r-cran-metafor. Tolerances: REML is iterated with
# control = list(threshold = 1e-12, maxiter = 10000) (metafor's default threshold is 1e-5), so the
# estimates are converged to far below the tests' tolerance.
#
# Cases (published data shipped with metafor, and the Levin 2024 abstract):
#   bcg       dat.bcg (Colditz et al. 1994): log risk ratios of 13 BCG trials; REML, DL, FE; z and knha
#   molloy    dat.molloy2014 (Molloy et al. 2014): correlations of conscientiousness and medication
#             adherence, 16 studies, Fisher z (escalc ZCOR); REML z and knha
#   homog     a homogeneous set (REML tau^2 = 0): 4 invented studies with nearly equal estimates
#   k2        two studies only; REML z and knha
#   levin     r = -.65, n = 24 (Levin et al. 2024, alliance at preparation ~ GRID-HAMD week 4) with two
#             invented replications (r = -.40, n = 60; r = -.25, n = 120): the pooling of `alliance pool`
#   heldout   dat.normand1999 (mean differences of length of stay, 9 studies): kept aside, not used
#             while writing the code; REML knha
suppressMessages(library(metafor))
library(jsonlite)
ctrl <- list(threshold = 1e-12, maxiter = 10000, stepadj = 0.5)

fit_case <- function(yi, vi, method, test) {
  m <- rma(yi = yi, vi = vi, method = method, test = test, control = ctrl)
  p <- predict(m)
  list(method = method, test = test, k = m$k, estimate = as.numeric(m$b), se = m$se,
       ci_low = m$ci.lb, ci_high = m$ci.ub, statistic = m$zval, p = m$pval,
       df = if (test == "knha") m$k - 1 else NULL,
       tau2 = m$tau2, tau2_se = if (is.null(m$se.tau2) || is.na(m$se.tau2)) NULL else m$se.tau2,
       i2 = m$I2, h2 = m$H2, q = m$QE, q_p = m$QEp,
       pi_low = p$pi.lb, pi_high = p$pi.ub, weights = as.numeric(weights(m)) / 100)
}

cases <- list()
add <- function(name, yi, vi, fits, extra = list()) {
  cases[[name]] <<- c(list(yi = as.numeric(yi), vi = as.numeric(vi),
                           fits = lapply(fits, function(f) fit_case(yi, vi, f[1], f[2]))), extra)
}

bcg <- escalc(measure = "RR", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = dat.bcg)
add("bcg", bcg$yi, bcg$vi, list(c("REML", "z"), c("REML", "knha"), c("DL", "z"), c("DL", "knha"),
                                c("FE", "z")))
mol <- escalc(measure = "ZCOR", ri = ri, ni = ni, data = dat.molloy2014)
add("molloy", mol$yi, mol$vi, list(c("REML", "z"), c("REML", "knha")),
    list(r = dat.molloy2014$ri, n = dat.molloy2014$ni))
add("homog", c(0.30, 0.31, 0.29, 0.305), c(0.04, 0.05, 0.03, 0.06),
    list(c("REML", "z"), c("REML", "knha"), c("DL", "z")))
add("k2", c(0.5, 0.1), c(0.02, 0.03), list(c("REML", "z"), c("REML", "knha"), c("FE", "z")))
lev <- escalc(measure = "ZCOR", ri = c(-0.65, -0.40, -0.25), ni = c(24, 60, 120))
add("levin", lev$yi, lev$vi, list(c("REML", "z"), c("REML", "knha"), c("FE", "z")),
    list(r = c(-0.65, -0.40, -0.25), n = c(24, 60, 120)))
nor <- escalc(measure = "MD", m1i = m1i, sd1i = sd1i, n1i = n1i, m2i = m2i, sd2i = sd2i, n2i = n2i,
              data = dat.normand1999)
add("heldout", nor$yi, nor$vi, list(c("REML", "knha"), c("REML", "z")))

# the pooled correlations back-transformed as `predict(m, transf = transf.ztor)`
for (name in c("molloy", "levin")) {
  m <- rma(yi = cases[[name]]$yi, vi = cases[[name]]$vi, method = "REML", test = "knha", control = ctrl)
  p <- predict(m, transf = transf.ztor)
  cases[[name]]$pooled_r_knha <- list(r = p$pred, ci_low = p$ci.lb, ci_high = p$ci.ub,
                                      pi_low = p$pi.lb, pi_high = p$pi.ub)
}

out <- list(r_version = R.version.string, metafor = as.character(packageVersion("metafor")),
            control = ctrl, cases = cases)
here <- dirname(sub("--file=", "", grep("--file=", commandArgs(FALSE), value = TRUE)))
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, null = "null", pretty = TRUE),
           file.path(here, "meta.json"))
