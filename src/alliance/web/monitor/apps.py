"""App configuration for ``alliance.web.monitor``."""

from __future__ import annotations

from django.apps import AppConfig


class MonitorConfig(AppConfig):
    name = "alliance.web.monitor"
    label = "monitor"
    verbose_name = "Monitoring: dashboards and alerts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Alerts are raised when the capture app says a form was submitted, a dosing session or a
        # safety record stored or a study imported; capture itself does not know about alerts.
        from alliance.web.capture import signals

        from . import receivers

        signals.administration_submitted.connect(receivers.alerts_on_submission,
                                                 dispatch_uid="alliance-monitor-alerts-on-submission")
        signals.dosing_recorded.connect(receivers.alerts_on_dosing, dispatch_uid="alliance-monitor-alerts-on-dosing")
        signals.safety_recorded.connect(receivers.alerts_on_safety_record,
                                        dispatch_uid="alliance-monitor-alerts-on-safety-record")
        signals.study_imported.connect(receivers.alerts_on_import, dispatch_uid="alliance-monitor-alerts-on-import")
        signals.participants_deleting.connect(receivers.alerts_of_deleted_participants,
                                              dispatch_uid="alliance-monitor-alerts-of-deleted-participants")
