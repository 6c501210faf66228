"""The report tests reuse the small fixed studies of the analysis tests."""

from __future__ import annotations

from tests.analysis.conftest import levin_results, levin_study  # noqa: F401  (fixtures)
