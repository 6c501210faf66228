"""The study's analysis: the protocol's plan run on a :class:`alliance.study.Study`.

- The plan is the protocol's ``analysis:`` section (:mod:`alliance.protocol.analysis`, schema
  ``docs/analysis.md``; the default is the one of ``levin2024.yaml``: Levin et al. 2024 + Murphy
  et al. 2022).
- :mod:`.plan` — :func:`resolve_plan`: the plan's references resolved against one protocol.
- :mod:`.pipeline` — :func:`run_analysis`: every statistic is one call into :mod:`alliance.stats`.
- :mod:`.results` — :class:`Results`, the sections of ``results.json``.
- :mod:`.summaries` — descriptive tables (scores per timepoint, participant flow).

Examples
--------
>>> from alliance.protocol import default_protocol
>>> resolved = resolve_plan(default_protocol().analysis, default_protocol())
>>> sorted({analysis.role for analysis in resolved.analyses})
['confirmatory', 'exploratory']
>>> [analysis.type for analysis in resolved.analyses if analysis.role == "confirmatory"][:2]
['alliance_change', 'correlation']
"""

from .pipeline import analysed_study, run_analysis
from .plan import Dropped, ResolvedAnalysis, ResolvedPlan, resolve_plan
from .results import SECTIONS, Results
from .summaries import completeness, descriptives, split_measure

__all__ = [
    "SECTIONS",
    "Dropped",
    "ResolvedAnalysis",
    "ResolvedPlan",
    "Results",
    "analysed_study",
    "completeness",
    "descriptives",
    "resolve_plan",
    "run_analysis",
    "split_measure",
]
