"""Monitoring while treatment runs: schedules (due, overdue, missed) and alert evaluation. Pure core.

- :mod:`alliance.monitoring.schedule`: when each timepoint is due for a participant
  (:func:`planned_dates`, :func:`timeline`).
- :mod:`alliance.monitoring.alerts`: the protocol's alert rules evaluated on scores, answers and
  timelines (:func:`evaluate_alerts`); each rule type declares the data it needs
  (:func:`inputs_needed`), so a caller (the web app) fetches only that.
- :mod:`alliance.monitoring.change`: each participant's reliable change from baseline with the
  protocol's ``reliable_change:`` norm (:func:`~alliance.monitoring.change.change_from_baseline`).
- :mod:`alliance.monitoring.quality`: the data-quality rules, built-in and the protocol's
  ``quality:`` section (:func:`~alliance.monitoring.quality.check_quality`).

Nothing here touches a database: the web app supplies data and stores what comes back.
"""

from __future__ import annotations

from .alerts import (
           RULE_TYPES,
           Alert,
           AlertData,
           AlertInputs,
           RuleType,
           evaluate_alerts,
           inputs_needed,
           time_dependent,
)
from .schedule import STATUSES, due_window, planned_dates, timeline

__all__ = ["RULE_TYPES", "STATUSES", "Alert", "AlertData", "AlertInputs", "RuleType", "due_window",
           "evaluate_alerts", "inputs_needed", "planned_dates", "time_dependent", "timeline"]
