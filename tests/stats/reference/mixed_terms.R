# Reference results of alliance.stats.mixedlm for several random-effects terms (issue 13).
# Run: Rscript tests/stats/reference/mixed_terms.R tests/stats/reference  (writes data/*.csv and mixed_terms.json)
# R 4.x, lme4, lmerTest from Debian. Tight optimiser tolerances so R's optimum is accurate:
# bobyqa with rhoend = 1e-12, maxfun = 1e6 (lme4's default stops at about 2e-7 relative).
suppressMessages({library(lme4); library(lmerTest); library(jsonlite)})
args <- commandArgs(trailingOnly = TRUE)
out_dir <- if (length(args)) args[1] else "."
data_dir <- file.path(out_dir, "data")
dir.create(data_dir, showWarnings = FALSE, recursive = TRUE)
ctrl <- lmerControl(optimizer = "bobyqa", optCtrl = list(rhoend = 1e-12, maxfun = 1e6),
                    check.conv.grad = "ignore", check.conv.singular = "ignore")

na_null <- function(x) if (length(x) == 1 && is.na(x)) NULL else x
varcomp <- function(m) {
  v <- as.data.frame(VarCorr(m))
  lapply(seq_len(nrow(v)), function(i) list(grp = v$grp[i], var1 = na_null(v$var1[i]), var2 = na_null(v$var2[i]),
                                              vcov = v$vcov[i], sdcor = v$sdcor[i]))
}
fixed <- function(m) {
  s <- coef(summary(m))
  lapply(seq_len(nrow(s)), function(i) list(term = rownames(s)[i], estimate = s[i, "Estimate"],
                                              se = s[i, "Std. Error"], df = s[i, "df"], t = s[i, "t value"],
                                              p = s[i, "Pr(>|t|)"]))
}
anova3 <- function(m) {
  a <- anova(m, type = 3)
  lapply(seq_len(nrow(a)), function(i) list(term = rownames(a)[i], num_df = a[i, "NumDF"], den_df = a[i, "DenDF"],
                                              F = a[i, "F value"], p = a[i, "Pr(>F)"]))
}
ranef_table <- function(m) {
  r <- as.data.frame(ranef(m, condVar = TRUE))
  lapply(seq_len(nrow(r)), function(i) list(grpvar = as.character(r$grpvar[i]), term = as.character(r$term[i]),
                                              grp = as.character(r$grp[i]), condval = r$condval[i], condsd = r$condsd[i]))
}
describe <- function(m, formula, file) {
  ml <- refitML(m)
  list(formula = formula, data = file, control = "bobyqa rhoend=1e-12 maxfun=1e6",
       reml_loglik = as.numeric(logLik(m)), ml_loglik = as.numeric(logLik(ml)),
       theta = unname(getME(m, "theta")), ml_theta = unname(getME(ml, "theta")),
       isSingular = isSingular(m), ngrps = as.list(ngrps(m)), nobs = nobs(m),
       varcomp = varcomp(m), fixed = fixed(m), anova3 = anova3(m), ranef = ranef_table(m))
}
fit <- function(formula, d, file) {
  write.csv(d, file.path(data_dir, file), row.names = FALSE)
  m <- lmer(as.formula(formula), data = d, REML = TRUE, control = ctrl)
  describe(m, formula, file)
}

results <- list()
results$penicillin <- fit("diameter ~ 1 + (1|plate) + (1|sample)", Penicillin, "penicillin.csv")
results$pastes <- fit("strength ~ 1 + (1|batch/cask)", Pastes, "pastes.csv")
ss <- sleepstudy; ss$Subject <- as.character(ss$Subject)
results$sleepstudy_uncorrelated <- fit("Reaction ~ Days + (Days || Subject)", ss, "sleepstudy_ss.csv")
results$sleepstudy_two_terms <- fit("Reaction ~ Days + (1|Subject) + (0 + Days|Subject)", ss, "sleepstudy_ss.csv")
results$dyestuff <- fit("Yield ~ 1 + (1|Batch)", Dyestuff, "dyestuff.csv")
ck <- cake; ck$recipe <- as.character(ck$recipe); ck$replicate <- as.character(ck$replicate)
results$cake <- fit("angle ~ recipe + temperature + (1|recipe:replicate)", transform(ck, temperature = as.numeric(as.character(temperature))), "cake.csv")

# crossed with slopes: 300 participants x 5 visits, 30 facilitators (one each)
set.seed(20261202)
P <- 300; Fn <- 30; V <- 5
fac <- sample(seq_len(Fn), P, replace = TRUE)
pid <- rep(seq_len(P), each = V); week <- rep(0:(V - 1), P)
u <- MASS::mvrnorm(P, c(0, 0), matrix(c(1, 0.2, 0.2, 0.25), 2))
v <- MASS::mvrnorm(Fn, c(0, 0), matrix(c(0.5, -0.05, -0.05, 0.1), 2))
y <- 10 + 0.5 * week + u[pid, 1] + u[pid, 2] * week + v[fac[pid], 1] + v[fac[pid], 2] * week + rnorm(P * V)
crossed <- data.frame(y = y, week = week, participant = sprintf("p%03d", pid), facilitator = sprintf("f%02d", fac[pid]))
results$crossed_slopes <- fit("y ~ week + (1 + week | participant) + (1 + week | facilitator)", crossed, "crossed_slopes.csv")

