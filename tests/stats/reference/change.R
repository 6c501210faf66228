# Reference for alliance.stats.reliable_change and clinical_significance (Jacobson & Truax 1991),
# computed in R from the published formulas, on data the Python side was not tuned on:
# R's `sleep` (10 paired measurements; pre = group 1, post = group 2) and MASS's `anorexia`
# (Cont and CBT groups' pre/post weights). SD = sd(pre) (n - 1), reliability = cor(pre, post)
# (test-retest), z = qnorm(1 - alpha / 2). No optimiser is involved: closed-form arithmetic in double
# precision. Run: Rscript tests/stats/reference/change.R  (writes change.json beside it)
library(jsonlite)

rci_case <- function(name, pre, post, alpha, lower_is_better) {
  sd_pre <- sd(pre)
  r <- cor(pre, post)
  se_diff <- sd_pre * sqrt(2) * sqrt(1 - r)
  z <- qnorm(1 - alpha / 2)
  rci <- (post - pre) / se_diff
  improved <- if (lower_is_better) rci < 0 else rci > 0
  category <- ifelse(abs(post - pre) > z * se_diff,
                     ifelse(improved, "reliable improvement", "reliable deterioration"),
                     "no reliable change")
  list(name = name, pre = pre, post = post, sd = sd_pre, reliability = r, alpha = alpha,
       lower_is_better = lower_is_better, se_diff = se_diff, z = z, threshold = z * se_diff,
       rci = rci, category = category)
}

cutoffs <- function(name, m_d, s_d, m_f, s_f) {
  # lower is better: function lies below; a = M_d - 2 SD_d, b = M_f + 2 SD_f, c weighted by SDs
  list(name = name, dysfunctional_mean = m_d, dysfunctional_sd = s_d, functional_mean = m_f,
       functional_sd = s_f, a = m_d - 2 * s_d, b = m_f + 2 * s_f, c = (s_f * m_d + s_d * m_f) / (s_f + s_d))
}

pre <- sleep$extra[sleep$group == 1]
post <- sleep$extra[sleep$group == 2]
cases <- list(rci_case("sleep", pre, post, 0.05, FALSE), rci_case("sleep_alpha10", pre, post, 0.10, TRUE))
groups <- list()
if (requireNamespace("MASS", quietly = TRUE)) {
  a <- MASS::anorexia
  # (The control group's pre/post correlation is negative, -0.16: no reliability; the Python
  # function refuses it, so it is not a reference case.)
  rows <- a[a$Treat == "CBT", ]
  cases[[length(cases) + 1]] <- rci_case("anorexia_CBT", rows$Prewt, rows$Postwt, 0.05, FALSE)
  cases[[length(cases) + 1]] <- rci_case("anorexia_CBT_alpha01", rows$Prewt, rows$Postwt, 0.01, FALSE)
  # Cut-offs between the two anorexia groups' baselines, as if CBT were "dysfunctional"
  cbt <- a$Prewt[a$Treat == "CBT"]; cont <- a$Postwt[a$Treat == "Cont"]
  groups[[1]] <- cutoffs("anorexia", mean(cbt), sd(cbt), mean(cont), sd(cont))
}
groups[[length(groups) + 1]] <- cutoffs("sleep", mean(pre), sd(pre), mean(post), sd(post))
out <- list(r_version = R.version.string, cases = cases, cutoffs = groups)
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE), "tests/stats/reference/change.json")
