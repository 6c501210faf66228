"""Test-suite wide configuration: which Django settings the storage and web tests use.

Set here rather than in ``pyproject.toml`` so that ``pytest`` works from any folder; an explicit
``DJANGO_SETTINGS_MODULE`` (environment or ``--ds``) still wins.
"""

from __future__ import annotations

import os

import pytest


def pytest_configure(config):
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.web.settings")
    # pytest-django sets Django up after this hook when the settings are loaded by then.
    from django.conf import settings

    settings.INSTALLED_APPS  # noqa: B018 - touching a setting loads the settings module


@pytest.fixture
def package_bank():
    """The instrument bank as the package ships it, before and after a test that adds a site folder."""
    from alliance import instruments

    instruments._forget_site_instruments()
    yield
    instruments._forget_site_instruments()