# multiple membership: 80 participants, 16 facilitators, two each (a few with one), 5 visits
set.seed(7)
P <- 80; Fn <- 16
f1 <- sample(seq_len(Fn), P, replace = TRUE)
f2 <- ((f1 - 1 + sample(seq_len(Fn - 1), P, replace = TRUE)) %% Fn) + 1
single <- seq_len(P) <= 6
pid <- rep(seq_len(P), each = V); week <- rep(0:4, P)
arm <- ifelse(seq_len(P) %% 2 == 0, "psilocybin", "control")[pid]
vf <- rnorm(Fn, 0, 0.8)
eff <- ifelse(single[pid], vf[f1[pid]], 0.5 * (vf[f1[pid]] + vf[f2[pid]]))
y <- 20 - 0.8 * week - 1.2 * week * (arm == "psilocybin") + rnorm(P, 0, 2)[pid] + eff + rnorm(P * V, 0, 1.5)
mm <- data.frame(y = y, week = week, arm = arm, participant = sprintf("p%03d", pid),
                 facilitator_1 = sprintf("f%02d", f1[pid]),
                 facilitator_2 = ifelse(single[pid], NA, sprintf("f%02d", f2[pid])))
mm$w_1 <- ifelse(single[pid], 1, 0.7); mm$w_2 <- ifelse(single[pid], 0, 0.3)
write.csv(mm, file.path(data_dir, "membership.csv"), row.names = FALSE, na = "")
membership_fit <- function(weights, reml = TRUE) {
  lf <- lFormula(y ~ week * arm + (1 | participant) + (1 | facilitator_1), data = mm, REML = reml)
  levels <- sort(unique(c(mm$facilitator_1, na.omit(mm$facilitator_2))))
  n <- nrow(mm)
  i1 <- match(mm$facilitator_1, levels); i2 <- match(mm$facilitator_2, levels)
  w1 <- if (weights) mm$w_1 else ifelse(is.na(i2), 1, 0.5)
  w2 <- if (weights) mm$w_2 else ifelse(is.na(i2), 0, 0.5)
  keep2 <- !is.na(i2)
  block <- Matrix::sparseMatrix(i = c(i1, i2[keep2]), j = c(seq_len(n), seq_len(n)[keep2]), x = c(w1, w2[keep2]),
                                dims = c(length(levels), n))
  which <- which(names(lf$reTrms$cnms) == "facilitator_1")
  lf$reTrms$Ztlist[[which]] <- block
  lf$reTrms$Zt <- do.call(rbind, lf$reTrms$Ztlist)
  lf$reTrms$flist$facilitator_1 <- factor(levels[i1], levels = levels)
  devfun <- do.call(mkLmerDevfun, lf)
  opt <- optimizeLmer(devfun, optimizer = "bobyqa", control = list(rhoend = 1e-12, maxfun = 1e6))
  m <- mkMerMod(environment(devfun), opt, lf$reTrms, fr = lf$fr)
  out <- list(reml_loglik = as.numeric(logLik(m)), theta = unname(getME(m, "theta")), varcomp = varcomp(m),
              fixed_estimate = unname(fixef(m)), fixed_terms = names(fixef(m)),
              fixed_se = unname(sqrt(diag(as.matrix(vcov(m))))), isSingular = isSingular(m))
  tm <- tryCatch(as_lmerModLmerTest(m), error = function(e) NULL)
  out$satterthwaite <- if (is.null(tm)) NULL else fixed(tm)
  out
}
results$membership <- c(list(formula = "y ~ week * arm + (1|participant) + (1|mm(facilitator_1, facilitator_2))",
                             data = "membership.csv", control = "bobyqa rhoend=1e-12 maxfun=1e6"),
                        membership_fit(FALSE))
results$membership_weighted <- c(list(formula = "y ~ week * arm + (1|participant) + (1|mm(facilitator_1, facilitator_2, weights = cbind(w_1, w_2)))",
                                      data = "membership.csv", control = "bobyqa rhoend=1e-12 maxfun=1e6"),
                                 membership_fit(TRUE))
results$versions <- list(R = R.version.string, lme4 = as.character(packageVersion("lme4")),
                         lmerTest = as.character(packageVersion("lmerTest")))
writeLines(toJSON(results, auto_unbox = TRUE, digits = NA, pretty = TRUE, null = "null"),
           file.path(out_dir, "mixed_terms.json"))
