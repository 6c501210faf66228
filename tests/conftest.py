"""Test-suite wide configuration: which Django settings the storage and web tests use.

Set here rather than in ``pyproject.toml`` so that ``pytest`` works from any folder; an explicit
``DJANGO_SETTINGS_MODULE`` (environment or ``--ds``) still wins.
"""

from __future__ import annotations

import os


def pytest_configure(config):
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.web.settings")
    # pytest-django sets Django up after this hook when the settings are loaded by then.
    from django.conf import settings

    settings.INSTALLED_APPS  # noqa: B018 - touching a setting loads the settings module
