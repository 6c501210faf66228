"""URL configuration: each app owns its own ``urls.py``."""

from __future__ import annotations

from django.urls import include, path

urlpatterns = [
    path("accounts/", include("alliance.web.accounts.urls")),
    path("monitor/", include("alliance.web.monitor.urls")),
    path("", include("alliance.web.capture.urls")),
]
