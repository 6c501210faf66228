"""``alliance.web.settings``: where the data go, the secret key, the database URL, password hashing.

Each case loads the real settings in a fresh process with a controlled environment.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys

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
    assert {"alliance.web.capture", "alliance.web.accounts"} <= set(shown["apps"])
