# Kenward-Roger references (issue 13): Rscript tests/stats/reference/kenward_roger.R, from the project root.
# lmerTest's summary(m, ddf = "Kenward-Roger") and anova(m, ddf = "Kenward-Roger") (pbkrtest's vcovAdj and
# Lb_ddf); fits with the tight controls of mixed_terms.R.
suppressMessages({library(lme4); library(lmerTest); library(pbkrtest); library(jsonlite)})
ctrl <- lmerControl(optimizer = "bobyqa", optCtrl = list(rhoend = 1e-12, maxfun = 1e6))
ref <- "tests/stats/reference/data/"
cases <- list(
  sleepstudy_slope = list(formula = "Reaction ~ Days + (Days | Subject)", data = "sleepstudy_ss.csv"),
  sleepstudy_uncorrelated = list(formula = "Reaction ~ Days + (Days || Subject)", data = "sleepstudy_ss.csv"),
  penicillin = list(formula = "diameter ~ 1 + (1|plate) + (1|sample)", data = "penicillin.csv"),
  cake = list(formula = "angle ~ recipe + temperature + (1|recipe:replicate)", data = "cake.csv"),
  membership_free = list(formula = "y ~ week * arm + (1|participant) + (1|facilitator_1)", data = "membership.csv"))
out <- lapply(cases, function(case) {
  d <- read.csv(file.path(ref, case$data))
  m <- lmer(as.formula(case$formula), d, control = ctrl)
  s <- coef(summary(m, ddf = "Kenward-Roger"))
  a <- anova(m, ddf = "Kenward-Roger", type = 3)
  list(formula = case$formula, data = case$data,
       fixed = lapply(seq_len(nrow(s)), function(i) list(term = rownames(s)[i], estimate = s[i, 1], se = s[i, 2],
                                                          df = s[i, 3], t = s[i, 4], p = s[i, 5])),
       anova = lapply(seq_len(nrow(a)), function(i) list(term = rownames(a)[i], num_df = a[i, "NumDF"],
                                                          den_df = a[i, "DenDF"], F = a[i, "F value"], p = a[i, "Pr(>F)"])),
       vcov_adjusted = unname(as.matrix(vcovAdj(m))))
})
out$versions <- list(R = R.version.string, pbkrtest = as.character(packageVersion("pbkrtest")),
                     lmerTest = as.character(packageVersion("lmerTest")))
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE), "tests/stats/reference/kenward_roger.json")
