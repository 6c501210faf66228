"""App configuration for ``alliance.web.capture``."""

from __future__ import annotations

from django.apps import AppConfig


class CaptureConfig(AppConfig):
    name = "alliance.web.capture"
    label = "capture"
    verbose_name = "Capture"

    def ready(self) -> None:
        # The site's instrument files join the bank before any protocol or form is read; the
        # setting is read here, at the edge, and given to the core as an argument.
        from django.conf import settings

        from alliance import instruments

        folder = getattr(settings, "INSTRUMENTS_DIR", None)
        if folder:
            instruments.add_instruments_dir(folder)
