"""App configuration for ``alliance.web.capture``."""

from __future__ import annotations

from django.apps import AppConfig


class CaptureConfig(AppConfig):
    name = "alliance.web.capture"
    label = "capture"
    verbose_name = "Capture"
