"""URL configuration. Empty until the web app adds its pages (capture, accounts, monitor)."""

from __future__ import annotations

urlpatterns: list = []
