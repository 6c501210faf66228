"""The app's URLs and one that fails: the accessibility tests' way to a real HTTP 500 page.

``test_accessibility.py`` points ``ROOT_URLCONF`` here for its ``500`` state only, so that Django's
own ``handler500`` renders ``500.html`` for an exception raised in a view, with ``DEBUG`` off, as a
site would; nothing in the app serves a failing page.
"""

from __future__ import annotations

from django.urls import path

from alliance.web.urls import urlpatterns as app_urlpatterns

SERVER_ERROR = "/a11y/server-error/"


def server_error(request):
    raise RuntimeError("a view failing on purpose, for the accessibility test of the 500 page")


urlpatterns = [path(SERVER_ERROR.strip("/") + "/", server_error), *app_urlpatterns]
