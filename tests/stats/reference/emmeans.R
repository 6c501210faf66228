# emmeans references (issue 13): Rscript tests/stats/reference/emmeans.R, from the project root. Tight lmer controls as mixed_terms.R.
suppressMessages({library(lme4); library(lmerTest); library(emmeans); library(jsonlite)})
d <- read.csv("tests/stats/reference/data/membership.csv")
d$visit <- paste0("w", d$week)
m <- lmer(y ~ visit * arm + (1|participant), d, control = lmerControl(optimizer="bobyqa", optCtrl=list(rhoend=1e-12, maxfun=1e6)))
emm <- emmeans(m, ~ visit | arm, lmer.df = "satterthwaite")
e <- as.data.frame(emm)
em2 <- as.data.frame(emmeans(m, ~ arm, lmer.df = "satterthwaite"))
c1 <- as.data.frame(contrast(emm, "trt.vs.ctrl", ref = 1, adjust = "holm"))
c2 <- as.data.frame(contrast(emm, "pairwise", adjust = "BH"))
rows <- function(x) lapply(seq_len(nrow(x)), function(i) lapply(as.list(x[i, ]), function(v) if (is.factor(v)) as.character(v) else v))
writeLines(toJSON(list(formula = "y ~ visit * arm + (1|participant)", data = "membership.csv",
  note = "visit = paste0('w', week); emmeans lmer.df = satterthwaite",
  emmeans = rows(e), emmeans_arm = rows(em2), trt_vs_ctrl_holm = rows(c1), pairwise_bh = rows(c2),
  versions = list(emmeans = as.character(packageVersion("emmeans")))), auto_unbox = TRUE, digits = NA, pretty = TRUE),
  "tests/stats/reference/emmeans.json")
