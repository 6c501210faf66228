# Reference results of alliance.stats.logistic_regression (issue 16, "alliance vs harm"):
# maximum likelihood by glm(family = binomial) and Firth's penalised likelihood by brglm2.
# Run from the repository root: Rscript tests/stats/reference/logistic.R tests/stats/reference
# (writes logistic.json; every input data set is written into the JSON too).
# R 4.2.2 with Debian's r-cran-brglm2 0.9 (r-cran-logistf is not packaged in Debian).
#
# Tolerances are tight on purpose: glm's default epsilon (1e-8, on the relative change of the
# deviance) leaves estimates correct to ~1e-5 only, so every glm fit uses
# glm.control(epsilon = 1e-14, maxit = 100), and brglmFit uses epsilon = 1e-14, maxit = 500.
# brglmFit(type = "AS_mean") solves the mean-bias-reducing adjusted score equations, which for
# logistic regression (canonical link) are Firth's (1993) modified score, i.e. the maximiser of
# the Jeffreys-prior penalised likelihood l(b) + 0.5 log det I(b) (Kosmidis & Firth 2021).
#
# logistf-style inference for Firth (Heinze & Schemper 2002): the penalised likelihood-ratio
# p-value of each coefficient and its profile penalised-likelihood interval. logistf is not
# available, so these are computed here directly from the definition, independently of the
# Python code: the penalty 0.5 log det(X' W X) always uses the full design matrix; the profile
# over the other coefficients is maximised by optim(BFGS, reltol 1e-15, analytic gradient of the
# penalised log-likelihood via its modified score) started at the Firth estimate, and the interval
# ends are uniroot(tol = 1e-13) solutions of 2 (l*(b_hat) - l*_profile(b_j)) = qchisq(0.95, 1).
#
# Cases:
#   safety    n = 24 synthetic participants (set.seed(16)): y = any adverse event after dosing,
#             alliance = WAI-SR total at the last preparation session, prior = prior psychedelic
#             use (0/1); fits y ~ alliance and y ~ alliance + prior; ML and Firth
#   mtcars    built-in mtcars: am ~ wt (n = 32); ML and Firth; held out (not used while writing)
#   infert    built-in infert: case ~ spontaneous + induced (n = 248); ML and Firth; held out
#   quasi     n = 12, quasi-complete separation (y = 1 exactly when x > 5, except one tie at x = 5);
#             ML diverges (glm's fit is recorded, not compared), Firth finite
#   complete  n = 10, complete separation (y = 1 exactly when x > 5); ML diverges, Firth finite
suppressMessages({library(jsonlite); library(brglm2)})
args <- commandArgs(trailingOnly = TRUE)
out_dir <- if (length(args)) args[1] else "."
ml_control <- glm.control(epsilon = 1e-14, maxit = 100)
firth_control <- brglmControl(epsilon = 1e-14, maxit = 500, type = "AS_mean")

penalised_loglik <- function(beta, X, y) {
  eta <- drop(X %*% beta); p <- plogis(eta)
  w <- p * (1 - p)
  sum(y * eta - log1p(exp(eta))) + 0.5 * determinant(crossprod(X, X * w), logarithm = TRUE)$modulus[1]
}
penalised_score <- function(beta, X, y) {
  eta <- drop(X %*% beta); p <- plogis(eta); w <- p * (1 - p)
  info <- crossprod(X, X * w)
  h <- w * rowSums((X %*% solve(info)) * X)          # hat values of the weighted fit
  drop(crossprod(X, y - p + h * (0.5 - p)))
}
# maximum over the coefficients other than j of the penalised log-likelihood with b_j = value
profile <- function(j, value, X, y, start) {
  if (ncol(X) == 1) return(penalised_loglik(value, X, y))
  fixed <- function(b) { full <- numeric(ncol(X)); full[-j] <- b; full[j] <- value; full }
  o <- optim(start[-j], function(b) -penalised_loglik(fixed(b), X, y),
             function(b) -penalised_score(fixed(b), X, y)[-j], method = "BFGS",
             control = list(reltol = 1e-15, maxit = 10000))
  -o$value
}
logistf_inference <- function(X, y, beta) {
  top <- penalised_loglik(beta, X, y); cut <- qchisq(0.95, 1) / 2
  res <- lapply(seq_len(ncol(X)), function(j) {
    drop_at <- function(v) top - profile(j, v, X, y, beta) - cut
    se <- sqrt(diag(solve(crossprod(X, X * (plogis(drop(X %*% beta)) * (1 - plogis(drop(X %*% beta))))))))[j]
    lo_end <- beta[j] - se; while (drop_at(lo_end) < 0) lo_end <- beta[j] - 2 * (beta[j] - lo_end)
    hi_end <- beta[j] + se; while (drop_at(hi_end) < 0) hi_end <- beta[j] + 2 * (hi_end - beta[j])
    lr <- 2 * (top - profile(j, 0, X, y, beta))
    c(lr = lr, p = pchisq(lr, 1, lower.tail = FALSE),
      low = uniroot(drop_at, c(lo_end, beta[j]), tol = 1e-13)$root,
      high = uniroot(drop_at, c(beta[j], hi_end), tol = 1e-13)$root)
  })
  m <- do.call(rbind, res)
  list(penalised_loglik = top, lr_statistic = unname(m[, "lr"]), lr_p = unname(m[, "p"]),
       profile_ci_low = unname(m[, "low"]), profile_ci_high = unname(m[, "high"]))
}

