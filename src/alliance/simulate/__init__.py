"""Synthetic trials calibrated to the published results, and simulation-based power."""

from .copula import BetaMarginal, CalibrationError
from .scenario import Scenario, levin2024_scenario, scenario_from_dict
from .trial import ScoreModel, Variable, score_model, simulate_trial

__all__ = ["BetaMarginal", "CalibrationError", "Scenario", "levin2024_scenario", "scenario_from_dict", "simulate_trial",
           "ScoreModel", "Variable", "score_model"]
