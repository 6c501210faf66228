"""Dashboards, alerts and analysis runs (owned by the monitor app). Listed in /tmp/web_urls_W2.md.

The ``study`` keyword is ``Study.name``; ``participant`` is ``Participant.participant_id``;
``alert`` the alert's database id.
"""

from __future__ import annotations

from django.urls import path

from . import facilitators, quality, views

app_name = "monitor"
urlpatterns = [
    path("studies/<str:study>/", views.study_dashboard, name="study"),
    path("studies/<str:study>/participants/<str:participant>/", views.participant_dashboard, name="participant"),
    path("studies/<str:study>/alerts/", views.alert_list, name="alerts"),
    path("studies/<str:study>/quality/", quality.quality_page, name="quality"),
    path("studies/<str:study>/facilitators/", facilitators.facilitator_list, name="facilitators"),
    path("studies/<str:study>/facilitators/<str:facilitator>/", facilitators.facilitator_page, name="facilitator"),
    path("studies/<str:study>/alerts/<int:alert>/acknowledge/", views.alert_acknowledge, name="acknowledge"),
    path("studies/<str:study>/alerts/acknowledge/", views.alerts_acknowledge, name="alerts_acknowledge"),
    path("studies/<str:study>/alerts/assign/", views.alerts_assign, name="alerts_assign"),
    path("studies/<str:study>/alerts/settings/", views.alert_settings, name="alert_settings"),
    path("studies/<str:study>/analysis/run/", views.analysis_run, name="analysis_run"),
    path("studies/<str:study>/analysis/<str:name>/", views.analysis_file, name="analysis_file"),
]
