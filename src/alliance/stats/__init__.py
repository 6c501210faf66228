"""Statistics of the alliance analyses, equal to R's results (stats, psych, lavaan, lme4/lmerTest).

One public function per method, arrays or DataFrames in, a frozen result dataclass out (each
with ``to_dict()``):

- :mod:`.parametric` — :func:`paired_ttest`, :func:`wilcoxon`
- :mod:`.correlation` — :func:`correlation`, :func:`partial_correlation`
- :mod:`.mediation` — :func:`mediation` (vectorized bootstrap)
- :mod:`.reliability` — :func:`cronbach_alpha`, :func:`omega`
- :mod:`.change` — :func:`reliable_change`, :func:`clinical_significance`, :func:`classify_change`
  (Jacobson & Truax 1991)
- :mod:`.multiplicity` — :func:`adjust_pvalues`
- :mod:`.regression` — :func:`linear_regression` (R's ``lm``)
- :mod:`.mixed` — :func:`mixedlm`, :func:`confint`
"""

# ruff: noqa: I001 -- `.mixed` (maintained separately) is deliberately the last import.
from .change import ClinicalSignificance, ReliableChange, classify_change, clinical_significance, reliable_change
from .correlation import Correlation, PartialCorrelation, correlation, correlation_matrix, partial_correlation
from .mediation import Mediation, mediation
from .missing import (
    FimlCorrelationMatrix,
    FimlMediation,
    MiCorrelation,
    PooledEstimate,
    TippingPoint,
    fiml_saturated,
    impute,
    mi_correlation,
    rubin_pool,
    tipping_point,
)
from .logistic import LogisticRegression, logistic_regression
from .meta import MetaAnalysis, PooledCorrelation, meta_analysis, pool_correlations
from .multiplicity import adjust_pvalues
from .parametric import PairedTest, WilcoxonTest, paired_ttest, wilcoxon
from .regression import LinearRegression, linear_regression
from .reliability import CronbachAlpha, Omega, cronbach_alpha, omega
from .results import Result
from .mixed import MixedModel, confint, mixedlm

__all__ = [
    "ClinicalSignificance",
    "Correlation",
    "CronbachAlpha",
    "FimlCorrelationMatrix",
    "FimlMediation",
    "LinearRegression",
    "LogisticRegression",
    "Mediation",
    "MiCorrelation",
    "MetaAnalysis",
    "PooledCorrelation",
    "MixedModel",
    "Omega",
    "PairedTest",
    "PartialCorrelation",
    "PooledEstimate",
    "ReliableChange",
    "TippingPoint",
    "Result",
    "WilcoxonTest",
    "adjust_pvalues",
    "classify_change",
    "clinical_significance",
    "confint",
    "correlation",
    "correlation_matrix",
    "cronbach_alpha",
    "fiml_saturated",
    "impute",
    "linear_regression",
    "logistic_regression",
    "mediation",
    "meta_analysis",
    "mi_correlation",
    "mixedlm",
    "omega",
    "paired_ttest",
    "pool_correlations",
    "reliable_change",
    "rubin_pool",
    "tipping_point",
    "partial_correlation",
    "wilcoxon",
]
