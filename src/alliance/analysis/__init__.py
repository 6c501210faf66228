"""The study's analysis: a plan (data, in the protocol) run on a :class:`alliance.study.Study`.

- :mod:`.plan` — the plan's schema (``docs/analysis.md``), its checks, and its resolution against a
  protocol; the default plan is ``levin2024_plan.yaml`` (Levin et al. 2024 + Murphy et al. 2022).
- :mod:`.pipeline` — :func:`run_analysis`: every statistic is one call into :mod:`alliance.stats`.
- :mod:`.results` — :class:`Results`, the sections of ``results.json``.
- :mod:`.summaries` — descriptive tables (scores per timepoint, participant flow).

Examples
--------
>>> from alliance.analysis import default_plan
>>> [spec.type for spec in default_plan().analyses][:3]
['alliance_change', 'alliance_mixed_model', 'correlation']
"""

from .pipeline import run_analysis
from .plan import (
    AnalysisPlan,
    AnalysisPlanError,
    AnalysisSpec,
    ResolvedPlan,
    default_plan,
    parse_plan,
    plan_for_protocol,
    resolve_plan,
)
from .results import SECTIONS, Results
from .summaries import completeness, descriptives, split_measure

__all__ = [
    "SECTIONS",
    "AnalysisPlan",
    "AnalysisPlanError",
    "AnalysisSpec",
    "ResolvedPlan",
    "Results",
    "completeness",
    "default_plan",
    "descriptives",
    "parse_plan",
    "plan_for_protocol",
    "resolve_plan",
    "run_analysis",
    "split_measure",
]
