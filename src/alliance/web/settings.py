"""The Django settings module of the web app: ``DJANGO_SETTINGS_MODULE=alliance.web.settings``.

What gunicorn (through :mod:`alliance.web.wsgi`) and ``django-admin`` load: the settings of
:func:`alliance.web.config.build_settings` for this process's environment. The environment
variables, the default database location and the security defaults are documented in
:mod:`alliance.web.config`. This module is the edge where a server process's environment is read;
the CLI and scripts call :func:`alliance.web.django_setup` instead, which takes its choices as
arguments.
"""

from __future__ import annotations

import os

from alliance.web.config import build_settings

globals().update(build_settings(os.environ))
