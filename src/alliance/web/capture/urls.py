"""Studies, participants, timelines, forms, private links and exports (owned by the capture app)."""

from __future__ import annotations

app_name = "capture"
urlpatterns: list = []
