"""Dashboards, alerts and analysis runs (owned by the monitor app)."""

from __future__ import annotations

app_name = "monitor"
urlpatterns: list = []
