"""``alliance.web.settings``: where the data go, the secret key, the database URL, password hashing.

Most cases load the real settings module in a fresh process with a controlled environment; the
caller's choices (``https``, ``allowed_hosts``) are checked on :func:`alliance.web.config.build_settings`,
which takes the environment as a mapping.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys

import pytest

SHOW = """
import json
from alliance.web import settings
print(json.dumps({"database": {k: str(v) for k, v in settings.DATABASES["default"].items() if k != "OPTIONS"},
                  "data_dir": str(settings.DATA_DIR), "secret_key": settings.SECRET_KEY,
                  "hashers": settings.PASSWORD_HASHERS, "apps": settings.INSTALLED_APPS}))
"""


def settings_with(env: dict[str, str]) -> dict:
    keep = {k: v for k, v in os.environ.items()
            if k not in ("DATABASE_URL", "ALLIANCE_DATA_DIR", "ALLIANCE_SECRET_KEY", "XDG_DATA_HOME", "HOME")}
    result = subprocess.run([sys.executable, "-c", SHOW], env={**keep, **env}, capture_output=True, text=True,
                            check=True, timeout=120)
    return json.loads(result.stdout)


def test_default_database_is_a_sqlite_file_under_xdg_data_home(tmp_path):
    shown = settings_with({"HOME": str(tmp_path / "home")})
    expected = tmp_path / "home" / ".local" / "share" / "alliance"
    assert shown["data_dir"] == str(expected)
    assert shown["database"]["ENGINE"] == "django.db.backends.sqlite3"
    assert shown["database"]["NAME"] == str(expected / "alliance.sqlite3")

    shown = settings_with({"HOME": str(tmp_path / "home"), "XDG_DATA_HOME": str(tmp_path / "xdg")})
    assert shown["database"]["NAME"] == str(tmp_path / "xdg" / "alliance" / "alliance.sqlite3")


def test_alliance_data_dir_overrides_the_location(tmp_path):
    shown = settings_with({"HOME": str(tmp_path), "ALLIANCE_DATA_DIR": str(tmp_path / "trial")})
    assert shown["database"]["NAME"] == str(tmp_path / "trial" / "alliance.sqlite3")


def test_database_url_selects_postgresql(tmp_path):
    shown = settings_with({"HOME": str(tmp_path),
                           "DATABASE_URL": "postgres://ana:secret@db.example.org:6543/trial"})
    assert shown["database"]["ENGINE"] == "django.db.backends.postgresql"
    assert (shown["database"]["HOST"], shown["database"]["PORT"], shown["database"]["NAME"]) == (
        "db.example.org", "6543", "trial")


def test_secret_key_is_generated_once_per_install_and_kept_private(tmp_path):
    env = {"HOME": str(tmp_path), "ALLIANCE_DATA_DIR": str(tmp_path / "data")}
    first = settings_with(env)["secret_key"]
    assert settings_with(env)["secret_key"] == first
    key_file = tmp_path / "data" / "secret_key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert len(first) >= 50
    other = settings_with({"HOME": str(tmp_path), "ALLIANCE_DATA_DIR": str(tmp_path / "other")})["secret_key"]
    assert other != first
    assert settings_with({**env, "ALLIANCE_SECRET_KEY": "from-the-environment"})["secret_key"] == "from-the-environment"


def test_argon2_hashes_passwords_and_the_apps_are_installed(tmp_path):
    shown = settings_with({"HOME": str(tmp_path)})
    assert shown["hashers"][0] == "django.contrib.auth.hashers.Argon2PasswordHasher"
    assert {"alliance.web.audit", "alliance.web.capture", "alliance.web.accounts", "alliance.web.monitor"} <= set(
        shown["apps"])


# -- a caller's choices, passed as arguments; the environment still wins ----------------------------

def test_a_callers_https_and_hosts_apply_where_the_environment_is_silent(tmp_path):
    from alliance.web.config import build_settings

    quiet = {"ALLIANCE_DATA_DIR": str(tmp_path), "HOME": str(tmp_path)}
    served = build_settings(quiet, https=False, allowed_hosts=["localhost", "127.0.0.1", "clinic.local"])
    assert (served["HTTPS"], served["SESSION_COOKIE_SECURE"], served["CSRF_COOKIE_SECURE"]) == (False, False, False)
    assert served["SECURE_HSTS_SECONDS"] == 0 and "SECURE_PROXY_SSL_HEADER" not in served
    assert served["ALLOWED_HOSTS"] == ["localhost", "127.0.0.1", "clinic.local"]
    default = build_settings(quiet)
    assert default["HTTPS"] is True and default["ALLOWED_HOSTS"] == ["localhost", "127.0.0.1"]
    assert "SECURE_PROXY_SSL_HEADER" not in default  # HTTPS by default, but the proxy header only when said


def test_the_environment_wins_over_a_callers_choices(tmp_path):
    from alliance.web.config import build_settings

    said = {"ALLIANCE_DATA_DIR": str(tmp_path), "HOME": str(tmp_path), "ALLIANCE_HTTPS": "true",
            "ALLIANCE_ALLOWED_HOSTS": "alliance.example.org"}
    served = build_settings(said, https=False, allowed_hosts=["localhost"])
    assert served["HTTPS"] is True and served["SESSION_COOKIE_SECURE"] is True
    assert served["SECURE_PROXY_SSL_HEADER"] == ("HTTP_X_FORWARDED_PROTO", "https")
    assert served["ALLOWED_HOSTS"] == ["alliance.example.org"]
    explicit = build_settings({"ALLIANCE_DATA_DIR": str(tmp_path), "HOME": str(tmp_path)}, https=True)
    assert explicit["SECURE_PROXY_SSL_HEADER"] == ("HTTP_X_FORWARDED_PROTO", "https")


def test_building_settings_leaves_the_process_environment_alone(tmp_path):
    from alliance.web.config import build_settings

    before = dict(os.environ)
    build_settings({"ALLIANCE_DATA_DIR": str(tmp_path), "HOME": str(tmp_path), "DATABASE_URL": "sqlite:///x.db"},
                   https=False, allowed_hosts=["example.org"])
    assert dict(os.environ) == before


def test_the_site_address_for_emailed_links(tmp_path):
    from django.core.exceptions import ImproperlyConfigured

    from alliance.web.config import build_settings

    base = {"ALLIANCE_DATA_DIR": str(tmp_path), "HOME": str(tmp_path)}
    assert build_settings(base)["ALLIANCE_SITE_URL"] == ""   # not set: nothing is emailed
    given = build_settings({**base, "ALLIANCE_SITE_URL": " https://trial.example.org/alliance/ "})
    assert given["ALLIANCE_SITE_URL"] == "https://trial.example.org/alliance"
    for wrong in ("trial.example.org", "ftp://trial.example.org", "https://trial.example.org/?a=1"):
        with pytest.raises(ImproperlyConfigured, match=r"ALLIANCE_SITE_URL=.* is not a site address; allowed: "):
            build_settings({**base, "ALLIANCE_SITE_URL": wrong})
