# Type III anova references with interactions (issue 13): Rscript tests/stats/reference/anova3.R, from the project root.
suppressMessages({library(lme4); library(lmerTest); library(jsonlite)})
ctrl <- lmerControl(optimizer = "bobyqa", optCtrl = list(rhoend = 1e-12, maxfun = 1e6))
d <- read.csv("tests/stats/reference/data/membership.csv")
d$visit <- paste0("w", d$week)
tab <- function(a) lapply(seq_len(nrow(a)), function(i) list(term = rownames(a)[i], num_df = a[i, "NumDF"],
                                                             den_df = a[i, "DenDF"], F = a[i, "F value"], p = a[i, "Pr(>F)"]))
out <- list()
for (f in c("y ~ visit * arm + (1|participant)", "y ~ week * arm + (1|participant)",
            "y ~ week * arm + (1 + week|participant)")) {
  m <- lmer(as.formula(f), d, control = ctrl)
  out[[f]] <- list(formula = f, data = "membership.csv", note = "visit = paste0('w', week)",
                   satterthwaite = tab(anova(m, type = 3)), kenward_roger = tab(anova(m, type = 3, ddf = "Kenward-Roger")))
}
writeLines(toJSON(unname(out), auto_unbox = TRUE, digits = NA, pretty = TRUE), "tests/stats/reference/anova3.json")
