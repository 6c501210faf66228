"""URL configuration: each app owns its own ``urls.py``."""

from __future__ import annotations

from django.urls import include, path

urlpatterns = [
    # Django's language switcher (set_language, POST): anyone, participants on private links too.
    path("i18n/", include("django.conf.urls.i18n")),
    path("accounts/", include("alliance.web.accounts.urls")),
    path("monitor/", include("alliance.web.monitor.urls")),
    path("", include("alliance.web.capture.urls")),
]
