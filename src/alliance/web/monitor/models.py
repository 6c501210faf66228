"""Alerts raised by the protocol's alert rules, and runs of the study's analysis.

An :class:`Alert` is the stored form of an :class:`alliance.monitoring.alerts.Alert`: one per rule,
participant and timepoint (raising it again changes nothing). It stays open until someone
acknowledges it; an overdue-assessment alert whose assessment has since been done is marked
resolved. Every create and change is written to the audit trail (``audit.AuditEvent``).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from alliance.web.capture.models import Participant, Study


class Alert(models.Model):
    """An alert about one participant at one timepoint, with its reason and who acknowledged it."""

    class Severity(models.TextChoices):
        INFO = "info", "Info"
        WARNING = "warning", "Warning"
        URGENT = "urgent", "Urgent"

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="alerts")
    # RESTRICT: an import cannot silently delete a participant who has alerts; the study can.
    participant = models.ForeignKey(Participant, on_delete=models.RESTRICT, related_name="alerts")
    rule = models.CharField(max_length=100, help_text="The id of the protocol's alert rule.")
    rule_type = models.CharField(max_length=30, help_text="low_alliance, alliance_drop, flag or missed_assessment.")
    timepoint = models.CharField(max_length=100, help_text="The protocol's timepoint id the alert is about.")
    measure = models.CharField(max_length=300, blank=True, help_text="What was measured, e.g. wai_sr.total@prep.")
    severity = models.CharField(max_length=10, choices=Severity.choices)
    reason = models.TextField(help_text="The reason in words, with the numbers.")
    action = models.TextField(blank=True, help_text="What to do (the site's crisis text for suicidality).")
    value = models.FloatField(null=True, blank=True, help_text="The number the rule looked at.")
    created_at = models.DateTimeField(auto_now_add=True)
    acknowledged_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True,
                                        blank=True, related_name="+")
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledgement_note = models.TextField(blank=True)
    resolved_at = models.DateTimeField(
        null=True, blank=True, help_text="When the condition ended by itself (an overdue assessment done).")
    assigned_to = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                    related_name="assigned_alerts",
                                    help_text="The staff member who is to act on it (admin, investigator or "
                                              "one of the participant's facilitators).")
    assigned_at = models.DateTimeField(null=True, blank=True)
    notified_at = models.DateTimeField(
        null=True, blank=True, help_text="When the email about an urgent alert was tried (it is tried once).")
    notification = models.CharField(
        max_length=300, blank=True, help_text="What became of that email: sent to how many, or why not.")

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["participant", "rule", "timepoint"],
                                               name="monitor_alert_unique")]
        indexes = [models.Index(fields=["study", "acknowledged_at", "resolved_at"]),
                   models.Index(fields=["participant", "acknowledged_at"])]

    def __str__(self) -> str:
        return f"{self.participant}/{self.timepoint}/{self.rule}"

    @property
    def is_open(self) -> bool:
        return self.acknowledged_at is None and self.resolved_at is None

    def audit_fields(self) -> dict:
        """The recorded fields, as the audit trail keeps them."""
        return {"participant": self.participant.participant_id if self.participant_id else None,
                "rule": self.rule, "rule_type": self.rule_type, "timepoint": self.timepoint,
                "measure": self.measure, "severity": self.severity, "reason": self.reason,
                "value": self.value}


class AnalysisRun(models.Model):
    """One run of ``alliance analyze`` on a stored study from the web app, and where it wrote."""

    class Status(models.TextChoices):
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="analysis_runs")
    started_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                   related_name="+")
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RUNNING)
    output_dir = models.CharField(max_length=500, help_text="Where results.json, report.html and report.pdf are.")
    n_participants = models.IntegerField(null=True, blank=True)
    seconds = models.FloatField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]

    def __str__(self) -> str:
        return f"{self.study.name} analysis {self.started_at:%Y-%m-%d %H:%M} ({self.status})"