fit_ml <- function(formula, data) {
  m <- suppressWarnings(glm(as.formula(formula), family = binomial, data = data, control = ml_control))
  # summary.glm's SEs come from the IRLS weights of the last-but-one iterate, which even with
  # epsilon = 1e-14 (a deviance criterion: coefficients settle to ~1e-7 only) is ~1e-7 away from
  # the estimate; one more fit started at the converged estimate puts the weights at the estimate.
  if (m$converged) m <- suppressWarnings(glm(as.formula(formula), family = binomial, data = data,
                                             control = ml_control, start = coef(m)))
  co <- coef(summary(m)); ci_z <- qnorm(0.975)
  list(terms = rownames(co), estimate = unname(co[, 1]), se = unname(co[, 2]), z = unname(co[, 3]),
       p = unname(co[, 4]), ci_low = unname(co[, 1] - ci_z * co[, 2]),
       ci_high = unname(co[, 1] + ci_z * co[, 2]), loglik = as.numeric(logLik(m)),
       deviance = m$deviance, null_deviance = m$null.deviance, n = nobs(m),
       converged = m$converged, iterations = m$iter,
       max_fitted = max(fitted(m)), min_fitted = min(fitted(m)))
}
fit_firth <- function(formula, data) {
  m <- glm(as.formula(formula), family = binomial, data = data, method = "brglmFit",
           control = firth_control)
  co <- coef(summary(m))
  X <- model.matrix(m); y <- m$y
  c(list(terms = rownames(co), estimate = unname(co[, 1]), se = unname(co[, 2]), z = unname(co[, 3]),
         p = unname(co[, 4]), loglik = sum(y * log(fitted(m)) + (1 - y) * log1p(-fitted(m))),
         converged = m$converged, iterations = m$iter, n = nrow(X)),
    logistf_inference(X, y, unname(coef(m))))
}
case <- function(data, formulas, separated = FALSE) {
  list(data = as.list(data), separated = separated,
       fits = lapply(formulas, function(f) list(formula = f, ml = fit_ml(f, data), firth = fit_firth(f, data))))
}

set.seed(16)
n <- 24
alliance <- round(rnorm(n, mean = 48, sd = 7))
prior <- rbinom(n, 1, 0.4)
event <- rbinom(n, 1, plogis(-0.6 - 0.15 * (alliance - 48) + 0.5 * prior))
safety <- data.frame(event = event, alliance = alliance, prior = prior)

quasi <- data.frame(x = c(1, 2, 3, 4, 5, 5, 6, 7, 8, 9, 10, 11), y = c(0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1))
complete <- data.frame(x = 1:10, y = c(0, 0, 0, 0, 0, 1, 1, 1, 1, 1))

cases <- list(
  safety = case(safety, c("event ~ alliance", "event ~ alliance + prior")),
  mtcars = case(mtcars[, c("am", "wt")], "am ~ wt"),
  infert = case(infert[, c("case", "spontaneous", "induced")], "case ~ spontaneous + induced"),
  quasi = case(quasi, "y ~ x", separated = TRUE),
  complete = case(complete, "y ~ x", separated = TRUE))
write_json(list(r_version = R.version.string, brglm2 = as.character(packageVersion("brglm2")), cases = cases),
           file.path(out_dir, "logistic.json"), auto_unbox = TRUE, digits = NA, pretty = TRUE)
