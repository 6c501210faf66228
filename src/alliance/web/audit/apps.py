"""App configuration for ``alliance.web.audit``."""

from __future__ import annotations

from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "alliance.web.audit"
    label = "audit"
    verbose_name = "Audit trail"
